//! The int8 operators: TFLite's reference kernels, NHWC, with every parameter their
//! `Prepare` computes computed here (spec §2–§6) and every condition upstream
//! leaves undefined (accumulator and shift overflow) refused with a reason.
//!
//! Activations are int8 with per-tensor quantization; convolution weights OHWI or
//! 1HWO, int8, symmetric, per channel or per tensor; biases int32 in the scale of
//! the accumulator; fused activations become the output's clamp range.

use medwasm::format::{DType as BlobDType, OpCode, Quant as BlobQuant};
use medwasm::kernels::act::Act;
use medwasm::kernels::binary::BinOp;

use super::{
    Const, FcRequant, Issue, Kernel, Operand, Options, Select, bug, fail, per_tensor, window_words,
};
use crate::convert::ProblemKind;
use crate::convert::ir::{DType, Graph, Layout, Node, Op, Quant, TensorId, Window};
use crate::convert::quant::{self, LutKind, Multiplier};

/// The most taps a pooling window may have (the runtime's limit: their i32 sum is
/// exact).
const MAX_POOL_TAPS: usize = medwasm::ops::MAX_POOL_TAPS;
/// The most elements a MEAN may average.
const MAX_MEAN_COUNT: usize = medwasm::ops::MAX_MEAN_COUNT;
/// The longest softmax row the int8 kernel takes (its Q12.19 sum of up to 511
/// exponentials cannot overflow).
const MAX_SOFTMAX_DEPTH: usize = medwasm::kernels::int8::softmax::MAX_DEPTH;

/// Collects a node's issues, so one node reports every problem it has.
#[derive(Default)]
struct Issues(Vec<Issue>);

impl Issues {
    fn dtype(&mut self, message: impl Into<String>) {
        self.0.push((ProblemKind::Dtype, message.into()));
    }

    fn attribute(&mut self, message: impl Into<String>) {
        self.0.push((ProblemKind::Attribute, message.into()));
    }

    fn shape(&mut self, message: impl Into<String>) {
        self.0.push((ProblemKind::Shape, message.into()));
    }

    /// The value of `r`, or its issue recorded.
    fn take<T>(&mut self, r: Result<T, String>, kind: ProblemKind) -> Option<T> {
        r.map_err(|e| self.0.push((kind, e))).ok()
    }

    /// The kernel `f` builds when no issue was recorded.
    fn done(self, f: impl FnOnce() -> Kernel) -> Select {
        if self.0.is_empty() {
            Ok(f())
        } else {
            Err(self.0)
        }
    }
}

/// Per-tensor quantization of an int8 activation: `(scale, zero_point)`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Q {
    scale: f32,
    zp: i32,
}

/// The per-tensor quantization of int8 activation `t` (`what` names it in
/// messages), or the reason it has none the kernels take.
fn activation(g: &Graph, t: TensorId, what: &str, issues: &mut Issues) -> Option<Q> {
    let tensor = &g.tensors[t];
    match tensor.dtype {
        DType::I8 => {}
        DType::U8 => {
            issues.dtype(format!(
                "the {what} is uint8; only int8 (signed) quantization is supported: convert the model with int8 quantization (TFLite's default)"
            ));
            return None;
        }
        other => {
            issues.dtype(format!(
                "the {what} is {} where an int8 tensor is needed (int8 operators take int8 operands)",
                other.name()
            ));
            return None;
        }
    }
    match per_tensor(tensor.quant.as_ref()) {
        Some((scale, zp)) if scale.is_finite() && scale > 0.0 && (-128..=127).contains(&zp) => {
            Some(Q {
                scale,
                zp: zp as i32,
            })
        }
        Some((scale, zp)) => {
            issues.dtype(format!(
                "the {what} has scale {scale} and zero point {zp}; int8 tensors need a finite positive scale and a zero point in -128..=127"
            ));
            None
        }
        None if tensor.quant.is_some() => {
            issues.dtype(format!(
                "the {what} is quantized per channel; int8 activations must be quantized per tensor (one scale and zero point), as TFLite's and ONNX's quantizers write them"
            ));
            None
        }
        None => {
            issues.dtype(format!("the int8 {what} has no quantization parameters"));
            None
        }
    }
}

/// The largest `|x − zp|` of an int8 value.
fn dev(zp: i32) -> u64 {
    u64::from((zp + 128).max(127 - zp).unsigned_abs())
}

/// True when `bound · 2^max(shift, 0)` fits i32: what the runtime's loader proves
/// before it runs a kernel (upstream leaves the overflow undefined).
fn fits_i32(bound: u64, shift: i32) -> bool {
    shift <= 31 && bound <= (i32::MAX as u64) >> shift.max(0)
}

/// Checks a multiplier a kernel applies to inputs deviating up to `x_dev` from
/// their zero point: its shift in the runtime's range and the left shift of the
/// inputs without overflow.
fn requant_ok(what: &str, m: Multiplier, x_dev: u64, issues: &mut Issues) -> bool {
    if !m.shift_ok() {
        issues.dtype(format!(
            "the {what} multiplier {:e} needs a shift of {}, outside the runtime's -31..=30: the scales are too far apart",
            m.real(),
            m.shift
        ));
        return false;
    }
    if !fits_i32(x_dev, m.shift) {
        issues.dtype(format!(
            "the {what} multiplier {:e} shifts values left by {} bits, which overflows int32 (undefined in TFLite): the output scale is too fine for the input's",
            m.real(),
            m.shift
        ));
        return false;
    }
    true
}

/// Mantissas and shifts as two constant operands.
fn mult_shift(ms: &[Multiplier]) -> [Operand; 2] {
    let m: Vec<i32> = ms.iter().map(|q| q.m).collect();
    let s: Vec<i32> = ms.iter().map(|q| q.shift).collect();
    [Const::vector(&m), Const::vector(&s)]
}

/// `[act_min, act_max]` as two words.
fn range_words((lo, hi): (i32, i32)) -> [u32; 2] {
    [lo as u32, hi as u32]
}

/// The int8 kernel of `n`, whose first runtime input is int8.
pub(super) fn select(g: &Graph, n: &Node, opts: &Options) -> Select {
    match &n.op {
        Op::Conv {
            win,
            group,
            act,
            layout,
            depthwise,
        } => conv(g, n, win, *group, *act, *layout, *depthwise),
        Op::Gemm { act } => fully_connected(g, n, *act, opts.fc_requant),
        Op::Binary { op, act } => binary(g, n, *op, *act),
        Op::Act(act) => activation_op(g, n, *act),
        Op::HardSwish => hard_swish(g, n),
        Op::Softmax { start, end, beta } => softmax(g, n, *start, *end, *beta),
        Op::Pool {
            max,
            win,
            count_include_pad,
            layout,
        } => pool(g, n, *max, win, *count_include_pad, *layout),
        Op::ReduceMean { mask } => mean(g, n, *mask),
        Op::ChannelAffine { .. } => fail(
            ProblemKind::Operator,
            "BatchNormalization of int8 values is not supported; fold it into the preceding layer before quantizing",
        ),
        Op::Copy
        | Op::Transpose { .. }
        | Op::Concat { .. }
        | Op::Pad { .. }
        | Op::Quantize
        | Op::Dequantize => bug(n, "a data or quantization node reached the int8 kernels"),
    }
}

/// The tensor of input `k` of `n`, or an issue saying what is missing.
fn input(n: &Node, k: usize, what: &str, issues: &mut Issues) -> Option<TensorId> {
    let t = n.inputs.get(k).copied().flatten();
    if t.is_none() {
        issues.shape(format!("the {what} (input {k}) is missing"));
    }
    t
}

/// The values of constant int8 weights `w`, or the issue.
fn weights<'g>(g: &'g Graph, w: TensorId, issues: &mut Issues) -> Option<&'g [i8]> {
    match &g.tensors[w].data {
        Some(crate::convert::ir::Data::I8(v)) => Some(v),
        Some(d) => {
            issues.dtype(format!(
                "the weights are {}; int8 operators take int8 weights",
                d.dtype().name()
            ));
            None
        }
        None => {
            issues.attribute("the weights are computed at run time; constant weights are needed");
            None
        }
    }
}

/// The scales of weights `w` per output channel (`channels` of them along `axis`),
/// or one per-tensor scale; zero points must be 0 unless `zero_point_ok`.
/// Returns the scales and the per-tensor zero point.
fn weight_scales(
    g: &Graph,
    w: TensorId,
    axis: usize,
    channels: usize,
    per_tensor_zero_point_ok: bool,
    issues: &mut Issues,
) -> Option<(Vec<f32>, i32)> {
    let Some(q) = &g.tensors[w].quant else {
        issues.dtype("the int8 weights have no quantization parameters");
        return None;
    };
    let Quant {
        scale,
        zero_point,
        axis: qaxis,
    } = q;
    let per_channel = qaxis.is_some() && scale.len() > 1;
    if qaxis.is_some_and(|a| a != axis) && scale.len() > 1 {
        issues.dtype(format!(
            "the weights are quantized along axis {}; per-channel weights must be quantized along their output channels (axis {axis})",
            qaxis.unwrap_or(0)
        ));
        return None;
    }
    if scale.len() != 1 && scale.len() != channels {
        issues.dtype(format!(
            "the weights have {} scales for {channels} output channels",
            scale.len()
        ));
        return None;
    }
    if let Some(s) = scale.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
        issues.dtype(format!(
            "the weights have scale {s}; scales must be finite and positive"
        ));
        return None;
    }
    let zp = zero_point.first().copied().unwrap_or(0);
    if zero_point.iter().any(|&z| z != zp) || !(-128..=127).contains(&zp) {
        issues.dtype("the weights' zero points differ per channel or lie outside int8");
        return None;
    }
    if zp != 0 && (per_channel || !per_tensor_zero_point_ok) {
        issues.dtype(format!(
            "the weights have zero point {zp}; {} need symmetric weights (zero point 0), as TFLite requires",
            if per_channel {
                "per-channel weights"
            } else {
                "int8 convolutions"
            }
        ));
        return None;
    }
    Some((scale.clone(), zp as i32))
}

/// The accumulator scale a bias must have, where LiteRT checks it: `(s_in, s_w,
/// s_out)` of a fully connected layer with per-tensor weights.
struct BiasScale<'a> {
    s_in: f32,
    s_w: &'a [f32],
    s_out: f32,
}

/// The optional int32 bias (input 2) of `channels` values; with `scale`, checked
/// against the accumulator's scale `s_in · s_w` (LiteRT's `Prepare` rule: within 2 %
/// of an output step; elsewhere LiteRT adds the integers as they are). Returns its
/// values.
fn bias(
    g: &Graph,
    n: &Node,
    channels: usize,
    scale: Option<BiasScale<'_>>,
    issues: &mut Issues,
) -> Option<Option<Vec<i32>>> {
    let Some(b) = n.inputs.get(2).copied().flatten() else {
        return Some(None);
    };
    let t = &g.tensors[b];
    let values = match &t.data {
        Some(crate::convert::ir::Data::I32(v)) if v.len() == channels => v.clone(),
        Some(crate::convert::ir::Data::I32(v)) => {
            issues.shape(format!(
                "the bias has {} values for {channels} output channels",
                v.len()
            ));
            return None;
        }
        Some(d) => {
            issues.dtype(format!(
                "the bias is {}; int8 operators take an int32 bias",
                d.dtype().name()
            ));
            return None;
        }
        None => {
            issues.attribute("the bias must be a constant");
            return None;
        }
    };
    if let Some(q) = &t.quant {
        if q.zero_point.iter().any(|&z| z != 0) {
            issues.dtype("the int32 bias has a nonzero zero point");
            return None;
        }
        let Some(BiasScale { s_in, s_w, s_out }) = scale else {
            return Some(Some(values));
        };
        for c in 0..channels {
            let sb = q.scale.get(if q.scale.len() == 1 { 0 } else { c });
            let sw = s_w[if s_w.len() == 1 { 0 } else { c }];
            let product = f64::from(s_in) * f64::from(sw);
            let off = sb.map(|&sb| (product - f64::from(sb)).abs() / f64::from(s_out));
            if !off.is_some_and(|d| d <= 0.02) {
                issues.dtype(format!(
                    "the bias of channel {c} has scale {}, not the input scale times the weight scale ({product:e}); the bias must be quantized in the accumulator's scale",
                    sb.map_or("none".to_string(), |s| s.to_string())
                ));
                return None;
            }
        }
    }
    Some(Some(values))
}

/// Checks every channel's accumulator: `Σ|w − zp_w| · x_dev + |bias|`, shifted left
/// by a positive shift, must fit i32 (the runtime's loader proves the same).
fn accumulator_bound(
    sum_abs_w: impl Fn(usize) -> u64,
    channels: usize,
    x_dev: u64,
    bias: Option<&[i32]>,
    shifts: &[i32],
    issues: &mut Issues,
) {
    for c in 0..channels {
        let b = bias.map_or(0, |b| u64::from(b[c].unsigned_abs()));
        let shift = shifts
            .get(if shifts.len() == 1 { 0 } else { c })
            .copied()
            .unwrap_or(0);
        let bound = sum_abs_w(c).saturating_mul(x_dev).saturating_add(b);
        if !fits_i32(bound, shift) {
            issues.dtype(format!(
                "output channel {c} may overflow its int32 accumulator ({bound} before a left shift of {}): too many or too large weights for int8 (TFLite leaves the overflow undefined)",
                shift.max(0)
            ));
            return;
        }
    }
}

/// CONV_2D / DEPTHWISE_CONV_2D (spec §2.3, §2.5) → QConv / QDepthwiseConv.
fn conv(
    g: &Graph,
    n: &Node,
    win: &Window,
    group: usize,
    act: Act,
    layout: Layout,
    depthwise: bool,
) -> Select {
    let mut is = Issues::default();
    if layout != Layout::Nhwc {
        return fail(
            ProblemKind::Shape,
            "int8 convolutions run 2-D NHWC; a 1-D (3-D tensor) int8 convolution is not supported",
        );
    }
    let x = input(n, 0, "input", &mut is);
    let w = input(n, 1, "weights", &mut is);
    let (Some(x), Some(w)) = (x, w) else {
        return Err(is.0);
    };
    let qi = activation(g, x, "input", &mut is);
    let qo = activation(g, n.output, "output", &mut is);
    let (xd, wd, yd) = (
        &g.tensors[x].dims,
        &g.tensors[w].dims,
        &g.tensors[n.output].dims,
    );
    let (c, m) = (
        xd.get(3).copied().unwrap_or(0),
        yd.get(3).copied().unwrap_or(0),
    );
    if xd.len() != 4 || yd.len() != 4 || wd.len() != 4 {
        is.shape("int8 convolutions take 4-D NHWC tensors");
        return Err(is.0);
    }
    // A CONV_2D with one input channel per group and one group per channel is a
    // depthwise convolution of multiplier m / c; its OHWI filter `[m, kh, kw, 1]`
    // becomes 1HWO `[1, kh, kw, m]`.
    let as_depthwise = !depthwise && group == c && group > 1 && wd[3] == 1;
    let depthwise = depthwise || as_depthwise;
    if !depthwise && group != 1 {
        is.attribute(format!(
            "grouped int8 convolutions ({group} groups) are not supported; only 1 group or depthwise (one group per input channel)"
        ));
        return Err(is.0);
    }
    let (kh, kw) = (win.kernel[0], win.kernel[1]);
    let want: [usize; 4] = if depthwise && !as_depthwise {
        [1, kh, kw, m]
    } else if depthwise {
        [m, kh, kw, 1]
    } else {
        [m, kh, kw, c]
    };
    if wd[..] != want || (depthwise && (c == 0 || m % c != 0)) || yd[0] != xd[0] {
        is.shape(format!(
            "the weights have shape {wd:?} where {want:?} is needed for an input {xd:?} and an output {yd:?}"
        ));
        return Err(is.0);
    }
    let axis = if depthwise && !as_depthwise { 3 } else { 0 };
    let data = weights(g, w, &mut is);
    let scales = weight_scales(g, w, axis, m, false, &mut is);
    let (Some(qi), Some(qo), Some(data), Some((s_w, _))) = (qi, qo, data, scales) else {
        return Err(is.0);
    };
    let bias = bias(g, n, m, None, &mut is);
    let ms = is.take(
        quant::conv_multipliers(qi.scale, &s_w, qo.scale),
        ProblemKind::Dtype,
    );
    let range = is.take(
        quant::act_range(act, qo.scale, qo.zp),
        ProblemKind::Attribute,
    );
    let (Some(bias), Some(ms), Some(range)) = (bias, ms, range) else {
        return Err(is.0);
    };
    for q in &ms {
        if !q.shift_ok() {
            is.dtype(format!(
                "an output channel's multiplier {:e} needs a shift of {}, outside -31..=30: the input, weight and output scales are too far apart",
                q.real(),
                q.shift
            ));
            break;
        }
    }
    let shifts: Vec<i32> = ms.iter().map(|q| q.shift).collect();
    // Weights as the kernel reads them: OHWI per output channel, 1HWO strided.
    let w_operand = if as_depthwise {
        let mut relaid = vec![0i8; data.len()];
        let taps = kh * kw;
        for o in 0..m {
            for t in 0..taps {
                relaid[t * m + o] = data[o * taps + t];
            }
        }
        Operand::Const(Const::of(vec![1, kh, kw, m], &relaid))
    } else {
        Operand::Tensor(w)
    };
    if depthwise {
        accumulator_bound(
            |ch| {
                // The filter of channel `ch` in the layout the weights have now.
                if as_depthwise {
                    abs_sum(&data[ch * kh * kw..][..kh * kw])
                } else {
                    data.iter()
                        .skip(ch)
                        .step_by(m)
                        .map(|&v| u64::from(v.unsigned_abs()))
                        .sum()
                }
            },
            m,
            dev(qi.zp),
            bias.as_deref(),
            &shifts,
            &mut is,
        );
    } else {
        let taps = kh * kw * c;
        accumulator_bound(
            |ch| abs_sum(&data[ch * taps..][..taps]),
            m,
            dev(qi.zp),
            bias.as_deref(),
            &shifts,
            &mut is,
        );
    }
    let mut params = window_words(n, win)?;
    params.extend(range_words(range));
    let [mult, shift] = mult_shift(&ms);
    let bias_operand = n
        .inputs
        .get(2)
        .copied()
        .flatten()
        .map_or(Operand::Absent, Operand::Tensor);
    is.done(|| Kernel {
        op: if depthwise {
            OpCode::QDepthwiseConv
        } else {
            OpCode::QConv
        },
        inputs: vec![Operand::Tensor(x), w_operand, bias_operand, mult, shift],
        params,
        scratch: None,
    })
}

/// `Σ |w|`.
fn abs_sum(w: &[i8]) -> u64 {
    w.iter().map(|&v| u64::from(v.unsigned_abs())).sum()
}

/// FULLY_CONNECTED (spec §2.4): the IR's Gemm `A [.., K] · B [K, N]` → QFullyConnected
/// with weights `[N, K]`, requantized as `fc_requant` says.
fn fully_connected(g: &Graph, n: &Node, act: Act, fc_requant: FcRequant) -> Select {
    let mut is = Issues::default();
    let x = input(n, 0, "input", &mut is);
    let w = input(n, 1, "weights", &mut is);
    let (Some(x), Some(w)) = (x, w) else {
        return Err(is.0);
    };
    let qi = activation(g, x, "input", &mut is);
    let qo = activation(g, n.output, "output", &mut is);
    let wd = g.tensors[w].dims.clone();
    let [depth, units] = wd[..] else {
        return fail(
            ProblemKind::Shape,
            format!("the weights have shape {wd:?}, not [depth, units]"),
        );
    };
    let data = weights(g, w, &mut is);
    let scales = weight_scales(g, w, 1, units, true, &mut is);
    let (Some(qi), Some(qo), Some(data), Some((s_w, zp_w))) = (qi, qo, data, scales) else {
        return Err(is.0);
    };
    let checked = (s_w.len() == 1).then_some(BiasScale {
        s_in: qi.scale,
        s_w: &s_w,
        s_out: qo.scale,
    });
    let bias = bias(g, n, units, checked, &mut is);
    let range = is.take(
        quant::act_range(act, qo.scale, qo.zp),
        ProblemKind::Attribute,
    );
    let (Some(bias), Some(range)) = (bias, range) else {
        return Err(is.0);
    };
    // `[units, depth]` rows: row u is column u of B.
    let mut rows = vec![0i8; data.len()];
    for d in 0..depth {
        for u in 0..units {
            rows[u * depth + d] = data[d * units + u];
        }
    }
    let mut w_const = Const::of(vec![units, depth], &rows);
    if s_w.len() == 1 {
        // Per-tensor weights: the kernel reads their zero point from the record.
        w_const.quant = Some(BlobQuant {
            scale: s_w[0],
            zero_point: zp_w,
        });
    }
    let bias_operand = n
        .inputs
        .get(2)
        .copied()
        .flatten()
        .map_or(Operand::Absent, Operand::Tensor);
    let mut inputs = vec![Operand::Tensor(x), Operand::Const(w_const), bias_operand];
    let (mode, shifts) = match fc_requant {
        FcRequant::LiteRtRef => {
            let scales = quant::fc_litert_scales(qi.scale, &s_w, qo.scale);
            if scales.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
                is.dtype("the requantization scale is not finite and positive");
            }
            inputs.push(Const::vector(&scales));
            (1, vec![0])
        }
        FcRequant::Tflm => {
            let Some(ms) = is.take(
                quant::fc_tflm_multipliers(qi.scale, &s_w, qo.scale),
                ProblemKind::Dtype,
            ) else {
                return Err(is.0);
            };
            if let Some(q) = ms.iter().find(|q| !q.shift_ok()) {
                is.dtype(format!(
                    "a unit's multiplier {:e} needs a shift of {}, outside -31..=30",
                    q.real(),
                    q.shift
                ));
            }
            inputs.extend(mult_shift(&ms));
            (0, ms.iter().map(|q| q.shift).collect())
        }
    };
    accumulator_bound(
        |u| {
            rows[u * depth..][..depth]
                .iter()
                .map(|&v| u64::from((i32::from(v) - zp_w).unsigned_abs()))
                .sum()
        },
        units,
        dev(qi.zp),
        bias.as_deref(),
        &shifts,
        &mut is,
    );
    let [lo, hi] = range_words(range);
    is.done(|| Kernel {
        op: OpCode::QFullyConnected,
        inputs,
        params: vec![mode, lo, hi],
        scratch: None,
    })
}

/// ADD, SUB (spec §4.1–§4.2) → QAdd; MUL (§4.3) → QMul.
fn binary(g: &Graph, n: &Node, op: BinOp, act: Act) -> Select {
    let mut is = Issues::default();
    let a = input(n, 0, "first operand", &mut is);
    let b = input(n, 1, "second operand", &mut is);
    let (Some(a), Some(b)) = (a, b) else {
        return Err(is.0);
    };
    let q1 = activation(g, a, "first operand", &mut is);
    let q2 = activation(g, b, "second operand", &mut is);
    let qo = activation(g, n.output, "output", &mut is);
    if op == BinOp::Div {
        is.0.push((
            ProblemKind::Operator,
            "int8 division is not supported (TFLite has no int8 DIV kernel)".into(),
        ));
    }
    let (Some(q1), Some(q2), Some(qo)) = (q1, q2, qo) else {
        return Err(is.0);
    };
    let range = is.take(
        quant::act_range(act, qo.scale, qo.zp),
        ProblemKind::Attribute,
    );
    let inputs = vec![Operand::Tensor(a), Operand::Tensor(b)];
    match op {
        BinOp::Add | BinOp::Sub => {
            let p = is.take(
                quant::add_params(q1.scale, q2.scale, qo.scale),
                ProblemKind::Dtype,
            );
            let (Some(p), Some(range)) = (p, range) else {
                return Err(is.0);
            };
            let mut params = vec![
                u32::from(op == BinOp::Sub),
                p.left_shift as u32,
                p.input1.m as u32,
                p.input1.shift as u32,
                p.input2.m as u32,
                p.input2.shift as u32,
                p.output.m as u32,
                p.output.shift as u32,
            ];
            params.extend(range_words(range));
            is.done(|| Kernel {
                op: OpCode::QAdd,
                inputs,
                params,
                scratch: None,
            })
        }
        _ => {
            let m = is.take(
                quant::mul_multiplier(q1.scale, q2.scale, qo.scale),
                ProblemKind::Dtype,
            );
            let (Some(m), Some(range)) = (m, range) else {
                return Err(is.0);
            };
            requant_ok("product's", m, dev(q1.zp) * dev(q2.zp), &mut is);
            let mut params = vec![m.m as u32, m.shift as u32];
            params.extend(range_words(range));
            is.done(|| Kernel {
                op: OpCode::QMul,
                inputs,
                params,
                scratch: None,
            })
        }
    }
}

/// The input and output quantization of an elementwise int8 node.
fn unary(g: &Graph, n: &Node, is: &mut Issues) -> Option<(TensorId, Q, Q)> {
    let x = input(n, 0, "input", is)?;
    let qi = activation(g, x, "input", is);
    let qo = activation(g, n.output, "output", is);
    Some((x, qi?, qo?))
}

/// A standalone activation: the RELU family as a requantization with a clamp
/// (`ReluX`, spec §5.4), LOGISTIC and TANH as LiteRT's lookup tables (§5.2),
/// LEAKY_RELU (§5.5).
fn activation_op(g: &Graph, n: &Node, act: Act) -> Select {
    let mut is = Issues::default();
    let Some((x, qi, qo)) = unary(g, n, &mut is) else {
        return Err(is.0);
    };
    let kernel = |op, inputs, params| Kernel {
        op,
        inputs,
        params,
        scratch: None,
    };
    match act {
        Act::None | Act::Relu | Act::Clip(..) => {
            let m = is.take(
                quant::relu_multiplier(qi.scale, qo.scale),
                ProblemKind::Dtype,
            );
            let range = is.take(
                quant::act_range(act, qo.scale, qo.zp),
                ProblemKind::Attribute,
            );
            let (Some(m), Some(range)) = (m, range) else {
                return Err(is.0);
            };
            requant_ok("rescaling", m, dev(qi.zp), &mut is);
            let mut params = vec![m.m as u32, m.shift as u32];
            params.extend(range_words(range));
            is.done(|| kernel(OpCode::QRequantize, vec![Operand::Tensor(x)], params))
        }
        Act::Sigmoid | Act::Tanh => {
            let kind = if act == Act::Sigmoid {
                // LiteRT's `SigmoidPrepare` checks the scale for int8 outputs.
                if qo.scale != 1.0 / 256.0 {
                    is.dtype(format!(
                        "an int8 LOGISTIC output must have scale 1/256 (LiteRT requires it); this one has {}",
                        qo.scale
                    ));
                }
                LutKind::Logistic
            } else {
                LutKind::Tanh
            };
            let table = quant::lut(kind, qi.scale, qi.zp, qo.scale, qo.zp);
            is.done(|| {
                kernel(
                    OpCode::QLut,
                    vec![Operand::Tensor(x), Const::vector(&table)],
                    vec![],
                )
            })
        }
        Act::LeakyRelu(alpha) => {
            let Some((identity, scaled)) = is.take(
                quant::leaky_relu_params(qi.scale, qo.scale, alpha),
                ProblemKind::Dtype,
            ) else {
                return Err(is.0);
            };
            let positive = Multiplier {
                m: scaled.m.abs(),
                ..scaled
            };
            if requant_ok("identity", identity, dev(qi.zp), &mut is) {
                requant_ok("alpha", positive, dev(qi.zp), &mut is);
            }
            let params = vec![
                identity.m as u32,
                identity.shift as u32,
                scaled.m as u32,
                scaled.shift as u32,
            ];
            is.done(|| kernel(OpCode::QLeakyRelu, vec![Operand::Tensor(x)], params))
        }
    }
}

/// HARD_SWISH (spec §5.3).
fn hard_swish(g: &Graph, n: &Node) -> Select {
    let mut is = Issues::default();
    let Some((x, qi, qo)) = unary(g, n, &mut is) else {
        return Err(is.0);
    };
    let Some(p) = is.take(
        quant::hard_swish_params(qi.scale, qo.scale),
        ProblemKind::Dtype,
    ) else {
        return Err(is.0);
    };
    is.done(|| Kernel {
        op: OpCode::QHardSwish,
        inputs: vec![Operand::Tensor(x)],
        params: [p.m_output, p.e_output, p.m_reluish, p.e_reluish]
            .map(|v| v as u32)
            .to_vec(),
        scratch: None,
    })
}

/// SOFTMAX over the last axis (spec §5.1).
fn softmax(g: &Graph, n: &Node, start: usize, end: usize, beta: f32) -> Select {
    let mut is = Issues::default();
    let Some((x, qi, qo)) = unary(g, n, &mut is) else {
        return Err(is.0);
    };
    let dims = &g.tensors[x].dims;
    if dims.is_empty() || start + 1 != dims.len() || end != dims.len() {
        is.attribute(format!(
            "an int8 softmax runs over the last axis only; this one runs over axes {start}..{end} of {} axes",
            dims.len()
        ));
    }
    let depth = dims.last().copied().unwrap_or(0);
    if depth > MAX_SOFTMAX_DEPTH {
        is.shape(format!(
            "the softmax rows have {depth} elements; LiteRT's int8 softmax sums at most {MAX_SOFTMAX_DEPTH} exponentials in its Q12.19 accumulator"
        ));
    }
    if qo.zp != -128 || (f64::from(qo.scale) * 256.0 - 1.0).abs() > 1e-3 {
        is.dtype(format!(
            "an int8 softmax output must be quantized with scale 1/256 and zero point -128 (LiteRT requires it), not scale {} zero point {}",
            qo.scale, qo.zp
        ));
    }
    let Some(p) = is.take(quant::softmax_params(beta, qi.scale), ProblemKind::Dtype) else {
        return Err(is.0);
    };
    is.done(|| Kernel {
        op: OpCode::QSoftmax,
        inputs: vec![Operand::Tensor(x)],
        params: [p.m, p.left_shift, p.diff_min].map(|v| v as u32).to_vec(),
        scratch: None,
    })
}

/// AVERAGE_POOL_2D / MAX_POOL_2D (spec §3): NHWC on raw int8 values, so the input
/// and output quantization must agree; the average excludes the padding.
fn pool(
    g: &Graph,
    n: &Node,
    max: bool,
    win: &Window,
    count_include_pad: bool,
    layout: Layout,
) -> Select {
    let mut is = Issues::default();
    let Some((x, qi, qo)) = unary(g, n, &mut is) else {
        return Err(is.0);
    };
    let (xd, yd) = (&g.tensors[x].dims, &g.tensors[n.output].dims);
    if layout != Layout::Nhwc || xd.len() != 4 || yd.len() != 4 {
        return fail(
            ProblemKind::Shape,
            "int8 pooling runs 2-D NHWC; a 1-D (3-D tensor) int8 pool is not supported",
        );
    }
    if qi.zp != qo.zp || (qi.scale - qo.scale).abs() > 1e-6 {
        is.dtype(format!(
            "int8 pooling moves raw values, so the input and output must be quantized alike (TFLite assumes it); here scale {} zero point {} becomes scale {} zero point {}",
            qi.scale, qi.zp, qo.scale, qo.zp
        ));
    }
    if !max && count_include_pad {
        is.attribute(
            "an int8 average pool excludes the padding from the count (TFLite's semantics); `count_include_pad` is not supported",
        );
    }
    if win.kernel[0] * win.kernel[1] > MAX_POOL_TAPS {
        is.shape(format!(
            "the pooling window has {} taps; the int8 kernels take at most {MAX_POOL_TAPS}",
            win.kernel[0] * win.kernel[1]
        ));
    }
    let floor_ok = [(1, 0, 2), (2, 1, 3)].iter().all(|&(axis, p0, p1)| {
        let (len, k, s, d) = (
            xd[axis],
            win.kernel[axis - 1],
            win.strides[axis - 1],
            win.dilations[axis - 1],
        );
        let span = (k - 1) * d + 1;
        let padded = len + win.pads[p0] + win.pads[p1];
        padded >= span && (padded - span) / s + 1 == yd[axis]
    });
    if !floor_ok {
        is.attribute(
            "int8 pooling computes its output size by the floor formula (TFLite's SAME and VALID); `ceil_mode` is not supported",
        );
    } else if !windows_touch_input(xd[1], win, 0, yd[1])
        || !windows_touch_input(xd[2], win, 1, yd[2])
    {
        is.attribute("a pooling window lies entirely in the padding: it has nothing to pool");
    }
    let mut params = window_words(n, win)?;
    params.extend(range_words((-128, 127)));
    is.done(|| Kernel {
        op: if max {
            OpCode::QMaxPool
        } else {
            OpCode::QAveragePool
        },
        inputs: vec![Operand::Tensor(x)],
        params,
        scratch: None,
    })
}

/// True when every one of the `out` windows along `axis` (0 height, 1 width) of an
/// input of length `len` has a tap inside the input.
fn windows_touch_input(len: usize, win: &Window, axis: usize, out: usize) -> bool {
    let (k, s, d, p0) = (
        win.kernel[axis],
        win.strides[axis],
        win.dilations[axis],
        win.pads[axis],
    );
    (0..out).all(|o| {
        (0..k).any(|j| {
            let at = o * s + j * d;
            at >= p0 && at < p0 + len
        })
    })
}

/// MEAN (spec §6.4, LiteRT's integer `QuantizedMeanOrSum`).
fn mean(g: &Graph, n: &Node, mask: u32) -> Select {
    let mut is = Issues::default();
    let Some((x, qi, qo)) = unary(g, n, &mut is) else {
        return Err(is.0);
    };
    let dims = &g.tensors[x].dims;
    let count: usize = dims
        .iter()
        .enumerate()
        .filter(|(d, _)| mask & (1 << d) != 0)
        .map(|(_, &v)| v)
        .product();
    if mask == 0 || count > MAX_MEAN_COUNT {
        is.shape(format!(
            "an int8 mean averages 1 to {MAX_MEAN_COUNT} elements (an exact int32 sum); this one {count}"
        ));
    }
    let Some(m) = is.take(
        quant::mean_multiplier(qi.scale, qo.scale),
        ProblemKind::Dtype,
    ) else {
        return Err(is.0);
    };
    if !m.shift_ok() {
        is.dtype(format!(
            "the mean's multiplier {:e} needs a shift of {}, outside -31..=30",
            m.real(),
            m.shift
        ));
    } else if count <= MAX_MEAN_COUNT && count > 0 {
        // The runtime folds 1/count into the multiplier as LiteRT's `Eval` does;
        // the sum, shifted left by the folded shift when positive, must fit.
        let folded =
            medwasm::kernels::int8::mean::MeanParams::new(m.m, m.shift, count as i32, qi.zp, qo.zp);
        if !fits_i32(count as u64 * dev(qi.zp), folded.shift) {
            is.dtype("the mean's sum may overflow int32 once rescaled: the output scale is too fine for the input's");
        }
    }
    is.done(|| Kernel {
        op: OpCode::QMean,
        inputs: vec![Operand::Tensor(x)],
        params: vec![mask, m.m as u32, m.shift as u32],
        scratch: None,
    })
}

/// QUANTIZE: f32 → int8 (spec §6.1), or int8 → int8 as a requantization (§6.2).
pub(super) fn quantize(g: &Graph, n: &Node) -> Select {
    let mut is = Issues::default();
    let Some(x) = input(n, 0, "input", &mut is) else {
        return Err(is.0);
    };
    let qo = activation(g, n.output, "output", &mut is);
    match g.tensors[x].dtype {
        DType::F32 => is.done(|| Kernel {
            op: OpCode::Quantize,
            inputs: vec![Operand::Tensor(x)],
            params: vec![],
            scratch: None,
        }),
        _ => {
            let qi = activation(g, x, "input", &mut is);
            let (Some(qi), Some(qo)) = (qi, qo) else {
                return Err(is.0);
            };
            let Some(m) = is.take(
                quant::requantize_multiplier(qi.scale, qo.scale),
                ProblemKind::Dtype,
            ) else {
                return Err(is.0);
            };
            requant_ok("requantization", m, dev(qi.zp), &mut is);
            let mut params = vec![m.m as u32, m.shift as u32];
            params.extend(range_words((-128, 127)));
            is.done(|| Kernel {
                op: OpCode::QRequantize,
                inputs: vec![Operand::Tensor(x)],
                params,
                scratch: None,
            })
        }
    }
}

/// DEQUANTIZE: int8 → f32 (spec §6.3).
pub(super) fn dequantize(g: &Graph, n: &Node) -> Select {
    let mut is = Issues::default();
    let Some(x) = input(n, 0, "input", &mut is) else {
        return Err(is.0);
    };
    activation(g, x, "input", &mut is);
    if g.tensors[n.output].dtype != DType::F32 {
        is.dtype("a dequantization produces f32");
    }
    is.done(|| Kernel {
        op: OpCode::Dequantize,
        inputs: vec![Operand::Tensor(x)],
        params: vec![],
        scratch: None,
    })
}

/// An int8 scratch of `elems` elements (the hybrid kernels' quantized input).
pub(super) fn i8_scratch(elems: usize) -> super::Scratch {
    super::Scratch {
        dtype: BlobDType::I8,
        elems,
    }
}

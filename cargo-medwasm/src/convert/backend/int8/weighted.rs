//! CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED (spec §2): int8 weights, int32
//! biases, per-channel multipliers (or LiteRT's f64 scales), and the accumulator
//! bound upstream leaves to chance.

use medwasm::format::{OpCode, Quant as BlobQuant};
use medwasm::kernels::act::Act;

use super::{Issues, dev, fits_i32, input, mult_shift, quantization, range_words};
use crate::convert::ProblemKind;
use crate::convert::backend::{Const, FcRequant, Kernel, Operand, Select, fail, window_words};
use crate::convert::ir::{Data, Graph, Layout, Node, Quant, TensorId, Window};
use crate::convert::quant;

/// The values of constant int8 weights `w`, or the issue.
fn weights<'g>(g: &'g Graph, w: TensorId, issues: &mut Issues) -> Option<&'g [i8]> {
    match &g.tensors[w].data {
        Some(Data::I8(v)) => Some(v),
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
/// or one per-tensor scale; zero points must be 0, except one per-tensor zero point
/// where `per_tensor_zero_point_ok` (LiteRT's fully connected layer applies it).
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
        Some(Data::I32(v)) if v.len() == channels => v.clone(),
        Some(Data::I32(v)) => {
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
pub(super) fn conv(
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
    let qi = quantization(g, x, "input", &mut is);
    let qo = quantization(g, n.output, "output", &mut is);
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
pub(super) fn fully_connected(g: &Graph, n: &Node, act: Act, fc_requant: FcRequant) -> Select {
    let mut is = Issues::default();
    let x = input(n, 0, "input", &mut is);
    let w = input(n, 1, "weights", &mut is);
    let (Some(x), Some(w)) = (x, w) else {
        return Err(is.0);
    };
    let qi = quantization(g, x, "input", &mut is);
    let qo = quantization(g, n.output, "output", &mut is);
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

//! The int8 operators: TFLite's reference kernels, NHWC, with every parameter their
//! `Prepare` computes computed here (spec §2–§6) and every condition upstream
//! leaves undefined (accumulator and shift overflow) refused with a reason.
//!
//! Activations are int8 with per-tensor quantization; convolution weights OHWI or
//! 1HWO, int8, symmetric, per channel or per tensor; biases int32 in the scale of
//! the accumulator; fused activations become the output's clamp range.

mod elementwise;
mod pool;
mod weighted;

use medwasm::format::{DType as BlobDType, OpCode};

use super::{Const, Issue, Kernel, Operand, Options, Select, bug, fail, per_tensor};
use crate::convert::ProblemKind;
use crate::convert::ir::{DType, Graph, Node, Op, TensorId};
use crate::convert::quant::{self, Multiplier};

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
fn quantization(g: &Graph, t: TensorId, what: &str, issues: &mut Issues) -> Option<Q> {
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
        } => weighted::conv(g, n, win, *group, *act, *layout, *depthwise),
        Op::Gemm { act } => weighted::fully_connected(g, n, *act, opts.fc_requant),
        Op::Binary { op, act } => elementwise::binary(g, n, *op, *act),
        Op::Act(act) => elementwise::activation(g, n, *act),
        Op::HardSwish => elementwise::hard_swish(g, n),
        Op::Softmax { start, end, beta } => elementwise::softmax(g, n, *start, *end, *beta),
        Op::Pool {
            max,
            win,
            count_include_pad,
            layout,
        } => pool::pool(g, n, *max, win, *count_include_pad, *layout),
        Op::ReduceMean { mask } => elementwise::mean(g, n, *mask),
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

/// The input and output quantization of an elementwise int8 node.
fn unary(g: &Graph, n: &Node, is: &mut Issues) -> Option<(TensorId, Q, Q)> {
    let x = input(n, 0, "input", is)?;
    let qi = quantization(g, x, "input", is);
    let qo = quantization(g, n.output, "output", is);
    Some((x, qi?, qo?))
}

/// QUANTIZE: f32 → int8 (spec §6.1), or int8 → int8 as a requantization (§6.2).
pub(super) fn quantize(g: &Graph, n: &Node) -> Select {
    let mut is = Issues::default();
    let Some(x) = input(n, 0, "input", &mut is) else {
        return Err(is.0);
    };
    let qo = quantization(g, n.output, "output", &mut is);
    match g.tensors[x].dtype {
        DType::F32 => is.done(|| Kernel {
            op: OpCode::Quantize,
            inputs: vec![Operand::Tensor(x)],
            params: vec![],
            scratch: None,
        }),
        _ => {
            let qi = quantization(g, x, "input", &mut is);
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
    quantization(g, x, "input", &mut is);
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

//! The data movers, for f32 and int8 tensors alike: Copy, Transpose, Concat and Pad
//! move values without reading them, so every input must have the output's element
//! type and quantization (a requantize pass before the back end makes int8 ones
//! agree; see `passes/requantize.rs`).

use medwasm::format::OpCode;
use medwasm::kernels::misc::PadMode;

use super::{Issue, Kernel, Operand, Select, bug, per_tensor, word};
use crate::convert::ProblemKind;
use crate::convert::ir::{DType, Graph, Node, Op, TensorId};

/// The kernel of a data mover.
pub(super) fn select(g: &Graph, n: &Node) -> Select {
    let out = &g.tensors[n.output];
    let mut issues: Vec<Issue> = vec![];
    match out.dtype {
        DType::F32 if out.quant.is_none() => {}
        DType::I8 if per_tensor(out.quant.as_ref()).is_some() => {}
        DType::I8 => issues.push((
            ProblemKind::Dtype,
            "int8 tensors must be quantized per tensor (one scale and zero point); per-axis parameters are for constant weights only".into(),
        )),
        other => issues.push((
            ProblemKind::Dtype,
            format!(
                "moves values of element type {}; the runtime's tensors are f32 only, or int8 with per-tensor quantization",
                other.name()
            ),
        )),
    }
    for &t in n.inputs.iter().flatten() {
        if !same_type(g, t, n.output) {
            let why = if g.tensors[t].dtype == out.dtype {
                "is quantized differently from the output; this operator moves int8 values without requantizing"
            } else {
                "has another element type than the output"
            };
            issues.push((
                ProblemKind::Dtype,
                format!("input `{}` {why}", g.tensors[t].name),
            ));
        }
    }
    let int8 = out.dtype == DType::I8;
    let (op, params) = match &n.op {
        Op::Copy => (OpCode::Copy, vec![]),
        Op::Transpose { perm } => (
            OpCode::Transpose,
            perm.iter().map(|&p| word(n, p)).collect::<Result<_, _>>()?,
        ),
        Op::Concat { axis } => (OpCode::Concat, vec![word(n, *axis)?]),
        Op::Pad { mode, begin, end } => {
            let (m, v) = match *mode {
                // An int8 tensor pads with its zero point, real 0: the only value
                // the format can say for it.
                PadMode::Constant(v) if int8 && v != 0.0 => {
                    issues.push((
                        ProblemKind::Attribute,
                        format!(
                            "an int8 Pad pads with real 0 (the zero point); the constant {v} is not supported"
                        ),
                    ));
                    (0, 0)
                }
                PadMode::Constant(_) if int8 => (0, 0),
                PadMode::Constant(v) => (0, v.to_bits()),
                PadMode::Reflect => (1, 0),
                PadMode::Edge => (2, 0),
            };
            let mut p = vec![m, v];
            for &b in begin.iter().chain(end) {
                p.push(word(n, b)?);
            }
            (OpCode::Pad, p)
        }
        _ => return bug(n, "a computing node reached the data movers"),
    };
    if !issues.is_empty() {
        return Err(issues);
    }
    Ok(Kernel {
        op,
        inputs: n
            .inputs
            .iter()
            .map(|t| t.map_or(Operand::Absent, Operand::Tensor))
            .collect(),
        params,
        scratch: None,
    })
}

/// Same element type and quantization (scale bits and zero point, or none).
pub(super) fn same_type(g: &Graph, a: TensorId, b: TensorId) -> bool {
    let (ta, tb) = (&g.tensors[a], &g.tensors[b]);
    if ta.dtype != tb.dtype {
        return false;
    }
    match (per_tensor(ta.quant.as_ref()), per_tensor(tb.quant.as_ref())) {
        (Some((sa, za)), Some((sb, zb))) => sa.to_bits() == sb.to_bits() && za == zb,
        _ => ta.quant.is_none() && tb.quant.is_none(),
    }
}

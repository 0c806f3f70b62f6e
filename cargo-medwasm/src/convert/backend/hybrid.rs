//! The hybrid (dynamic-range) operators: f32 activations, int8 weights. LiteRT's
//! BUILTIN_REF quantizes each batch of a convolution's input (each row of a fully
//! connected layer's) symmetrically at run time and multiplies int8 by int8
//! (spec §7.1, §7.3); the runtime's HybridConv and HybridFullyConnected do the same
//! for weights with one scale.
//!
//! LiteRT runs another, asymmetric path for per-channel convolutions with
//! distinct scales, for every hybrid depthwise convolution, and for fully connected
//! layers with `asymmetric_quantize_inputs` (spec §7.1–§7.3). The runtime has no
//! kernels for it yet: [`asymmetric`] is the one place that refuses them here (the
//! TFLite frontend refuses `asymmetric_quantize_inputs` itself, in `tflite/fc.rs`,
//! because the IR's Gemm has no field for it).

use medwasm::format::{OpCode, Quant as BlobQuant};

use super::int8::i8_scratch;
use super::{Const, Kernel, Operand, Select, fail, window_words};
use crate::convert::ProblemKind;
use crate::convert::ir::{DType, Data, Graph, Layout, Node, Op, TensorId};

/// The hybrid kernel of `n`: f32 activation, int8 constant weights (input 1).
pub(super) fn select(g: &Graph, n: &Node) -> Select {
    let (Some(x), Some(w)) = (
        n.inputs.first().copied().flatten(),
        n.inputs.get(1).copied().flatten(),
    ) else {
        return fail(ProblemKind::Shape, "the input or the weights are missing");
    };
    if g.tensors[n.output].dtype != DType::F32 || g.tensors[x].quant.is_some() {
        return fail(
            ProblemKind::Dtype,
            "a hybrid operator (int8 weights) takes and returns unquantized f32",
        );
    }
    let Some(Data::I8(data)) = &g.tensors[w].data else {
        return fail(
            ProblemKind::Dtype,
            "the hybrid weights must be an int8 constant",
        );
    };
    if let Some(b) = n.inputs.get(2).copied().flatten()
        && g.tensors[b].f32s().is_none()
    {
        return fail(
            ProblemKind::Dtype,
            "a hybrid operator's bias must be an f32 constant",
        );
    }
    let bias = n
        .inputs
        .get(2)
        .copied()
        .flatten()
        .map_or(Operand::Absent, Operand::Tensor);
    match &n.op {
        Op::Conv {
            win,
            group,
            act,
            layout,
            depthwise,
        } => {
            if *depthwise || *group != 1 {
                return asymmetric(if *depthwise {
                    "a hybrid depthwise convolution"
                } else {
                    "a grouped hybrid convolution"
                });
            }
            let (xd, yd) = (&g.tensors[x].dims, &g.tensors[n.output].dims);
            if *layout != Layout::Nhwc || xd.len() != 4 || yd.len() != 4 {
                return fail(
                    ProblemKind::Shape,
                    "hybrid convolutions run 2-D NHWC; a 1-D one is not supported",
                );
            }
            let wd = &g.tensors[w].dims;
            let want = [yd[3], win.kernel[0], win.kernel[1], xd[3]];
            if wd[..] != want {
                return fail(
                    ProblemKind::Shape,
                    format!("the weights have shape {wd:?} where {want:?} (OHWI) is needed"),
                );
            }
            let scale = weight_scale(g, w)?;
            let taps = want[1] * want[2] * want[3];
            bound(data, taps)?;
            let mut params = window_words(n, win)?;
            params.extend(act.encode());
            Ok(Kernel {
                op: OpCode::HybridConv,
                inputs: vec![Operand::Tensor(x), weights(wd.clone(), data, scale), bias],
                params,
                scratch: Some(i8_scratch(xd[1] * xd[2] * xd[3])),
            })
        }
        Op::Gemm { act } => {
            let [depth, units] = g.tensors[w].dims[..] else {
                return fail(ProblemKind::Shape, "the weights must be [depth, units]");
            };
            let scale = weight_scale(g, w)?;
            // `[units, depth]` rows: row u is column u of the IR's `B [depth, units]`.
            let mut rows = vec![0i8; data.len()];
            for d in 0..depth {
                for u in 0..units {
                    rows[u * depth + d] = data[d * units + u];
                }
            }
            bound(&rows, depth)?;
            Ok(Kernel {
                op: OpCode::HybridFullyConnected,
                inputs: vec![
                    Operand::Tensor(x),
                    weights(vec![units, depth], &rows, scale),
                    bias,
                ],
                params: act.encode().to_vec(),
                scratch: Some(i8_scratch(depth)),
            })
        }
        _ => fail(
            ProblemKind::Dtype,
            format!(
                "{} has int8 weights on f32 activations; only convolutions and fully connected layers run that way (dynamic range)",
                n.op.label()
            ),
        ),
    }
}

/// The refusal of what LiteRT runs on its asymmetric hybrid path: the one place to
/// wire those kernels in when the runtime has them.
fn asymmetric<T>(what: &str) -> Result<T, Vec<super::Issue>> {
    fail(
        ProblemKind::Dtype,
        format!(
            "{what} runs LiteRT's asymmetric dynamic-range path (per-batch asymmetric input quantization), which this runtime does not have yet; convert the model without dynamic-range quantization (float weights) or with full int8 quantization"
        ),
    )
}

/// The one scale of hybrid weights `w`: per tensor, or per channel with every
/// scale equal (LiteRT then runs the symmetric path too); zero points 0.
fn weight_scale(g: &Graph, w: TensorId) -> Result<f32, Vec<super::Issue>> {
    let Some(q) = &g.tensors[w].quant else {
        return fail(
            ProblemKind::Dtype,
            "the int8 weights have no quantization parameters",
        );
    };
    if q.zero_point.iter().any(|&z| z != 0) {
        return fail(
            ProblemKind::Dtype,
            "dynamic-range weights must be symmetric (zero point 0)",
        );
    }
    let Some(&first) = q.scale.first() else {
        return fail(ProblemKind::Dtype, "the int8 weights have no scale");
    };
    if !(first.is_finite() && first > 0.0) {
        return fail(
            ProblemKind::Dtype,
            format!("the weights have scale {first}; scales must be finite and positive"),
        );
    }
    if q.scale.iter().any(|s| s.to_bits() != first.to_bits()) {
        return asymmetric("a hybrid layer with per-channel weight scales");
    }
    Ok(first)
}

/// Refuses weights whose int32 dot products with ±127 inputs could overflow.
fn bound(rows: &[i8], per_row: usize) -> Result<(), Vec<super::Issue>> {
    let worst = rows
        .chunks(per_row.max(1))
        .map(|r| r.iter().map(|&v| u64::from(v.unsigned_abs())).sum::<u64>() * 127)
        .max()
        .unwrap_or(0);
    if worst > i32::MAX as u64 {
        return fail(
            ProblemKind::Dtype,
            format!(
                "an output may overflow its int32 accumulator ({worst}): too many or too large weights (TFLite leaves the overflow undefined)"
            ),
        );
    }
    Ok(())
}

/// The weights as a constant carrying their one scale (the kernel reads it from
/// the record).
fn weights(dims: Vec<usize>, values: &[i8], scale: f32) -> Operand {
    let mut c = Const::of(dims, values);
    c.quant = Some(BlobQuant {
        scale,
        zero_point: 0,
    });
    Operand::Const(c)
}

//! The elementwise int8 operators: ADD, SUB, MUL (spec §4), the standalone
//! activations (RELU family, LOGISTIC, TANH, LEAKY_RELU, HARD_SWISH; §5), SOFTMAX
//! (§5.1) and MEAN (§6.4).

use medwasm::format::OpCode;
use medwasm::kernels::act::Act;
use medwasm::kernels::binary::BinOp;

use super::{Issues, dev, fits_i32, input, quantization, range_words, requant_ok, unary};
use crate::convert::ProblemKind;
use crate::convert::backend::{Const, Kernel, Operand, Select};
use crate::convert::ir::{Graph, Node};
use crate::convert::quant::{self, LutKind, Multiplier};

/// The most elements a MEAN may average.
const MAX_MEAN_COUNT: usize = medwasm::ops::MAX_MEAN_COUNT;
/// The longest softmax row the int8 kernel takes (its Q12.19 sum of up to 511
/// exponentials cannot overflow).
const MAX_SOFTMAX_DEPTH: usize = medwasm::kernels::int8::softmax::MAX_DEPTH;

/// ADD, SUB (spec §4.1–§4.2) → QAdd; MUL (§4.3) → QMul.
pub(super) fn binary(g: &Graph, n: &Node, op: BinOp, act: Act) -> Select {
    let mut is = Issues::default();
    let a = input(n, 0, "first operand", &mut is);
    let b = input(n, 1, "second operand", &mut is);
    let (Some(a), Some(b)) = (a, b) else {
        return Err(is.0);
    };
    let q1 = quantization(g, a, "first operand", &mut is);
    let q2 = quantization(g, b, "second operand", &mut is);
    let qo = quantization(g, n.output, "output", &mut is);
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

/// A standalone activation: the RELU family as a requantization with a clamp
/// (`ReluX`, spec §5.4), LOGISTIC and TANH as LiteRT's lookup tables (§5.2),
/// LEAKY_RELU (§5.5).
pub(super) fn activation(g: &Graph, n: &Node, act: Act) -> Select {
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
pub(super) fn hard_swish(g: &Graph, n: &Node) -> Select {
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
pub(super) fn softmax(g: &Graph, n: &Node, start: usize, end: usize, beta: f32) -> Select {
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

/// MEAN (spec §6.4, LiteRT's integer `QuantizedMeanOrSum`).
pub(super) fn mean(g: &Graph, n: &Node, mask: u32) -> Select {
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

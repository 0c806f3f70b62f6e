//! Elementwise operators: broadcasting arithmetic (folded when both operands are
//! constants), activations and Softmax.

use medwasm::kernels::act::Act;
use medwasm::kernels::binary::{BinOp, broadcast};

use super::{Cx, OnnxNode, OpDef, R, norm_axis, shape_err, unsupported};
use crate::convert::ProblemKind;
use crate::convert::ir::{Data, Op, Tensor};

/// Attributes of the arithmetic ops: `axis` and `broadcast` are the opset < 7
/// broadcasting rules, `consumed_inputs` an opset < 6 memory hint.
const BINARY_ATTRS: &[&str] = &["axis", "broadcast", "consumed_inputs"];

pub(super) const OPS: &[OpDef] = &[
    OpDef {
        op: "Add",
        attrs: BINARY_ATTRS,
        translate: binary,
    },
    OpDef {
        op: "Sub",
        attrs: BINARY_ATTRS,
        translate: binary,
    },
    OpDef {
        op: "Mul",
        attrs: BINARY_ATTRS,
        translate: binary,
    },
    OpDef {
        op: "Div",
        attrs: BINARY_ATTRS,
        translate: binary,
    },
    OpDef {
        op: "Relu",
        attrs: &["consumed_inputs"],
        translate: activation,
    },
    OpDef {
        op: "LeakyRelu",
        attrs: &["alpha", "consumed_inputs"],
        translate: activation,
    },
    OpDef {
        op: "Sigmoid",
        attrs: &["consumed_inputs"],
        translate: activation,
    },
    OpDef {
        op: "Tanh",
        attrs: &["consumed_inputs"],
        translate: activation,
    },
    OpDef {
        op: "Clip",
        attrs: &["min", "max", "consumed_inputs"],
        translate: activation,
    },
    OpDef {
        op: "Softmax",
        attrs: &["axis"],
        translate: softmax,
    },
];

fn binary(cx: &mut Cx, n: &OnnxNode<'_>) -> R<()> {
    let (ai, bi) = (n.input(0, "A")?, n.input(1, "B")?);
    let op = match n.op {
        "Add" => BinOp::Add,
        "Sub" => BinOp::Sub,
        "Mul" => BinOp::Mul,
        _ => BinOp::Div,
    };
    let (at, bt) = (cx.t(ai).clone(), cx.t(bi).clone());
    legacy_broadcast(n, &at.dims, &bt.dims)?;
    let ad = medwasm::Dims::from_slice(&at.dims)
        .ok_or((ProblemKind::Shape, "rank above 6".to_string()))?;
    let bd = medwasm::Dims::from_slice(&bt.dims)
        .ok_or((ProblemKind::Shape, "rank above 6".to_string()))?;
    let Some(yd) = broadcast(&ad, &bd) else {
        return shape_err(format!(
            "shapes {:?} and {:?} do not broadcast",
            at.dims, bt.dims
        ));
    };
    if at.is_const() && bt.is_const() {
        let out = fold_binary(op, &at, &bt, &yd)?;
        cx.define(n, 0, out)?;
        return Ok(());
    }
    if at.dtype.is_int() || bt.dtype.is_int() {
        return unsupported("integer arithmetic at run time is not supported");
    }
    cx.emit(
        n,
        Op::Binary { op, act: Act::None },
        vec![Some(ai), Some(bi)],
        yd.as_slice().to_vec(),
    )?;
    Ok(())
}

/// Opset < 7 broadcasting: `broadcast=1` aligns B at `axis` of A. That is NumPy's
/// rule only where `axis` puts B's last dimension under A's last one; anything else
/// is refused rather than computed with the wrong alignment.
fn legacy_broadcast(n: &OnnxNode<'_>, a: &[usize], b: &[usize]) -> R<()> {
    let Some(axis) = n.attrs.int("axis")? else {
        return Ok(());
    };
    if n.attrs.int("broadcast")?.unwrap_or(0) != 0 && axis != (a.len() as i64 - b.len() as i64) {
        return unsupported(format!(
            "legacy broadcasting with `axis={axis}` of a {}-D B under a {}-D A is not supported; upgrade the model to opset 7 or later (onnx.version_converter)",
            b.len(),
            a.len()
        ));
    }
    Ok(())
}

/// Folds arithmetic on two constants.
fn fold_binary(op: BinOp, a: &Tensor, b: &Tensor, yd: &medwasm::Dims) -> R<Tensor> {
    let dims = yd.as_slice().to_vec();
    if let (Some(ai), Some(bi)) = (a.ints(), b.ints()) {
        // Shape arithmetic: keep integers exact.
        let n = yd.elements();
        let get = |v: &[i64], i: usize| if v.len() == 1 { v[0] } else { v[i % v.len()] };
        let out = (0..n)
            .map(|i| {
                let (x, y) = (get(&ai, i), get(&bi, i));
                match op {
                    BinOp::Add => x + y,
                    BinOp::Sub => x - y,
                    BinOp::Mul => x * y,
                    BinOp::Div => {
                        if y == 0 {
                            0
                        } else {
                            x / y
                        }
                    }
                }
            })
            .collect();
        return Ok(Tensor::constant("", dims, Data::I64(out)));
    }
    let ad = medwasm::Dims::from_slice(&a.dims).unwrap_or(medwasm::Dims::scalar());
    let bd = medwasm::Dims::from_slice(&b.dims).unwrap_or(medwasm::Dims::scalar());
    let to_f32 = |t: &Tensor| t.data.as_ref().map(Data::to_f32).unwrap_or_default();
    let mut out = vec![0f32; yd.elements()];
    medwasm::kernels::binary::binary(op, &to_f32(a), &ad, &to_f32(b), &bd, &mut out, yd);
    Ok(Tensor::constant("", dims, Data::F32(out)))
}

fn activation(cx: &mut Cx, n: &OnnxNode<'_>) -> R<()> {
    let a = &n.attrs;
    let x = n.input(0, "X")?;
    let act = match n.op {
        "Relu" => Act::Relu,
        "LeakyRelu" => Act::LeakyRelu(a.float("alpha")?.unwrap_or(0.01)),
        "Sigmoid" => Act::Sigmoid,
        "Tanh" => Act::Tanh,
        _ => {
            // Clip: attributes before opset 11, constant inputs from it.
            let (lo, hi) = if cx.opset < 11 {
                (
                    a.float("min")?.unwrap_or(f32::NEG_INFINITY),
                    a.float("max")?.unwrap_or(f32::INFINITY),
                )
            } else {
                (
                    cx.opt_const_f32(n, 1, "min")?.unwrap_or(f32::NEG_INFINITY),
                    cx.opt_const_f32(n, 2, "max")?.unwrap_or(f32::INFINITY),
                )
            };
            if lo.is_nan() || hi.is_nan() || lo > hi {
                return unsupported(format!("Clip bounds [{lo}, {hi}] are not a valid range"));
            }
            Act::Clip(lo, hi)
        }
    };
    let dims = cx.t(x).dims.clone();
    let x = if cx.t(x).is_const() {
        cx.materialize(n, x)
    } else {
        x
    };
    cx.emit(n, Op::Act(act), vec![Some(x)], dims)?;
    Ok(())
}

fn softmax(cx: &mut Cx, n: &OnnxNode<'_>) -> R<()> {
    let x = n.input(0, "X")?;
    let r = cx.t(x).dims.len();
    // Opset < 13 coerces the input to 2-D at `axis`; opset 13 normalizes one axis.
    let (start, end) = if cx.opset < 13 {
        (norm_axis(n.attrs.int("axis")?.unwrap_or(1), r)?, r)
    } else {
        let ax = norm_axis(n.attrs.int("axis")?.unwrap_or(-1), r)?;
        (ax, ax + 1)
    };
    let dims = cx.t(x).dims.clone();
    cx.emit(n, Op::Softmax { start, end }, vec![Some(x)], dims)?;
    Ok(())
}

//! Elementwise operators: broadcasting arithmetic (folded when both operands are
//! constants), activations and Softmax.

use medwasm::kernels::act::Act;
use medwasm::kernels::binary::{BinOp, broadcast};

use super::{Cx, OnnxNode, OpDef, R, norm_axis, shape_err, unsupported};
use crate::convert::ProblemKind;
use crate::convert::ir::{DType, Data, Op, Tensor};

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
        // Checked before the folding allocates the result.
        let dtype = if at.is_int_const() && bt.is_int_const() {
            DType::I64
        } else {
            DType::F32
        };
        cx.check_fits(n, 0, yd.as_slice(), dtype)?;
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

/// Folds arithmetic on two constants. Integers stay exact: an overflow or a
/// division by zero is an error, never a wrapped or made-up value.
fn fold_binary(op: BinOp, a: &Tensor, b: &Tensor, yd: &medwasm::Dims) -> R<Tensor> {
    let dims = yd.as_slice().to_vec();
    if let (Some(ai), Some(bi)) = (a.ints(), b.ints()) {
        let (ia, ib) = (
            broadcast_indices(&a.dims, &dims),
            broadcast_indices(&b.dims, &dims),
        );
        let mut out = Vec::with_capacity(ia.len());
        for (&i, &j) in ia.iter().zip(&ib) {
            let (x, y) = (ai[i], bi[j]);
            let v = match op {
                BinOp::Add => x.checked_add(y),
                BinOp::Sub => x.checked_sub(y),
                BinOp::Mul => x.checked_mul(y),
                BinOp::Div if y == 0 => {
                    return shape_err(format!("constant integer division by zero ({x} / {y})"));
                }
                BinOp::Div => x.checked_div(y),
            };
            out.push(v.ok_or_else(|| {
                (
                    ProblemKind::Shape,
                    format!(
                        "constant integer arithmetic overflows i64 ({x} {} {y})",
                        symbol(op)
                    ),
                )
            })?);
        }
        // ONNX requires both operands to have one type; keep it (i64 if they differ).
        let dtype = if a.dtype == b.dtype {
            a.dtype
        } else {
            DType::I64
        };
        let data = Data::from_i64(dtype, out).map_err(|e| {
            (
                ProblemKind::Shape,
                format!("constant integer arithmetic overflows: {e}"),
            )
        })?;
        return Ok(Tensor::constant("", dims, data));
    }
    let ad = medwasm::Dims::from_slice(&a.dims).unwrap_or(medwasm::Dims::scalar());
    let bd = medwasm::Dims::from_slice(&b.dims).unwrap_or(medwasm::Dims::scalar());
    let to_f32 = |t: &Tensor| t.data.as_ref().map(Data::to_f32).unwrap_or_default();
    let mut out = vec![0f32; yd.elements()];
    medwasm::kernels::binary::binary(op, &to_f32(a), &ad, &to_f32(b), &bd, &mut out, yd);
    Ok(Tensor::constant("", dims, Data::F32(out)))
}

fn symbol(op: BinOp) -> char {
    match op {
        BinOp::Add => '+',
        BinOp::Sub => '-',
        BinOp::Mul => '*',
        BinOp::Div => '/',
    }
}

/// For each element of a tensor of shape `out`, the index of the element of a
/// tensor of shape `dims` that NumPy broadcasting reads (dims aligned at the end,
/// size-1 dims repeated).
fn broadcast_indices(dims: &[usize], out: &[usize]) -> Vec<usize> {
    let r = out.len();
    // Strides of `dims` aligned to `out`, 0 where the dimension is broadcast.
    let mut stride = vec![0usize; r];
    let mut s = 1;
    for (k, &d) in dims.iter().enumerate().rev() {
        let axis = r - dims.len() + k;
        if d != 1 {
            stride[axis] = s;
        }
        s *= d;
    }
    let total: usize = out.iter().product();
    let mut idx = vec![0usize; r];
    let mut v = Vec::with_capacity(total);
    for _ in 0..total {
        v.push(idx.iter().zip(&stride).map(|(i, s)| i * s).sum());
        for a in (0..r).rev() {
            idx[a] += 1;
            if idx[a] < out[a] {
                break;
            }
            idx[a] = 0;
        }
    }
    v
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
    cx.emit(
        n,
        Op::Softmax {
            start,
            end,
            beta: 1.0,
        },
        vec![Some(x)],
        dims,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use medwasm::kernels::binary::{BinOp, broadcast};

    use super::{broadcast_indices, fold_binary};
    use crate::convert::ir::{Data, Tensor};

    fn fold(op: BinOp, a: Tensor, b: Tensor) -> Result<Tensor, String> {
        let ad = medwasm::Dims::from_slice(&a.dims).unwrap();
        let bd = medwasm::Dims::from_slice(&b.dims).unwrap();
        let yd = broadcast(&ad, &bd).unwrap();
        fold_binary(op, &a, &b, &yd).map_err(|(_, m)| m)
    }

    fn i64s(dims: &[usize], v: &[i64]) -> Tensor {
        Tensor::constant("", dims.to_vec(), Data::I64(v.to_vec()))
    }

    #[test]
    fn integer_folding_broadcasts_like_numpy() {
        // [[10], [20]] + [[1, 2, 3]] = [[11, 12, 13], [21, 22, 23]]
        let y = fold(
            BinOp::Add,
            i64s(&[2, 1], &[10, 20]),
            i64s(&[1, 3], &[1, 2, 3]),
        )
        .unwrap();
        assert_eq!(y.dims, [2, 3]);
        assert_eq!(y.data, Some(Data::I64(vec![11, 12, 13, 21, 22, 23])));
        assert_eq!(broadcast_indices(&[3], &[2, 3]), [0, 1, 2, 0, 1, 2]);
        assert_eq!(broadcast_indices(&[2, 1], &[2, 3]), [0, 0, 0, 1, 1, 1]);
        assert_eq!(broadcast_indices(&[], &[2]), [0, 0]);
    }

    #[test]
    fn integer_folding_refuses_overflow_and_division_by_zero() {
        let err = fold(BinOp::Mul, i64s(&[1], &[i64::MAX]), i64s(&[1], &[2])).unwrap_err();
        assert!(err.contains("overflows i64"), "{err}");
        let err = fold(BinOp::Div, i64s(&[1], &[i64::MIN]), i64s(&[1], &[-1])).unwrap_err();
        assert!(err.contains("overflows i64"), "{err}");
        let err = fold(BinOp::Div, i64s(&[1], &[7]), i64s(&[1], &[0])).unwrap_err();
        assert!(err.contains("division by zero"), "{err}");
        // Two i32 operands give i32: a sum past i32::MAX does not fit.
        let i32s = |v| Tensor::constant("", vec![1], Data::I32(vec![v]));
        let err = fold(BinOp::Add, i32s(i32::MAX), i32s(1)).unwrap_err();
        assert!(err.contains("does not fit in i32"), "{err}");
        let y = fold(BinOp::Div, i64s(&[2], &[-7, 7]), i64s(&[1], &[2])).unwrap();
        assert_eq!(
            y.data,
            Some(Data::I64(vec![-3, 3])),
            "truncates toward zero"
        );
    }
}

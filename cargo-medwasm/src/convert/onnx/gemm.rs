//! Matrix products: Gemm and MatMul, both run as the runtime's Gemm with constant
//! `[K, N]` weights.

use medwasm::kernels::act::Act;

use super::{Cx, OnnxNode, OpDef, R, shape_err, unsupported};
use crate::convert::ProblemKind;
use crate::convert::ir::{Data, Op, Quant, Tensor, TensorId};

pub(super) const OPS: &[OpDef] = &[
    OpDef {
        op: "Gemm",
        // `broadcast` (opset < 7) allowed C to broadcast; C's shape is checked below
        // whatever it says.
        attrs: &["alpha", "beta", "transA", "transB", "broadcast"],
        translate: gemm,
    },
    OpDef {
        op: "MatMul",
        attrs: &[],
        translate: matmul,
    },
];

/// The f32 values of constant weights `id`, or why they cannot be used.
fn f32_weights(cx: &Cx, id: TensorId, what: &str, op: &str) -> R<Vec<f32>> {
    let t = cx.t(id);
    match (t.f32s(), &t.data) {
        (Some(v), _) => Ok(v.to_vec()),
        (None, Some(d)) => Err((
            ProblemKind::Dtype,
            format!(
                "{op} with {what} of element type {}: float32 weights are needed (int8 weights through a `DequantizeLinear`, or a QLinearMatMul)",
                d.dtype().name()
            ),
        )),
        (None, None) => unsupported(format!("{op} with a non-constant {what} is not supported")),
    }
}

fn gemm(cx: &mut Cx, n: &OnnxNode<'_>) -> R<()> {
    let a = &n.attrs;
    let (ai, bi) = (n.input(0, "A")?, n.input(1, "B")?);
    let (ta, tb) = (
        a.int("transA")?.unwrap_or(0) != 0,
        a.int("transB")?.unwrap_or(0) != 0,
    );
    let (alpha, beta) = (
        a.float("alpha")?.unwrap_or(1.0),
        a.float("beta")?.unwrap_or(1.0),
    );
    if ta {
        return unsupported("`transA=1` is not supported; transpose A before the Gemm");
    }
    let at = cx.t(ai).clone();
    let bt = cx.t(bi).clone();
    if at.dims.len() != 2 || bt.dims.len() != 2 {
        return shape_err(format!(
            "Gemm needs 2-D A and B, got {:?} and {:?}",
            at.dims, bt.dims
        ));
    }
    let bdata = f32_weights(cx, bi, "B", "Gemm")?;
    let (k, cols) = if tb {
        (bt.dims[1], bt.dims[0])
    } else {
        (bt.dims[0], bt.dims[1])
    };
    if at.dims[1] != k {
        return shape_err(format!("A is {:?} but B gives K = {k}", at.dims));
    }
    let m = at.dims[0];
    // Fold alpha and a transposed B into one `[K, N]` constant.
    let mut w = vec![0f32; k * cols];
    for kk in 0..k {
        for c in 0..cols {
            let v = if tb {
                bdata[c * k + kk]
            } else {
                bdata[kk * cols + c]
            };
            w[kk * cols + c] = alpha * v;
        }
    }
    let wid = cx.g.add_tensor(Tensor::constant(
        format!("{}.B", n.name),
        vec![k, cols],
        Data::F32(w),
    ));
    if alpha == 1.0 {
        // Dequantized int8 weights keep their original, laid out `[K, N]` alike: a
        // per-axis quantization along N moves with it (axis 0 of a transposed B).
        cx.q.derive(&mut cx.g, bi, wid, |q| {
            let data = q.data.as_ref()?;
            let idx: Vec<usize> = (0..k)
                .flat_map(|kk| (0..cols).map(move |c| if tb { c * k + kk } else { kk * cols + c }))
                .collect();
            let quant = q.quant.clone().map(|qq| Quant {
                axis: qq.axis.map(|a| if tb { 1 - a } else { a }),
                ..qq
            });
            Some(Tensor {
                quant,
                ..Tensor::constant(q.name.clone(), vec![k, cols], data.select(&idx))
            })
        });
    }
    let bias = match n.opt_input(2) {
        Some(c) if beta != 0.0 => {
            let ct = cx.t(c).clone();
            let cd = f32_weights(cx, c, "C", "Gemm")?;
            let per_col = match ct.dims.as_slice() {
                [] | [1] | [1, 1] => vec![cd[0] * beta; cols],
                [x] | [1, x] if *x == cols => cd.iter().map(|v| v * beta).collect(),
                _ if m == 1 && ct.len() == cols => cd.iter().map(|v| v * beta).collect(),
                d => {
                    return shape_err(format!(
                        "bias C of shape {d:?} does not broadcast per column"
                    ));
                }
            };
            let cid = cx.g.add_tensor(Tensor::constant(
                format!("{}.C", n.name),
                vec![cols],
                Data::F32(per_col),
            ));
            if beta == 1.0 {
                // A dequantized int32 bias keeps its original, one value per column.
                let broadcast = ct.len() == 1;
                cx.q.derive(&mut cx.g, c, cid, |q| {
                    let idx: Vec<usize> =
                        (0..cols).map(|i| if broadcast { 0 } else { i }).collect();
                    let data = q.data.as_ref()?.select(&idx);
                    let quant = q.quant.clone().map(|qq| Quant {
                        axis: qq.axis.map(|_| 0),
                        ..qq
                    });
                    Some(Tensor {
                        quant,
                        ..Tensor::constant(q.name.clone(), vec![cols], data)
                    })
                });
            }
            Some(cid)
        }
        _ => None,
    };
    let x = if at.is_const() {
        cx.materialize(n, ai)
    } else {
        ai
    };
    cx.emit(
        n,
        Op::Gemm { act: Act::None },
        vec![Some(x), Some(wid), bias],
        vec![m, cols],
    )?;
    Ok(())
}

fn matmul(cx: &mut Cx, n: &OnnxNode<'_>) -> R<()> {
    let (ai, bi) = (n.input(0, "A")?, n.input(1, "B")?);
    let at = cx.t(ai).clone();
    let bt = cx.t(bi).clone();
    f32_weights(cx, bi, "second operand", "MatMul")?;
    if bt.dims.len() != 2 {
        return unsupported(format!(
            "MatMul with a {}-D constant is not supported (2-D only)",
            bt.dims.len()
        ));
    }
    if at.dims.is_empty() || at.dims[at.dims.len() - 1] != bt.dims[0] {
        return shape_err(format!(
            "MatMul shapes {:?} and {:?} disagree",
            at.dims, bt.dims
        ));
    }
    let mut dims = at.dims.clone();
    let last = dims.len() - 1;
    dims[last] = bt.dims[1];
    let x = if at.is_const() {
        cx.materialize(n, ai)
    } else {
        ai
    };
    cx.emit(
        n,
        Op::Gemm { act: Act::None },
        vec![Some(x), Some(bi), None],
        dims,
    )?;
    Ok(())
}

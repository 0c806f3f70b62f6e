//! MEAN and SOFTMAX.

use super::schema_generated::tflite as fb;
use super::{Cx, Kind, OpDef, R, TfNode, dtype_err, norm_axis, opt, shape_err, unsupported};
use crate::convert::ir::Op;

pub(super) const OPS: &[OpDef] = &[
    OpDef {
        code: fb::BuiltinOperator::Mean,
        name: "MEAN",
        translate: mean,
    },
    OpDef {
        code: fb::BuiltinOperator::Softmax,
        name: "SOFTMAX",
        translate: softmax,
    },
];

fn mean(cx: &mut Cx<'_>, n: &TfNode<'_>) -> R<()> {
    n.arity(2)?;
    let keep = match &n.options {
        Some(fb::BuiltinOptionsRef::ReducerOptions(o)) => opt(o.keep_dims())?,
        None => false,
        Some(_) => return unsupported("options of another operator than ReducerOptions"),
    };
    let (x, y) = (n.input(0, "input")?, n.outputs[0]);
    cx.kind(x, None, y)?;
    let dims = cx.ft(x).shape.clone();
    if dims.len() > medwasm::format::MAX_RANK {
        return shape_err(format!(
            "rank {} above {}",
            dims.len(),
            medwasm::format::MAX_RANK
        ));
    }
    let axes = cx.const_ints(n, 1, "axis")?;
    if axes.is_empty() {
        return unsupported("MEAN over no axis is not supported");
    }
    let mut mask = 0u32;
    for a in axes {
        mask |= 1 << norm_axis(a, dims.len())?;
    }
    let out = dims
        .iter()
        .enumerate()
        .filter_map(|(d, &v)| {
            if mask & (1 << d) != 0 {
                keep.then_some(1)
            } else {
                Some(v)
            }
        })
        .collect();
    let xi = cx.input(n, 0, "input")?;
    cx.emit(n, Op::ReduceMean { mask }, vec![Some(xi)], out)?;
    Ok(())
}

fn softmax(cx: &mut Cx<'_>, n: &TfNode<'_>) -> R<()> {
    n.arity(1)?;
    let beta = match &n.options {
        Some(fb::BuiltinOptionsRef::SoftmaxOptions(o)) => opt(o.beta())?,
        _ => return unsupported("SOFTMAX without SoftmaxOptions"),
    };
    if !beta.is_finite() {
        return unsupported(format!("`beta` {beta} must be finite"));
    }
    let (x, y) = (n.input(0, "input")?, n.outputs[0]);
    if cx.kind(x, None, y)? == Kind::Int8 {
        // LiteRT's int8 softmax writes probabilities in steps of 1/256 from −128.
        let Some(q) = cx.ft(y).quant.clone() else {
            return dtype_err("the int8 output has no quantization parameters");
        };
        let (s, z) = (q.scale[0], q.zero_point[0]);
        if z != -128 || ((s as f64) * 256.0 - 1.0).abs() > 1e-3 {
            return dtype_err(format!(
                "an int8 softmax output must be quantized with scale 1/256 and zero point -128, not scale {s} zero point {z}"
            ));
        }
    }
    let dims = cx.ft(x).shape.clone();
    if dims.is_empty() {
        return shape_err("SOFTMAX of a scalar");
    }
    let xi = cx.input(n, 0, "input")?;
    let r = dims.len();
    cx.emit(
        n,
        Op::Softmax {
            start: r - 1,
            end: r,
            beta,
        },
        vec![Some(xi)],
        dims,
    )?;
    Ok(())
}

//! Operators that move values: RESHAPE, SQUEEZE, EXPAND_DIMS (a Copy to a new
//! shape), CONCATENATION, PAD and TRANSPOSE. On int8 tensors none requantizes, so
//! input and output quantization must agree (LiteRT only assumes it).

use medwasm::kernels::misc::PadMode;

use super::schema_generated::tflite as fb;
use super::{Cx, Kind, OpDef, R, TfNode, fused_act, norm_axis, opt, shape_err, unsupported};
use crate::convert::ir::Op;

pub(super) const OPS: &[OpDef] = &[
    OpDef {
        code: fb::BuiltinOperator::Reshape,
        name: "RESHAPE",
        translate: reshape,
    },
    OpDef {
        code: fb::BuiltinOperator::Squeeze,
        name: "SQUEEZE",
        translate: squeeze,
    },
    OpDef {
        code: fb::BuiltinOperator::ExpandDims,
        name: "EXPAND_DIMS",
        translate: expand_dims,
    },
    OpDef {
        code: fb::BuiltinOperator::Concatenation,
        name: "CONCATENATION",
        translate: concatenation,
    },
    OpDef {
        code: fb::BuiltinOperator::Pad,
        name: "PAD",
        translate: pad,
    },
    OpDef {
        code: fb::BuiltinOperator::Transpose,
        name: "TRANSPOSE",
        translate: transpose,
    },
];

/// Checks that `x` → `y` only moves values: same kind, same quantization.
fn moves(cx: &Cx<'_>, x: usize, y: usize) -> R<()> {
    if cx.kind(x, None, y)? == Kind::Int8 {
        cx.same_quant(x, y)?;
    }
    Ok(())
}

/// Emits a Copy of input 0 of `n` to `dims`.
fn copy_to(cx: &mut Cx<'_>, n: &TfNode<'_>, dims: Vec<usize>) -> R<()> {
    let (x, y) = (n.input(0, "input")?, n.outputs[0]);
    moves(cx, x, y)?;
    let have: usize = cx.ft(x).shape.iter().product();
    if dims.iter().product::<usize>() != have {
        return shape_err(format!(
            "{:?} cannot become {dims:?}: element counts differ",
            cx.ft(x).shape
        ));
    }
    let xi = cx.input(n, 0, "input")?;
    cx.emit(n, Op::Copy, vec![Some(xi)], dims)?;
    Ok(())
}

fn reshape(cx: &mut Cx<'_>, n: &TfNode<'_>) -> R<()> {
    n.arity(2)?;
    let x = n.input(0, "input")?;
    let have: usize = cx.ft(x).shape.iter().product();
    // The new shape: the `shape` input, else `ReshapeOptions.new_shape`, else the
    // output's declared shape (a shape computed at run time in a static model).
    let asked: Option<Vec<i64>> = match (n.opt_input(1), &n.options) {
        (Some(s), _) if cx.ft(s).data.is_some() => Some(cx.const_ints(n, 1, "shape")?),
        (_, Some(fb::BuiltinOptionsRef::ReshapeOptions(o))) => {
            opt(o.new_shape())?.map(|v| v.iter().map(i64::from).collect())
        }
        (_, None) => None,
        _ => return unsupported("options of another operator than ReshapeOptions"),
    };
    let dims = match asked {
        Some(shape) => resolve(&shape, have)?,
        None => cx.ft(n.outputs[0]).shape.clone(),
    };
    copy_to(cx, n, dims)
}

/// A shape with at most one −1, which takes what the others leave of `count`.
fn resolve(shape: &[i64], count: usize) -> R<Vec<usize>> {
    let known: Option<usize> = shape
        .iter()
        .filter(|&&d| d != -1)
        .try_fold(1usize, |p, &d| p.checked_mul(usize::try_from(d).ok()?));
    let wild = shape.iter().filter(|&&d| d == -1).count();
    match (known, wild) {
        (Some(_), 0) => Ok(shape.iter().map(|&d| d as usize).collect()),
        (Some(k), 1) if k > 0 && count.is_multiple_of(k) => Ok(shape
            .iter()
            .map(|&d| if d == -1 { count / k } else { d as usize })
            .collect()),
        _ => shape_err(format!(
            "new shape {shape:?} does not fit {count} elements (one -1 at most, other sizes positive)"
        )),
    }
}

fn squeeze(cx: &mut Cx<'_>, n: &TfNode<'_>) -> R<()> {
    n.arity(1)?;
    let x = n.input(0, "input")?;
    let dims = cx.ft(x).shape.clone();
    let axes: Vec<i64> = match &n.options {
        Some(fb::BuiltinOptionsRef::SqueezeOptions(o)) => opt(o.squeeze_dims())?
            .map(|v| v.iter().map(i64::from).collect())
            .unwrap_or_default(),
        None => vec![],
        Some(_) => return unsupported("options of another operator than SqueezeOptions"),
    };
    let mut drop = vec![false; dims.len()];
    if axes.is_empty() {
        // No axes: every size-1 axis goes.
        for (d, &v) in dims.iter().enumerate() {
            drop[d] = v == 1;
        }
    } else {
        for a in axes {
            let d = norm_axis(a, dims.len())?;
            if dims[d] != 1 {
                return shape_err(format!(
                    "axis {a} has size {}; only size-1 axes can be squeezed",
                    dims[d]
                ));
            }
            drop[d] = true;
        }
    }
    let out = dims
        .iter()
        .zip(&drop)
        .filter(|(_, d)| !**d)
        .map(|(&v, _)| v)
        .collect();
    copy_to(cx, n, out)
}

fn expand_dims(cx: &mut Cx<'_>, n: &TfNode<'_>) -> R<()> {
    n.arity(2)?;
    let x = n.input(0, "input")?;
    let mut dims = cx.ft(x).shape.clone();
    let axis = match cx.const_ints(n, 1, "axis")?[..] {
        [a] => a,
        ref v => return shape_err(format!("`axis` {v:?} must be one value")),
    };
    // Axis −1 appends: the axis is counted in the output's rank.
    let a = norm_axis(axis, dims.len() + 1)?;
    dims.insert(a, 1);
    copy_to(cx, n, dims)
}

fn concatenation(cx: &mut Cx<'_>, n: &TfNode<'_>) -> R<()> {
    let o = match &n.options {
        Some(fb::BuiltinOptionsRef::ConcatenationOptions(o)) => o,
        _ => return unsupported("CONCATENATION without ConcatenationOptions"),
    };
    if fused_act(opt(o.fused_activation_function())?)? != medwasm::kernels::act::Act::None {
        return unsupported(
            "a fused activation on CONCATENATION is not supported (LiteRT refuses it)",
        );
    }
    if n.outputs.len() != 1 || n.inputs.is_empty() {
        return shape_err("CONCATENATION needs inputs and one output");
    }
    let y = n.outputs[0];
    let first = n.input(0, "input 0")?;
    let rank = cx.ft(first).shape.len();
    let axis = norm_axis(i64::from(opt(o.axis())?), rank)?;
    let mut dims = cx.ft(first).shape.clone();
    dims[axis] = 0;
    let mut ins = vec![];
    for k in 0..n.inputs.len() {
        let x = n.input(k, "input")?;
        moves(cx, x, y)?;
        let d = &cx.ft(x).shape;
        let fits = d.len() == rank
            && d.iter()
                .zip(&cx.ft(first).shape)
                .enumerate()
                .all(|(i, (a, b))| i == axis || a == b);
        if !fits {
            return shape_err(format!(
                "input {k} {d:?} does not fit input 0 {:?} outside axis {axis}",
                cx.ft(first).shape
            ));
        }
        dims[axis] += d[axis];
        ins.push(Some(cx.input(n, k, "input")?));
    }
    cx.emit(n, Op::Concat { axis }, ins, dims)?;
    Ok(())
}

fn pad(cx: &mut Cx<'_>, n: &TfNode<'_>) -> R<()> {
    n.arity(2)?;
    if !matches!(n.options, None | Some(fb::BuiltinOptionsRef::PadOptions(_))) {
        return unsupported("options of another operator than PadOptions");
    }
    let (x, y) = (n.input(0, "input")?, n.outputs[0]);
    moves(cx, x, y)?;
    let dims = cx.ft(x).shape.clone();
    let p = cx.const_ints(n, 1, "paddings")?;
    let pt = cx.ft(n.input(1, "paddings")?).shape.clone();
    if pt != [dims.len(), 2] {
        return shape_err(format!(
            "`paddings` has shape {pt:?}, not [{}, 2]",
            dims.len()
        ));
    }
    let as_pad = |v: i64| -> R<usize> {
        usize::try_from(v)
            .ok()
            .filter(|&v| v < 1 << 24)
            .ok_or_else(|| {
                (
                    crate::convert::ProblemKind::Attribute,
                    format!("padding {v} must be non-negative and below 2^24"),
                )
            })
    };
    let begin: Vec<usize> = (0..dims.len())
        .map(|d| as_pad(p[2 * d]))
        .collect::<R<_>>()?;
    let end: Vec<usize> = (0..dims.len())
        .map(|d| as_pad(p[2 * d + 1]))
        .collect::<R<_>>()?;
    let out = dims
        .iter()
        .zip(begin.iter().zip(&end))
        .map(|(&d, (&b, &e))| d + b + e)
        .collect();
    let xi = cx.input(n, 0, "input")?;
    // Real zero: the output zero point of an int8 tensor.
    cx.emit(
        n,
        Op::Pad {
            mode: PadMode::Constant(0.0),
            begin,
            end,
        },
        vec![Some(xi)],
        out,
    )?;
    Ok(())
}

fn transpose(cx: &mut Cx<'_>, n: &TfNode<'_>) -> R<()> {
    n.arity(2)?;
    let (x, y) = (n.input(0, "input")?, n.outputs[0]);
    moves(cx, x, y)?;
    let dims = cx.ft(x).shape.clone();
    let perm = cx.const_ints(n, 1, "perm")?;
    let mut seen = vec![false; dims.len()];
    let mut p = vec![];
    for &v in &perm {
        let a = norm_axis(v, dims.len())?;
        if std::mem::replace(&mut seen[a], true) {
            return shape_err(format!("`perm` {perm:?} repeats axis {a}"));
        }
        p.push(a);
    }
    if p.len() != dims.len() {
        return shape_err(format!(
            "`perm` {perm:?} is not a permutation of {} axes",
            dims.len()
        ));
    }
    let out = p.iter().map(|&a| dims[a]).collect();
    let xi = cx.input(n, 0, "input")?;
    cx.emit(n, Op::Transpose { perm: p }, vec![Some(xi)], out)?;
    Ok(())
}

//! Values known at conversion time and inference no-ops: Identity, Dropout,
//! Constant, Shape and Cast.

use super::tensor::{DOUBLE, FLOAT, INT32, INT64, dtype_name, tensor_from_proto};
use super::{Cx, OnnxNode, OpDef, R, unsupported};
use crate::convert::ProblemKind;
use crate::convert::ir::{DType, Data, Tensor};

pub(super) const OPS: &[OpDef] = &[
    OpDef {
        op: "Identity",
        attrs: &[],
        translate: identity,
    },
    OpDef {
        op: "Dropout",
        // `ratio` and `seed` only matter when training; `is_test` (opset < 7) is
        // ignored as onnxruntime and tract ignore it: inference never drops.
        attrs: &["ratio", "seed", "is_test", "consumed_inputs"],
        translate: dropout,
    },
    OpDef {
        op: "Constant",
        attrs: &[
            "value",
            "value_float",
            "value_floats",
            "value_int",
            "value_ints",
            "value_string",
            "value_strings",
            "sparse_value",
        ],
        translate: constant,
    },
    OpDef {
        op: "Shape",
        attrs: &["start", "end"],
        translate: shape,
    },
    OpDef {
        op: "Cast",
        // `saturate` and `round_mode` only apply to float8 targets, which are
        // refused anyway.
        attrs: &["to", "saturate", "round_mode"],
        translate: cast,
    },
];

fn identity(cx: &mut Cx, n: &OnnxNode<'_>) -> R<()> {
    let x = n.input(0, "X")?;
    cx.alias(n, 0, x);
    Ok(())
}

fn dropout(cx: &mut Cx, n: &OnnxNode<'_>) -> R<()> {
    n.only_first_output()?;
    // Opset 12 made `training_mode` an input; only a constant false is inference.
    if let Some(t) = n.opt_input(2)
        && cx.t(t).ints().is_none_or(|v| v.iter().any(|&m| m != 0))
    {
        return unsupported("`training_mode` must be a constant false (inference only)");
    }
    identity(cx, n)
}

fn constant(cx: &mut Cx, n: &OnnxNode<'_>) -> R<()> {
    let a = &n.attrs;
    let t = if let Some(t) = a.tensor("value")? {
        tensor_from_proto(t).map_err(|e| (ProblemKind::Dtype, e))?
    } else if let Some(v) = a.float("value_float")? {
        Tensor::constant("", vec![], Data::F32(vec![v]))
    } else if let Some(v) = a.floats("value_floats")? {
        Tensor::constant("", vec![v.len()], Data::F32(v.to_vec()))
    } else if let Some(v) = a.int("value_int")? {
        Tensor::constant("", vec![], Data::I64(vec![v]))
    } else if let Some(v) = a.ints("value_ints")? {
        Tensor::constant("", vec![v.len()], Data::I64(v.to_vec()))
    } else {
        return unsupported(
            "only the `value`, `value_float(s)` and `value_int(s)` attributes are supported",
        );
    };
    cx.define(n, 0, t)?;
    Ok(())
}

fn shape(cx: &mut Cx, n: &OnnxNode<'_>) -> R<()> {
    let x = n.input(0, "X")?;
    let dims: Vec<i64> = cx.t(x).dims.iter().map(|&d| d as i64).collect();
    let r = dims.len() as i64;
    let (start, end) = (
        n.attrs.int("start")?.unwrap_or(0),
        n.attrs.int("end")?.unwrap_or(r),
    );
    let norm = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
    let v = dims[norm(start)..norm(end).max(norm(start))].to_vec();
    cx.define(n, 0, Tensor::constant("", vec![v.len()], Data::I64(v)))?;
    Ok(())
}

fn cast(cx: &mut Cx, n: &OnnxNode<'_>) -> R<()> {
    let x = n.input(0, "X")?;
    let to = n.attrs.int("to")?.unwrap_or(0) as i32;
    let t = cx.t(x).clone();
    let Some(data) = &t.data else {
        if to == FLOAT && t.dtype == DType::F32 {
            cx.alias(n, 0, x);
            return Ok(());
        }
        return unsupported(format!("Cast to {} at run time", dtype_name(to)));
    };
    let ints = || data.to_i64().unwrap_or_else(|| as_i64(&data.to_f32()));
    let out = match to {
        FLOAT | DOUBLE => Data::F32(data.to_f32()),
        INT32 => Data::from_i64(DType::I32, ints()).map_err(|e| {
            (
                ProblemKind::Shape,
                format!("Cast of a constant to int32: {e}"),
            )
        })?,
        INT64 => Data::I64(ints()),
        other => return unsupported(format!("Cast to {}", dtype_name(other))),
    };
    cx.define(n, 0, Tensor::constant("", t.dims, out))?;
    Ok(())
}

/// f32 values truncated toward zero, as ONNX casts floats to integers.
fn as_i64(v: &[f32]) -> Vec<i64> {
    v.iter().map(|&x| x as i64).collect()
}

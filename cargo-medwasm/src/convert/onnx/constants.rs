//! Values known at conversion time and inference no-ops: Identity, Dropout,
//! Constant, Shape, Cast and DequantizeLinear of constants.

use super::tensor::{DOUBLE, FLOAT, INT32, INT64, dtype_name, tensor_from_proto};
use super::{Cx, OnnxNode, OpDef, R, norm_axis, shape_err, unsupported};
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
    OpDef {
        op: "DequantizeLinear",
        attrs: &["axis", "block_size", "output_dtype"],
        translate: dequantize_linear,
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

fn dequantize_linear(cx: &mut Cx, n: &OnnxNode<'_>) -> R<()> {
    let a = &n.attrs;
    if a.int("block_size")?.unwrap_or(0) != 0 {
        return unsupported("blocked quantization (`block_size`) is not supported");
    }
    if let Some(t) = a.int("output_dtype")?
        && t != 0
        && t != i64::from(FLOAT)
    {
        return unsupported(format!(
            "`output_dtype` {} is not supported (float32 only)",
            dtype_name(t as i32)
        ));
    }
    let x = n.input(0, "x")?;
    let scale = n.input(1, "x_scale")?;
    let t = cx.t(x).clone();
    let (Some(q), Some(s)) = (t.ints(), cx.t(scale).f32s().map(<[f32]>::to_vec)) else {
        return unsupported(
            "DequantizeLinear of a run-time tensor (int8 execution comes later); only constant weights are dequantized at conversion",
        );
    };
    let zp = match n.opt_input(2) {
        Some(z) => cx.const_ints(z, "x_zero_point")?,
        None => vec![0],
    };
    // Zero points are 8- or 32-bit integers, so `q - zp` is exact in i64; a wider
    // one is refused rather than overflowed.
    if zp.is_empty() || s.is_empty() || zp.iter().any(|z| i32::try_from(*z).is_err()) {
        return shape_err(
            "`x_scale` and `x_zero_point` must be non-empty, with 32-bit zero points",
        );
    }
    // One scale and zero point: per tensor, and `axis` does not apply (ONNX ignores
    // it; a rank-1 bias with the default axis 1 is per-tensor).
    let out: Vec<f32> = if s.len() == 1 && zp.len() == 1 {
        q.iter().map(|&v| (v - zp[0]) as f32 * s[0]).collect()
    } else {
        let axis = norm_axis(a.int("axis")?.unwrap_or(1), t.dims.len())?;
        let inner: usize = t.dims[axis + 1..].iter().product();
        let ch = t.dims[axis];
        if (s.len() != 1 && s.len() != ch) || (zp.len() != 1 && zp.len() != ch) {
            return shape_err("per-axis scale/zero point length does not match the axis");
        }
        let pick = |v: &[i64], c: usize| if v.len() == 1 { v[0] } else { v[c] };
        q.iter()
            .enumerate()
            .map(|(i, &v)| {
                let c = (i / inner) % ch;
                let sc = if s.len() == 1 { s[0] } else { s[c] };
                (v - pick(&zp, c)) as f32 * sc
            })
            .collect()
    };
    cx.notes.push(format!(
        "constant weights `{}` dequantized to float32 at conversion",
        n.proto.input[0]
    ));
    cx.define(n, 0, Tensor::constant("", t.dims, Data::F32(out)))?;
    Ok(())
}

//! Shape operators: Flatten, Reshape, Squeeze, Unsqueeze (a Copy, or nothing on
//! constants), Transpose, Concat, Gather (shape arithmetic) and Pad. They move
//! values without reading them, so on int8 tensors (between a QuantizeLinear and a
//! DequantizeLinear) they keep their input's type and quantization.

use medwasm::kernels::misc::PadMode;

use super::{Cx, OnnxNode, OpDef, R, norm_axis, norm_axis_incl, shape_err, unsupported};
use crate::convert::ProblemKind;
use crate::convert::ir::{DType, Data, Op, Quant, Tensor, TensorId, checked_len};

pub(super) const OPS: &[OpDef] = &[
    OpDef {
        op: "Flatten",
        attrs: &["axis"],
        translate: reshape_like,
    },
    OpDef {
        op: "Reshape",
        // `shape` is the opset < 5 form of the shape input; `consumed_inputs` an
        // opset < 5 memory hint.
        attrs: &["allowzero", "shape", "consumed_inputs"],
        translate: reshape_like,
    },
    OpDef {
        op: "Squeeze",
        attrs: &["axes"],
        translate: reshape_like,
    },
    OpDef {
        op: "Unsqueeze",
        attrs: &["axes"],
        translate: reshape_like,
    },
    OpDef {
        op: "Transpose",
        attrs: &["perm"],
        translate: transpose,
    },
    OpDef {
        op: "Concat",
        attrs: &["axis"],
        translate: concat,
    },
    OpDef {
        op: "Gather",
        attrs: &["axis"],
        translate: gather,
    },
    OpDef {
        op: "Pad",
        // `paddings` is the opset 1 name of `pads`.
        attrs: &["mode", "pads", "value", "paddings"],
        translate: pad,
    },
];

/// Squeeze/Unsqueeze axes: an attribute before `input_since`, an input from it.
fn axes_arg(cx: &Cx, n: &OnnxNode<'_>, input_since: i64) -> R<Option<Vec<i64>>> {
    if cx.opset >= input_since {
        match n.opt_input(1) {
            Some(t) => Ok(Some(cx.const_ints(t, "axes")?)),
            None => Ok(None),
        }
    } else {
        Ok(n.attrs.ints("axes")?.map(|v| v.to_vec()))
    }
}

fn reshape_like(cx: &mut Cx, n: &OnnxNode<'_>) -> R<()> {
    let a = &n.attrs;
    let x = n.input(0, "X")?;
    let dims = cx.t(x).dims.clone();
    let out = match n.op {
        "Flatten" => {
            let ax = norm_axis_incl(a.int("axis")?.unwrap_or(1), dims.len())?;
            vec![dims[..ax].iter().product(), dims[ax..].iter().product()]
        }
        "Reshape" => {
            let shape = match (cx.opset < 5, a.ints("shape")?) {
                (true, Some(s)) => s.to_vec(),
                _ => {
                    let s = n.input(1, "shape")?;
                    cx.const_ints(s, "shape")?
                }
            };
            reshape_dims(&dims, &shape, a.int("allowzero")?.unwrap_or(0) != 0)?
        }
        "Squeeze" => match axes_arg(cx, n, 13)? {
            None => dims.iter().copied().filter(|&d| d != 1).collect(),
            Some(axes) => {
                let axes = axes
                    .iter()
                    .map(|&v| norm_axis(v, dims.len()))
                    .collect::<R<Vec<_>>>()?;
                if axes.iter().any(|&ax| dims[ax] != 1) {
                    return shape_err("squeezing an axis whose size is not 1");
                }
                dims.iter()
                    .enumerate()
                    .filter(|(d, _)| !axes.contains(d))
                    .map(|(_, &v)| v)
                    .collect()
            }
        },
        _ => {
            let axes = axes_arg(cx, n, 13)?
                .ok_or((ProblemKind::Attribute, "missing `axes`".to_string()))?;
            let r = dims.len() + axes.len();
            let axes = axes
                .iter()
                .map(|&v| norm_axis(v, r))
                .collect::<R<Vec<_>>>()?;
            let mut it = dims.iter();
            (0..r)
                .map(|d| {
                    if axes.contains(&d) {
                        1
                    } else {
                        *it.next().unwrap_or(&1)
                    }
                })
                .collect()
        }
    };
    if out.len() > 6 {
        return unsupported("rank above 6");
    }
    if checked_len(&out) != checked_len(&dims) {
        return shape_err(format!("cannot reshape {dims:?} to {out:?}"));
    }
    let t = cx.t(x).clone();
    if t.is_const() {
        let per_tensor = |q: &Tensor| q.quant.as_ref().is_some_and(|q| q.axis.is_none());
        let id = cx.define(
            n,
            0,
            Tensor {
                dims: out.clone(),
                ..t
            },
        )?;
        // A reshaped dequantized constant keeps its quantized original when its
        // quantization does not depend on the shape (per tensor).
        cx.q.derive(&mut cx.g, x, id, |q| {
            per_tensor(q).then(|| Tensor {
                dims: out,
                ..q.clone()
            })
        });
    } else {
        cx.emit_like(n, Op::Copy, vec![Some(x)], out, x)?;
    }
    Ok(())
}

/// The output shape of Reshape: 0 copies the input dimension (unless `allowzero`),
/// one -1 is inferred.
fn reshape_dims(dims: &[usize], shape: &[i64], allowzero: bool) -> R<Vec<usize>> {
    let total: usize = dims.iter().product();
    let mut out = vec![];
    let mut infer = None;
    for (i, &s) in shape.iter().enumerate() {
        match s {
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            0 if !allowzero => out.push(*dims.get(i).ok_or((
                ProblemKind::Shape,
                "0 in shape past the input rank".to_string(),
            ))?),
            s if s > 0 => out.push(s as usize),
            _ => return shape_err(format!("reshape target {shape:?} is not supported")),
        }
    }
    if let Some(i) = infer {
        let known = checked_len(&out).unwrap_or(0);
        if known == 0 || !total.is_multiple_of(known) {
            return shape_err(format!("cannot infer -1 in {shape:?} for {total} elements"));
        }
        out[i] = total / known;
    }
    Ok(out)
}

fn transpose(cx: &mut Cx, n: &OnnxNode<'_>) -> R<()> {
    let x = n.input(0, "X")?;
    let t = cx.t(x).clone();
    let r = t.dims.len();
    let perm: Vec<usize> = match n.attrs.ints("perm")? {
        Some(p) => p.iter().map(|&v| norm_axis(v, r)).collect::<R<_>>()?,
        None => (0..r).rev().collect(),
    };
    let mut sorted = perm.clone();
    sorted.sort_unstable();
    if sorted != (0..r).collect::<Vec<_>>() {
        return shape_err(format!("`perm` {perm:?} is not a permutation"));
    }
    let dims: Vec<usize> = perm.iter().map(|&p| t.dims[p]).collect();
    if let Some(data) = &t.data {
        let idx = permuted_indices(&t.dims, &perm);
        let out = data.select(&idx);
        let id = cx.define(n, 0, Tensor::constant("", dims.clone(), out))?;
        // A transposed dequantized constant (weights transposed before a MatMul)
        // keeps its quantized original, transposed alike; a per-axis quantization
        // axis moves with its dimension.
        cx.q.derive(&mut cx.g, x, id, |q| {
            let data = q.data.as_ref()?.select(&idx);
            let quant = q.quant.clone().map(|qq| crate::convert::ir::Quant {
                axis: qq.axis.and_then(|a| perm.iter().position(|&p| p == a)),
                ..qq
            });
            Some(Tensor {
                quant,
                ..Tensor::constant(q.name.clone(), dims, data)
            })
        });
    } else if perm.iter().enumerate().all(|(i, &p)| i == p) {
        cx.alias(n, 0, x);
    } else {
        cx.emit_like(n, Op::Transpose { perm }, vec![Some(x)], dims, x)?;
    }
    Ok(())
}

/// For each element of `x` (shape `dims`) transposed by `perm`, in output order, its
/// index in `x`.
fn permuted_indices(dims: &[usize], perm: &[usize]) -> Vec<usize> {
    let r = dims.len();
    let mut stride = vec![1usize; r];
    for d in (0..r.saturating_sub(1)).rev() {
        stride[d] = stride[d + 1] * dims[d + 1];
    }
    let out_dims: Vec<usize> = perm.iter().map(|&p| dims[p]).collect();
    let total: usize = dims.iter().product();
    let mut idx = vec![0usize; r];
    let mut v = Vec::with_capacity(total);
    for _ in 0..total {
        v.push((0..r).map(|i| idx[i] * stride[perm[i]]).sum());
        // Odometer over the output index, last axis fastest.
        for i in (0..r).rev() {
            idx[i] += 1;
            if idx[i] < out_dims[i] {
                break;
            }
            idx[i] = 0;
        }
    }
    v
}

fn concat(cx: &mut Cx, n: &OnnxNode<'_>) -> R<()> {
    let r = n
        .ins
        .iter()
        .flatten()
        .next()
        .map(|&i| cx.t(i).dims.len())
        .unwrap_or(0);
    let axis = norm_axis(
        n.attrs
            .int("axis")?
            .ok_or((ProblemKind::Attribute, "missing `axis`".to_string()))?,
        r,
    )?;
    let parts: Vec<TensorId> = n.ins.iter().flatten().copied().collect();
    if parts.len() > medwasm::format::MAX_NODE_INPUTS {
        return unsupported(format!("Concat of {} inputs (at most 16)", parts.len()));
    }
    let mut dims = cx.t(parts[0]).dims.clone();
    dims[axis] = 0;
    for &p in &parts {
        let d = &cx.t(p).dims;
        if d.len() != r || (0..r).any(|i| i != axis && d[i] != dims[i]) {
            return shape_err(format!("Concat inputs {d:?} disagree off axis {axis}"));
        }
        dims[axis] += d[axis];
    }
    // Integer constants (shape arithmetic) are joined now; the runtime has no
    // integer tensors.
    if parts.iter().all(|&p| cx.t(p).is_int_const()) {
        let outer: usize = dims[..axis].iter().product();
        let mut out: Option<Data> = None;
        for o in 0..outer {
            for &p in &parts {
                let t = cx.t(p);
                let inner: usize = t.dims[axis..].iter().product();
                let Some(data) = &t.data else { continue };
                let slab = data.select(&(o * inner..(o + 1) * inner).collect::<Vec<_>>());
                match &mut out {
                    None => out = Some(slab),
                    Some(d) => d
                        .extend(&slab)
                        .map_err(|e| (ProblemKind::Dtype, format!("Concat of constants: {e}")))?,
                }
            }
        }
        let data = out.unwrap_or(Data::I64(vec![]));
        cx.define(n, 0, Tensor::constant("", dims, data))?;
        return Ok(());
    }
    // int8 parts must agree on their quantization (known now, or once a
    // DequantizeLinear reads the result: the lowering checks every mover then).
    let runtime: Vec<TensorId> = parts
        .iter()
        .copied()
        .filter(|&p| !cx.t(p).is_const())
        .collect();
    let like = runtime.first().copied().unwrap_or(parts[0]);
    if cx.t(like).dtype != DType::F32 {
        if parts
            .iter()
            .any(|&p| cx.t(p).is_const() || cx.t(p).dtype != cx.t(like).dtype)
        {
            return unsupported(
                "Concat of int8 tensors with constants or other element types is not supported; use QLinearConcat or dequantize first",
            );
        }
        let known: Vec<&Quant> = parts
            .iter()
            .filter_map(|&p| cx.t(p).quant.as_ref())
            .collect();
        if known.windows(2).any(|w| w[0] != w[1]) {
            return unsupported(
                "Concat of int8 tensors quantized differently: it moves values without requantizing; dequantize first (DequantizeLinear → Concat → QuantizeLinear requantizes)",
            );
        }
        let quant = known.first().map(|&q| q.clone());
        let dtype = cx.t(like).dtype;
        let out = cx.emit_q(
            n,
            Op::Concat { axis },
            parts.iter().map(|&p| Some(p)).collect(),
            dims,
            dtype,
            quant,
        )?;
        cx.q.inherit_u8(like, out);
        return Ok(());
    }
    let inputs = parts
        .iter()
        .map(|&p| {
            Some(if cx.t(p).is_const() {
                cx.materialize(n, p)
            } else {
                p
            })
        })
        .collect();
    cx.emit(n, Op::Concat { axis }, inputs, dims)?;
    Ok(())
}

fn gather(cx: &mut Cx, n: &OnnxNode<'_>) -> R<()> {
    let (x, idx) = (n.input(0, "data")?, n.input(1, "indices")?);
    let (xt, it) = (cx.t(x).clone(), cx.t(idx).clone());
    let (Some(data), Some(ix), true) = (&xt.data, it.ints(), xt.is_int_const()) else {
        return unsupported(
            "Gather is supported only on constant integer tensors (shape arithmetic)",
        );
    };
    if xt.dims.len() != 1 || n.attrs.int("axis")?.unwrap_or(0) != 0 {
        return unsupported("Gather only on 1-D constants along axis 0");
    }
    let len = data.len() as i64;
    let mut picked = vec![];
    for &i in &ix {
        let j = if i < 0 { i + len } else { i };
        if j < 0 || j >= len {
            return shape_err(format!("index {i} out of range for {len} elements"));
        }
        picked.push(j as usize);
    }
    cx.define(n, 0, Tensor::constant("", it.dims, data.select(&picked)))?;
    Ok(())
}

fn pad(cx: &mut Cx, n: &OnnxNode<'_>) -> R<()> {
    let a = &n.attrs;
    let x = n.input(0, "X")?;
    let dims = cx.t(x).dims.clone();
    let r = dims.len();
    let mode = a.string("mode")?.unwrap_or_else(|| "constant".into());
    // Opset < 11: pads and value are attributes; from 11 they are inputs.
    let (pads, value) = if cx.opset < 11 {
        let p = match a.ints("pads")? {
            Some(p) => p,
            None => a
                .ints("paddings")?
                .ok_or((ProblemKind::Attribute, "missing `pads`".to_string()))?,
        }
        .to_vec();
        (p, a.float("value")?.unwrap_or(0.0))
    } else {
        if n.opt_input(3).is_some() {
            return unsupported("the `axes` input is not supported");
        }
        let p = n.input(1, "pads")?;
        (
            cx.const_ints(p, "pads")?,
            cx.opt_const_f32(n, 2, "constant_value")?.unwrap_or(0.0),
        )
    };
    let int8 = cx.t(x).dtype != DType::F32;
    // The runtime stores pads as u32 words; larger ones could not fit a tensor in
    // the format anyway.
    if pads.len() != 2 * r || pads.iter().any(|&p| p < 0 || p > i64::from(u32::MAX)) {
        return unsupported(format!(
            "pads {pads:?} must be {} non-negative values of at most {}",
            2 * r,
            u32::MAX
        ));
    }
    let mode = match mode.as_str() {
        "constant" => PadMode::Constant(value),
        "reflect" => PadMode::Reflect,
        "edge" => PadMode::Edge,
        m => {
            return unsupported(format!(
                "mode `{m}` is not supported (constant, reflect, edge)"
            ));
        }
    };
    let begin: Vec<usize> = pads[..r].iter().map(|&v| v as usize).collect();
    let end: Vec<usize> = pads[r..].iter().map(|&v| v as usize).collect();
    if mode == PadMode::Reflect && (0..r).any(|d| begin[d] >= dims[d] || end[d] >= dims[d]) {
        return unsupported("reflect padding must be narrower than the input");
    }
    let out: Vec<usize> = (0..r).map(|d| dims[d] + begin[d] + end[d]).collect();
    if int8 {
        // The runtime pads int8 tensors with their zero point (real 0) only; the
        // value, an integer of the tensor's type, is checked against the zero point
        // once the lowering knows it.
        let (mode, value) = match mode {
            PadMode::Constant(v) => (PadMode::Constant(0.0), Some(v as i64)),
            other => (other, None),
        };
        let y = cx.emit_like(n, Op::Pad { mode, begin, end }, vec![Some(x)], out, x)?;
        if let Some(v) = value {
            cx.q.pad_value(y, v);
        }
        return Ok(());
    }
    cx.emit(n, Op::Pad { mode, begin, end }, vec![Some(x)], out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::permuted_indices;

    #[test]
    fn permuted_indices_transpose_a_matrix_and_a_cube() {
        // [[0 1 2] [3 4 5]] transposed: [[0 3] [1 4] [2 5]].
        assert_eq!(permuted_indices(&[2, 3], &[1, 0]), [0, 3, 1, 4, 2, 5]);
        assert_eq!(permuted_indices(&[2, 3], &[0, 1]), [0, 1, 2, 3, 4, 5]);
        // NHWC [1, 2, 2, 2] -> NCHW: channel 0 first (even indices).
        assert_eq!(
            permuted_indices(&[1, 2, 2, 2], &[0, 3, 1, 2]),
            [0, 2, 4, 6, 1, 3, 5, 7]
        );
        assert_eq!(permuted_indices(&[], &[]), [0]);
    }
}

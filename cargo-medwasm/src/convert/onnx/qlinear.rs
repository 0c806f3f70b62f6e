//! The QOperator format: operators that take int8 (or uint8) tensors with their
//! scales and zero points as inputs and write int8, translated straight to int8 IR
//! nodes. QLinearConv and QLinearMatMul are standard ONNX; the others are the
//! `com.microsoft` operators onnxruntime's quantizer writes (QGemm, QLinearAdd,
//! QLinearMul, the pools, QLinearSigmoid, QLinearLeakyRelu, QLinearSoftmax,
//! QLinearConcat). They compute with TFLite's integer kernels, as the QDQ patterns
//! do ([`super::qdq`]).

use medwasm::kernels::act::Act;
use medwasm::kernels::binary::{BinOp, broadcast};

use super::qdq::{int8_tensor, node, probabilities, same_quant, symmetric};
use super::quant::{Params, ir_constant, params};
use super::{Cx, OnnxNode, OpDef, R, conv, norm_axis, pool, shape_err, unsupported};
use crate::convert::ProblemKind;
use crate::convert::ir::{DType, Data, Layout, Op, Quant, Tensor, TensorId};

/// The window attributes of QLinearConv, as Conv's.
const CONV_ATTRS: &[&str] = &[
    "auto_pad",
    "dilations",
    "group",
    "kernel_shape",
    "pads",
    "strides",
];

pub(super) const OPS: &[OpDef] = &[
    OpDef {
        op: "QLinearConv",
        attrs: CONV_ATTRS,
        translate: qlinear_conv,
    },
    OpDef {
        op: "QLinearMatMul",
        attrs: &[],
        translate: qlinear_matmul,
    },
];

pub(super) const MS_OPS: &[OpDef] = &[
    OpDef {
        op: "QGemm",
        attrs: &["alpha", "transA", "transB"],
        translate: qgemm,
    },
    OpDef {
        op: "QLinearAdd",
        attrs: &[],
        translate: qlinear_binary,
    },
    OpDef {
        op: "QLinearMul",
        attrs: &[],
        translate: qlinear_binary,
    },
    OpDef {
        op: "QLinearAveragePool",
        attrs: &[
            "auto_pad",
            "ceil_mode",
            "channels_last",
            "count_include_pad",
            "kernel_shape",
            "pads",
            "strides",
        ],
        translate: qlinear_average_pool,
    },
    OpDef {
        op: "QLinearGlobalAveragePool",
        attrs: &["channels_last"],
        translate: qlinear_global_average_pool,
    },
    OpDef {
        op: "QLinearSigmoid",
        attrs: &[],
        translate: qlinear_activation,
    },
    OpDef {
        op: "QLinearLeakyRelu",
        attrs: &["alpha"],
        translate: qlinear_activation,
    },
    OpDef {
        op: "QLinearSoftmax",
        attrs: &["axis", "opset"],
        translate: qlinear_softmax,
    },
    OpDef {
        op: "QLinearConcat",
        attrs: &["axis"],
        translate: qlinear_concat,
    },
];

/// The model's element type of tensor `t` (a run-time uint8 is held as int8).
fn model_type(cx: &Cx, t: TensorId) -> DType {
    if cx.q.is_u8(t) {
        DType::U8
    } else {
        cx.t(t).dtype
    }
}

/// Input `k` of `n`, quantized with the scale at `sk` and the zero point at `zk`:
/// a run-time int8 tensor (its quantization assigned), or a constant of int8 or
/// uint8 values quantized per tensor, as the IR holds it.
fn quantized_input(
    cx: &mut Cx,
    n: &OnnxNode<'_>,
    k: usize,
    sk: usize,
    zk: usize,
    what: &str,
) -> R<TensorId> {
    let x = n.input(k, what)?;
    let p = params(cx, n, sk, zk, model_type(cx, x), what)?;
    let t = cx.t(x).clone();
    if let Some(data) = &t.data {
        let quant = p.activation(what)?;
        // `activation` moved a uint8 zero point; `ir_constant` moves the values.
        let quant = Quant {
            zero_point: p.zero_point.clone(),
            ..quant
        };
        return match ir_constant(&n.proto.input[k], &t.dims, data, quant) {
            Some(c) if c.dtype == DType::I8 => Ok(cx.g.add_tensor(c)),
            _ => Err((
                ProblemKind::Dtype,
                format!(
                    "`{what}` is a {} constant; int8 or uint8 is needed",
                    t.dtype.name()
                ),
            )),
        };
    }
    if t.dtype != DType::I8 {
        return Err((
            ProblemKind::Dtype,
            format!("`{what}` is {}; int8 or uint8 is needed", t.dtype.name()),
        ));
    }
    cx.assign_quant(x, &p.activation(what)?)?;
    Ok(x)
}

/// The quantization of the output (scale at `sk`, zero point at `zk`, of the
/// input's type when absent) and whether the model's output is uint8.
fn output_quant(cx: &Cx, n: &OnnxNode<'_>, sk: usize, zk: usize, x: TensorId) -> R<(Quant, bool)> {
    let p = params(cx, n, sk, zk, model_type(cx, x), "y")?;
    Ok((p.activation("y")?, p.qtype == DType::U8))
}

/// Defines output 0 of `n`: int8 with `quant` (uint8 in the model if `u8`).
fn int8_output(
    cx: &mut Cx,
    n: &OnnxNode<'_>,
    dims: Vec<usize>,
    quant: Quant,
    u8: bool,
) -> R<TensorId> {
    let y = cx.define(
        n,
        0,
        Tensor {
            quant: Some(quant),
            ..Tensor::activation("", dims, DType::I8)
        },
    )?;
    if u8 {
        cx.q.u8.insert(y);
    }
    Ok(y)
}

/// Adds `n`'s node computing `op` on `inputs` into a new int8 output.
fn emit_int8(
    cx: &mut Cx,
    n: &OnnxNode<'_>,
    op: Op,
    inputs: Vec<Option<TensorId>>,
    dims: Vec<usize>,
    (quant, u8): (Quant, bool),
) -> R<TensorId> {
    let y = int8_output(cx, n, dims, quant, u8)?;
    cx.g.nodes.push(node(&n.name, op, inputs, y));
    Ok(y)
}

/// Constant weights at input `k` quantized by the scale at `sk` and zero point at
/// `zk`, per tensor or along `axis`, as an int8 IR constant.
fn weights(
    cx: &mut Cx,
    n: &OnnxNode<'_>,
    k: usize,
    sk: usize,
    zk: usize,
    axis: i64,
) -> R<(TensorId, Params)> {
    let w = n.input(k, "weights")?;
    let t = cx.t(w).clone();
    let Some(data) = &t.data else {
        return unsupported(format!(
            "{} with weights computed at run time is not supported; constant weights are needed",
            n.op
        ));
    };
    let p = params(cx, n, sk, zk, t.dtype, "w")?;
    let quant = p.constant(&t.dims, axis)?;
    match ir_constant(&n.proto.input[k], &t.dims, data, quant) {
        Some(c) if c.dtype == DType::I8 => Ok((cx.g.add_tensor(c), p)),
        _ => Err((
            ProblemKind::Dtype,
            format!(
                "the weights are {}; int8 or uint8 is needed",
                t.dtype.name()
            ),
        )),
    }
}

/// The optional int32 bias at input `k` of `ch` channels, quantized (as these
/// operators define it) with input scale × weight scale and zero point 0.
fn int32_bias(
    cx: &mut Cx,
    n: &OnnxNode<'_>,
    k: usize,
    s_x: f32,
    s_w: &[f32],
    ch: usize,
) -> R<Option<TensorId>> {
    let Some(b) = n.opt_input(k) else {
        return Ok(None);
    };
    let t = cx.t(b).clone();
    let Some(Data::I32(values)) = &t.data else {
        return Err((
            ProblemKind::Dtype,
            "the bias must be a constant int32 tensor".to_string(),
        ));
    };
    if values.len() != ch {
        return shape_err(format!(
            "the bias has {} values for {ch} channels",
            values.len()
        ));
    }
    let unit: Vec<f32> = (0..ch)
        .map(|c| s_x * if s_w.len() == 1 { s_w[0] } else { s_w[c] })
        .collect();
    let quant = if s_w.len() == 1 {
        Quant {
            scale: vec![unit[0]],
            zero_point: vec![0],
            axis: None,
        }
    } else {
        Quant {
            scale: unit,
            zero_point: vec![0; ch],
            axis: Some(0),
        }
    };
    Ok(Some(cx.g.add_tensor(Tensor {
        quant: Some(quant),
        ..Tensor::constant(
            n.proto.input[k].clone(),
            vec![ch],
            Data::I32(values.clone()),
        )
    })))
}

fn qlinear_conv(cx: &mut Cx, n: &OnnxNode<'_>) -> R<()> {
    let x = quantized_input(cx, n, 0, 1, 2, "x")?;
    let (w, wp) = weights(cx, n, 3, 4, 5, 0)?;
    let wt = cx.t(w).clone();
    let (win, group, dims) = conv::geometry(n, &cx.t(x).dims, &wt.dims)?;
    if let Some(q) = &wt.quant {
        symmetric(&wt, q, "convolution")?;
    }
    let s_x = cx.t(x).quant.as_ref().map_or(1.0, |q| q.scale[0]);
    let bias = int32_bias(cx, n, 8, s_x, &wp.scale, wt.dims[0])?;
    let out = output_quant(cx, n, 6, 7, x)?;
    let op = Op::Conv {
        win,
        group,
        act: Act::None,
        layout: Layout::Nchw,
        depthwise: false,
    };
    emit_int8(cx, n, op, vec![Some(x), Some(w), bias], dims, out)?;
    Ok(())
}

/// An int8 fully connected layer: `a [.., K]` times constant `b [K, N]` (its
/// quantization per tensor or per column), plus an optional bias.
fn fully_connected(
    cx: &mut Cx,
    n: &OnnxNode<'_>,
    a: TensorId,
    b: TensorId,
    bias: Option<TensorId>,
    out: (Quant, bool),
) -> R<()> {
    let (ad, bd) = (cx.t(a).dims.clone(), cx.t(b).dims.clone());
    if bd.len() != 2 || ad.last() != Some(&bd[0]) {
        return shape_err(format!("{} shapes {ad:?} and {bd:?} disagree", n.op));
    }
    let bt = cx.t(b).clone();
    if let Some(q) = &bt.quant
        && q.axis.is_some()
    {
        symmetric(&bt, q, "per-channel fully connected")?;
    }
    let mut dims = ad;
    let last = dims.len() - 1;
    dims[last] = bd[1];
    emit_int8(
        cx,
        n,
        Op::Gemm { act: Act::None },
        vec![Some(a), Some(b), bias],
        dims,
        out,
    )?;
    Ok(())
}

fn qlinear_matmul(cx: &mut Cx, n: &OnnxNode<'_>) -> R<()> {
    let a = quantized_input(cx, n, 0, 1, 2, "a")?;
    // `b_scale` holds one scale, or one per column of `b [K, N]`.
    let (b, _) = weights(cx, n, 3, 4, 5, 1)?;
    if cx.t(b).dims.len() != 2 {
        return unsupported("QLinearMatMul with a weight matrix of rank other than 2");
    }
    let out = output_quant(cx, n, 6, 7, a)?;
    fully_connected(cx, n, a, b, None, out)
}

fn qgemm(cx: &mut Cx, n: &OnnxNode<'_>) -> R<()> {
    let at = &n.attrs;
    if at.int("transA")?.unwrap_or(0) != 0 {
        return unsupported("`transA=1` is not supported; transpose A before the QGemm");
    }
    if at.float("alpha")?.unwrap_or(1.0) != 1.0 {
        return unsupported("`alpha` other than 1 is not supported");
    }
    if n.opt_input(7).is_none() {
        return unsupported(
            "QGemm with a float output (no `y_scale`) is not supported; quantize the output",
        );
    }
    let a = quantized_input(cx, n, 0, 1, 2, "a")?;
    let trans_b = at.int("transB")?.unwrap_or(0) != 0;
    // B's scales are one, or one per output column: along axis 0 of a transposed B.
    let (b, bp) = weights(cx, n, 3, 4, 5, if trans_b { 0 } else { 1 })?;
    let bt = cx.t(b).clone();
    let [r, c] = bt.dims[..] else {
        return shape_err(format!("B must be 2-D, not {:?}", bt.dims));
    };
    let b = if trans_b {
        // `[N, K]` → `[K, N]`, the per-column axis moving with it.
        let idx: Vec<usize> = (0..c)
            .flat_map(|k| (0..r).map(move |u| u * c + k))
            .collect();
        let data = bt.data.as_ref().map(|d| d.select(&idx));
        cx.g.add_tensor(Tensor {
            dims: vec![c, r],
            data,
            quant: bt.quant.clone().map(|q| Quant {
                axis: q.axis.map(|_| 1),
                ..q
            }),
            ..bt
        })
    } else {
        b
    };
    let units = cx.t(b).dims[1];
    let s_a = cx.t(a).quant.as_ref().map_or(1.0, |q| q.scale[0]);
    let bias = int32_bias(cx, n, 6, s_a, &bp.scale, units)?;
    let out = output_quant(cx, n, 7, 8, a)?;
    fully_connected(cx, n, a, b, bias, out)
}

fn qlinear_binary(cx: &mut Cx, n: &OnnxNode<'_>) -> R<()> {
    let op = if n.op == "QLinearAdd" {
        BinOp::Add
    } else {
        BinOp::Mul
    };
    let a = quantized_input(cx, n, 0, 1, 2, "A")?;
    let b = quantized_input(cx, n, 3, 4, 5, "B")?;
    let (ad, bd) = (cx.t(a).dims.clone(), cx.t(b).dims.clone());
    let too_deep = || (ProblemKind::Shape, "rank above 6".to_string());
    let yd = broadcast(
        &medwasm::Dims::from_slice(&ad).ok_or_else(too_deep)?,
        &medwasm::Dims::from_slice(&bd).ok_or_else(too_deep)?,
    )
    .ok_or_else(|| {
        (
            ProblemKind::Shape,
            format!("shapes {ad:?} and {bd:?} do not broadcast"),
        )
    })?;
    if cx.t(a).is_const() && cx.t(b).is_const() {
        return unsupported(format!(
            "{} of two constants: its result is a constant; fold it when exporting",
            n.op
        ));
    }
    let like = if cx.t(a).is_const() { b } else { a };
    let out = output_quant(cx, n, 6, 7, like)?;
    emit_int8(
        cx,
        n,
        Op::Binary { op, act: Act::None },
        vec![Some(a), Some(b)],
        yd.as_slice().to_vec(),
        out,
    )?;
    Ok(())
}

/// The spatial dims of `dims` and the axes they are (`channels_last`: NHWC).
fn spatial(dims: &[usize], channels_last: bool) -> R<(Vec<usize>, std::ops::Range<usize>)> {
    let r = dims.len();
    if !(3..=4).contains(&r) {
        return unsupported(format!(
            "{}-D pooling is not supported (1-D and 2-D only)",
            r.saturating_sub(2)
        ));
    }
    let axes = if channels_last { 1..r - 1 } else { 2..r };
    Ok((dims[axes.clone()].to_vec(), axes))
}

fn qlinear_average_pool(cx: &mut Cx, n: &OnnxNode<'_>) -> R<()> {
    let a = &n.attrs;
    let channels_last = a.int("channels_last")?.unwrap_or(0) != 0;
    let x = quantized_input(cx, n, 0, 1, 2, "x")?;
    let xd = cx.t(x).dims.clone();
    let (sp, axes) = spatial(&xd, channels_last)?;
    if channels_last && sp.len() != 2 {
        return unsupported("channels-last pooling of a 1-D input is not supported");
    }
    let (win, out_sp) = pool::geometry(n, &sp)?;
    if a.int("count_include_pad")?.unwrap_or(0) != 0 && win.pads.iter().any(|&p| p > 0) {
        return unsupported(
            "`count_include_pad=1` with padding: the int8 average pool averages over the input only",
        );
    }
    let mut dims = xd.clone();
    dims.splice(axes, out_sp);
    let (quant, u8) = output_quant(cx, n, 3, 4, x)?;
    let y = int8_output(cx, n, dims, quant, u8)?;
    let op = Op::Pool {
        max: false,
        win,
        count_include_pad: false,
        layout: if channels_last {
            Layout::Nhwc
        } else {
            Layout::Nchw
        },
    };
    let nodes = same_quant(cx, &n.name, op, x, y)?;
    cx.g.nodes.extend(nodes);
    Ok(())
}

fn qlinear_global_average_pool(cx: &mut Cx, n: &OnnxNode<'_>) -> R<()> {
    let channels_last = n.attrs.int("channels_last")?.unwrap_or(0) != 0;
    let x = quantized_input(cx, n, 0, 1, 2, "x")?;
    let xd = cx.t(x).dims.clone();
    if xd.len() < 3 || xd.len() > medwasm::format::MAX_RANK {
        return shape_err(format!(
            "QLinearGlobalAveragePool needs a spatial input of rank 3 to {}",
            medwasm::format::MAX_RANK
        ));
    }
    let r = xd.len();
    let axes = if channels_last { 1..r - 1 } else { 2..r };
    let mask = axes.clone().fold(0u32, |m, d| m | (1 << d));
    let mut dims = xd;
    dims[axes].iter_mut().for_each(|d| *d = 1);
    let out = output_quant(cx, n, 3, 4, x)?;
    emit_int8(cx, n, Op::ReduceMean { mask }, vec![Some(x)], dims, out)?;
    Ok(())
}

fn qlinear_activation(cx: &mut Cx, n: &OnnxNode<'_>) -> R<()> {
    let act = if n.op == "QLinearSigmoid" {
        Act::Sigmoid
    } else {
        let alpha = n.attrs.float("alpha")?.unwrap_or(0.01);
        if !alpha.is_finite() {
            return unsupported(format!("`alpha` {alpha} must be finite"));
        }
        Act::LeakyRelu(alpha)
    };
    let x = quantized_input(cx, n, 0, 1, 2, "X")?;
    let dims = cx.t(x).dims.clone();
    let (quant, u8) = output_quant(cx, n, 3, 4, x)?;
    if act == Act::Sigmoid {
        let y = int8_output(cx, n, dims, quant, u8)?;
        let nodes = probabilities(cx, &n.name, Op::Act(act), x, y);
        cx.g.nodes.extend(nodes);
        return Ok(());
    }
    emit_int8(cx, n, Op::Act(act), vec![Some(x)], dims, (quant, u8))?;
    Ok(())
}

fn qlinear_softmax(cx: &mut Cx, n: &OnnxNode<'_>) -> R<()> {
    let x = quantized_input(cx, n, 0, 1, 2, "X")?;
    let dims = cx.t(x).dims.clone();
    let r = dims.len();
    if r == 0 {
        return shape_err("softmax of a scalar");
    }
    // Opset < 13 coerces to 2-D at `axis`, 13 normalizes one axis: either way the
    // last axis alone is what TFLite's kernel computes.
    let axis = norm_axis(n.attrs.int("axis")?.unwrap_or(-1), r)?;
    if axis != r - 1 {
        return unsupported(format!(
            "softmax over axis {axis} of a rank-{r} tensor: the int8 softmax runs over the last axis only"
        ));
    }
    let (quant, u8) = output_quant(cx, n, 3, 4, x)?;
    let y = int8_output(cx, n, dims, quant, u8)?;
    let op = Op::Softmax {
        start: r - 1,
        end: r,
        beta: 1.0,
    };
    let nodes = probabilities(cx, &n.name, op, x, y);
    cx.g.nodes.extend(nodes);
    Ok(())
}

fn qlinear_concat(cx: &mut Cx, n: &OnnxNode<'_>) -> R<()> {
    let parts = n.ins.len().saturating_sub(2);
    if parts == 0 || !parts.is_multiple_of(3) {
        return shape_err(format!(
            "QLinearConcat takes `Y_scale`, `Y_zero_point`, then (tensor, scale, zero point) triples, not {} inputs",
            n.ins.len()
        ));
    }
    if parts / 3 > medwasm::format::MAX_NODE_INPUTS {
        return unsupported(format!(
            "QLinearConcat of {} inputs (at most 16)",
            parts / 3
        ));
    }
    let mut ins = vec![];
    for k in (2..n.ins.len()).step_by(3) {
        ins.push(quantized_input(cx, n, k, k + 1, k + 2, "X")?);
    }
    let first = cx.t(ins[0]).dims.clone();
    let r = first.len();
    let axis = norm_axis(
        n.attrs
            .int("axis")?
            .ok_or((ProblemKind::Attribute, "missing `axis`".to_string()))?,
        r,
    )?;
    let mut dims = first.clone();
    dims[axis] = 0;
    for &p in &ins {
        let d = &cx.t(p).dims;
        if d.len() != r || (0..r).any(|i| i != axis && d[i] != first[i]) {
            return shape_err(format!(
                "QLinearConcat inputs {d:?} disagree off axis {axis}"
            ));
        }
        dims[axis] += d[axis];
    }
    let like = ins
        .iter()
        .copied()
        .find(|&p| !cx.t(p).is_const())
        .unwrap_or(ins[0]);
    let (quant, u8) = output_quant(cx, n, 0, 1, like)?;
    // Concat moves values: every part (a constant too, copied into the arena)
    // is requantized to the output's parameters where they differ.
    let mut parts = vec![];
    for (k, &p) in ins.iter().enumerate() {
        let t = cx.t(p).clone();
        if t.quant.as_ref() == Some(&quant) && !t.is_const() {
            parts.push(Some(p));
            continue;
        }
        let name = format!("{}.part{k}", n.name);
        let out = int8_tensor(&mut cx.g, &name, &t.dims, &quant);
        let op = if t.quant.as_ref() == Some(&quant) {
            Op::Copy
        } else {
            Op::Quantize
        };
        cx.g.nodes.push(node(&name, op, vec![Some(p)], out));
        parts.push(Some(out));
    }
    emit_int8(cx, n, Op::Concat { axis }, parts, dims, (quant, u8))?;
    Ok(())
}

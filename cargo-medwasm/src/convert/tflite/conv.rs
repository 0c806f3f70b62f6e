//! CONV_2D, DEPTHWISE_CONV_2D, AVERAGE_POOL_2D and MAX_POOL_2D, and the SAME/VALID
//! window geometry they share. Everything stays NHWC with TFLite's filter layouts
//! (OHWI, depthwise 1HWO); the lowering re-lays f32 nodes for the NCHW kernels.

// Window parameters (kernel, strides, dilations, pads) stay below the runtime
// loader's limit, so the model's own names are in the refusal.
use medwasm::format::MAX_WINDOW_PARAM;
use medwasm::kernels::act::Act;

use super::schema_generated::tflite as fb;
use super::{Cx, Kind, OpDef, R, TfNode, dtype_err, fused_act, opt, shape_err, unsupported};
use crate::convert::ir::{DType, Layout, Op, Window};

pub(super) const OPS: &[OpDef] = &[
    OpDef {
        code: fb::BuiltinOperator::Conv2d,
        name: "CONV_2D",
        translate: conv_2d,
    },
    OpDef {
        code: fb::BuiltinOperator::DepthwiseConv2d,
        name: "DEPTHWISE_CONV_2D",
        translate: depthwise_conv_2d,
    },
    OpDef {
        code: fb::BuiltinOperator::AveragePool2d,
        name: "AVERAGE_POOL_2D",
        translate: pool_2d,
    },
    OpDef {
        code: fb::BuiltinOperator::MaxPool2d,
        name: "MAX_POOL_2D",
        translate: pool_2d,
    },
];

/// Output size and padding along one axis (spec: TFLite `ComputePaddingHeightWidth`).
/// SAME: `out = ceil(in / stride)`; VALID: `out = (in - eff) / stride + 1`. The
/// total padding goes half before, and the odd one at the end (bottom/right).
fn axis(same: bool, input: usize, k: usize, stride: usize, dil: usize) -> R<(usize, usize, usize)> {
    if input == 0 {
        return shape_err("the input has a zero spatial dimension");
    }
    let eff = (k - 1) * dil + 1;
    let out = if same {
        input.div_ceil(stride)
    } else {
        if input < eff {
            return shape_err(format!(
                "VALID padding with a window of {eff} on an input of {input} leaves no output"
            ));
        }
        (input - eff) / stride + 1
    };
    let total = ((out - 1) * stride + eff).saturating_sub(input);
    Ok((out, total / 2, total - total / 2))
}

/// The window of a 2-D NHWC operator on input `[N, H, W, C]`; returns it and the
/// output's `[OH, OW]`.
fn window(
    padding: fb::Padding,
    input_hw: [usize; 2],
    kernel: [i32; 2],
    strides: [i32; 2],
    dilations: [i32; 2],
) -> R<(Window, [usize; 2])> {
    let positive = |v: [i32; 2], what: &str| -> R<[usize; 2]> {
        match v.map(|x| {
            usize::try_from(x)
                .ok()
                .filter(|x| (1..MAX_WINDOW_PARAM).contains(x))
        }) {
            [Some(a), Some(b)] => Ok([a, b]),
            _ => unsupported(format!("{what} {v:?} must be positive and below 2^24")),
        }
    };
    let (k, s, d) = (
        positive(kernel, "the window")?,
        positive(strides, "strides")?,
        positive(dilations, "dilations")?,
    );
    let same = padding == fb::Padding::Same;
    let (oh, pt, pb) = axis(same, input_hw[0], k[0], s[0], d[0])?;
    let (ow, pl, pr) = axis(same, input_hw[1], k[1], s[1], d[1])?;
    Ok((
        Window {
            kernel: k,
            strides: s,
            dilations: d,
            pads: [pt, pl, pb, pr],
        },
        [oh, ow],
    ))
}

/// The NHWC input `[N, H, W, C]` of `n`.
fn nhwc(cx: &Cx<'_>, x: usize) -> R<[usize; 4]> {
    match cx.ft(x).shape[..] {
        [b, h, w, c] => Ok([b, h, w, c]),
        ref s => shape_err(format!("the input must be 4-D NHWC, not {s:?}")),
    }
}

fn conv_2d(cx: &mut Cx<'_>, n: &TfNode<'_>) -> R<()> {
    n.arity(3)?;
    let o = match &n.options {
        Some(fb::BuiltinOptionsRef::Conv2DOptions(o)) => o,
        _ => return unsupported("CONV_2D without Conv2DOptions"),
    };
    bias_type(opt(o.quantized_bias_type())?)?;
    let act = fused_act(opt(o.fused_activation_function())?)?;
    let (x, w, y) = (n.input(0, "input")?, n.input(1, "filter")?, n.outputs[0]);
    let [b, h, wd, c] = nhwc(cx, x)?;
    let [oc, kh, kw, ic] = match cx.ft(w).shape[..] {
        [o, kh, kw, i] => [o, kh, kw, i],
        ref s => return shape_err(format!("the filter must be OHWI, not {s:?}")),
    };
    if ic == 0 || oc == 0 || c == 0 || !c.is_multiple_of(ic) || !oc.is_multiple_of(c / ic) {
        return shape_err(format!(
            "filter [{oc}, {kh}, {kw}, {ic}] does not fit {c} input channels (groups must divide both)"
        ));
    }
    let group = c / ic;
    let (win, [oh, ow]) = window(
        opt(o.padding())?,
        [h, wd],
        [kh as i32, kw as i32],
        [opt(o.stride_h())?, opt(o.stride_w())?],
        [opt(o.dilation_h_factor())?, opt(o.dilation_w_factor())?],
    )?;
    let kind = cx.kind(x, Some(w), y)?;
    weights(cx, kind, w, oc, 0)?;
    let bias = bias(cx, n, kind, oc)?;
    let (xi, wi) = (cx.input(n, 0, "input")?, cx.input(n, 1, "filter")?);
    cx.emit(
        n,
        Op::Conv {
            win,
            group,
            act,
            layout: Layout::Nhwc,
            depthwise: false,
        },
        vec![Some(xi), Some(wi), bias],
        vec![b, oh, ow, oc],
    )?;
    Ok(())
}

fn depthwise_conv_2d(cx: &mut Cx<'_>, n: &TfNode<'_>) -> R<()> {
    n.arity(3)?;
    let o = match &n.options {
        Some(fb::BuiltinOptionsRef::DepthwiseConv2DOptions(o)) => o,
        _ => return unsupported("DEPTHWISE_CONV_2D without DepthwiseConv2DOptions"),
    };
    let act = fused_act(opt(o.fused_activation_function())?)?;
    let (x, w, y) = (n.input(0, "input")?, n.input(1, "filter")?, n.outputs[0]);
    let [b, h, wd, c] = nhwc(cx, x)?;
    let [one, kh, kw, oc] = match cx.ft(w).shape[..] {
        [a, kh, kw, o] => [a, kh, kw, o],
        ref s => return shape_err(format!("the filter must be 1HWO, not {s:?}")),
    };
    if one != 1 || c == 0 || oc == 0 || !oc.is_multiple_of(c) {
        return shape_err(format!(
            "filter [{one}, {kh}, {kw}, {oc}] does not fit {c} input channels (1HWO with a whole depth multiplier)"
        ));
    }
    // The int8 kernel takes the multiplier from the shapes; the float and hybrid
    // ones from the option. Files from current converters agree; refuse the rest
    // rather than pick one.
    let multiplier = opt(o.depth_multiplier())?;
    if multiplier != 0 && usize::try_from(multiplier).ok() != Some(oc / c) {
        return unsupported(format!(
            "`depth_multiplier` {multiplier} disagrees with the filter's {} output channels per input channel",
            oc / c
        ));
    }
    let (win, [oh, ow]) = window(
        opt(o.padding())?,
        [h, wd],
        [kh as i32, kw as i32],
        [opt(o.stride_h())?, opt(o.stride_w())?],
        [opt(o.dilation_h_factor())?, opt(o.dilation_w_factor())?],
    )?;
    let kind = cx.kind(x, Some(w), y)?;
    weights(cx, kind, w, oc, 3)?;
    let bias = bias(cx, n, kind, oc)?;
    let (xi, wi) = (cx.input(n, 0, "input")?, cx.input(n, 1, "filter")?);
    cx.emit(
        n,
        Op::Conv {
            win,
            group: c,
            act,
            layout: Layout::Nhwc,
            depthwise: true,
        },
        vec![Some(xi), Some(wi), bias],
        vec![b, oh, ow, oc],
    )?;
    Ok(())
}

/// Refuses a `quantized_bias_type` other than the default (INT32 accumulators).
fn bias_type(t: fb::TensorType) -> R<()> {
    match t {
        fb::TensorType::Float32 | fb::TensorType::Int32 => Ok(()),
        other => unsupported(format!(
            "`quantized_bias_type` {other:?} is not supported (int32 biases only)"
        )),
    }
}

/// Checks the constant filter `w` of a Conv with `out_c` output channels along
/// `channel_axis`: int8 and hybrid filters need symmetric quantization, per tensor
/// or per output channel (TFLite's `PopulateConvolutionQuantizationParams`).
fn weights(cx: &Cx<'_>, kind: Kind, w: usize, out_c: usize, channel_axis: usize) -> R<()> {
    let ft = cx.ft(w);
    if !cx.is_const(w) {
        return unsupported(format!(
            "the weights `{}` are computed at run time; constant weights are needed",
            ft.name
        ));
    }
    if kind == Kind::Float {
        return Ok(());
    }
    let Some(q) = &ft.quant else {
        return dtype_err(format!(
            "int8 weights `{}` have no quantization parameters",
            ft.name
        ));
    };
    if let Some(d) = q.dim
        && (d != channel_axis || q.scale.len() != out_c)
    {
        return dtype_err(format!(
            "weights `{}` are quantized along dimension {d}; per-channel weights must be quantized along their output channels (dimension {channel_axis})",
            ft.name
        ));
    }
    if q.zero_point.iter().any(|&z| z != 0) {
        return dtype_err(format!(
            "weights `{}` have nonzero zero points; int8 convolution weights must be symmetric",
            ft.name
        ));
    }
    Ok(())
}

/// The optional bias (input 2) of a Conv or FULLY_CONNECTED with `out_c`
/// channels: f32 for float and hybrid nodes, i32 with zero point 0 for int8 ones.
pub(super) fn bias(cx: &mut Cx<'_>, n: &TfNode<'_>, kind: Kind, out_c: usize) -> R<Option<usize>> {
    let Some(b) = n.opt_input(2) else {
        return Ok(None);
    };
    let ft = cx.ft(b);
    let name = ft.name.clone();
    if !cx.is_const(b) {
        return unsupported(format!("the bias `{name}` must be a constant"));
    }
    if ft.shape.iter().product::<usize>() != out_c || ft.shape.len() != 1 {
        return shape_err(format!(
            "the bias `{name}` has shape {:?}, not [{out_c}]",
            ft.shape
        ));
    }
    let want = match kind {
        Kind::Float | Kind::Hybrid => DType::F32,
        Kind::Int8 => DType::I32,
    };
    let have = cx.dtype_of(b)?;
    if have != want {
        return dtype_err(format!(
            "the bias `{name}` has element type {}; {} is needed here",
            have.name(),
            want.name()
        ));
    }
    if kind == Kind::Int8
        && let Some(q) = &cx.ft(b).quant
        && q.zero_point.iter().any(|&z| z != 0)
    {
        return dtype_err(format!("the int32 bias `{name}` has a nonzero zero point"));
    }
    Ok(Some(cx.input(n, 2, "bias")?))
}

fn pool_2d(cx: &mut Cx<'_>, n: &TfNode<'_>) -> R<()> {
    n.arity(1)?;
    let o = match &n.options {
        Some(fb::BuiltinOptionsRef::Pool2DOptions(o)) => o,
        _ => return unsupported("pooling without Pool2DOptions"),
    };
    let max = n.code == fb::BuiltinOperator::MaxPool2d;
    let act = fused_act(opt(o.fused_activation_function())?)?;
    let (x, y) = (n.input(0, "input")?, n.outputs[0]);
    let [b, h, w, c] = nhwc(cx, x)?;
    let (win, [oh, ow]) = window(
        opt(o.padding())?,
        [h, w],
        [opt(o.filter_height())?, opt(o.filter_width())?],
        [opt(o.stride_h())?, opt(o.stride_w())?],
        [1, 1],
    )?;
    if cx.kind(x, None, y)? == Kind::Int8 {
        // The int8 kernels copy raw values: input and output share parameters.
        cx.same_quant(x, y)?;
    }
    let xi = cx.input(n, 0, "input")?;
    let dims = vec![b, oh, ow, c];
    let op = Op::Pool {
        max,
        win,
        // TFLite averages over the taps inside the input only.
        count_include_pad: false,
        layout: Layout::Nhwc,
    };
    if act == Act::None {
        cx.emit(n, op, vec![Some(xi)], dims)?;
    } else {
        // Pools have no activation slot: the fused activation runs after, on a
        // tensor with the input's (= the output's) type and quantization.
        let pooled = cx.emit_helper(format!("{}.pool", n.name), op, xi, dims.clone());
        cx.emit(n, Op::Act(act), vec![Some(pooled)], dims)?;
    }
    Ok(())
}

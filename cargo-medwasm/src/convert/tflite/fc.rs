//! FULLY_CONNECTED, as a Gemm: the `[units, depth]` weights are transposed to
//! `B [depth, units]` at conversion (a per-channel quantization axis moves with
//! them, from 0 to 1), and an input of another shape is first viewed as
//! `[batches, depth]` as TFLite does.

use super::conv::bias;
use super::schema_generated::tflite as fb;
use super::{Cx, Kind, OpDef, R, TfNode, dtype_err, fused_act, opt, shape_err, unsupported};
use crate::convert::ir::{Data, Op, Quant};

pub(super) const OPS: &[OpDef] = &[OpDef {
    code: fb::BuiltinOperator::FullyConnected,
    name: "FULLY_CONNECTED",
    translate: fully_connected,
}];

fn fully_connected(cx: &mut Cx<'_>, n: &TfNode<'_>) -> R<()> {
    n.arity(3)?;
    let (mut act, mut keep_dims, mut asymmetric) = (medwasm::kernels::act::Act::None, false, false);
    match &n.options {
        Some(fb::BuiltinOptionsRef::FullyConnectedOptions(o)) => {
            act = fused_act(opt(o.fused_activation_function())?)?;
            if opt(o.weights_format())? != fb::FullyConnectedOptionsWeightsFormat::Default {
                return unsupported(
                    "`weights_format` SHUFFLED4x16INT8 is not supported (only DEFAULT)",
                );
            }
            keep_dims = opt(o.keep_num_dims())?;
            asymmetric = opt(o.asymmetric_quantize_inputs())?;
            match opt(o.quantized_bias_type())? {
                fb::TensorType::Float32 | fb::TensorType::Int32 => {}
                other => {
                    return unsupported(format!(
                        "`quantized_bias_type` {other:?} is not supported (int32 biases only)"
                    ));
                }
            }
        }
        None => {}
        Some(_) => return unsupported("options of another operator than FullyConnectedOptions"),
    }
    let (x, w, y) = (n.input(0, "input")?, n.input(1, "weights")?, n.outputs[0]);
    let xdims = cx.ft(x).shape.clone();
    let (units, depth) = match cx.ft(w).shape[..] {
        [u, d] if u > 0 && d > 0 => (u, d),
        ref s => {
            return shape_err(format!("the weights must be [units, depth], not {s:?}"));
        }
    };
    let numel: usize = xdims.iter().product();
    if numel == 0 || !numel.is_multiple_of(depth) {
        return shape_err(format!(
            "the input {xdims:?} does not divide into rows of depth {depth}"
        ));
    }
    let kind = cx.kind(x, Some(w), y)?;
    let wt = cx.ft(w).clone();
    if !cx.is_const(w) {
        return unsupported(format!(
            "the weights `{}` are computed at run time; constant weights are needed",
            wt.name
        ));
    }
    // The IR's Gemm has no place for this option, which TensorFlow's converter
    // sets on dynamic-range FULLY_CONNECTED by default: it selects LiteRT's
    // asymmetric hybrid path (spec §7.3), which the runtime does not have yet.
    // `backend/hybrid.rs` refuses the rest of that path; wiring it in means
    // carrying this flag into the IR's Gemm.
    if kind == Kind::Hybrid && asymmetric {
        return unsupported(
            "`asymmetric_quantize_inputs` (per-batch asymmetric input quantization, the default of TensorFlow's converter for dynamic-range FULLY_CONNECTED) runs LiteRT's asymmetric dynamic-range path, which this runtime does not have yet; convert the model with full int8 quantization or keep float weights",
        );
    }
    if kind != Kind::Float {
        let Some(q) = &wt.quant else {
            return dtype_err(format!(
                "int8 weights `{}` have no quantization parameters",
                wt.name
            ));
        };
        // Per-channel weights are symmetric (LiteRT ignores their zero points);
        // per-tensor int8 weights may carry one, hybrid weights may not.
        let per_channel = q.dim.is_some();
        if per_channel && q.dim != Some(0) {
            return dtype_err(format!(
                "weights `{}` are quantized along dimension {:?}; per-channel weights must be quantized along the units (dimension 0)",
                wt.name, q.dim
            ));
        }
        if (per_channel || kind == Kind::Hybrid) && q.zero_point.iter().any(|&z| z != 0) {
            return dtype_err(format!(
                "weights `{}` have nonzero zero points; per-channel and dynamic-range weights must be symmetric",
                wt.name
            ));
        }
    }
    let b = bias(cx, n, kind, units)?;

    let out_dims = if keep_dims {
        if xdims.last() != Some(&depth) {
            return shape_err(format!(
                "`keep_num_dims` needs the input's last dimension to be the depth {depth}, not {xdims:?}"
            ));
        }
        let mut d = xdims.clone();
        if let Some(l) = d.last_mut() {
            *l = units;
        }
        d
    } else {
        vec![numel / depth, units]
    };

    // B [depth, units]: element (d, u) is weight (u, d).
    let wi = cx.input(n, 1, "weights")?;
    let w_ir = cx.t(wi).clone();
    let Some(data) = &w_ir.data else {
        return unsupported("the weights must be a constant");
    };
    let indices: Vec<usize> = (0..depth)
        .flat_map(|d| (0..units).map(move |u| u * depth + d))
        .collect();
    let transposed: Data = data.select(&indices);
    let bt = cx.new_constant(
        format!("{}.transposed", w_ir.name),
        vec![depth, units],
        transposed,
    );
    cx.g.tensors[bt].quant = w_ir.quant.map(|q| Quant {
        axis: q.axis.map(|_| 1),
        ..q
    });

    let mut xi = cx.input(n, 0, "input")?;
    if !keep_dims && xdims != [numel / depth, depth] {
        xi = cx.emit_helper(
            format!("{}.rows", n.name),
            Op::Copy,
            xi,
            vec![numel / depth, depth],
        );
    }
    cx.emit(n, Op::Gemm { act }, vec![Some(xi), Some(bt), b], out_dims)?;
    Ok(())
}

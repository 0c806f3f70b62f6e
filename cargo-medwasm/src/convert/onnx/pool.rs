//! Pooling and reductions: MaxPool, AveragePool, GlobalAveragePool, ReduceMean.

use super::conv::window;
use super::{Cx, OnnxNode, OpDef, R, norm_axis, shape_err, unsupported};
use crate::convert::ProblemKind;
use crate::convert::ir::Op;

pub(super) const OPS: &[OpDef] = &[
    OpDef {
        op: "MaxPool",
        attrs: &[
            "auto_pad",
            "ceil_mode",
            "dilations",
            "kernel_shape",
            "pads",
            "storage_order",
            "strides",
        ],
        translate: pool,
    },
    OpDef {
        op: "AveragePool",
        attrs: &[
            "auto_pad",
            "ceil_mode",
            "count_include_pad",
            "dilations",
            "kernel_shape",
            "pads",
            "strides",
        ],
        translate: pool,
    },
    OpDef {
        op: "GlobalAveragePool",
        attrs: &[],
        translate: global_average_pool,
    },
    OpDef {
        op: "ReduceMean",
        attrs: &["axes", "keepdims", "noop_with_empty_axes"],
        translate: reduce_mean,
    },
];

fn pool(cx: &mut Cx, n: &OnnxNode<'_>) -> R<()> {
    let a = &n.attrs;
    n.only_first_output()?;
    let x = n.input(0, "X")?;
    let xt = cx.t(x).clone();
    let r = xt.dims.len();
    if r != 3 && r != 4 {
        return unsupported(format!(
            "{}-D pooling is not supported (1-D and 2-D only)",
            r.saturating_sub(2)
        ));
    }
    let ks: Vec<usize> = a
        .ints("kernel_shape")?
        .ok_or((ProblemKind::Attribute, "missing `kernel_shape`".to_string()))?
        .iter()
        .map(|&v| v as usize)
        .collect();
    let max = n.op == "MaxPool";
    if max && a.int("storage_order")?.unwrap_or(0) != 0 {
        return unsupported("`storage_order=1` is not supported");
    }
    let ceil = a.int("ceil_mode")?.unwrap_or(0) != 0;
    let (win, out_sp) = window(a, &xt.dims[2..], &ks, ceil)?;
    let mut dims = xt.dims[..2].to_vec();
    dims.extend(out_sp);
    let count_include_pad = a.int("count_include_pad")?.unwrap_or(0) != 0;
    cx.emit(
        n,
        Op::Pool {
            max,
            win,
            count_include_pad,
        },
        vec![Some(x)],
        dims,
    )?;
    Ok(())
}

fn global_average_pool(cx: &mut Cx, n: &OnnxNode<'_>) -> R<()> {
    let x = n.input(0, "X")?;
    let dims = cx.t(x).dims.clone();
    if dims.len() < 3 {
        return shape_err("GlobalAveragePool needs a spatial input");
    }
    let mask = (2..dims.len()).fold(0u32, |m, d| m | (1 << d));
    let mut out = dims.clone();
    out[2..].iter_mut().for_each(|d| *d = 1);
    cx.emit(n, Op::ReduceMean { mask }, vec![Some(x)], out)?;
    Ok(())
}

fn reduce_mean(cx: &mut Cx, n: &OnnxNode<'_>) -> R<()> {
    let a = &n.attrs;
    let x = n.input(0, "X")?;
    let dims = cx.t(x).dims.clone();
    // `axes` is an attribute before opset 18 and a constant input from it.
    let axes: Option<Vec<i64>> = if cx.opset >= 18 {
        match n.opt_input(1) {
            Some(t) => Some(cx.const_ints(t, "axes")?),
            None => None,
        }
    } else {
        a.ints("axes")?.map(|v| v.to_vec())
    };
    let keep = a.int("keepdims")?.unwrap_or(1) != 0;
    let axes = match axes {
        Some(v) if !v.is_empty() => v,
        _ if a.int("noop_with_empty_axes")?.unwrap_or(0) != 0 => {
            cx.alias(n, 0, x);
            return Ok(());
        }
        _ => (0..dims.len() as i64).collect(),
    };
    let mut mask = 0u32;
    for ax in axes {
        mask |= 1 << norm_axis(ax, dims.len())?;
    }
    let out: Vec<usize> = dims
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
    cx.emit(n, Op::ReduceMean { mask }, vec![Some(x)], out)?;
    Ok(())
}

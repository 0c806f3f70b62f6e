//! Convolution, and the window geometry (kernel, strides, dilations, pads,
//! `auto_pad`) it shares with pooling and the quantized operators.

// Window parameters (kernel, strides, dilations, pads) stay below the runtime
// loader's limit, so the model's own names are in the refusal.
use medwasm::format::MAX_WINDOW_PARAM;
use medwasm::kernels::act::Act;

use super::attrs::Attrs;
use super::{Cx, OnnxNode, OpDef, R, shape_err, unsupported};
use crate::convert::ProblemKind;
use crate::convert::ir::{Layout, Op, Window};

pub(super) const OPS: &[OpDef] = &[OpDef {
    op: "Conv",
    attrs: &[
        "auto_pad",
        "dilations",
        "group",
        "kernel_shape",
        "pads",
        "strides",
    ],
    translate: conv,
}];

fn conv(cx: &mut Cx, n: &OnnxNode<'_>) -> R<()> {
    let (xi, wi) = (n.input(0, "X")?, n.input(1, "W")?);
    let (xt, wt) = (cx.t(xi).clone(), cx.t(wi).clone());
    match &wt.data {
        None => return unsupported("Conv with non-constant weights is not supported"),
        Some(d) if d.as_f32().is_none() => {
            return Err((
                ProblemKind::Dtype,
                format!(
                    "Conv with weights of element type {}: float32 weights are needed (int8 weights through a `DequantizeLinear`, or a QLinearConv)",
                    d.dtype().name()
                ),
            ));
        }
        Some(_) => {}
    }
    let (win, group, dims) = geometry(n, &xt.dims, &wt.dims)?;
    let m = wt.dims[0];
    let bias = n.opt_input(2);
    if let Some(b) = bias
        && (cx.t(b).f32s().is_none() || cx.t(b).len() != m)
    {
        return unsupported("Conv bias must be a constant of M elements");
    }
    cx.emit(
        n,
        Op::Conv {
            win,
            group,
            act: Act::None,
            layout: Layout::Nchw,
            depthwise: false,
        },
        vec![Some(xi), Some(wi), bias],
        dims,
    )?;
    Ok(())
}

/// The window, group count and output shape of a Conv (or QLinearConv) of input
/// `x` `[N, C, (H,) W]` and weights `w` `[M, C / group, (kh,) kw]`.
pub(super) fn geometry(
    n: &OnnxNode<'_>,
    x: &[usize],
    w: &[usize],
) -> R<(Window, usize, Vec<usize>)> {
    let a = &n.attrs;
    let r = x.len();
    if r != 3 && r != 4 {
        return unsupported(format!(
            "{}-D convolution is not supported (1-D and 2-D only)",
            r.saturating_sub(2)
        ));
    }
    if w.len() != r {
        return shape_err(format!("weights {:?} do not match input {:?}", w, x));
    }
    if w.contains(&0) {
        return shape_err(format!(
            "weights `{}` of shape {:?} have a zero dimension",
            n.proto.input.get(1).map_or("", String::as_str),
            w
        ));
    }
    let group = match a.int("group")?.unwrap_or(1) {
        g if g >= 1 => g as usize,
        g => return unsupported(format!("`group` {g} must be positive")),
    };
    let kernel_shape: Vec<usize> = w[2..].to_vec();
    if let Some(ks) = a.ints("kernel_shape")?
        && ks.iter().map(|&v| v as usize).collect::<Vec<_>>() != kernel_shape
    {
        return shape_err("`kernel_shape` disagrees with the weights");
    }
    let (win, out_sp) = window(a, &x[2..], &kernel_shape, false)?;
    let c = x[1];
    let m = w[0];
    if !c.is_multiple_of(group) || !m.is_multiple_of(group) || w[1] != c / group {
        return shape_err(format!(
            "group {group} does not fit input channels {c} and weights {:?}",
            w
        ));
    }
    let mut dims = vec![x[0], m];
    dims.extend(out_sp);
    Ok((win, group, dims))
}

/// Window geometry from Conv/pool attributes; returns the output spatial dims.
/// `kernel` must be positive (callers check where it comes from).
pub(super) fn window(
    a: &Attrs<'_>,
    spatial: &[usize],
    kernel: &[usize],
    ceil: bool,
) -> R<(Window, Vec<usize>)> {
    let n = spatial.len();
    if kernel.len() != n || n == 0 || n > 2 {
        return shape_err(format!(
            "kernel {kernel:?} does not fit spatial dims {spatial:?}"
        ));
    }
    if kernel.iter().any(|&k| k == 0 || k >= MAX_WINDOW_PARAM) {
        return shape_err(format!("kernel {kernel:?} must be positive and below 2^24"));
    }
    let get = |name: &str, default: usize| -> R<Vec<usize>> {
        match a.ints(name)? {
            Some(v)
                if v.len() == n
                    && v.iter()
                        .all(|&x| x >= 1 && (x as u64) < MAX_WINDOW_PARAM as u64) =>
            {
                Ok(v.iter().map(|&x| x as usize).collect())
            }
            Some(v) => unsupported(format!(
                "`{name}` {v:?} must be {n} positive values below 2^24"
            )),
            None => Ok(vec![default; n]),
        }
    };
    let strides = get("strides", 1)?;
    let dil = get("dilations", 1)?;
    let auto_pad = a.string("auto_pad")?.unwrap_or_else(|| "NOTSET".into());
    let mut begin = vec![0usize; n];
    let mut end = vec![0usize; n];
    let mut out = vec![0usize; n];
    if auto_pad == "NOTSET"
        && let Some(p) = a.ints("pads")?
        && (p.len() != 2 * n
            || p.iter()
                .any(|&v| v < 0 || v as u64 >= MAX_WINDOW_PARAM as u64))
    {
        return unsupported(format!(
            "`pads` {p:?} must be {} non-negative values below 2^24",
            2 * n
        ));
    }
    // Every parameter is below 2^24 and every dimension below 2^32 (tensors fit in
    // 4 GiB), so none of the sums and products below overflows.
    for d in 0..n {
        let span = (kernel[d] - 1) * dil[d] + 1;
        match auto_pad.as_str() {
            "NOTSET" => {
                if let Some(p) = a.ints("pads")? {
                    begin[d] = p[d] as usize;
                    end[d] = p[n + d] as usize;
                }
                let padded = spatial[d] + begin[d] + end[d];
                if padded < span {
                    return shape_err("the kernel is larger than the padded input");
                }
                out[d] = if ceil {
                    let mut o = (padded - span).div_ceil(strides[d]) + 1;
                    // The last window must start inside the input or the leading pad.
                    if (o - 1) * strides[d] >= spatial[d] + begin[d] {
                        o -= 1;
                    }
                    o
                } else {
                    (padded - span) / strides[d] + 1
                };
            }
            "VALID" => {
                if spatial[d] < span {
                    return shape_err("the kernel is larger than the input");
                }
                out[d] = (spatial[d] - span) / strides[d] + 1;
            }
            "SAME_UPPER" | "SAME_LOWER" => {
                out[d] = spatial[d].div_ceil(strides[d]);
                let total = ((out[d] - 1) * strides[d] + span).saturating_sub(spatial[d]);
                let small = total / 2;
                (begin[d], end[d]) = if auto_pad == "SAME_UPPER" {
                    (small, total - small)
                } else {
                    (total - small, small)
                };
                if total - small >= MAX_WINDOW_PARAM {
                    return unsupported(format!(
                        "`auto_pad={auto_pad}` pads {total} in all, more than the 2^24 the runtime allows"
                    ));
                }
            }
            other => return unsupported(format!("`auto_pad={other}` is not supported")),
        }
    }
    // 1-D runs as 2-D with height 1.
    let (k2, s2, d2, pads) = if n == 1 {
        (
            [1, kernel[0]],
            [1, strides[0]],
            [1, dil[0]],
            [0, begin[0], 0, end[0]],
        )
    } else {
        (
            [kernel[0], kernel[1]],
            [strides[0], strides[1]],
            [dil[0], dil[1]],
            [begin[0], begin[1], end[0], end[1]],
        )
    };
    Ok((
        Window {
            kernel: k2,
            strides: s2,
            dilations: d2,
            pads,
        },
        out,
    ))
}

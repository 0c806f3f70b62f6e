//! Pooling and reductions: MaxPool, AveragePool, GlobalAveragePool, ReduceMean.

use medwasm::format::MAX_RANK;

use super::conv::window;
use super::{Cx, OnnxNode, OpDef, R, norm_axis, shape_err, unsupported};
use crate::convert::ProblemKind;
use crate::convert::ir::{DType, Layout, Op, Window};

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
    let max = n.op == "MaxPool";
    if max && a.int("storage_order")?.unwrap_or(0) != 0 {
        return unsupported("`storage_order=1` is not supported");
    }
    if !max && xt.dtype != DType::F32 {
        // ONNX's AveragePool takes floats only; int8 averages are QLinearAveragePool.
        return unsupported("AveragePool of an int8 tensor; use QLinearAveragePool");
    }
    let (win, out_sp) = geometry(n, &xt.dims[2..])?;
    let mut dims = xt.dims[..2].to_vec();
    dims.extend(out_sp.iter().copied());
    cx.check_fits(n, 0, &dims, xt.dtype)?;
    let count_include_pad = a.int("count_include_pad")?.unwrap_or(0) != 0;
    // A maximum moves int8 values without reading their scale: an int8 MaxPool
    // (QOperator models) keeps its input's type and quantization.
    cx.emit_like(
        n,
        Op::Pool {
            max,
            win,
            count_include_pad,
            layout: Layout::Nchw,
        },
        vec![Some(x)],
        dims,
        x,
    )?;
    Ok(())
}

/// The window and output spatial shape of a pooling node over `spatial` (1 or 2
/// dims): `kernel_shape`, `ceil_mode` and the window attributes; a window that lies
/// entirely in the padding is refused.
pub(super) fn geometry(n: &OnnxNode<'_>, spatial: &[usize]) -> R<(Window, Vec<usize>)> {
    let a = &n.attrs;
    let ks = a
        .ints("kernel_shape")?
        .ok_or((ProblemKind::Attribute, "missing `kernel_shape`".to_string()))?;
    if ks.iter().any(|&v| v < 1) {
        return unsupported(format!("`kernel_shape` {ks:?} must be positive values"));
    }
    let ks: Vec<usize> = ks.iter().map(|&v| v as usize).collect();
    let ceil = a.int("ceil_mode")?.unwrap_or(0) != 0;
    let (win, out_sp) = window(a, spatial, &ks, ceil)?;
    // 1-D runs as 2-D with height 1, as the window does.
    let (sp, out) = match (spatial, out_sp.as_slice()) {
        ([w], [ow]) => ([1, *w], [1, *ow]),
        ([h, w], [oh, ow]) => ([*h, *w], [*oh, *ow]),
        _ => return shape_err("pooling needs 1 or 2 spatial dimensions"),
    };
    if let Some((axis, o)) = window_in_padding(&win, sp, out) {
        // Height is axis 2 of a 4-D input; a 1-D input's width (axis 1 of the 2-D
        // form, whose height never fails) is its axis 2.
        let axis = spatial.len() + axis;
        return unsupported(format!(
            "output {o} along axis {axis} pools a window that lies entirely in the padding (`kernel_shape` {ks:?}, pads top/left/bottom/right {:?}); it has no maximum and nothing to average: make each pad smaller than the kernel",
            win.pads
        ));
    }
    Ok((win, out_sp))
}

/// The first window (spatial axis 0 = height, 1 = width; output index) that taps
/// no input element, if any.
///
/// In padded coordinates the input along an axis is `[p0, p0 + n)` and window `o`
/// taps `o·s + j·d` for `j < k`. A window starting inside the input taps it at once;
/// one starting past its end taps only padding, and as starts grow with `o` the last
/// window tells. A window starting in the leading pad hits the input if its first
/// tap at or past `p0` is one of its taps (`j < k`) and still inside the input (a
/// dilation wider than the input steps over it). The runtime's loader refuses such
/// windows by the same rule.
fn window_in_padding(win: &Window, spatial: [usize; 2], out: [usize; 2]) -> Option<(usize, usize)> {
    for axis in 0..2 {
        let (n, k, s, d) = (
            spatial[axis],
            win.kernel[axis],
            win.strides[axis],
            win.dilations[axis],
        );
        let p0 = win.pads[axis];
        let Some(last) = out[axis].checked_sub(1) else {
            continue;
        };
        for o in 0..out[axis].min(p0.div_ceil(s)) {
            let start = o * s;
            let j = (p0 - start).div_ceil(d);
            if j >= k || start + j * d >= p0 + n {
                return Some((axis, o));
            }
        }
        if last * s >= p0 + n {
            return Some((axis, last));
        }
    }
    None
}

fn global_average_pool(cx: &mut Cx, n: &OnnxNode<'_>) -> R<()> {
    let x = n.input(0, "X")?;
    let dims = cx.t(x).dims.clone();
    if dims.len() < 3 || dims.len() > MAX_RANK {
        return shape_err(format!(
            "GlobalAveragePool needs a spatial input of rank 3 to {MAX_RANK}"
        ));
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
    // The runtime's axis mask has a bit per axis of a rank-6 tensor at most.
    if dims.len() > MAX_RANK {
        return shape_err(format!("rank {} above {MAX_RANK}", dims.len()));
    }
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

#[cfg(test)]
mod tests {
    use super::window_in_padding;
    use crate::convert::ir::Window;

    fn win(k: usize, s: usize, d: usize, p0: usize) -> Window {
        Window {
            kernel: [1, k],
            strides: [1, s],
            dilations: [1, d],
            pads: [0, p0, 0, 0],
        }
    }

    #[test]
    fn finds_windows_that_tap_only_padding() {
        // Width 4, kernel 2, leading pad 1: window 0 taps the pad and element 0.
        assert_eq!(window_in_padding(&win(2, 1, 1, 1), [1, 4], [1, 4]), None);
        // Leading pad 2 with kernel 2: window 0 is all padding.
        assert_eq!(
            window_in_padding(&win(2, 1, 1, 2), [1, 4], [1, 5]),
            Some((1, 0))
        );
        // Width 1, kernel 2, dilation 3, pad 1: taps -1 and 2 step over the input.
        assert_eq!(
            window_in_padding(&win(2, 1, 3, 1), [1, 1], [1, 1]),
            Some((1, 0))
        );
        // A last window that starts past the input (5 outputs of stride 1 on width 2
        // with a trailing pad of 3 and kernel 1): output 4 starts at 4 > 2.
        assert_eq!(
            window_in_padding(&win(1, 1, 1, 0), [1, 2], [1, 5]),
            Some((1, 4))
        );
        // Stride 2 over a leading pad of 3, kernel 2: window 0 taps 0, 1 (both
        // padding).
        assert_eq!(
            window_in_padding(&win(2, 2, 1, 3), [1, 8], [1, 5]),
            Some((1, 0))
        );
        // Kernel 3, pad 2: window 0 reaches element 0 with its last tap.
        assert_eq!(window_in_padding(&win(3, 2, 1, 2), [1, 8], [1, 5]), None);
    }
}

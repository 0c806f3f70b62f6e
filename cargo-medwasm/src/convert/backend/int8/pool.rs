//! AVERAGE_POOL_2D and MAX_POOL_2D (spec §3): NHWC on raw int8 values.

use medwasm::format::OpCode;

use super::{Issues, range_words, unary};
use crate::convert::ProblemKind;
use crate::convert::backend::{Kernel, Operand, Select, fail, window_words};
use crate::convert::ir::{Graph, Layout, Node, Window};

/// The most taps a pooling window may have (the runtime's limit: their i32 sum is
/// exact).
const MAX_POOL_TAPS: usize = medwasm::ops::MAX_POOL_TAPS;

/// AVERAGE_POOL_2D / MAX_POOL_2D (spec §3): NHWC on raw int8 values, so the input
/// and output quantization must agree; the average excludes the padding.
pub(super) fn pool(
    g: &Graph,
    n: &Node,
    max: bool,
    win: &Window,
    count_include_pad: bool,
    layout: Layout,
) -> Select {
    let mut is = Issues::default();
    let Some((x, qi, qo)) = unary(g, n, &mut is) else {
        return Err(is.0);
    };
    let (xd, yd) = (&g.tensors[x].dims, &g.tensors[n.output].dims);
    if layout != Layout::Nhwc || xd.len() != 4 || yd.len() != 4 {
        return fail(
            ProblemKind::Shape,
            "int8 pooling runs 2-D NHWC; a 1-D (3-D tensor) int8 pool is not supported",
        );
    }
    if qi.zp != qo.zp || (qi.scale - qo.scale).abs() > 1e-6 {
        is.dtype(format!(
            "int8 pooling moves raw values, so the input and output must be quantized alike (TFLite assumes it); here scale {} zero point {} becomes scale {} zero point {}",
            qi.scale, qi.zp, qo.scale, qo.zp
        ));
    }
    if !max && count_include_pad {
        is.attribute(
            "an int8 average pool excludes the padding from the count (TFLite's semantics); `count_include_pad` is not supported",
        );
    }
    if win.kernel[0] * win.kernel[1] > MAX_POOL_TAPS {
        is.shape(format!(
            "the pooling window has {} taps; the int8 kernels take at most {MAX_POOL_TAPS}",
            win.kernel[0] * win.kernel[1]
        ));
    }
    let floor_ok = [(1, 0, 2), (2, 1, 3)].iter().all(|&(axis, p0, p1)| {
        let (len, k, s, d) = (
            xd[axis],
            win.kernel[axis - 1],
            win.strides[axis - 1],
            win.dilations[axis - 1],
        );
        let span = (k - 1) * d + 1;
        let padded = len + win.pads[p0] + win.pads[p1];
        padded >= span && (padded - span) / s + 1 == yd[axis]
    });
    if !floor_ok {
        is.attribute(
            "int8 pooling computes its output size by the floor formula (TFLite's SAME and VALID); `ceil_mode` is not supported",
        );
    } else if !windows_touch_input(xd[1], win, 0, yd[1])
        || !windows_touch_input(xd[2], win, 1, yd[2])
    {
        is.attribute("a pooling window lies entirely in the padding: it has nothing to pool");
    }
    let mut params = window_words(n, win)?;
    params.extend(range_words((-128, 127)));
    is.done(|| Kernel {
        op: if max {
            OpCode::QMaxPool
        } else {
            OpCode::QAveragePool
        },
        inputs: vec![Operand::Tensor(x)],
        params,
        scratch: None,
    })
}

/// True when every one of the `out` windows along `axis` (0 height, 1 width) of an
/// input of length `len` has a tap inside the input.
fn windows_touch_input(len: usize, win: &Window, axis: usize, out: usize) -> bool {
    let (k, s, d, p0) = (
        win.kernel[axis],
        win.strides[axis],
        win.dilations[axis],
        win.pads[axis],
    );
    (0..out).all(|o| {
        (0..k).any(|j| {
            let at = o * s + j * d;
            at >= p0 && at < p0 + len
        })
    })
}

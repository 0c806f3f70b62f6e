//! Window geometry of convolutions and pooling: the ten parameter words
//! `kh kw sh sw dh dw pt pl pb pr` read into a [`Geometry`] for NCHW (f32) or
//! NHWC (int8, hybrid) tensors, and the output-size and padding checks.

use super::check::{Cx, need};
use crate::error::Error;
use crate::format::MAX_WINDOW_PARAM;
use crate::kernels::conv::Geometry;
use crate::shape::Dims;

/// Words of the window parameters every window op starts with.
pub const WINDOW_PARAMS: usize = 10;

/// The window words, each positive where it must be and far from overflow.
struct Window {
    kh: usize,
    kw: usize,
    sh: usize,
    sw: usize,
    dh: usize,
    dw: usize,
    pt: usize,
    pl: usize,
    pb: usize,
    pr: usize,
}

fn window(cx: &Cx<'_, '_>) -> Result<Window, Error> {
    let w = Window {
        kh: cx.p(0),
        kw: cx.p(1),
        sh: cx.p(2),
        sw: cx.p(3),
        dh: cx.p(4),
        dw: cx.p(5),
        pt: cx.p(6),
        pl: cx.p(7),
        pb: cx.p(8),
        pr: cx.p(9),
    };
    cx.need(
        w.kh >= 1 && w.kw >= 1 && w.sh >= 1 && w.sw >= 1 && w.dh >= 1 && w.dw >= 1,
        "window parameters must be positive",
    )?;
    // Keep every index computation far from overflow.
    cx.need(
        [w.kh, w.kw, w.sh, w.sw, w.dh, w.dw, w.pt, w.pl, w.pb, w.pr]
            .iter()
            .all(|&v| v < MAX_WINDOW_PARAM),
        "window parameters too large",
    )?;
    Ok(w)
}

/// The geometry of an NCHW window op (`x` `[N, C, (H,) W]`, 1-D as height 1), and
/// its bottom and right pads.
pub(super) fn nchw(
    cx: &Cx<'_, '_>,
    xd: &Dims,
    od: &Dims,
) -> Result<(Geometry, usize, usize), Error> {
    let r = xd.rank();
    cx.need(
        (r == 3 || r == 4) && od.rank() == r,
        "window op needs a 3-D or 4-D input",
    )?;
    let w = window(cx)?;
    let (h, wd, oh, ow) = if r == 4 {
        (xd.get(2), xd.get(3), od.get(2), od.get(3))
    } else {
        (1, xd.get(2), 1, od.get(2))
    };
    cx.need(
        r == 4 || (w.kh == 1 && w.sh == 1 && w.dh == 1 && w.pt == 0 && w.pb == 0),
        "1-D window with a height",
    )?;
    let g = Geometry {
        n: xd.get(0),
        c: xd.get(1),
        h,
        w: wd,
        m: od.get(1),
        oh,
        ow,
        kh: w.kh,
        kw: w.kw,
        sh: w.sh,
        sw: w.sw,
        dh: w.dh,
        dw: w.dw,
        pt: w.pt,
        pl: w.pl,
        group: 1,
    };
    cx.need(od.get(0) == g.n, "window op changes the batch")?;
    Ok((g, w.pb, w.pr))
}

/// The geometry of an NHWC window op (`x` `[N, H, W, C]`, `y` `[N, OH, OW, M]`),
/// with the output size checked against the floor formula (TFLite's SAME and VALID
/// both give it, the trailing pad being the rest of the total).
pub(super) fn nhwc(cx: &Cx<'_, '_>, xd: &Dims, od: &Dims) -> Result<Geometry, Error> {
    cx.need(
        xd.rank() == 4 && od.rank() == 4,
        "NHWC window op needs 4-D tensors",
    )?;
    let w = window(cx)?;
    let g = Geometry {
        n: xd.get(0),
        h: xd.get(1),
        w: xd.get(2),
        c: xd.get(3),
        oh: od.get(1),
        ow: od.get(2),
        m: od.get(3),
        kh: w.kh,
        kw: w.kw,
        sh: w.sh,
        sw: w.sw,
        dh: w.dh,
        dw: w.dw,
        pt: w.pt,
        pl: w.pl,
        group: 1,
    };
    cx.need(od.get(0) == g.n, "window op changes the batch")?;
    check_window(&g, w.pb, w.pr, false, cx.i)?;
    Ok(g)
}

/// Checks that the window fits in the padded input, then the output size against
/// the floor (and, for pooling, ceil) formula.
///
/// In `u64`: the parameters are below 2^24 but their products are not, and on a
/// 32-bit target a wrapped product could pass the check with the wrong geometry.
pub(super) fn check_window(
    g: &Geometry,
    pb: usize,
    pr: usize,
    allow_ceil: bool,
    i: usize,
) -> Result<(), Error> {
    // The dilated window's extent and the padded input's, along one axis.
    let extents = |n: usize, k: usize, d: usize, p0: usize, p1: usize| {
        let [n, k, d, p0, p1] = [n, k, d, p0, p1].map(|v| v as u64);
        ((k - 1) * d + 1, n + p0 + p1)
    };
    let inside = |(span, padded): (u64, u64)| span <= padded;
    need(
        inside(extents(g.h, g.kh, g.dh, g.pt, pb)) && inside(extents(g.w, g.kw, g.dw, g.pl, pr)),
        "window larger than the padded input",
        i,
    )?;
    let fits = |n: usize, k: usize, s: usize, d: usize, p0: usize, p1: usize, out: usize| {
        let (span, padded) = extents(n, k, d, p0, p1);
        let [n, s, p0, out] = [n, s, p0, out].map(|v| v as u64);
        let floor = (padded - span) / s + 1;
        let mut ceil = (padded - span).div_ceil(s) + 1;
        // The last window must start inside the input or the leading pad.
        if (ceil - 1) * s >= n + p0 {
            ceil -= 1;
        }
        out == floor || (allow_ceil && out == ceil)
    };
    need(
        fits(g.h, g.kh, g.sh, g.dh, g.pt, pb, g.oh) && fits(g.w, g.kw, g.sw, g.dw, g.pl, pr, g.ow),
        "window output size does not match the parameters",
        i,
    )
}

/// Refuses a pooling geometry with a window that lies wholly in padding: it has no
/// maximum and nothing to average.
pub(super) fn check_windows_touch_input(g: &Geometry, i: usize) -> Result<(), Error> {
    need(
        windows_touch_input(g.h, g.kh, g.sh, g.dh, g.pt, g.oh)
            && windows_touch_input(g.w, g.kw, g.sw, g.dw, g.pl, g.ow),
        "pooling window lies entirely in padding",
        i,
    )
}

/// True when each of the `out` windows along one axis (input length `n`, kernel
/// `k`, stride `s`, dilation `d`, leading pad `p0`) has a tap on the input.
///
/// In padded coordinates the input is `[p0, p0 + n)` and window `o` taps
/// `o·s + j·d` for `j < k`. A window starting inside the input taps it at once; one
/// starting past its end taps only padding, and since starts grow with `o`, the last
/// window tells. A window starting in the leading pad (fewer than `p0 / s + 1` of
/// them, and `p0 < 2^24`) hits the input if its first tap at or past `p0` is a tap
/// of the window (`j < k`) and still inside the input: with a dilation wider than
/// the input, taps can step over it.
pub(super) fn windows_touch_input(
    n: usize,
    k: usize,
    s: usize,
    d: usize,
    p0: usize,
    out: usize,
) -> bool {
    let [n, k, s, d, p0, out] = [n, k, s, d, p0, out].map(|v| v as u64);
    let Some(last) = out.checked_sub(1) else {
        return true;
    };
    if last * s >= p0 + n {
        return false;
    }
    (0..out.min(p0.div_ceil(s))).all(|o| {
        let start = o * s;
        let j = (p0 - start).div_ceil(d);
        j < k && start + j * d < p0 + n
    })
}

#[cfg(test)]
mod tests {
    use super::windows_touch_input;

    /// The closed form against tapping every window of every small geometry.
    #[test]
    fn windows_touch_input_matches_enumerating_every_tap() {
        let mut refused = 0;
        for n in 1..6 {
            for k in 1..5 {
                for s in 1..4 {
                    for d in 1..5 {
                        for p0 in 0..6 {
                            for out in 1..8 {
                                let brute = (0..out).all(|o| {
                                    (0..k).any(|j| {
                                        let at = o * s + j * d;
                                        at >= p0 && at < p0 + n
                                    })
                                });
                                refused += usize::from(!brute);
                                assert_eq!(
                                    windows_touch_input(n, k, s, d, p0, out),
                                    brute,
                                    "n={n} k={k} s={s} d={d} p0={p0} out={out}"
                                );
                            }
                        }
                    }
                }
            }
        }
        assert!(refused > 0);
    }
}

//! Max and average pooling over 2-D windows (1-D runs with height 1).

use super::conv::Geometry;

/// How an average counts its divisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AvgCount {
    /// Only elements inside the input.
    ExcludePad,
    /// Elements inside the padded input (not those past it from `ceil_mode`).
    IncludePad,
}

/// Window geometry for pooling; `g.m == g.c`, `g.group` unused.
/// `pb`/`pr` are the bottom/right pads, which bound `IncludePad` counting.
pub fn pool(
    g: &Geometry,
    pb: usize,
    pr: usize,
    max: bool,
    count: AvgCount,
    x: &[f32],
    y: &mut [f32],
) {
    for nc in 0..g.n * g.c {
        let xs = &x[nc * g.h * g.w..][..g.h * g.w];
        let ys = &mut y[nc * g.oh * g.ow..][..g.oh * g.ow];
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                let mut acc = if max { f32::NEG_INFINITY } else { 0.0 };
                let mut n_in = 0usize;
                let mut n_pad = 0usize;
                for ky in 0..g.kh {
                    let ry = oy * g.sh + ky * g.dh; // row in padded coordinates
                    if ry >= g.pt + g.h + pb {
                        continue;
                    }
                    for kx in 0..g.kw {
                        let rx = ox * g.sw + kx * g.dw;
                        if rx >= g.pl + g.w + pr {
                            continue;
                        }
                        n_pad += 1;
                        let (Some(iy), Some(ix)) = (ry.checked_sub(g.pt), rx.checked_sub(g.pl))
                        else {
                            continue;
                        };
                        if iy >= g.h || ix >= g.w {
                            continue;
                        }
                        let v = xs[iy * g.w + ix];
                        n_in += 1;
                        if max {
                            // NaN propagates like onnxruntime: any NaN makes the max NaN.
                            if v > acc || v.is_nan() {
                                acc = v;
                            }
                        } else {
                            acc += v;
                        }
                    }
                }
                ys[oy * g.ow + ox] = if max {
                    acc
                } else {
                    let d = match count {
                        AvgCount::ExcludePad => n_in,
                        AvgCount::IncludePad => n_pad,
                    };
                    if d == 0 { 0.0 } else { acc / d as f32 }
                };
            }
        }
    }
}

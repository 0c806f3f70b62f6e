//! int8 average and max pooling, NHWC, TFLite's
//! `reference_integer_ops::AveragePool` / `MaxPool` (spec §3): raw values, no zero
//! point subtracted (input and output share their quantization), padding excluded
//! from the average's count.

use super::conv::in_pos;
use crate::kernels::conv::Geometry;

/// Pools `x` `[n, h, w, c]` into `y` `[n, oh, ow, c]` (`g.m == g.c`), clamping to
/// `[act_min, act_max]`. The loader refuses windows that lie wholly in padding.
pub fn pool(g: &Geometry, max: bool, act_min: i32, act_max: i32, x: &[i8], y: &mut [i8]) {
    for n in 0..g.n {
        let xs = &x[n * g.h * g.w * g.c..][..g.h * g.w * g.c];
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                let out = &mut y[((n * g.oh + oy) * g.ow + ox) * g.c..][..g.c];
                for (ch, o) in out.iter_mut().enumerate() {
                    // The sum of at most 2^23 taps (a loader limit) fits i32 as
                    // TFLite's does; i64 keeps the reference obviously exact.
                    let mut sum = 0i64;
                    let mut count = 0i64;
                    let mut best = i8::MIN as i32;
                    for ky in 0..g.kh {
                        let Some(iy) = in_pos(oy, ky, g.sh, g.dh, g.pt, g.h) else {
                            continue;
                        };
                        for kx in 0..g.kw {
                            let Some(ix) = in_pos(ox, kx, g.sw, g.dw, g.pl, g.w) else {
                                continue;
                            };
                            let v = xs[(iy * g.w + ix) * g.c + ch] as i32;
                            sum += v as i64;
                            count += 1;
                            best = best.max(v);
                        }
                    }
                    let v = if max {
                        best
                    } else if count == 0 {
                        // Unreachable for a loaded model (windows wholly in padding
                        // are refused); TFLite would fail the node.
                        0
                    } else {
                        // Round half away from zero on the raw values, C division.
                        let avg = if sum > 0 {
                            (sum + count / 2) / count
                        } else {
                            (sum - count / 2) / count
                        };
                        avg as i32
                    };
                    *o = v.clamp(act_min, act_max) as i8;
                }
            }
        }
    }
}

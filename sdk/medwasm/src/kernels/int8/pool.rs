//! int8 average and max pooling, NHWC, TFLite's
//! `reference_integer_ops::AveragePool` / `MaxPool` (spec §3): raw values, no zero
//! point subtracted (input and output share their quantization), padding excluded
//! from the average's count.

use super::acc::in_pos;
use crate::kernels::conv::Geometry;

/// Channels whose sums one pass over a window's taps keeps.
const CHANNELS: usize = 64;

/// Pools `x` `[n, h, w, c]` into `y` `[n, oh, ow, c]` (`g.m == g.c`), clamping to
/// `[act_min, act_max]`. The loader refuses windows that lie wholly in padding,
/// and windows of more than 2^23 taps: a sum of int8 values then fits i32, as in
/// TFLite Micro (LiteRT sums in i64, the same values).
pub fn pool(g: &Geometry, max: bool, act_min: i32, act_max: i32, x: &[i8], y: &mut [i8]) {
    let image = g.h * g.w * g.c;
    for n in 0..g.n {
        let xs = &x[n * image..][..image];
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                let out = &mut y[((n * g.oh + oy) * g.ow + ox) * g.c..][..g.c];
                // A block of channels at a time: each in-bounds tap is found once
                // and its channels are contiguous.
                for (block, out) in out.chunks_mut(CHANNELS).enumerate() {
                    let c0 = block * CHANNELS;
                    let mut acc = [if max { i8::MIN as i32 } else { 0 }; CHANNELS];
                    let mut count = 0i32;
                    for ky in 0..g.kh {
                        let Some(iy) = in_pos(oy, ky, g.sh, g.dh, g.pt, g.h) else {
                            continue;
                        };
                        for kx in 0..g.kw {
                            let Some(ix) = in_pos(ox, kx, g.sw, g.dw, g.pl, g.w) else {
                                continue;
                            };
                            count += 1;
                            let px = &xs[(iy * g.w + ix) * g.c + c0..][..out.len()];
                            for (a, &v) in acc.iter_mut().zip(px) {
                                *a = if max {
                                    (*a).max(v as i32)
                                } else {
                                    *a + v as i32
                                };
                            }
                        }
                    }
                    for (o, &sum) in out.iter_mut().zip(&acc) {
                        let v = if max {
                            sum
                        } else if count == 0 {
                            // Unreachable for a loaded model (windows wholly in
                            // padding are refused); TFLite would fail the node.
                            0
                        } else if sum > 0 {
                            // Round half away from zero on the raw values, C division.
                            (sum + count / 2) / count
                        } else {
                            (sum - count / 2) / count
                        };
                        *o = v.max(act_min).min(act_max) as i8;
                    }
                }
            }
        }
    }
}

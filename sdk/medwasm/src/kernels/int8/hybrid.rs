//! Hybrid (dynamic-range) convolution and fully connected: f32 input and output,
//! int8 weights with one per-tensor scale. Each batch (conv) or row (FC) of the
//! input is quantized symmetrically at run time, the int8 products are summed in
//! i32, and the sum is scaled back in f32, as LiteRT's `EvalHybrid` /
//! `EvalHybridDense` do (spec §7.1, §7.3).

use super::conv::{dot, in_pos};
use super::fixed::round_away_f32;
use crate::kernels::act::Act;
use crate::kernels::conv::Geometry;

/// `SymmetricQuantizeFloats`: `q = clamp(round_away(x · 127/r), −127, 127)` with
/// `r = max |x|`; returns the scaling factor `r / 127` (1 for an all-zero input).
pub fn quantize_symmetric(x: &[f32], q: &mut [i8]) -> f32 {
    let (min, max) = x
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            // `std::minmax_element` keeps the first of equal values; for a min and
            // a max that makes no difference.
            (if v < lo { v } else { lo }, if v > hi { v } else { hi })
        });
    let range = if x.is_empty() {
        0.0
    } else {
        min.abs().max(max.abs())
    };
    if range == 0.0 {
        q.fill(0);
        return 1.0;
    }
    let inverse = 127.0 / range;
    for (o, &v) in q.iter_mut().zip(x) {
        // `as i32` saturates (NaN gives 0) where the C cast is undefined.
        *o = (round_away_f32(v * inverse) as i32).clamp(-127, 127) as i8;
    }
    range / 127.0
}

/// Hybrid convolution, group 1: `x` f32 `[n, h, w, c]`, `wt` i8 `[m, kh, kw, c]`
/// with scale `w_scale`, `bias` f32 `[m]`, `y` f32 `[n, oh, ow, m]`; `scratch` holds
/// one quantized batch (`h · w · c` elements).
#[allow(clippy::too_many_arguments)]
pub fn conv(
    g: &Geometry,
    w_scale: f32,
    act: Act,
    x: &[f32],
    wt: &[i8],
    bias: Option<&[f32]>,
    y: &mut [f32],
    scratch: &mut [i8],
) {
    let image = g.h * g.w * g.c;
    let taps = g.kh * g.kw * g.c;
    let q = &mut scratch[..image];
    for n in 0..g.n {
        let factor = quantize_symmetric(&x[n * image..][..image], q) * w_scale;
        let ys = &mut y[n * g.oh * g.ow * g.m..][..g.oh * g.ow * g.m];
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                let out = &mut ys[(oy * g.ow + ox) * g.m..][..g.m];
                for (oc, o) in out.iter_mut().enumerate() {
                    let filter = &wt[oc * taps..][..taps];
                    // Padded taps hold a quantized 0 in upstream's im2col: skipping
                    // them adds the same nothing.
                    let mut acc = 0i32;
                    for ky in 0..g.kh {
                        let Some(iy) = in_pos(oy, ky, g.sh, g.dh, g.pt, g.h) else {
                            continue;
                        };
                        for kx in 0..g.kw {
                            let Some(ix) = in_pos(ox, kx, g.sw, g.dw, g.pl, g.w) else {
                                continue;
                            };
                            let pixel = &q[(iy * g.w + ix) * g.c..][..g.c];
                            let w = &filter[(ky * g.kw + kx) * g.c..][..g.c];
                            acc = acc.wrapping_add(dot(w, pixel, 0));
                        }
                    }
                    // The output starts at 0 and gets `acc · factor` added, then the
                    // bias is added and the activation applied.
                    let mut v = 0.0 + acc as f32 * factor;
                    if let Some(b) = bias {
                        v += b[oc];
                    }
                    *o = v;
                }
            }
        }
    }
    act.apply(y);
}

/// Hybrid fully connected: `x` f32 `[batches, depth]`, `wt` i8 `[units, depth]` with
/// scale `w_scale`, `bias` f32 `[units]`, `y` f32 `[batches, units]`; `scratch`
/// holds one quantized row (`depth` elements).
#[allow(clippy::too_many_arguments)]
pub fn fully_connected(
    batches: usize,
    depth: usize,
    units: usize,
    w_scale: f32,
    act: Act,
    x: &[f32],
    wt: &[i8],
    bias: Option<&[f32]>,
    y: &mut [f32],
    scratch: &mut [i8],
) {
    // The output starts as the bias, broadcast over the batches.
    for row in y.chunks_exact_mut(units) {
        match bias {
            Some(b) => row.copy_from_slice(&b[..units]),
            None => row.fill(0.0),
        }
    }
    // An all-zero input only gets the activation (upstream skips the products).
    if x.iter().all(|&v| v == 0.0) {
        act.apply(y);
        return;
    }
    let q = &mut scratch[..depth];
    for b in 0..batches {
        let factor = quantize_symmetric(&x[b * depth..][..depth], q) * w_scale;
        let out = &mut y[b * units..][..units];
        for (u, o) in out.iter_mut().enumerate() {
            let acc = dot(&wt[u * depth..][..depth], q, 0);
            *o += acc as f32 * factor;
        }
    }
    act.apply(y);
}

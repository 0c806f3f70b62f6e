//! Hybrid (dynamic-range) convolution, depthwise convolution and fully connected:
//! f32 input and output, int8 weights. Each batch (conv) or row (FC) of the input is
//! quantized at run time, the int8 products are summed in i32, and the sum is
//! scaled back in f32, as LiteRT's reference kernels do (spec §7):
//!
//! - [`conv`]: per-tensor weights, symmetric input quantization (`EvalHybrid`);
//! - [`conv_per_channel`]: weights with distinct per-channel scales, asymmetric
//!   input quantization (`EvalHybridPerChannel` → `reference_ops::HybridConvPerChannel`);
//! - [`depthwise`]: always per-channel and asymmetric
//!   (`reference_integer_ops::DepthwiseConvHybridPerChannel`);
//! - [`fully_connected`]: symmetric or asymmetric (`asymmetric_quantize_inputs`),
//!   per-tensor or per-unit scales (`EvalHybridDense`).
//!
//! The input quantizers are the vectorized ones LiteRT runs on x86 (TFLite's NEON
//! code through NEON_2_SSE) and Armv7, which produced the goldens
//! (`expected_tflite_ref.npy`, `conformance/tflite/`): they round part of a row
//! differently and compute the asymmetric range in f32, unlike the portable
//! functions (see [`quantize_asymmetric`]). The f32 operations are upstream's, in
//! upstream's order: conv scales the sum as
//! `(acc · s_w[c]) · s_x`, depthwise as `acc · (s_w[c] · s_x)` and fully connected
//! as `acc · (s_x · s_w[u])`, which round differently.
//!
//! The integer sums come from the same loops as the int8 kernels' ([`super::acc`]
//! with the build's fastest [`super::mac::Mac`] primitives), whose sums are the
//! reference loops' bit for bit.

use super::acc::Sums;
use super::fast::Best;
use super::fixed::{round_away_f32, round_away_f64_to_i32};
use crate::kernels::act::Act;
use crate::kernels::conv::Geometry;

/// Elements quantized in blocks of eight by LiteRT's vectorized quantizers; the
/// rest of a row is quantized one element at a time, with another rounding.
const VECTOR: usize = 8;

/// TFLite's NEON `RoundToNearest` where `vcvtaq_s32_f32` is missing (Armv7 and
/// x86 through NEON_2_SSE): `p ± 0.5` added in f32, then truncated. It differs
/// from rounding half away from zero when the addition itself rounds up to the
/// next integer (`0.49999997 + 0.5` is `1.0` in f32).
#[inline]
fn round_neon(p: f32) -> i32 {
    let half = if p < 0.0 { -0.5 } else { 0.5 };
    // `as i32` truncates toward zero, saturating where the conversion overflows.
    (p + half) as i32
}

/// `SymmetricQuantizeFloats` as LiteRT runs it on x86 and Armv7
/// (`NeonSymmetricQuantizeFloats`, through NEON_2_SSE on x86, `tflite/kernels/
/// internal/optimized/neon_tensor_utils.cc`): `r = max |x|`, scale `r / 127` and
/// inverse `127 / r` in f32, `q = clamp(round(x · inverse), −127, 127)` where the
/// first `len & !7` elements round as NEON's `RoundToNearest` without `vcvta`
/// (`p ± 0.5` in f32, truncated) and the rest half away from zero. Returns the
/// scale (1 for an all-zero input, quantized to zeros).
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
    let vector = x.len() & !(VECTOR - 1);
    for (i, (o, &v)) in q.iter_mut().zip(x).enumerate() {
        let p = v * inverse;
        // `as i32` saturates (NaN gives 0) where the C cast is undefined.
        let r = if i < vector {
            round_neon(p)
        } else {
            round_away_f32(p) as i32
        };
        *o = r.clamp(-127, 127) as i8;
    }
    range / 127.0
}

/// `AsymmetricQuantizeFloats` as LiteRT runs it on x86 and Armv7
/// (`NeonAsymmetricQuantizeFloats`; the portable function,
/// `PortableAsymmetricQuantizeFloats`, subtracts the range in f64 and adds the zero
/// point before rounding, which gives other bits). The range `[min(x, 0), max(x,
/// 0)]` is subtracted in f32, divided by 255 in f64; the zero point is taken from
/// whichever end gives the smaller error, nudged into `−128..=127` (half away from
/// zero); the scale is stored as f32 and its inverse is `1 / scale` in f64 rounded
/// to f32; then `q = clamp(zp + round(x · inverse), −128, 127)` with the first
/// `len & !7` elements rounded as NEON's `RoundToNearest` without `vcvta` and the
/// rest half away from zero. Returns the scale and the zero point; an input with no
/// range (all zeros) gives zeros, scale 1 and zero point 0.
pub fn quantize_asymmetric(x: &[f32], q: &mut [i8]) -> (f32, i32) {
    // `NeonMinMax`: both start at 0.
    let (rmin, rmax) = x.iter().fold((0.0f32, 0.0f32), |(lo, hi), &v| {
        (if v < lo { v } else { lo }, if v > hi { v } else { hi })
    });
    if rmin == rmax {
        q.fill(0);
        return (1.0, 0);
    }
    let (qmin, qmax) = (-128.0f64, 127.0f64);
    let scale = (rmax - rmin) as f64 / (qmax - qmin);
    let (rmin, rmax) = (rmin as f64, rmax as f64);
    let zero_point_from_min = qmin - rmin / scale;
    let zero_point_from_max = qmax - rmax / scale;
    let error_from_min = qmin.abs() + (rmin / scale).abs();
    let error_from_max = qmax.abs() + (rmax / scale).abs();
    let zero_point = if error_from_min < error_from_max {
        zero_point_from_min
    } else {
        zero_point_from_max
    };
    let zero_point = if zero_point <= qmin {
        -128
    } else if zero_point >= qmax {
        127
    } else {
        round_away_f64_to_i32(zero_point)
    };
    let scale = scale as f32;
    let inverse = if scale == 0.0 {
        0.0
    } else {
        (1.0 / scale as f64) as f32
    };
    let vector = x.len() & !(VECTOR - 1);
    for (i, (o, &v)) in q.iter_mut().zip(x).enumerate() {
        let p = v * inverse;
        let r = if i < vector {
            round_neon(p)
        } else {
            round_away_f32(p) as i32
        };
        *o = r.saturating_add(zero_point).clamp(-128, 127) as i8;
    }
    (scale, zero_point)
}

/// Hybrid convolution, group 1, per-tensor weights (`EvalHybrid`): `x` f32 `[n, h,
/// w, c]`, `wt` i8 `[m, kh, kw, c]` with scale `w_scale`, `bias` f32 `[m]`, `y` f32
/// `[n, oh, ow, m]`; `scratch` holds one quantized batch (`h · w · c` elements).
/// Each batch is quantized symmetrically; the output is `0 + acc · (s_x · s_w)`,
/// then the bias, then the activation.
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
    let (image, out) = (g.h * g.w * g.c, g.oh * g.ow * g.m);
    let q = &mut scratch[..image];
    for n in 0..g.n {
        let factor = quantize_symmetric(&x[n * image..][..image], q) * w_scale;
        let ys = &mut y[n * out..][..out];
        // Padded taps hold a quantized 0 in upstream's im2col: skipping them adds
        // the same nothing.
        <Best as Sums>::conv(g, q, 0, wt, |at, oc, acc| {
            // The output starts at 0 and gets `acc · factor` added, then the bias.
            let mut v = 0.0 + acc as f32 * factor;
            if let Some(b) = bias {
                v += b[oc];
            }
            ys[at * g.m + oc] = v;
        });
    }
    act.apply(y);
}

/// Hybrid convolution, group 1, weights with distinct per-channel scales
/// (`EvalHybridPerChannel`, `reference_ops::HybridConvPerChannel`): as [`conv`]
/// with `w_scales` f32 `[m]`; each batch is quantized asymmetrically
/// ([`quantize_asymmetric`]), padded taps are skipped (a quantized zero point,
/// real 0), and the output is `(acc · s_w[c]) · s_x`, then the bias, then the
/// activation.
#[allow(clippy::too_many_arguments)]
pub fn conv_per_channel(
    g: &Geometry,
    w_scales: &[f32],
    act: Act,
    x: &[f32],
    wt: &[i8],
    bias: Option<&[f32]>,
    y: &mut [f32],
    scratch: &mut [i8],
) {
    let (image, out) = (g.h * g.w * g.c, g.oh * g.ow * g.m);
    let q = &mut scratch[..image];
    for n in 0..g.n {
        let (s_x, zp) = quantize_asymmetric(&x[n * image..][..image], q);
        let ys = &mut y[n * out..][..out];
        <Best as Sums>::conv(g, q, -zp, wt, |at, oc, acc| {
            let mut v = acc as f32 * w_scales[oc] * s_x;
            if let Some(b) = bias {
                v += b[oc];
            }
            ys[at * g.m + oc] = v;
        });
    }
    act.apply(y);
}

/// Hybrid depthwise convolution (`DepthwiseConvHybridPerChannel`): `x` f32 `[n, h,
/// w, c]`, `wt` i8 `[1, kh, kw, m]` with `m = c · multiplier` and `w_scales` f32
/// `[m]`, output channel `oc` reading input channel `oc / multiplier`, `bias` f32
/// `[m]`, `y` f32 `[n, oh, ow, m]`; `scratch` holds one quantized batch. Each batch
/// is quantized asymmetrically; the output is `acc · (s_w[c] · s_x)`, then the
/// bias, then the activation.
#[allow(clippy::too_many_arguments)]
pub fn depthwise(
    g: &Geometry,
    w_scales: &[f32],
    act: Act,
    x: &[f32],
    wt: &[i8],
    bias: Option<&[f32]>,
    y: &mut [f32],
    scratch: &mut [i8],
) {
    let (image, out) = (g.h * g.w * g.c, g.oh * g.ow * g.m);
    let q = &mut scratch[..image];
    for n in 0..g.n {
        let (s_x, zp) = quantize_asymmetric(&x[n * image..][..image], q);
        let ys = &mut y[n * out..][..out];
        <Best as Sums>::depthwise(g, q, -zp, wt, |at, oc, acc| {
            let mut v = acc as f32 * (w_scales[oc] * s_x);
            if let Some(b) = bias {
                v += b[oc];
            }
            ys[at * g.m + oc] = v;
        });
    }
    act.apply(y);
}

/// The weight scales of a hybrid fully connected layer.
#[derive(Debug, Clone, Copy)]
pub enum HybridScales<'a> {
    /// One scale for every unit.
    PerTensor(f32),
    /// One scale per unit.
    PerUnit(&'a [f32]),
}

/// Hybrid fully connected (`EvalHybridDense`): `x` f32 `[batches, depth]`, `wt` i8
/// `[units, depth]` with `scales`, `bias` f32 `[units]`, `y` f32 `[batches,
/// units]`; `scratch` holds one quantized row (`depth` elements). Each row is
/// quantized symmetrically, or asymmetrically with `asymmetric`
/// (`asymmetric_quantize_inputs`); the output starts as the bias and gets
/// `acc · (s_x · s_w[u])` added, then the activation. An input that is all zeros
/// only gets the activation (upstream skips the products).
#[allow(clippy::too_many_arguments)]
pub fn fully_connected(
    batches: usize,
    depth: usize,
    units: usize,
    asymmetric: bool,
    scales: HybridScales<'_>,
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
    if x.iter().all(|&v| v == 0.0) {
        act.apply(y);
        return;
    }
    let q = &mut scratch[..depth];
    for b in 0..batches {
        let xs = &x[b * depth..][..depth];
        let (s_x, zp) = if asymmetric {
            quantize_asymmetric(xs, q)
        } else {
            (quantize_symmetric(xs, q), 0)
        };
        let out = &mut y[b * units..][..units];
        <Best as Sums>::fully_connected(depth, units, q, -zp, wt, |u, acc| {
            // Per-tensor weights: upstream folds the scale into the row's factor
            // first, the same product.
            let scale = match scales {
                HybridScales::PerTensor(s) => s_x * s,
                HybridScales::PerUnit(s) => s_x * s[u],
            };
            out[u] += acc as f32 * scale;
        });
    }
    act.apply(y);
}

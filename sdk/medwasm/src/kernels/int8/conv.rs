//! int8 convolution and depthwise convolution (NHWC input and output, OHWI and 1HWO
//! weights), TFLite's `reference_integer_ops::ConvPerChannel` and
//! `DepthwiseConvPerChannel` (spec §2.3, §2.5).
//!
//! Padded taps are skipped, which in the integer domain is padding with the input
//! zero point. The accumulation is exact i32 arithmetic that the loader proved
//! cannot overflow, so the order of the additions does not change the result and
//! a faster kernel may regroup them; the per-tap dot product over input channels
//! is [`dot`], the function a SIMD or DSP version replaces.

use super::fixed::mbqm;
use crate::kernels::conv::Geometry;

/// Requantization and clamp of one int8 convolution or fully-connected node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requant {
    /// Input zero point (the kernel adds its negation to every input value).
    pub zp_in: i32,
    /// Output zero point.
    pub zp_out: i32,
    /// Lowest output value (the fused activation's range, within i8).
    pub act_min: i32,
    /// Highest output value.
    pub act_max: i32,
}

impl Requant {
    /// `acc` scaled by `(m, shift)`, offset by the output zero point and clamped.
    #[inline]
    pub fn output(&self, acc: i32, m: i32, shift: i32) -> i8 {
        // Saturating: the same value wherever upstream's i32 addition is defined.
        let y = mbqm(acc, m, shift).saturating_add(self.zp_out);
        y.clamp(self.act_min, self.act_max) as i8
    }
}

/// `Σ w[i] · (x[i] + x_off)` over the shorter of the two slices, in i32.
///
/// The scalar reference of the inner loop of every int8 convolution and fully
/// connected layer. Each product fits in 17 bits; the loader proves the sum of
/// their magnitudes (plus the bias) fits in i32, so any summation order gives the
/// same result and a SIMD version may use another.
#[inline]
pub fn dot(w: &[i8], x: &[i8], x_off: i32) -> i32 {
    w.iter().zip(x).fold(0i32, |acc, (&w, &x)| {
        acc.wrapping_add(w as i32 * (x as i32 + x_off))
    })
}

/// The per-channel multiplier and shift of output channel `c` (one pair may serve
/// every channel).
#[inline]
fn channel(mult: &[i32], shift: &[i32], c: usize) -> (i32, i32) {
    if mult.len() == 1 {
        (mult[0], shift[0])
    } else {
        (mult[c], shift[c])
    }
}

/// int8 convolution, group 1: `x` `[n, h, w, c]`, `wt` `[m, kh, kw, c]`, `bias`
/// `[m]`, `mult`/`shift` `[m]` or `[1]`, `y` `[n, oh, ow, m]`.
#[allow(clippy::too_many_arguments)]
pub fn conv(
    g: &Geometry,
    q: &Requant,
    x: &[i8],
    wt: &[i8],
    bias: Option<&[i32]>,
    mult: &[i32],
    shift: &[i32],
    y: &mut [i8],
) {
    let x_off = -q.zp_in;
    let taps = g.kh * g.kw * g.c;
    for n in 0..g.n {
        let xs = &x[n * g.h * g.w * g.c..][..g.h * g.w * g.c];
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                let out = &mut y[((n * g.oh + oy) * g.ow + ox) * g.m..][..g.m];
                for (oc, o) in out.iter_mut().enumerate() {
                    let filter = &wt[oc * taps..][..taps];
                    let mut acc = 0i32;
                    for ky in 0..g.kh {
                        let Some(iy) = in_pos(oy, ky, g.sh, g.dh, g.pt, g.h) else {
                            continue;
                        };
                        for kx in 0..g.kw {
                            let Some(ix) = in_pos(ox, kx, g.sw, g.dw, g.pl, g.w) else {
                                continue;
                            };
                            let pixel = &xs[(iy * g.w + ix) * g.c..][..g.c];
                            let w = &filter[(ky * g.kw + kx) * g.c..][..g.c];
                            acc = acc.wrapping_add(dot(w, pixel, x_off));
                        }
                    }
                    if let Some(b) = bias {
                        acc = acc.wrapping_add(b[oc]);
                    }
                    let (m, s) = channel(mult, shift, oc);
                    *o = q.output(acc, m, s);
                }
            }
        }
    }
}

/// int8 depthwise convolution: `x` `[n, h, w, c]`, `wt` `[1, kh, kw, m]` with
/// `m = c · multiplier`, output channel `oc` reading input channel
/// `oc / multiplier`; `y` `[n, oh, ow, m]`.
#[allow(clippy::too_many_arguments)]
pub fn depthwise(
    g: &Geometry,
    q: &Requant,
    x: &[i8],
    wt: &[i8],
    bias: Option<&[i32]>,
    mult: &[i32],
    shift: &[i32],
    y: &mut [i8],
) {
    let x_off = -q.zp_in;
    let multiplier = g.m / g.c;
    for n in 0..g.n {
        let xs = &x[n * g.h * g.w * g.c..][..g.h * g.w * g.c];
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                let out = &mut y[((n * g.oh + oy) * g.ow + ox) * g.m..][..g.m];
                for (oc, o) in out.iter_mut().enumerate() {
                    let ic = oc / multiplier;
                    let mut acc = 0i32;
                    for ky in 0..g.kh {
                        let Some(iy) = in_pos(oy, ky, g.sh, g.dh, g.pt, g.h) else {
                            continue;
                        };
                        for kx in 0..g.kw {
                            let Some(ix) = in_pos(ox, kx, g.sw, g.dw, g.pl, g.w) else {
                                continue;
                            };
                            let v = xs[(iy * g.w + ix) * g.c + ic] as i32 + x_off;
                            let w = wt[(ky * g.kw + kx) * g.m + oc] as i32;
                            acc = acc.wrapping_add(w * v);
                        }
                    }
                    if let Some(b) = bias {
                        acc = acc.wrapping_add(b[oc]);
                    }
                    let (m, s) = channel(mult, shift, oc);
                    *o = q.output(acc, m, s);
                }
            }
        }
    }
}

/// The input row (or column) that output position `o` reads for kernel tap `k`,
/// if it lies inside the input of length `len` (not in the padding).
#[inline]
pub(crate) fn in_pos(
    o: usize,
    k: usize,
    stride: usize,
    dilation: usize,
    pad: usize,
    len: usize,
) -> Option<usize> {
    (o * stride + k * dilation)
        .checked_sub(pad)
        .filter(|&i| i < len)
}

//! int8 convolution and depthwise convolution (NHWC input and output, OHWI and 1HWO
//! weights), TFLite's `reference_integer_ops::ConvPerChannel` and
//! `DepthwiseConvPerChannel` (spec §2.3, §2.5).
//!
//! Padded taps are skipped, which in the integer domain is padding with the input
//! zero point. The accumulation is exact i32 arithmetic that the loader proved
//! cannot overflow, so the order of the additions does not change the result: the
//! `*_ref` kernels add in TFLite's order, the others take their sums from
//! [`super::acc`]'s blocked loops over the build's fastest [`super::mac::Mac`]
//! primitives, and both requantize each sum with the same scalar [`Requant`].

use super::acc::{Best, Reference, Sums};
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
/// `[m]`, `mult`/`shift` `[m]` or `[1]`, `y` `[n, oh, ow, m]`. The sums come from
/// the build's fastest primitives ([`super::acc::Best`]); the result is
/// [`conv_ref`]'s, bit for bit.
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
    for n in 0..g.n {
        let (xs, ys) = batch(g, x, y, n);
        <Best as Sums>::conv(g, xs, -q.zp_in, wt, requantize(g, q, bias, mult, shift, ys));
    }
}

/// [`conv`] with TFLite's reference loops: the definition the others match.
#[allow(clippy::too_many_arguments)]
pub fn conv_ref(
    g: &Geometry,
    q: &Requant,
    x: &[i8],
    wt: &[i8],
    bias: Option<&[i32]>,
    mult: &[i32],
    shift: &[i32],
    y: &mut [i8],
) {
    for n in 0..g.n {
        let (xs, ys) = batch(g, x, y, n);
        <Reference as Sums>::conv(g, xs, -q.zp_in, wt, requantize(g, q, bias, mult, shift, ys));
    }
}

/// int8 depthwise convolution: `x` `[n, h, w, c]`, `wt` `[1, kh, kw, m]` with
/// `m = c · multiplier`, output channel `oc` reading input channel
/// `oc / multiplier`; `y` `[n, oh, ow, m]`. [`depthwise_ref`]'s result, from the
/// build's fastest primitives.
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
    for n in 0..g.n {
        let (xs, ys) = batch(g, x, y, n);
        <Best as Sums>::depthwise(g, xs, -q.zp_in, wt, requantize(g, q, bias, mult, shift, ys));
    }
}

/// [`depthwise`] with TFLite's reference loops.
#[allow(clippy::too_many_arguments)]
pub fn depthwise_ref(
    g: &Geometry,
    q: &Requant,
    x: &[i8],
    wt: &[i8],
    bias: Option<&[i32]>,
    mult: &[i32],
    shift: &[i32],
    y: &mut [i8],
) {
    for n in 0..g.n {
        let (xs, ys) = batch(g, x, y, n);
        <Reference as Sums>::depthwise(
            g,
            xs,
            -q.zp_in,
            wt,
            requantize(g, q, bias, mult, shift, ys),
        );
    }
}

/// Batch `n` of the input and of the output.
#[inline(always)]
fn batch<'x, 'y>(g: &Geometry, x: &'x [i8], y: &'y mut [i8], n: usize) -> (&'x [i8], &'y mut [i8]) {
    let image = g.h * g.w * g.c;
    let out = g.oh * g.ow * g.m;
    (&x[n * image..][..image], &mut y[n * out..][..out])
}

/// The sink that requantizes a sum into one batch `ys` of the output:
/// `output(acc + bias[oc], mult[oc], shift[oc])` at position `at`, channel `oc`.
#[inline(always)]
fn requantize<'a>(
    g: &Geometry,
    q: &'a Requant,
    bias: Option<&'a [i32]>,
    mult: &'a [i32],
    shift: &'a [i32],
    ys: &'a mut [i8],
) -> impl FnMut(usize, usize, i32) + 'a {
    let m = g.m;
    move |at, oc, acc| {
        let acc = match bias {
            Some(b) => acc.wrapping_add(b[oc]),
            None => acc,
        };
        let (mul, s) = channel(mult, shift, oc);
        ys[at * m + oc] = q.output(acc, mul, s);
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

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

use super::acc::{Reference, Sink, Sums};
use super::fast::Best;
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
    #[inline(always)]
    pub fn output(&self, acc: i32, m: i32, shift: i32) -> i8 {
        // Saturating: the same value wherever upstream's i32 addition is defined.
        let y = mbqm(acc, m, shift).saturating_add(self.zp_out);
        // `max` then `min` rather than `clamp`, which would check `min <= max` on
        // every output (the loader did, once).
        y.max(self.act_min).min(self.act_max) as i8
    }
}

/// The per-channel multiplier and shift of output channel `c` (one pair may serve
/// every channel).
#[inline(always)]
fn channel(mult: &[i32], shift: &[i32], c: usize) -> (i32, i32) {
    if mult.len() == 1 {
        (mult[0], shift[0])
    } else {
        (mult[c], shift[c])
    }
}

/// int8 convolution, group 1: `x` `[n, h, w, c]`, `wt` `[m, kh, kw, c]`, `bias`
/// `[m]`, `mult`/`shift` `[m]` or `[1]`, `y` `[n, oh, ow, m]`. The sums come from
/// the build's fastest primitives ([`super::fast::Best`]); the result is
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

/// The sink that requantizes the sums of one batch into `ys`: per output channel
/// it prepares a [`PreparedChannel`], then writes `output(acc + bias[oc], mult[oc],
/// shift[oc])` at each position.
#[inline(always)]
fn requantize<'a>(
    g: &Geometry,
    q: &'a Requant,
    bias: Option<&'a [i32]>,
    mult: &'a [i32],
    shift: &'a [i32],
    ys: &'a mut [i8],
) -> RequantSink<'a> {
    RequantSink {
        m: g.m,
        q,
        bias,
        mult,
        shift,
        ys,
    }
}

/// See [`requantize`].
struct RequantSink<'a> {
    m: usize,
    q: &'a Requant,
    bias: Option<&'a [i32]>,
    mult: &'a [i32],
    shift: &'a [i32],
    ys: &'a mut [i8],
}

impl Sink for RequantSink<'_> {
    type Channel = PreparedChannel;

    #[inline(always)]
    fn channel(&mut self, oc: usize) -> PreparedChannel {
        let (m, s) = channel(self.mult, self.shift, oc);
        PreparedChannel::new(self.bias.map_or(0, |b| b[oc]), m, s)
    }

    #[inline(always)]
    fn put(&mut self, channel: &PreparedChannel, at: usize, oc: usize, acc: i32) {
        self.ys[at * self.m + oc] = channel.output(self.q, acc);
    }
}

/// One output channel's requantization with the per-value work of [`mbqm`] done
/// once: the bias, the multiplier, the left shift, and the right shift's mask and
/// half-mask. For every multiplier the loader accepts (0 or in `[2^30, 2^31 − 1]`,
/// so never `i32::MIN`, the one value `srdhm` saturates for), [`PreparedChannel::output`]
/// is [`Requant::output`] of `acc + bias`, bit for bit (tested against it).
#[derive(Debug, Clone, Copy)]
pub struct PreparedChannel {
    bias: i32,
    m: i32,
    left: u32,
    right: u32,
    mask: i32,
    half: i32,
}

impl PreparedChannel {
    /// Prepares `bias`, multiplier `m` and `shift` (in `-31..=30`).
    #[inline(always)]
    pub fn new(bias: i32, m: i32, shift: i32) -> PreparedChannel {
        let right = (-shift).max(0) as u32;
        let mask = ((1u32 << right) - 1) as i32;
        PreparedChannel {
            bias,
            m,
            left: shift.max(0) as u32,
            right,
            mask,
            half: mask >> 1,
        }
    }

    /// `q.output(acc + bias, m, shift)`.
    #[inline(always)]
    pub fn output(&self, q: &Requant, acc: i32) -> i8 {
        let x = acc.wrapping_add(self.bias).wrapping_shl(self.left);
        // `srdhm(x, m)` for `m != i32::MIN`, where the product cannot overflow.
        let x = ((x as i64 * self.m as i64 + (1 << 30)) >> 31) as i32;
        // `rdbpot(x, right)`: ties away from zero.
        let threshold = self.half + i32::from(x < 0);
        let x = (x >> self.right) + i32::from((x & self.mask) > threshold);
        let y = x.saturating_add(q.zp_out);
        y.max(q.act_min).min(q.act_max) as i8
    }
}

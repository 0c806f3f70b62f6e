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
use super::requant::{Int8Out, PreparedChannel, Requant, channel};
use crate::kernels::conv::Geometry;

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
    fn int8(&mut self) -> Option<Int8Out<'_>> {
        Some(Int8Out {
            q: self.q,
            bias: self.bias,
            mult: self.mult,
            shift: self.shift,
            ys: self.ys,
        })
    }

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

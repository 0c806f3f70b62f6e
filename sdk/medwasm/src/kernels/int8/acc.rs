//! The integer accumulators of the int8 and hybrid convolution, depthwise
//! convolution and fully connected kernels, apart from what each kernel does with
//! them (requantize to int8, or scale to f32): each loop hands every output's sum
//! `Σ w · (x + x_off)` over its in-bounds taps to a `sink(position, channel, acc)`.
//!
//! Two loop nests per family: `*_ref`, TFLite's reference loop order (one output
//! channel at a time, one dot product over the input channels per tap), and the
//! blocked one, generic over the [`Mac`] primitives: per output position, the taps
//! inside the input become a few contiguous runs ([`Seg`]: with dilation 1 along
//! the width a whole kernel row is one run of `kw' · C` elements in both the NHWC
//! input and the OHWI weights), computed once and shared by every block of
//! [`ROWS`] output channels, whose sums the primitives keep in registers. Both give
//! the same sums bit for bit (see [`super::mac`]); the SDK's battery checks it on
//! every target.

use super::mac::{LANES, Mac, ROWS, Scalar, Seg, Tap};
use super::requant::Int8Out;
use crate::kernels::conv::Geometry;

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

/// Where the convolution loops hand their sums. A sink prepares what one output
/// channel needs once ([`Sink::channel`]: the requantization's multiplier, shifts
/// and bias) and then takes that channel's sums at any number of positions
/// ([`Sink::put`]); a loop that handles many positions per channel prepares it
/// once for all of them.
pub trait Sink {
    /// What the sink prepares per output channel.
    type Channel;

    /// Prepares output channel `oc`.
    fn channel(&mut self, oc: usize) -> Self::Channel;

    /// The sum of position `at`, output channel `oc` (prepared as `channel`).
    fn put(&mut self, channel: &Self::Channel, at: usize, oc: usize, acc: i32);

    /// The int8 requantization this sink applies and the output it writes, for a
    /// loop that requantizes in its own code (the Cortex-M DSP loops do, in
    /// assembly); `None`, the default, for every other sink.
    fn int8(&mut self) -> Option<Int8Out<'_>> {
        None
    }
}

/// Any `FnMut(position, channel, sum)` is a sink that prepares nothing.
impl<F: FnMut(usize, usize, i32)> Sink for F {
    type Channel = ();

    #[inline(always)]
    fn channel(&mut self, _: usize) {}

    #[inline(always)]
    fn put(&mut self, _: &(), at: usize, oc: usize, acc: i32) {
        self(at, oc, acc)
    }
}

/// Hands one sum to `sink`, preparing its channel for it alone.
#[inline(always)]
pub fn put<S: Sink>(sink: &mut S, at: usize, oc: usize, acc: i32) {
    let c = sink.channel(oc);
    sink.put(&c, at, oc, acc);
}

/// Runs or taps gathered per output position before the primitives run over them;
/// a position with more (large or dilated kernels) is done in several passes.
pub(crate) const CHUNK: usize = 16;

/// Convolution, group 1, TFLite's loop: `x` one batch `[h, w, c]`, `wt` `[m, kh,
/// kw, c]`; `sink(oy · ow + ox, oc, acc)` for every output in order.
pub fn conv_ref(g: &Geometry, x: &[i8], x_off: i32, wt: &[i8], mut sink: impl Sink) {
    let taps = g.kh * g.kw * g.c;
    for oy in 0..g.oh {
        for ox in 0..g.ow {
            for oc in 0..g.m {
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
                        let pixel = &x[(iy * g.w + ix) * g.c..][..g.c];
                        let w = &filter[(ky * g.kw + kx) * g.c..][..g.c];
                        acc = acc.wrapping_add(dot(w, pixel, x_off));
                    }
                }
                put(&mut sink, oy * g.ow + ox, oc, acc);
            }
        }
    }
}

/// The contiguous runs of one output position of a convolution, in kernel order.
struct Runs<'g> {
    g: &'g Geometry,
    ox: usize,
    oy: usize,
    ky: usize,
    kx: usize,
}

impl<'g> Runs<'g> {
    fn new(g: &'g Geometry, oy: usize, ox: usize) -> Self {
        Runs {
            g,
            ox,
            oy,
            ky: 0,
            kx: 0,
        }
    }

    /// Fills `buf` with the next runs; returns how many (0 when done).
    fn fill(&mut self, buf: &mut [Seg; CHUNK]) -> usize {
        let mut n = 0;
        while n < CHUNK && self.ky < self.g.kh {
            if let Some(s) = self.next_run() {
                buf[n] = s;
                n += 1;
            }
        }
        n
    }

    /// The run at the current tap, if inside the input, and advances past it.
    fn next_run(&mut self) -> Option<Seg> {
        let g = self.g;
        let ky = self.ky;
        let Some(iy) = in_pos(self.oy, ky, g.sh, g.dh, g.pt, g.h) else {
            self.ky += 1;
            return None;
        };
        if g.dw == 1 {
            // One run per kernel row: the taps whose column `ox·sw + kx − pl` lies in
            // `0..w`.
            self.ky += 1;
            let start = self.ox * g.sw;
            let lo = g.pl.saturating_sub(start);
            let hi = g.kw.min((g.w + g.pl).saturating_sub(start));
            if lo >= hi {
                return None;
            }
            return Some(Seg {
                x: (iy * g.w + start + lo - g.pl) * g.c,
                w: (ky * g.kw + lo) * g.c,
                len: (hi - lo) * g.c,
            });
        }
        // Dilated columns are apart: one run of `c` per tap.
        let kx = self.kx;
        self.kx += 1;
        if self.kx == g.kw {
            self.kx = 0;
            self.ky += 1;
        }
        let ix = in_pos(self.ox, kx, g.sw, g.dw, g.pl, g.w)?;
        Some(Seg {
            x: (iy * g.w + ix) * g.c,
            w: (ky * g.kw + kx) * g.c,
            len: g.c,
        })
    }
}

/// [`conv_ref`]'s sums with the primitives of `M` ([`Loops::conv`]); `sink` gets
/// every output once, in another order.
pub fn conv<M: Loops>(g: &Geometry, x: &[i8], x_off: i32, wt: &[i8], sink: impl Sink) {
    M::conv(g, x, x_off, wt, sink)
}

/// [`conv_ref`]'s sums, blocked over output channels: the runs of each position
/// once, then [`Mac::dot4`] per block of channels.
pub fn conv_runs<M: Mac>(g: &Geometry, x: &[i8], x_off: i32, wt: &[i8], mut sink: impl Sink) {
    let taps = g.kh * g.kw * g.c;
    let mut buf = [Seg::default(); CHUNK];
    let most = if g.dw == 1 { g.kh } else { g.kh * g.kw };
    for oy in 0..g.oh {
        for ox in 0..g.ow {
            let at = oy * g.ow + ox;
            if most <= CHUNK {
                // Every run fits the buffer: gathered once for all the channels.
                let n = Runs::new(g, oy, ox).fill(&mut buf);
                channels::<M>(x, x_off, wt, taps, g.m, &buf[..n], |oc, acc| {
                    put(&mut sink, at, oc, acc)
                });
                continue;
            }
            // More runs than the buffer holds: each block of channels walks them in
            // chunks, its sums carried from one chunk to the next.
            let mut oc = 0;
            while oc < g.m {
                let rows = if g.m - oc >= ROWS { ROWS } else { 1 };
                let mut acc = [0i32; ROWS];
                let mut runs = Runs::new(g, oy, ox);
                let w = &wt[oc * taps..];
                loop {
                    let n = runs.fill(&mut buf);
                    if n == 0 {
                        break;
                    }
                    if rows == ROWS {
                        M::dot4(x, x_off, w, taps, &buf[..n], &mut acc);
                    } else {
                        acc[0] = acc[0].wrapping_add(M::dot1(x, x_off, w, &buf[..n]));
                    }
                }
                for (r, &a) in acc.iter().enumerate().take(rows) {
                    put(&mut sink, at, oc + r, a);
                }
                oc += rows;
            }
        }
    }
}

/// The sums of `m` weight rows of `stride` elements over the same runs: blocks of
/// [`ROWS`], then one row at a time; `sink(row, acc)`.
#[inline(always)]
fn channels<M: Mac>(
    x: &[i8],
    x_off: i32,
    wt: &[i8],
    stride: usize,
    m: usize,
    runs: &[Seg],
    mut sink: impl FnMut(usize, i32),
) {
    let mut oc = 0;
    while oc + ROWS <= m {
        let mut acc = [0i32; ROWS];
        M::dot4(x, x_off, &wt[oc * stride..], stride, runs, &mut acc);
        for (r, &a) in acc.iter().enumerate() {
            sink(oc + r, a);
        }
        oc += ROWS;
    }
    while oc < m {
        sink(oc, M::dot1(x, x_off, &wt[oc * stride..], runs));
        oc += 1;
    }
}

/// Depthwise convolution, TFLite's loop: `x` one batch `[h, w, c]`, `wt` `[1, kh,
/// kw, m]` with `m = c · multiplier`; output channel `oc` reads input channel
/// `oc / multiplier`; `sink(oy · ow + ox, oc, acc)` in order.
pub fn depthwise_ref(g: &Geometry, x: &[i8], x_off: i32, wt: &[i8], mut sink: impl Sink) {
    let multiplier = g.m / g.c;
    for oy in 0..g.oh {
        for ox in 0..g.ow {
            for oc in 0..g.m {
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
                        let v = x[(iy * g.w + ix) * g.c + ic] as i32 + x_off;
                        let w = wt[(ky * g.kw + kx) * g.m + oc] as i32;
                        acc = acc.wrapping_add(w * v);
                    }
                }
                put(&mut sink, oy * g.ow + ox, oc, acc);
            }
        }
    }
}

/// [`depthwise_ref`]'s sums with the primitives of `M` ([`Loops::depthwise`]).
pub fn depthwise<M: Loops>(g: &Geometry, x: &[i8], x_off: i32, wt: &[i8], sink: impl Sink) {
    M::depthwise(g, x, x_off, wt, sink)
}

/// [`depthwise_ref`]'s sums: with depth multiplier 1, [`LANES`] channels at a time
/// over the position's in-bounds taps with [`Mac::depthwise8`] (the rest one
/// channel at a time); other multipliers take the reference loop.
pub fn depthwise_blocked<M: Mac>(
    g: &Geometry,
    x: &[i8],
    x_off: i32,
    wt: &[i8],
    mut sink: impl Sink,
) {
    if g.m != g.c {
        return depthwise_ref(g, x, x_off, wt, sink);
    }
    let mut buf = [Tap::default(); CHUNK];
    let chunked = g.kh * g.kw > CHUNK;
    for oy in 0..g.oh {
        for ox in 0..g.ow {
            let at = oy * g.ow + ox;
            if !chunked {
                let n = Taps::new(g, oy, ox).fill(&mut buf);
                depthwise_taps::<M>(x, x_off, wt, g.c, &buf[..n], |c, acc| {
                    put(&mut sink, at, c, acc)
                });
                continue;
            }
            // More taps than the buffer holds: each block of channels walks them in
            // chunks, its sums carried from one chunk to the next.
            let mut ch = 0;
            while ch < g.c {
                let lanes = if g.c - ch >= LANES { LANES } else { 1 };
                let mut acc = [0i32; LANES];
                let mut taps = Taps::new(g, oy, ox);
                loop {
                    let n = taps.fill(&mut buf);
                    if n == 0 {
                        break;
                    }
                    if lanes == LANES {
                        M::depthwise8(x, x_off, wt, &buf[..n], ch, &mut acc);
                    } else {
                        acc[0] = acc[0].wrapping_add(tap_sum(x, x_off, wt, &buf[..n], ch));
                    }
                }
                for (l, &a) in acc.iter().enumerate().take(lanes) {
                    put(&mut sink, at, ch + l, a);
                }
                ch += lanes;
            }
        }
    }
}

/// The in-bounds taps of one output position of a depthwise convolution.
pub(crate) struct Taps<'g> {
    g: &'g Geometry,
    oy: usize,
    ox: usize,
    ky: usize,
    kx: usize,
}

impl<'g> Taps<'g> {
    pub(crate) fn new(g: &'g Geometry, oy: usize, ox: usize) -> Self {
        Taps {
            g,
            oy,
            ox,
            ky: 0,
            kx: 0,
        }
    }

    /// Fills `buf` with the next taps; returns how many (0 when done).
    pub(crate) fn fill(&mut self, buf: &mut [Tap; CHUNK]) -> usize {
        let g = self.g;
        let mut n = 0;
        while n < CHUNK && self.ky < g.kh {
            let at = in_pos(self.oy, self.ky, g.sh, g.dh, g.pt, g.h)
                .zip(in_pos(self.ox, self.kx, g.sw, g.dw, g.pl, g.w));
            if let Some((iy, ix)) = at {
                buf[n] = Tap {
                    x: (iy * g.w + ix) * g.c,
                    w: (self.ky * g.kw + self.kx) * g.c,
                };
                n += 1;
            }
            self.kx += 1;
            if self.kx == g.kw {
                self.kx = 0;
                self.ky += 1;
            }
        }
        n
    }
}

/// Channel `ch`'s sum over `taps`.
#[inline(always)]
pub(crate) fn tap_sum(x: &[i8], x_off: i32, wt: &[i8], taps: &[Tap], ch: usize) -> i32 {
    taps.iter().fold(0i32, |acc, t| {
        acc.wrapping_add(wt[t.w + ch] as i32 * (x[t.x + ch] as i32 + x_off))
    })
}

/// Every channel's sum over `taps`: blocks of [`LANES`], then one channel at a time.
#[inline(always)]
fn depthwise_taps<M: Mac>(
    x: &[i8],
    x_off: i32,
    wt: &[i8],
    c: usize,
    taps: &[Tap],
    mut sink: impl FnMut(usize, i32),
) {
    let mut ch = 0;
    while ch + LANES <= c {
        let mut acc = [0i32; LANES];
        M::depthwise8(x, x_off, wt, taps, ch, &mut acc);
        for (l, &a) in acc.iter().enumerate() {
            sink(ch + l, a);
        }
        ch += LANES;
    }
    while ch < c {
        sink(ch, tap_sum(x, x_off, wt, taps, ch));
        ch += 1;
    }
}

/// Fully connected, TFLite's loop, one input row `x` of `depth` against `wt`
/// `[units, depth]`: `sink(unit, acc)` in order.
pub fn fully_connected_ref(
    depth: usize,
    units: usize,
    x: &[i8],
    x_off: i32,
    wt: &[i8],
    mut sink: impl FnMut(usize, i32),
) {
    for u in 0..units {
        sink(u, dot(&wt[u * depth..][..depth], &x[..depth], x_off));
    }
}

/// [`fully_connected_ref`]'s sums with the primitives of `M`
/// ([`Loops::fully_connected`]).
pub fn fully_connected<M: Loops>(
    depth: usize,
    units: usize,
    x: &[i8],
    x_off: i32,
    wt: &[i8],
    sink: impl FnMut(usize, i32),
) {
    M::fully_connected(depth, units, x, x_off, wt, sink)
}

/// [`fully_connected_ref`]'s sums, [`ROWS`] units at a time over [`Mac::dot4`].
pub fn fully_connected_rows<M: Mac>(
    depth: usize,
    units: usize,
    x: &[i8],
    x_off: i32,
    wt: &[i8],
    sink: impl FnMut(usize, i32),
) {
    let whole = [Seg {
        x: 0,
        w: 0,
        len: depth,
    }];
    channels::<M>(x, x_off, wt, depth, units, &whole, sink);
}

/// The whole loops of a set of [`Mac`] primitives: by default the blocked loops
/// of this module over them; an instruction set may replace a whole loop where it
/// wants another blocking (the Cortex-M DSP one does, `mac_dsp.rs`).
pub trait Loops: Mac {
    /// Convolution sums (see [`conv_ref`]): by default [`conv_runs`].
    fn conv(g: &Geometry, x: &[i8], x_off: i32, wt: &[i8], sink: impl Sink) {
        conv_runs::<Self>(g, x, x_off, wt, sink)
    }

    /// Depthwise convolution sums (see [`depthwise_ref`]): by default
    /// [`depthwise_blocked`].
    fn depthwise(g: &Geometry, x: &[i8], x_off: i32, wt: &[i8], sink: impl Sink) {
        depthwise_blocked::<Self>(g, x, x_off, wt, sink)
    }

    /// Fully connected sums of one row (see [`fully_connected_ref`]): by default
    /// [`fully_connected_rows`].
    fn fully_connected(
        depth: usize,
        units: usize,
        x: &[i8],
        x_off: i32,
        wt: &[i8],
        sink: impl FnMut(usize, i32),
    ) {
        fully_connected_rows::<Self>(depth, units, x, x_off, wt, sink)
    }
}

impl Loops for Scalar {}

/// A family of sum loops: what a kernel takes its integer sums from.
pub trait Sums {
    /// Name for reports.
    const NAME: &'static str;

    /// Convolution sums (see [`conv_ref`]).
    fn conv(g: &Geometry, x: &[i8], x_off: i32, wt: &[i8], sink: impl Sink);

    /// Depthwise convolution sums (see [`depthwise_ref`]).
    fn depthwise(g: &Geometry, x: &[i8], x_off: i32, wt: &[i8], sink: impl Sink);

    /// Fully connected sums of one input row (see [`fully_connected_ref`]).
    fn fully_connected(
        depth: usize,
        units: usize,
        x: &[i8],
        x_off: i32,
        wt: &[i8],
        sink: impl FnMut(usize, i32),
    );
}

/// TFLite's reference loops.
#[derive(Debug, Clone, Copy)]
pub struct Reference;

impl Sums for Reference {
    const NAME: &'static str = "reference";

    fn conv(g: &Geometry, x: &[i8], x_off: i32, wt: &[i8], sink: impl Sink) {
        conv_ref(g, x, x_off, wt, sink)
    }

    fn depthwise(g: &Geometry, x: &[i8], x_off: i32, wt: &[i8], sink: impl Sink) {
        depthwise_ref(g, x, x_off, wt, sink)
    }

    fn fully_connected(
        depth: usize,
        units: usize,
        x: &[i8],
        x_off: i32,
        wt: &[i8],
        sink: impl FnMut(usize, i32),
    ) {
        fully_connected_ref(depth, units, x, x_off, wt, sink)
    }
}

/// The blocked loops over the primitives of `M`.
#[derive(Debug, Clone, Copy)]
pub struct Blocked<M>(core::marker::PhantomData<M>);

impl<M: Loops> Sums for Blocked<M> {
    const NAME: &'static str = M::NAME;

    fn conv(g: &Geometry, x: &[i8], x_off: i32, wt: &[i8], sink: impl Sink) {
        conv::<M>(g, x, x_off, wt, sink)
    }

    fn depthwise(g: &Geometry, x: &[i8], x_off: i32, wt: &[i8], sink: impl Sink) {
        depthwise::<M>(g, x, x_off, wt, sink)
    }

    fn fully_connected(
        depth: usize,
        units: usize,
        x: &[i8],
        x_off: i32,
        wt: &[i8],
        sink: impl FnMut(usize, i32),
    ) {
        fully_connected::<M>(depth, units, x, x_off, wt, sink)
    }
}

//! The requantization of an int8 convolution's or fully connected layer's sums:
//! [`Requant`] (TFLite's `MultiplyByQuantizedMultiplier`, the output zero point
//! and the activation clamp) and the forms the fast loops use, each the same bits:
//! [`PreparedChannel`] (the per-value work done once per channel), [`FusedChannel`]
//! (the five words the Cortex-M DSP assembly reads) and [`Int8Out`] (what a loop
//! that requantizes in its own code is handed). Below the loops of `acc` and the
//! kernels of `conv` and `fc`, which all use it.

use super::fixed::mbqm;

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
pub(crate) fn channel(mult: &[i32], shift: &[i32], c: usize) -> (i32, i32) {
    if mult.len() == 1 {
        (mult[0], shift[0])
    } else {
        (mult[c], shift[c])
    }
}

/// One output channel's requantization in the form the Cortex-M DSP loops compute
/// in assembly (`medwasm_dsp_requant` in `mac_dsp.rs` reads these five words and
/// does each step of [`FusedChannel::output`]), for right shifts `r = −shift` in
/// `1..=31` only: `[bias, m, r − 1, lo, hi]`, `lo`/`hi` the 64-bit `2^30 +
/// 2^(30+r)`.
///
/// TFLite's `rdbpot(srdhm(x, m), r)` (`x = acc + bias`, wrapping as the Rust
/// does) is `⌊(s + 2^(r−1) − [s < 0]) / 2^r⌋` of `s = ⌊(x·m + 2^30) / 2^31⌋`
/// (ties away from zero), and nested floors of divisions by integers merge: the
/// output is `⌊(x·m + 2^30 + 2^(30+r) − [s < 0]·2^31) / 2^(31+r)⌋`, two
/// multiply-accumulates onto that 64-bit constant and one shift of its high word by
/// `r − 1`. `[s < 0]` is taken as `[x < 0]`: they differ only when `s = 0` (`x =
/// −1` with `m = 2^30`, or `m = 0`), where both give 0. `m` is never `i32::MIN`
/// (the loader accepts 0 or `[2^30, 2^31 − 1]`), so `srdhm` never saturates and
/// `|x·m| < 2^62` stays inside the 64 bits. Tested against [`Requant::output`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C)]
pub struct FusedChannel {
    bias: i32,
    m: i32,
    r1: u32,
    lo: u32,
    hi: u32,
}

impl FusedChannel {
    /// Prepares `bias`, multiplier `m` and `shift`; `None` unless `shift` is in
    /// `-31..=-1`.
    #[inline(always)]
    pub fn new(bias: i32, m: i32, shift: i32) -> Option<FusedChannel> {
        if !(-31..=-1).contains(&shift) {
            return None;
        }
        let r = (-shift) as u32;
        let k = (1u64 << 30) + (1u64 << (30 + r));
        Some(FusedChannel {
            bias,
            m,
            r1: r - 1,
            lo: k as u32,
            hi: (k >> 32) as u32,
        })
    }

    /// `q.output(acc + bias, m, shift)`, step by step as the assembly does it.
    pub fn output(&self, q: &Requant, acc: i32) -> i8 {
        // `ADD`.
        let x = acc.wrapping_add(self.bias);
        let k = ((self.hi as u64) << 32 | self.lo as u64) as i64;
        // `SMLAL` of `x · m`, then of `[x < 0] · i32::MIN` (modulo 2^64, as `SMLAL`).
        let p = k.wrapping_add(x as i64 * self.m as i64);
        let p = p.wrapping_add((x as u32 >> 31) as i64 * i32::MIN as i64);
        // `ASR` of the high word.
        let y = ((p >> 32) as i32) >> self.r1;
        // `QADD`, then the clamp.
        y.saturating_add(q.zp_out).max(q.act_min).min(q.act_max) as i8
    }
}

/// What a [`RequantSink`] computes, for a loop that requantizes its sums in its
/// own code: output channel `oc` of position `at` is `q.output(acc + bias[oc],
/// mult[oc], shift[oc])` at `ys[at · m + oc]` (`m` output channels; one multiplier
/// and shift may serve every channel, see [`Int8Out::channel`]).
#[derive(Debug)]
pub struct Int8Out<'a> {
    /// Zero points and activation range.
    pub q: &'a Requant,
    /// Per-channel bias, if any.
    pub bias: Option<&'a [i32]>,
    /// Multipliers, `[m]` or `[1]`.
    pub mult: &'a [i32],
    /// Shifts, `[m]` or `[1]`.
    pub shift: &'a [i32],
    /// The batch's output, `[oh, ow, m]`.
    pub ys: &'a mut [i8],
}

impl Int8Out<'_> {
    /// Output channel `oc`'s bias, multiplier and shift.
    #[inline(always)]
    pub fn channel(&self, oc: usize) -> (i32, i32, i32) {
        let (m, s) = channel(self.mult, self.shift, oc);
        (self.bias.map_or(0, |b| b[oc]), m, s)
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

//! int8 MEAN over a set of axes: LiteRT's BUILTIN_REF `QuantizedMeanOrSum`
//! (`compute_sum = false`, spec §6.4), an i32 sum per output element requantized
//! with the multiplier of `s_in / s_out` folded with `1 / n`.

use super::fixed::mbqm;
use crate::format::MAX_RANK;
use crate::kernels::Counter;
use crate::shape::Dims;

/// MEAN parameters: `m`, `shift` are TFLite's after `Prepare`; [`MeanParams::new`]
/// folds in the element count as `Eval` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeanParams {
    /// Multiplier with `1 / n` folded in.
    pub m: i32,
    /// Its shift (−31..=30).
    pub shift: i32,
    /// Elements averaged per output (≥ 1).
    pub n: i32,
    /// Input zero point.
    pub zp_in: i32,
    /// Output zero point.
    pub zp_out: i32,
}

impl MeanParams {
    /// Folds `1 / n` into `(m, shift)` exactly as upstream's `Eval` does:
    /// `k = min(floor(log2 n), 32, 31 + shift)`, `m' = (m << k) / n`,
    /// `shift' = shift − k`. `n ≥ 1`, `m ≥ 0`, `shift ≥ −31`.
    pub fn new(m: i32, shift: i32, n: i32, zp_in: i32, zp_out: i32) -> MeanParams {
        let floor_log2 = 31 - (n.max(1) as u32).leading_zeros() as i32;
        let k = floor_log2.min(32).min(31 + shift).max(0);
        // m < 2^31 and 2^k ≤ n, so the quotient is below 2^31.
        let folded = (((m as i64) << k) / n.max(1) as i64) as i32;
        MeanParams {
            m: folded,
            shift: shift - k,
            n,
            zp_in,
            zp_out,
        }
    }
}

/// Mean of `x` (shape `xd`) over the axes set in `mask`; `y` holds the kept axes in
/// order (with or without the reduced ones as 1s: the same elements).
pub fn mean(p: &MeanParams, x: &[i8], xd: &Dims, mask: u32, y: &mut [i8]) {
    let dims = xd.as_slice();
    let strides = xd.strides();
    // The kept and the reduced axes, each with its input stride.
    let (mut kept, mut kept_strides) = ([1usize; MAX_RANK], [0usize; MAX_RANK]);
    let (mut reduced, mut reduced_strides) = ([1usize; MAX_RANK], [0usize; MAX_RANK]);
    let (mut nk, mut nr) = (0, 0);
    for (d, (&len, &stride)) in dims.iter().zip(&strides).enumerate() {
        if mask & (1 << d) == 0 {
            (kept[nk], kept_strides[nk]) = (len, stride);
            nk += 1;
        } else {
            (reduced[nr], reduced_strides[nr]) = (len, stride);
            nr += 1;
        }
    }
    let offset =
        |c: &Counter, s: &[usize]| -> usize { c.index().iter().zip(s).map(|(i, s)| i * s).sum() };
    let mut outer = Counter::new(&kept[..nk]);
    for o in y.iter_mut() {
        let base = offset(&outer, &kept_strides);
        // Upstream sums in input order with a wrapping i32 add; the loader keeps
        // the count small enough that the sum is exact, so any order agrees.
        let mut sum = 0i32;
        let mut inner = Counter::new(&reduced[..nr]);
        loop {
            sum = sum.wrapping_add(x[base + offset(&inner, &reduced_strides)] as i32);
            if !inner.advance() {
                break;
            }
        }
        let shifted = sum.wrapping_sub(p.zp_in.wrapping_mul(p.n));
        let r = mbqm(shifted, p.m, p.shift).saturating_add(p.zp_out);
        *o = r.clamp(-128, 127) as i8;
        outer.advance();
    }
}

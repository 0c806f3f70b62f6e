//! int8 softmax over the last axis: TFLite's `reference_ops::Softmax<int8, int8>`,
//! the gemmlowp fixed-point path that BUILTIN_REF and TFLite Micro run (spec §5.1).
//! The output is quantized with scale 1/256 and zero point −128.

use super::fixed::{exp_on_negative_values, rdbpot, reciprocal_q12, srdhm};

/// The longest row the loader accepts: the Q12.19 sum of up to 511 exponentials
/// stays below 2^28, which keeps the final shift at most 31. From 512 elements at
/// the row maximum on, upstream shifts an i32 by 32 or more (undefined in C++).
pub const MAX_DEPTH: usize = 511;

/// Softmax parameters, from TFLite's `Prepare`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoftmaxParams {
    /// `beta · s_in · 2^26` as a multiplier (≥ 2^30).
    pub m: i32,
    /// Its left shift (0..=31).
    pub left_shift: u8,
    /// Differences from the row maximum below this contribute nothing (≤ 0).
    pub diff_min: i32,
}

impl SoftmaxParams {
    /// `d · 2^left_shift` scaled by the multiplier: Q5.26. The loader keeps
    /// `|diff_min| · 2^left_shift` within 31 · 2^26, so the shift never overflows
    /// for the differences that reach it.
    #[inline]
    fn scaled_diff(&self, d: i32) -> i32 {
        srdhm(
            d.wrapping_mul(1i32.wrapping_shl(self.left_shift as u32)),
            self.m,
        )
    }
}

/// Softmax of `rows` rows of `depth` elements each.
pub fn softmax(p: &SoftmaxParams, rows: usize, depth: usize, x: &[i8], y: &mut [i8]) {
    for r in 0..rows {
        let row = &x[r * depth..][..depth];
        let out = &mut y[r * depth..][..depth];
        let max = row.iter().fold(i8::MIN, |m, &v| m.max(v)) as i32;
        // Q12.19: each term rounds exp (Q0.31) to 19 fractional bits.
        let mut sum = 0i32;
        for &v in row {
            let d = v as i32 - max;
            if d >= p.diff_min {
                sum = sum.wrapping_add(rdbpot(exp_on_negative_values(p.scaled_diff(d)), 12));
            }
        }
        let (inverse, bits_over_unit) = reciprocal_q12(sum);
        // In 23..=31 for rows of at most `MAX_DEPTH` (the maximum contributes 2^19).
        let exponent = (bits_over_unit + 31 - 8) as u32;
        for (&v, o) in row.iter().zip(out.iter_mut()) {
            let d = v as i32 - max;
            *o = if d >= p.diff_min {
                let e = exp_on_negative_values(p.scaled_diff(d));
                let u = rdbpot(srdhm(inverse, e), exponent) - 128;
                u.clamp(-128, 127) as i8
            } else {
                -128
            };
        }
    }
}

//! The fixed-point arithmetic of TFLite's int8 reference kernels (gemmlowp's
//! `fixedpoint.h` and TFLite's `common.h`), restated exactly: the rounding of every
//! helper is part of the result, so each is written to give the same bits as the
//! C++ for every input the loader lets through (spec §1, §5.1, §5.3).
//!
//! Where upstream relies on C++ signed overflow, the loader proves the overflow
//! cannot happen for the blob it accepts; the `wrapping_*` calls here only keep a
//! debug build from panicking on values that would be the same either way.

/// `SaturatingRoundingDoublingHighMul`: `a·b / 2^31` rounded to nearest, ties
/// toward +∞, saturating the one overflowing case `i32::MIN · i32::MIN`.
///
/// gemmlowp adds a nudge of `2^30` (or `1 − 2^30` for a negative product) and
/// divides with C truncation; the floor form here gives the same result for every
/// pair (tested against the literal form).
#[inline(always)]
pub fn srdhm(a: i32, b: i32) -> i32 {
    if a == b && a == i32::MIN {
        return i32::MAX;
    }
    ((a as i64 * b as i64 + (1 << 30)) >> 31) as i32
}

/// `RoundingDivideByPOT`: `x / 2^e` rounded to nearest, ties away from zero, for
/// `e` in `0..=31`.
#[inline(always)]
pub fn rdbpot(x: i32, e: u32) -> i32 {
    let mask = ((1u32 << e) - 1) as i32;
    let remainder = x & mask;
    let threshold = (mask >> 1) + i32::from(x < 0);
    (x >> e) + i32::from(remainder > threshold)
}

/// `MultiplyByQuantizedMultiplier`, the double-rounding form that LiteRT's
/// BUILTIN_REF is built with: `x·2^left` (left = max(shift, 0)), then [`srdhm`]
/// by `m`, then [`rdbpot`] by `max(−shift, 0)`. `shift` is in `-31..=30`.
#[inline(always)]
pub fn mbqm(x: i32, m: i32, shift: i32) -> i32 {
    let left = shift.max(0) as u32;
    let right = (-shift).max(0) as u32;
    rdbpot(srdhm(x.wrapping_mul(1 << left), m), right)
}

/// `x` shifted left by `k` (1..=31), saturating at the `i32` limits when
/// `|x| > 2^(31−k) − 1` (gemmlowp's `SaturatingRoundingMultiplyByPOT<k>`).
#[inline]
pub fn sat_shl(x: i32, k: u32) -> i32 {
    let threshold = (1i32 << (31 - k)) - 1;
    if x > threshold {
        i32::MAX
    } else if x < -threshold {
        i32::MIN
    } else {
        x << k
    }
}

/// gemmlowp's `RoundingHalfSum`: `(a + b) / 2` rounded half away from zero.
#[inline]
pub fn rounding_half_sum(a: i32, b: i32) -> i32 {
    let sum = a as i64 + b as i64;
    let sign = if sum >= 0 { 1 } else { -1 };
    ((sum + sign) / 2) as i32
}

/// `exp(a)` for `a` in `[−1/4, 0)`, in Q0.31: gemmlowp's Taylor series around −1/8
/// (`exp_on_interval_between_negative_one_quarter_and_0_excl`).
#[inline]
pub fn exp_on_interval(a: i32) -> i32 {
    // exp(-1/8) and 1/3 in Q0.31.
    const EXP_MINUS_ONE_EIGHTH: i32 = 1_895_147_668;
    const ONE_THIRD: i32 = 715_827_883;
    let x = a.wrapping_add(1 << 28);
    let x2 = srdhm(x, x);
    let x3 = srdhm(x2, x);
    let x4 = srdhm(x2, x2);
    let x4_over_4 = rdbpot(x4, 2);
    let tail = rdbpot(
        srdhm(x4_over_4.wrapping_add(x3), ONE_THIRD).wrapping_add(x2),
        1,
    );
    EXP_MINUS_ONE_EIGHTH.wrapping_add(srdhm(EXP_MINUS_ONE_EIGHTH, x.wrapping_add(tail)))
}

/// `exp(a)` for `a ≤ 0` given in Q5.26, as Q0.31 (gemmlowp's
/// `exp_on_negative_values` with 5 integer bits, what softmax uses).
#[inline]
pub fn exp_on_negative_values(a: i32) -> i32 {
    const QUARTER: i32 = 1 << 24; // 1/4 in Q5.26
    // exp(-2^k) in Q0.31 for k = -2..=4, applied for each set bit of the remainder.
    const BARREL: [(u32, i32); 7] = [
        (24, 1_672_461_947),
        (25, 1_302_514_674),
        (26, 790_015_084),
        (27, 290_630_308),
        (28, 39_332_535),
        (29, 720_401),
        (30, 242),
    ];
    let a_mod_quarter_minus_quarter = (a & (QUARTER - 1)) - QUARTER;
    // Rescale from 5 integer bits to 0: a saturating shift by 5 that never
    // saturates here (the value lies in [-2^24, 0)).
    let mut result = exp_on_interval(sat_shl(a_mod_quarter_minus_quarter, 5));
    let remainder = a_mod_quarter_minus_quarter.wrapping_sub(a);
    for (bit, multiplier) in BARREL {
        if remainder & (1 << bit) != 0 {
            result = srdhm(result, multiplier);
        }
    }
    if a == 0 { i32::MAX } else { result }
}

/// `1 / (1 + a)` for `a` in `[0, 1)` given in Q0.31, as Q0.31: three
/// Newton–Raphson steps in Q2.29 (gemmlowp's `one_over_one_plus_x_for_x_in_0_1`).
#[inline]
pub fn one_over_one_plus_x(a: i32) -> i32 {
    const FORTY_EIGHT_OVER_SEVENTEEN: i32 = 1_515_870_810; // Q2.29
    const MINUS_THIRTY_TWO_OVER_SEVENTEEN: i32 = -1_010_580_540; // Q2.29
    const ONE_Q2_29: i32 = 1 << 29;
    let half_denominator = rounding_half_sum(a, i32::MAX);
    let mut x = FORTY_EIGHT_OVER_SEVENTEEN
        .wrapping_add(srdhm(half_denominator, MINUS_THIRTY_TWO_OVER_SEVENTEEN));
    for _ in 0..3 {
        let half_denominator_times_x = srdhm(half_denominator, x);
        let one_minus = ONE_Q2_29.wrapping_sub(half_denominator_times_x);
        x = x.wrapping_add(sat_shl(srdhm(x, one_minus), 2));
    }
    sat_shl(x, 1)
}

/// TFLite's `GetReciprocal(x, 12)` for a positive Q12.19 sum: `(1/x` normalized to
/// Q0.31, the number of bits the sum has above 1.0`)`.
#[inline]
pub fn reciprocal_q12(x: i32) -> (i32, i32) {
    let headroom_plus_one = (x as u32).leading_zeros();
    let bits_over_unit = 12 - headroom_plus_one as i32;
    let shifted_minus_one = ((x as u32)
        .checked_shl(headroom_plus_one)
        .unwrap_or(0)
        .wrapping_sub(1 << 31)) as i32;
    (one_over_one_plus_x(shifted_minus_one), bits_over_unit)
}

/// `round(x)` with ties away from zero, exactly (C's `roundf`), without `std`.
#[inline]
pub fn round_away_f32(x: f32) -> f32 {
    // From 2^23 on every f32 is an integer (and NaN/±inf stay as they are).
    if x.is_nan() || x.abs() >= 8_388_608.0 {
        return x;
    }
    // Truncation is exact below 2^23, and so is the fraction `x - t`.
    let t = x as i32 as f32;
    let f = x - t;
    let r = if f >= 0.5 {
        t + 1.0
    } else if f <= -0.5 {
        t - 1.0
    } else {
        t
    };
    // A result of zero keeps the sign of `x`, as `roundf` does (-0.3 gives -0).
    f32::from_bits(r.to_bits() | (x.to_bits() & 0x8000_0000))
}

/// `(i32) round(x)` with ties away from zero (C's `round` on a double), saturating
/// where the C cast would be undefined (NaN gives 0).
///
/// Integer operations on the bits of `x` only: on a Cortex-M4F, whose FPU has no
/// double precision, the f64 truncations, subtraction and comparisons a float
/// formulation needs are each a library call, and this is the per-output step of
/// every `--fc-requant litert-ref` fully connected layer.
#[inline]
pub fn round_away_f64_to_i32(x: f64) -> i32 {
    let bits = x.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    if biased == 0x7ff {
        // NaN gives 0, ±∞ saturate.
        return x as i32;
    }
    // |x| < 0.5 (zeros and subnormals included) rounds to 0.
    if biased < 1022 {
        return 0;
    }
    // |x| = mant · 2^e with the implicit bit set (x is normal here).
    let mant = (bits & ((1u64 << 52) - 1)) | (1u64 << 52);
    let e = biased - 1075;
    let magnitude = if e >= 11 {
        // |x| ≥ 2^63: far past the i32 range.
        u64::MAX
    } else if e >= 0 {
        mant << e
    } else {
        // 1 ≤ −e ≤ 53: add half of the last kept unit, then drop the fraction;
        // mant + 2^52 < 2^54 cannot overflow.
        let drop = (-e) as u32;
        (mant + (1u64 << (drop - 1))) >> drop
    };
    if bits >> 63 == 0 {
        magnitude.min(i32::MAX as u64) as i32
    } else {
        (magnitude.min(1u64 << 31) as i64).wrapping_neg() as i32
    }
}

/// The 16-bit [`srdhm`] (hard swish): `a·b / 2^15` rounded, ties toward +∞,
/// saturating `i16::MIN · i16::MIN`.
#[inline]
pub fn srdhm16(a: i16, b: i16) -> i16 {
    if a == b && a == i16::MIN {
        return i16::MAX;
    }
    ((a as i32 * b as i32 + (1 << 14)) >> 15) as i16
}

/// TFLite's 16-bit `SaturatingDoublingHighMul`: `a·b / 2^15` truncated toward
/// zero (no rounding), saturating `i16::MIN · i16::MIN`.
#[inline]
pub fn sdhm16(a: i16, b: i16) -> i16 {
    if a == b && a == i16::MIN {
        return i16::MAX;
    }
    ((a as i32 * b as i32) / (1 << 15)) as i16
}

/// The 16-bit [`rdbpot`] (hard swish), for `e` in `0..=15`.
#[inline]
pub fn rdbpot16(x: i16, e: u32) -> i16 {
    let mask = ((1u32 << e) - 1) as i16;
    let remainder = x & mask;
    let threshold = (mask >> 1) + i16::from(x < 0);
    (x >> e) + i16::from(remainder > threshold)
}

/// TFLite's `SaturatingLeftShift` on i16: `value · 2^amount` clamped to i16, for
/// `amount` in `0..=31`.
#[inline]
pub fn sat_shl16(value: i16, amount: u32) -> i16 {
    (value as i64 * (1i64 << amount)).clamp(i16::MIN as i64, i16::MAX as i64) as i16
}

//! Independent re-statements of TFLite's int8 arithmetic, for the tests'
//! expectations: written from the definitions (exact products in i128, the
//! rounding rule stated as a rule), never by calling the SDK's kernels.

/// `QuantizeMultiplier` (spec §1.1): `d = q · 2^e` with `0.5 ≤ q < 1`, `M =
/// round_away(q · 2^31)`, with the fix-up when `q` rounds to 1 and the flush of
/// tiny values. `d` finite and ≥ 0 (negative for LEAKY_RELU's alpha).
pub fn quantize_multiplier(d: f64) -> (i32, i32) {
    if d == 0.0 {
        return (0, 0);
    }
    // frexp from the bits (normal numbers only: every scale in a model is).
    let bits = d.to_bits();
    let mut e = ((bits >> 52) & 0x7ff) as i32 - 1022;
    let q = f64::from_bits((bits & !(0x7ffu64 << 52)) | (1022u64 << 52));
    let mut qf = (q * (1u64 << 31) as f64).round() as i64; // std round: half away
    assert!(qf.abs() <= 1 << 31);
    if qf == 1 << 31 {
        qf = 1 << 30;
        e += 1;
    }
    if e < -31 {
        e = 0;
        qf = 0;
    }
    (qf as i32, e)
}

/// Nearest integer to `n / 2^k` (k ≥ 0), ties toward +∞.
pub fn div_pow2_ties_up(n: i128, k: u32) -> i128 {
    let d = 1i128 << k;
    let q = n.div_euclid(d);
    let r = n.rem_euclid(d);
    if 2 * r >= d { q + 1 } else { q }
}

/// Nearest integer to `n / 2^k`, ties away from zero.
pub fn div_pow2_ties_away(n: i128, k: u32) -> i128 {
    let d = 1i128 << k;
    let q = n.div_euclid(d);
    let r = n.rem_euclid(d);
    if 2 * r > d || (2 * r == d && q >= 0) {
        q + 1
    } else {
        q
    }
}

/// SaturatingRoundingDoublingHighMul by definition: `a·b / 2^31` to nearest, ties
/// toward +∞; `MIN · MIN` saturates.
pub fn srdhm(a: i32, b: i32) -> i32 {
    if a == i32::MIN && b == i32::MIN {
        return i32::MAX;
    }
    div_pow2_ties_up(a as i128 * b as i128, 31) as i32
}

/// RoundingDivideByPOT by definition.
pub fn rdbpot(x: i32, e: u32) -> i32 {
    div_pow2_ties_away(x as i128, e) as i32
}

/// MultiplyByQuantizedMultiplier, double rounding, for inputs whose left shift does
/// not overflow (the loader's guarantee): `x·2^left` exact, then two roundings.
pub fn mbqm(x: i32, m: i32, shift: i32) -> i32 {
    let left = shift.max(0) as u32;
    let right = (-shift).max(0) as u32;
    let xl = x as i64 * (1i64 << left);
    assert!(
        xl >= i32::MIN as i64 && xl <= i32::MAX as i64,
        "test input overflows the left shift"
    );
    rdbpot(srdhm(xl as i32, m), right)
}

/// The single-rounding variant (XNNPACK, TFLITE_SINGLE_ROUNDING): one rounding of
/// the exact product, ties up. Not what BUILTIN_REF does: used to show the two differ.
pub fn mbqm_single(x: i32, m: i32, shift: i32) -> i32 {
    div_pow2_ties_up(x as i128 * m as i128, (31 - shift) as u32) as i32
}

/// The activation range of a fused activation (spec §2.2), for an int8 output
/// quantized with `(scale, zp)`: `Q(f) = zp + round_away(f / scale)` in f32.
pub fn act_range(kind: &str, scale: f32, zp: i32) -> (i32, i32) {
    let q = |f: f32| zp + (f / scale).round() as i32;
    match kind {
        "none" => (-128, 127),
        "relu" => ((-128).max(q(0.0)), 127),
        "relu6" => ((-128).max(q(0.0)), 127.min(q(6.0))),
        "relu_n1_to_1" => ((-128).max(q(-1.0)), 127.min(q(1.0))),
        _ => unreachable!(),
    }
}

/// `exp(x)` on the Q5.26 → Q0.31 grid, by gemmlowp's algorithm restated with
/// i128 products and C-style truncating divisions (its literal form), for the
/// softmax expectation.
pub mod gemmlowp {
    /// gemmlowp's literal SRDHM: nudge, then C division.
    pub fn srdhm(a: i32, b: i32) -> i32 {
        if a == b && a == i32::MIN {
            return i32::MAX;
        }
        let ab = a as i64 * b as i64;
        let nudge = if ab >= 0 {
            1i64 << 30
        } else {
            1 - (1i64 << 30)
        };
        ((ab + nudge) / (1i64 << 31)) as i32
    }

    /// gemmlowp's literal RoundingDivideByPOT.
    pub fn rdbpot(x: i32, e: u32) -> i32 {
        let mask: i64 = (1i64 << e) - 1;
        let x64 = x as i64;
        let rem = x64 & mask;
        let thr = (mask >> 1) + if x < 0 { 1 } else { 0 };
        ((x64 >> e) + if rem > thr { 1 } else { 0 }) as i32
    }

    fn sat_shl(x: i32, k: u32) -> i32 {
        (x as i64 * (1i64 << k)).clamp(i32::MIN as i64, i32::MAX as i64) as i32
    }

    fn exp_interval(a: i32) -> i32 {
        let x = a + (1 << 28);
        let x2 = srdhm(x, x);
        let x3 = srdhm(x2, x);
        let x4 = srdhm(x2, x2);
        let t = rdbpot(srdhm(rdbpot(x4, 2) + x3, 715_827_883) + x2, 1);
        1_895_147_668 + srdhm(1_895_147_668, x + t)
    }

    /// `exp_on_negative_values` with 5 integer bits.
    pub fn exp_neg(a: i32) -> i32 {
        let amq = (a & ((1 << 24) - 1)) - (1 << 24);
        let mut r = exp_interval(sat_shl(amq, 5));
        let rem = amq - a;
        let table = [
            (-2, 1_672_461_947),
            (-1, 1_302_514_674),
            (0, 790_015_084),
            (1, 290_630_308),
            (2, 39_332_535),
            (3, 720_401),
            (4, 242),
        ];
        for (k, m) in table {
            if rem & (1 << (26 + k)) != 0 {
                r = srdhm(r, m);
            }
        }
        if a == 0 { i32::MAX } else { r }
    }

    fn rounding_half_sum(a: i32, b: i32) -> i32 {
        let s = a as i64 + b as i64;
        ((s + if s >= 0 { 1 } else { -1 }) / 2) as i32
    }

    /// `one_over_one_plus_x_for_x_in_0_1`.
    pub fn one_over_one_plus_x(a: i32) -> i32 {
        let hd = rounding_half_sum(a, i32::MAX);
        let mut x = 1_515_870_810 + srdhm(hd, -1_010_580_540);
        for _ in 0..3 {
            let p = srdhm(hd, x);
            x += sat_shl(srdhm(x, (1 << 29) - p), 2);
        }
        sat_shl(x, 1)
    }

    /// TFLite's int8 softmax of one row, from its parameters.
    pub fn softmax(row: &[i8], m: i32, ls: u32, diff_min: i32) -> Vec<i8> {
        let max = row.iter().map(|&v| v as i32).max().unwrap();
        let scaled = |d: i32| srdhm(((d as i64) << ls) as i32, m);
        let mut sum: i32 = 0;
        for &v in row {
            let d = v as i32 - max;
            if d >= diff_min {
                sum += rdbpot(exp_neg(scaled(d)), 12);
            }
        }
        let hp1 = (sum as u32).leading_zeros();
        let nbou = 12 - hp1 as i32;
        let shifted = ((sum as u32) << hp1).wrapping_sub(1 << 31) as i32;
        let inv = one_over_one_plus_x(shifted);
        let e = (nbou + 31 - 8) as u32;
        row.iter()
            .map(|&v| {
                let d = v as i32 - max;
                if d >= diff_min {
                    let u = rdbpot(srdhm(inv, exp_neg(scaled(d))), e) - 128;
                    u.clamp(-128, 127) as i8
                } else {
                    -128
                }
            })
            .collect()
    }
}

//! `QuantizeMultiplier` and its variants (spec §1.1): a real multiplier as a Q31
//! fixed-point mantissa and a power-of-two shift, exactly as LiteRT's
//! `quantization_util.cc` computes it in its default (double-rounding) build.

/// A real multiplier as TFLite stores it: `real ≈ m · 2^(shift − 31)`, with `m` 0 or
/// in `[2^30, 2^31 − 1]` for a positive real (negative for a negative one) and
/// `shift > 0` a left shift.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Multiplier {
    /// The Q31 mantissa.
    pub m: i32,
    /// The exponent: a left shift when positive, a right shift when negative.
    pub shift: i32,
}

impl Multiplier {
    /// The shift range the runtime's loader accepts (`-31..=30`), which every
    /// multiplier of a real scale ratio in a model lands in.
    pub fn shift_ok(self) -> bool {
        (-31..=30).contains(&self.shift)
    }

    /// The real number it stands for (for messages and tests).
    pub fn real(self) -> f64 {
        f64::from(self.m) * 2f64.powi(self.shift - 31)
    }
}

/// `frexp`: `d = q · 2^e` with `0.5 ≤ |q| < 1`, for finite nonzero `d` (Rust has no
/// `frexp`; the exponent and mantissa come from the bits).
fn frexp(d: f64) -> (f64, i32) {
    let bits = d.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i32;
    if exp == 0 {
        // Subnormal: scale into the normal range first (exact: a power of two).
        let (q, e) = frexp(d * 2f64.powi(64));
        return (q, e - 64);
    }
    let q = f64::from_bits((bits & !(0x7ffu64 << 52)) | (1022u64 << 52));
    (q, exp - 1022)
}

/// `QuantizeMultiplier(d)`: `q · 2^e = d`, `m = round_half_away(q · 2^31)` (exact
/// product, C `round`), `m = 2^31` folded to `2^30` with `e + 1`, and reals below
/// about `2^-31` flushed to `(0, 0)`. No clamping of large shifts: that is what the
/// single-rounding builds do, not LiteRT's reference kernels. `d` must be finite.
pub fn quantize_multiplier(d: f64) -> Result<Multiplier, String> {
    if !d.is_finite() {
        return Err(format!(
            "the real multiplier {d} is not finite (a scale of 0, infinity or NaN in the model)"
        ));
    }
    if d == 0.0 {
        return Ok(Multiplier { m: 0, shift: 0 });
    }
    let (q, mut e) = frexp(d);
    // |q| < 1, so |q · 2^31| ≤ 2^31 after rounding: it fits an i64 exactly.
    let mut qf = (q * 2f64.powi(31)).round() as i64;
    if qf == 1 << 31 {
        qf = 1 << 30;
        e += 1;
    }
    if e < -31 {
        e = 0;
        qf = 0;
    }
    // |qf| ≤ 2^31 − 1 for positive d after the fold; −2^31 for a negative d of
    // mantissa −1 + ε (LiteRT keeps it; callers that negate it refuse it).
    Ok(Multiplier {
        m: qf as i32,
        shift: e,
    })
}

/// `QuantizeMultiplierSmallerThanOneExp`: for `0 ≤ d < 1`; the shift is ≤ 0 (a
/// right shift), which LiteRT checks.
pub fn smaller_than_one_exp(d: f64) -> Result<Multiplier, String> {
    if !(0.0..1.0).contains(&d) {
        return Err(format!("the real multiplier {d} is not in [0, 1)"));
    }
    let q = quantize_multiplier(d)?;
    if q.shift > 0 {
        return Err(format!(
            "the real multiplier {d} rounds to 1 (shift {}); it must stay below 1",
            q.shift
        ));
    }
    Ok(q)
}

/// `QuantizeMultiplierGreaterThanOne`: for `d > 1`; the shift is ≥ 0.
pub fn greater_than_one(d: f64) -> Result<Multiplier, String> {
    // NaN is not above 1 either.
    if d.is_nan() || d <= 1.0 {
        return Err(format!("the real multiplier {d} is not above 1"));
    }
    quantize_multiplier(d)
}

/// `DownScaleInt32ToInt16Multiplier`: a Q31 multiplier rounded to Q15.
pub fn to_int16_multiplier(m: i32) -> i32 {
    if m >= i32::MAX - (1 << 15) {
        i32::from(i16::MAX)
    } else {
        (m + (1 << 15)) >> 16
    }
}

#[cfg(test)]
mod tests {
    use super::{
        Multiplier, greater_than_one, quantize_multiplier, smaller_than_one_exp,
        to_int16_multiplier,
    };

    fn qm(d: f64) -> (i32, i32) {
        let m = quantize_multiplier(d).unwrap();
        (m.m, m.shift)
    }

    #[test]
    fn powers_of_two_and_known_values() {
        assert_eq!(qm(0.5), (1 << 30, 0));
        assert_eq!(qm(1.0), (1 << 30, 1));
        assert_eq!(qm(0.25), (1 << 30, -1));
        assert_eq!(qm(2.0), (1 << 30, 2));
        // 0.75 · 2^31 = 1610612736 exactly.
        assert_eq!(qm(0.75), (1_610_612_736, 0));
        assert_eq!(qm(0.0), (0, 0));
        // 1/3 = 0.666… · 2^-1: round(0.666… · 2^31) = 1431655765.
        assert_eq!(qm(1.0 / 3.0), (1_431_655_765, -1));
    }

    #[test]
    fn a_mantissa_rounding_up_to_one_moves_to_the_next_exponent() {
        // q = 1 − 2^-40: q · 2^31 = 2^31 − 2^-9 rounds to 2^31.
        let d = 1.0 - 2f64.powi(-40);
        assert_eq!(qm(d), (1 << 30, 1));
        assert_eq!(qm(d / 8.0), (1 << 30, -2));
    }

    #[test]
    fn ties_round_away_from_zero() {
        // q = 0.5 + 2^-32: q · 2^31 = 2^30 + 0.5, a tie: away from zero.
        let d = 0.5 + 2f64.powi(-32);
        assert_eq!(qm(d), ((1 << 30) + 1, 0));
        assert_eq!(qm(-d), (-(1 << 30) - 1, 0));
    }

    #[test]
    fn tiny_reals_flush_to_zero() {
        // 2^-32 = 0.5 · 2^-31: e = −31 is kept; 2^-33 has e = −32 and flushes.
        assert_eq!(qm(2f64.powi(-32)), (1 << 30, -31));
        assert_eq!(qm(2f64.powi(-33)), (0, 0));
        assert_eq!(qm(f64::MIN_POSITIVE / 4.0), (0, 0));
    }

    #[test]
    fn the_multiplier_is_within_half_a_unit_of_the_real() {
        // Seeded ratios over twelve decades: |m · 2^(s−31) − d| ≤ 2^(s−32).
        let mut state = 0x9E37_79B9u64;
        for _ in 0..10_000 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let d = 10f64.powf((state >> 11) as f64 / (1u64 << 53) as f64 * 12.0 - 8.0);
            let q = quantize_multiplier(d).unwrap();
            assert!((1 << 30..=i32::MAX).contains(&q.m), "{d}: {q:?}");
            let unit = 2f64.powi(q.shift - 31);
            assert!((q.real() - d).abs() <= unit / 2.0, "{d}: {q:?}");
        }
    }

    #[test]
    fn non_finite_reals_and_the_variants_bounds_are_errors() {
        assert!(quantize_multiplier(f64::NAN).is_err());
        assert!(quantize_multiplier(f64::INFINITY).is_err());
        assert_eq!(
            smaller_than_one_exp(0.5).unwrap(),
            Multiplier {
                m: 1 << 30,
                shift: 0
            }
        );
        assert!(smaller_than_one_exp(1.0).is_err());
        assert!(smaller_than_one_exp(1.0 - 2f64.powi(-40)).is_err());
        assert_eq!(greater_than_one(3.0).unwrap().shift, 2);
        assert!(greater_than_one(1.0).is_err());
        assert!(greater_than_one(f64::NAN).is_err());
    }

    #[test]
    fn int16_multipliers_round_and_saturate() {
        assert_eq!(to_int16_multiplier(1 << 30), 1 << 14);
        assert_eq!(to_int16_multiplier((1 << 30) + (1 << 15)), (1 << 14) + 1);
        assert_eq!(to_int16_multiplier((1 << 30) + (1 << 15) - 1), 1 << 14);
        assert_eq!(to_int16_multiplier(i32::MAX), 32767);
        assert_eq!(to_int16_multiplier(i32::MAX - (1 << 15)), 32767);
    }
}

//! Each int8 operator's `Prepare` (spec §2–§6): from the scales and zero points of
//! its tensors to the parameters the runtime's kernels read. The f32-versus-f64
//! order of every product and quotient is upstream's (the spec names the file of
//! each); the doc of each function says which it is.

use medwasm::kernels::act::Act;

use super::fixed::{
    Multiplier, greater_than_one, quantize_multiplier, smaller_than_one_exp, to_int16_multiplier,
};

/// `zp + round_half_away(f / scale)` with the division in f32, as
/// `CalculateActivationRangeQuantized` and `ReluX` quantize a real bound; in i64, so
/// that a bound far outside int8 saturates instead of wrapping.
pub fn quantize_value(f: f32, scale: f32, zero_point: i32) -> i64 {
    // `as i64` saturates (and an infinite bound saturates to the far end).
    i64::from(zero_point).saturating_add((f / scale).round() as i64)
}

/// The int8 range `[act_min, act_max]` of a fused activation on an output quantized
/// with `(scale, zero_point)` (spec §2.2): RELU `[Q(0), 127]`, RELU6 `[Q(0), Q(6)]`,
/// RELU_N1_TO_1 `[Q(−1), Q(1)]`, any clip `[Q(lo), Q(hi)]`, each within
/// `[−128, 127]`. The same formula gives the standalone RELU family's clamp (`ReluX`).
/// Other activations have no integer range.
pub fn act_range(act: Act, scale: f32, zero_point: i32) -> Result<(i32, i32), String> {
    let q = |f: f32| quantize_value(f, scale, zero_point);
    let (lo, hi) = match act {
        Act::None => return Ok((-128, 127)),
        Act::Relu => (q(0.0).max(-128), 127),
        Act::Clip(lo, hi) => (q(lo).max(-128), q(hi).min(127)),
        Act::LeakyRelu(_) | Act::Sigmoid | Act::Tanh => {
            return Err(
                "only RELU, RELU6, RELU_N1_TO_1 or a clip can be fused into an int8 operator (as a clamp of its output)"
                    .into(),
            );
        }
    };
    if lo > hi {
        return Err(format!(
            "the activation leaves no int8 value: its range quantizes to [{lo}, {hi}] with the output's scale {scale} and zero point {zero_point}"
        ));
    }
    // In [−128, 127] by the clamps above and lo ≤ hi.
    Ok((lo as i32, hi as i32))
}

/// Per output channel of a convolution (and a per-channel fully connected layer
/// in fixed point): `QuantizeMultiplier((f64)s_in · (f64)s_w[c] / (f64)s_out)`,
/// the product in f64 left to right (`PopulateConvolutionQuantizationParams`).
pub fn conv_multipliers(s_in: f32, s_w: &[f32], s_out: f32) -> Result<Vec<Multiplier>, String> {
    s_w.iter()
        .map(|&sw| quantize_multiplier(f64::from(s_in) * f64::from(sw) / f64::from(s_out)))
        .collect()
}

/// LiteRT's BUILTIN_REF fully connected requantization (spec §2.4): the f64 scale
/// `(f64)s_in · (f64)s_w[u] / (f64)s_out` per unit (or the one of per-tensor
/// weights), applied as `round(acc · scale)` at run time.
pub fn fc_litert_scales(s_in: f32, s_w: &[f32], s_out: f32) -> Vec<f64> {
    s_w.iter()
        .map(|&sw| f64::from(s_in) * f64::from(sw) / f64::from(s_out))
        .collect()
}

/// TFLite Micro's (and older LiteRT's) fixed-point fully connected multipliers:
/// per-channel weights as a convolution's; per-tensor weights
/// (`GetQuantizedConvolutionMultipler`) with the product in **f32**:
/// `(f64)(f32)(s_in · s_w) / (f64)s_out`.
pub fn fc_tflm_multipliers(s_in: f32, s_w: &[f32], s_out: f32) -> Result<Vec<Multiplier>, String> {
    match s_w {
        [sw] => Ok(vec![quantize_multiplier(
            f64::from(s_in * sw) / f64::from(s_out),
        )?]),
        _ => conv_multipliers(s_in, s_w, s_out),
    }
}

/// ADD's and SUB's parameters (spec §4.1–§4.2): both inputs scaled to twice the
/// larger input scale with 20 bits of headroom, summed, and rescaled to the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddParams {
    /// The headroom shift of both inputs (20 for int8).
    pub left_shift: i32,
    /// Multiplier of input 1 (≤ 0.5, shift ≤ 0).
    pub input1: Multiplier,
    /// Multiplier of input 2.
    pub input2: Multiplier,
    /// Multiplier of the output (< 1, shift ≤ 0).
    pub output: Multiplier,
}

/// `left_shift = 20`, `twice = 2 · max(s1, s2)` (exact in f32 and f64 alike), the
/// input multipliers `s / twice` and the output one `twice / (2^20 · s_out)`, all in
/// f64, each through `QuantizeMultiplierSmallerThanOneExp`. The output multiplier
/// must be below 1: LiteRT's ADD fails `Prepare` otherwise, and its SUB accepts a
/// larger one but then shifts right by a negative amount (undefined behaviour).
pub fn add_params(s1: f32, s2: f32, s_out: f32) -> Result<AddParams, String> {
    const LEFT_SHIFT: i32 = 20;
    let twice = 2.0 * f64::from(s1.max(s2));
    let output = twice / (f64::from(1u32 << LEFT_SHIFT) * f64::from(s_out));
    Ok(AddParams {
        left_shift: LEFT_SHIFT,
        input1: smaller_than_one_exp(f64::from(s1) / twice)?,
        input2: smaller_than_one_exp(f64::from(s2) / twice)?,
        output: smaller_than_one_exp(output).map_err(|_| {
            format!(
                "the output scale {s_out} is more than 2^20 times finer than twice the larger input scale ({twice}); LiteRT's int8 ADD and SUB cannot rescale that far"
            )
        })?,
    })
}

/// MUL's multiplier (spec §4.3): `(f64)(s1 · s2 / s_out)`, all three in **f32**.
pub fn mul_multiplier(s1: f32, s2: f32, s_out: f32) -> Result<Multiplier, String> {
    quantize_multiplier(f64::from(s1 * s2 / s_out))
}

/// The RELU family's multiplier (`ReluPrepare`, spec §5.4): `(f64)(s_in / s_out)`,
/// the division in **f32**.
pub fn relu_multiplier(s_in: f32, s_out: f32) -> Result<Multiplier, String> {
    quantize_multiplier(f64::from(s_in / s_out))
}

/// QUANTIZE int8 → int8 (spec §6.2): `(f64)s_in / (f64)s_out`, in f64.
pub fn requantize_multiplier(s_in: f32, s_out: f32) -> Result<Multiplier, String> {
    quantize_multiplier(f64::from(s_in) / f64::from(s_out))
}

/// MEAN's multiplier before the count is folded in (spec §6.4): `(f64)s_in /
/// (f64)s_out`; the runtime folds `1 / n` in as LiteRT's `Eval` does.
pub fn mean_multiplier(s_in: f32, s_out: f32) -> Result<Multiplier, String> {
    requantize_multiplier(s_in, s_out)
}

/// SOFTMAX's parameters (spec §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoftmaxParams {
    /// Multiplier of `beta · s_in · 2^26` (≥ 2^30).
    pub m: i32,
    /// Its left shift (0..=31).
    pub left_shift: i32,
    /// The smallest difference from the row's maximum that still counts (≤ 0).
    pub diff_min: i32,
}

/// `PreprocessSoftmaxScaling(beta, s_in, 5)`: `real = min((f64)beta · (f64)s_in ·
/// 2^26, 2^31 − 1)` through `QuantizeMultiplierGreaterThanOne` (so `real > 1`), and
/// `diff_min = −floor(31 · 2^26 / 2^left_shift)` (`CalculateInputRadius(5, ls, 31)`).
pub fn softmax_params(beta: f32, s_in: f32) -> Result<SoftmaxParams, String> {
    let real = (f64::from(beta) * f64::from(s_in) * f64::from(1u32 << 26)).min(f64::from(i32::MAX));
    let q = greater_than_one(real).map_err(|_| {
        format!(
            "beta {beta} times the input scale {s_in} is at most 2^-26; LiteRT's int8 SOFTMAX needs a larger input scale (it treats the inputs as equal)"
        )
    })?;
    if !(0..=31).contains(&q.shift) {
        return Err(format!(
            "beta {beta} times the input scale {s_in} needs a left shift of {}, outside 0..=31",
            q.shift
        ));
    }
    let radius = (31.0 * f64::from(1u32 << 26) / 2f64.powi(q.shift)).floor();
    Ok(SoftmaxParams {
        m: q.m,
        left_shift: q.shift,
        // ≤ 31 · 2^26 < 2^31.
        diff_min: -(radius as i32),
    })
}

/// Which function a lookup table holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LutKind {
    /// LOGISTIC: `1 / (1 + e^−x)`.
    Logistic,
    /// TANH.
    Tanh,
}

/// `LUTPopulate<int8_t>` (spec §5.2), what LiteRT's BUILTIN_REF builds for LOGISTIC
/// and TANH: per input value `v`, `x = s_in · (v − zp_in)` (f32), `y = f(x)` with the
/// f32 `exp`/`tanh` (glibc's `expf`/`tanhf` on Linux, as the pip wheel uses),
/// `q = round_half_away(y · (1 / s_out)) + zp_out` in f32, saturated. Indexed by
/// `v as u8`.
pub fn lut(kind: LutKind, s_in: f32, zp_in: i32, s_out: f32, zp_out: i32) -> [i8; 256] {
    let mut table = [0i8; 256];
    let inverse = 1.0f32 / s_out;
    for v in -128..=127i32 {
        let x = s_in * (v - zp_in) as f32;
        let y = match kind {
            LutKind::Logistic => 1.0f32 / (1.0 + (-x).exp()),
            LutKind::Tanh => x.tanh(),
        };
        let r = (y * inverse).round();
        // `(int32)(r + zp)` then clamped: saturating casts where C's is undefined.
        let q = ((r + zp_out as f32) as i32).clamp(-128, 127);
        table[usize::from(v as u8)] = q as i8;
    }
    table
}

/// HARD_SWISH's 16-bit parameters (spec §5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HardSwishParams {
    /// Q15 multiplier of `(s_in / 128) / s_out`.
    pub m_output: i32,
    /// Its exponent (−15..=0).
    pub e_output: i32,
    /// Q15 multiplier of `(s_in / 128) / (3 / 32768)`.
    pub m_reluish: i32,
    /// Its exponent (−15..=30).
    pub e_reluish: i32,
}

/// `HardSwishPrepare`: `hires = (1/128) · s_in`, `reluish_scale = 3/32768`, the two
/// ratios in **f32**, `QuantizeMultiplier` of each, then rounded to Q15
/// (`DownScaleInt32ToInt16Multiplier`). LiteRT requires the output exponent ≤ 0; the
/// 16-bit rounding shifts of the kernel are defined up to 15.
pub fn hard_swish_params(s_in: f32, s_out: f32) -> Result<HardSwishParams, String> {
    let hires = (1.0f32 / 128.0) * s_in;
    let reluish_scale = 3.0f32 / 32768.0;
    let o = quantize_multiplier(f64::from(hires / s_out))?;
    let r = quantize_multiplier(f64::from(hires / reluish_scale))?;
    if !(-15..=0).contains(&o.shift) {
        return Err(format!(
            "the input scale {s_in} over the output scale {s_out} gives an output exponent of {}; LiteRT's int8 HARD_SWISH needs an output scale at least 1/128 of the input's (exponent −15..=0)",
            o.shift
        ));
    }
    if !(-15..=30).contains(&r.shift) {
        return Err(format!(
            "the input scale {s_in} gives a reluish exponent of {}, outside −15..=30",
            r.shift
        ));
    }
    Ok(HardSwishParams {
        m_output: to_int16_multiplier(o.m),
        e_output: o.shift,
        m_reluish: to_int16_multiplier(r.m),
        e_reluish: r.shift,
    })
}

/// LEAKY_RELU's multipliers (spec §5.5), `(identity, alpha)`: `(f64)(s_in / s_out)`
/// and `(f64)(s_in · alpha / s_out)`, both in **f32**. A negative alpha gives a
/// negative multiplier, which the kernel negates; `i32::MIN` has no negation.
pub fn leaky_relu_params(
    s_in: f32,
    s_out: f32,
    alpha: f32,
) -> Result<(Multiplier, Multiplier), String> {
    let identity = quantize_multiplier(f64::from(s_in / s_out))?;
    let scaled = quantize_multiplier(f64::from(s_in * alpha / s_out))?;
    if scaled.m == i32::MIN {
        return Err(format!(
            "alpha {alpha} gives the multiplier −2^31, which has no negation in int32"
        ));
    }
    Ok((identity, scaled))
}

#[cfg(test)]
mod tests {
    use medwasm::kernels::act::Act;

    use super::*;

    #[test]
    fn activation_ranges_follow_the_output_quantization() {
        // Scale 0.05, zero point −20: Q(0) = −20, Q(6) = 100, Q(±1) = −20 ± 20.
        assert_eq!(act_range(Act::None, 0.05, -20), Ok((-128, 127)));
        assert_eq!(act_range(Act::Relu, 0.05, -20), Ok((-20, 127)));
        assert_eq!(act_range(Act::Clip(0.0, 6.0), 0.05, -20), Ok((-20, 100)));
        assert_eq!(act_range(Act::Clip(-1.0, 1.0), 0.05, -20), Ok((-40, 0)));
        // Bounds outside int8 saturate; −128 as the zero point keeps RELU's floor.
        assert_eq!(act_range(Act::Clip(0.0, 6.0), 0.01, -128), Ok((-128, 127)));
        assert_eq!(act_range(Act::Relu, 1.0, -128), Ok((-128, 127)));
        assert_eq!(
            act_range(Act::Clip(f32::NEG_INFINITY, f32::INFINITY), 0.1, 3),
            Ok((-128, 127))
        );
        // The division is f32 and ties go away from zero: 6 / 0.4 = 15 exactly in
        // f32? 0.4f32 is 0.4000000059604645, so 6 / 0.4f32 = 14.999999776… → 15.
        assert_eq!(act_range(Act::Clip(0.0, 6.0), 0.4, 0), Ok((0, 15)));
        // 0.25 / 0.5 = 0.5, a tie: away from zero gives 1 (and −0.5 gives −1).
        assert_eq!(act_range(Act::Clip(-0.25, 0.25), 0.5, 0), Ok((-1, 1)));
        assert!(act_range(Act::Sigmoid, 0.1, 0).is_err());
        assert!(act_range(Act::LeakyRelu(0.1), 0.1, 0).is_err());
        // A clip wholly above the representable range leaves nothing.
        let err = act_range(Act::Clip(100.0, 200.0), 0.1, 0).unwrap_err();
        assert!(err.contains("leaves no int8 value"), "{err}");
    }

    #[test]
    fn add_gives_the_larger_input_exactly_one_half() {
        let p = add_params(0.02, 0.05, 0.06).unwrap();
        assert_eq!(p.left_shift, 20);
        assert_eq!(
            p.input2,
            Multiplier {
                m: 1 << 30,
                shift: 0
            }
        );
        assert!((p.input1.real() - f64::from(0.02f32) / (2.0 * f64::from(0.05f32))).abs() < 1e-9);
        let out = 2.0 * f64::from(0.05f32) / (f64::from(1u32 << 20) * f64::from(0.06f32));
        assert!((p.output.real() / out - 1.0).abs() < 1e-9);
        assert!(p.output.shift <= 0 && p.input1.shift <= 0);
        // An output scale 2^21 times finer than the inputs': refused.
        let err = add_params(1.0, 1.0, 2f32.powi(-21)).unwrap_err();
        assert!(err.contains("2^20"), "{err}");
    }

    #[test]
    fn mul_relu_and_leaky_ratios_are_taken_in_f32() {
        // Scales whose f32 and f64 ratios differ in the last bits of the multiplier.
        let (s1, s2, so) = (0.1f32, 0.3f32, 0.7f32);
        let f32_ratio = f64::from(s1 * s2 / so);
        assert_eq!(
            mul_multiplier(s1, s2, so).unwrap(),
            quantize_multiplier(f32_ratio).unwrap()
        );
        let f64_ratio = f64::from(s1) * f64::from(s2) / f64::from(so);
        assert_ne!(
            quantize_multiplier(f32_ratio).unwrap(),
            quantize_multiplier(f64_ratio).unwrap(),
            "pick scales where the order matters"
        );
        assert_eq!(
            relu_multiplier(s1, so).unwrap(),
            quantize_multiplier(f64::from(s1 / so)).unwrap()
        );
        let (identity, scaled) = leaky_relu_params(s1, so, -0.2).unwrap();
        assert_eq!(identity, relu_multiplier(s1, so).unwrap());
        assert!(scaled.m < 0, "a negative alpha keeps its sign: {scaled:?}");
        assert_eq!(
            scaled,
            quantize_multiplier(f64::from(s1 * -0.2f32 / so)).unwrap()
        );
    }

    #[test]
    fn fully_connected_scales_in_both_modes() {
        let (si, so) = (0.02f32, 0.11f32);
        let sw = [0.003f32, 0.007];
        let f64s = fc_litert_scales(si, &sw, so);
        assert_eq!(
            f64s[1],
            f64::from(si) * f64::from(sw[1]) / f64::from(so),
            "f64, left to right"
        );
        // Per-tensor fixed point: the product in f32 first.
        let pt = fc_tflm_multipliers(si, &sw[..1], so).unwrap();
        assert_eq!(
            pt,
            [quantize_multiplier(f64::from(si * sw[0]) / f64::from(so)).unwrap()]
        );
        // Per channel: the convolution's f64 product.
        assert_eq!(
            fc_tflm_multipliers(si, &sw, so).unwrap(),
            conv_multipliers(si, &sw, so).unwrap()
        );
    }

    #[test]
    fn softmax_parameters_and_their_radius() {
        // s_in = 1/16: real = 2^22 = 0.5 · 2^23, so m = 2^30 and shift 23.
        let p = softmax_params(1.0, 1.0 / 16.0).unwrap();
        assert_eq!((p.m, p.left_shift), (1 << 30, 23));
        // floor(31 · 2^26 / 2^23) = 248.
        assert_eq!(p.diff_min, -248);
        // A huge input scale saturates the real multiplier at 2^31 − 1 = (2^31 − 1)
        // · 2^0: the shift is 31 and the radius floor(31 · 2^26 / 2^31) = 0, so only
        // the row's maxima count.
        let p = softmax_params(1.0, 100.0).unwrap();
        assert_eq!((p.m, p.left_shift), (i32::MAX, 31));
        assert_eq!(p.diff_min, 0);
        assert!(softmax_params(1.0, 2f32.powi(-27)).is_err());
    }

    #[test]
    fn logistic_and_tanh_tables_are_the_functions_rounded() {
        let (s_in, zp_in) = (0.05f32, 3);
        let table = lut(LutKind::Logistic, s_in, zp_in, 1.0 / 256.0, -128);
        let tanh = lut(LutKind::Tanh, s_in, zp_in, 1.0 / 128.0, 0);
        for v in -128..=127i32 {
            let x = f64::from(s_in) * f64::from(v - zp_in);
            let k = usize::from(v as u8);
            let want = (256.0 / (1.0 + (-x).exp())).round() - 128.0;
            // Within one step of the f64 function (f32 math and ties differ).
            assert!((f64::from(table[k]) - want.clamp(-128.0, 127.0)).abs() <= 1.0);
            let want = (128.0 * x.tanh()).round().clamp(-128.0, 127.0);
            assert!((f64::from(tanh[k]) - want).abs() <= 1.0, "{v}");
        }
        // The input's zero point maps to the function at 0: 1/2 → 0, tanh 0 → 0.
        assert_eq!(table[usize::from(zp_in as u8)], 0);
        assert_eq!(tanh[usize::from(zp_in as u8)], 0);
        assert_eq!(table[usize::from(127u8)], 127);
        assert_eq!(table[usize::from(-128i8 as u8)], -128);
    }

    #[test]
    fn hard_swish_parameters_and_their_limits() {
        let p = hard_swish_params(0.05, 0.03).unwrap();
        let hires = (1.0f32 / 128.0) * 0.05;
        let o = quantize_multiplier(f64::from(hires / 0.03)).unwrap();
        assert_eq!(
            (p.m_output, p.e_output),
            (to_int16_multiplier(o.m), o.shift)
        );
        let r = quantize_multiplier(f64::from(hires / (3.0f32 / 32768.0))).unwrap();
        assert_eq!(
            (p.m_reluish, p.e_reluish),
            (to_int16_multiplier(r.m), r.shift)
        );
        assert!((1 << 14..=32767).contains(&p.m_output));
        // An output scale under 1/128 of the input's needs a positive exponent.
        let err = hard_swish_params(1.0, 1.0 / 1024.0).unwrap_err();
        assert!(err.contains("HARD_SWISH"), "{err}");
    }
}

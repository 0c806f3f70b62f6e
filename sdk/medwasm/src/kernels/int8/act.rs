//! int8 elementwise activations: the lookup table of LOGISTIC and TANH, HARD_SWISH,
//! LEAKY_RELU, and the requantization that QUANTIZE (int8 → int8) and the RELU
//! family share (spec §5.2–§5.5, §6.2).

use super::fixed::{mbqm, rdbpot16, sat_shl16, sdhm16, srdhm16};

/// `y = lut[x as u8]`: LOGISTIC and TANH as LiteRT's BUILTIN_REF runs them, from
/// a 256-entry table the converter builds with the same float math.
pub fn lut(table: &[i8], x: &[i8], y: &mut [i8]) {
    let Some(table) = table.get(..256) else {
        // The loader only accepts 256-entry tables.
        return;
    };
    for (o, &v) in y.iter_mut().zip(x) {
        *o = table[v as u8 as usize];
    }
}

/// Requantization with a clamp: `clamp(zp_out + mbqm(x − zp_in, m, shift))`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequantParams {
    /// Input zero point.
    pub zp_in: i32,
    /// Output zero point.
    pub zp_out: i32,
    /// Multiplier of `s_in / s_out`.
    pub m: i32,
    /// Its shift.
    pub shift: i32,
    /// Lowest output (−128, or the RELU family's lower bound).
    pub act_min: i32,
    /// Highest output.
    pub act_max: i32,
}

/// int8 → int8 requantization (`reference_ops::Requantize`, `ReluX`).
pub fn requantize(p: &RequantParams, x: &[i8], y: &mut [i8]) {
    for (o, &v) in y.iter_mut().zip(x) {
        let r = mbqm(v as i32 - p.zp_in, p.m, p.shift).saturating_add(p.zp_out);
        *o = r.clamp(p.act_min, p.act_max) as i8;
    }
}

/// LEAKY_RELU parameters (`reference_ops::QuantizeLeakyRelu`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeakyParams {
    /// Input zero point.
    pub zp_in: i32,
    /// Output zero point.
    pub zp_out: i32,
    /// Multiplier and shift of `s_in / s_out` (non-negative inputs).
    pub m_identity: i32,
    /// Its shift.
    pub s_identity: i32,
    /// Multiplier of `s_in · alpha / s_out` (negative for a negative alpha).
    pub m_alpha: i32,
    /// Its shift.
    pub s_alpha: i32,
}

/// int8 leaky ReLU. A negative alpha multiplier is applied as the negation of the
/// positive one, as the current upstream code does.
pub fn leaky_relu(p: &LeakyParams, x: &[i8], y: &mut [i8]) {
    for (o, &v) in y.iter_mut().zip(x) {
        let d = v as i32 - p.zp_in;
        let scaled = if d >= 0 {
            mbqm(d, p.m_identity, p.s_identity)
        } else if p.m_alpha < 0 {
            // The loader refuses `i32::MIN`, so the negation is exact.
            -mbqm(d, -p.m_alpha, p.s_alpha)
        } else {
            mbqm(d, p.m_alpha, p.s_alpha)
        };
        *o = p.zp_out.saturating_add(scaled).clamp(-128, 127) as i8;
    }
}

/// HARD_SWISH parameters (`HardSwishParams`), 16-bit fixed point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HardSwishParams {
    /// Input zero point.
    pub zp_in: i16,
    /// Output zero point.
    pub zp_out: i16,
    /// `(s_in / 128) / s_out` as a 16-bit multiplier.
    pub m_output: i16,
    /// Its exponent (−15..=0).
    pub e_output: i8,
    /// `(s_in / 128) / (3 / 32768)` as a 16-bit multiplier.
    pub m_reluish: i16,
    /// Its exponent (−15..=30).
    pub e_reluish: i8,
}

/// int8 hard swish (`reference_ops::HardSwish`), in i16 as upstream computes it,
/// including its wrap when the output zero point is added to an i16.
pub fn hard_swish(p: &HardSwishParams, x: &[i8], y: &mut [i8]) {
    for (o, &v) in y.iter_mut().zip(x) {
        // |v - zp| ≤ 255, so both fit i16 (255 · 128 < 2^15).
        let input = (v as i16).wrapping_sub(p.zp_in);
        let hires = input.wrapping_mul(1 << 7);
        let preshift_output = srdhm16(hires, p.m_output);
        let mut reluish = hires;
        if p.e_reluish > 0 {
            reluish = sat_shl16(reluish, (p.e_reluish - 1) as u32);
        }
        reluish = srdhm16(reluish, p.m_reluish);
        if p.e_reluish > 0 {
            reluish = sat_shl16(reluish, 1);
        }
        if p.e_reluish < 0 {
            reluish = rdbpot16(reluish, (-p.e_reluish) as u32);
        }
        // [-1, 1] to [0, 1] in Q0.15, in int arithmetic as in C.
        let reluish = ((reluish as i32 + (1 << 15)) >> 1) as i16;
        let preshift = sdhm16(reluish, preshift_output);
        let shifted = rdbpot16(preshift, (-p.e_output) as u32);
        // Upstream adds the zero point to an int16_t and stores it back: a wrap.
        let out = (shifted as i32 + p.zp_out as i32) as i16;
        *o = out.clamp(-128, 127) as i8;
    }
}

//! QUANTIZE (f32 → int8) and DEQUANTIZE (int8 → f32), per tensor, as TFLite's
//! `reference_ops::AffineQuantize` and `Dequantize` compute them (spec §6.1, §6.3).

use super::fixed::round_away_f32;

/// `y = clamp(round_away(x / scale) + zero_point, −128, 127)`: an f32 division (not
/// a multiplication by `1 / scale`) and ties away from zero (not to even as ONNX).
/// A NaN becomes the zero point and an out-of-range quotient saturates, where the C
/// cast is undefined.
pub fn quantize(scale: f32, zero_point: i32, x: &[f32], y: &mut [i8]) {
    for (o, &v) in y.iter_mut().zip(x) {
        let q = (round_away_f32(v / scale) as i32).saturating_add(zero_point);
        *o = q.clamp(-128, 127) as i8;
    }
}

/// `y = scale · (x − zero_point)`. Upstream multiplies in f64 and rounds to f32
/// once; the product of a 24-bit mantissa and a 9-bit integer is exact in f64, so
/// one f32 multiplication gives the same bits.
pub fn dequantize(scale: f32, zero_point: i32, x: &[i8], y: &mut [f32]) {
    for (o, &v) in y.iter_mut().zip(x) {
        *o = scale * (v as i32 - zero_point) as f32;
    }
}

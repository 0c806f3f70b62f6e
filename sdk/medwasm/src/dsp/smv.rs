//! The signal magnitude vector of a 3-axis accelerometer: `sqrt(x² + y² + z²)`,
//! orientation-free, the usual first step of fall and activity detection.

use super::DspError;

/// `sqrt((x·x + y·y) + z·z)`, in that order, with the correctly rounded f32
/// square root.
#[inline]
pub fn magnitude(x: f32, y: f32, z: f32) -> f32 {
    libm::sqrtf((x * x + y * y) + z * z)
}

/// The magnitude of each interleaved `x y z` triple of `xyz` into `out`, which
/// must hold one value per triple.
pub fn magnitudes(xyz: &[f32], out: &mut [f32]) -> Result<(), DspError> {
    if out.len().checked_mul(3) != Some(xyz.len()) {
        return Err(DspError::Length {
            what: "xyz",
            expected: 3 * out.len(),
            actual: xyz.len(),
        });
    }
    for (t, o) in xyz.chunks_exact(3).zip(out) {
        *o = magnitude(t[0], t[1], t[2]);
    }
    Ok(())
}

//! Cascades of biquads (second-order IIR sections) in Direct Form II transposed:
//! scipy's `sosfilt`, in f32.

use super::DspError;
use super::design::Butterworth;

/// A cascade of `S` second-order sections with its state: `S × 5` coefficients and
/// `S × 2` state values, `S × 28` bytes.
///
/// Per sample and section, with `x` the section's input (the sample, or the
/// previous section's output) and `z0`, `z1` its state, exactly as `sosfilt`:
///
/// ```text
/// y  = b0·x + z0
/// z0 = (b1·x - a1·y) + z1
/// z1 = b2·x - a2·y
/// ```
///
/// The state starts at zero (`sosfilt` without `zi`).
#[derive(Debug, Clone, PartialEq)]
pub struct SosFilter<const S: usize> {
    /// `b0 b1 b2 a1 a2` per section (`a0` is 1).
    coeffs: [[f32; 5]; S],
    state: [[f32; 2]; S],
}

impl<const S: usize> SosFilter<S> {
    /// A filter from sections in scipy's layout `b0 b1 b2 a0 a1 a2`. Every
    /// coefficient must be finite and every `a0` exactly 1 (divide the section by
    /// its `a0` first, as `sosfilt` does).
    pub fn new(sos: &[[f32; 6]; S]) -> Result<Self, DspError> {
        const { assert!(S > 0, "a `SosFilter` needs at least one section") };
        let mut coeffs = [[0.0; 5]; S];
        for (s, (row, c)) in sos.iter().zip(&mut coeffs).enumerate() {
            if let Some(index) = row.iter().position(|v| !v.is_finite()) {
                return Err(DspError::Coefficient { section: s, index });
            }
            if row[3] != 1.0 {
                return Err(DspError::Coefficient {
                    section: s,
                    index: 3,
                });
            }
            *c = [row[0], row[1], row[2], row[4], row[5]];
        }
        Ok(SosFilter {
            coeffs,
            state: [[0.0; 2]; S],
        })
    }

    /// A Butterworth filter designed from `spec` (see [`Butterworth::design`]); its
    /// f64 coefficients rounded to f32. `S` must be [`Butterworth::sections`].
    pub fn butterworth(spec: &Butterworth) -> Result<Self, DspError> {
        let sos = spec.design()?;
        let rows = sos.sections();
        if rows.len() != S {
            return Err(DspError::Sections {
                needed: rows.len(),
                actual: S,
            });
        }
        let mut f32s = [[0.0f32; 6]; S];
        for (out, row) in f32s.iter_mut().zip(rows) {
            for (o, v) in out.iter_mut().zip(row) {
                *o = *v as f32;
            }
        }
        Self::new(&f32s)
    }

    /// The coefficients in scipy's layout `b0 b1 b2 a0 a1 a2`.
    pub fn sos(&self) -> [[f32; 6]; S] {
        let mut out = [[0.0; 6]; S];
        for (o, c) in out.iter_mut().zip(&self.coeffs) {
            *o = [c[0], c[1], c[2], 1.0, c[3], c[4]];
        }
        out
    }

    /// Filters one sample.
    #[inline]
    pub fn push(&mut self, x: f32) -> f32 {
        let mut cur = x;
        for (c, z) in self.coeffs.iter().zip(&mut self.state) {
            let y = c[0] * cur + z[0];
            z[0] = c[1] * cur - c[3] * y + z[1];
            z[1] = c[2] * cur - c[4] * y;
            cur = y;
        }
        cur
    }

    /// Filters a chunk in place.
    pub fn process(&mut self, samples: &mut [f32]) {
        for v in samples {
            *v = self.push(*v);
        }
    }

    /// Clears the state (as if no sample had been seen).
    pub fn reset(&mut self) {
        self.state = [[0.0; 2]; S];
    }
}

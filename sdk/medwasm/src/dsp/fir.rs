//! FIR filters: `y[n] = Σ b[k]·x[n-k]`, scipy's `lfilter(b, [1.0], x)` in f32.

use super::DspError;

/// An `N`-tap FIR filter with its history: `2N` f32 and an index, `8N + 4`
/// bytes on 32-bit targets.
///
/// The sum runs from the oldest sample to the newest, starting from 0:
/// `((0 + b[N-1]·x[n-N+1]) + b[N-2]·x[n-N+2]) + … + b[0]·x[n]`, each product
/// rounded, then added. The history starts at zero (`lfilter` without `zi`).
#[derive(Debug, Clone, PartialEq)]
pub struct Fir<const N: usize> {
    taps: [f32; N],
    /// A ring of the last `N` inputs; `head` holds the newest.
    history: [f32; N],
    head: usize,
}

impl<const N: usize> Fir<N> {
    /// A filter with the given taps, `taps[0]` applying to the newest sample.
    /// Every tap must be finite.
    pub fn new(taps: &[f32; N]) -> Result<Self, DspError> {
        const { assert!(N > 0, "a `Fir` needs at least one tap") };
        if let Some(index) = taps.iter().position(|v| !v.is_finite()) {
            return Err(DspError::Tap { index });
        }
        Ok(Fir {
            taps: *taps,
            history: [0.0; N],
            head: N - 1,
        })
    }

    /// A filter with taps from a slice of exactly `N` values.
    pub fn from_slice(taps: &[f32]) -> Result<Self, DspError> {
        let taps: &[f32; N] = taps.try_into().map_err(|_| DspError::Length {
            what: "taps",
            expected: N,
            actual: taps.len(),
        })?;
        Self::new(taps)
    }

    /// Filters one sample.
    #[inline]
    pub fn push(&mut self, x: f32) -> f32 {
        self.head = if self.head + 1 == N { 0 } else { self.head + 1 };
        self.history[self.head] = x;
        dot_oldest_first(&self.history, self.head, &self.taps)
    }

    /// Filters a chunk in place.
    pub fn process(&mut self, samples: &mut [f32]) {
        for v in samples {
            *v = self.push(*v);
        }
    }

    /// Clears the history.
    pub fn reset(&mut self) {
        self.history = [0.0; N];
        self.head = N - 1;
    }
}

/// `Σ taps[k]·x[n-k]` over a ring whose newest sample is at `head`, summed from
/// the oldest sample to the newest starting at 0: the ring after `head`, then up
/// to `head`, against the taps from the last to the first.
#[inline]
pub(crate) fn dot_oldest_first<const N: usize>(
    ring: &[f32; N],
    head: usize,
    taps: &[f32; N],
) -> f32 {
    let (newer, older) = ring.split_at(head + 1);
    // Two plain loops rather than a chained iterator: the same additions in the
    // same order, without a branch per tap (a third of the instructions on a
    // Cortex-M4).
    let (t_newer, t_older) = taps.split_at(newer.len());
    let mut acc = 0.0f32;
    for (x, b) in older.iter().zip(t_older.iter().rev()) {
        acc += b * x;
    }
    for (x, b) in newer.iter().zip(t_newer.iter().rev()) {
        acc += b * x;
    }
    acc
}

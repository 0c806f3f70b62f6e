//! Smoothing and baseline removal: the moving average and the DC blocker.

use super::DspError;

/// The mean of the last `N` samples (zeros before the first): `lfilter(ones(N) /
/// N, [1.0], x)`. `N + 1` f32 and an index, `4N + 8` bytes on 32-bit targets.
///
/// Each output sums the window from the oldest sample to the newest, starting
/// from 0, and divides by `N`. Summing the window anew, instead of keeping a
/// running sum, costs `N` additions per sample but never drifts on long streams.
#[derive(Debug, Clone, PartialEq)]
pub struct MovingAverage<const N: usize> {
    history: [f32; N],
    head: usize,
    width: f32,
}

impl<const N: usize> MovingAverage<N> {
    /// A moving average over `N` samples.
    pub fn new() -> Self {
        const {
            assert!(
                N > 0,
                "a `MovingAverage` needs a window of at least one sample"
            )
        };
        MovingAverage {
            history: [0.0; N],
            head: N - 1,
            width: N as f32,
        }
    }

    /// Smooths one sample.
    #[inline]
    pub fn push(&mut self, x: f32) -> f32 {
        self.head = if self.head + 1 == N { 0 } else { self.head + 1 };
        self.history[self.head] = x;
        let (newer, older) = self.history.split_at(self.head + 1);
        let mut acc = 0.0f32;
        for v in older {
            acc += v;
        }
        for v in newer {
            acc += v;
        }
        acc / self.width
    }

    /// Smooths a chunk in place.
    pub fn process(&mut self, samples: &mut [f32]) {
        for v in samples {
            *v = self.push(*v);
        }
    }

    /// Clears the history.
    pub fn reset(&mut self) {
        *self = Self::new();
    }
}

impl<const N: usize> Default for MovingAverage<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// A first-order DC blocker, `y[n] = (x[n] - x[n-1]) + alpha·y[n-1]`: a zero at
/// DC and a pole at `alpha` (`lfilter([1, -1], [1, -alpha], x)`). 12 bytes.
///
/// The -3 dB corner is near `(1 - alpha)·fs / 2π`: `alpha = 0.995` at 360 Hz
/// removes baseline wander below about 0.3 Hz.
#[derive(Debug, Clone, PartialEq)]
pub struct DcBlocker {
    alpha: f32,
    x1: f32,
    y1: f32,
}

impl DcBlocker {
    /// A DC blocker with pole `alpha`, `0 <= alpha < 1` (stable, and 0 is a plain
    /// first difference).
    pub fn new(alpha: f32) -> Result<Self, DspError> {
        if !(0.0..1.0).contains(&alpha) {
            return Err(DspError::Parameter {
                name: "alpha",
                value: alpha,
                range: "at least 0 and below 1 (0.99 to 0.999 for baseline removal)",
            });
        }
        Ok(DcBlocker {
            alpha,
            x1: 0.0,
            y1: 0.0,
        })
    }

    /// Filters one sample.
    #[inline]
    pub fn push(&mut self, x: f32) -> f32 {
        let y = (x - self.x1) + self.alpha * self.y1;
        self.x1 = x;
        self.y1 = y;
        y
    }

    /// Filters a chunk in place.
    pub fn process(&mut self, samples: &mut [f32]) {
        for v in samples {
            *v = self.push(*v);
        }
    }

    /// Clears the state.
    pub fn reset(&mut self) {
        (self.x1, self.y1) = (0.0, 0.0);
    }
}

//! Resampling by integer factors with an FIR anti-aliasing / anti-imaging filter:
//! scipy's `upfirdn(h, x, up, down)` for `up = 1` (decimation, what
//! `decimate(x, q, ftype='fir', zero_phase=False)` does) and for `down = 1`
//! (interpolation).

use super::DspError;
use super::fir::dot_oldest_first;

fn check_taps(taps: &[f32]) -> Result<(), DspError> {
    match taps.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(DspError::Tap { index }),
        None => Ok(()),
    }
}

/// `range` says which ratio of rates the factor is.
fn check_factor(factor: usize, range: &'static str) -> Result<(), DspError> {
    if factor == 0 {
        return Err(DspError::Parameter {
            name: "factor",
            value: 0.0,
            range,
        });
    }
    Ok(())
}

/// Keeps every `factor`-th sample of the signal filtered by `N` taps, starting with
/// sample 0: `lfilter(taps, 1, x)[::factor]`, computing only the kept outputs.
/// `8N + 12` bytes on 32-bit targets.
///
/// Each output is the FIR sum of [`super::Fir`], in the same order (oldest sample
/// first, from 0). The taps should cut off below the output's Nyquist frequency,
/// e.g. scipy's `firwin(20·factor + 1, 1 / factor)`, `decimate`'s own design.
#[derive(Debug, Clone, PartialEq)]
pub struct Decimator<const N: usize> {
    taps: [f32; N],
    history: [f32; N],
    head: usize,
    factor: usize,
    /// Inputs until the next kept one.
    phase: usize,
}

impl<const N: usize> Decimator<N> {
    /// A decimator by `factor` (at least 1) with finite `taps`.
    pub fn new(taps: &[f32; N], factor: usize) -> Result<Self, DspError> {
        const { assert!(N > 0, "a `Decimator` needs at least one tap") };
        check_taps(taps)?;
        check_factor(
            factor,
            "at least 1 (the ratio of the input rate to the output rate)",
        )?;
        Ok(Decimator {
            taps: *taps,
            history: [0.0; N],
            head: N - 1,
            factor,
            phase: 0,
        })
    }

    /// Takes one sample; the output when it is a kept one.
    #[inline]
    pub fn push(&mut self, x: f32) -> Option<f32> {
        self.head = if self.head + 1 == N { 0 } else { self.head + 1 };
        self.history[self.head] = x;
        let keep = self.phase == 0;
        self.phase = if self.phase + 1 == self.factor {
            0
        } else {
            self.phase + 1
        };
        keep.then(|| dot_oldest_first(&self.history, self.head, &self.taps))
    }

    /// Takes `input`, writes the outputs it completes to the front of `out` and
    /// returns their count. `out` must hold `input.len().div_ceil(factor)` values
    /// (the most a chunk can give).
    pub fn process(&mut self, input: &[f32], out: &mut [f32]) -> Result<usize, DspError> {
        let most = input.len().div_ceil(self.factor);
        if out.len() < most {
            return Err(DspError::Length {
                what: "out",
                expected: most,
                actual: out.len(),
            });
        }
        let mut n = 0;
        for &x in input {
            if let Some(y) = self.push(x) {
                out[n] = y;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Clears the history; the next sample is kept.
    pub fn reset(&mut self) {
        self.history = [0.0; N];
        self.head = N - 1;
        self.phase = 0;
    }
}

/// Inserts `factor - 1` zeros after each sample and filters by `N` taps:
/// `upfirdn(taps, x, up=factor)`, `factor` outputs per input, computed as the
/// polyphase sums. `8N + 8` bytes on 32-bit targets.
///
/// Output `factor·n + p` is `Σ_j taps[p + factor·j]·x[n - j]` over the taps of
/// phase `p`, summed from the oldest sample (largest `j`) to the newest, from 0.
/// The taps carry the gain: `factor · firwin(…, 1 / factor)` keeps the level.
#[derive(Debug, Clone, PartialEq)]
pub struct Interpolator<const N: usize> {
    taps: [f32; N],
    history: [f32; N],
    head: usize,
    factor: usize,
}

impl<const N: usize> Interpolator<N> {
    /// An interpolator by `factor` (at least 1) with finite `taps`.
    pub fn new(taps: &[f32; N], factor: usize) -> Result<Self, DspError> {
        const { assert!(N > 0, "an `Interpolator` needs at least one tap") };
        check_taps(taps)?;
        check_factor(
            factor,
            "at least 1 (the ratio of the output rate to the input rate)",
        )?;
        Ok(Interpolator {
            taps: *taps,
            history: [0.0; N],
            head: N - 1,
            factor,
        })
    }

    /// The interpolation factor: outputs per input.
    pub fn factor(&self) -> usize {
        self.factor
    }

    /// Takes one sample and writes its `factor` outputs to `out`, which must hold
    /// exactly `factor` values.
    pub fn push(&mut self, x: f32, out: &mut [f32]) -> Result<(), DspError> {
        if out.len() != self.factor {
            return Err(DspError::Length {
                what: "out",
                expected: self.factor,
                actual: out.len(),
            });
        }
        self.head = if self.head + 1 == N { 0 } else { self.head + 1 };
        self.history[self.head] = x;
        for (p, y) in out.iter_mut().enumerate() {
            let mut acc = 0.0f32;
            if p < N {
                // Taps p, p + L, …: the last one meets the oldest sample.
                let count = (N - 1 - p) / self.factor + 1;
                for j in (0..count).rev() {
                    // x[n - j] sits j places before `head` in the ring (j < N).
                    let at = if j <= self.head {
                        self.head - j
                    } else {
                        self.head + N - j
                    };
                    acc += self.taps[p + self.factor * j] * self.history[at];
                }
            }
            *y = acc;
        }
        Ok(())
    }

    /// Takes `input` and writes `factor` outputs per sample to `out`, which must
    /// hold `input.len() · factor` values; returns that count.
    pub fn process(&mut self, input: &[f32], out: &mut [f32]) -> Result<usize, DspError> {
        let n = input.len().checked_mul(self.factor);
        if n.is_none_or(|n| out.len() < n) {
            return Err(DspError::Length {
                what: "out",
                expected: n.unwrap_or(usize::MAX),
                actual: out.len(),
            });
        }
        for (x, chunk) in input.iter().zip(out.chunks_exact_mut(self.factor)) {
            self.push(*x, chunk)?;
        }
        Ok(input.len() * self.factor)
    }

    /// Clears the history.
    pub fn reset(&mut self) {
        self.history = [0.0; N];
        self.head = N - 1;
    }
}

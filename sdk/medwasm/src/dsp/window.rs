//! Sliding windows with a hop: a stream of samples in, a window of `W` samples out
//! every `hop` samples, each with the index of its first sample.

use super::DspError;

/// Cuts a stream into windows of `W` samples starting every `hop` samples: `W`
/// f32, three counters and the stream index, `4W + 20` bytes rounded up to a
/// multiple of 8 on 32-bit targets.
///
/// The first window holds samples `0..W`, the next `hop..hop + W`, and so on
/// (numpy's `sliding_window_view(x, W)[::hop]`). A hop larger than `W` skips the
/// samples between windows. Windows do not depend on how the stream is chunked.
#[derive(Debug, Clone, PartialEq)]
pub struct Windows<const W: usize> {
    buf: [f32; W],
    /// Samples of the next window already in `buf`.
    filled: usize,
    /// Samples still to drop before the next window starts (`hop > W`).
    skip: usize,
    hop: usize,
    /// Stream index of `buf[0]`.
    start: u64,
}

impl<const W: usize> Windows<W> {
    /// Windows of `W` samples every `hop` samples, `hop >= 1`.
    pub fn new(hop: usize) -> Result<Self, DspError> {
        const { assert!(W > 0, "`Windows` needs at least one sample per window") };
        if hop == 0 {
            return Err(DspError::Parameter {
                name: "hop",
                value: 0.0,
                range: "at least 1 sample (the window length for windows that do not overlap)",
            });
        }
        Ok(Windows {
            buf: [0.0; W],
            filled: 0,
            skip: 0,
            hop,
            start: 0,
        })
    }

    /// Takes `samples` and calls `window(start, &window)` for every window they
    /// complete, in order. Returns how many windows were completed; at the
    /// callback's first error it returns that error, having taken the samples up
    /// to the end of the failed window and none after it.
    pub fn push<E>(
        &mut self,
        samples: &[f32],
        mut window: impl FnMut(u64, &[f32; W]) -> Result<(), E>,
    ) -> Result<usize, E> {
        let mut done = 0;
        let mut rest = samples;
        while !rest.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(rest.len());
                self.skip -= n;
                rest = &rest[n..];
                continue;
            }
            let n = (W - self.filled).min(rest.len());
            self.buf[self.filled..self.filled + n].copy_from_slice(&rest[..n]);
            self.filled += n;
            rest = &rest[n..];
            if self.filled == W {
                let result = window(self.start, &self.buf);
                // Advance whatever the callback says, so an error leaves the stream
                // where a retry of the remaining samples continues it.
                if self.hop >= W {
                    self.filled = 0;
                    self.skip = self.hop - W;
                } else {
                    self.buf.copy_within(self.hop.., 0);
                    self.filled = W - self.hop;
                }
                self.start += self.hop as u64;
                done += 1;
                result?;
            }
        }
        Ok(done)
    }

    /// Forgets the samples seen; the next sample is index 0 again.
    pub fn reset(&mut self) {
        self.filled = 0;
        self.skip = 0;
        self.start = 0;
    }
}

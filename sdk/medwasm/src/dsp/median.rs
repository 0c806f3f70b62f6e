//! The moving median: a robust smoother for spikes and motion artefacts.

/// The median of the last `N` samples (zeros before the first), the causal
/// counterpart of `numpy.median` over a sliding window: the history and a sorted
/// copy of it, `8N + 4` bytes on 32-bit targets.
///
/// For even `N` the median is `(a + b) / 2` of the two middle values, in f32, as
/// numpy computes it for float32 data. Each sample costs `O(N)` moves to keep the
/// copy sorted. Values are ordered by `f32::total_cmp`, so a NaN (which the
/// runtime refuses before it gets here) cannot break the order.
#[derive(Debug, Clone, PartialEq)]
pub struct MovingMedian<const N: usize> {
    history: [f32; N],
    head: usize,
    sorted: [f32; N],
}

impl<const N: usize> MovingMedian<N> {
    /// A moving median over `N` samples.
    pub fn new() -> Self {
        const {
            assert!(
                N > 0,
                "a `MovingMedian` needs a window of at least one sample"
            )
        };
        MovingMedian {
            history: [0.0; N],
            head: N - 1,
            sorted: [0.0; N],
        }
    }

    /// Smooths one sample.
    pub fn push(&mut self, x: f32) -> f32 {
        self.head = if self.head + 1 == N { 0 } else { self.head + 1 };
        let old = core::mem::replace(&mut self.history[self.head], x);
        // The outgoing value is in `sorted` with the same bits: total_cmp equality.
        let at = self
            .sorted
            .binary_search_by(|v| v.total_cmp(&old))
            .unwrap_or_else(|i| i.min(N - 1));
        // Slide the values between the old slot and the new value's place by one.
        let mut i = at;
        while i > 0 && self.sorted[i - 1].total_cmp(&x).is_gt() {
            self.sorted[i] = self.sorted[i - 1];
            i -= 1;
        }
        while i + 1 < N && self.sorted[i + 1].total_cmp(&x).is_lt() {
            self.sorted[i] = self.sorted[i + 1];
            i += 1;
        }
        self.sorted[i] = x;
        if N % 2 == 1 {
            self.sorted[N / 2]
        } else {
            (self.sorted[N / 2 - 1] + self.sorted[N / 2]) / 2.0
        }
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

impl<const N: usize> Default for MovingMedian<N> {
    fn default() -> Self {
        Self::new()
    }
}

//! Spectral features: a radix-2 FFT, the one-sided periodogram (scipy's
//! `periodogram(..., scaling='density')`) and the power in a frequency band.

use super::DspError;

/// An in-place complex FFT of `N` points, `N` a power of two: its twiddle
/// factors, `4N` bytes (`N/2` cosines, then `N/2` sines).
///
/// Iterative radix-2 decimation in time: the bit-reversal permutation, then for
/// each stage of length `L = 2, 4, …, N` and each butterfly `(a, b)` with twiddle
/// `w = cos θ - i·sin θ`, `θ = 2π·j/L`, in f32 and in this order:
///
/// ```text
/// tr = wr·br - wi·bi,  ti = wr·bi + wi·br
/// b  = (ar - tr, ai - ti),  a = (ar + tr, ai + ti)
/// ```
///
/// The twiddles are `cos`/`sin` of `2π·k/N` in f64 (`libm`, the same bits on every
/// target) rounded to f32.
#[derive(Debug, Clone, PartialEq)]
pub struct Fft<const N: usize> {
    twiddles: [f32; N],
}

impl<const N: usize> Fft<N> {
    /// The twiddle table for `N` points.
    pub fn new() -> Self {
        const {
            assert!(
                N >= 2 && N.is_power_of_two(),
                "an `Fft` needs a power of two of at least 2 points"
            )
        };
        let mut twiddles = [0.0; N];
        for k in 0..N / 2 {
            let theta = 2.0 * core::f64::consts::PI * k as f64 / N as f64;
            twiddles[k] = libm::cos(theta) as f32;
            twiddles[N / 2 + k] = libm::sin(theta) as f32;
        }
        Fft { twiddles }
    }

    /// Transforms `(re, im)` in place: `X[k] = Σ x[n]·exp(-2πi·nk/N)`, numpy's
    /// `fft.fft`, unscaled.
    pub fn transform(&self, re: &mut [f32; N], im: &mut [f32; N]) {
        let bits = N.trailing_zeros();
        if bits > 0 {
            for i in 0..N {
                let j = i.reverse_bits() >> (usize::BITS - bits);
                if i < j {
                    re.swap(i, j);
                    im.swap(i, j);
                }
            }
        }
        let (cos, sin) = self.twiddles.split_at(N / 2);
        let mut len = 2;
        while len <= N {
            let half = len / 2;
            let step = N / len;
            // Blocks of `len`, each split into its halves `a` and `b`, iterated
            // without indices so no bounds check sits in the butterfly.
            for (block_re, block_im) in re.chunks_exact_mut(len).zip(im.chunks_exact_mut(len)) {
                let (a_re, b_re) = block_re.split_at_mut(half);
                let (a_im, b_im) = block_im.split_at_mut(half);
                let twiddles = cos.iter().step_by(step).zip(sin.iter().step_by(step));
                for ((((ar, ai), br), bi), (c, s)) in a_re
                    .iter_mut()
                    .zip(a_im.iter_mut())
                    .zip(b_re.iter_mut())
                    .zip(b_im.iter_mut())
                    .zip(twiddles)
                {
                    let (wr, wi) = (*c, -*s);
                    let tr = wr * *br - wi * *bi;
                    let ti = wr * *bi + wi * *br;
                    *br = *ar - tr;
                    *bi = *ai - ti;
                    *ar += tr;
                    *ai += ti;
                }
            }
            len *= 2;
        }
    }
}

/// The first `k < n` for which the monotonic `pred` holds (`n` when none does).
fn first_where(n: usize, pred: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    lo
}

impl<const N: usize> Default for Fft<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// The window a periodogram multiplies its samples by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// No window (scipy's `'boxcar'`).
    Rectangular,
    /// The periodic Hann window, `0.5 - 0.5·cos(2π·n/N)` (scipy's `'hann'`, whose
    /// default for spectra is periodic).
    Hann,
}

/// The one-sided power spectral density of `N` samples, as scipy's
/// `periodogram(x, fs, window, detrend, scaling='density')` for even `N`: the
/// FFT's twiddles, the window, the scale, the rate and a flag: `8N + 12` bytes.
///
/// In f32, in this order: with `detrend`, the mean (the sum from the first sample
/// to the last, divided by `N`) is subtracted from each sample; each sample is
/// multiplied by its window value; after the FFT, bin `k` of `N/2 + 1` is
/// `(re·re + im·im)·scale`, doubled for `0 < k < N/2`, with `scale = 1 / (fs ·
/// Σ w²)` computed in f64 and rounded to f32.
#[derive(Debug, Clone, PartialEq)]
pub struct Periodogram<const N: usize> {
    fft: Fft<N>,
    window: [f32; N],
    scale: f32,
    fs: f32,
    detrend: bool,
}

impl<const N: usize> Periodogram<N> {
    /// Bins in the spectrum: `N/2 + 1`.
    pub const BINS: usize = N / 2 + 1;

    /// A periodogram of `N` samples at `fs_hz`, with `window`, removing the mean
    /// first when `detrend` (scipy's `detrend='constant'`; `false` is
    /// `detrend=False`).
    pub fn new(fs_hz: f32, window: Window, detrend: bool) -> Result<Self, DspError> {
        if !(fs_hz.is_finite() && fs_hz > 0.0) {
            return Err(DspError::SampleRate { fs: fs_hz as f64 });
        }
        let mut w = [1.0f32; N];
        if window == Window::Hann {
            for (n, v) in w.iter_mut().enumerate() {
                let theta = 2.0 * core::f64::consts::PI * n as f64 / N as f64;
                *v = (0.5 - 0.5 * libm::cos(theta)) as f32;
            }
        }
        let mut energy = 0.0f64;
        for v in &w {
            energy += *v as f64 * *v as f64;
        }
        Ok(Periodogram {
            fft: Fft::new(),
            window: w,
            scale: (1.0 / (fs_hz as f64 * energy)) as f32,
            fs: fs_hz,
            detrend,
        })
    }

    /// The frequency of bin `k` in Hz, `k · fs / N` as numpy's `rfftfreq` computes
    /// it (`k · (1 / (N · (1 / fs)))` in f64).
    pub fn frequency(&self, k: usize) -> f64 {
        k as f64 * self.bin_width()
    }

    /// `1 / (N · (1 / fs))` in f64: numpy's `rfftfreq` spacing.
    fn bin_width(&self) -> f64 {
        1.0 / (N as f64 * (1.0 / self.fs as f64))
    }

    /// The density of `x` into `psd` (`N/2 + 1` values, in units² per Hz), with
    /// `work` as the FFT's buffers (`re`, `im`).
    pub fn psd(
        &self,
        x: &[f32; N],
        work: (&mut [f32; N], &mut [f32; N]),
        psd: &mut [f32],
    ) -> Result<(), DspError> {
        if psd.len() != Self::BINS {
            return Err(DspError::Length {
                what: "psd",
                expected: Self::BINS,
                actual: psd.len(),
            });
        }
        let (re, im) = work;
        let mut mean = 0.0f32;
        if self.detrend {
            for v in x {
                mean += v;
            }
            mean /= N as f32;
        }
        for ((r, i), (v, w)) in re
            .iter_mut()
            .zip(im.iter_mut())
            .zip(x.iter().zip(&self.window))
        {
            *r = if self.detrend { (v - mean) * w } else { v * w };
            *i = 0.0;
        }
        self.fft.transform(re, im);
        for (k, p) in psd.iter_mut().enumerate() {
            let v = (re[k] * re[k] + im[k] * im[k]) * self.scale;
            *p = if k == 0 || k == N / 2 { v } else { v * 2.0 };
        }
        Ok(())
    }

    /// The power between `low_hz` (included) and `high_hz` (excluded) of a density
    /// from [`Periodogram::psd`]: the bins' sum, in increasing frequency, times the
    /// bin width `fs / N` (in f32). 0 when no bin lies in the band.
    pub fn band_power(&self, psd: &[f32], low_hz: f64, high_hz: f64) -> Result<f32, DspError> {
        if psd.len() != Self::BINS {
            return Err(DspError::Length {
                what: "psd",
                expected: Self::BINS,
                actual: psd.len(),
            });
        }
        if !(low_hz.is_finite() && high_hz.is_finite() && low_hz < high_hz) {
            return Err(DspError::BandEdges {
                low: low_hz,
                high: high_hz,
            });
        }
        // The bin frequencies increase with k, so the band is one run of bins,
        // found by bisection: a few f64 products instead of one per bin (f64 is
        // software on a Cortex-M4).
        let bin = self.bin_width();
        let first = first_where(Self::BINS, |k| k as f64 * bin >= low_hz);
        let end = first_where(Self::BINS, |k| k as f64 * bin >= high_hz);
        let mut sum = 0.0f32;
        for p in &psd[first..end.max(first)] {
            sum += p;
        }
        Ok(sum * (self.fs / N as f32))
    }
}

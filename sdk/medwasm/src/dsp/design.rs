//! Butterworth filter design, as scipy's `butter(order, cutoff, btype, fs=fs,
//! output='sos')` computes it: the analog prototype's poles, the frequency
//! pre-warping, the low/high/band-pass transform, the bilinear transform and
//! `zpk2sos`'s `'nearest'` pole–zero pairing and section order, in f64.
//!
//! It runs once, when a filter is set up (on the device, or in a `const`-sized
//! template's init), not per sample. The f64 arithmetic follows numpy's formulas
//! (complex products, Smith's division) and the transcendental functions come from
//! `libm`, whose Rust code is the same plain IEEE operations on every target, so
//! the coefficients are the same bits natively, in wasm and on a Cortex-M (where
//! f64 is done in software, correctly rounded). Against scipy they agree within
//! 1e-12 (`conformance/dsp/`, `docs/dsp.md`): the cosines and tangents of the two
//! libraries may differ in the last bit.

use super::DspError;

/// The highest order designed. A band-pass of order `n` has `2n` poles and `n`
/// sections; 8 covers ECG and motion front ends with room to spare.
pub const MAX_ORDER: usize = 8;
const MAX_POLES: usize = 2 * MAX_ORDER;

/// The pass band of a Butterworth filter, in Hz.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Band {
    /// Passes below the cut-off.
    LowPass {
        /// -3 dB frequency in Hz.
        cutoff_hz: f64,
    },
    /// Passes above the cut-off.
    HighPass {
        /// -3 dB frequency in Hz.
        cutoff_hz: f64,
    },
    /// Passes between two edges.
    BandPass {
        /// Lower -3 dB frequency in Hz.
        low_hz: f64,
        /// Upper -3 dB frequency in Hz.
        high_hz: f64,
    },
}

/// A digital Butterworth filter specification.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Butterworth {
    /// Low-, high- or band-pass and the cut-off(s).
    pub band: Band,
    /// Filter order (a band-pass of order `n` has order `2n` overall, as in scipy).
    pub order: usize,
    /// Sample rate in Hz.
    pub fs_hz: f64,
}

/// The second-order sections of a design in f64, rows `b0 b1 b2 a0 a1 a2` with
/// `a0 = 1`, the layout of scipy's `sos` arrays.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sos {
    rows: [[f64; 6]; MAX_ORDER],
    len: usize,
}

impl Sos {
    /// The sections, first to last (the order `sosfilt` applies them).
    pub fn sections(&self) -> &[[f64; 6]] {
        &self.rows[..self.len]
    }
}

impl Butterworth {
    /// How many second-order sections the design has: `ceil(order / 2)` for low-
    /// and high-pass, `order` for band-pass. A `const fn`, to size `SosFilter<S>`.
    pub const fn sections(&self) -> usize {
        match self.band {
            Band::BandPass { .. } => self.order,
            _ => self.order.div_ceil(2),
        }
    }

    /// Checks the order, the sample rate and the cut-offs.
    pub fn validate(&self) -> Result<(), DspError> {
        if self.order == 0 || self.order > MAX_ORDER {
            return Err(DspError::Order {
                order: self.order,
                max: MAX_ORDER,
            });
        }
        let fs = self.fs_hz;
        if !(fs.is_finite() && fs > 0.0) {
            return Err(DspError::SampleRate { fs });
        }
        let check = |hz: f64| {
            if hz.is_finite() && hz > 0.0 && hz < fs / 2.0 {
                Ok(())
            } else {
                Err(DspError::Cutoff { hz, fs })
            }
        };
        match self.band {
            Band::LowPass { cutoff_hz } | Band::HighPass { cutoff_hz } => check(cutoff_hz),
            Band::BandPass { low_hz, high_hz } => {
                check(low_hz)?;
                check(high_hz)?;
                if low_hz < high_hz {
                    Ok(())
                } else {
                    Err(DspError::BandEdges {
                        low: low_hz,
                        high: high_hz,
                    })
                }
            }
        }
    }

    /// The design's second-order sections in f64.
    pub fn design(&self) -> Result<Sos, DspError> {
        self.validate()?;
        let n = self.order;
        // `buttap`: poles -exp(i·pi·m / 2n) for m = -n+1, -n+3, …, n-1; no zeros, gain 1.
        let mut p = [C::ZERO; MAX_POLES];
        for (i, slot) in p.iter_mut().enumerate().take(n) {
            let m = (2 * i) as f64 - (n as f64 - 1.0);
            let theta = core::f64::consts::PI * m / (2 * n) as f64;
            *slot = C::new(-libm::cos(theta), -libm::sin(theta));
        }
        // `iirfilter`: normalise to Nyquist, pre-warp with fs = 2.
        let warp = |hz: f64| {
            let wn = 2.0 * hz / self.fs_hz;
            4.0 * libm::tan(core::f64::consts::PI * wn / 2.0)
        };
        let (np, analog_zeros, k) = match self.band {
            Band::LowPass { cutoff_hz } => {
                // `lp2lp_zpk`: scale the poles; gain wo^n.
                let wo = warp(cutoff_hz);
                for q in &mut p[..n] {
                    *q = q.scale(wo);
                }
                (n, 0, libm::pow(wo, n as f64))
            }
            Band::HighPass { cutoff_hz } => {
                // `lp2hp_zpk`: invert the poles, n zeros at the origin; gain
                // real(1 / prod(-p)).
                let wo = warp(cutoff_hz);
                let mut prod = C::new(1.0, 0.0);
                for q in &mut p[..n] {
                    prod = prod.mul(q.neg());
                    *q = C::new(wo, 0.0).div(*q);
                }
                (n, n, C::new(1.0, 0.0).div(prod).re)
            }
            Band::BandPass { low_hz, high_hz } => {
                // `lp2bp_zpk`: each pole p·bw/2 splits into p' ± sqrt(p'^2 - wo^2),
                // all the `+` ones first; n zeros at the origin; gain bw^n.
                let (w1, w2) = (warp(low_hz), warp(high_hz));
                let bw = w2 - w1;
                let wo = libm::sqrt(w1 * w2);
                let mut lp = [C::ZERO; MAX_ORDER];
                for (l, q) in lp.iter_mut().zip(&p[..n]) {
                    *l = q.scale(bw).scale(0.5);
                }
                for (i, l) in lp[..n].iter().enumerate() {
                    let sq = l.mul(*l);
                    let root = C::new(sq.re - wo * wo, sq.im).sqrt();
                    p[i] = l.add(root);
                    p[n + i] = l.sub(root);
                }
                (2 * n, n, libm::pow(bw, n as f64))
            }
        };
        // `bilinear_zpk` with fs = 2 (fs2 = 4): z -> (4 + z) / (4 - z). The analog
        // zeros are at the origin and map to +1; the missing ones go to -1. The
        // gain is k·real(prod(4 - z) / prod(4 - p)), prod(4 - z) = 4^zeros.
        let mut prod = C::new(1.0, 0.0);
        for q in &mut p[..np] {
            let (plus, minus) = (C::new(4.0 + q.re, q.im), C::new(4.0 - q.re, -q.im));
            prod = prod.mul(minus);
            *q = plus.div(minus);
        }
        let mut zprod = 1.0;
        for _ in 0..analog_zeros {
            zprod *= 4.0;
        }
        let k = k * C::new(zprod, 0.0).div(prod).re;
        let mut z = [0.0f64; MAX_POLES + 1];
        for (i, slot) in z.iter_mut().enumerate().take(np) {
            *slot = if i < analog_zeros { 1.0 } else { -1.0 };
        }
        let mut rows = zpk2sos(&mut z[..np], &p[..np], np, self.sections());
        for v in &mut rows.rows[0][..3] {
            *v *= k;
        }
        Ok(rows)
    }
}

/// scipy's `zpk2sos(z, p, k, pairing='nearest')` for real zeros, without the gain.
fn zpk2sos(zeros: &mut [f64], poles: &[C], np: usize, sections: usize) -> Sos {
    // `_cplxreal`: one pole of each conjugate pair (positive imaginary part), sorted
    // by real part then imaginary magnitude, then the real poles in increasing order.
    // The poles come in exact conjugate pairs (the formulas above are symmetric).
    let mut p = Set::<C>::new();
    let mut reals = Set::<C>::new();
    for &q in poles {
        if q.im > 0.0 {
            p.insert_sorted(q, |a, b| (a.re, a.im) < (b.re, b.im));
        } else if q.im == 0.0 {
            reals.insert_sorted(C::new(q.re, 0.0), |a, b| a.re < b.re);
        }
    }
    for &q in reals.items() {
        p.push(q);
    }
    let mut z = Set::<f64>::new();
    zeros.sort_unstable_by(f64::total_cmp);
    for &v in zeros.iter() {
        z.push(v);
    }
    // An odd count gets a pole and a zero at the origin.
    if !np.is_multiple_of(2) {
        p.push(C::ZERO);
        z.insert_sorted(0.0, |a, b| a < b);
    }
    let mut rows = Sos {
        rows: [[0.0; 6]; MAX_ORDER],
        len: sections,
    };
    // The pole closest to the unit circle first; its section goes last.
    let worst = |c: &C| libm::fabs(1.0 - c.abs());
    for si in (0..sections).rev() {
        let p1 = p.take(p.argmin(|c| Some(worst(c))));
        let is_real = |c: &C| c.im == 0.0;
        let dist = |v: &f64| C::new(*v - p1.re, -p1.im).abs();
        let row = if is_real(&p1) && !p.items().iter().any(is_real) {
            // The last real pole: a first-order section with the nearest zero.
            let z1 = z.take(z.argmin(|v| Some(dist(v))));
            single([z1, 0.0], [p1, C::ZERO])
        } else {
            let p2 = if is_real(&p1) {
                p.take(p.argmin(|c| is_real(c).then(|| worst(c))))
            } else {
                p1.conj()
            };
            let z1 = z.take(z.argmin(|v| Some(dist(v))));
            if z.len > 0 {
                let z2 = z.take(z.argmin(|v| Some(dist(v))));
                single([z1, z2], [p1, p2])
            } else {
                let mut row = single([z1, 0.0], [p1, p2]);
                row[..3].copy_from_slice(&[0.0, 1.0, -z1]);
                row
            }
        };
        rows.rows[si] = row;
    }
    rows
}

/// `_single_zpksos`: `[poly(z), poly(p)]` as numpy's `poly` computes them.
fn single(z: [f64; 2], p: [C; 2]) -> [f64; 6] {
    // poly([r1, r2]) = [1, -r1 - r2, r1·r2]; a conjugate pair's is real. numpy's
    // convolution sums from +0, so an exact zero comes out as +0, never -0.
    let a2 = p[0].neg().mul(p[1].neg());
    let a1 = p[0].neg().add(p[1].neg());
    [
        1.0,
        0.0 + -z[0] + -z[1],
        0.0 + z[0] * z[1],
        1.0,
        0.0 + a1.re,
        0.0 + a2.re,
    ]
}

/// A complex number with numpy's arithmetic.
#[derive(Debug, Clone, Copy, PartialEq)]
struct C {
    re: f64,
    im: f64,
}

impl C {
    const ZERO: C = C { re: 0.0, im: 0.0 };

    fn new(re: f64, im: f64) -> C {
        C { re, im }
    }
    fn scale(self, s: f64) -> C {
        C::new(self.re * s, self.im * s)
    }
    fn add(self, o: C) -> C {
        C::new(self.re + o.re, self.im + o.im)
    }
    fn sub(self, o: C) -> C {
        C::new(self.re - o.re, self.im - o.im)
    }
    fn neg(self) -> C {
        C::new(-self.re, -self.im)
    }
    fn conj(self) -> C {
        C::new(self.re, -self.im)
    }
    fn mul(self, o: C) -> C {
        C::new(
            self.re * o.re - self.im * o.im,
            self.re * o.im + self.im * o.re,
        )
    }
    /// Smith's algorithm, as numpy divides complex numbers.
    fn div(self, o: C) -> C {
        if libm::fabs(o.re) >= libm::fabs(o.im) {
            let rat = o.im / o.re;
            let scl = 1.0 / (o.re + o.im * rat);
            C::new(
                (self.re + self.im * rat) * scl,
                (self.im - self.re * rat) * scl,
            )
        } else {
            let rat = o.re / o.im;
            let scl = 1.0 / (o.im + o.re * rat);
            C::new(
                (self.re * rat + self.im) * scl,
                (self.im * rat - self.re) * scl,
            )
        }
    }
    fn abs(self) -> f64 {
        libm::hypot(self.re, self.im)
    }
    /// The principal square root (C99 `csqrt`'s formula).
    fn sqrt(self) -> C {
        if self.re == 0.0 && self.im == 0.0 {
            return C::new(0.0, self.im);
        }
        let t = libm::sqrt((libm::fabs(self.re) + self.abs()) / 2.0);
        if self.re >= 0.0 {
            C::new(t, self.im / (2.0 * t))
        } else {
            C::new(libm::fabs(self.im) / (2.0 * t), libm::copysign(t, self.im))
        }
    }
}

/// A small ordered set of poles or zeros: numpy's `np.delete` keeps the order.
#[derive(Debug)]
struct Set<T> {
    items: [T; MAX_POLES + 1],
    len: usize,
}

impl<T: Copy + Default> Set<T> {
    fn new() -> Self {
        Set {
            items: [T::default(); MAX_POLES + 1],
            len: 0,
        }
    }
    fn items(&self) -> &[T] {
        &self.items[..self.len]
    }
    fn push(&mut self, v: T) {
        self.items[self.len] = v;
        self.len += 1;
    }
    /// Inserts after every element not greater than `v` (a stable sort's place).
    fn insert_sorted(&mut self, v: T, less: impl Fn(&T, &T) -> bool) {
        let at = self.items().iter().take_while(|x| !less(&v, x)).count();
        self.items.copy_within(at..self.len, at + 1);
        self.items[at] = v;
        self.len += 1;
    }
    /// The first index with the smallest key (numpy's `argmin`), among the
    /// elements `key` gives a value for.
    fn argmin(&self, key: impl Fn(&T) -> Option<f64>) -> usize {
        let mut best: Option<(usize, f64)> = None;
        for (i, x) in self.items().iter().enumerate() {
            if let Some(k) = key(x)
                && best.is_none_or(|(_, b)| k < b)
            {
                best = Some((i, k));
            }
        }
        // The callers only ask when a candidate exists (the counts are paired).
        best.map_or(0, |(i, _)| i)
    }
    fn take(&mut self, i: usize) -> T {
        let v = self.items[i];
        self.items.copy_within(i + 1..self.len, i);
        self.len -= 1;
        v
    }
}

impl Default for C {
    fn default() -> C {
        C::ZERO
    }
}

//! Signal processing blocks for the samples before a model: IIR and FIR filters,
//! moving average and median, DC removal, normalization, resampling by integer
//! factors, sliding windows, the 3-axis magnitude, and spectra (FFT,
//! periodogram, band power).
//!
//! Every block is `no_std` and allocation-free: its state is a struct whose
//! buffers are sized by const generics (`SosFilter<S>`, `Fir<N>`,
//! `MovingAverage<N>`, `Windows<W>`, `Fft<N>` …) or by the caller's slice, so a template or
//! the converter can size and count them at build time. Streaming blocks take
//! samples one at a time (`push`) or a chunk in place (`process`); feeding a
//! signal in chunks of any size gives the same bits as feeding it whole.
//!
//! **Bit-identical on every target.** The f32 arithmetic is written out in a
//! fixed order (documented per block) with no fused multiply-add and no
//! reassociation, and the only function called on f32 is the square root, which
//! IEEE 754 rounds correctly everywhere (tables of cosines, for the FFT and the
//! Hann window, are computed in f64 with `libm` and rounded once). So natively, in wasm32 (with or without
//! simd128) and on a Cortex-M4F/M7 the outputs agree to the bit; the test battery
//! checks them against an independent model of that arithmetic
//! (`conformance/gen_dsp_cases.py`, numpy float32 one operation at a time) and
//! against scipy in float64 within the tolerances of `docs/dsp.md`.
//!
//! The Butterworth design ([`design`]) runs in f64 at initialisation, following
//! scipy's `butter(..., output='sos')` step by step, with `libm`'s portable Rust
//! `sin`/`cos`/`tan`/`sqrt`/`hypot`/`pow` (plain IEEE operations; its only target
//! instructions — square root, fused multiply-add, rounding, absolute value — are
//! exactly specified), so the coefficients are the same bits on every target too.

pub mod design;
mod error;
pub mod fir;
pub mod iir;
pub mod median;
pub mod norm;
pub mod resample;
pub mod smooth;
pub mod smv;
pub mod spectrum;
pub mod window;

pub use design::{Band, Butterworth};
pub use error::DspError;
pub use fir::Fir;
pub use iir::SosFilter;
pub use median::MovingMedian;
pub use norm::{min_max, z_score};
pub use resample::{Decimator, Interpolator};
pub use smooth::{DcBlocker, MovingAverage};
pub use smv::{magnitude, magnitudes};
pub use spectrum::{Fft, Periodogram, Window};
pub use window::Windows;

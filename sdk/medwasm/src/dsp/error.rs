//! The DSP blocks' error type: a plain `no_std` enum, kept apart from the runtime's
//! [`crate::Error`] (whose numeric codes are part of the detector ABI) because
//! these errors are configuration mistakes, caught when a pipeline is set up.

use core::fmt;

/// A DSP block refused its parameters or its buffers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DspError {
    /// A filter order outside `1..=max`.
    Order {
        /// The order asked for.
        order: usize,
        /// The largest order the design supports.
        max: usize,
    },
    /// The sample rate is not a positive finite number.
    SampleRate {
        /// The rate given, in Hz.
        fs: f64,
    },
    /// A cut-off frequency is not strictly between 0 and half the sample rate.
    Cutoff {
        /// The cut-off given, in Hz.
        hz: f64,
        /// The sample rate, in Hz.
        fs: f64,
    },
    /// A band-pass whose lower edge is not below its upper edge.
    BandEdges {
        /// The lower edge given, in Hz.
        low: f64,
        /// The upper edge given, in Hz.
        high: f64,
    },
    /// The design has a different number of second-order sections than the
    /// filter type holds.
    Sections {
        /// Sections the design has.
        needed: usize,
        /// Sections of the `SosFilter<S>` asked for.
        actual: usize,
    },
    /// A biquad coefficient is not finite, or a section's `a0` is not 1.
    Coefficient {
        /// The section.
        section: usize,
        /// The coefficient's index in the section (`b0 b1 b2 a0 a1 a2`).
        index: usize,
    },
    /// A FIR tap (of `Fir`, `Decimator` or `Interpolator`) is not finite.
    Tap {
        /// The tap's index.
        index: usize,
    },
    /// A scalar parameter out of its range.
    Parameter {
        /// The parameter's name.
        name: &'static str,
        /// Its value.
        value: f32,
        /// The range it must lie in, as words.
        range: &'static str,
    },
    /// Two buffers whose lengths must agree do not.
    Length {
        /// Which buffer.
        what: &'static str,
        /// The length it must have.
        expected: usize,
        /// The length it has.
        actual: usize,
    },
}

impl fmt::Display for DspError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DspError::Order { order, max } => write!(
                f,
                "filter order {order} is not supported; choose an order from 1 to {max}"
            ),
            DspError::SampleRate { fs } => write!(
                f,
                "sample rate {fs} Hz is not a positive number; give the sensor's rate in Hz"
            ),
            DspError::Cutoff { hz, fs } => write!(
                f,
                "cut-off {hz} Hz is not between 0 and half the sample rate ({} Hz); choose a cut-off below the Nyquist frequency",
                fs / 2.0
            ),
            DspError::BandEdges { low, high } => write!(
                f,
                "band-pass edges {low} Hz and {high} Hz are not in increasing order; give the lower edge first"
            ),
            DspError::Sections { needed, actual } => write!(
                f,
                "the design has {needed} second-order sections but the filter holds {actual}; declare it as `SosFilter<{needed}>` (`Butterworth::sections` gives the count)"
            ),
            DspError::Coefficient { section, index } => write!(
                f,
                "coefficient {index} of section {section} is not finite or `a0` is not 1; divide each section by its `a0` and check the design"
            ),
            DspError::Tap { index } => write!(
                f,
                "tap {index} is not finite; check the filter design that produced the taps"
            ),
            DspError::Parameter { name, value, range } => {
                write!(f, "`{name}` is {value} but must be {range}")
            }
            DspError::Length {
                what,
                expected,
                actual,
            } => write!(
                f,
                "`{what}` holds {actual} values but must hold {expected}; size the buffers together"
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for DspError {}

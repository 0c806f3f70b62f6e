//! The runtime's error type: a plain enum, `no_std`, with stable numeric codes
//! (the codes are part of the detector ABI, see `docs/detector-abi.md`).

use core::fmt;

/// Everything that can go wrong when loading a model or running it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The blob is shorter than its header or tables say.
    Truncated {
        /// Bytes the blob would need.
        needed: usize,
        /// Bytes it has.
        actual: usize,
    },
    /// Not a medwasm model blob.
    BadMagic,
    /// The blob was written by a format version this runtime does not read.
    UnsupportedVersion {
        /// Major version in the blob.
        major: u16,
        /// Minor version in the blob.
        minor: u16,
    },
    /// The checksum does not match: the blob is corrupted.
    Checksum {
        /// CRC-32 stored in the header.
        stored: u32,
        /// CRC-32 of the bytes.
        computed: u32,
    },
    /// A table entry is inconsistent.
    Malformed {
        /// Which table or check.
        what: &'static str,
        /// Index of the offending entry (tensor, node …).
        index: u32,
    },
    /// The arena given is smaller than the memory plan needs.
    ArenaTooSmall {
        /// Bytes the plan needs.
        needed: usize,
        /// Bytes given.
        actual: usize,
    },
    /// The blob or the arena is not 16-byte aligned.
    Misaligned {
        /// `blob` or `arena`.
        what: &'static str,
    },
    /// A call needed `init` first.
    NotInitialized,
    /// An input or output index out of range.
    BadIndex {
        /// The index asked for.
        index: u32,
        /// How many there are.
        count: u32,
    },
    /// An input was given the wrong number of elements.
    InputLength {
        /// Input index.
        input: u32,
        /// Elements expected.
        expected: usize,
        /// Elements given.
        actual: usize,
    },
    /// An input element is NaN or infinite.
    NonFinite {
        /// Input index.
        input: u32,
        /// Element position.
        position: usize,
    },
}

impl Error {
    /// The stable numeric code of this error (never 0).
    pub fn code(&self) -> i32 {
        match self {
            Error::Truncated { .. } => 1,
            Error::BadMagic => 2,
            Error::UnsupportedVersion { .. } => 3,
            Error::Checksum { .. } => 4,
            Error::Malformed { .. } => 5,
            Error::ArenaTooSmall { .. } => 6,
            Error::Misaligned { .. } => 7,
            Error::NotInitialized => 8,
            Error::BadIndex { .. } => 9,
            Error::InputLength { .. } => 10,
            Error::NonFinite { .. } => 11,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated { needed, actual } => write!(
                f,
                "model blob truncated: needs {needed} bytes, has {actual}; re-run `cargo medwasm import`"
            ),
            Error::BadMagic => write!(
                f,
                "not a medwasm model blob (bad magic); embed the `model/model.mwm` written by `cargo medwasm import`"
            ),
            Error::UnsupportedVersion { major, minor } => write!(
                f,
                "model format {major}.{minor} is not supported by this runtime (reads {}.x); update the `medwasm` crate or re-import with a matching cargo-medwasm",
                crate::format::VERSION_MAJOR
            ),
            Error::Checksum { stored, computed } => write!(
                f,
                "model blob corrupted: checksum {computed:#010x} does not match the stored {stored:#010x}"
            ),
            Error::Malformed { what, index } => {
                write!(f, "model blob malformed: {what} (entry {index})")
            }
            Error::ArenaTooSmall { needed, actual } => write!(
                f,
                "arena too small: the memory plan needs {needed} bytes, got {actual}"
            ),
            Error::Misaligned { what } => write!(f, "{what} is not 16-byte aligned"),
            Error::NotInitialized => {
                write!(f, "detector not initialized: call `medwasm_init` first")
            }
            Error::BadIndex { index, count } => {
                write!(f, "index {index} out of range: there are {count}")
            }
            Error::InputLength {
                input,
                expected,
                actual,
            } => write!(f, "input {input} needs {expected} elements, got {actual}"),
            Error::NonFinite { input, position } => write!(
                f,
                "input {input} element {position} is NaN or infinite; clean or impute the signal before running"
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}

/// Shorthand for a malformed-blob error.
pub(crate) fn malformed(what: &'static str, index: usize) -> Error {
    Error::Malformed {
        what,
        index: index as u32,
    }
}

//! The runtime's error type: a plain enum, `no_std`, with stable numeric codes
//! (the codes are part of the detector ABI, see `docs/detector-abi.md`).

use core::fmt;

use crate::format::{DType, OpCode};

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
    /// The model needs an operator this detector was built without: its blob and
    /// the `OPS` of its generated `src/model.rs` come from different imports.
    UnlinkedOperator {
        /// The operator.
        op: OpCode,
        /// Index of the first node that needs it.
        node: u32,
    },
    /// The storage given for the prepared plan is smaller than the model needs.
    PlanTooSmall {
        /// `steps` or `operands`.
        what: &'static str,
        /// Slots the model needs.
        needed: usize,
        /// Slots given.
        actual: usize,
    },
    /// A graph input or output was asked for as f32 but holds another element type
    /// (an int8 model imported with its native int8 inputs and outputs).
    WrongDtype {
        /// An output (else an input).
        output: bool,
        /// Its index.
        index: u32,
        /// The element type it holds.
        dtype: DType,
    },
}

/// The name of every code, indexed by code (`NAMES[0]` is success): the table the
/// JS loader, the C header and the CLI's runners spell the same way (a test of the
/// CLI holds them to it).
pub const NAMES: [&str; 15] = [
    "ok",
    "Truncated",
    "BadMagic",
    "UnsupportedVersion",
    "Checksum",
    "Malformed",
    "ArenaTooSmall",
    "Misaligned",
    "NotInitialized",
    "BadIndex",
    "InputLength",
    "NonFinite",
    "UnlinkedOperator",
    "PlanTooSmall",
    "WrongDtype",
];

impl Error {
    /// The name of this error's code (`NAMES[code]`).
    pub fn name(&self) -> &'static str {
        NAMES[self.code() as usize]
    }

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
            Error::UnlinkedOperator { .. } => 12,
            Error::PlanTooSmall { .. } => 13,
            Error::WrongDtype { .. } => 14,
        }
    }
}

/// Where [`Error::write_message`] puts the pieces of a message: text only, so that
/// a detector reports errors without linking `core::fmt` (about 3 KiB of flash on a
/// microcontroller).
pub trait MessageSink {
    /// Appends `text`.
    fn put(&mut self, text: &str);
}

/// `n` in decimal. `usize` is 32 bits on the targets where size matters, so this
/// needs no 64-bit division there.
fn put_dec(sink: &mut dyn MessageSink, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut len = 0;
    loop {
        digits[digits.len() - 1 - len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let start = digits.len() - len;
    sink.put(core::str::from_utf8(&digits[start..]).unwrap_or("?"));
}

/// `n` as `0x` and eight hex digits.
fn put_hex(sink: &mut dyn MessageSink, n: u32) {
    let mut digits = *b"0x00000000";
    for k in 0..8 {
        digits[2 + k] = b"0123456789abcdef"[((n >> (28 - 4 * k)) & 0xF) as usize];
    }
    sink.put(core::str::from_utf8(&digits).unwrap_or("?"));
}

impl Error {
    /// Writes the message of this error, piece by piece: the same text as its
    /// `Display`, without `core::fmt`.
    pub fn write_message(&self, sink: &mut dyn MessageSink) {
        match *self {
            Error::Truncated { needed, actual } => {
                sink.put("model blob truncated: needs ");
                put_dec(sink, needed);
                sink.put(" bytes, has ");
                put_dec(sink, actual);
                sink.put("; re-run `cargo medwasm import`");
            }
            Error::BadMagic => sink.put(
                "not a medwasm model blob (bad magic); embed the `model/model.mwm` written by `cargo medwasm import`",
            ),
            Error::UnsupportedVersion { major, minor } => {
                sink.put("model format ");
                put_dec(sink, major.into());
                sink.put(".");
                put_dec(sink, minor.into());
                sink.put(" is not supported by this runtime (reads ");
                put_dec(sink, crate::format::VERSION_MAJOR.into());
                if major < crate::format::VERSION_MAJOR {
                    sink.put(
                        ".x); run `cargo medwasm import` again to rewrite `model/model.mwm` in the current format",
                    );
                } else {
                    sink.put(
                        ".x); update the `medwasm` crate or re-import with a matching cargo-medwasm",
                    );
                }
            }
            Error::Checksum { stored, computed } => {
                sink.put("model blob corrupted: checksum ");
                put_hex(sink, computed);
                sink.put(" does not match the stored ");
                put_hex(sink, stored);
            }
            Error::Malformed { what, index } => {
                sink.put("model blob malformed: ");
                sink.put(what);
                sink.put(" (entry ");
                put_dec(sink, index as usize);
                sink.put(")");
            }
            Error::ArenaTooSmall { needed, actual } => {
                sink.put("arena too small: the memory plan needs ");
                put_dec(sink, needed);
                sink.put(" bytes, got ");
                put_dec(sink, actual);
            }
            Error::Misaligned { what } => {
                sink.put(what);
                sink.put(" is not 16-byte aligned");
            }
            Error::NotInitialized => {
                sink.put("detector not initialized: call `medwasm_init` first")
            }
            Error::BadIndex { index, count } => {
                sink.put("index ");
                put_dec(sink, index as usize);
                sink.put(" out of range: there are ");
                put_dec(sink, count as usize);
            }
            Error::InputLength {
                input,
                expected,
                actual,
            } => {
                sink.put("input ");
                put_dec(sink, input as usize);
                sink.put(" needs ");
                put_dec(sink, expected);
                sink.put(" elements, got ");
                put_dec(sink, actual);
            }
            Error::NonFinite { input, position } => {
                sink.put("input ");
                put_dec(sink, input as usize);
                sink.put(" element ");
                put_dec(sink, position);
                sink.put(
                    " is NaN or infinite; clean or impute the signal before running",
                );
            }
            Error::UnlinkedOperator { op, node } => {
                sink.put("the model needs operator `");
                sink.put(op.name());
                sink.put("` (node ");
                put_dec(sink, node as usize);
                sink.put(
                    ") but this detector was built without it; run `cargo medwasm import` again so `src/model.rs` lists the model's operators, then rebuild the detector",
                );
            }
            Error::PlanTooSmall {
                what,
                needed,
                actual,
            } => {
                sink.put("plan storage too small: the model needs ");
                put_dec(sink, needed);
                sink.put(" ");
                sink.put(what);
                sink.put(", the storage holds ");
                put_dec(sink, actual);
                sink.put(
                    "; size it with `NODES` and `OPERANDS` of the generated `src/model.rs` (run `cargo medwasm import` again if the model changed)",
                );
            }
            Error::WrongDtype {
                output,
                index,
                dtype,
            } => {
                sink.put(if output { "output " } else { "input " });
                put_dec(sink, index as usize);
                sink.put(" holds ");
                sink.put(dtype.name());
                sink.put(
                    " elements, not f32; read it through `input_view`/`output_view`, or import with f32 inputs and outputs",
                );
            }
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Adapter<'f, 'g> {
            f: &'f mut fmt::Formatter<'g>,
            result: fmt::Result,
        }
        impl MessageSink for Adapter<'_, '_> {
            fn put(&mut self, text: &str) {
                if self.result.is_ok() {
                    self.result = self.f.write_str(text);
                }
            }
        }
        let mut adapter = Adapter { f, result: Ok(()) };
        self.write_message(&mut adapter);
        adapter.result
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

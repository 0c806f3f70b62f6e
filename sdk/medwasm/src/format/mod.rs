//! The compact model format: layout constants, and (with `std`) the writer.
//!
//! `docs/model-format.md` is the human description; this file is the truth. Every
//! number is little-endian. The reader, [`crate::Model::load`], never trusts a
//! field it has not checked.

/// First four bytes of every blob.
pub const MAGIC: [u8; 4] = *b"MWM\0";
/// Format major version: a reader refuses any other major.
pub const VERSION_MAJOR: u16 = 1;
/// Format minor version: additions a version-1 reader may ignore.
pub const VERSION_MINOR: u16 = 0;
/// Size of the fixed header.
pub const HEADER_LEN: usize = 80;
/// Size of one tensor record.
pub const TENSOR_RECORD_LEN: usize = 40;
/// Size of one node record.
pub const NODE_RECORD_LEN: usize = 20;
/// Highest tensor rank.
pub const MAX_RANK: usize = 6;
/// Alignment of every tensor in the data section and in the arena.
pub const ALIGN: usize = 16;
/// Highest number of inputs a node may have (Concat is the widest).
pub const MAX_NODE_INPUTS: usize = 16;
/// Highest number of graph inputs or outputs.
pub const MAX_GRAPH_IO: usize = 16;
/// Marks "no tensor" in an optional operand slot (a Conv without bias …).
pub const NO_TENSOR: u32 = u32::MAX;

/// Byte offsets of the header fields.
pub mod header {
    /// `MAGIC`.
    pub const MAGIC: usize = 0;
    /// u16 major version.
    pub const VERSION_MAJOR: usize = 4;
    /// u16 minor version.
    pub const VERSION_MINOR: usize = 6;
    /// u32 length of the whole blob.
    pub const TOTAL_LEN: usize = 8;
    /// u32 CRC-32 of bytes `[CRC_START, total_len)`.
    pub const CRC: usize = 12;
    /// Where the checksummed range starts.
    pub const CRC_START: usize = 16;
    /// u32 flags, must be 0 in version 1.0.
    pub const FLAGS: usize = 16;
    /// u32 peak arena bytes of the memory plan.
    pub const ARENA_BYTES: usize = 20;
    /// u32 tensor count, u32 byte offset of the tensor table.
    pub const TENSORS: usize = 24;
    /// u32 node count, u32 byte offset of the node table.
    pub const NODES: usize = 32;
    /// u16 input count, u16 output count, u32 offset of the io table (u32 tensor indices).
    pub const IO: usize = 40;
    /// u32 offset and u32 length, in u32 words, of the word pool (operands and params).
    pub const WORDS: usize = 48;
    /// u32 offset and u32 length of the string pool (UTF-8 names).
    pub const STRINGS: usize = 56;
    /// u32 offset and u32 length of the data section (constant tensors).
    pub const DATA: usize = 64;
    /// Two reserved u32, 0.
    pub const RESERVED: usize = 72;
}

/// Where a tensor lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Storage {
    /// Constant, in the blob's data section.
    Const = 0,
    /// Computed, in the arena at a planned offset.
    Arena = 1,
}

/// Element types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum DType {
    /// IEEE 754 binary32.
    F32 = 1,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::F32 => 4,
        }
    }

    /// Name used in manifests.
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
        }
    }
}

/// Operator codes stored in node records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum OpCode {
    /// `Y[M,N] = A[M,K] · B[K,N] + bias[N]`, then an activation.
    Gemm = 1,
    /// 1-D/2-D convolution (NCHW), bias, then an activation.
    Conv = 2,
    /// Elementwise Add/Sub/Mul/Div with broadcasting, then an activation.
    Binary = 3,
    /// Elementwise activation.
    Activation = 4,
    /// Softmax over a contiguous range of axes.
    Softmax = 5,
    /// Max pooling.
    MaxPool = 6,
    /// Average pooling.
    AveragePool = 7,
    /// Mean over a set of axes.
    ReduceMean = 8,
    /// Axis permutation.
    Transpose = 9,
    /// Concatenation along one axis.
    Concat = 10,
    /// Constant / reflect / edge padding.
    Pad = 11,
    /// Copy with a new shape (Reshape, Flatten, Squeeze, Unsqueeze).
    Copy = 12,
}

impl OpCode {
    /// Decodes a stored op code.
    pub fn from_u16(v: u16) -> Option<OpCode> {
        Some(match v {
            1 => OpCode::Gemm,
            2 => OpCode::Conv,
            3 => OpCode::Binary,
            4 => OpCode::Activation,
            5 => OpCode::Softmax,
            6 => OpCode::MaxPool,
            7 => OpCode::AveragePool,
            8 => OpCode::ReduceMean,
            9 => OpCode::Transpose,
            10 => OpCode::Concat,
            11 => OpCode::Pad,
            12 => OpCode::Copy,
            _ => return None,
        })
    }

    /// Name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            OpCode::Gemm => "Gemm",
            OpCode::Conv => "Conv",
            OpCode::Binary => "Binary",
            OpCode::Activation => "Activation",
            OpCode::Softmax => "Softmax",
            OpCode::MaxPool => "MaxPool",
            OpCode::AveragePool => "AveragePool",
            OpCode::ReduceMean => "ReduceMean",
            OpCode::Transpose => "Transpose",
            OpCode::Concat => "Concat",
            OpCode::Pad => "Pad",
            OpCode::Copy => "Copy",
        }
    }
}

/// Reads a little-endian u32 at `at`, if in bounds.
pub(crate) fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Reads a little-endian u16 at `at`, if in bounds.
pub(crate) fn read_u16(bytes: &[u8], at: usize) -> Option<u16> {
    let b = bytes.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes([b[0], b[1]]))
}

#[cfg(feature = "std")]
pub use writer::{BlobWriter, NodeSpec, TensorSpec};

#[cfg(feature = "std")]
mod writer;

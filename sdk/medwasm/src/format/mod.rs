//! The compact model format: layout constants, and (with `std`) the writer.
//!
//! `docs/model-format.md` is the human description; this file is the truth. Every
//! number is little-endian. The reader, [`crate::Model::load`], never trusts a
//! field it has not checked.

/// First four bytes of every blob.
pub const MAGIC: [u8; 4] = *b"MWM\0";
/// Format major version: a reader refuses any other major. Version 2 added element
/// types besides f32, per-tensor quantization and the int8 operators; a version-1
/// reader would misread its 48-byte tensor records.
pub const VERSION_MAJOR: u16 = 2;
/// Format minor version: additions a version-2 reader may ignore.
pub const VERSION_MINOR: u16 = 0;
/// Size of the fixed header.
pub const HEADER_LEN: usize = 80;
/// Size of one tensor record.
pub const TENSOR_RECORD_LEN: usize = 48;
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

/// Every window parameter (kernel extent, stride, dilation, pad) is below this.
/// The loader refuses larger ones so that window index arithmetic stays far from
/// overflow on 32-bit targets and every product of two of them fits in a `u64`;
/// the converters refuse them with the model's own names first.
pub const MAX_WINDOW_PARAM: usize = 1 << 24;

/// The most work one node may do per element of its tensors: the loader refuses a
/// node whose kernel would run more inner-loop iterations ([`crate::ops::work`]:
/// multiply-accumulates, pooling taps, elements moved) than this many times the
/// elements of its inputs, output and scratch together ([`crate::ops::tensor_elements`]).
///
/// Without it, a blob of a few hundred bytes can stall a device: an average pool
/// whose window (and padding) is far larger than its one-element input and output
/// passes every shape check and then sums 2^30 padding taps. With it, a node's work
/// is bounded by memory the blob or the host really provides. Real layers sit far
/// below: the reference models need at most a few hundred (`docs/security.md`
/// lists the figures); a Gemm reaches 4096 only with every dimension near 12 000.
pub const MAX_WORK_PER_ELEMENT: u64 = 1 << 12;

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
    /// u32 flags, must be 0 in version 2.0.
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

/// Byte offsets of the fields of a tensor record.
pub mod tensor {
    /// u8 [`super::Storage`].
    pub const STORAGE: usize = 0;
    /// u8 [`super::DType`].
    pub const DTYPE: usize = 1;
    /// u8 rank, 0..=6.
    pub const RANK: usize = 2;
    /// u8 flags: [`super::QUANTIZED`], other bits 0.
    pub const FLAGS: usize = 3;
    /// `[u32; 6]` dims; 0 past the rank.
    pub const DIMS: usize = 4;
    /// u32 byte offset in the data section or the arena (16-aligned).
    pub const OFFSET: usize = 28;
    /// u32 name offset, u32 name length in the string pool.
    pub const NAME: usize = 32;
    /// f32 scale: finite and > 0 when quantized, 0 otherwise.
    pub const SCALE: usize = 40;
    /// i32 zero point: in the element type's range when quantized, 0 otherwise.
    pub const ZERO_POINT: usize = 44;
}

/// Tensor record flag: the scale and zero point are meaningful.
pub const QUANTIZED: u8 = 1;

/// Per-tensor affine quantization: `real = scale · (q − zero_point)`.
///
/// Only per-tensor parameters live in a tensor record (activations, graph inputs
/// and outputs, per-tensor weights); per-channel ones reach the runtime folded into
/// kernel-ready arrays (multipliers and shifts), never as scales.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quant {
    /// Step between two quantized values (finite, > 0).
    pub scale: f32,
    /// Quantized value of real 0, in the element type's range.
    pub zero_point: i32,
}

impl Quant {
    /// True when `self` and `other` have the same scale bits and zero point: the
    /// same real value for every quantized one.
    pub fn same(&self, other: &Quant) -> bool {
        self.scale.to_bits() == other.scale.to_bits() && self.zero_point == other.zero_point
    }
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
    /// Signed 8-bit integer (quantized activations and weights).
    I8 = 2,
    /// Signed 32-bit integer (biases, kernel-ready multipliers and shifts).
    I32 = 3,
    /// IEEE 754 binary64 (constants only: the fully-connected "litert-ref" scales).
    F64 = 4,
}

impl DType {
    /// Decodes a stored element type.
    pub fn from_u8(v: u8) -> Option<DType> {
        Some(match v {
            1 => DType::F32,
            2 => DType::I8,
            3 => DType::I32,
            4 => DType::F64,
            _ => return None,
        })
    }

    /// Bytes per element (also its alignment; tensor offsets are 16-aligned).
    pub fn size(self) -> usize {
        match self {
            DType::I8 => 1,
            DType::F32 | DType::I32 => 4,
            DType::F64 => 8,
        }
    }

    /// Name used in manifests.
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::I8 => "i8",
            DType::I32 => "i32",
            DType::F64 => "f64",
        }
    }

    /// The range a quantized tensor's zero point must lie in (`None`: the type
    /// cannot be quantized).
    pub fn zero_point_range(self) -> Option<(i32, i32)> {
        match self {
            DType::I8 => Some((i8::MIN as i32, i8::MAX as i32)),
            DType::I32 => Some((i32::MIN, i32::MAX)),
            DType::F32 | DType::F64 => None,
        }
    }
}

/// A Rust type that is the element of a tensor: what typed views and the
/// writer's typed constants are made of.
pub trait Element: Copy + crate::cast::Plain {
    /// The stored element type.
    const DTYPE: DType;
    /// Little-endian bytes of `self`, into `out` (`DTYPE.size()` long).
    fn write_le(self, out: &mut [u8]);
}

impl Element for f32 {
    const DTYPE: DType = DType::F32;
    fn write_le(self, out: &mut [u8]) {
        out.copy_from_slice(&self.to_le_bytes());
    }
}

impl Element for i8 {
    const DTYPE: DType = DType::I8;
    fn write_le(self, out: &mut [u8]) {
        out.copy_from_slice(&self.to_le_bytes());
    }
}

impl Element for i32 {
    const DTYPE: DType = DType::I32;
    fn write_le(self, out: &mut [u8]) {
        out.copy_from_slice(&self.to_le_bytes());
    }
}

impl Element for f64 {
    const DTYPE: DType = DType::F64;
    fn write_le(self, out: &mut [u8]) {
        out.copy_from_slice(&self.to_le_bytes());
    }
}

/// Operator codes stored in node records. 1..=12 run f32 (Copy, Transpose, Concat
/// and Pad any element type); 13.. are the int8 and hybrid operators of TFLite's
/// reference kernels (`sdk/medwasm/src/ops` documents each one's operands and
/// parameter words).
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
    /// Axis permutation (any element type).
    Transpose = 9,
    /// Concatenation along one axis (any element type).
    Concat = 10,
    /// Constant / reflect / edge padding (any element type).
    Pad = 11,
    /// Copy with a new shape (Reshape, Flatten, Squeeze, Unsqueeze; any element type).
    Copy = 12,
    /// int8 convolution, NHWC input, OHWI weights, per-channel requantization.
    QConv = 13,
    /// int8 depthwise convolution, NHWC input, 1HWO weights, depth multiplier.
    QDepthwiseConv = 14,
    /// int8 fully connected, `[units, depth]` weights; fixed-point or f64 requantization.
    QFullyConnected = 15,
    /// int8 average pooling (NHWC), padding excluded from the count.
    QAveragePool = 16,
    /// int8 max pooling (NHWC).
    QMaxPool = 17,
    /// int8 Add or Sub with broadcasting.
    QAdd = 18,
    /// int8 Mul with broadcasting.
    QMul = 19,
    /// int8 softmax over the last axis (gemmlowp fixed point).
    QSoftmax = 20,
    /// int8 lookup table (LOGISTIC, TANH).
    QLut = 21,
    /// int8 hard swish.
    QHardSwish = 22,
    /// int8 leaky ReLU.
    QLeakyRelu = 23,
    /// int8 → int8 requantization with a clamp (QUANTIZE, RELU, RELU6, RELU_N1_TO_1).
    QRequantize = 24,
    /// f32 → int8.
    Quantize = 25,
    /// int8 → f32.
    Dequantize = 26,
    /// int8 mean over a set of axes.
    QMean = 27,
    /// f32 convolution with int8 weights (NHWC/OHWI), input quantized per batch.
    HybridConv = 28,
    /// f32 fully connected with int8 `[units, depth]` weights, input quantized per row.
    HybridFullyConnected = 29,
    /// f32 depthwise convolution with int8 1HWO weights and per-channel scales, input
    /// quantized asymmetrically per batch.
    HybridDepthwiseConv = 30,
}

impl OpCode {
    /// Every operator, in op-code order.
    pub const ALL: [OpCode; 30] = [
        OpCode::Gemm,
        OpCode::Conv,
        OpCode::Binary,
        OpCode::Activation,
        OpCode::Softmax,
        OpCode::MaxPool,
        OpCode::AveragePool,
        OpCode::ReduceMean,
        OpCode::Transpose,
        OpCode::Concat,
        OpCode::Pad,
        OpCode::Copy,
        OpCode::QConv,
        OpCode::QDepthwiseConv,
        OpCode::QFullyConnected,
        OpCode::QAveragePool,
        OpCode::QMaxPool,
        OpCode::QAdd,
        OpCode::QMul,
        OpCode::QSoftmax,
        OpCode::QLut,
        OpCode::QHardSwish,
        OpCode::QLeakyRelu,
        OpCode::QRequantize,
        OpCode::Quantize,
        OpCode::Dequantize,
        OpCode::QMean,
        OpCode::HybridConv,
        OpCode::HybridFullyConnected,
        OpCode::HybridDepthwiseConv,
    ];

    /// Decodes a stored op code.
    pub fn from_u16(v: u16) -> Option<OpCode> {
        OpCode::ALL.get(usize::from(v).checked_sub(1)?).copied()
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
            OpCode::QConv => "QConv",
            OpCode::QDepthwiseConv => "QDepthwiseConv",
            OpCode::QFullyConnected => "QFullyConnected",
            OpCode::QAveragePool => "QAveragePool",
            OpCode::QMaxPool => "QMaxPool",
            OpCode::QAdd => "QAdd",
            OpCode::QMul => "QMul",
            OpCode::QSoftmax => "QSoftmax",
            OpCode::QLut => "QLut",
            OpCode::QHardSwish => "QHardSwish",
            OpCode::QLeakyRelu => "QLeakyRelu",
            OpCode::QRequantize => "QRequantize",
            OpCode::Quantize => "Quantize",
            OpCode::Dequantize => "Dequantize",
            OpCode::QMean => "QMean",
            OpCode::HybridConv => "HybridConv",
            OpCode::HybridFullyConnected => "HybridFullyConnected",
            OpCode::HybridDepthwiseConv => "HybridDepthwiseConv",
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
pub use writer::{BlobWriter, NodeSpec, TensorSpec, le_bytes};

#[cfg(feature = "std")]
mod writer;

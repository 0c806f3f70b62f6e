//! The back end: which runtime operator runs each IR node, with its parameter words
//! and the kernel-ready constants it reads, or every reason it cannot run.
//!
//! Types drive kernels: a node whose tensors are all f32 runs the f32 kernels
//! ([`float`]); one with int8 activations runs TFLite's int8 reference kernels
//! ([`int8`]), with everything TFLite computes in `Prepare` computed here
//! ([`crate::convert::quant`]) and stored as constants (multipliers, shifts, lookup
//! tables, f64 scales) or parameter words; f32 activations with int8 weights run
//! the hybrid kernels ([`hybrid`]); the data movers take any element type
//! ([`data`]). The check collects the problems of every node, the planner sizes the
//! scratch buffers the kernels ask for, and the writer serializes them: one
//! decision, made once, for all three.

use medwasm::format::{DType as BlobDType, Element, OpCode, Quant as BlobQuant};

use super::ProblemKind;
use super::ir::{DType, Graph, Node, Op, Quant, TensorId};

mod data;
mod float;
mod hybrid;
mod int8;

/// How a QFullyConnected requantizes its accumulators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FcRequant {
    /// `round(acc · s_in · s_w / s_out)` in f64, as LiteRT's BUILTIN_REF does today:
    /// bit-exact with `expected_tflite_ref`.
    #[default]
    LiteRtRef,
    /// The fixed-point multiplier and shift of TFLite Micro and CMSIS-NN (and older
    /// LiteRT): bit-exact with those runtimes, up to a step apart from LiteRT now.
    Tflm,
}

impl FcRequant {
    /// The name on the command line and in the manifest.
    pub fn name(self) -> &'static str {
        match self {
            FcRequant::LiteRtRef => "litert-ref",
            FcRequant::Tflm => "tflm",
        }
    }

    /// Parses [`FcRequant::name`].
    pub fn from_name(s: &str) -> Option<FcRequant> {
        match s {
            "litert-ref" => Some(FcRequant::LiteRtRef),
            "tflm" => Some(FcRequant::Tflm),
            _ => None,
        }
    }
}

/// What the back end's choices depend on besides the graph.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// The fully connected requantization.
    pub fc_requant: FcRequant,
}

/// One node as the runtime runs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Kernel {
    /// The runtime operator.
    pub op: OpCode,
    /// Its operands, in the order `medwasm::ops` documents.
    pub inputs: Vec<Operand>,
    /// Its parameter words.
    pub params: Vec<u32>,
    /// The scratch buffer it needs, if any.
    pub scratch: Option<Scratch>,
}

/// An operand of a [`Kernel`].
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// An IR tensor.
    Tensor(TensorId),
    /// An absent optional input.
    Absent,
    /// A constant made for this kernel: re-laid weights, multipliers, shifts,
    /// lookup tables, scales.
    Const(Const),
}

/// A kernel-ready constant, in the blob's own terms.
#[derive(Debug, Clone, PartialEq)]
pub struct Const {
    /// Element type.
    pub dtype: BlobDType,
    /// Shape.
    pub dims: Vec<usize>,
    /// Little-endian elements.
    pub bytes: Vec<u8>,
    /// Per-tensor quantization for the record (int8 weights a kernel reads it from).
    pub quant: Option<BlobQuant>,
}

impl Const {
    /// A constant of `values` with shape `dims`.
    pub fn of<T: Element>(dims: Vec<usize>, values: &[T]) -> Const {
        Const {
            dtype: T::DTYPE,
            dims,
            bytes: medwasm::format::le_bytes(values),
            quant: None,
        }
    }

    /// A 1-D constant.
    pub fn vector<T: Element>(values: &[T]) -> Operand {
        Operand::Const(Const::of(vec![values.len()], values))
    }
}

/// A scratch buffer: element type and element count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scratch {
    /// Element type.
    pub dtype: BlobDType,
    /// Elements.
    pub elems: usize,
}

impl Scratch {
    /// Bytes it takes.
    pub fn bytes(&self) -> Option<usize> {
        self.elems.checked_mul(self.dtype.size())
    }
}

/// Something that keeps a node from running, as the check reports it.
pub type Issue = (ProblemKind, String);

/// The result of choosing a kernel: the kernel, or every issue found.
pub type Select = Result<Kernel, Vec<Issue>>;

/// One issue of `kind`, as a failed [`Select`].
fn fail<T>(kind: ProblemKind, message: impl Into<String>) -> Result<T, Vec<Issue>> {
    Err(vec![(kind, message.into())])
}

/// A failure of the converter itself (an earlier step should have lowered or
/// refused this), reported as a problem that says so.
fn bug<T>(n: &Node, what: &str) -> Result<T, Vec<Issue>> {
    fail(
        ProblemKind::Model,
        format!(
            "{what}; this is a bug in cargo-medwasm (node `{}`), please report it with the model attached",
            n.name
        ),
    )
}

/// Chooses the kernel of node `n` of `g`.
pub fn select(g: &Graph, n: &Node, opts: &Options) -> Select {
    match &n.op {
        Op::Copy | Op::Transpose { .. } | Op::Concat { .. } | Op::Pad { .. } => data::select(g, n),
        Op::Quantize => int8::quantize(g, n),
        Op::Dequantize => int8::dequantize(g, n),
        _ if all_f32(g, n) => float::select(g, n),
        _ => match first_runtime_input(g, n).map(|t| g.tensors[t].dtype) {
            Some(DType::I8) => int8::select(g, n, opts),
            Some(DType::F32) if has_int8_weights(g, n) => hybrid::select(g, n),
            _ => Err(vec![(ProblemKind::Dtype, no_kernel(g, n))]),
        },
    }
}

/// Every input and the output are unquantized f32.
fn all_f32(g: &Graph, n: &Node) -> bool {
    n.inputs
        .iter()
        .flatten()
        .chain([&n.output])
        .all(|&t| g.tensors[t].dtype == DType::F32 && g.tensors[t].quant.is_none())
}

/// The first input computed at run time (the activation of a Conv, Gemm …).
fn first_runtime_input(g: &Graph, n: &Node) -> Option<TensorId> {
    n.inputs
        .iter()
        .flatten()
        .copied()
        .find(|&t| !g.tensors[t].is_const())
}

/// A Conv or Gemm with int8 constant weights (input 1): a hybrid candidate.
fn has_int8_weights(g: &Graph, n: &Node) -> bool {
    matches!(n.op, Op::Conv { .. } | Op::Gemm { .. })
        && n.inputs
            .get(1)
            .copied()
            .flatten()
            .is_some_and(|w| g.tensors[w].is_const() && g.tensors[w].dtype == DType::I8)
}

/// The message for a combination of element types no kernel computes.
fn no_kernel(g: &Graph, n: &Node) -> String {
    let mut seen: Vec<String> = vec![];
    for &t in n.inputs.iter().flatten().chain([&n.output]) {
        let tensor = &g.tensors[t];
        let what = if tensor.is_const() {
            "constant"
        } else {
            "tensor"
        };
        let quant = match &tensor.quant {
            Some(q) if q.axis.is_some() => ", quantized per channel",
            Some(_) => ", quantized per tensor",
            None => "",
        };
        let d = format!("{what} of element type {}{quant}", tensor.dtype.name());
        if !seen.contains(&d) {
            seen.push(d);
        }
    }
    format!(
        "no kernel computes {} on these element types ({}): the runtime's kernels take f32 only, int8 with per-tensor quantization, or f32 activations with int8 weights",
        n.op.label(),
        seen.join("; ")
    )
}

/// The per-tensor quantization of an int8 tensor as the blob records it: `None` for
/// other element types and for per-axis parameters (which never reach the runtime
/// as scales).
pub fn record_quant(g: &Graph, t: TensorId) -> Option<BlobQuant> {
    let tensor = &g.tensors[t];
    per_tensor(tensor.quant.as_ref())
        .filter(|_| tensor.dtype == DType::I8)
        .and_then(|(scale, zp)| {
            Some(BlobQuant {
                scale,
                zero_point: i32::try_from(zp).ok()?,
            })
        })
}

/// `(scale, zero_point)` of per-tensor parameters.
fn per_tensor(q: Option<&Quant>) -> Option<(f32, i64)> {
    match q {
        Some(Quant {
            scale,
            zero_point,
            axis: None,
        }) if scale.len() == 1 && zero_point.len() == 1 => Some((scale[0], zero_point[0])),
        _ => None,
    }
}

/// The parameter words of a window: `kh kw sh sw dh dw pt pl pb pr`.
fn window_words(n: &Node, win: &super::ir::Window) -> Result<Vec<u32>, Vec<Issue>> {
    [
        win.kernel[0],
        win.kernel[1],
        win.strides[0],
        win.strides[1],
        win.dilations[0],
        win.dilations[1],
        win.pads[0],
        win.pads[1],
        win.pads[2],
        win.pads[3],
    ]
    .into_iter()
    .map(|v| word(n, v))
    .collect()
}

/// `v` as a parameter word.
fn word(n: &Node, v: usize) -> Result<u32, Vec<Issue>> {
    u32::try_from(v).or_else(|_| {
        fail(
            ProblemKind::Limit,
            format!(
                "parameter {v} of `{}` does not fit the model format's 32-bit words",
                n.name
            ),
        )
    })
}

#[cfg(test)]
mod tests;

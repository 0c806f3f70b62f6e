//! Per-operator parameter layouts, shape checks and execution.
//!
//! [`prepare`] decodes one node and checks every shape relation, element type,
//! quantization parameter and accumulator bound its kernel relies on, and [`Kind`]
//! is what it decodes: everything the kernel needs besides the operand slices. The
//! loader prepares every node to validate a blob, and [`crate::Runtime::new`]
//! prepares them once more to keep each [`Kind`] in its plan; running a step
//! ([`execute`]) decodes nothing, so a kernel only ever sees operands it can index
//! safely, as the element type it computes in ([`View`]).
//!
//! Parameter words per op (all u32; f32 stored as bits, signed values as two's
//! complement; "act" is the triple `[kind, alpha, beta]` of [`Act`]; "win" is the
//! ten words `kh kw sh sw dh dw pt pl pb pr`; "range" is the int8 activation range
//! `act_min act_max`, two i32 in `-128..=127`). `?` marks an optional input
//! (`NO_TENSOR` when absent); "q" an int8 tensor with per-tensor quantization,
//! whose scale and zero point the kernel reads from its record.
//!
//! f32 operators (NCHW):
//!
//! | op | inputs | params |
//! |---|---|---|
//! | Gemm | A `[.., K]`, B const `[K, N]`, bias const `[N]`? | act |
//! | Conv | X `[N,C,(H,)W]`, W const `[M,C/g,(kh,)kw]`, bias const `[M]`? | win group act |
//! | Binary | A, B (broadcast) | kind act |
//! | Activation | X | act |
//! | Softmax | X | axis_start axis_end |
//! | MaxPool, AveragePool | X `[N,C,(H,)W]` | win count_include_pad |
//! | ReduceMean | X | axes bitmask |
//!
//! Any element type (input and output of the same type and quantization):
//!
//! | op | inputs | params |
//! |---|---|---|
//! | Transpose | X | perm (one word per axis) |
//! | Concat | X1..Xn | axis |
//! | Pad | X | mode value begin\[rank\] end\[rank\] (mode 0 constant, 1 reflect, 2 edge; an integer tensor pads with its zero point and `value` must be 0) |
//! | Copy | X | — |
//!
//! int8 operators (NHWC; TFLite's reference kernels, bit for bit). The per-channel
//! `mult` (i32, each 0 or in `[2^30, 2^31 − 1]`) and `shift` (i32, `-31..=30`, left
//! when positive) are constants of one value per output channel or a single value:
//!
//! | op | inputs → output | params |
//! |---|---|---|
//! | QConv | X q `[N,H,W,C]`, W i8 const `[M,kh,kw,C]`, bias i32 `[M]`?, mult, shift → q `[N,OH,OW,M]` | win range |
//! | QDepthwiseConv | X q `[N,H,W,C]`, W i8 const `[1,kh,kw,C·D]`, bias i32?, mult, shift → q `[N,OH,OW,C·D]` | win range |
//! | QFullyConnected | X q `[.., K]`, W i8 const `[N, K]`, bias i32 `[N]`?, then mult, shift (mode 0) or scale f64 `[N]` (mode 1) → q `[.., N]` | mode range |
//! | QAveragePool, QMaxPool | X q `[N,H,W,C]` → q `[N,OH,OW,C]` (same quantization) | win range |
//! | QAdd | A q, B q (broadcast) → q | sub left_shift m1 s1 m2 s2 mo so range |
//! | QMul | A q, B q (broadcast) → q | m shift range |
//! | QSoftmax | X q → q (scale 1/256, zero point −128), last axis ≤ 511 | m left_shift diff_min |
//! | QLut | X q, table i8 const `[256]` → q | — |
//! | QHardSwish | X q → q | m_output e_output m_reluish e_reluish (16-bit multipliers) |
//! | QLeakyRelu | X q → q | m_identity s_identity m_alpha s_alpha |
//! | QRequantize | X q → q | m shift range |
//! | Quantize | X f32 → q | — |
//! | Dequantize | X q → f32 | — |
//! | QMean | X q → q | axes_bitmask m shift |
//! | HybridConv | X f32 `[N,H,W,C]`, W i8 const `[M,kh,kw,C]` (per-tensor scale, zero point 0), bias f32 `[M]`?, then optionally scales f32 const `[M]` (W unquantized) → f32; scratch i8 `[H·W·C]` | win act |
//! | HybridFullyConnected | X f32 `[.., K]`, W i8 const `[N, K]` (per-tensor scale), bias f32 `[N]`?, then optionally scales f32 const `[N]` (W unquantized) → f32; scratch i8 `[K]` | act \[flags\] |
//! | HybridDepthwiseConv | X f32 `[N,H,W,C]`, W i8 const `[1,kh,kw,C·D]` (unquantized), bias f32 `[C·D]`?, scales f32 const `[C·D]` → f32; scratch i8 `[H·W·C]` | win act |
//!
//! The hybrid operators quantize their input at run time, per batch (conv) or row
//! (FC), as LiteRT's reference kernels do: symmetrically for a per-tensor
//! HybridConv (`EvalHybrid`) and a HybridFullyConnected without flags or with
//! flags 0; asymmetrically for a HybridConv with per-channel scales (which must not
//! all be equal: LiteRT then runs the per-tensor form), every
//! HybridDepthwiseConv, and a HybridFullyConnected with flags 1
//! (`asymmetric_quantize_inputs`, the only form per-unit scales may take).
//!
//! A QFullyConnected's mode 0 requantizes in fixed point (TFLite Micro, CMSIS-NN);
//! mode 1 with `round(acc · scale)` in f64 (LiteRT's BUILTIN_REF today). Its
//! weights may carry a per-tensor zero point when one multiplier serves every unit.

mod check;
mod data;
mod float;
mod int8;
mod window;

pub use float::{CONV_PARAMS, POOL_PARAMS};
pub use int8::{HYBRID_CONV_PARAMS, MAX_MEAN_COUNT, MAX_POOL_TAPS, QCONV_PARAMS, QPOOL_PARAMS};
pub use window::WINDOW_PARAMS;

use crate::error::{Error, malformed};
use crate::format::{MAX_NODE_INPUTS, MAX_RANK, OpCode, Storage};
use crate::kernels::act::Act;
use crate::kernels::binary::BinOp;
use crate::kernels::conv::Geometry;
use crate::kernels::int8::act::{HardSwishParams, LeakyParams, RequantParams};
use crate::kernels::int8::binary::{AddParams, MulParams};
use crate::kernels::int8::mean::MeanParams;
use crate::kernels::int8::requant::Requant;
use crate::kernels::int8::softmax::SoftmaxParams;
use crate::kernels::misc::Border;
use crate::kernels::pool::AvgCount;
use crate::model::{Model, NodeRecord, TensorRecord, overlaps};
use crate::shape::Dims;
use crate::view::{View, ViewMut};
use check::{Cx, need};

/// The bit of `op` in an operator set ([`OpSet::OPS`]).
pub const fn op_bit(op: OpCode) -> u64 {
    1 << op as u64
}

/// Every operator the runtime implements.
pub const ALL_OPS: u64 = {
    let mut bits = 0;
    let mut k = 0;
    while k < OpCode::ALL.len() {
        bits |= op_bit(OpCode::ALL[k]);
        k += 1;
    }
    bits
};

/// The operators a build links, as a compile-time constant.
///
/// Loading and running are generic over it, so a detector whose model uses three
/// operators links three kernels: the others' arms are removed at compile time
/// (on a microcontroller that is most of the runtime's flash; an f32 model links
/// no int8 kernel and an int8 one no f32 GEMM). A blob with an operator outside
/// the set is refused by the loader, never run.
pub trait OpSet {
    /// Bits from [`op_bit`].
    const OPS: u64;
}

/// Every operator: what [`Model::load`] and [`crate::Runtime::run`] use.
#[derive(Debug, Clone, Copy)]
pub struct AllOps;

impl OpSet for AllOps {
    const OPS: u64 = ALL_OPS;
}

/// A decoded, checked node, with its operands' full records (the plan keeps only
/// where each operand lives; see [`crate::Step`]).
#[derive(Debug, Clone, Copy)]
pub struct Prepared {
    /// Operator-specific parameters.
    pub kind: Kind,
    /// Input records (`None` for absent optional inputs and past `n_inputs`).
    pub inputs: [Option<TensorRecord>; MAX_NODE_INPUTS],
    /// Number of input slots.
    pub n_inputs: usize,
    /// The output.
    pub output: TensorRecord,
    /// Scratch, when the kernel needs it.
    pub scratch: Option<TensorRecord>,
}

/// Decoded parameters (fields named as in the tables in the module docs), with the
/// shapes the kernel reads: what a step of the plan runs.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// Gemm with `m` rows, `k` depth, `n` columns.
    Gemm {
        m: usize,
        k: usize,
        n: usize,
        act: Act,
    },
    /// Convolution.
    Conv { g: Geometry, act: Act },
    /// Broadcasting arithmetic: `y` is the broadcast of `a` and `b`.
    Binary {
        op: BinOp,
        act: Act,
        a: Dims,
        b: Dims,
        y: Dims,
    },
    /// Activation alone.
    Activation(Act),
    /// Softmax as (outer, n, inner).
    Softmax {
        outer: usize,
        n: usize,
        inner: usize,
    },
    /// Pooling.
    Pool {
        g: Geometry,
        pb: usize,
        pr: usize,
        max: bool,
        count: AvgCount,
    },
    /// Mean of `x` over the axes in `mask`.
    ReduceMean { x: Dims, mask: u32 },
    /// Permutation of `x` into `y`.
    Transpose {
        x: Dims,
        y: Dims,
        perm: [usize; MAX_RANK],
    },
    /// Concatenation as `outer` rows of `row` elements; each input fills its share
    /// of every row in turn.
    Concat { outer: usize, row: usize },
    /// Padding of `x` into `y`; a constant border holds the element's bits (an f32,
    /// or an integer zero point).
    Pad {
        x: Dims,
        y: Dims,
        border: Border<u32>,
        begin: [usize; MAX_RANK],
    },
    /// Plain copy.
    Copy,
    /// int8 convolution (NHWC, OHWI).
    QConv { g: Geometry, q: Requant },
    /// int8 depthwise convolution (NHWC, 1HWO; `g.group == g.c`).
    QDepthwiseConv { g: Geometry, q: Requant },
    /// int8 fully connected.
    QFullyConnected {
        batches: usize,
        depth: usize,
        units: usize,
        q: Requant,
        zp_w: i32,
        litert_ref: bool,
    },
    /// int8 pooling (NHWC).
    QPool {
        g: Geometry,
        max: bool,
        act_min: i32,
        act_max: i32,
    },
    /// int8 ADD/SUB of `a` and `b` (the output is their broadcast).
    QAdd { a: Dims, b: Dims, p: AddParams },
    /// int8 MUL of `a` and `b`.
    QMul { a: Dims, b: Dims, p: MulParams },
    /// int8 softmax of `rows` rows of `depth`.
    QSoftmax {
        rows: usize,
        depth: usize,
        p: SoftmaxParams,
    },
    /// int8 lookup table.
    QLut,
    /// int8 hard swish.
    QHardSwish(HardSwishParams),
    /// int8 leaky ReLU.
    QLeakyRelu(LeakyParams),
    /// int8 requantization with a clamp.
    QRequantize(RequantParams),
    /// f32 → int8.
    Quantize { scale: f32, zero_point: i32 },
    /// int8 → f32.
    Dequantize { scale: f32, zero_point: i32 },
    /// int8 mean of `x` over the axes in `mask`.
    QMean { x: Dims, mask: u32, p: MeanParams },
    /// Hybrid convolution (NHWC, OHWI int8 weights): of scale `w_scale` with a
    /// symmetrically quantized input, or, `per_channel`, of the scales in input 3
    /// with an asymmetrically quantized input.
    HybridConv {
        g: Geometry,
        w_scale: f32,
        per_channel: bool,
        act: Act,
    },
    /// Hybrid depthwise convolution (NHWC, 1HWO int8 weights, the scales in input
    /// 3, an asymmetrically quantized input).
    HybridDepthwiseConv { g: Geometry, act: Act },
    /// Hybrid fully connected: weights of scale `w_scale`, or, `per_unit`, of the
    /// scales in input 3; the input quantized `asymmetric`ally or symmetrically.
    HybridFullyConnected {
        batches: usize,
        depth: usize,
        units: usize,
        w_scale: f32,
        per_unit: bool,
        asymmetric: bool,
        act: Act,
    },
}

impl Kind {
    /// The operator this runs.
    pub fn op(&self) -> OpCode {
        match self {
            Kind::Gemm { .. } => OpCode::Gemm,
            Kind::Conv { .. } => OpCode::Conv,
            Kind::Binary { .. } => OpCode::Binary,
            Kind::Activation(_) => OpCode::Activation,
            Kind::Softmax { .. } => OpCode::Softmax,
            Kind::Pool { max: true, .. } => OpCode::MaxPool,
            Kind::Pool { max: false, .. } => OpCode::AveragePool,
            Kind::ReduceMean { .. } => OpCode::ReduceMean,
            Kind::Transpose { .. } => OpCode::Transpose,
            Kind::Concat { .. } => OpCode::Concat,
            Kind::Pad { .. } => OpCode::Pad,
            Kind::Copy => OpCode::Copy,
            Kind::QConv { .. } => OpCode::QConv,
            Kind::QDepthwiseConv { .. } => OpCode::QDepthwiseConv,
            Kind::QFullyConnected { .. } => OpCode::QFullyConnected,
            Kind::QPool { max: true, .. } => OpCode::QMaxPool,
            Kind::QPool { max: false, .. } => OpCode::QAveragePool,
            Kind::QAdd { .. } => OpCode::QAdd,
            Kind::QMul { .. } => OpCode::QMul,
            Kind::QSoftmax { .. } => OpCode::QSoftmax,
            Kind::QLut => OpCode::QLut,
            Kind::QHardSwish(_) => OpCode::QHardSwish,
            Kind::QLeakyRelu(_) => OpCode::QLeakyRelu,
            Kind::QRequantize(_) => OpCode::QRequantize,
            Kind::Quantize { .. } => OpCode::Quantize,
            Kind::Dequantize { .. } => OpCode::Dequantize,
            Kind::QMean { .. } => OpCode::QMean,
            Kind::HybridConv { .. } => OpCode::HybridConv,
            Kind::HybridDepthwiseConv { .. } => OpCode::HybridDepthwiseConv,
            Kind::HybridFullyConnected { .. } => OpCode::HybridFullyConnected,
        }
    }
}

/// Decodes node `i` and checks its shapes.
pub fn prepare(model: &Model<'_>, i: usize, node: &NodeRecord) -> Result<Prepared, Error> {
    prepare_in::<AllOps>(model, i, node)
}

/// [`prepare`] for a build that links the operators of `S` only.
pub fn prepare_in<S: OpSet>(
    model: &Model<'_>,
    i: usize,
    node: &NodeRecord,
) -> Result<Prepared, Error> {
    let linked = |op: OpCode| S::OPS & op_bit(op) != 0;
    // A known operator this build leaves out is not a corrupt blob: it has its own
    // error code, whose message says to import again and rebuild.
    let unlinked = Error::UnlinkedOperator {
        op: node.op,
        node: i as u32,
    };
    if !linked(node.op) {
        return Err(unlinked);
    }
    let mut inputs = [None; MAX_NODE_INPUTS];
    for (k, slot) in inputs.iter_mut().enumerate().take(node.n_inputs) {
        *slot = match model.node_input(node, k)? {
            Some(t) => Some(model.tensor(t)?),
            None => None,
        };
    }
    let output = model.tensor(model.node_output(node, 0)?)?;
    need(
        output.storage == Storage::Arena,
        "node output is not an arena tensor",
        i,
    )?;
    let scratch = match node.scratch {
        Some(t) => {
            let s = model.tensor(t)?;
            need(
                s.storage == Storage::Arena,
                "scratch is not an arena tensor",
                i,
            )?;
            need(!overlaps(&s, &output), "scratch overlaps the output", i)?;
            Some(s)
        }
        None => None,
    };
    for inp in inputs.iter().flatten() {
        need(!overlaps(inp, &output), "input overlaps the output", i)?;
        if let Some(s) = &scratch {
            need(!overlaps(inp, s), "input overlaps the scratch", i)?;
        }
    }
    let cx = Cx {
        model,
        node,
        i,
        inputs,
        output,
        scratch,
    };
    // Each arm is guarded by its own bit, a constant: the checks of the operators a
    // build leaves out are compiled out with their kernels.
    let kind = match node.op {
        OpCode::Gemm if linked(OpCode::Gemm) => float::gemm(&cx)?,
        OpCode::Conv if linked(OpCode::Conv) => float::conv(&cx)?,
        OpCode::Binary if linked(OpCode::Binary) => float::binary(&cx)?,
        OpCode::Activation if linked(OpCode::Activation) => float::activation(&cx)?,
        OpCode::Softmax if linked(OpCode::Softmax) => float::softmax(&cx)?,
        OpCode::MaxPool if linked(OpCode::MaxPool) => float::pool(&cx, true)?,
        OpCode::AveragePool if linked(OpCode::AveragePool) => float::pool(&cx, false)?,
        OpCode::ReduceMean if linked(OpCode::ReduceMean) => float::reduce_mean(&cx)?,
        OpCode::Transpose if linked(OpCode::Transpose) => data::transpose(&cx)?,
        OpCode::Concat if linked(OpCode::Concat) => data::concat(&cx)?,
        OpCode::Pad if linked(OpCode::Pad) => data::pad(&cx)?,
        OpCode::Copy if linked(OpCode::Copy) => data::copy(&cx)?,
        OpCode::QConv if linked(OpCode::QConv) => int8::qconv(&cx)?,
        OpCode::QDepthwiseConv if linked(OpCode::QDepthwiseConv) => int8::qdepthwise(&cx)?,
        OpCode::QFullyConnected if linked(OpCode::QFullyConnected) => int8::qfully_connected(&cx)?,
        OpCode::QAveragePool if linked(OpCode::QAveragePool) => int8::qpool(&cx, false)?,
        OpCode::QMaxPool if linked(OpCode::QMaxPool) => int8::qpool(&cx, true)?,
        OpCode::QAdd if linked(OpCode::QAdd) => int8::qadd(&cx)?,
        OpCode::QMul if linked(OpCode::QMul) => int8::qmul(&cx)?,
        OpCode::QSoftmax if linked(OpCode::QSoftmax) => int8::qsoftmax(&cx)?,
        OpCode::QLut if linked(OpCode::QLut) => int8::qlut(&cx)?,
        OpCode::QHardSwish if linked(OpCode::QHardSwish) => int8::qhard_swish(&cx)?,
        OpCode::QLeakyRelu if linked(OpCode::QLeakyRelu) => int8::qleaky_relu(&cx)?,
        OpCode::QRequantize if linked(OpCode::QRequantize) => int8::qrequantize(&cx)?,
        OpCode::Quantize if linked(OpCode::Quantize) => int8::quantize(&cx)?,
        OpCode::Dequantize if linked(OpCode::Dequantize) => int8::dequantize(&cx)?,
        OpCode::QMean if linked(OpCode::QMean) => int8::qmean(&cx)?,
        OpCode::HybridConv if linked(OpCode::HybridConv) => int8::hybrid_conv(&cx)?,
        OpCode::HybridFullyConnected if linked(OpCode::HybridFullyConnected) => {
            int8::hybrid_fully_connected(&cx)?
        }
        OpCode::HybridDepthwiseConv if linked(OpCode::HybridDepthwiseConv) => {
            int8::hybrid_depthwise(&cx)?
        }
        // Checked on entry; the arms of unlinked operators are compiled out.
        _ => return Err(unlinked),
    };
    Ok(Prepared {
        kind,
        inputs,
        n_inputs: node.n_inputs,
        output,
        scratch,
    })
}

/// A step's inputs, as the element types its kernel asks for.
struct Ins<'s, 'a> {
    ins: &'s [Option<View<'a>>],
    node: usize,
}

impl<'a> Ins<'_, 'a> {
    fn opt(&self, k: usize) -> Option<View<'a>> {
        self.ins.get(k).copied().flatten()
    }

    fn x(&self, k: usize) -> Result<View<'a>, Error> {
        self.opt(k)
            .ok_or(malformed("missing required input", self.node))
    }

    fn typed<T>(&self, k: usize, f: impl Fn(View<'a>) -> Option<T>) -> Result<T, Error> {
        f(self.x(k)?).ok_or(wrong_type(self.node))
    }

    fn typed_opt<T>(
        &self,
        k: usize,
        f: impl Fn(View<'a>) -> Option<T>,
    ) -> Result<Option<T>, Error> {
        self.opt(k)
            .map(|v| f(v).ok_or(wrong_type(self.node)))
            .transpose()
    }

    fn f32(&self, k: usize) -> Result<&'a [f32], Error> {
        self.typed(k, View::f32)
    }

    fn i8(&self, k: usize) -> Result<&'a [i8], Error> {
        self.typed(k, View::i8)
    }

    fn i32(&self, k: usize) -> Result<&'a [i32], Error> {
        self.typed(k, View::i32)
    }
}

/// A plan handed a kernel an operand of another element type than prepared: a bug
/// (a plan is built from the loader's checks), reported rather than run.
fn wrong_type(node: usize) -> Error {
    malformed("operand of the wrong element type", node)
}

/// Runs one step: `kind` on its operands, `ins[k]` being input `k` (`None` for an
/// absent optional input), for node `node` (named in errors).
///
/// The views must have the element types and lengths of the records `kind` was
/// prepared from, as a plan built by [`crate::Runtime::new`] gives them; a kernel
/// handed others returns an error or fails a bounds check (a trap in wasm), it never
/// reads out of bounds.
pub fn execute(
    node: usize,
    kind: &Kind,
    ins: &[Option<View<'_>>],
    out: ViewMut<'_>,
    scratch: ViewMut<'_>,
) -> Result<(), Error> {
    execute_in::<AllOps>(node, kind, ins, out, scratch)
}

/// [`execute`] for a build that links the operators of `S` only: a kind whose
/// operator is not in `S` gives [`Error::UnlinkedOperator`] (never a skipped node;
/// [`prepare_in`] for `S` never makes one).
pub fn execute_in<S: OpSet>(
    node: usize,
    kind: &Kind,
    ins: &[Option<View<'_>>],
    out: ViewMut<'_>,
    scratch: ViewMut<'_>,
) -> Result<(), Error> {
    use crate::kernels::int8;
    use crate::kernels::{binary, conv, gemm, misc, pool, reduce};
    let linked = |op: OpCode| S::OPS & op_bit(op) != 0;
    let bad = wrong_type(node);
    let x = Ins { ins, node };
    match *kind {
        Kind::Gemm { m, k, n, act } if linked(OpCode::Gemm) => {
            let out = out.f32().ok_or(bad)?;
            match x.typed_opt(2, View::f32)? {
                Some(bias) => out
                    .chunks_exact_mut(n)
                    .for_each(|row| row.copy_from_slice(bias)),
                None => out.fill(0.0),
            }
            gemm::gemm(m, n, k, x.f32(0)?, k, x.f32(1)?, n, out, n);
            act.apply(out);
        }
        Kind::Conv { g, act } if linked(OpCode::Conv) => conv::conv(
            &g,
            x.f32(0)?,
            x.f32(1)?,
            x.typed_opt(2, View::f32)?,
            act,
            out.f32().ok_or(bad)?,
            scratch.f32().ok_or(bad)?,
        ),
        Kind::Binary { op, act, a, b, y } if linked(OpCode::Binary) => {
            let out = out.f32().ok_or(bad)?;
            binary::binary(op, x.f32(0)?, &a, x.f32(1)?, &b, out, &y);
            act.apply(out);
        }
        Kind::Activation(act) if linked(OpCode::Activation) => {
            let out = out.f32().ok_or(bad)?;
            out.copy_from_slice(x.f32(0)?);
            act.apply(out);
        }
        Kind::Softmax { outer, n, inner } if linked(OpCode::Softmax) => {
            misc::softmax(x.f32(0)?, out.f32().ok_or(bad)?, outer, n, inner)
        }
        Kind::Pool {
            g,
            pb,
            pr,
            max,
            count,
        } if linked(OpCode::MaxPool) || linked(OpCode::AveragePool) => {
            pool::pool(&g, pb, pr, max, count, x.f32(0)?, out.f32().ok_or(bad)?)
        }
        Kind::ReduceMean { x: xd, mask } if linked(OpCode::ReduceMean) => {
            reduce::reduce_mean(x.f32(0)?, &xd, mask, out.f32().ok_or(bad)?)
        }
        Kind::Transpose { x: xd, y, perm } if linked(OpCode::Transpose) => {
            let (v, perm) = (x.x(0)?, &perm[..y.rank()]);
            match out.dtype().size() {
                4 => misc::transpose(
                    v.words::<u32>().ok_or(bad)?,
                    &xd,
                    perm,
                    out.words::<u32>().ok_or(bad)?,
                    &y,
                ),
                1 => misc::transpose(
                    v.words::<u8>().ok_or(bad)?,
                    &xd,
                    perm,
                    out.words::<u8>().ok_or(bad)?,
                    &y,
                ),
                _ => return Err(bad),
            }
        }
        Kind::Concat { outer, row } if linked(OpCode::Concat) => {
            // Input `k` holds `outer` blocks, one per output row, so its block is its
            // length over `outer` (at least 1: no dimension is zero).
            let size = out.dtype().size();
            let out = out.bytes();
            let mut offset = 0;
            for k in 0..ins.len() {
                let part = x.x(k)?;
                let len = part.len().checked_div(outer).unwrap_or(0);
                // In bytes: one copy per block, whatever the element type.
                let bytes = part.bytes();
                misc::concat_part(bytes, out, outer, len * size, row * size, offset * size);
                offset += len;
            }
        }
        Kind::Pad {
            x: xd,
            y,
            border,
            begin,
        } if linked(OpCode::Pad) => {
            let (v, begin) = (x.x(0)?, &begin[..y.rank()]);
            match out.dtype().size() {
                4 => misc::pad(
                    v.words::<u32>().ok_or(bad)?,
                    &xd,
                    begin,
                    border,
                    out.words::<u32>().ok_or(bad)?,
                    &y,
                ),
                1 => misc::pad(
                    v.words::<u8>().ok_or(bad)?,
                    &xd,
                    begin,
                    border.map(|b| b as u8),
                    out.words::<u8>().ok_or(bad)?,
                    &y,
                ),
                _ => return Err(bad),
            }
        }
        Kind::Copy if linked(OpCode::Copy) => out.bytes().copy_from_slice(x.x(0)?.bytes()),
        Kind::QConv { g, q } if linked(OpCode::QConv) => int8::conv::conv(
            &g,
            &q,
            x.i8(0)?,
            x.i8(1)?,
            x.typed_opt(2, View::i32)?,
            x.i32(3)?,
            x.i32(4)?,
            out.i8().ok_or(bad)?,
        ),
        Kind::QDepthwiseConv { g, q } if linked(OpCode::QDepthwiseConv) => int8::conv::depthwise(
            &g,
            &q,
            x.i8(0)?,
            x.i8(1)?,
            x.typed_opt(2, View::i32)?,
            x.i32(3)?,
            x.i32(4)?,
            out.i8().ok_or(bad)?,
        ),
        Kind::QFullyConnected {
            batches,
            depth,
            units,
            q,
            zp_w,
            litert_ref,
        } if linked(OpCode::QFullyConnected) => {
            let scales = if litert_ref {
                int8::fc::FcScales::LiteRtRef {
                    scale: x.typed(3, View::f64)?,
                }
            } else {
                int8::fc::FcScales::FixedPoint {
                    mult: x.i32(3)?,
                    shift: x.i32(4)?,
                }
            };
            int8::fc::fully_connected(
                batches,
                depth,
                units,
                &q,
                zp_w,
                x.i8(0)?,
                x.i8(1)?,
                x.typed_opt(2, View::i32)?,
                scales,
                out.i8().ok_or(bad)?,
            )
        }
        Kind::QPool {
            g,
            max,
            act_min,
            act_max,
        } if linked(OpCode::QMaxPool) || linked(OpCode::QAveragePool) => {
            int8::pool::pool(&g, max, act_min, act_max, x.i8(0)?, out.i8().ok_or(bad)?)
        }
        Kind::QAdd { a, b, p } if linked(OpCode::QAdd) => {
            let y = crate::kernels::binary::broadcast(&a, &b).ok_or(bad)?;
            int8::binary::add(&p, x.i8(0)?, &a, x.i8(1)?, &b, out.i8().ok_or(bad)?, &y)
        }
        Kind::QMul { a, b, p } if linked(OpCode::QMul) => {
            let y = crate::kernels::binary::broadcast(&a, &b).ok_or(bad)?;
            int8::binary::mul(&p, x.i8(0)?, &a, x.i8(1)?, &b, out.i8().ok_or(bad)?, &y)
        }
        Kind::QSoftmax { rows, depth, p } if linked(OpCode::QSoftmax) => {
            int8::softmax::softmax(&p, rows, depth, x.i8(0)?, out.i8().ok_or(bad)?)
        }
        Kind::QLut if linked(OpCode::QLut) => {
            int8::act::lut(x.i8(1)?, x.i8(0)?, out.i8().ok_or(bad)?)
        }
        Kind::QHardSwish(p) if linked(OpCode::QHardSwish) => {
            int8::act::hard_swish(&p, x.i8(0)?, out.i8().ok_or(bad)?)
        }
        Kind::QLeakyRelu(p) if linked(OpCode::QLeakyRelu) => {
            int8::act::leaky_relu(&p, x.i8(0)?, out.i8().ok_or(bad)?)
        }
        Kind::QRequantize(p) if linked(OpCode::QRequantize) => {
            int8::act::requantize(&p, x.i8(0)?, out.i8().ok_or(bad)?)
        }
        Kind::Quantize { scale, zero_point } if linked(OpCode::Quantize) => {
            int8::quantize::quantize(scale, zero_point, x.f32(0)?, out.i8().ok_or(bad)?)
        }
        Kind::Dequantize { scale, zero_point } if linked(OpCode::Dequantize) => {
            int8::quantize::dequantize(scale, zero_point, x.i8(0)?, out.f32().ok_or(bad)?)
        }
        Kind::QMean { x: xd, mask, p } if linked(OpCode::QMean) => {
            int8::mean::mean(&p, x.i8(0)?, &xd, mask, out.i8().ok_or(bad)?)
        }
        Kind::HybridConv {
            g,
            w_scale,
            per_channel,
            act,
        } if linked(OpCode::HybridConv) => {
            let (xs, w, bias) = (x.f32(0)?, x.i8(1)?, x.typed_opt(2, View::f32)?);
            let (y, scratch) = (out.f32().ok_or(bad)?, scratch.i8().ok_or(bad)?);
            if per_channel {
                int8::hybrid::conv_per_channel(&g, x.f32(3)?, act, xs, w, bias, y, scratch)
            } else {
                int8::hybrid::conv(&g, w_scale, act, xs, w, bias, y, scratch)
            }
        }
        Kind::HybridDepthwiseConv { g, act } if linked(OpCode::HybridDepthwiseConv) => {
            int8::hybrid::depthwise(
                &g,
                x.f32(3)?,
                act,
                x.f32(0)?,
                x.i8(1)?,
                x.typed_opt(2, View::f32)?,
                out.f32().ok_or(bad)?,
                scratch.i8().ok_or(bad)?,
            )
        }
        Kind::HybridFullyConnected {
            batches,
            depth,
            units,
            w_scale,
            per_unit,
            asymmetric,
            act,
        } if linked(OpCode::HybridFullyConnected) => {
            let scales = if per_unit {
                int8::hybrid::HybridScales::PerUnit(x.f32(3)?)
            } else {
                int8::hybrid::HybridScales::PerTensor(w_scale)
            };
            int8::hybrid::fully_connected(
                batches,
                depth,
                units,
                asymmetric,
                scales,
                act,
                x.f32(0)?,
                x.i8(1)?,
                x.typed_opt(2, View::f32)?,
                out.f32().ok_or(bad)?,
                scratch.i8().ok_or(bad)?,
            )
        }
        // `prepare_in` for `S` makes no such step, and `Runtime::run_in` refuses a plan
        // prepared for more operators than `S` before running any.
        _ => {
            return Err(Error::UnlinkedOperator {
                op: kind.op(),
                node: node as u32,
            });
        }
    }
    Ok(())
}

/// Multiply-accumulates of a prepared node (the GEMM, convolution and fully
/// connected families), for reports.
pub fn macs(p: &Prepared) -> u64 {
    let product = |v: &[usize]| v.iter().map(|&v| v as u64).product();
    match p.kind {
        Kind::Gemm { m, k, n, .. } => product(&[m, k, n]),
        Kind::Conv { g, .. } | Kind::QConv { g, .. } | Kind::HybridConv { g, .. } => {
            product(&[g.n, g.m, g.oh, g.ow, g.c / g.group, g.kh, g.kw])
        }
        Kind::QDepthwiseConv { g, .. } | Kind::HybridDepthwiseConv { g, .. } => {
            product(&[g.n, g.m, g.oh, g.ow, g.kh, g.kw])
        }
        Kind::QFullyConnected {
            batches,
            depth,
            units,
            ..
        }
        | Kind::HybridFullyConnected {
            batches,
            depth,
            units,
            ..
        } => product(&[batches, depth, units]),
        _ => 0,
    }
}

/// What [`Model::load`](crate::Model::load) says of a node past the work bound
/// ([`crate::format::MAX_WORK_PER_ELEMENT`]), in an [`Error::Malformed`].
pub const TOO_MUCH_WORK: &str =
    "node does more work than its tensors' sizes allow (a window far larger than its input?)";

/// Elements of a prepared node's tensors: its inputs (constants included), its
/// output and its scratch. The memory that bounds its work
/// ([`crate::format::MAX_WORK_PER_ELEMENT`]).
pub fn tensor_elements(p: &Prepared) -> u64 {
    p.inputs
        .iter()
        .flatten()
        .chain(Some(&p.output))
        .chain(p.scratch.as_ref())
        .map(|t| t.dims.elements() as u64)
        .sum()
}

/// Inner-loop iterations of a prepared node's kernel, for the loader's work bound:
/// the multiply-accumulates of the GEMM, convolution and fully connected families
/// ([`macs`]), the window taps of pooling (padding taps included: the kernels visit
/// them), and for every other operator, which reads and writes each element a fixed
/// number of times, the elements of its largest tensor.
///
/// Only the first two can exceed their tensors' elements by more than a constant,
/// and they are where a hostile blob's parameters could ask for unbounded work: a
/// convolution's taps are paid for by weights in the blob, a pool's are not.
pub fn work(p: &Prepared) -> u64 {
    let product = |v: &[usize]| v.iter().map(|&v| v as u64).product::<u64>();
    let taps = match p.kind {
        Kind::Pool { g, .. } | Kind::QPool { g, .. } => {
            product(&[g.n, g.c, g.oh, g.ow, g.kh, g.kw])
        }
        _ => 0,
    };
    let largest = p
        .inputs
        .iter()
        .flatten()
        .chain(Some(&p.output))
        .map(|t| t.dims.elements() as u64)
        .max()
        .unwrap_or(0);
    macs(p).max(taps).max(largest)
}

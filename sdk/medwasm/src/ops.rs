//! Per-operator parameter layouts, shape checks and execution.
//!
//! [`prepare`] decodes one node and checks every shape relation its kernel relies
//! on, and [`Kind`] is what it decodes: everything the kernel needs besides the
//! operand slices. The loader prepares every node to validate a blob, and
//! [`crate::Runtime::new`] prepares them once more to keep each [`Kind`] in its plan;
//! running a step ([`execute`]) decodes nothing, so a kernel only ever sees
//! operands it can index safely.
//!
//! Parameter words per op (all u32; f32 stored as bits; "act" is the triple
//! `[kind, alpha, beta]` of [`Act`]):
//!
//! | op | inputs | params |
//! |---|---|---|
//! | Gemm | A `[.., K]`, B const `[K, N]`, bias const `[N]`? | act |
//! | Conv | X `[N,C,(H,)W]`, W const `[M,C/g,(kh,)kw]`, bias const `[M]`? | kh kw sh sw dh dw pt pl pb pr group act |
//! | Binary | A, B (broadcast) | kind act |
//! | Activation | X | act |
//! | Softmax | X | axis_start axis_end |
//! | MaxPool, AveragePool | X `[N,C,(H,)W]` | kh kw sh sw dh dw pt pl pb pr count_include_pad |
//! | ReduceMean | X | axes bitmask |
//! | Transpose | X | perm (one word per axis) |
//! | Concat | X1..Xn | axis |
//! | Pad | X | mode value begin\[rank\] end\[rank\] |
//! | Copy | X | — |

use crate::error::{Error, malformed};
use crate::format::{DType, MAX_NODE_INPUTS, MAX_RANK, OpCode, Storage};
use crate::kernels::act::Act;
use crate::kernels::binary::{BinOp, broadcast};
use crate::kernels::conv::{ConvKind, Geometry};
use crate::kernels::misc::PadMode;
use crate::kernels::pool::AvgCount;
use crate::model::{Model, NodeRecord, TensorRecord, overlaps};
use crate::shape::Dims;

/// The bit of `op` in an operator set ([`OpSet::OPS`]).
pub const fn op_bit(op: OpCode) -> u32 {
    1 << op as u32
}

/// Every operator the runtime implements.
pub const ALL_OPS: u32 = op_bit(OpCode::Gemm)
    | op_bit(OpCode::Conv)
    | op_bit(OpCode::Binary)
    | op_bit(OpCode::Activation)
    | op_bit(OpCode::Softmax)
    | op_bit(OpCode::MaxPool)
    | op_bit(OpCode::AveragePool)
    | op_bit(OpCode::ReduceMean)
    | op_bit(OpCode::Transpose)
    | op_bit(OpCode::Concat)
    | op_bit(OpCode::Pad)
    | op_bit(OpCode::Copy);

/// The operators a build links, as a compile-time constant.
///
/// Loading and running are generic over it, so a detector whose model uses three
/// operators links three kernels: the others' arms are removed at compile time
/// (on a microcontroller that is most of the runtime's flash). A blob with an
/// operator outside the set is refused by the loader, never run.
pub trait OpSet {
    /// Bits from [`op_bit`].
    const OPS: u32;
}

/// Every operator: what [`Model::load`] and [`crate::Runtime::run`] use.
#[derive(Debug, Clone, Copy)]
pub struct AllOps;

impl OpSet for AllOps {
    const OPS: u32 = ALL_OPS;
}

/// Words of a Conv's parameters.
pub const CONV_PARAMS: usize = 14;
/// Words of a pooling op's parameters.
pub const POOL_PARAMS: usize = 11;

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

/// Decoded parameters (fields named as in the table in the module docs), with the
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
    /// Padding of `x` into `y`.
    Pad {
        x: Dims,
        y: Dims,
        mode: PadMode,
        begin: [usize; MAX_RANK],
    },
    /// Plain copy.
    Copy,
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
        }
    }
}

fn act_at(model: &Model<'_>, node: &NodeRecord, at: usize, i: usize) -> Result<Act, Error> {
    Act::decode(
        model.param(node, at),
        model.param(node, at + 1),
        model.param(node, at + 2),
    )
    .ok_or(malformed("bad activation parameters", i))
}

fn need(cond: bool, what: &'static str, i: usize) -> Result<(), Error> {
    if cond {
        Ok(())
    } else {
        Err(malformed(what, i))
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
        need(inp.dtype == DType::F32, "unsupported input dtype", i)?;
        need(!overlaps(inp, &output), "input overlaps the output", i)?;
        if let Some(s) = &scratch {
            need(!overlaps(inp, s), "input overlaps the scratch", i)?;
        }
    }
    let plen = model.params_len(node);
    let p = |k: usize| model.param(node, k) as usize;
    let x = |k: usize| -> Result<TensorRecord, Error> {
        inputs
            .get(k)
            .copied()
            .flatten()
            .ok_or(malformed("missing required input", i))
    };
    let od = output.dims;
    let single = |n: usize| need(node.n_inputs == n, "wrong number of inputs", i);
    let kind = match node.op {
        OpCode::Gemm if linked(OpCode::Gemm) => {
            need(
                node.n_inputs == 2 || node.n_inputs == 3,
                "wrong number of inputs",
                i,
            )?;
            need(plen == 3, "wrong parameter count", i)?;
            let (a, b) = (x(0)?, x(1)?);
            need(
                b.storage == Storage::Const && b.dims.rank() == 2,
                "Gemm B must be a constant matrix",
                i,
            )?;
            let (k, n) = (b.dims.get(0), b.dims.get(1));
            need(
                a.dims.rank() >= 1 && a.dims.as_slice()[a.dims.rank() - 1] == k,
                "Gemm A and B disagree on K",
                i,
            )?;
            let m = a.dims.elements() / k;
            need(
                od.rank() == a.dims.rank()
                    && od.elements() == m * n
                    && od.as_slice()[od.rank() - 1] == n,
                "Gemm output shape",
                i,
            )?;
            if let Some(bias) = inputs[2] {
                need(
                    bias.storage == Storage::Const && bias.dims.elements() == n,
                    "Gemm bias must be a constant of N elements",
                    i,
                )?;
            }
            Kind::Gemm {
                m,
                k,
                n,
                act: act_at(model, node, 0, i)?,
            }
        }
        OpCode::Conv if linked(OpCode::Conv) => {
            need(
                node.n_inputs == 2 || node.n_inputs == 3,
                "wrong number of inputs",
                i,
            )?;
            need(plen == CONV_PARAMS, "wrong parameter count", i)?;
            let (xt, w) = (x(0)?, x(1)?);
            need(
                w.storage == Storage::Const,
                "Conv weights must be constant",
                i,
            )?;
            let g = geometry(model, node, &xt.dims, &od, i)?;
            let group = p(10);
            need(
                group >= 1 && g.c % group == 0 && g.m % group == 0,
                "Conv group does not divide channels",
                i,
            )?;
            let g = Geometry { group, ..g };
            let wd = w.dims.as_slice();
            let spatial_ok = if xt.dims.rank() == 4 {
                wd.len() == 4 && wd[2] == g.kh && wd[3] == g.kw
            } else {
                wd.len() == 3 && wd[2] == g.kw
            };
            need(
                spatial_ok && wd[0] == g.m && wd[1] == g.c / group,
                "Conv weight shape",
                i,
            )?;
            check_window(&g, p(8), p(9), false, i)?;
            if let Some(bias) = inputs[2] {
                need(
                    bias.storage == Storage::Const && bias.dims.elements() == g.m,
                    "Conv bias must be a constant of M elements",
                    i,
                )?;
            }
            // The im2col scratch size, computed without overflow on 32-bit targets
            // (`Geometry::scratch_elems` assumes a validated geometry).
            let needed = match g.kind() {
                ConvKind::Im2col => (g.c / group)
                    .checked_mul(g.kh)
                    .and_then(|v| v.checked_mul(g.kw))
                    .and_then(|v| v.checked_mul(g.ow))
                    .ok_or(malformed("Conv scratch too large", i))?,
                _ => 0,
            };
            if needed > 0 {
                let s = scratch.ok_or(malformed("Conv needs a scratch tensor", i))?;
                need(s.dims.elements() >= needed, "Conv scratch too small", i)?;
            }
            Kind::Conv {
                g,
                act: act_at(model, node, 11, i)?,
            }
        }
        OpCode::Binary if linked(OpCode::Binary) => {
            single(2)?;
            need(plen == 4, "wrong parameter count", i)?;
            let (a, b) = (x(0)?, x(1)?);
            let op = BinOp::decode(p(0) as u32).ok_or(malformed("unknown binary kind", i))?;
            need(
                broadcast(&a.dims, &b.dims) == Some(od),
                "Binary shapes do not broadcast to the output",
                i,
            )?;
            Kind::Binary {
                op,
                act: act_at(model, node, 1, i)?,
                a: a.dims,
                b: b.dims,
                y: od,
            }
        }
        OpCode::Activation if linked(OpCode::Activation) => {
            single(1)?;
            need(plen == 3, "wrong parameter count", i)?;
            need(x(0)?.dims == od, "Activation output shape", i)?;
            Kind::Activation(act_at(model, node, 0, i)?)
        }
        OpCode::Softmax if linked(OpCode::Softmax) => {
            single(1)?;
            need(plen == 2, "wrong parameter count", i)?;
            let (s, e) = (p(0), p(1));
            need(
                x(0)?.dims == od && s < e && e <= od.rank(),
                "Softmax axes",
                i,
            )?;
            let d = od.as_slice();
            Kind::Softmax {
                outer: d[..s].iter().product(),
                n: d[s..e].iter().product(),
                inner: d[e..].iter().product(),
            }
        }
        OpCode::MaxPool | OpCode::AveragePool if linked(node.op) => {
            single(1)?;
            need(plen == POOL_PARAMS, "wrong parameter count", i)?;
            let xt = x(0)?;
            let g = geometry(model, node, &xt.dims, &od, i)?;
            need(g.m == g.c, "pooling changes the channel count", i)?;
            check_window(&g, p(8), p(9), true, i)?;
            // A window wholly in padding has no maximum (it would output -inf) and
            // nothing to average (exclude-pad would divide by zero).
            need(
                windows_touch_input(g.h, g.kh, g.sh, g.dh, g.pt, g.oh)
                    && windows_touch_input(g.w, g.kw, g.sw, g.dw, g.pl, g.ow),
                "pooling window lies entirely in padding",
                i,
            )?;
            let count = if p(10) == 0 {
                AvgCount::ExcludePad
            } else {
                AvgCount::IncludePad
            };
            Kind::Pool {
                g,
                pb: p(8),
                pr: p(9),
                max: node.op == OpCode::MaxPool,
                count,
            }
        }
        OpCode::ReduceMean if linked(OpCode::ReduceMean) => {
            single(1)?;
            need(plen == 1, "wrong parameter count", i)?;
            let xd = x(0)?.dims;
            let mask = p(0) as u32;
            need(mask != 0 && mask >> xd.rank() == 0, "ReduceMean axes", i)?;
            let kept: usize = (0..xd.rank())
                .filter(|d| mask & (1 << d) == 0)
                .map(|d| xd.get(d))
                .product();
            need(od.elements() == kept, "ReduceMean output shape", i)?;
            Kind::ReduceMean { x: xd, mask }
        }
        OpCode::Transpose if linked(OpCode::Transpose) => {
            single(1)?;
            let xd = x(0)?.dims;
            need(
                plen == xd.rank() && od.rank() == xd.rank(),
                "Transpose rank",
                i,
            )?;
            let mut perm = [0; MAX_RANK];
            let mut seen = 0u32;
            for (d, slot) in perm.iter_mut().enumerate().take(xd.rank()) {
                let v = p(d);
                need(
                    v < xd.rank() && seen & (1 << v) == 0 && od.get(d) == xd.get(v),
                    "Transpose permutation",
                    i,
                )?;
                seen |= 1 << v;
                *slot = v;
            }
            Kind::Transpose { x: xd, y: od, perm }
        }
        OpCode::Concat if linked(OpCode::Concat) => {
            need(plen == 1, "wrong parameter count", i)?;
            let axis = p(0);
            need(axis < od.rank(), "Concat axis", i)?;
            let mut total = 0usize;
            for k in 0..node.n_inputs {
                let d = x(k)?.dims;
                need(d.rank() == od.rank(), "Concat rank", i)?;
                for a in 0..od.rank() {
                    need(a == axis || d.get(a) == od.get(a), "Concat shapes", i)?;
                }
                total = total
                    .checked_add(d.get(axis))
                    .ok_or(malformed("Concat output shape", i))?;
            }
            need(total == od.get(axis), "Concat output shape", i)?;
            let inner: usize = od.as_slice()[axis + 1..].iter().product();
            Kind::Concat {
                outer: od.as_slice()[..axis].iter().product(),
                row: od.get(axis) * inner,
            }
        }
        OpCode::Pad if linked(OpCode::Pad) => {
            single(1)?;
            let xd = x(0)?.dims;
            let r = xd.rank();
            need(
                plen == 2 + 2 * r && od.rank() == r,
                "wrong parameter count",
                i,
            )?;
            let mode = match p(0) {
                0 => PadMode::Constant(f32::from_bits(p(1) as u32)),
                1 => PadMode::Reflect,
                2 => PadMode::Edge,
                _ => return Err(malformed("unknown pad mode", i)),
            };
            let mut begin = [0; MAX_RANK];
            for d in 0..r {
                let (b, e) = (p(2 + d), p(2 + r + d));
                let n = xd.get(d);
                need(
                    b.checked_add(e).and_then(|s| s.checked_add(n)) == Some(od.get(d)),
                    "Pad output shape",
                    i,
                )?;
                if mode == PadMode::Reflect {
                    need(b < n && e < n, "reflect padding wider than the input", i)?;
                }
                begin[d] = b;
            }
            Kind::Pad {
                x: xd,
                y: od,
                mode,
                begin,
            }
        }
        OpCode::Copy if linked(OpCode::Copy) => {
            single(1)?;
            need(
                plen == 0 && x(0)?.dims.elements() == od.elements(),
                "Copy changes the element count",
                i,
            )?;
            Kind::Copy
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

/// Reads the shared window parameters and checks the ranks.
fn geometry(
    model: &Model<'_>,
    node: &NodeRecord,
    xd: &Dims,
    od: &Dims,
    i: usize,
) -> Result<Geometry, Error> {
    let p = |k: usize| model.param(node, k) as usize;
    let r = xd.rank();
    need(
        (r == 3 || r == 4) && od.rank() == r,
        "window op needs a 3-D or 4-D input",
        i,
    )?;
    let (h, w, oh, ow) = if r == 4 {
        (xd.get(2), xd.get(3), od.get(2), od.get(3))
    } else {
        (1, xd.get(2), 1, od.get(2))
    };
    let g = Geometry {
        n: xd.get(0),
        c: xd.get(1),
        h,
        w,
        m: od.get(1),
        oh,
        ow,
        kh: p(0),
        kw: p(1),
        sh: p(2),
        sw: p(3),
        dh: p(4),
        dw: p(5),
        pt: p(6),
        pl: p(7),
        group: 1,
    };
    need(od.get(0) == g.n, "window op changes the batch", i)?;
    need(
        g.kh >= 1 && g.kw >= 1 && g.sh >= 1 && g.sw >= 1 && g.dh >= 1 && g.dw >= 1,
        "window parameters must be positive",
        i,
    )?;
    need(
        r == 4 || (g.kh == 1 && g.sh == 1 && g.dh == 1 && g.pt == 0 && p(8) == 0),
        "1-D window with a height",
        i,
    )?;
    // Keep every index computation far from overflow.
    let big = 1 << 24;
    need(
        [g.kh, g.kw, g.sh, g.sw, g.dh, g.dw, g.pt, g.pl, p(8), p(9)]
            .iter()
            .all(|&v| v < big),
        "window parameters too large",
        i,
    )?;
    Ok(g)
}

/// Checks the output size against the floor (and, for pooling, ceil) formula.
///
/// In `u64`: the parameters are below 2^24 but their products are not, and on a
/// 32-bit target a wrapped product could pass the check with the wrong geometry.
fn check_window(
    g: &Geometry,
    pb: usize,
    pr: usize,
    allow_ceil: bool,
    i: usize,
) -> Result<(), Error> {
    let fits = |n: usize, k: usize, s: usize, d: usize, p0: usize, p1: usize, out: usize| {
        let [n, k, s, d, p0, p1, out] = [n, k, s, d, p0, p1, out].map(|v| v as u64);
        let span = (k - 1) * d + 1;
        let padded = n + p0 + p1;
        if padded < span {
            return false;
        }
        let floor = (padded - span) / s + 1;
        let mut ceil = (padded - span).div_ceil(s) + 1;
        // The last window must start inside the input or the leading pad.
        if (ceil - 1) * s >= n + p0 {
            ceil -= 1;
        }
        out == floor || (allow_ceil && out == ceil)
    };
    need(
        fits(g.h, g.kh, g.sh, g.dh, g.pt, pb, g.oh) && fits(g.w, g.kw, g.sw, g.dw, g.pl, pr, g.ow),
        "window output size does not match the parameters",
        i,
    )
}

/// True when each of the `out` windows along one axis (input length `n`, kernel
/// `k`, stride `s`, dilation `d`, leading pad `p0`) has a tap on the input.
///
/// In padded coordinates the input is `[p0, p0 + n)` and window `o` taps
/// `o·s + j·d` for `j < k`. A window starting inside the input taps it at once; one
/// starting past its end taps only padding, and since starts grow with `o`, the last
/// window tells. A window starting in the leading pad (fewer than `p0 / s + 1` of
/// them, and `p0 < 2^24`) hits the input if its first tap at or past `p0` is a tap
/// of the window (`j < k`) and still inside the input: with a dilation wider than
/// the input, taps can step over it.
fn windows_touch_input(n: usize, k: usize, s: usize, d: usize, p0: usize, out: usize) -> bool {
    let [n, k, s, d, p0, out] = [n, k, s, d, p0, out].map(|v| v as u64);
    let Some(last) = out.checked_sub(1) else {
        return true;
    };
    if last * s >= p0 + n {
        return false;
    }
    (0..out.min(p0.div_ceil(s))).all(|o| {
        let start = o * s;
        let j = (p0 - start).div_ceil(d);
        j < k && start + j * d < p0 + n
    })
}

/// Runs one step: `kind` on its operand slices, `ins[k]` being input `k` (`None` for
/// an absent optional input), for node `node` (named in errors).
///
/// The slices must have the lengths of the records `kind` was prepared from, as a
/// plan built by [`crate::Runtime::new`] gives them; a kernel handed others fails a
/// bounds check (a trap in wasm), it never reads out of bounds.
pub fn execute(
    node: usize,
    kind: &Kind,
    ins: &[Option<&[f32]>],
    out: &mut [f32],
    scratch: &mut [f32],
) -> Result<(), Error> {
    execute_in::<AllOps>(node, kind, ins, out, scratch)
}

/// [`execute`] for a build that links the operators of `S` only: a kind whose
/// operator is not in `S` gives [`Error::UnlinkedOperator`] (never a skipped node;
/// [`prepare_in`] for `S` never makes one).
pub fn execute_in<S: OpSet>(
    node: usize,
    kind: &Kind,
    ins: &[Option<&[f32]>],
    out: &mut [f32],
    scratch: &mut [f32],
) -> Result<(), Error> {
    use crate::kernels::{binary, conv, gemm, misc, pool, reduce};
    let linked = |op: OpCode| S::OPS & op_bit(op) != 0;
    let opt = |k: usize| ins.get(k).copied().flatten();
    let x = |k: usize| opt(k).ok_or(malformed("missing required input", node));
    match *kind {
        Kind::Gemm { m, k, n, act } if linked(OpCode::Gemm) => {
            match opt(2) {
                Some(bias) => out
                    .chunks_exact_mut(n)
                    .for_each(|row| row.copy_from_slice(bias)),
                None => out.fill(0.0),
            }
            gemm::gemm(m, n, k, x(0)?, k, x(1)?, n, out, n);
            act.apply(out);
        }
        Kind::Conv { g, act } if linked(OpCode::Conv) => {
            conv::conv(&g, x(0)?, x(1)?, opt(2), act, out, scratch)
        }
        Kind::Binary { op, act, a, b, y } if linked(OpCode::Binary) => {
            binary::binary(op, x(0)?, &a, x(1)?, &b, out, &y);
            act.apply(out);
        }
        Kind::Activation(act) if linked(OpCode::Activation) => {
            out.copy_from_slice(x(0)?);
            act.apply(out);
        }
        Kind::Softmax { outer, n, inner } if linked(OpCode::Softmax) => {
            misc::softmax(x(0)?, out, outer, n, inner)
        }
        Kind::Pool {
            g,
            pb,
            pr,
            max,
            count,
        } if linked(OpCode::MaxPool) || linked(OpCode::AveragePool) => {
            pool::pool(&g, pb, pr, max, count, x(0)?, out)
        }
        Kind::ReduceMean { x: xd, mask } if linked(OpCode::ReduceMean) => {
            reduce::reduce_mean(x(0)?, &xd, mask, out)
        }
        Kind::Transpose { x: xd, y, perm } if linked(OpCode::Transpose) => {
            misc::transpose(x(0)?, &xd, &perm[..y.rank()], out, &y)
        }
        Kind::Concat { outer, row } if linked(OpCode::Concat) => {
            // Input `k` holds `outer` blocks, one per output row, so its block is its
            // length over `outer` (at least 1: no dimension is zero).
            let mut offset = 0;
            for part in ins {
                let part = part.ok_or(malformed("missing required input", node))?;
                let len = part.len().checked_div(outer).unwrap_or(0);
                misc::concat_part(part, out, outer, len, row, offset);
                offset += len;
            }
        }
        Kind::Pad {
            x: xd,
            y,
            mode,
            begin,
        } if linked(OpCode::Pad) => misc::pad(x(0)?, &xd, &begin[..y.rank()], mode, out, &y),
        Kind::Copy if linked(OpCode::Copy) => out.copy_from_slice(x(0)?),
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

/// Multiply-accumulates of a prepared node (Gemm and Conv), for reports.
pub fn macs(p: &Prepared) -> u64 {
    match p.kind {
        Kind::Gemm { m, k, n, .. } => [m, k, n].iter().map(|&v| v as u64).product(),
        Kind::Conv { g, .. } => [g.n, g.m, g.oh, g.ow, g.c / g.group, g.kh, g.kw]
            .iter()
            .map(|&v| v as u64)
            .product(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::windows_touch_input;

    /// The closed form against tapping every window of every small geometry.
    #[test]
    fn windows_touch_input_matches_enumerating_every_tap() {
        let mut refused = 0;
        for n in 1..6 {
            for k in 1..5 {
                for s in 1..4 {
                    for d in 1..5 {
                        for p0 in 0..6 {
                            for out in 1..8 {
                                let brute = (0..out).all(|o| {
                                    (0..k).any(|j| {
                                        let at = o * s + j * d;
                                        at >= p0 && at < p0 + n
                                    })
                                });
                                refused += usize::from(!brute);
                                assert_eq!(
                                    windows_touch_input(n, k, s, d, p0, out),
                                    brute,
                                    "n={n} k={k} s={s} d={d} p0={p0} out={out}"
                                );
                            }
                        }
                    }
                }
            }
        }
        assert!(refused > 0);
    }
}

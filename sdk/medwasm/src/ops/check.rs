//! What every operator's preparation shares: the node's decoded operands
//! ([`Cx`]), parameter reading, and the checks on element types, quantization,
//! multipliers, shifts and accumulator bounds that the int8 kernels rely on.

use crate::error::{Error, malformed};
use crate::format::{DType, Element, MAX_NODE_INPUTS, Quant, Storage};
use crate::model::{Model, NodeRecord, TensorRecord};

/// `Ok` when `cond` holds, else a malformed-blob error naming the check.
pub(super) fn need(cond: bool, what: &'static str, i: usize) -> Result<(), Error> {
    if cond {
        Ok(())
    } else {
        Err(malformed(what, i))
    }
}

/// One node being prepared: its records, read and range-checked.
pub(super) struct Cx<'c, 'm> {
    pub model: &'c Model<'m>,
    pub node: &'c NodeRecord,
    /// Node index, for errors.
    pub i: usize,
    pub inputs: [Option<TensorRecord>; MAX_NODE_INPUTS],
    pub output: TensorRecord,
    pub scratch: Option<TensorRecord>,
}

impl<'m> Cx<'_, 'm> {
    pub fn need(&self, cond: bool, what: &'static str) -> Result<(), Error> {
        need(cond, what, self.i)
    }

    /// Number of input slots.
    pub fn n_inputs(&self) -> usize {
        self.node.n_inputs
    }

    /// Number of parameter words.
    pub fn plen(&self) -> usize {
        self.model.params_len(self.node)
    }

    /// Parameter word `k` (0 past the end; the per-op length check comes first).
    pub fn word(&self, k: usize) -> u32 {
        self.model.param(self.node, k)
    }

    /// Parameter word `k` as an unsigned size.
    pub fn p(&self, k: usize) -> usize {
        self.word(k) as usize
    }

    /// Parameter word `k` as a signed integer.
    pub fn pi(&self, k: usize) -> i32 {
        self.word(k) as i32
    }

    /// Required input `k`.
    pub fn x(&self, k: usize) -> Result<TensorRecord, Error> {
        self.inputs
            .get(k)
            .copied()
            .flatten()
            .ok_or(malformed("missing required input", self.i))
    }

    /// Optional input `k`.
    pub fn opt(&self, k: usize) -> Option<TensorRecord> {
        self.inputs.get(k).copied().flatten()
    }

    /// Exactly `n` input slots.
    pub fn inputs_n(&self, n: usize) -> Result<(), Error> {
        self.need(self.node.n_inputs == n, "wrong number of inputs")
    }

    /// Exactly `n` parameter words.
    pub fn params_n(&self, n: usize) -> Result<(), Error> {
        self.need(self.plen() == n, "wrong parameter count")
    }

    /// Every input and the output are f32: what the f32 operators take.
    pub fn all_f32(&self) -> Result<(), Error> {
        let inputs_ok = self.inputs.iter().flatten().all(|t| t.dtype == DType::F32);
        self.need(
            inputs_ok && self.output.dtype == DType::F32,
            "f32 operator on a tensor of another element type",
        )
    }

    /// A constant of element type `T` and exactly `len` elements, borrowed.
    pub fn constant<T: Element>(
        &self,
        rec: &TensorRecord,
        len: usize,
        what: &'static str,
    ) -> Result<&'m [T], Error> {
        self.need(
            rec.storage == Storage::Const && rec.dtype == T::DTYPE && rec.dims.elements() == len,
            what,
        )?;
        self.model.const_elems(rec)
    }

    /// An int8 tensor with per-tensor quantization: an int8 activation.
    pub fn i8_quant(&self, rec: &TensorRecord) -> Result<Quant, Error> {
        self.need(
            rec.dtype == DType::I8,
            "int8 operator on a tensor of another element type",
        )?;
        rec.quant
            .ok_or(malformed("int8 activation without quantization", self.i))
    }

    /// The fused activation range in words `k`, `k + 1`: inside i8 and ordered.
    pub fn act_range(&self, k: usize) -> Result<(i32, i32), Error> {
        let (lo, hi) = (self.pi(k), self.pi(k + 1));
        self.need(
            (-128..=127).contains(&lo) && (-128..=127).contains(&hi) && lo <= hi,
            "activation range outside int8",
        )?;
        Ok((lo, hi))
    }

    /// An optional int32 bias of `channels` elements (zero point 0 when quantized).
    pub fn bias_i32(&self, k: usize, channels: usize) -> Result<Option<&'m [i32]>, Error> {
        let Some(b) = self.opt(k) else {
            return Ok(None);
        };
        self.need(
            b.quant.is_none_or(|q| q.zero_point == 0),
            "int32 bias with a nonzero zero point",
        )?;
        self.constant(
            &b,
            channels,
            "bias must be an int32 constant of one value per channel",
        )
        .map(Some)
    }

    /// Per-channel multipliers and shifts in inputs `k`, `k + 1`: int32 constants
    /// of `channels` or 1 elements, each a valid pair.
    pub fn channel_scales(
        &self,
        k: usize,
        channels: usize,
    ) -> Result<(&'m [i32], &'m [i32]), Error> {
        let (m, s) = (self.x(k)?, self.x(k + 1)?);
        let len = m.dims.elements();
        self.need(len == 1 || len == channels, "multipliers per channel")?;
        let mult = self.constant::<i32>(&m, len, "multipliers must be int32 constants")?;
        let shift = self.constant::<i32>(&s, len, "shifts must be int32 constants")?;
        self.need(
            mult.iter().all(|&m| multiplier_ok(m)) && shift.iter().all(|&s| shift_ok(s)),
            "multiplier or shift out of range",
        )?;
        Ok((mult, shift))
    }

    /// Checks that every accumulator stays inside i32, and `acc · 2^shift` too
    /// when the shift is positive (both undefined behaviour upstream): channel `c`
    /// sums products of at most `sum_abs_w(c)` weight magnitude with inputs that
    /// deviate at most `x_dev` from their offset, then adds its bias.
    pub fn acc_bound(
        &self,
        channels: usize,
        x_dev: u64,
        sum_abs_w: impl Fn(usize) -> u64,
        bias: Option<&[i32]>,
        shift: Option<&[i32]>,
    ) -> Result<(), Error> {
        for c in 0..channels {
            let b = bias.map_or(0, |b| b[c].unsigned_abs() as u64);
            let left = shift.map_or(0, |s| s[if s.len() == 1 { 0 } else { c }].max(0) as u32);
            self.need(
                fits_i32(sum_abs_w(c).saturating_mul(x_dev).saturating_add(b), left),
                "accumulator may overflow int32: too many or too large weights for int8",
            )?;
        }
        Ok(())
    }
}

/// True when `bound · 2^left` is at most `i32::MAX`.
pub(super) fn fits_i32(bound: u64, left: u32) -> bool {
    bound <= (i32::MAX as u64) >> left
}

/// A fixed-point multiplier: 0, or in `[2^30, 2^31 − 1]` (what `QuantizeMultiplier`
/// gives for a positive real).
pub(super) fn multiplier_ok(m: i32) -> bool {
    m == 0 || m >= 1 << 30
}

/// A shift `QuantizeMultiplier` can give: `-31..=30` (left when positive).
pub(super) fn shift_ok(s: i32) -> bool {
    (-31..=30).contains(&s)
}

/// The largest `|x − zp|` of an int8 value `x`.
pub(super) fn i8_dev(zp: i32) -> u64 {
    (zp + 128).max(127 - zp).unsigned_abs() as u64
}

/// Checks a multiplier/shift pair against an input deviation: the pair is valid and
/// `x_dev · 2^left` fits i32.
pub(super) fn requant_ok(m: i32, s: i32, x_dev: u64) -> bool {
    multiplier_ok(m) && shift_ok(s) && fits_i32(x_dev, s.max(0) as u32)
}

/// Equal quantization (both absent, or the same scale bits and zero point): what a
/// byte move between two tensors needs to keep their values.
pub(super) fn same_quant(a: &TensorRecord, b: &TensorRecord) -> bool {
    match (a.quant, b.quant) {
        (None, None) => true,
        (Some(x), Some(y)) => x.same(&y),
        _ => false,
    }
}

//! Preparation of the int8 and hybrid operators: shapes, element types,
//! quantization, the ranges of every multiplier, shift and activation bound, and
//! the proofs that no accumulator or shift overflows i32 (which TFLite leaves
//! undefined). What a kernel in [`crate::kernels::int8`] relies on is checked here.

use super::Kind;
use super::check::{Cx, fits_i32, i8_dev, multiplier_ok, requant_ok, shift_ok};
use super::float::act_at;
use super::window::{self, WINDOW_PARAMS, check_windows_touch_input};
use crate::error::{Error, malformed};
use crate::format::{DType, Storage};
use crate::kernels::binary::broadcast;
use crate::kernels::conv::Geometry;
use crate::kernels::int8::act::{HardSwishParams, LeakyParams, RequantParams};
use crate::kernels::int8::binary::{AddParams, MulParams};
use crate::kernels::int8::mean::MeanParams;
use crate::kernels::int8::requant::Requant;
use crate::kernels::int8::softmax::{MAX_DEPTH, SoftmaxParams};
use crate::model::TensorRecord;

/// Words of a QConv's or QDepthwiseConv's parameters: the window, then the
/// activation range.
pub const QCONV_PARAMS: usize = WINDOW_PARAMS + 2;
/// Words of a QAveragePool's or QMaxPool's parameters.
pub const QPOOL_PARAMS: usize = WINDOW_PARAMS + 2;
/// Words of a HybridConv's parameters: the window, then the activation triple.
pub const HYBRID_CONV_PARAMS: usize = WINDOW_PARAMS + 3;
/// The most taps a pooling window may have: their i32 sum stays exact.
pub const MAX_POOL_TAPS: usize = 1 << 23;
/// The most elements a MEAN may average: their i32 sum stays exact.
pub const MAX_MEAN_COUNT: usize = 1 << 23;

/// The requantization of an int8 node from its input and output records and the
/// activation range in words `k`, `k + 1`.
fn requant(cx: &Cx<'_, '_>, x: &TensorRecord, k: usize) -> Result<Requant, Error> {
    let qi = cx.i8_quant(x)?;
    let qo = cx.i8_quant(&cx.output)?;
    let (act_min, act_max) = cx.act_range(k)?;
    Ok(Requant {
        zp_in: qi.zero_point,
        zp_out: qo.zero_point,
        act_min,
        act_max,
    })
}

/// Int8 weights: a constant whose zero point, if quantized, is 0.
fn weights<'m>(cx: &Cx<'_, 'm>, w: &TensorRecord, len: usize) -> Result<&'m [i8], Error> {
    cx.need(
        w.quant.is_none_or(|q| q.zero_point == 0),
        "int8 weights need zero point 0",
    )?;
    cx.constant::<i8>(
        w,
        len,
        "weights must be an int8 constant of the kernel's shape",
    )
}

/// QConv: X i8 `[N,H,W,C]`, W i8 const `[M,kh,kw,C]`, bias i32 `[M]`?, mult, shift
/// i32 `[M]` (or `[1]`) → i8 `[N,OH,OW,M]`.
pub(super) fn qconv(cx: &Cx<'_, '_>) -> Result<Kind, Error> {
    cx.inputs_n(5)?;
    cx.params_n(QCONV_PARAMS)?;
    let (x, w) = (cx.x(0)?, cx.x(1)?);
    let q = requant(cx, &x, WINDOW_PARAMS)?;
    let g = window::nhwc(cx, &x.dims, &cx.output.dims)?;
    let wd = w.dims.as_slice();
    cx.need(
        wd.len() == 4 && wd[0] == g.m && wd[1] == g.kh && wd[2] == g.kw && wd[3] == g.c,
        "QConv weight shape (OHWI, group 1)",
    )?;
    let taps = g.kh * g.kw * g.c;
    let wt = weights(cx, &w, g.m * taps)?;
    let bias = cx.bias_i32(2, g.m)?;
    let (_, shift) = cx.channel_scales(3, g.m)?;
    cx.acc_bound(
        g.m,
        i8_dev(q.zp_in),
        |c| abs_sum(&wt[c * taps..][..taps]),
        bias,
        Some(shift),
    )?;
    Ok(Kind::QConv { g, q })
}

/// QDepthwiseConv: X i8 `[N,H,W,C]`, W i8 const `[1,kh,kw,C·M]`, bias, mult, shift
/// → i8 `[N,OH,OW,C·M]`.
pub(super) fn qdepthwise(cx: &Cx<'_, '_>) -> Result<Kind, Error> {
    cx.inputs_n(5)?;
    cx.params_n(QCONV_PARAMS)?;
    let (x, w) = (cx.x(0)?, cx.x(1)?);
    let q = requant(cx, &x, WINDOW_PARAMS)?;
    let g = window::nhwc(cx, &x.dims, &cx.output.dims)?;
    cx.need(
        g.m % g.c == 0,
        "depthwise output channels not a multiple of the input channels",
    )?;
    let g = Geometry { group: g.c, ..g };
    let wd = w.dims.as_slice();
    cx.need(
        wd.len() == 4 && wd[0] == 1 && wd[1] == g.kh && wd[2] == g.kw && wd[3] == g.m,
        "QDepthwiseConv weight shape (1HWO)",
    )?;
    let wt = weights(cx, &w, g.kh * g.kw * g.m)?;
    let bias = cx.bias_i32(2, g.m)?;
    let (_, shift) = cx.channel_scales(3, g.m)?;
    cx.acc_bound(
        g.m,
        i8_dev(q.zp_in),
        |c| {
            wt.iter()
                .skip(c)
                .step_by(g.m)
                .map(|&v| v.unsigned_abs() as u64)
                .sum()
        },
        bias,
        Some(shift),
    )?;
    Ok(Kind::QDepthwiseConv { g, q })
}

/// The batches, depth and units of a fully connected node: X `[.., depth]` viewed
/// as `[batches, depth]`, W `[units, depth]`, Y `[.., units]` of `batches · units`.
fn fc_shape(
    cx: &Cx<'_, '_>,
    x: &TensorRecord,
    w: &TensorRecord,
) -> Result<(usize, usize, usize), Error> {
    cx.need(
        w.storage == Storage::Const && w.dims.rank() == 2,
        "fully connected weights must be a constant [units, depth] matrix",
    )?;
    let (units, depth) = (w.dims.get(0), w.dims.get(1));
    let xn = x.dims.elements();
    cx.need(
        xn.is_multiple_of(depth),
        "fully connected input not a whole number of rows",
    )?;
    let batches = xn / depth;
    let od = cx.output.dims;
    cx.need(
        od.rank() >= 1 && od.as_slice()[od.rank() - 1] == units && od.elements() == batches * units,
        "fully connected output shape",
    )?;
    Ok((batches, depth, units))
}

/// QFullyConnected: X i8 `[.., depth]`, W i8 const `[units, depth]`, bias i32
/// `[units]`?, then mode 0: mult, shift i32 `[units]` (or `[1]`); mode 1: scale f64
/// `[units]` (or `[1]`) → i8 `[.., units]`. Params: mode, act_min, act_max.
pub(super) fn qfully_connected(cx: &Cx<'_, '_>) -> Result<Kind, Error> {
    cx.params_n(3)?;
    let litert_ref = match cx.word(0) {
        0 => false,
        1 => true,
        _ => {
            return Err(malformed(
                "unknown fully connected requantization mode",
                cx.i,
            ));
        }
    };
    cx.inputs_n(if litert_ref { 4 } else { 5 })?;
    let (x, w) = (cx.x(0)?, cx.x(1)?);
    let q = requant(cx, &x, 1)?;
    let (batches, depth, units) = fc_shape(cx, &x, &w)?;
    cx.need(w.dtype == DType::I8, "fully connected weights must be int8")?;
    let wt = cx.constant::<i8>(&w, units * depth, "fully connected weights")?;
    let bias = cx.bias_i32(2, units)?;
    let (channels, shift) = if litert_ref {
        let s = cx.x(3)?;
        let len = s.dims.elements();
        cx.need(len == 1 || len == units, "scales per unit")?;
        let scale = cx.constant::<f64>(&s, len, "fully connected scales must be f64 constants")?;
        cx.need(
            scale.iter().all(|&v| v.is_finite() && v > 0.0),
            "fully connected scale not finite and positive",
        )?;
        (len, None)
    } else {
        let (mult, shift) = cx.channel_scales(3, units)?;
        (mult.len(), Some(shift))
    };
    // Per-tensor weights may have a zero point (LiteRT applies it); per-channel
    // ones are symmetric.
    let zp_w = w.quant.map_or(0, |q| q.zero_point);
    cx.need(
        zp_w == 0 || channels == 1,
        "per-channel fully connected weights need zero point 0",
    )?;
    cx.acc_bound(
        units,
        i8_dev(q.zp_in),
        |u| {
            wt[u * depth..][..depth]
                .iter()
                .map(|&v| (v as i32 - zp_w).unsigned_abs() as u64)
                .sum()
        },
        bias,
        shift,
    )?;
    Ok(Kind::QFullyConnected {
        batches,
        depth,
        units,
        q,
        zp_w,
        litert_ref,
    })
}

/// QAveragePool / QMaxPool: X i8 `[N,H,W,C]` → i8 `[N,OH,OW,C]` with the same
/// quantization. Params: window, act_min, act_max.
pub(super) fn qpool(cx: &Cx<'_, '_>, max: bool) -> Result<Kind, Error> {
    cx.inputs_n(1)?;
    cx.params_n(QPOOL_PARAMS)?;
    let x = cx.x(0)?;
    let (qi, qo) = (cx.i8_quant(&x)?, cx.i8_quant(&cx.output)?);
    // Pooling moves raw values: TFLite DCHECKs equal quantization (within 1e-6 of
    // scale), and a model that differed would get a wrong answer from it.
    cx.need(
        qi.zero_point == qo.zero_point && (qi.scale - qo.scale).abs() <= 1.0e-6,
        "pooling changes the quantization: requantize first",
    )?;
    let (act_min, act_max) = cx.act_range(WINDOW_PARAMS)?;
    let g = window::nhwc(cx, &x.dims, &cx.output.dims)?;
    cx.need(g.m == g.c, "pooling changes the channel count")?;
    cx.need(g.kh * g.kw <= MAX_POOL_TAPS, "pooling window too large")?;
    check_windows_touch_input(&g, cx.i)?;
    Ok(Kind::QPool {
        g,
        max,
        act_min,
        act_max,
    })
}

/// QAdd: A, B i8 (broadcasting) → i8. Params: sub, left_shift, m1, s1, m2, s2, mo,
/// so, act_min, act_max; every shift ≤ 0 (`...SmallerThanOneExp`).
pub(super) fn qadd(cx: &Cx<'_, '_>) -> Result<Kind, Error> {
    cx.inputs_n(2)?;
    cx.params_n(10)?;
    let (a, b) = (cx.x(0)?, cx.x(1)?);
    let (q1, q2, qo) = (cx.i8_quant(&a)?, cx.i8_quant(&b)?, cx.i8_quant(&cx.output)?);
    cx.need(
        broadcast(&a.dims, &b.dims) == Some(cx.output.dims),
        "QAdd shapes do not broadcast to the output",
    )?;
    let sub = match cx.word(0) {
        0 => false,
        1 => true,
        _ => return Err(malformed("unknown QAdd kind", cx.i)),
    };
    let left_shift = cx.word(1);
    // 255 · 2^20 < 2^28: the scaled inputs, their sum and difference fit i32.
    cx.need(left_shift <= 20, "QAdd left shift above 20")?;
    let scale = |k: usize| -> Result<(i32, i8), Error> {
        let (m, s) = (cx.pi(k), cx.pi(k + 1));
        cx.need(
            multiplier_ok(m) && (-31..=0).contains(&s),
            "QAdd multiplier or shift out of range",
        )?;
        Ok((m, s as i8))
    };
    let ((m1, s1), (m2, s2), (mo, so)) = (scale(2)?, scale(4)?, scale(6)?);
    let (act_min, act_max) = cx.act_range(8)?;
    Ok(Kind::QAdd {
        a: a.dims,
        b: b.dims,
        p: AddParams {
            sub,
            left_shift: left_shift as u8,
            m1,
            s1,
            m2,
            s2,
            mo,
            so,
            zp1: q1.zero_point as i16,
            zp2: q2.zero_point as i16,
            zpo: qo.zero_point as i16,
            act_min: act_min as i8,
            act_max: act_max as i8,
        },
    })
}

/// QMul: A, B i8 (broadcasting) → i8. Params: m, shift, act_min, act_max.
pub(super) fn qmul(cx: &Cx<'_, '_>) -> Result<Kind, Error> {
    cx.inputs_n(2)?;
    cx.params_n(4)?;
    let (a, b) = (cx.x(0)?, cx.x(1)?);
    let (q1, q2, qo) = (cx.i8_quant(&a)?, cx.i8_quant(&b)?, cx.i8_quant(&cx.output)?);
    cx.need(
        broadcast(&a.dims, &b.dims) == Some(cx.output.dims),
        "QMul shapes do not broadcast to the output",
    )?;
    let (m, shift) = (cx.pi(0), cx.pi(1));
    cx.need(
        requant_ok(m, shift, i8_dev(q1.zero_point) * i8_dev(q2.zero_point)),
        "QMul multiplier or shift out of range",
    )?;
    let (act_min, act_max) = cx.act_range(2)?;
    Ok(Kind::QMul {
        a: a.dims,
        b: b.dims,
        p: MulParams {
            m,
            shift: shift as i8,
            zp1: q1.zero_point as i16,
            zp2: q2.zero_point as i16,
            zpo: qo.zero_point as i16,
            act_min: act_min as i8,
            act_max: act_max as i8,
        },
    })
}

/// An int8 elementwise node: one i8 input of the output's shape; returns the input
/// and output zero points.
fn elementwise(cx: &Cx<'_, '_>, params: usize) -> Result<(i32, i32), Error> {
    cx.params_n(params)?;
    let x = cx.x(0)?;
    let (qi, qo) = (cx.i8_quant(&x)?, cx.i8_quant(&cx.output)?);
    cx.need(x.dims == cx.output.dims, "elementwise output shape")?;
    Ok((qi.zero_point, qo.zero_point))
}

/// QSoftmax over the last axis: X i8 → i8 with scale 1/256 and zero point −128.
/// Params: m, left_shift, diff_min.
pub(super) fn qsoftmax(cx: &Cx<'_, '_>) -> Result<Kind, Error> {
    cx.inputs_n(1)?;
    elementwise(cx, 3)?;
    let od = cx.output.dims;
    cx.need(od.rank() >= 1, "QSoftmax needs an axis")?;
    let qo = cx.i8_quant(&cx.output)?;
    // LiteRT checks the output scale to 0.1 % of 1/256; the kernel assumes it.
    cx.need(
        qo.zero_point == -128 && (qo.scale - 1.0 / 256.0).abs() <= 0.001 / 256.0,
        "QSoftmax output must be quantized with scale 1/256 and zero point -128",
    )?;
    let depth = od.as_slice()[od.rank() - 1];
    cx.need(depth <= MAX_DEPTH, "QSoftmax row longer than 511 elements")?;
    let (m, left_shift, diff_min) = (cx.pi(0), cx.pi(1), cx.pi(2));
    cx.need(
        m >= 1 << 30 && (0..=31).contains(&left_shift),
        "QSoftmax multiplier or shift out of range",
    )?;
    // Every difference that reaches the multiplier, |d| · 2^left_shift, stays within
    // 31 · 2^26 (TFLite's input radius), so it cannot overflow.
    let radius = (31i64 << 26) >> left_shift;
    cx.need(
        diff_min <= 0 && -(diff_min as i64) <= radius,
        "QSoftmax diff_min outside the input radius",
    )?;
    Ok(Kind::QSoftmax {
        rows: od.elements() / depth,
        depth,
        p: SoftmaxParams {
            m,
            left_shift: left_shift as u8,
            diff_min,
        },
    })
}

/// QLut: X i8, table i8 const `[256]` → i8 (LOGISTIC, TANH). No params.
pub(super) fn qlut(cx: &Cx<'_, '_>) -> Result<Kind, Error> {
    cx.inputs_n(2)?;
    elementwise(cx, 0)?;
    let table = cx.x(1)?;
    cx.constant::<i8>(
        &table,
        256,
        "QLut table must be an int8 constant of 256 entries",
    )?;
    Ok(Kind::QLut)
}

/// QHardSwish: X i8 → i8. Params: m_output, e_output, m_reluish, e_reluish (the
/// multipliers are TFLite's 16-bit ones).
pub(super) fn qhard_swish(cx: &Cx<'_, '_>) -> Result<Kind, Error> {
    cx.inputs_n(1)?;
    let (zp_in, zp_out) = elementwise(cx, 4)?;
    let (mo, eo, mr, er) = (cx.pi(0), cx.pi(1), cx.pi(2), cx.pi(3));
    // `DownScaleInt32ToInt16Multiplier` of a valid multiplier.
    let m16 = |m: i32| m == 0 || (1 << 14..=i16::MAX as i32).contains(&m);
    // 16-bit rounding shifts past 15 are not defined upstream (gemmlowp asserts).
    cx.need(
        m16(mo) && m16(mr) && (-15..=0).contains(&eo) && (-15..=30).contains(&er),
        "QHardSwish multiplier or exponent out of range",
    )?;
    Ok(Kind::QHardSwish(HardSwishParams {
        zp_in: zp_in as i16,
        zp_out: zp_out as i16,
        m_output: mo as i16,
        e_output: eo as i8,
        m_reluish: mr as i16,
        e_reluish: er as i8,
    }))
}

/// QLeakyRelu: X i8 → i8. Params: m_identity, s_identity, m_alpha, s_alpha
/// (`m_alpha` negative for a negative alpha).
pub(super) fn qleaky_relu(cx: &Cx<'_, '_>) -> Result<Kind, Error> {
    cx.inputs_n(1)?;
    let (zp_in, zp_out) = elementwise(cx, 4)?;
    let (mi, si, ma, sa) = (cx.pi(0), cx.pi(1), cx.pi(2), cx.pi(3));
    let dev = i8_dev(zp_in);
    // A negative multiplier is negated before use: `i32::MIN` has no negation.
    cx.need(
        requant_ok(mi, si, dev) && ma != i32::MIN && requant_ok(ma.abs(), sa, dev),
        "QLeakyRelu multiplier or shift out of range",
    )?;
    Ok(Kind::QLeakyRelu(LeakyParams {
        zp_in,
        zp_out,
        m_identity: mi,
        s_identity: si,
        m_alpha: ma,
        s_alpha: sa,
    }))
}

/// QRequantize: X i8 → i8. Params: m, shift, act_min, act_max.
pub(super) fn qrequantize(cx: &Cx<'_, '_>) -> Result<Kind, Error> {
    cx.inputs_n(1)?;
    let (zp_in, zp_out) = elementwise(cx, 4)?;
    let (m, shift) = (cx.pi(0), cx.pi(1));
    cx.need(
        requant_ok(m, shift, i8_dev(zp_in)),
        "QRequantize multiplier or shift out of range",
    )?;
    let (act_min, act_max) = cx.act_range(2)?;
    Ok(Kind::QRequantize(RequantParams {
        zp_in,
        zp_out,
        m,
        shift,
        act_min,
        act_max,
    }))
}

/// Quantize: X f32 → i8 (the output's quantization). No params.
pub(super) fn quantize(cx: &Cx<'_, '_>) -> Result<Kind, Error> {
    cx.inputs_n(1)?;
    cx.params_n(0)?;
    let x = cx.x(0)?;
    let qo = cx.i8_quant(&cx.output)?;
    cx.need(x.dtype == DType::F32, "Quantize input must be f32")?;
    cx.need(x.dims == cx.output.dims, "elementwise output shape")?;
    Ok(Kind::Quantize {
        scale: qo.scale,
        zero_point: qo.zero_point,
    })
}

/// Dequantize: X i8 (its quantization) → f32. No params.
pub(super) fn dequantize(cx: &Cx<'_, '_>) -> Result<Kind, Error> {
    cx.inputs_n(1)?;
    cx.params_n(0)?;
    let x = cx.x(0)?;
    let qi = cx.i8_quant(&x)?;
    cx.need(
        cx.output.dtype == DType::F32,
        "Dequantize output must be f32",
    )?;
    cx.need(x.dims == cx.output.dims, "elementwise output shape")?;
    Ok(Kind::Dequantize {
        scale: qi.scale,
        zero_point: qi.zero_point,
    })
}

/// QMean: X i8 → i8 over the axes of a bitmask. Params: mask, m, shift (TFLite's
/// multiplier of `s_in / s_out`; the count is folded in here as upstream's `Eval`
/// does).
pub(super) fn qmean(cx: &Cx<'_, '_>) -> Result<Kind, Error> {
    cx.inputs_n(1)?;
    cx.params_n(3)?;
    let x = cx.x(0)?;
    let (qi, qo) = (cx.i8_quant(&x)?, cx.i8_quant(&cx.output)?);
    let xd = x.dims;
    let mask = cx.word(0);
    cx.need(mask != 0 && mask >> xd.rank() == 0, "QMean axes")?;
    let (kept, reduced) = (0..xd.rank()).fold((1usize, 1usize), |(k, r), d| {
        if mask & (1 << d) == 0 {
            (k * xd.get(d), r)
        } else {
            (k, r * xd.get(d))
        }
    });
    cx.need(cx.output.dims.elements() == kept, "QMean output shape")?;
    cx.need(reduced <= MAX_MEAN_COUNT, "QMean over too many elements")?;
    let (m, shift) = (cx.pi(1), cx.pi(2));
    cx.need(
        multiplier_ok(m) && shift_ok(shift),
        "QMean multiplier or shift out of range",
    )?;
    let p = MeanParams::new(m, shift, reduced as i32, qi.zero_point, qo.zero_point);
    // |Σ (x − zp)| ≤ n · dev, shifted left by the folded shift when positive.
    cx.need(
        fits_i32(
            reduced as u64 * i8_dev(qi.zero_point),
            p.shift.max(0) as u32,
        ),
        "QMean sum may overflow int32",
    )?;
    Ok(Kind::QMean { x: xd, mask, p })
}

/// Hybrid weights: an int8 constant with per-tensor quantization, zero point 0;
/// returns the weights and their scale.
fn hybrid_weights<'m>(
    cx: &Cx<'_, 'm>,
    w: &TensorRecord,
    len: usize,
) -> Result<(&'m [i8], f32), Error> {
    let q = w
        .quant
        .ok_or(malformed("hybrid weights need a per-tensor scale", cx.i))?;
    cx.need(q.zero_point == 0, "int8 weights need zero point 0")?;
    Ok((
        cx.constant::<i8>(
            w,
            len,
            "hybrid weights must be an int8 constant of the kernel's shape",
        )?,
        q.scale,
    ))
}

/// Per-channel hybrid weights: an unquantized int8 constant (its scales are an
/// operand of their own) and the scales in input `k`, an f32 constant of one
/// finite, positive value per channel.
fn hybrid_weights_per_channel<'m>(
    cx: &Cx<'_, 'm>,
    w: &TensorRecord,
    len: usize,
    k: usize,
    channels: usize,
) -> Result<(&'m [i8], &'m [f32]), Error> {
    cx.need(
        w.quant.is_none(),
        "per-channel hybrid weights take their scales from the scales operand, not their record",
    )?;
    let wt = cx.constant::<i8>(
        w,
        len,
        "hybrid weights must be an int8 constant of the kernel's shape",
    )?;
    let scales = cx.constant::<f32>(
        &cx.x(k)?,
        channels,
        "hybrid weight scales must be an f32 constant of one value per channel",
    )?;
    cx.need(
        scales.iter().all(|&s| s.is_finite() && s > 0.0),
        "hybrid weight scale not finite and positive",
    )?;
    Ok((wt, scales))
}

/// An optional f32 bias of `channels` elements.
fn bias_f32(cx: &Cx<'_, '_>, k: usize, channels: usize) -> Result<(), Error> {
    if let Some(b) = cx.opt(k) {
        cx.constant::<f32>(
            &b,
            channels,
            "bias must be an f32 constant of one value per channel",
        )?;
    }
    Ok(())
}

/// An int8 scratch of at least `len` elements for the quantized input.
fn i8_scratch(cx: &Cx<'_, '_>, len: usize) -> Result<(), Error> {
    let s = cx
        .scratch
        .ok_or(malformed("hybrid op needs an int8 scratch tensor", cx.i))?;
    cx.need(
        s.dtype == DType::I8 && s.dims.elements() >= len,
        "hybrid scratch too small",
    )
}

/// The f32 input and output of a hybrid op.
fn hybrid_io(cx: &Cx<'_, '_>, x: &TensorRecord) -> Result<(), Error> {
    cx.need(
        x.dtype == DType::F32 && cx.output.dtype == DType::F32,
        "hybrid op input and output must be f32",
    )
}

/// The largest `|q − zp|` of an input quantized at run time: symmetric inputs lie in
/// `−127..=127` (zero point 0), asymmetric ones in `−128..=127` with a zero point
/// there too.
fn hybrid_dev(asymmetric: bool) -> u64 {
    if asymmetric { 255 } else { 127 }
}

/// HybridConv: X f32 `[N,H,W,C]`, W i8 const `[M,kh,kw,C]`, bias f32 `[M]`? →
/// f32 `[N,OH,OW,M]`, scratch i8 `[H·W·C]`. Params: window, act triple. Three
/// inputs: W has a per-tensor scale and the input is quantized symmetrically
/// (LiteRT's `EvalHybrid`); four: W is unquantized and input 3 holds f32 scales
/// `[M]` that are not all equal, and the input is quantized asymmetrically
/// (`EvalHybridPerChannel`; LiteRT takes the symmetric path when the scales are all
/// equal, so such a node must use the per-tensor form).
pub(super) fn hybrid_conv(cx: &Cx<'_, '_>) -> Result<Kind, Error> {
    let per_channel = cx.n_inputs() == 4;
    if !per_channel {
        cx.inputs_n(3)?;
    }
    cx.params_n(HYBRID_CONV_PARAMS)?;
    let (x, w) = (cx.x(0)?, cx.x(1)?);
    hybrid_io(cx, &x)?;
    let g = window::nhwc(cx, &x.dims, &cx.output.dims)?;
    let wd = w.dims.as_slice();
    cx.need(
        wd.len() == 4 && wd[0] == g.m && wd[1] == g.kh && wd[2] == g.kw && wd[3] == g.c,
        "HybridConv weight shape (OHWI, group 1)",
    )?;
    let taps = g.kh * g.kw * g.c;
    let (wt, w_scale) = if per_channel {
        let (wt, scales) = hybrid_weights_per_channel(cx, &w, g.m * taps, 3, g.m)?;
        cx.need(
            scales.iter().any(|s| s.to_bits() != scales[0].to_bits()),
            "per-channel HybridConv scales are all equal: LiteRT runs the per-tensor form",
        )?;
        (wt, 0.0)
    } else {
        hybrid_weights(cx, &w, g.m * taps)?
    };
    bias_f32(cx, 2, g.m)?;
    i8_scratch(cx, g.h * g.w * g.c)?;
    cx.acc_bound(
        g.m,
        hybrid_dev(per_channel),
        |c| abs_sum(&wt[c * taps..][..taps]),
        None,
        None,
    )?;
    Ok(Kind::HybridConv {
        g,
        w_scale,
        per_channel,
        act: act_at(cx, WINDOW_PARAMS)?,
    })
}

/// HybridDepthwiseConv: X f32 `[N,H,W,C]`, W i8 const `[1,kh,kw,C·D]`
/// (unquantized), bias f32 `[C·D]`?, scales f32 const `[C·D]` → f32
/// `[N,OH,OW,C·D]`, scratch i8 `[H·W·C]`. Params: window, act triple. The input is
/// quantized asymmetrically (LiteRT's `DepthwiseConvHybridPerChannel`).
pub(super) fn hybrid_depthwise(cx: &Cx<'_, '_>) -> Result<Kind, Error> {
    cx.inputs_n(4)?;
    cx.params_n(HYBRID_CONV_PARAMS)?;
    let (x, w) = (cx.x(0)?, cx.x(1)?);
    hybrid_io(cx, &x)?;
    let g = window::nhwc(cx, &x.dims, &cx.output.dims)?;
    cx.need(
        g.m % g.c == 0,
        "depthwise output channels not a multiple of the input channels",
    )?;
    let g = Geometry { group: g.c, ..g };
    let wd = w.dims.as_slice();
    cx.need(
        wd.len() == 4 && wd[0] == 1 && wd[1] == g.kh && wd[2] == g.kw && wd[3] == g.m,
        "HybridDepthwiseConv weight shape (1HWO)",
    )?;
    let (wt, _) = hybrid_weights_per_channel(cx, &w, g.kh * g.kw * g.m, 3, g.m)?;
    bias_f32(cx, 2, g.m)?;
    i8_scratch(cx, g.h * g.w * g.c)?;
    cx.acc_bound(
        g.m,
        hybrid_dev(true),
        |c| {
            wt.iter()
                .skip(c)
                .step_by(g.m)
                .map(|&v| v.unsigned_abs() as u64)
                .sum()
        },
        None,
        None,
    )?;
    Ok(Kind::HybridDepthwiseConv {
        g,
        act: act_at(cx, WINDOW_PARAMS)?,
    })
}

/// HybridFullyConnected: X f32 `[.., depth]`, W i8 const `[units, depth]`, bias
/// f32 `[units]`? → f32 `[.., units]`, scratch i8 `[depth]`. Params: act triple,
/// then optionally a flags word (bit 0: asymmetric input quantization, LiteRT's
/// `asymmetric_quantize_inputs`; three words mean 0). Three inputs: W has a
/// per-tensor scale; four: W is unquantized and input 3 holds f32 scales
/// `[units]`, which needs asymmetric inputs (LiteRT's symmetric path reads an input
/// offset it never wrote).
pub(super) fn hybrid_fully_connected(cx: &Cx<'_, '_>) -> Result<Kind, Error> {
    let per_unit = cx.n_inputs() == 4;
    if !per_unit {
        cx.inputs_n(3)?;
    }
    let asymmetric = match cx.plen() {
        3 => false,
        4 => match cx.word(3) {
            0 => false,
            1 => true,
            _ => return Err(malformed("unknown hybrid fully connected flags", cx.i)),
        },
        _ => return Err(malformed("wrong parameter count", cx.i)),
    };
    let (x, w) = (cx.x(0)?, cx.x(1)?);
    hybrid_io(cx, &x)?;
    let (batches, depth, units) = fc_shape(cx, &x, &w)?;
    let (wt, w_scale) = if per_unit {
        cx.need(
            asymmetric,
            "per-unit hybrid fully connected scales need asymmetric input quantization",
        )?;
        let (wt, _) = hybrid_weights_per_channel(cx, &w, units * depth, 3, units)?;
        (wt, 0.0)
    } else {
        hybrid_weights(cx, &w, units * depth)?
    };
    bias_f32(cx, 2, units)?;
    i8_scratch(cx, depth)?;
    cx.acc_bound(
        units,
        hybrid_dev(asymmetric),
        |u| abs_sum(&wt[u * depth..][..depth]),
        None,
        None,
    )?;
    Ok(Kind::HybridFullyConnected {
        batches,
        depth,
        units,
        w_scale,
        per_unit,
        asymmetric,
        act: act_at(cx, 0)?,
    })
}

/// `Σ |w|`.
fn abs_sum(w: &[i8]) -> u64 {
    w.iter().map(|&v| v.unsigned_abs() as u64).sum()
}

//! Preparation of the f32 operators (NCHW): Gemm, Conv, Binary, Activation,
//! Softmax, pooling and ReduceMean.

use super::Kind;
use super::check::Cx;
use super::window::{self, check_window, check_windows_touch_input};
use crate::error::{Error, malformed};
use crate::format::Storage;
use crate::kernels::act::Act;
use crate::kernels::binary::{BinOp, broadcast};
use crate::kernels::conv::{ConvKind, Geometry};
use crate::kernels::pool::AvgCount;

/// Words of a Conv's parameters.
pub const CONV_PARAMS: usize = 14;
/// Words of a pooling op's parameters.
pub const POOL_PARAMS: usize = 11;

/// The activation triple `[kind, alpha bits, beta bits]` at word `at`.
pub(super) fn act_at(cx: &Cx<'_, '_>, at: usize) -> Result<Act, Error> {
    Act::decode(cx.word(at), cx.word(at + 1), cx.word(at + 2))
        .ok_or(malformed("bad activation parameters", cx.i))
}

pub(super) fn gemm(cx: &Cx<'_, '_>) -> Result<Kind, Error> {
    cx.all_f32()?;
    cx.need(
        cx.n_inputs() == 2 || cx.n_inputs() == 3,
        "wrong number of inputs",
    )?;
    cx.params_n(3)?;
    let (a, b) = (cx.x(0)?, cx.x(1)?);
    let od = cx.output.dims;
    cx.need(
        b.storage == Storage::Const && b.dims.rank() == 2,
        "Gemm B must be a constant matrix",
    )?;
    let (k, n) = (b.dims.get(0), b.dims.get(1));
    cx.need(
        a.dims.rank() >= 1 && a.dims.as_slice()[a.dims.rank() - 1] == k,
        "Gemm A and B disagree on K",
    )?;
    let m = a.dims.elements() / k;
    cx.need(
        od.rank() == a.dims.rank() && od.elements() == m * n && od.as_slice()[od.rank() - 1] == n,
        "Gemm output shape",
    )?;
    if let Some(bias) = cx.opt(2) {
        cx.need(
            bias.storage == Storage::Const && bias.dims.elements() == n,
            "Gemm bias must be a constant of N elements",
        )?;
    }
    Ok(Kind::Gemm {
        m,
        k,
        n,
        act: act_at(cx, 0)?,
    })
}

pub(super) fn conv(cx: &Cx<'_, '_>) -> Result<Kind, Error> {
    cx.all_f32()?;
    cx.need(
        cx.n_inputs() == 2 || cx.n_inputs() == 3,
        "wrong number of inputs",
    )?;
    cx.params_n(CONV_PARAMS)?;
    let (xt, w) = (cx.x(0)?, cx.x(1)?);
    cx.need(w.storage == Storage::Const, "Conv weights must be constant")?;
    let (g, pb, pr) = window::nchw(cx, &xt.dims, &cx.output.dims)?;
    let group = cx.p(10);
    cx.need(
        group >= 1 && g.c % group == 0 && g.m % group == 0,
        "Conv group does not divide channels",
    )?;
    let g = Geometry { group, ..g };
    let wd = w.dims.as_slice();
    let spatial_ok = if xt.dims.rank() == 4 {
        wd.len() == 4 && wd[2] == g.kh && wd[3] == g.kw
    } else {
        wd.len() == 3 && wd[2] == g.kw
    };
    cx.need(
        spatial_ok && wd[0] == g.m && wd[1] == g.c / group,
        "Conv weight shape",
    )?;
    check_window(&g, pb, pr, false, cx.i)?;
    if let Some(bias) = cx.opt(2) {
        cx.need(
            bias.storage == Storage::Const && bias.dims.elements() == g.m,
            "Conv bias must be a constant of M elements",
        )?;
    }
    // The im2col scratch size, computed without overflow on 32-bit targets
    // (`Geometry::scratch_elems` assumes a validated geometry).
    let needed = match g.kind() {
        ConvKind::Im2col => (g.c / group)
            .checked_mul(g.kh)
            .and_then(|v| v.checked_mul(g.kw))
            .and_then(|v| v.checked_mul(g.ow))
            .ok_or(malformed("Conv scratch too large", cx.i))?,
        _ => 0,
    };
    if needed > 0 {
        let s = cx
            .scratch
            .ok_or(malformed("Conv needs a scratch tensor", cx.i))?;
        cx.need(
            s.dtype == crate::format::DType::F32 && s.dims.elements() >= needed,
            "Conv scratch too small",
        )?;
    }
    Ok(Kind::Conv {
        g,
        act: act_at(cx, 11)?,
    })
}

pub(super) fn binary(cx: &Cx<'_, '_>) -> Result<Kind, Error> {
    cx.all_f32()?;
    cx.inputs_n(2)?;
    cx.params_n(4)?;
    let (a, b) = (cx.x(0)?, cx.x(1)?);
    let op = BinOp::decode(cx.word(0)).ok_or(malformed("unknown binary kind", cx.i))?;
    cx.need(
        broadcast(&a.dims, &b.dims) == Some(cx.output.dims),
        "Binary shapes do not broadcast to the output",
    )?;
    Ok(Kind::Binary {
        op,
        act: act_at(cx, 1)?,
        a: a.dims,
        b: b.dims,
        y: cx.output.dims,
    })
}

pub(super) fn activation(cx: &Cx<'_, '_>) -> Result<Kind, Error> {
    cx.all_f32()?;
    cx.inputs_n(1)?;
    cx.params_n(3)?;
    cx.need(cx.x(0)?.dims == cx.output.dims, "Activation output shape")?;
    Ok(Kind::Activation(act_at(cx, 0)?))
}

pub(super) fn softmax(cx: &Cx<'_, '_>) -> Result<Kind, Error> {
    cx.all_f32()?;
    cx.inputs_n(1)?;
    cx.params_n(2)?;
    let (s, e) = (cx.p(0), cx.p(1));
    let od = cx.output.dims;
    cx.need(
        cx.x(0)?.dims == od && s < e && e <= od.rank(),
        "Softmax axes",
    )?;
    let d = od.as_slice();
    Ok(Kind::Softmax {
        outer: d[..s].iter().product(),
        n: d[s..e].iter().product(),
        inner: d[e..].iter().product(),
    })
}

pub(super) fn pool(cx: &Cx<'_, '_>, max: bool) -> Result<Kind, Error> {
    cx.all_f32()?;
    cx.inputs_n(1)?;
    cx.params_n(POOL_PARAMS)?;
    let xt = cx.x(0)?;
    let (g, pb, pr) = window::nchw(cx, &xt.dims, &cx.output.dims)?;
    cx.need(g.m == g.c, "pooling changes the channel count")?;
    check_window(&g, pb, pr, true, cx.i)?;
    // A window wholly in padding has no maximum (it would output -inf) and
    // nothing to average (exclude-pad would divide by zero).
    check_windows_touch_input(&g, cx.i)?;
    let count = if cx.word(10) == 0 {
        AvgCount::ExcludePad
    } else {
        AvgCount::IncludePad
    };
    Ok(Kind::Pool {
        g,
        pb,
        pr,
        max,
        count,
    })
}

pub(super) fn reduce_mean(cx: &Cx<'_, '_>) -> Result<Kind, Error> {
    cx.all_f32()?;
    cx.inputs_n(1)?;
    cx.params_n(1)?;
    let xd = cx.x(0)?.dims;
    let mask = cx.word(0);
    cx.need(mask != 0 && mask >> xd.rank() == 0, "ReduceMean axes")?;
    let kept: usize = (0..xd.rank())
        .filter(|d| mask & (1 << d) == 0)
        .map(|d| xd.get(d))
        .product();
    cx.need(cx.output.dims.elements() == kept, "ReduceMean output shape")?;
    Ok(Kind::ReduceMean { x: xd, mask })
}

//! Preparation of the data-movement operators, which take any element type:
//! Copy, Transpose, Concat and Pad. They copy values without interpreting them, so
//! every input must have the output's element type and quantization.

use super::Kind;
use super::check::{Cx, same_quant};
use crate::error::{Error, malformed};
use crate::format::{DType, MAX_RANK};
use crate::kernels::misc::Border;
use crate::model::TensorRecord;

/// Refuses an input whose element type or quantization differs from the output's.
fn same_type(cx: &Cx<'_, '_>, t: &TensorRecord) -> Result<(), Error> {
    cx.need(
        t.dtype == cx.output.dtype,
        "data movement changes the element type",
    )?;
    cx.need(
        same_quant(t, &cx.output),
        "data movement changes the quantization: requantize first",
    )
}

pub(super) fn copy(cx: &Cx<'_, '_>) -> Result<Kind, Error> {
    cx.inputs_n(1)?;
    let x = cx.x(0)?;
    same_type(cx, &x)?;
    cx.need(
        cx.plen() == 0 && x.dims.elements() == cx.output.dims.elements(),
        "Copy changes the element count",
    )?;
    Ok(Kind::Copy)
}

pub(super) fn transpose(cx: &Cx<'_, '_>) -> Result<Kind, Error> {
    cx.inputs_n(1)?;
    let x = cx.x(0)?;
    same_type(cx, &x)?;
    let (xd, od) = (x.dims, cx.output.dims);
    cx.need(
        cx.plen() == xd.rank() && od.rank() == xd.rank(),
        "Transpose rank",
    )?;
    let mut perm = [0; MAX_RANK];
    let mut seen = 0u32;
    for (d, slot) in perm.iter_mut().enumerate().take(xd.rank()) {
        let v = cx.p(d);
        cx.need(
            v < xd.rank() && seen & (1 << v) == 0 && od.get(d) == xd.get(v),
            "Transpose permutation",
        )?;
        seen |= 1 << v;
        *slot = v;
    }
    Ok(Kind::Transpose { x: xd, y: od, perm })
}

pub(super) fn concat(cx: &Cx<'_, '_>) -> Result<Kind, Error> {
    cx.params_n(1)?;
    let od = cx.output.dims;
    let axis = cx.p(0);
    cx.need(axis < od.rank(), "Concat axis")?;
    let mut total = 0usize;
    for k in 0..cx.n_inputs() {
        let x = cx.x(k)?;
        same_type(cx, &x)?;
        let d = x.dims;
        cx.need(d.rank() == od.rank(), "Concat rank")?;
        for a in 0..od.rank() {
            cx.need(a == axis || d.get(a) == od.get(a), "Concat shapes")?;
        }
        total = total
            .checked_add(d.get(axis))
            .ok_or(malformed("Concat output shape", cx.i))?;
    }
    cx.need(total == od.get(axis), "Concat output shape")?;
    let inner: usize = od.as_slice()[axis + 1..].iter().product();
    Ok(Kind::Concat {
        outer: od.as_slice()[..axis].iter().product(),
        row: od.get(axis) * inner,
    })
}

pub(super) fn pad(cx: &Cx<'_, '_>) -> Result<Kind, Error> {
    cx.inputs_n(1)?;
    let x = cx.x(0)?;
    same_type(cx, &x)?;
    let (xd, od) = (x.dims, cx.output.dims);
    let r = xd.rank();
    cx.need(
        cx.plen() == 2 + 2 * r && od.rank() == r,
        "wrong parameter count",
    )?;
    let value = cx.word(1);
    let border = match cx.word(0) {
        // f32 pads with the f32 in word 1; an integer tensor with its zero point
        // (real 0), and word 1 must then be 0 so a blob cannot say two things.
        0 if cx.output.dtype == DType::F32 => Border::Constant(value),
        0 => {
            cx.need(
                value == 0,
                "integer Pad constant must be 0 (the zero point pads)",
            )?;
            let zp = cx.output.quant.map_or(0, |q| q.zero_point);
            Border::Constant(zp as u32)
        }
        1 => Border::Reflect,
        2 => Border::Edge,
        _ => return Err(malformed("unknown pad mode", cx.i)),
    };
    let mut begin = [0; MAX_RANK];
    for d in 0..r {
        let (b, e) = (cx.p(2 + d), cx.p(2 + r + d));
        let n = xd.get(d);
        cx.need(
            b.checked_add(e).and_then(|s| s.checked_add(n)) == Some(od.get(d)),
            "Pad output shape",
        )?;
        if border == Border::Reflect {
            cx.need(b < n && e < n, "reflect padding wider than the input")?;
        }
        begin[d] = b;
    }
    Ok(Kind::Pad {
        x: xd,
        y: od,
        border,
        begin,
    })
}

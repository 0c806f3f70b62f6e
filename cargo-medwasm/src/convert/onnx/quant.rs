//! QuantizeLinear and DequantizeLinear, and the scale / zero point pairs every
//! quantized operator reads.
//!
//! Of constants both are folded at conversion with ONNX's arithmetic (round half
//! to even, saturate); a folded DequantizeLinear also keeps its quantized original
//! so that the lowering ([`super::qdq`]) can hand the int8 kernels the weights as
//! the model stores them, and the float value serves float operators (weights-only
//! quantized models) exactly. Of run-time tensors they become `Quantize` and
//! `Dequantize` nodes whose int8 side carries the parameters.
//!
//! The runtime holds no uint8: a run-time uint8 tensor is held as int8 with every
//! value and its zero point moved down by 128, which changes no real value
//! (`(q − zp)` is the same), and uint8 constants are moved alike when the int8
//! kernels take them.

use super::tensor::{FLOAT, INT8, UINT8, dtype_name};
use super::{Cx, OnnxNode, OpDef, R, norm_axis, shape_err, unsupported};
use crate::convert::ProblemKind;
use crate::convert::ir::{DType, Data, Op, Quant, Tensor};

pub(super) const OPS: &[OpDef] = &[
    OpDef {
        op: "QuantizeLinear",
        // `saturate` only applies to float8 outputs, which are refused.
        attrs: &["axis", "block_size", "output_dtype", "saturate"],
        translate: quantize_linear,
    },
    OpDef {
        op: "DequantizeLinear",
        attrs: &["axis", "block_size", "output_dtype"],
        translate: dequantize_linear,
    },
];

/// A scale and zero point read from constant inputs, with the ONNX element type of
/// the quantized values (the zero point's).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Params {
    /// Scales: one, or one per index along the quantized axis.
    pub scale: Vec<f32>,
    /// Zero points, in the quantized type's own range.
    pub zero_point: Vec<i64>,
    /// `I8`, `U8` or `I32`.
    pub qtype: DType,
}

/// Reads the scale at input `sk` and the optional zero point at input `zk` of `n`
/// (`what` names them in messages). Without a zero point the quantized type is
/// `default` and the zero point 0, as ONNX says.
pub(super) fn params(
    cx: &Cx,
    n: &OnnxNode<'_>,
    sk: usize,
    zk: usize,
    default: DType,
    what: &str,
) -> R<Params> {
    let s = n.input(sk, &format!("{what}_scale"))?;
    let Some(scale) = cx.t(s).f32s().map(<[f32]>::to_vec) else {
        return unsupported(format!(
            "`{what}_scale` must be a constant float tensor (it is computed at run time or not a float)"
        ));
    };
    if scale.is_empty() || scale.iter().any(|v| !v.is_finite() || *v <= 0.0) {
        return Err((
            ProblemKind::Dtype,
            format!("`{what}_scale` must hold finite positive scales, not {scale:?}"),
        ));
    }
    let (zero_point, qtype) = match n.opt_input(zk) {
        Some(z) => {
            let t = cx.t(z);
            let (Some(v), true) = (t.ints(), t.is_const()) else {
                return unsupported(format!(
                    "`{what}_zero_point` must be a constant integer tensor"
                ));
            };
            (v, t.dtype)
        }
        None => (vec![0; scale.len()], default),
    };
    if !matches!(qtype, DType::I8 | DType::U8 | DType::I32) {
        return Err((
            ProblemKind::Dtype,
            format!(
                "values quantized to {} are not supported (int8, uint8 and int32 biases are)",
                qtype.name()
            ),
        ));
    }
    if zero_point.len() != scale.len() && zero_point.len() != 1 {
        return shape_err(format!(
            "`{what}_zero_point` has {} values but `{what}_scale` {}",
            zero_point.len(),
            scale.len()
        ));
    }
    Ok(Params {
        scale,
        zero_point,
        qtype,
    })
}

impl Params {
    /// True with one scale and one zero point.
    pub fn per_tensor(&self) -> bool {
        self.scale.len() == 1 && self.zero_point.len() == 1
    }

    /// The IR quantization of a run-time tensor (activations): per tensor, int8
    /// (a uint8 zero point moved down by 128, as its values are).
    pub fn activation(&self, what: &str) -> R<Quant> {
        if !self.per_tensor() {
            return Err((
                ProblemKind::Dtype,
                format!(
                    "`{what}` is quantized per axis ({} scales); values computed at run time must be quantized per tensor",
                    self.scale.len()
                ),
            ));
        }
        let zp = match self.qtype {
            DType::I8 => self.zero_point[0],
            DType::U8 => self.zero_point[0] - 128,
            other => {
                return Err((
                    ProblemKind::Dtype,
                    format!(
                        "`{what}` is quantized to {}; values computed at run time must be int8 (or uint8)",
                        other.name()
                    ),
                ));
            }
        };
        Ok(Quant {
            scale: self.scale.clone(),
            zero_point: vec![zp],
            axis: None,
        })
    }

    /// The quantization of constant values along `axis` of a tensor of `dims`
    /// (per tensor with one scale and zero point), in their own type. A single
    /// zero point or scale beside per-axis ones serves every index.
    pub fn constant(&self, dims: &[usize], axis: i64) -> R<Quant> {
        if self.per_tensor() {
            return Ok(Quant {
                scale: self.scale.clone(),
                zero_point: self.zero_point.clone(),
                axis: None,
            });
        }
        let axis = norm_axis(axis, dims.len())?;
        let ch = dims[axis];
        let spread = |v: &[i64]| {
            if v.len() == 1 {
                vec![v[0]; ch]
            } else {
                v.to_vec()
            }
        };
        if self.scale.len() != ch && self.scale.len() != 1
            || self.zero_point.len() != ch && self.zero_point.len() != 1
        {
            return shape_err(format!(
                "per-axis scale/zero point length does not match axis {axis} of {dims:?}"
            ));
        }
        let scale = if self.scale.len() == 1 {
            vec![self.scale[0]; ch]
        } else {
            self.scale.clone()
        };
        Ok(Quant {
            scale,
            zero_point: spread(&self.zero_point),
            axis: Some(axis),
        })
    }
}

/// A constant of quantized values `data` of shape `dims` with their quantization,
/// as the IR holds it for the int8 kernels: int8 and int32 as they are, uint8
/// values and zero points moved down by 128. `None` for other element types.
pub(super) fn ir_constant(name: &str, dims: &[usize], data: &Data, quant: Quant) -> Option<Tensor> {
    let (data, quant) = match data {
        Data::I8(_) | Data::I32(_) => (data.clone(), quant),
        Data::U8(v) => (
            Data::I8(v.iter().map(|&x| (i16::from(x) - 128) as i8).collect()),
            Quant {
                zero_point: quant.zero_point.iter().map(|z| z - 128).collect(),
                ..quant
            },
        ),
        _ => return None,
    };
    Some(Tensor {
        quant: Some(quant),
        ..Tensor::constant(name, dims.to_vec(), data)
    })
}

fn dequantize_linear(cx: &mut Cx, n: &OnnxNode<'_>) -> R<()> {
    let a = &n.attrs;
    if a.int("block_size")?.unwrap_or(0) != 0 {
        return unsupported("blocked quantization (`block_size`) is not supported");
    }
    if let Some(t) = a.int("output_dtype")?
        && t != 0
        && t != i64::from(FLOAT)
    {
        return unsupported(format!(
            "`output_dtype` {} is not supported (float32 only)",
            dtype_name(t as i32)
        ));
    }
    let x = n.input(0, "x")?;
    let t = cx.t(x).clone();
    // Without a zero point, 0 of the input's ONNX type.
    let default = if cx.q.is_u8(x) { DType::U8 } else { t.dtype };
    let p = params(cx, n, 1, 2, default, "x")?;
    if t.is_const() {
        return fold_dequantize(cx, n, &t, &p);
    }
    if t.dtype != DType::I8 {
        return unsupported(format!(
            "DequantizeLinear of a run-time {} tensor is not supported (int8 and uint8 only)",
            t.dtype.name()
        ));
    }
    let q = p.activation("x")?;
    cx.assign_quant(x, &q)?;
    cx.emit(n, Op::Dequantize, vec![Some(x)], t.dims)?;
    Ok(())
}

/// DequantizeLinear of constant `x`: the f32 values (`(q − zp) · scale` in f32,
/// ONNX's arithmetic), and the quantized original kept beside them.
fn fold_dequantize(cx: &mut Cx, n: &OnnxNode<'_>, t: &Tensor, p: &Params) -> R<()> {
    let Some(q) = t.ints() else {
        return unsupported("DequantizeLinear of a float constant");
    };
    // Zero points are 8- or 32-bit integers, so `q - zp` is exact in i64; a wider
    // one is refused rather than overflowed.
    if p.zero_point.iter().any(|z| i32::try_from(*z).is_err()) {
        return shape_err("`x_zero_point` must hold 32-bit zero points");
    }
    // One scale and zero point: per tensor, and `axis` does not apply (ONNX ignores
    // it; a rank-1 bias with the default axis 1 is per-tensor).
    let quant = p.constant(&t.dims, n.attrs.int("axis")?.unwrap_or(1))?;
    let (ch, inner) = match quant.axis {
        Some(axis) => (t.dims[axis], t.dims[axis + 1..].iter().product()),
        None => (1, 1),
    };
    let out: Vec<f32> = q
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let c = (i / inner.max(1)) % ch.max(1);
            (v - quant.zero_point[c]) as f32 * quant.scale[c]
        })
        .collect();
    let id = cx.define(n, 0, Tensor::constant("", t.dims.clone(), Data::F32(out)))?;
    if let Some(data) = &t.data
        && let Some(original) = ir_constant(&n.proto.input[0], &t.dims, data, quant)
    {
        let original = cx.g.add_tensor(original);
        cx.q.quantized.insert(id, original);
    }
    Ok(())
}

fn quantize_linear(cx: &mut Cx, n: &OnnxNode<'_>) -> R<()> {
    let a = &n.attrs;
    if a.int("block_size")?.unwrap_or(0) != 0 {
        return unsupported("blocked quantization (`block_size`) is not supported");
    }
    // The output type: the zero point's, else `output_dtype`, else uint8.
    let default = match a.int("output_dtype")?.unwrap_or(0) as i32 {
        0 | UINT8 => DType::U8,
        INT8 => DType::I8,
        other => {
            return unsupported(format!(
                "`output_dtype` {} is not supported (int8 and uint8)",
                dtype_name(other)
            ));
        }
    };
    let x = n.input(0, "x")?;
    let t = cx.t(x).clone();
    if t.dtype != DType::F32 {
        return Err((
            ProblemKind::Dtype,
            format!("QuantizeLinear of a {} tensor", t.dtype.name()),
        ));
    }
    let p = params(cx, n, 1, 2, default, "y")?;
    if !matches!(p.qtype, DType::I8 | DType::U8) {
        return unsupported(format!(
            "quantization to {} is not supported (int8 and uint8)",
            p.qtype.name()
        ));
    }
    if let Some(values) = t.f32s() {
        let quant = p.constant(&t.dims, a.int("axis")?.unwrap_or(1))?;
        let data = quantize_values(values, &t.dims, &quant, p.qtype);
        cx.define(n, 0, Tensor::constant("", t.dims, data))?;
        return Ok(());
    }
    let q = p.activation("y")?;
    let y = cx.emit_q(n, Op::Quantize, vec![Some(x)], t.dims, DType::I8, Some(q))?;
    if p.qtype == DType::U8 {
        cx.q.u8.insert(y);
    }
    Ok(())
}

/// ONNX QuantizeLinear of constant values: `saturate(round_half_even(x / scale) +
/// zp)`, the division in f32, to `qtype` (int8 or uint8).
fn quantize_values(values: &[f32], dims: &[usize], quant: &Quant, qtype: DType) -> Data {
    let (ch, inner) = match quant.axis {
        Some(axis) => (dims[axis], dims[axis + 1..].iter().product::<usize>()),
        None => (1, 1),
    };
    let (lo, hi) = if qtype == DType::U8 {
        (0, 255)
    } else {
        (-128, 127)
    };
    let q: Vec<i64> = values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let c = (i / inner.max(1)) % ch.max(1);
            // `as` saturates (NaN → 0); the clamp then saturates to the type.
            ((v / quant.scale[c]).round_ties_even() as i64 + quant.zero_point[c]).clamp(lo, hi)
        })
        .collect();
    // In range by the clamp.
    Data::from_i64(qtype, q).unwrap_or(Data::I8(vec![]))
}

#[cfg(test)]
mod tests {
    use super::{Params, ir_constant, quantize_values};
    use crate::convert::ir::{DType, Data, Quant};

    #[test]
    fn constants_quantize_half_to_even_and_saturate() {
        let q = Quant {
            scale: vec![0.5],
            zero_point: vec![1],
            axis: None,
        };
        // 0.25 / 0.5 = 0.5 → 0, 0.75 / 0.5 = 1.5 → 2, -0.25 → -0.5 → -0 (even).
        let v = [0.25, 0.75, -0.25, 1000.0, -1000.0];
        assert_eq!(
            quantize_values(&v, &[5], &q, DType::I8),
            Data::I8(vec![1, 3, 1, 127, -128])
        );
        assert_eq!(
            quantize_values(&v, &[5], &q, DType::U8),
            Data::U8(vec![1, 3, 1, 255, 0])
        );
        // Per axis 0 of [2, 2]: row 1 has scale 2 and zero point -1.
        let q = Quant {
            scale: vec![1.0, 2.0],
            zero_point: vec![0, -1],
            axis: Some(0),
        };
        assert_eq!(
            quantize_values(&[1.0, -3.0, 5.0, 3.0], &[2, 2], &q, DType::I8),
            Data::I8(vec![1, -3, 1, 1])
        );
    }

    #[test]
    fn uint8_moves_to_int8_with_the_same_real_values() {
        let quant = Quant {
            scale: vec![0.1],
            zero_point: vec![130],
            axis: None,
        };
        let t = ir_constant("w", &[3], &Data::U8(vec![0, 130, 255]), quant).unwrap();
        assert_eq!(t.data, Some(Data::I8(vec![-128, 2, 127])));
        let q = t.quant.unwrap();
        assert_eq!(q.zero_point, [2]);
        // (0 − 130) = (−128 − 2): the same real value.
        let p = Params {
            scale: vec![0.1],
            zero_point: vec![130],
            qtype: DType::U8,
        };
        assert_eq!(p.activation("x").unwrap().zero_point, [2]);
        let p = Params {
            qtype: DType::I32,
            ..p
        };
        assert!(p.activation("x").is_err());
        assert!(ir_constant("f", &[1], &Data::F32(vec![1.0]), q).is_none());
    }

    #[test]
    fn per_axis_params_spread_a_single_zero_point() {
        let p = Params {
            scale: vec![0.5, 0.25],
            zero_point: vec![0],
            qtype: DType::I8,
        };
        let q = p.constant(&[2, 3], 0).unwrap();
        assert_eq!((q.zero_point, q.axis), (vec![0, 0], Some(0)));
        assert!(p.constant(&[3, 3], 0).is_err(), "3 channels, 2 scales");
        assert!(p.activation("x").is_err(), "per axis");
    }
}

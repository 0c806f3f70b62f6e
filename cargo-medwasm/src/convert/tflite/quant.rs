//! QUANTIZE (f32 → i8, or i8 → i8 requantization) and DEQUANTIZE (i8 → f32 at run
//! time; constant int8 or f16 weights are dequantized at conversion, exactly as
//! LiteRT does it once at Prepare).

use super::reader::ElemType;
use super::schema_generated::tflite as fb;
use super::{Cx, OpDef, R, TfNode, dtype_err, unsupported};
use crate::convert::ir::{DType, Data, Op};

pub(super) const OPS: &[OpDef] = &[
    OpDef {
        code: fb::BuiltinOperator::Quantize,
        name: "QUANTIZE",
        translate: quantize,
    },
    OpDef {
        code: fb::BuiltinOperator::Dequantize,
        name: "DEQUANTIZE",
        translate: dequantize,
    },
];

fn quantize(cx: &mut Cx<'_>, n: &TfNode<'_>) -> R<()> {
    n.arity(1)?;
    let (x, y) = (n.input(0, "input")?, n.outputs[0]);
    match (cx.dtype_of(x)?, cx.dtype_of(y)?) {
        (DType::F32 | DType::I8, DType::I8) => {}
        (a, b) => {
            return dtype_err(format!(
                "QUANTIZE from {} to {} is not supported (f32 or int8 to int8 only)",
                a.name(),
                b.name()
            ));
        }
    }
    cx.per_tensor_int8(y)?;
    if cx.dtype_of(x)? == DType::I8 {
        cx.per_tensor_int8(x)?;
    }
    let dims = cx.ft(x).shape.clone();
    let xi = cx.input(n, 0, "input")?;
    cx.emit(n, Op::Quantize, vec![Some(xi)], dims)?;
    Ok(())
}

fn dequantize(cx: &mut Cx<'_>, n: &TfNode<'_>) -> R<()> {
    n.arity(1)?;
    let (x, y) = (n.input(0, "input")?, n.outputs[0]);
    if cx.dtype_of(y)? != DType::F32 {
        return dtype_err("DEQUANTIZE must produce FLOAT32");
    }
    let ft = cx.ft(x).clone();
    let dims = ft.shape.clone();
    if let Some(bytes) = ft.data {
        // Constant weights: dequantized once here, as LiteRT does at Prepare.
        let values = match ft.dtype {
            ElemType::Known(fb::TensorType::Float16) => bytes
                .chunks_exact(2)
                .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
                .collect(),
            ElemType::Known(fb::TensorType::Int8) => {
                let Some(q) = &ft.quant else {
                    return dtype_err(format!(
                        "int8 constant `{}` has no quantization parameters",
                        ft.name
                    ));
                };
                // Index along the quantized dimension of each element.
                let (dim_len, inner) = match q.dim {
                    Some(d) => (dims[d], dims[d + 1..].iter().product::<usize>()),
                    None => (1, 1),
                };
                bytes
                    .iter()
                    .enumerate()
                    .map(|(i, &b)| {
                        let c = (i / inner) % dim_len;
                        // The exact f32 product of the scale and a 9-bit integer,
                        // rounded once: what LiteRT computes in f64 then narrows.
                        q.scale[c] * ((b as i8) as i64 - q.zero_point[c]) as f32
                    })
                    .collect()
            }
            _ => {
                return dtype_err(format!(
                    "DEQUANTIZE of a {} constant is not supported (INT8 or FLOAT16)",
                    ft.dtype.name()
                ));
            }
        };
        let id = cx.new_constant(
            format!("{}.dequantized", ft.name),
            dims.clone(),
            Data::F32(values),
        );
        if cx.ft(y).shape != dims {
            return dtype_err("DEQUANTIZE changes the shape");
        }
        cx.alias(n, id);
        return Ok(());
    }
    if cx.dtype_of(x)? != DType::I8 {
        return unsupported(format!(
            "DEQUANTIZE at run time of {} is not supported (int8 only)",
            ft.dtype.name()
        ));
    }
    cx.per_tensor_int8(x)?;
    let xi = cx.input(n, 0, "input")?;
    cx.emit(n, Op::Dequantize, vec![Some(xi)], dims)?;
    Ok(())
}

/// IEEE 754 binary16 → binary32 (exact: every half is a float).
fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let frac = u32::from(h & 0x3ff);
    let bits = match (exp, frac) {
        (0, 0) => sign,
        // Subnormal: value frac · 2^-24, exact in f32.
        (0, f) => {
            let magnitude = f as f32 * 2f32.powi(-24);
            return if sign != 0 { -magnitude } else { magnitude };
        }
        (31, 0) => sign | 0x7f80_0000,
        (31, f) => sign | 0x7fc0_0000 | (f << 13),
        (e, f) => sign | ((e + 112) << 23) | (f << 13),
    };
    f32::from_bits(bits)
}

#[cfg(test)]
mod tests {
    use super::f16_to_f32;

    #[test]
    fn halves_widen_exactly() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x8001), -(2f32.powi(-24)));
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
        assert!(f16_to_f32(0x7c00).is_infinite() && f16_to_f32(0x7e00).is_nan());
        assert_eq!(f16_to_f32(0x8000).to_bits(), (-0.0f32).to_bits());
    }
}

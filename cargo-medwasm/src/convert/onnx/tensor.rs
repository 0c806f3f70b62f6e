//! ONNX element types and `TensorProto` values (initializers, `Constant` values) as
//! typed IR constants.

use tract_onnx::pb;

use crate::convert::ir::{Data, Tensor, checked_len};

/// ONNX TensorProto data types we read.
pub const FLOAT: i32 = 1;
pub const UINT8: i32 = 2;
pub const INT8: i32 = 3;
pub const INT32: i32 = 6;
pub const INT64: i32 = 7;
pub const DOUBLE: i32 = 11;

/// ONNX element type name for messages.
pub fn dtype_name(t: i32) -> String {
    match t {
        FLOAT => "float32".into(),
        UINT8 => "uint8".into(),
        INT8 => "int8".into(),
        INT32 => "int32".into(),
        INT64 => "int64".into(),
        DOUBLE => "float64".into(),
        10 => "float16".into(),
        9 => "bool".into(),
        other => format!("type {other}"),
    }
}

/// Reads an initializer or Constant value into a [`Tensor`]. float64 becomes f32:
/// the runtime computes in f32, and exporters use doubles only for small constants.
pub fn tensor_from_proto(t: &pb::TensorProto) -> Result<Tensor, String> {
    if t.data_location == Some(1) || !t.external_data.is_empty() {
        return Err("weights stored in an external file are not supported; save the model with the weights inside (onnx.save(model, path, save_as_external_data=False))".into());
    }
    if let Some(d) = t.dims.iter().find(|&&d| d < 0) {
        return Err(format!(
            "`{}` has a negative dimension {d} in its shape {:?}",
            t.name, t.dims
        ));
    }
    let dims: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
    let n = checked_len(&dims)
        .ok_or_else(|| format!("`{}` has an impossible shape {:?}", t.name, t.dims))?;
    let raw = &t.raw_data;
    let check = |len: usize| {
        if len == n {
            Ok(())
        } else {
            Err(format!(
                "`{}` holds {len} values but its shape needs {n}",
                t.name
            ))
        }
    };
    // Raw data is little-endian by the ONNX spec; `chunks_exact` drops a ragged
    // tail, which the length check then reports.
    let data = match t.data_type {
        FLOAT => {
            let v: Vec<f32> = if raw.is_empty() {
                t.float_data.clone()
            } else {
                raw.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect()
            };
            check(v.len())?;
            Data::F32(v)
        }
        DOUBLE => {
            let v: Vec<f32> = if raw.is_empty() {
                t.double_data.iter().map(|&x| x as f32).collect()
            } else {
                raw.chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32)
                    .collect()
            };
            check(v.len())?;
            Data::F32(v)
        }
        INT64 => {
            let v: Vec<i64> = if raw.is_empty() {
                t.int64_data.clone()
            } else {
                raw.chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                    .collect()
            };
            check(v.len())?;
            Data::I64(v)
        }
        INT32 => {
            let v: Vec<i32> = if raw.is_empty() {
                t.int32_data.clone()
            } else {
                raw.chunks_exact(4)
                    .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect()
            };
            check(v.len())?;
            Data::I32(v)
        }
        // Without raw data, 8-bit values are stored widened in `int32_data`.
        INT8 => {
            let v: Vec<i8> = if raw.is_empty() {
                t.int32_data.iter().map(|&x| x as i8).collect()
            } else {
                raw.iter().map(|&b| b as i8).collect()
            };
            check(v.len())?;
            Data::I8(v)
        }
        UINT8 => {
            let v: Vec<u8> = if raw.is_empty() {
                t.int32_data.iter().map(|&x| x as u8).collect()
            } else {
                raw.clone()
            };
            check(v.len())?;
            Data::U8(v)
        }
        other => {
            return Err(format!(
                "`{}` has element type {}, which is not supported",
                t.name,
                dtype_name(other)
            ));
        }
    };
    Ok(Tensor::constant(t.name.clone(), dims, data))
}

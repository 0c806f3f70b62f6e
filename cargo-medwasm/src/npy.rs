//! NumPy `.npy` files, the format test vectors are stored in (the same one
//! `../shared/models` uses): read with `npyz` (float and integer dtypes), written as
//! little-endian f32 exactly as `np.save` lays them out.

use std::path::Path;

use thiserror::Error;

/// An array with its shape, in C order, its elements held as f32 (exact for every
/// integer a quantized model stores).
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// Elements in C (row-major) order.
    pub data: Vec<f32>,
    /// Whether the elements are integers (the file held an integer dtype): quantized
    /// values such as int8 test vectors, not real numbers.
    pub integers: bool,
}

/// Why a `.npy` file could not be read.
#[derive(Debug, Error)]
pub enum NpyError {
    /// The file could not be read.
    #[error("cannot read `{path}`: {source}")]
    Io {
        /// File that failed.
        path: String,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The file is not a `.npy` file this reader understands.
    #[error("`{path}` is not a supported .npy file: {why}")]
    Format {
        /// File that failed.
        path: String,
        /// What is wrong with it.
        why: String,
    },
}

impl Array {
    /// Number of leading samples (first dimension), 1 for a scalar.
    pub fn samples(&self) -> usize {
        self.shape.first().copied().unwrap_or(1)
    }

    /// Elements of sample `i` when the array is `[samples, ...]`.
    pub fn sample(&self, i: usize) -> Option<&[f32]> {
        let n = self.samples();
        if n == 0 || i >= n {
            return None;
        }
        let per = self.data.len() / n;
        self.data.get(i * per..(i + 1) * per)
    }

    /// Reads a `.npy` file of dtype `<f4` (or `<f8`, converted), C order.
    pub fn read(path: &Path) -> Result<Array, NpyError> {
        let bytes = std::fs::read(path).map_err(|source| NpyError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Array::parse(&bytes).map_err(|why| NpyError::Format {
            path: path.display().to_string(),
            why,
        })
    }

    /// Parses the bytes of a `.npy` file (read by `npyz`): float32/64 and 8- to
    /// 64-bit integers, little-endian, C order. Integers must fit an f32 exactly
    /// (|x| ≤ 2^24), which every int8/uint8 and int16 value does.
    pub fn parse(bytes: &[u8]) -> Result<Array, String> {
        let mut data = bytes;
        let header = npyz::NpyHeader::from_reader(&mut data).map_err(|e| e.to_string())?;
        if header.order() == npyz::Order::Fortran {
            return Err(
                "Fortran-order arrays are not supported; save with np.ascontiguousarray".into(),
            );
        }
        let shape = header
            .shape()
            .iter()
            .map(|&d| usize::try_from(d).map_err(|_| "shape overflows".to_string()))
            .collect::<Result<Vec<usize>, String>>()?;
        let count = shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .ok_or("shape overflows")?;
        let npyz::DType::Plain(ty) = header.dtype() else {
            return Err("structured arrays are not supported; store a plain numeric array".into());
        };
        let descr = ty.to_string();
        let supported = ty.endianness() != npyz::Endianness::Big
            && matches!(
                (ty.type_char(), ty.size_field()),
                (npyz::TypeChar::Float, 4 | 8)
                    | (npyz::TypeChar::Int | npyz::TypeChar::Uint, 1 | 2 | 4 | 8)
            );
        if !supported {
            return Err(format!(
                "dtype `{descr}` is not supported; store vectors as little-endian float32 (`<f4`), or as 8- to 64-bit integers"
            ));
        }
        let need = count
            .checked_mul(ty.size_field() as usize)
            .ok_or("shape overflows")?;
        if data.len() != need {
            return Err(format!(
                "shape {shape:?} needs {need} data bytes but the file has {}",
                data.len()
            ));
        }
        let file = npyz::NpyFile::with_header(header, data);
        let io = |e: std::io::Error| e.to_string();
        let exact = |v: i128| -> Result<f32, String> {
            if v.unsigned_abs() > 1 << 24 {
                Err(format!(
                    "the integer {v} does not fit a float32 exactly (|x| > 2^24); store such vectors as `<f4`"
                ))
            } else {
                Ok(v as f32)
            }
        };
        let data: Vec<f32> = match (ty.type_char(), ty.size_field()) {
            (npyz::TypeChar::Float, 4) => file.into_vec::<f32>().map_err(io)?,
            (npyz::TypeChar::Float, _) => file
                .into_vec::<f64>()
                .map_err(io)?
                .into_iter()
                .map(|v| v as f32)
                .collect(),
            (npyz::TypeChar::Int, 1) => file
                .into_vec::<i8>()
                .map_err(io)?
                .into_iter()
                .map(f32::from)
                .collect(),
            (npyz::TypeChar::Uint, 1) => file
                .into_vec::<u8>()
                .map_err(io)?
                .into_iter()
                .map(f32::from)
                .collect(),
            (npyz::TypeChar::Int, 2) => file
                .into_vec::<i16>()
                .map_err(io)?
                .into_iter()
                .map(f32::from)
                .collect(),
            (npyz::TypeChar::Uint, 2) => file
                .into_vec::<u16>()
                .map_err(io)?
                .into_iter()
                .map(f32::from)
                .collect(),
            (npyz::TypeChar::Int, 4) => file
                .into_vec::<i32>()
                .map_err(io)?
                .into_iter()
                .map(|v| exact(v.into()))
                .collect::<Result<_, _>>()?,
            (npyz::TypeChar::Uint, 4) => file
                .into_vec::<u32>()
                .map_err(io)?
                .into_iter()
                .map(|v| exact(v.into()))
                .collect::<Result<_, _>>()?,
            (npyz::TypeChar::Int, _) => file
                .into_vec::<i64>()
                .map_err(io)?
                .into_iter()
                .map(|v| exact(v.into()))
                .collect::<Result<_, _>>()?,
            _ => file
                .into_vec::<u64>()
                .map_err(io)?
                .into_iter()
                .map(|v| exact(v.into()))
                .collect::<Result<_, _>>()?,
        };
        Ok(Array {
            shape,
            data,
            integers: ty.type_char() != npyz::TypeChar::Float,
        })
    }

    /// An f32 array.
    pub fn floats(shape: Vec<usize>, data: Vec<f32>) -> Array {
        Array {
            shape,
            data,
            integers: false,
        }
    }

    /// Serializes as a version 1 `.npy` file laid out as `np.save` does: the header
    /// padded so that the data starts 64-byte aligned (npyz's writer aligns to 16, so
    /// files would differ from NumPy's byte for byte). Floats are `<f4`; integers are
    /// `|i1` when every value fits an i8, else `<i4`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let descr = match self.integers {
            false => "<f4",
            true if self.data.iter().all(|&v| (-128.0..=127.0).contains(&v)) => "|i1",
            true => "<i4",
        };
        let shape = match self.shape.len() {
            1 => format!("({},)", self.shape[0]),
            _ => format!(
                "({})",
                self.shape
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let mut header =
            format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        let unpadded = 10 + header.len() + 1;
        header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
        header.push('\n');
        let mut out = Vec::with_capacity(10 + header.len() + self.data.len() * 4);
        out.extend_from_slice(b"\x93NUMPY\x01\x00");
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        for &v in &self.data {
            match descr {
                "<f4" => out.extend_from_slice(&v.to_le_bytes()),
                // Integer arrays hold exact integers (checked ranges above and at read).
                "|i1" => out.push(v as i8 as u8),
                _ => out.extend_from_slice(&(v as i32).to_le_bytes()),
            }
        }
        out
    }

    /// Writes it as [`Array::to_bytes`] lays it out.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.to_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let a = Array::floats(vec![2, 3], vec![1.0, -2.0, 3.5, 0.0, f32::MAX, -0.25]);
        let bytes = a.to_bytes();
        assert_eq!(
            (bytes.len() - 6 * 4) % 64,
            0,
            "data must start 64-byte aligned"
        );
        assert_eq!(Array::parse(&bytes).unwrap(), a);
        assert_eq!(a.sample(1).unwrap(), &[0.0, f32::MAX, -0.25]);
        assert_eq!(a.sample(2), None);
    }

    #[test]
    fn rejects_truncated_and_wrong_dtype() {
        let a = Array::floats(vec![4], vec![1.0; 4]);
        let bytes = a.to_bytes();
        assert!(
            Array::parse(&bytes[..bytes.len() - 1])
                .unwrap_err()
                .contains("needs 16 data bytes")
        );
        assert!(Array::parse(&bytes[..5]).is_err());
        // Swap the dtype in place: the header is ASCII, the magic and data are not.
        let mut bools = bytes.clone();
        let at = bools
            .windows(3)
            .position(|w| w == b"<f4")
            .expect("header names its dtype");
        bools[at..at + 3].copy_from_slice(b"|b1");
        let err = Array::parse(&bools).unwrap_err();
        assert!(err.contains("`|b1` is not supported"), "{err}");
    }

    #[test]
    fn reads_integer_vectors() {
        // `np.save(f, np.array([[-128, 0, 127]], dtype=np.int8))`, header as NumPy writes it.
        let mut header = "{'descr': '|i1', 'fortran_order': False, 'shape': (1, 3), }".to_string();
        header.push_str(&" ".repeat((64 - (10 + header.len() + 1) % 64) % 64));
        header.push('\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(&[0x80, 0, 0x7f]);
        let a = Array::parse(&bytes).unwrap();
        assert_eq!(a.shape, [1, 3]);
        assert_eq!(a.data, [-128.0, 0.0, 127.0]);
        assert!(a.integers);
        // Written back as int8, byte for byte what NumPy wrote.
        assert_eq!(a.to_bytes(), bytes);
        let wide = Array {
            data: vec![-129.0, 0.0, 127.0],
            ..a.clone()
        };
        assert_eq!(Array::parse(&wide.to_bytes()).unwrap(), wide);

        let mut wide = bytes.clone();
        let at = wide.windows(3).position(|w| w == b"|i1").unwrap();
        wide[at..at + 3].copy_from_slice(b"<i4");
        wide.truncate(wide.len() - 3);
        wide.extend_from_slice(&(1i32 << 25).to_le_bytes());
        wide.extend_from_slice(&[0; 8]);
        let err = Array::parse(&wide).unwrap_err();
        assert!(err.contains("does not fit a float32 exactly"), "{err}");
    }
}

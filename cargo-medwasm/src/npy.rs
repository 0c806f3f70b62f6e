//! Minimal reader and writer for NumPy `.npy` files holding little-endian f32 arrays,
//! the format test vectors are stored in (the same one `../shared/models` uses).

use std::path::Path;

use thiserror::Error;

/// An f32 array with its shape, in C order.
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// Elements in C (row-major) order.
    pub data: Vec<f32>,
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

    /// Parses the bytes of a `.npy` file.
    pub fn parse(bytes: &[u8]) -> Result<Array, String> {
        if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
            return Err("missing the `\\x93NUMPY` magic".into());
        }
        let major = bytes[6];
        let (header_len, start) = match major {
            1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10usize),
            2 | 3 => {
                if bytes.len() < 12 {
                    return Err("truncated header".into());
                }
                (
                    u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                    12,
                )
            }
            v => return Err(format!("format version {v} is not supported")),
        };
        let end = start
            .checked_add(header_len)
            .filter(|&e| e <= bytes.len())
            .ok_or("truncated header")?;
        let header = std::str::from_utf8(&bytes[start..end]).map_err(|_| "header is not text")?;
        let descr = dict_value(header, "descr").ok_or("header has no `descr`")?;
        let fortran = dict_value(header, "fortran_order").ok_or("header has no `fortran_order`")?;
        let shape_text = dict_value(header, "shape").ok_or("header has no `shape`")?;
        if fortran.trim() != "False" {
            return Err(
                "Fortran-order arrays are not supported; save with np.ascontiguousarray".into(),
            );
        }
        let shape = parse_shape(shape_text)?;
        let count = shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .ok_or("shape overflows")?;
        let body = &bytes[end..];
        let descr = descr.trim().trim_matches(|c| c == '\'' || c == '"');
        let data: Vec<f32> = match descr {
            "<f4" | "|f4" => {
                if body.len() != count * 4 {
                    return Err(format!(
                        "shape {shape:?} needs {} data bytes but the file has {}",
                        count * 4,
                        body.len()
                    ));
                }
                body.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect()
            }
            "<f8" => {
                if body.len() != count * 8 {
                    return Err(format!(
                        "shape {shape:?} needs {} data bytes but the file has {}",
                        count * 8,
                        body.len()
                    ));
                }
                body.chunks_exact(8)
                    .map(|c| {
                        let mut b = [0u8; 8];
                        b.copy_from_slice(c);
                        f64::from_le_bytes(b) as f32
                    })
                    .collect()
            }
            other => {
                return Err(format!(
                    "dtype `{other}` is not supported; store vectors as little-endian float32 (`<f4`)"
                ));
            }
        };
        Ok(Array { shape, data })
    }

    /// Serializes as a version 1 `.npy` file of dtype `<f4`.
    pub fn to_bytes(&self) -> Vec<u8> {
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
        let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
        // The header is padded with spaces so that the data starts 64-byte aligned.
        let unpadded = 10 + header.len() + 1;
        header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
        header.push('\n');
        let mut out = Vec::with_capacity(10 + header.len() + self.data.len() * 4);
        out.extend_from_slice(b"\x93NUMPY\x01\x00");
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        for v in &self.data {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    /// Writes a version 1 `.npy` file of dtype `<f4`.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.to_bytes())
    }
}

/// Finds the text of `'key': value` in a NumPy header dict.
fn dict_value<'h>(header: &'h str, key: &str) -> Option<&'h str> {
    let pat_single = format!("'{key}':");
    let pat_double = format!("\"{key}\":");
    let at = header
        .find(&pat_single)
        .map(|i| i + pat_single.len())
        .or_else(|| header.find(&pat_double).map(|i| i + pat_double.len()))?;
    let rest = header[at..].trim_start();
    if rest.starts_with('(') {
        let close = rest.find(')')?;
        Some(&rest[..=close])
    } else {
        let end = rest.find([',', '}']).unwrap_or(rest.len());
        Some(&rest[..end])
    }
}

fn parse_shape(text: &str) -> Result<Vec<usize>, String> {
    let inner = text
        .trim()
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .ok_or_else(|| format!("shape `{text}` is not a tuple"))?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.trim_end_matches('L')
                .parse::<usize>()
                .map_err(|_| format!("shape `{text}` has a non-integer dimension"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let a = Array {
            shape: vec![2, 3],
            data: vec![1.0, -2.0, 3.5, 0.0, f32::MAX, -0.25],
        };
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
        let a = Array {
            shape: vec![4],
            data: vec![1.0; 4],
        };
        let bytes = a.to_bytes();
        assert!(
            Array::parse(&bytes[..bytes.len() - 1])
                .unwrap_err()
                .contains("needs 16 data bytes")
        );
        assert!(Array::parse(&bytes[..5]).is_err());
        // Swap the dtype in place: the header is ASCII, the magic and data are not.
        let mut ints = bytes.clone();
        let at = ints
            .windows(3)
            .position(|w| w == b"<f4")
            .expect("header names its dtype");
        ints[at + 1] = b'i';
        let err = Array::parse(&ints).unwrap_err();
        assert!(err.contains("`<i4` is not supported"), "{err}");
    }
}

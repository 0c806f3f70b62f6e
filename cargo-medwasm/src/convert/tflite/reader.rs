//! Reading a `.tflite` flatbuffer through the generated accessors into plain,
//! checked structures. Every accessor of the generated code returns a `Result`, so a
//! truncated or hostile file is an error here, never a panic.
//!
//! What makes the whole file unreadable (no `TFL3` identifier, a broken table, an
//! index out of range in the graph's structure) is a [`ReadError`]; what concerns
//! one tensor (an unknown element type, sparsity, a buffer of the wrong size, bad
//! quantization parameters) is kept on that tensor, so the frontend reports it
//! where it is used, together with every other problem.

use planus::ReadAsRoot as _;

use super::schema_generated::tflite as fb;

/// Why a file cannot be read at all.
pub(crate) type ReadError = String;

/// Element type of a tensor as the file states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ElemType {
    /// A type of the schema.
    Known(fb::TensorType),
    /// A value this schema does not know (a newer converter's).
    Unknown(i128),
}

impl ElemType {
    /// Bytes per element of the fixed-size types whose data the frontend reads.
    pub fn size(self) -> Option<usize> {
        use fb::TensorType as T;
        match self {
            ElemType::Known(T::Float32 | T::Int32 | T::Uint32) => Some(4),
            ElemType::Known(T::Float16 | T::Int16 | T::Uint16 | T::Bfloat16) => Some(2),
            ElemType::Known(T::Int8 | T::Uint8 | T::Bool) => Some(1),
            ElemType::Known(T::Int64 | T::Uint64 | T::Float64 | T::Complex64) => Some(8),
            ElemType::Known(T::Complex128) => Some(16),
            _ => None,
        }
    }

    /// Name in messages, as TFLite spells it.
    pub fn name(self) -> String {
        use fb::TensorType as T;
        match self {
            ElemType::Known(t) => match t {
                T::Float32 => "FLOAT32",
                T::Float16 => "FLOAT16",
                T::Int32 => "INT32",
                T::Uint8 => "UINT8",
                T::Int64 => "INT64",
                T::String => "STRING",
                T::Bool => "BOOL",
                T::Int16 => "INT16",
                T::Complex64 => "COMPLEX64",
                T::Int8 => "INT8",
                T::Float64 => "FLOAT64",
                T::Complex128 => "COMPLEX128",
                T::Uint64 => "UINT64",
                T::Resource => "RESOURCE",
                T::Variant => "VARIANT",
                T::Uint32 => "UINT32",
                T::Uint16 => "UINT16",
                T::Int4 => "INT4",
                T::Bfloat16 => "BFLOAT16",
            }
            .to_string(),
            ElemType::Unknown(v) => format!("type {v} (unknown to this schema)"),
        }
    }
}

/// Quantization parameters as the file states them, checked.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct FileQuant {
    /// Scales: one, or one per index along `dim`.
    pub scale: Vec<f32>,
    /// Zero points, as many as scales (a single one is broadcast).
    pub zero_point: Vec<i64>,
    /// The quantized dimension of per-axis parameters (`None` per tensor).
    pub dim: Option<usize>,
}

/// One tensor of the main subgraph.
#[derive(Debug, Clone)]
pub(super) struct FileTensor<'a> {
    /// Name in the file.
    pub name: String,
    /// Element type.
    pub dtype: ElemType,
    /// Static shape.
    pub shape: Vec<usize>,
    /// Axes whose size is unknown until run time (`shape_signature` −1).
    pub dynamic_axes: Vec<usize>,
    /// Bytes of a constant, its length checked against the shape.
    pub data: Option<&'a [u8]>,
    /// Quantization parameters, if quantized.
    pub quant: Option<FileQuant>,
    /// Why this tensor cannot be used, if it cannot.
    pub problem: Option<String>,
}

/// One operator of the main subgraph.
#[derive(Debug, Clone)]
pub(super) struct FileOperator<'a> {
    /// Builtin operator code: `max(builtin_code, deprecated_builtin_code)`.
    pub code: i32,
    /// `custom_code` of a custom operator.
    pub custom: Option<String>,
    /// Input tensor indices (`None` for an absent optional input, −1 in the file).
    pub inputs: Vec<Option<usize>>,
    /// Output tensor indices.
    pub outputs: Vec<usize>,
    /// Builtin options, or why they cannot be read.
    pub options: Result<Option<fb::BuiltinOptionsRef<'a>>, String>,
    /// Fields set that none of the supported builtin operators uses.
    pub extras: Vec<&'static str>,
}

/// A signature: its key and the alias names of its inputs and outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct FileSignature {
    /// `signature_key`.
    pub key: String,
    /// Input aliases, in the file's order.
    pub inputs: Vec<String>,
    /// Output aliases, in the file's order.
    pub outputs: Vec<String>,
    /// The subgraph it runs.
    pub subgraph: usize,
}

/// The parts of a model the frontend reads.
#[derive(Debug, Clone)]
pub(super) struct File<'a> {
    /// Schema version (`Model.version`, 3 for current files).
    pub version: u32,
    /// `Model.description`.
    pub description: String,
    /// Number of subgraphs; only the first one (the main graph) is converted.
    pub subgraphs: usize,
    /// Tensors of the main subgraph.
    pub tensors: Vec<FileTensor<'a>>,
    /// Graph input tensor indices.
    pub inputs: Vec<usize>,
    /// Graph output tensor indices.
    pub outputs: Vec<usize>,
    /// Operators in execution order.
    pub operators: Vec<FileOperator<'a>>,
    /// The `min_runtime_version` metadata, if any.
    pub min_runtime_version: Option<String>,
    /// Signature definitions.
    pub signatures: Vec<FileSignature>,
}

/// Reads `bytes` as a TFLite model.
pub(super) fn read(bytes: &[u8]) -> Result<File<'_>, ReadError> {
    if bytes.len() < 8 {
        return Err(format!(
            "the file is {} bytes long, too short for a flatbuffer",
            bytes.len()
        ));
    }
    if &bytes[4..8] != b"TFL3" {
        return Err(
            "the file has no `TFL3` flatbuffer identifier at bytes 4..8 (is it a TFLite model?)"
                .into(),
        );
    }
    let model = fb::ModelRef::read_as_root(bytes).map_err(|e| broken("the model", e))?;
    let f = |e: planus::Error| broken("the model", e);
    let version = model.version().map_err(f)?;
    let description = model.description().map_err(f)?.unwrap_or("").to_string();
    let buffers: Vec<fb::BufferRef<'_>> = match model.buffers().map_err(f)? {
        Some(v) => v
            .iter()
            .enumerate()
            .map(|(i, b)| b.map_err(|e| broken(&format!("buffer {i}"), e)))
            .collect::<Result<_, _>>()?,
        None => vec![],
    };
    let buffer_bytes = |index: u32, what: &str| -> Result<Option<&[u8]>, ReadError> {
        let Some(b) = buffers.get(index as usize) else {
            return Err(format!(
                "{what} refers to buffer {index} but the model has {}",
                buffers.len()
            ));
        };
        let g = |e| broken(&format!("buffer {index}"), e);
        if let Some(data) = b.data().map_err(g)?
            && !data.is_empty()
        {
            return Ok(Some(data));
        }
        // Models over 2 GiB keep buffers after the flatbuffer, at an offset from
        // the start of the file (only meaningful when above 1).
        let (offset, size) = (b.offset().map_err(g)?, b.size().map_err(g)?);
        if offset > 1 {
            let range = usize::try_from(offset)
                .ok()
                .zip(usize::try_from(size).ok())
                .and_then(|(o, s)| Some(o..o.checked_add(s)?))
                .filter(|r| r.end <= bytes.len());
            return match range {
                Some(r) => Ok(Some(&bytes[r])),
                None => Err(format!(
                    "buffer {index} lies at bytes {offset}..+{size}, past the end of the {}-byte file",
                    bytes.len()
                )),
            };
        }
        Ok(None)
    };

    let codes = read_codes(&model)?;

    let subgraphs = model.subgraphs().map_err(f)?;
    let subgraph_count = subgraphs.map_or(0, |v| v.len());
    let Some(sg) = subgraphs.and_then(|v| v.get(0)) else {
        return Err("the model has no subgraph".into());
    };
    let sg = sg.map_err(|e| broken("subgraph 0", e))?;
    let g = |e| broken("subgraph 0", e);

    let mut tensors = vec![];
    if let Some(list) = sg.tensors().map_err(g)? {
        for (i, t) in list.iter().enumerate() {
            let t = t.map_err(|e| broken(&format!("tensor {i}"), e))?;
            tensors.push(read_tensor(i, &t, &buffer_bytes)?);
        }
    }
    let nt = tensors.len();
    let index = |v: i32, what: &str| -> Result<usize, ReadError> {
        usize::try_from(v).ok().filter(|&i| i < nt).ok_or_else(|| {
            format!("{what} refers to tensor {v} but the main subgraph has {nt} tensors")
        })
    };
    let ids = |v: Option<planus::Vector<'_, i32>>, what: &str| -> Result<Vec<usize>, ReadError> {
        v.map(|v| v.iter().map(|i| index(i, what)).collect())
            .unwrap_or(Ok(vec![]))
    };
    let inputs = ids(sg.inputs().map_err(g)?, "a graph input")?;
    let outputs = ids(sg.outputs().map_err(g)?, "a graph output")?;

    let mut operators = vec![];
    if let Some(list) = sg.operators().map_err(g)? {
        for (k, op) in list.iter().enumerate() {
            let what = format!("operator {k}");
            let op = op.map_err(|e| broken(&what, e))?;
            let h = |e| broken(&what, e);
            let opcode = op.opcode_index().map_err(h)? as usize;
            let Some((code, custom)) = codes.get(opcode).cloned() else {
                return Err(format!(
                    "{what} uses operator code {opcode} but the model lists {}",
                    codes.len()
                ));
            };
            let inputs = match op.inputs().map_err(h)? {
                Some(v) => v
                    .iter()
                    .map(|i| {
                        if i == -1 {
                            Ok(None)
                        } else {
                            index(i, &format!("an input of {what}")).map(Some)
                        }
                    })
                    .collect::<Result<_, _>>()?,
                None => vec![],
            };
            let outputs = ids(op.outputs().map_err(h)?, &format!("an output of {what}"))?;
            let mut extras = vec![];
            if op
                .custom_options()
                .map_err(h)?
                .is_some_and(|c| !c.is_empty())
            {
                extras.push("custom_options");
            }
            if op
                .mutating_variable_inputs()
                .map_err(h)?
                .is_some_and(|v| v.iter().any(|m| m))
            {
                extras.push("mutating_variable_inputs");
            }
            if op
                .intermediates()
                .map_err(h)?
                .is_some_and(|v| !v.is_empty())
            {
                extras.push("intermediates");
            }
            if op.large_custom_options_size().map_err(h)? > 0 {
                extras.push("large_custom_options");
            }
            // The second options union only holds StableHLO options; an unknown tag
            // there is as unsupported as a known one.
            if !matches!(op.builtin_options_2(), Ok(None)) {
                extras.push("builtin_options_2");
            }
            operators.push(FileOperator {
                code,
                custom,
                inputs,
                outputs,
                options: op
                    .builtin_options()
                    .map_err(|e| format!("its options cannot be read: {}", e.error_kind)),
                extras,
            });
        }
    }

    let mut min_runtime_version = None;
    if let Some(list) = model.metadata().map_err(f)? {
        for (i, m) in list.iter().enumerate() {
            let what = format!("metadata {i}");
            let m = m.map_err(|e| broken(&what, e))?;
            let h = |e| broken(&what, e);
            if m.name().map_err(h)? == Some("min_runtime_version") {
                let data = buffer_bytes(m.buffer().map_err(h)?, &what)?.unwrap_or(&[]);
                // ASCII, NUL-padded to 16 bytes.
                let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
                min_runtime_version = Some(String::from_utf8_lossy(&data[..end]).into_owned());
            }
        }
    }

    let mut signatures = vec![];
    if let Some(list) = model.signature_defs().map_err(f)? {
        for (i, s) in list.iter().enumerate() {
            let what = format!("signature {i}");
            let s = s.map_err(|e| broken(&what, e))?;
            let h = |e| broken(&what, e);
            let names = |v: Option<planus::Vector<'_, planus::Result<fb::TensorMapRef<'_>>>>| {
                v.map(|v| {
                    v.iter()
                        .map(|m| Ok(m.and_then(|m| m.name())?.unwrap_or("").to_string()))
                        .collect::<Result<Vec<String>, planus::Error>>()
                })
                .unwrap_or(Ok(vec![]))
            };
            signatures.push(FileSignature {
                key: s.signature_key().map_err(h)?.unwrap_or("").to_string(),
                inputs: names(s.inputs().map_err(h)?).map_err(h)?,
                outputs: names(s.outputs().map_err(h)?).map_err(h)?,
                subgraph: s.subgraph_index().map_err(h)? as usize,
            });
        }
    }

    Ok(File {
        version,
        description,
        subgraphs: subgraph_count,
        tensors,
        inputs,
        outputs,
        operators,
        min_runtime_version,
        signatures,
    })
}

/// A planus error in `what`, as a message.
fn broken(what: &str, e: planus::Error) -> ReadError {
    format!("{what} is malformed: {}", e.error_kind)
}

/// The operator codes: `(builtin code, custom code)`. The builtin code is
/// `max(builtin_code, deprecated_builtin_code)`, as `tflite::GetBuiltinCode` reads
/// it: old files lack `builtin_code` (0), and codes from 127 on keep the byte at
/// 127 (PLACEHOLDER_FOR_GREATER_OP_CODES).
fn read_codes(model: &fb::ModelRef<'_>) -> Result<Vec<(i32, Option<String>)>, ReadError> {
    let Some(list) = model.operator_codes().map_err(|e| broken("the model", e))? else {
        return Ok(vec![]);
    };
    let mut codes = vec![];
    for (i, c) in list.iter().enumerate() {
        let what = format!("operator code {i}");
        let c = c.map_err(|e| broken(&what, e))?;
        let h = |e| broken(&what, e);
        let builtin = match c.builtin_code() {
            Ok(op) => op as i32,
            // A code from a newer schema: keep the number, report it where used.
            Err(planus::Error {
                error_kind: planus::errors::ErrorKind::UnknownEnumTag { source },
                ..
            }) => i32::try_from(source.tag).unwrap_or(i32::MAX),
            Err(e) => return Err(h(e)),
        };
        let deprecated = i32::from(c.deprecated_builtin_code().map_err(h)?);
        codes.push((
            builtin.max(deprecated),
            c.custom_code().map_err(h)?.map(str::to_string),
        ));
    }
    Ok(codes)
}

/// The bytes of buffer `index` (for the message: who refers to it), if any.
type BufferBytes<'f, 'a> = &'f dyn Fn(u32, &str) -> Result<Option<&'a [u8]>, ReadError>;

/// Reads tensor `i`; what makes it unusable goes into its `problem`.
fn read_tensor<'a>(
    i: usize,
    t: &fb::TensorRef<'a>,
    buffer_bytes: BufferBytes<'_, 'a>,
) -> Result<FileTensor<'a>, ReadError> {
    let what = format!("tensor {i}");
    let h = |e| broken(&what, e);
    let name = t.name().map_err(h)?.unwrap_or("").to_string();
    let mut problems: Vec<String> = vec![];
    let dtype = match t.type_() {
        Ok(d) => ElemType::Known(d),
        Err(planus::Error {
            error_kind: planus::errors::ErrorKind::UnknownEnumTag { source },
            ..
        }) => ElemType::Unknown(source.tag),
        Err(e) => return Err(h(e)),
    };
    let raw_shape: Vec<i32> = t
        .shape()
        .map_err(h)?
        .map(|v| v.iter().collect())
        .unwrap_or_default();
    let mut shape = vec![];
    for &d in &raw_shape {
        match usize::try_from(d) {
            Ok(d) => shape.push(d),
            Err(_) => {
                problems.push(format!("has a negative dimension in shape {raw_shape:?}"));
                shape.push(0);
            }
        }
    }
    let dynamic_axes = t
        .shape_signature()
        .map_err(h)?
        .map(|v| {
            v.iter()
                .enumerate()
                .filter(|&(_, d)| d < 0)
                .map(|(a, _)| a)
                .collect()
        })
        .unwrap_or_default();
    if t.sparsity().map_err(h)?.is_some() {
        problems.push("is stored sparse (`sparsity`); only dense tensors are supported".into());
    }
    if t.is_variable().map_err(h)? {
        problems.push("is a variable (`is_variable`); only stateless graphs are supported".into());
    }
    let data = buffer_bytes(t.buffer().map_err(h)?, &format!("tensor {i} `{name}`"))?;
    if let Some(d) = data {
        let want = shape
            .iter()
            .try_fold(1usize, |n, &x| n.checked_mul(x))
            .and_then(|n| Some(n.checked_mul(dtype.size()?)));
        match want {
            Some(Some(n)) if n == d.len() => {}
            Some(Some(n)) => problems.push(format!(
                "holds {} bytes of data but its shape {shape:?} of {} needs {n}",
                d.len(),
                dtype.name()
            )),
            _ => problems.push(format!(
                "is a constant of {} whose size cannot be checked",
                dtype.name()
            )),
        }
    }
    let quant = match t.quantization().map_err(h)? {
        Some(q) => match read_quant(&q, &shape).map_err(h)? {
            Ok(q) => q,
            Err(p) => {
                problems.push(p);
                None
            }
        },
        None => None,
    };
    Ok(FileTensor {
        name,
        dtype,
        shape,
        dynamic_axes,
        data,
        quant,
        problem: (!problems.is_empty()).then(|| problems.join("; ")),
    })
}

/// Reads quantization parameters; the inner error says why they are unusable.
fn read_quant(
    q: &fb::QuantizationParametersRef<'_>,
    shape: &[usize],
) -> planus::Result<Result<Option<FileQuant>, String>> {
    if q.details()?.is_some() {
        return Ok(Err(
            "uses a custom or blockwise quantization scheme (`details`); only affine per-tensor and per-axis quantization is supported".into(),
        ));
    }
    let scale: Vec<f32> = q.scale()?.map(|v| v.iter().collect()).unwrap_or_default();
    let zero_point: Vec<i64> = q
        .zero_point()?
        .map(|v| v.iter().collect())
        .unwrap_or_default();
    // No scale means not quantized (float tensors often carry empty parameters).
    if scale.is_empty() {
        return Ok(Ok(None));
    }
    if let Some(s) = scale.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
        return Ok(Err(format!(
            "has quantization scale {s}; scales must be finite and positive"
        )));
    }
    let n = scale.len();
    let zero_point = match zero_point.len() {
        1 => vec![zero_point[0]; n],
        l if l == n => zero_point,
        l => {
            return Ok(Err(format!(
                "has {n} quantization scales but {l} zero points (1 or {n} needed)"
            )));
        }
    };
    let dim = if n == 1 {
        None
    } else {
        let d = q.quantized_dimension()?;
        match usize::try_from(d).ok().filter(|&d| d < shape.len()) {
            Some(d) if shape[d] == n => Some(d),
            Some(d) => {
                return Ok(Err(format!(
                    "has {n} quantization scales along dimension {d} of size {}",
                    shape[d]
                )));
            }
            None => {
                return Ok(Err(format!(
                    "has `quantized_dimension` {d} but rank {}",
                    shape.len()
                )));
            }
        }
    };
    Ok(Ok(Some(FileQuant {
        scale,
        zero_point,
        dim,
    })))
}

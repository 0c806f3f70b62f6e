//! Model → compact blob conversion (host side only).
//!
//! A frontend turns a source model into the typed IR ([`ir`]): `onnx/` reads ONNX
//! (tract-onnx's protobuf types), fixes static shapes, folds constant subgraphs and
//! translates each node; `tflite/` reads a TFLite flatbuffer (a reader generated
//! from the official schema) into NHWC nodes with TFLite's quantization. Both
//! collect every problem at once. One shared lowering then takes any frontend's IR
//! through named steps: f32 graph edges (int8 inputs and outputs quantized and
//! dequantized inside the model) → passes (fold BatchNorm, fuse bias and
//! activations, put each Conv and pool in its kernel's layout and cancel the
//! Transposes that makes, drop identities) → support check, which asks the back end
//! ([`backend`]) for every node's kernel (TFLite's int8 `Prepare` math in
//! [`quant`]) and reports every problem at once → static memory plan → blob →
//! self-check (the runtime's own validating loader loads it and counts MACs) →
//! manifest.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use thiserror::Error;
use tract_onnx::prelude::Framework as _;

use crate::manifest::{Manifest, Quant, QuantDtype, Signature, Source, TensorSpec};

mod backend;
mod check;
pub mod ir;
mod native;
mod onnx;
mod passes;
mod plan;
mod quant;
pub mod support;
mod tflite;

pub use backend::FcRequant;
pub use native::run_native;
pub use passes::edges::Io;
#[cfg(test)]
mod testing;
mod write;

/// Conversion options.
#[derive(Debug, Clone, Default)]
pub struct ConvertOptions {
    /// Fixed shapes for inputs with dynamic dimensions, by input name.
    pub input_shapes: HashMap<String, Vec<usize>>,
    /// How int8 fully connected layers requantize (`--fc-requant`).
    pub fc_requant: FcRequant,
    /// The element types at the detector's ABI (`--io`).
    pub io: Io,
}

/// A converted model.
#[derive(Debug, Clone)]
pub struct Converted {
    /// The compact model blob.
    pub blob: Vec<u8>,
    /// What the manifest records.
    pub manifest: Manifest,
    /// Whether the model computes on int8 values at run time (quantized
    /// operators, QDQ pairs, int8 graph inputs or outputs), not only on floats
    /// with, at most, int8 constants: float references such as tract cannot
    /// stand for it.
    pub int8_activations: bool,
    /// Per graph input, whether the source model takes it as int8 (else f32),
    /// whatever the detector's ABI takes (`--io`).
    pub int8_inputs: Vec<bool>,
}

/// What kind of problem a node has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// The operator is not supported.
    Operator,
    /// An attribute value is not supported.
    Attribute,
    /// An element type is not supported.
    Dtype,
    /// Shapes do not fit.
    Shape,
    /// A dynamic dimension needs `--input-shape`.
    DynamicDim,
    /// The model as a whole.
    Model,
    /// The model exceeds a limit of the compact format (sizes, counts).
    Limit,
}

/// One thing that stops a model from converting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Node (or input) name.
    pub node: String,
    /// Operator type.
    pub op: String,
    /// Kind.
    pub kind: ProblemKind,
    /// What is wrong and, where possible, what to do.
    pub message: String,
}

impl Problem {
    pub(crate) fn model(message: &str) -> Problem {
        Problem {
            node: String::new(),
            op: String::new(),
            kind: ProblemKind::Model,
            message: message.to_string(),
        }
    }

    pub(crate) fn input(name: &str, kind: ProblemKind, message: &str) -> Problem {
        Problem {
            node: name.to_string(),
            op: "input".into(),
            kind,
            message: message.to_string(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ProblemKind::Model => write!(f, "{}", self.message),
            ProblemKind::Limit if self.node.is_empty() => write!(f, "{}", self.message),
            _ if self.op == "input" || self.op == "output" => {
                write!(f, "{} `{}`: {}", self.op, self.node, self.message)
            }
            _ => write!(f, "node `{}` ({}): {}", self.node, self.op, self.message),
        }
    }
}

/// Why a model did not convert.
#[derive(Debug, Error)]
pub enum ConvertError {
    /// The file could not be read.
    #[error("cannot read `{path}`: {source}")]
    Io {
        /// The model path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a valid model of its format.
    #[error("`{path}` is not a valid {format} model: {message}")]
    Parse {
        /// The model path.
        path: PathBuf,
        /// `ONNX` or `TFLite`.
        format: &'static str,
        /// The parser's message.
        message: String,
    },
    /// Some nodes use something the runtime does not support.
    #[error("{}", unsupported_message(path, problems))]
    Unsupported {
        /// The model path.
        path: PathBuf,
        /// Every problem found.
        problems: Vec<Problem>,
    },
    /// A converter bug.
    #[error(
        "internal converter error: {0}; this is a bug in cargo-medwasm, please report it with the model attached"
    )]
    Internal(String),
}

fn unsupported_message(path: &Path, problems: &[Problem]) -> String {
    let mut s = format!(
        "`{}` cannot be converted: {} problem{} found",
        path.display(),
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for p in problems {
        s.push_str("\n  - ");
        s.push_str(&p.to_string());
    }
    // Size limits are not about operators; the table would not help.
    if problems.iter().any(|p| p.kind != ProblemKind::Limit) {
        s.push_str("\nsupported operators and attributes: docs/ops.md (or `cargo medwasm ops`)");
    }
    s
}

/// Converts the ONNX model at `path`.
pub fn convert_onnx(path: &Path, opts: &ConvertOptions) -> Result<Converted, ConvertError> {
    let bytes = std::fs::read(path).map_err(|source| ConvertError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    convert_onnx_bytes(path, &bytes, opts)
}

/// Converts ONNX model bytes; `path` is used for messages and the manifest.
pub fn convert_onnx_bytes(
    path: &Path,
    bytes: &[u8],
    opts: &ConvertOptions,
) -> Result<Converted, ConvertError> {
    let proto = tract_onnx::onnx()
        .proto_model_for_read(&mut &bytes[..])
        .map_err(|e| ConvertError::Parse {
            path: path.to_path_buf(),
            format: "ONNX",
            message: format!("{e:#}"),
        })?;
    lower_with(path, bytes, onnx::import(&proto, &opts.input_shapes), opts)
}

/// Converts the TFLite model at `path`.
pub fn convert_tflite(path: &Path, opts: &ConvertOptions) -> Result<Converted, ConvertError> {
    let bytes = std::fs::read(path).map_err(|source| ConvertError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    convert_tflite_bytes(path, &bytes, opts)
}

/// Converts TFLite model bytes; `path` is used for messages and the manifest.
pub fn convert_tflite_bytes(
    path: &Path,
    bytes: &[u8],
    opts: &ConvertOptions,
) -> Result<Converted, ConvertError> {
    let (imported, info) =
        tflite::import(bytes, &opts.input_shapes).map_err(|message| ConvertError::Parse {
            path: path.to_path_buf(),
            format: "TFLite",
            message,
        })?;
    let mut converted = lower_with(path, bytes, imported, opts)?;
    let source = &mut converted.manifest.source;
    source.min_runtime_version = info.min_runtime_version;
    source.signatures = info
        .signatures
        .into_iter()
        .map(|(key, inputs, outputs)| Signature {
            key,
            inputs,
            outputs,
        })
        .collect();
    Ok(converted)
}

/// True for a path the TFLite frontend reads (`.tflite`); others are read as ONNX.
pub fn is_tflite(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("tflite"))
}

/// Converts the model at `path` with the frontend its extension names.
pub fn convert_model(path: &Path, opts: &ConvertOptions) -> Result<Converted, ConvertError> {
    if is_tflite(path) {
        convert_tflite(path, opts)
    } else {
        convert_onnx(path, opts)
    }
}

/// What a frontend hands to the shared lowering.
#[derive(Debug)]
pub(crate) struct Imported {
    /// The graph in the runtime's vocabulary, shapes static.
    pub graph: ir::Graph,
    /// Everything the frontend could not translate, all at once.
    pub problems: Vec<Problem>,
    /// What was changed on the way.
    pub notes: Vec<String>,
    /// Source format for the manifest (`onnx`, `tflite`).
    pub format: &'static str,
    /// Default-domain opset (or the format's schema version).
    pub opset: i64,
    /// `producer_name producer_version` of the file.
    pub producer: String,
    /// Input shapes used.
    pub input_shapes: Vec<Vec<usize>>,
}

/// [`lower_with`] the default options (the frontends' tests).
#[cfg(test)]
fn lower(path: &Path, bytes: &[u8], imported: Imported) -> Result<Converted, ConvertError> {
    lower_with(path, bytes, imported, &ConvertOptions::default())
}

/// The shared lowering: f32 edges → passes → support check (kernels) → plan →
/// blob → self-check → manifest. `bytes` are the source file's, for the
/// manifest's checksum.
fn lower_with(
    path: &Path,
    bytes: &[u8],
    imported: Imported,
    opts: &ConvertOptions,
) -> Result<Converted, ConvertError> {
    let unsupported = |problems| ConvertError::Unsupported {
        path: path.to_path_buf(),
        problems,
    };
    if !imported.problems.is_empty() {
        return Err(unsupported(imported.problems));
    }
    let mut graph = imported.graph;
    let mut notes = imported.notes;
    if graph.inputs.is_empty() || graph.outputs.is_empty() {
        return Err(unsupported(vec![Problem::model(
            "the graph has no runtime inputs or no outputs",
        )]));
    }

    let int8_activations = graph
        .tensors
        .iter()
        .any(|t| t.dtype == ir::DType::I8 && !t.is_const());
    let int8_inputs = graph
        .inputs
        .iter()
        .map(|&t| graph.tensors[t].dtype == ir::DType::I8)
        .collect();
    let (in_quant, out_quant) = match opts.io {
        Io::F32 => passes::edges::quantize_edges(&mut graph),
        Io::Int8 => passes::edges::int8_edges(&mut graph).map_err(unsupported)?,
    };
    let count = |q: &[Option<(f32, i32)>]| q.iter().flatten().count();
    let (ins, outs) = (count(&in_quant), count(&out_quant));
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    if opts.io == Io::Int8 {
        notes.push(format!(
            "the detector takes its {ins} input{} and returns its {outs} output{} as the model's int8 tensors (`--io int8`): the host quantizes with the scale and zero point the manifest records",
            plural(ins),
            plural(outs)
        ));
    } else if ins + outs > 0 {
        notes.push(format!(
            "the model's {ins} int8 input{} and {outs} int8 output{} are f32 at the detector's ABI: quantized and dequantized inside the model as TFLite's QUANTIZE and DEQUANTIZE do (`--io int8` keeps them int8)",
            plural(ins),
            plural(outs)
        ));
    }
    notes.extend(passes::run(&mut graph));
    // An f32 output a final Dequantize writes (a QDQ model's last DequantizeLinear)
    // is int8 inside the model as well: recorded the same way, so that it is
    // compared in quantization steps.
    let out_quant: Vec<_> = out_quant
        .into_iter()
        .zip(passes::edges::dequantized_outputs(&graph))
        .map(|(edge, dequantized)| edge.or(dequantized))
        .collect();

    let backend_opts = backend::Options {
        fc_requant: opts.fc_requant,
    };
    let kernels = check::check(&graph, &backend_opts).map_err(unsupported)?;
    let fc_requant = kernels
        .iter()
        .any(|k| k.op == medwasm::format::OpCode::QFullyConnected)
        .then_some(opts.fc_requant);
    if let Some(mode) = fc_requant {
        notes.push(match mode {
            FcRequant::LiteRtRef => "int8 fully connected layers requantize in f64 as LiteRT's reference kernels do (`--fc-requant litert-ref`); TFLite Micro and CMSIS-NN use a fixed-point multiplier that can differ by a step (`--fc-requant tflm`)".to_string(),
            FcRequant::Tflm => "int8 fully connected layers requantize with TFLite Micro's and CMSIS-NN's fixed-point multipliers (`--fc-requant tflm`); LiteRT's reference kernels, in f64, can differ by a step".to_string(),
        });
    }

    let plan = plan::plan(&graph, &kernels).map_err(|message| {
        unsupported(vec![Problem {
            kind: ProblemKind::Limit,
            ..Problem::model(&message)
        }])
    })?;

    let blob = write::write(&graph, &plan, &kernels).map_err(|e| match e {
        write::WriteError::TooLarge(message) => unsupported(vec![Problem {
            kind: ProblemKind::Limit,
            ..Problem::model(&message)
        }]),
        write::WriteError::Bug(message) => ConvertError::Internal(message),
    })?;

    // Self-check: the runtime's own loader validates the blob; count MACs on the way.
    let aligned = medwasm::AlignedBuf::from_bytes(&blob);
    let model = medwasm::Model::load(aligned.as_slice())
        .map_err(|e| ConvertError::Internal(format!("the written blob does not load: {e}")))?;
    let mut macs = 0u64;
    for i in 0..model.node_count() {
        let node = model
            .node(i)
            .map_err(|e| ConvertError::Internal(e.to_string()))?;
        let p = medwasm::ops::prepare(&model, i, &node)
            .map_err(|e| ConvertError::Internal(e.to_string()))?;
        macs += medwasm::ops::macs(&p);
    }

    let mut ops: Vec<(String, u64)> = vec![];
    for n in &graph.nodes {
        let label = n.op.label();
        match ops.iter_mut().find(|(l, _)| *l == label) {
            Some((_, c)) => *c += 1,
            None => ops.push((label, 1)),
        }
    }
    let spec = |t: usize, quant: Option<(f32, i32)>| TensorSpec {
        name: graph.tensors[t].name.clone(),
        shape: graph.tensors[t].dims.iter().map(|&d| d as u64).collect(),
        dtype: graph.tensors[t].dtype.name().into(),
        quant: quant.map(|(scale, zero_point)| Quant {
            dtype: QuantDtype::I8,
            scale,
            zero_point,
        }),
    };
    let manifest = Manifest {
        format_version: medwasm::format::VERSION_MAJOR,
        source: Source {
            file: path
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
            sha256: hex(&Sha256::digest(bytes)),
            format: imported.format.into(),
            opset: imported.opset,
            producer: imported.producer,
            input_shapes: imported
                .input_shapes
                .iter()
                .map(|s| s.iter().map(|&d| d as u64).collect())
                .collect(),
            min_runtime_version: None,
            signatures: vec![],
        },
        inputs: graph
            .inputs
            .iter()
            .zip(&in_quant)
            .map(|(&t, &q)| spec(t, q))
            .collect(),
        outputs: graph
            .outputs
            .iter()
            .zip(&out_quant)
            .map(|(&t, &q)| spec(t, q))
            .collect(),
        arena_bytes: plan.arena_bytes as u64,
        weights_bytes: model.data_bytes() as u64,
        blob_bytes: blob.len() as u64,
        blob_sha256: hex(&Sha256::digest(&blob)),
        nodes: model.node_count() as u64,
        macs,
        ops,
        fc_requant: fc_requant.map(|m| m.name().to_string()),
        reference: None,
        notes,
        converter: format!("cargo-medwasm {}", env!("CARGO_PKG_VERSION")),
    };
    Ok(Converted {
        blob,
        manifest,
        int8_activations,
        int8_inputs,
    })
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

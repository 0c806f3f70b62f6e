//! The model manifest: what `cargo medwasm import` records about a converted model.
//!
//! It is written next to the blob as `model/manifest.json`, embedded into every
//! artifact as the `medwasm.manifest` custom section, and read back by `bench`.

use serde::{Deserialize, Serialize};

/// File name of the manifest inside a detector's `model/` folder.
pub const MANIFEST_FILE: &str = "manifest.json";
/// File name of the compact model blob inside a detector's `model/` folder.
pub const BLOB_FILE: &str = "model.mwm";
/// Name of the wasm custom section that carries the manifest and build info.
pub const CUSTOM_SECTION: &str = "medwasm.manifest";

/// Everything recorded about one imported model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Version of the compact model format the blob uses.
    pub format_version: u16,
    /// The model the blob was converted from.
    pub source: Source,
    /// Graph inputs, in order.
    pub inputs: Vec<TensorSpec>,
    /// Graph outputs, in order.
    pub outputs: Vec<TensorSpec>,
    /// Peak arena bytes from the static memory plan.
    pub arena_bytes: u64,
    /// Bytes of constant data (weights) in the blob.
    pub weights_bytes: u64,
    /// Size of the whole blob.
    pub blob_bytes: u64,
    /// sha256 of the blob, hex.
    pub blob_sha256: String,
    /// Number of nodes the runtime executes.
    pub nodes: u64,
    /// Multiply-accumulates per inference (Conv, Gemm, MatMul).
    pub macs: u64,
    /// Operators used, with their count, after conversion.
    pub ops: Vec<(String, u64)>,
    /// How the int8 fully connected layers requantize (`litert-ref` or `tflm`, from
    /// `--fc-requant`), when the model has any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fc_requant: Option<String>,
    /// What the import checked the converted model against (absent in manifests
    /// written before it was recorded, and before the import checks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<CheckedAgainst>,
    /// What the converter changed on the way (fixed batch dims, folded BatchNorm …).
    pub notes: Vec<String>,
    /// Tool that produced the blob, e.g. `cargo-medwasm 0.1.0`.
    pub converter: String,
}

/// Where a blob came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    /// File name of the source model, as copied into the project's `model/` folder.
    pub file: String,
    /// sha256 of the source model file, hex.
    pub sha256: String,
    /// Source format: `onnx` or `tflite`.
    pub format: String,
    /// Default-domain opset version (ONNX), or the schema version (TFLite, 3).
    pub opset: i64,
    /// `producer_name producer_version` from the model file (ONNX), or the
    /// description (TFLite).
    pub producer: String,
    /// Input shapes the model was converted with (after fixing dynamic dims).
    pub input_shapes: Vec<Vec<u64>>,
    /// The `min_runtime_version` metadata of a TFLite model (the oldest TFLite
    /// runtime its operator versions need), for information.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_runtime_version: Option<String>,
    /// The signatures of a TFLite model's main graph.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signatures: Vec<Signature>,
}

/// A TFLite signature: its key and the alias names of its inputs and outputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// `signature_key`, e.g. `serving_default`.
    pub key: String,
    /// Input aliases, in the file's order.
    pub inputs: Vec<String>,
    /// Output aliases, in the file's order.
    pub outputs: Vec<String>,
}

/// The independent reference an import checked the converted model against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckedAgainst {
    /// Which reference.
    pub kind: ReferenceKind,
    /// As the import named it, with its version, e.g. `onnxruntime 1.22.0 (CPU, 1 thread)`.
    pub name: String,
    /// Quantization steps `bench` allows an int8 output to be off from the stored
    /// expected outputs when the project sets no `int8-tolerance-steps`: 1 when
    /// they are onnxruntime's (its int8 arithmetic rounds otherwise than TFLite's
    /// kernels), 0 when they are TFLite's reference kernels' or given with `--expected`.
    pub int8_tolerance_steps: u32,
}

/// The references an import knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReferenceKind {
    /// tract on the ONNX original (float models); `bench` runs it again.
    Tract,
    /// onnxruntime through Python on the ONNX original (quantized models, or any
    /// tract cannot load); its outputs are stored as the expected ones.
    OnnxRuntime,
    /// LiteRT's reference kernels through Python on the TFLite original; its
    /// outputs are stored as the expected ones.
    LiteRt,
    /// Only the outputs given with `--expected` (no reference installed).
    Expected,
}

/// Name, shape and element type of one graph input or output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TensorSpec {
    /// Name in the source model.
    pub name: String,
    /// Static shape.
    pub shape: Vec<u64>,
    /// Element type at the detector's ABI, e.g. `f32`.
    pub dtype: String,
    /// How the model itself quantizes this tensor, when it is an integer tensor inside
    /// the model (an int8 model whose detector takes and returns f32 quantizes at the
    /// graph's edge). `bench` compares such outputs in quantization steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quant: Option<Quant>,
}

/// Per-tensor quantization: `real = (q - zero_point) * scale`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Quant {
    /// The integer type inside the model, e.g. `i8`.
    pub dtype: QuantDtype,
    /// Scale, finite and > 0.
    pub scale: f32,
    /// Zero point, in the integer type's range.
    pub zero_point: i32,
}

/// Integer types a model quantizes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QuantDtype {
    /// Signed 8-bit.
    I8,
}

impl Quant {
    /// The real value of quantized `q`, as TFLite's DEQUANTIZE computes it (one f32
    /// product of exact operands).
    pub fn dequantize(&self, q: f32) -> f32 {
        self.scale * (q - self.zero_point as f32)
    }

    /// The quantized value nearest `real`, as TFLite's QUANTIZE computes it: an f32
    /// division, rounded half away from zero, plus the zero point, saturated.
    pub fn quantize(&self, real: f32) -> i32 {
        let q = (real / self.scale).round() as i64 + i64::from(self.zero_point);
        q.clamp(-128, 127) as i32
    }
}

impl TensorSpec {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product::<u64>() as usize
    }

    /// True for a tensor with a zero dimension.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The quantization of a tensor the detector takes or returns as int8 (`import
    /// --io int8`); `None` for an f32 one.
    pub fn abi_int8(&self) -> Option<Quant> {
        self.quant.filter(|_| self.dtype == "i8")
    }

    /// Real values as the detector's ABI holds them: an int8 tensor's int8 values
    /// (quantized as TFLite's QUANTIZE does, exact for values on its grid), as f32;
    /// an f32 tensor's values unchanged. Hosts keep real values everywhere else.
    pub fn to_abi(&self, real: &[f32]) -> Vec<f32> {
        match self.abi_int8() {
            Some(q) => real.iter().map(|&x| q.quantize(x) as f32).collect(),
            None => real.to_vec(),
        }
    }

    /// The real values of what the ABI returned for this tensor (the inverse of
    /// [`Self::to_abi`]: an int8 tensor's values dequantized).
    pub fn from_abi(&self, abi: Vec<f32>) -> Vec<f32> {
        match self.abi_int8() {
            Some(q) => abi.into_iter().map(|x| q.dequantize(x)).collect(),
            None => abi,
        }
    }
}

impl Manifest {
    /// Reads `model/manifest.json` of a project.
    pub fn read(path: &std::path::Path) -> anyhow::Result<Manifest> {
        use anyhow::Context as _;
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "cannot read `{}`: import a model first with `cargo medwasm import <model.onnx>`",
                path.display()
            )
        })?;
        serde_json::from_str(&text).with_context(|| {
            format!(
                "`{}` is not a valid manifest: run `cargo medwasm import` again",
                path.display()
            )
        })
    }
}

#[cfg(test)]
impl Manifest {
    /// A manifest for unit tests: f32 tensors with these names and shapes, one node,
    /// placeholders elsewhere; tests set what else they need with `..`.
    pub(crate) fn for_tests(inputs: &[(&str, &[u64])], outputs: &[(&str, &[u64])]) -> Manifest {
        let specs = |tensors: &[(&str, &[u64])]| -> Vec<TensorSpec> {
            tensors
                .iter()
                .map(|(name, shape)| TensorSpec {
                    name: (*name).into(),
                    shape: shape.to_vec(),
                    dtype: "f32".into(),
                    quant: None,
                })
                .collect()
        };
        Manifest {
            format_version: 1,
            source: Source {
                file: "model.onnx".into(),
                sha256: "00".into(),
                format: "onnx".into(),
                opset: 13,
                producer: "test".into(),
                input_shapes: inputs.iter().map(|(_, shape)| shape.to_vec()).collect(),
                min_runtime_version: None,
                signatures: vec![],
            },
            inputs: specs(inputs),
            outputs: specs(outputs),
            arena_bytes: 64,
            weights_bytes: 0,
            blob_bytes: 0,
            blob_sha256: "00".into(),
            nodes: 1,
            macs: 0,
            ops: vec![],
            fc_requant: None,
            reference: None,
            notes: vec![],
            converter: "test".into(),
        }
    }
}

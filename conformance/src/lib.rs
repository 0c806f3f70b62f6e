//! The conformance suite's shared pieces: where the data is, and how a converted
//! model is run natively and compared with a golden output (in quantization steps
//! for the outputs an int8 model quantizes).
//!
//! Cases are data (`cases/index.json`, made by the seeded `gen_cases.py` with
//! onnxruntime goldens); each runner generates its tests from them with its own
//! named tolerance.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use cargo_medwasm::npy::Array;
use cargo_medwasm::report::{Deviation, Tolerance};

/// Tolerance of the native scalar runtime against onnxruntime on single-op cases.
pub const NATIVE_OP_TOLERANCE: Tolerance = Tolerance {
    abs: 1e-5,
    rel: 1e-4,
    steps: 0,
};
/// Tolerance of int8 outputs against LiteRT's reference kernels: none (0 steps).
pub const EXACT: Tolerance = Tolerance {
    abs: 0.0,
    rel: 0.0,
    steps: 0,
};
/// Tolerance of float outputs of whole models against LiteRT (the issue's: 1e-4
/// relative or 1e-5 absolute).
pub const TFLITE_MODEL_TOLERANCE: Tolerance = Tolerance {
    abs: 1e-5,
    rel: 1e-4,
    steps: 0,
};
/// Tolerance on whole reference models (accumulated rounding over many layers).
pub const NATIVE_MODEL_TOLERANCE: Tolerance = Tolerance {
    abs: 1e-4,
    rel: 1e-3,
    steps: 0,
};

/// One case from `cases/index.json`.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Case {
    /// Case name: `<name>.onnx`, `<name>.inputs.npy`, `<name>.expected.npy`.
    pub name: String,
    /// `pass`, `unsupported` or `needs_input_shape`.
    pub expect: String,
    /// Static input shape (the fixed one for dynamic cases).
    pub input_shape: Vec<usize>,
}

/// The `cases/` folder.
pub fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("cases")
}

/// All cases.
pub fn cases() -> Result<Vec<Case>> {
    let path = cases_dir().join("index.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read `{}`", path.display()))?;
    Ok(serde_json::from_str(&text)?)
}

/// The shared MLPerf Tiny models: `MEDWASM_SHARED_MODELS` or `../shared/models` from
/// the repository root. Panics with what to do when absent, so a missing data set
/// is never a silent pass.
pub fn shared_models() -> PathBuf {
    let dir = std::env::var_os("MEDWASM_SHARED_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/models"));
    assert!(
        dir.join("ad01_fp32").join("model.onnx").exists(),
        "the shared reference models are not at `{}`: put the team's `shared/models` there or set MEDWASM_SHARED_MODELS",
        dir.display()
    );
    dir
}

/// Converts `model` (ONNX or TFLite, by extension), runs every sample of `inputs` natively, and compares each with
/// the matching sample of `expected`. Returns the worst deviation.
pub fn check_native(
    model: &Path,
    opts: &cargo_medwasm::convert::ConvertOptions,
    inputs: &Array,
    expected: &Array,
    tol: Tolerance,
) -> Result<Deviation> {
    let converted = cargo_medwasm::convert::convert_model(model, opts)?;
    let mut worst = Deviation {
        max_abs: 0.0,
        max_rel: 0.0,
        pass: true,
        steps: None,
    };
    for s in 0..inputs.samples() {
        let x = inputs.sample(s).context("missing input sample")?.to_vec();
        let out = cargo_medwasm::convert::run_native(&converted.blob, &[x])?;
        let want = expected.sample(s).context("missing expected sample")?;
        worst = worst.merge(Deviation::compare(&out[0], want, tol));
    }
    Ok(worst)
}

/// Converts `model` with `opts` and runs every sample of `inputs` natively, as a
/// detector's f32 ABI takes them: integer vectors (an int8 model's own inputs) are
/// the real values they quantize, as the model's DEQUANTIZE computes them. Each
/// output is compared with the matching sample of `expected`: outputs the model
/// quantizes in quantization steps (integer goldens are its int8 values), float
/// ones within `tol`. Returns the worst deviation.
pub fn check_native_quantized(
    model: &Path,
    opts: &cargo_medwasm::convert::ConvertOptions,
    inputs: &Array,
    expected: &Array,
    tol: Tolerance,
) -> Result<Deviation> {
    let converted = cargo_medwasm::convert::convert_model(model, opts)?;
    let m = &converted.manifest;
    let (qin, qout) = (m.inputs[0].quant, m.outputs[0].quant);
    let mut worst = Deviation {
        max_abs: 0.0,
        max_rel: 0.0,
        pass: true,
        steps: None,
    };
    let real = |a: &Array, s: usize, q: Option<cargo_medwasm::manifest::Quant>| {
        let v = a.sample(s).context("missing sample")?;
        Ok::<Vec<f32>, anyhow::Error>(match q.filter(|_| a.integers) {
            Some(q) => v.iter().map(|&x| q.dequantize(x)).collect(),
            None => v.to_vec(),
        })
    };
    for s in 0..inputs.samples() {
        let x = real(inputs, s, qin)?;
        let out = cargo_medwasm::convert::run_native(&converted.blob, &[x])?;
        let want = real(expected, s, qout)?;
        let d = match qout {
            Some(q) => Deviation::compare_steps(&out[0], &want, &q, tol),
            None => Deviation::compare(&out[0], &want, tol),
        };
        worst = worst.merge(d);
    }
    Ok(worst)
}

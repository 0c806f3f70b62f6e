//! References that run in Python: LiteRT's reference kernels for TFLite models and
//! onnxruntime for quantized ONNX ones. Neither is our code, and neither has a
//! maintained Rust binding that runs those kernels: tract cannot run `.tflite` files
//! nor onnxruntime's `com.microsoft` int8 operators, and it loads no int8-input
//! graph. Each engine is a small script (`pyref/*.py`) with one protocol:
//! `script model out_dir n_inputs input.npy...` writes `out<k>.npy` per output
//! (`[N, ...]`, flattened per sample, float32 or int8 as the model returns it),
//! `script --probe` prints the package's version, and exit code 3 means the
//! package cannot be imported. Inputs and outputs travel as `.npy` files in a
//! temporary folder.
//!
//! The Python interpreter is `python3`, or `MEDWASM_PYTHON` when set.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};

use crate::npy::Array;

/// A Python package that can serve as the reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// `ai-edge-litert`'s interpreter with the reference kernels (`BUILTIN_REF`,
    /// bit-exact with TFLite Micro), one thread: for `.tflite` models.
    LiteRt,
    /// `onnxruntime` on the CPU, one thread, default graph optimizations: for
    /// quantized `.onnx` models.
    OnnxRuntime,
}

impl Engine {
    /// The script that runs a model with this engine.
    fn script(self) -> &'static str {
        match self {
            Engine::LiteRt => include_str!("pyref/litert.py"),
            Engine::OnnxRuntime => include_str!("pyref/onnxruntime.py"),
        }
    }

    /// The engine's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Engine::LiteRt => "LiteRT",
            Engine::OnnxRuntime => "onnxruntime",
        }
    }

    /// The Python import that must work.
    pub fn module(self) -> &'static str {
        match self {
            Engine::LiteRt => "ai_edge_litert",
            Engine::OnnxRuntime => "onnxruntime",
        }
    }

    /// How to install it.
    pub fn install(self) -> &'static str {
        match self {
            Engine::LiteRt => "pip install ai-edge-litert",
            Engine::OnnxRuntime => "pip install onnxruntime",
        }
    }
}

/// An engine found runnable on this machine.
#[derive(Debug, Clone)]
pub struct PyReference {
    engine: Engine,
    python: PathBuf,
    /// The package's version, e.g. `2.3.0`.
    pub version: String,
}

/// The Python interpreter to use.
fn python() -> PathBuf {
    std::env::var_os("MEDWASM_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("python3"))
}

impl PyReference {
    /// Finds `engine`, or says why it cannot be used here.
    pub fn probe(engine: Engine) -> Result<PyReference, String> {
        PyReference::probe_with(&python(), engine)
    }

    fn probe_with(python: &Path, engine: Engine) -> Result<PyReference, String> {
        let out = Command::new(python)
            .args(["-c", engine.script(), "--probe"])
            .output()
            .map_err(|e| format!("`{}` cannot be started: {e}", python.display()))?;
        if !out.status.success() {
            return Err(format!(
                "`{} -c 'import {}'` fails: {}",
                python.display(),
                engine.module(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(PyReference {
            engine,
            python: python.to_path_buf(),
            version: String::from_utf8_lossy(&out.stdout).trim().to_string(),
        })
    }

    /// The engine.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// What reports call this reference.
    pub fn describe(&self) -> String {
        match self.engine {
            Engine::LiteRt => format!("LiteRT {} (BUILTIN_REF, 1 thread)", self.version),
            Engine::OnnxRuntime => format!("onnxruntime {} (CPU, 1 thread)", self.version),
        }
    }

    /// Runs `model` on every sample of `inputs` (one `[N, ...]` array per model
    /// input, in the input's own type: integer arrays for int8 inputs, each sample
    /// in the shape the model was converted with); returns one `[N, ...]` array per
    /// model output, flattened per sample, integer arrays for int8 outputs.
    pub fn run(&self, model: &Path, inputs: &[Array]) -> Result<Vec<Array>> {
        let dir = TempDir::new()?;
        let mut args = vec![
            model.as_os_str().to_owned(),
            dir.0.as_os_str().to_owned(),
            inputs.len().to_string().into(),
        ];
        for (i, a) in inputs.iter().enumerate() {
            let path = dir.0.join(format!("in{i}.npy"));
            a.write(&path)
                .with_context(|| format!("cannot write `{}`", path.display()))?;
            args.push(path.into_os_string());
        }
        let out = Command::new(&self.python)
            .arg("-c")
            .arg(self.engine.script())
            .args(&args)
            .output()
            .with_context(|| format!("cannot start `{}`", self.python.display()))?;
        if !out.status.success() {
            bail!(
                "{} failed to run `{}`: {}",
                self.engine.name(),
                model.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let mut outputs = vec![];
        for k in 0.. {
            let path = dir.0.join(format!("out{k}.npy"));
            if !path.exists() {
                break;
            }
            outputs.push(Array::read(&path)?);
        }
        Ok(outputs)
    }
}

/// A temporary folder removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "medwasm-pyref-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create `{}`", dir.display()))?;
        Ok(TempDir(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Quant, QuantDtype};
    use crate::report::{Deviation, Tolerance};

    /// A case of `conformance/qdq` (quantized by onnxruntime, with its outputs).
    fn qdq_case(name: &str) -> (PathBuf, Array, Array) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../conformance/qdq");
        let read = |suffix: &str| {
            Array::read(&dir.join(format!("{name}.{suffix}.npy"))).unwrap_or_else(|e| panic!("{e}"))
        };
        (
            dir.join(format!("{name}.onnx")),
            read("inputs"),
            read("expected"),
        )
    }

    /// onnxruntime, or `None` when it is not installed here (CI installs it).
    fn onnxruntime() -> Option<PyReference> {
        match PyReference::probe(Engine::OnnxRuntime) {
            Ok(found) => Some(found),
            Err(why) => {
                assert!(
                    std::env::var("CI").is_err(),
                    "onnxruntime is needed under CI (`.ci/setup` installs it): {why}"
                );
                eprintln!("skipped: onnxruntime is not installed ({why})");
                None
            }
        }
    }

    #[test]
    fn onnxruntime_reproduces_its_committed_goldens() {
        let Some(ort) = onnxruntime() else { return };
        assert!(
            ort.describe().starts_with("onnxruntime "),
            "{}",
            ort.describe()
        );
        // The goldens are onnxruntime's own (CPU, default optimizations): the same
        // quantized values, whatever its version's float noise.
        let (model, inputs, expected) = qdq_case("softmax_qdq_pt");
        let shape = inputs.shape.clone();
        let outs = ort
            .run(&model, &[inputs])
            .expect("onnxruntime runs the case");
        assert_eq!(outs.len(), 1);
        assert!(!outs[0].integers, "a float output");
        assert_eq!(outs[0].samples(), shape[0]);
        let quant = Quant {
            dtype: QuantDtype::I8,
            scale: 1.0 / 256.0,
            zero_point: -128,
        };
        let tol = Tolerance {
            abs: 0.0,
            rel: 0.0,
            steps: 0,
        };
        let d = Deviation::compare_steps(&outs[0].data, &expected.data, &quant, tol);
        assert!(d.pass, "{d:?}");
    }

    #[test]
    fn a_refusal_of_the_script_names_the_model() {
        let Some(ort) = onnxruntime() else { return };
        let (model, inputs, _) = qdq_case("conv_relu_qdq_pt");
        // A float model given int8 values: the script refuses, naming the input.
        let wrong = Array {
            integers: true,
            data: inputs
                .data
                .iter()
                .map(|v| v.round().clamp(-128.0, 127.0))
                .collect(),
            ..inputs
        };
        let err = format!("{:#}", ort.run(&model, &[wrong]).expect_err("int8 values"));
        assert!(
            err.contains("onnxruntime failed to run")
                && err.contains("conv_relu_qdq_pt.onnx")
                && err.contains("bug"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_python_is_named() {
        let err = PyReference::probe_with(Path::new("/nonexistent/python3"), Engine::OnnxRuntime)
            .expect_err("no such interpreter");
        assert!(
            err.contains("`/nonexistent/python3` cannot be started"),
            "{err}"
        );
    }
}

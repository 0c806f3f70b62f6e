//! LiteRT as the reference for TFLite models: the `ai-edge-litert` Python package's
//! interpreter with the reference kernels (`BUILTIN_REF`, one thread), driven by a
//! small embedded script. tract cannot run `.tflite` files, and the reference must
//! not be our own code, so this is the one independent reference for them. Inputs
//! and outputs travel as `.npy` files in a temporary folder.
//!
//! The Python interpreter is `python3`, or `MEDWASM_PYTHON` when set.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};

use crate::npy::Array;

/// The script: `model out_dir n_inputs input.npy...`; writes `out<k>.npy` per output
/// (`[N, ...]` in the output's own type, float32 or int8) and prints the
/// `ai-edge-litert` version. Each input file must already hold the model input's
/// type (an int8 model takes int8 values, which the caller quantizes as TFLite's
/// QUANTIZE does). Exit code 3 means the package cannot be imported.
const SCRIPT: &str = r#"
import sys
try:
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
except Exception as e:  # an absent package, or one that fails to load
    sys.stderr.write(f"{type(e).__name__}: {e}\n")
    sys.exit(3)
if len(sys.argv) == 2 and sys.argv[1] == "--probe":
    from importlib.metadata import version
    print(version("ai-edge-litert"))
    sys.exit(0)
model, out_dir, n_in = sys.argv[1], sys.argv[2], int(sys.argv[3])
inputs = [np.load(p) for p in sys.argv[4 : 4 + n_in]]
it = Interpreter(
    model_path=model,
    num_threads=1,
    experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
)
it.allocate_tensors()
ins, outs = it.get_input_details(), it.get_output_details()
if len(ins) != n_in:
    sys.exit(f"the model has {len(ins)} inputs, {n_in} were given")
for d in ins + outs:
    if d["dtype"] not in (np.float32, np.int8):
        sys.exit(f"tensor {d['name']} is {np.dtype(d['dtype']).name}: only float32 and int8 graph inputs and outputs are run here")
for d, x in zip(ins, inputs):
    if x.dtype != d["dtype"]:
        sys.exit(f"input {d['name']} is {np.dtype(d['dtype']).name} but {x.dtype.name} values were given; this is a bug in cargo-medwasm")
results = [[] for _ in outs]
for s in range(inputs[0].shape[0]):
    for d, x in zip(ins, inputs):
        it.set_tensor(d["index"], np.asarray(x[s]).reshape(d["shape"]))
    it.invoke()
    for k, d in enumerate(outs):
        results[k].append(np.array(it.get_tensor(d["index"])).reshape(-1))
for k, r in enumerate(results):
    np.save(f"{out_dir}/out{k}.npy", np.stack(r))
"#;

/// LiteRT, found runnable on this machine.
#[derive(Debug, Clone)]
pub struct LiteRt {
    python: PathBuf,
    /// `ai-edge-litert` version, e.g. `2.3.0`.
    pub version: String,
}

/// The Python interpreter to use.
fn python() -> PathBuf {
    std::env::var_os("MEDWASM_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("python3"))
}

impl LiteRt {
    /// Finds LiteRT, or says why it cannot be used here.
    pub fn probe() -> Result<LiteRt, String> {
        let python = python();
        let out = Command::new(&python)
            .args(["-c", SCRIPT, "--probe"])
            .output()
            .map_err(|e| format!("`{}` cannot be started: {e}", python.display()))?;
        if !out.status.success() {
            return Err(format!(
                "`{} -c 'import ai_edge_litert'` fails: {}",
                python.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(LiteRt {
            python,
            version: String::from_utf8_lossy(&out.stdout).trim().to_string(),
        })
    }

    /// What reports call this reference.
    pub fn describe(&self) -> String {
        format!("LiteRT {} (BUILTIN_REF, 1 thread)", self.version)
    }

    /// Runs `model` on every sample of `inputs` (one `[N, ...]` array per model
    /// input, in the input's own type: integer arrays for int8 inputs); returns one
    /// `[N, ...]` array per model output, flattened per sample, integer arrays for
    /// int8 outputs.
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
            .arg(SCRIPT)
            .args(&args)
            .output()
            .with_context(|| format!("cannot start `{}`", self.python.display()))?;
        if !out.status.success() {
            bail!(
                "LiteRT failed to run `{}`: {}",
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
            "medwasm-litert-{}-{}",
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

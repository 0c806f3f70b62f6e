//! The portable WASI bench harness (`targets/wasi-harness/main.rs`): a WASI command
//! that holds the detector, its test vectors and a timed loop and prints one JSON
//! result, so any WASI runtime measures a detector with no host code of ours — the
//! WasmEdge CLI, `wasmtime run` or Node's `node:wasi` on a device over SSH. This
//! module generates the cargo workspace around it, builds it, and turns its JSON back
//! into an [`Execution`], which then goes through the same conformance comparison as
//! every other target.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};
use serde::Deserialize;

use crate::cargo::{run_cargo_build, rustflags_env};
use crate::files::write_if_changed;
use crate::manifest::Manifest;
use crate::project::Project;
use crate::protocol::{DetectorError, Execution, Inference, Outcome};
use crate::report::{Finding, Latency};
use crate::toolchain;
use crate::ui::Ui;

/// The harness's source: the same for every detector (it reaches the detector
/// through the `medwasm_*` C ABI, under the dependency name `detector`).
const HARNESS_MAIN: &str = include_str!("../../targets/wasi-harness/main.rs");
/// The harness protocol this module reads.
pub const PROTOCOL: u32 = 1;
/// The Rust target the harness is built for: WASI preview 1, which WasmEdge,
/// Wasmtime, Node.js and Wasmer all run.
pub const TRIPLE: &str = "wasm32-wasip1";
/// Name of the harness package.
const PACKAGE: &str = "medwasm-harness";

/// Node's WASI host for the harness (`node harness-node.mjs <x.harness.wasm> [runs]`),
/// written beside every harness: Node.js 20 or newer runs it with `node:wasi` alone.
const NODE_RUNNER: &str = r#"// Runs a medwasm bench harness under Node's WASI: node harness-node.mjs x.harness.wasm [runs]
import { readFile } from "node:fs/promises";
import { WASI } from "node:wasi";
const [file, ...args] = process.argv.slice(2);
if (!file) {
  console.error("usage: node harness-node.mjs <detector.harness.wasm> [runs]");
  process.exit(2);
}
const wasi = new WASI({ version: "preview1", args: ["harness", ...args], env: {}, returnOnExit: true });
const module = await WebAssembly.compile(await readFile(file));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
process.exitCode = wasi.start(instance);
"#;

/// Where Node's runner of the harness `harness` is: beside it.
pub fn node_runner(harness: &Path) -> PathBuf {
    harness.with_file_name("harness-node.mjs")
}

/// Builds the harness of `project` with `vectors` (the binary vectors file, see
/// [`crate::vectors::encode_binary`]) in the generated workspace `dir`, and copies the
/// module to `out`.
pub fn build(
    project: &Project,
    dir: &Path,
    vectors: &[u8],
    release: bool,
    out: &Path,
    ui: &Ui,
) -> Result<PathBuf> {
    write_workspace(dir, project, vectors)?;
    let mut cmd = Command::new(toolchain::cargo_program());
    cmd.args(["build", "--target", TRIPLE]);
    if release {
        cmd.arg("--release");
    }
    cmd.arg("--manifest-path").arg(dir.join("Cargo.toml"));
    // Its own target folder, so the generated crate never disturbs the project's.
    cmd.arg("--target-dir").arg(dir.join("target"));
    let (var, value) = rustflags_env(
        std::env::var("CARGO_ENCODED_RUSTFLAGS").ok().as_deref(),
        std::env::var("RUSTFLAGS").ok().as_deref(),
        &["-C", "target-feature=+simd128"],
    );
    cmd.env(var, value);
    let mut module = None;
    let what = format!("the bench harness of {} ({TRIPLE})", project.name);
    let (line, status) = run_cargo_build(cmd, what, ui, |artifact| {
        if artifact.target.name == PACKAGE
            && let Some(exe) = &artifact.executable
        {
            module = Some(PathBuf::from(exe));
        }
    })?;
    if !status.success() {
        bail!(
            "`{line}` failed ({status}); cargo's messages are above (the harness crate is generated in `{}`)",
            dir.display()
        );
    }
    let module = module.with_context(|| {
        format!("`{line}` succeeded but reported no harness module; this is a bug in cargo-medwasm")
    })?;
    let bytes = std::fs::read(&module)
        .with_context(|| format!("cannot read cargo's output `{}`", module.display()))?;
    write_if_changed(out, &bytes)?;
    Ok(out.to_path_buf())
}

/// Builds the harness of `project` with its stored test vectors (warm runs from its
/// metadata) beside its artifacts in `dir`: `<dir>/<package>.harness.wasm`, from a
/// workspace generated in `<dir>/harness-build/<package>/`. `None`, with a note, when the
/// project stores no vectors.
pub fn emit(project: &Project, dir: &Path, release: bool, ui: &Ui) -> Result<Option<PathBuf>> {
    let manifest = project.manifest()?;
    if (0..manifest.inputs.len()).any(|i| !project.inputs_file(i).exists()) {
        ui.note(
            "no stored test vectors, so no bench harness; `cargo medwasm import --inputs x.npy` stores them",
        );
        return Ok(None);
    }
    let cases = crate::vectors::load_cases(project, &manifest, &Ui::silent())?;
    let inputs: Vec<Vec<Vec<f32>>> = cases.into_iter().map(|c| c.inputs).collect();
    let vectors = crate::vectors::encode_binary(&manifest.inputs, &inputs, project.runs(None)?);
    let out = dir.join(format!("{}.harness.wasm", project.name));
    write_if_changed(&node_runner(&out), NODE_RUNNER.as_bytes())?;
    // A workspace per detector: one target folder may serve several.
    let workspace = dir.join("harness-build").join(&project.name);
    build(project, &workspace, &vectors, release, &out, ui).map(Some)
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn write_workspace(dir: &Path, project: &Project, vectors: &[u8]) -> Result<()> {
    let detector = format!(
        "detector = {{ path = {}, package = {} }}",
        toml_string(&project.root.display().to_string()),
        toml_string(&project.name)
    );
    // The harness is a `std` program; with the SDK's `std` feature on (cargo unifies
    // it with the detector's dependency on the same SDK) the SDK leaves out the panic
    // handler it gives `no_std` wasm detectors, which `std` already has.
    let sdk = match (&project.sdk_path, &project.sdk_version) {
        (Some(path), _) => format!(
            "medwasm = {{ path = {}, features = [\"std\"] }}",
            toml_string(&path.display().to_string())
        ),
        (None, Some(version)) => format!(
            "medwasm = {{ version = {}, features = [\"std\"] }}",
            toml_string(&format!("={version}"))
        ),
        (None, None) => bail!(
            "`{}` does not depend on the `medwasm` SDK, so it is not a detector; make it with `cargo medwasm new`",
            project.name
        ),
    };
    let workspace = r#"# Generated by cargo-medwasm for the portable bench harness; rewritten on every build.
[workspace]
resolver = "3"
members = ["harness"]

[profile.release]
opt-level = 3 # what the detector's own release build uses
lto = true
codegen-units = 1
panic = "abort"

[profile.dev]
opt-level = 1
panic = "abort"
"#;
    let harness_toml = format!(
        r#"[package]
name = "{PACKAGE}"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
{detector}
{sdk}
"#
    );
    let files: [(&str, &[u8]); 4] = [
        ("Cargo.toml", workspace.as_bytes()),
        ("harness/Cargo.toml", harness_toml.as_bytes()),
        ("harness/src/main.rs", HARNESS_MAIN.as_bytes()),
        ("harness/vectors.bin", vectors),
    ];
    for (file, content) in files {
        write_if_changed(&dir.join(file), content)?;
    }
    Ok(())
}

/// What the harness prints (protocol 1).
#[derive(Debug, Deserialize)]
struct Output {
    harness: u32,
    #[serde(default)]
    fatal: Option<String>,
    #[serde(default)]
    abi: i32,
    #[serde(default)]
    init: Option<Init>,
    #[serde(default)]
    io: Option<Io>,
    #[serde(default)]
    vectors: Vec<Vector>,
    #[serde(default)]
    first_us: Option<f64>,
    #[serde(default)]
    samples_us: Vec<f64>,
    #[serde(default)]
    memory_pages: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct Init {
    code: i32,
    us: f64,
    #[serde(default)]
    message: String,
}

#[derive(Debug, Deserialize)]
struct Io {
    inputs: Vec<u64>,
    outputs: Vec<u64>,
}

#[derive(Debug, Deserialize)]
struct Vector {
    ok: bool,
    #[serde(default)]
    code: i32,
    #[serde(default)]
    message: String,
    #[serde(default)]
    score: String,
    #[serde(default)]
    label: i32,
    #[serde(default)]
    alert: bool,
    #[serde(default)]
    outputs: Vec<String>,
}

/// Turns the harness's stdout into an [`Execution`] for `manifest`'s detector, run by
/// `runtime` (the label the report shows). `process_us`, when measured, is the whole
/// process: the runtime's start, compiling the module, init and the first inference.
pub fn execution(
    stdout: &[u8],
    manifest: &Manifest,
    runtime: String,
    process_us: Option<f64>,
) -> Result<Execution> {
    let text = String::from_utf8_lossy(stdout);
    let out: Output = serde_json::from_str(text.trim()).with_context(|| {
        format!(
            "the harness printed no result: {}",
            text.chars().take(300).collect::<String>()
        )
    })?;
    if out.harness != PROTOCOL {
        bail!(
            "the harness speaks protocol {} but this cargo-medwasm reads {PROTOCOL}; build it again",
            out.harness
        );
    }
    if let Some(why) = out.fatal {
        bail!("the harness stopped: {why}");
    }
    if out.abi != crate::protocol::ABI_VERSION {
        bail!(
            "the harness's detector speaks ABI {} but this cargo-medwasm speaks {}; rebuild it",
            out.abi,
            crate::protocol::ABI_VERSION
        );
    }
    let init = out.init.context("the harness reported no init")?;
    if init.code != 0 {
        bail!(
            "`medwasm_init` failed in the harness with {}",
            DetectorError::Code {
                code: init.code,
                message: init.message
            }
        );
    }
    let io = out
        .io
        .context("the harness reported no input/output sizes")?;
    let want_in: Vec<u64> = manifest.inputs.iter().map(|t| t.len() as u64).collect();
    let want_out: Vec<u64> = manifest.outputs.iter().map(|t| t.len() as u64).collect();
    if io.inputs != want_in || io.outputs != want_out {
        bail!(
            "the harness's detector has inputs {:?} and outputs {:?} but the manifest says {want_in:?} and {want_out:?}; build the harness again from this project",
            io.inputs,
            io.outputs
        );
    }
    let outcomes = out
        .vectors
        .iter()
        .map(|v| -> Result<Outcome> {
            if !v.ok {
                return Ok(Err(DetectorError::Code {
                    code: v.code,
                    message: v.message.clone(),
                }));
            }
            // An int8 output (`--io int8`) comes as its int8 values: real ones here.
            let outputs = v
                .outputs
                .iter()
                .zip(&manifest.outputs)
                .map(|(hex, spec)| bits(hex).map(|abi| spec.from_abi(abi)))
                .collect::<Result<Vec<_>>>()?;
            let score = match bits(&v.score)?.as_slice() {
                [score] => *score,
                _ => bail!("the harness sent a score that is not one f32"),
            };
            Ok(Ok(Inference {
                outputs,
                finding: Finding {
                    score,
                    label: v.label,
                    alert: v.alert,
                },
            }))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut samples = out.samples_us;
    let cold = match (process_us, out.first_us) {
        (Some(process), _) => Some(process),
        (None, Some(first)) => Some(init.us + first),
        (None, None) => None,
    };
    Ok(Execution {
        runtime,
        outcomes,
        latency: Latency {
            cold_start_us: cold,
            ..Latency::default()
        }
        .with_warm(&mut samples),
        wasm_pages: out.memory_pages,
        device: None,
    })
}

/// f32 values from the 8-hex-digit IEEE bits the harness prints.
fn bits(hex: &str) -> Result<Vec<f32>> {
    if !hex.len().is_multiple_of(8) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("the harness sent `{hex}`, not f32 bits in hex");
    }
    (0..hex.len() / 8)
        .map(|k| {
            u32::from_str_radix(&hex[k * 8..k * 8 + 8], 16)
                .map(f32::from_bits)
                .context("the harness sent f32 bits that are not hex")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest::for_tests(&[("x", &[1, 2])], &[("y", &[1, 2]), ("s", &[1])])
    }

    #[test]
    fn reads_what_the_harness_prints() {
        let json = r#"{"harness":1,"abi":2,"init":{"code":0,"us":12.5},"io":{"inputs":[2],"outputs":[2,1]},
            "vectors":[{"ok":true,"score":"3f800000","label":1,"alert":true,"outputs":["40000000bf800000","7fc00000"]},
                       {"ok":false,"code":11,"message":"input 0 element 1 is NaN"}],
            "first_us":3.5,"timed_vector":0,"warmup":10,"samples_us":[2.0,3.0,1.0],"memory_pages":17}"#;
        let e = execution(json.as_bytes(), &manifest(), "node v20".into(), None).unwrap();
        assert_eq!(e.runtime, "node v20");
        let Ok(first) = &e.outcomes[0] else {
            panic!("{:?}", e.outcomes)
        };
        assert_eq!(first.outputs[0], vec![2.0, -1.0]);
        assert!(first.outputs[1][0].is_nan(), "NaN survives the trip");
        assert_eq!(
            (
                first.finding.score,
                first.finding.label,
                first.finding.alert
            ),
            (1.0, 1, true)
        );
        assert_eq!(
            e.outcomes[1].as_ref().err(),
            Some(&DetectorError::Code {
                code: 11,
                message: "input 0 element 1 is NaN".into()
            })
        );
        assert_eq!(e.latency.median_us, Some(2.0));
        assert_eq!(e.latency.runs, 3);
        assert_eq!(
            e.latency.cold_start_us,
            Some(16.0),
            "init + first run without a process time"
        );
        assert_eq!(e.wasm_pages, Some(17));
        let timed = execution(json.as_bytes(), &manifest(), "x".into(), Some(900.0)).unwrap();
        assert_eq!(timed.latency.cold_start_us, Some(900.0));
    }

    #[test]
    fn refuses_what_it_cannot_trust() {
        let err = |json: &str| {
            format!(
                "{:#}",
                execution(json.as_bytes(), &manifest(), "x".into(), None).unwrap_err()
            )
        };
        assert!(err("Illegal instruction").contains("printed no result"));
        assert!(err(r#"{"harness":2}"#).contains("protocol 2"));
        assert!(err(r#"{"harness":1,"fatal":"no vectors"}"#).contains("stopped: no vectors"));
        assert!(err(r#"{"harness":1,"abi":9,"init":{"code":0,"us":1}}"#).contains("ABI 9"));
        assert!(
            err(r#"{"harness":1,"abi":2,"init":{"code":2,"us":1,"message":"not a blob"}}"#)
                .contains("error 2 (`BadMagic`): not a blob")
        );
        let other = r#"{"harness":1,"abi":2,"init":{"code":0,"us":1},"io":{"inputs":[3],"outputs":[2,1]},"vectors":[]}"#;
        assert!(err(other).contains("inputs [3]"), "{}", err(other));
        let bad_hex = r#"{"harness":1,"abi":2,"init":{"code":0,"us":1},"io":{"inputs":[2],"outputs":[2,1]},
            "vectors":[{"ok":true,"score":"zz","label":0,"alert":false,"outputs":[]}]}"#;
        assert!(err(bad_hex).contains("not f32 bits"));
    }
}

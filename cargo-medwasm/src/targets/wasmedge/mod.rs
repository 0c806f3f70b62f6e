//! The `wasmedge` target: the WASI preview 1 module WasmEdge runs (the same build as
//! `wasmtime`: simd128, wasm-opt, the manifest section), its imports checked against
//! what WasmEdge provides, and beside it the portable bench harness. When a `wasmedge`
//! binary is on PATH the build also compiles both ahead of time (`wasmedge compile`),
//! and `bench` runs the harness in WasmEdge's interpreter and as AOT code, one row
//! each, labelled with the mode that really ran. The build never needs WasmEdge.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::artifact::{BuildOutput, shown};
use crate::harness;
use crate::prereq::{self, Check, Probe, probe};
use crate::process::Supervised;
use crate::project::Project;
use crate::protocol::{Execution, Job, Progress};
use crate::report::bytes;
use crate::sandbox::Imports;
use crate::targets::target::Target;
use crate::toolchain::TargetSpec;
use crate::ui::Ui;
use crate::{wasm, wasm_build};

/// The target's Rust facts.
pub const SPEC: TargetSpec = TargetSpec {
    name: "wasmedge",
    triple: "wasm32-wasip1",
    // WasmEdge runs the SIMD and bulk-memory proposals by default.
    rustflags: &["-C", "target-feature=+simd128"],
    purpose: "`cargo medwasm build --target wasmedge`",
    buildable: true,
};

/// The WasmEdge CLI.
pub const WASMEDGE: &str = "wasmedge";

/// How to get WasmEdge (it is in no distribution's package repository).
pub const INSTALL_WASMEDGE: &str = "install WasmEdge 0.14 or newer: `curl -sSf https://raw.githubusercontent.com/WasmEdge/WasmEdge/master/utils/install.sh | bash` (see docs/targets/wasmedge.md)";

/// Longest a harness run may take.
const TIMEOUT: Duration = Duration::from_secs(900);

/// WASI preview 1 module for WasmEdge.
#[derive(Debug, Clone, Copy, Default)]
pub struct WasmEdge;

/// Fails with the offending names when `module` imports what WasmEdge does not provide.
pub fn check_imports(module: &Path) -> Result<()> {
    let bytes =
        std::fs::read(module).with_context(|| format!("cannot read `{}`", module.display()))?;
    let refused: Vec<String> = wasm::imports(&bytes)?
        .into_iter()
        // The list WasmEdge implements is the one `wasi-run` links: all of preview 1.
        .filter(|(m, name)| !Imports::WasiPreview1.allows(m, name))
        .map(|(m, name)| format!("`{m}::{name}`"))
        .collect();
    if !refused.is_empty() {
        bail!(
            "`{}` imports {} which WasmEdge does not provide (it runs WASI preview 1 modules); a dependency pulls it in: remove it, or keep it out of the `wasm32` build",
            module.display(),
            refused.join(", ")
        );
    }
    Ok(())
}

/// `<file>.aot.wasm` beside `file`: WasmEdge's ahead-of-time compiled copy.
fn aot_path(file: &Path) -> PathBuf {
    file.with_extension("aot.wasm")
}

/// The harness beside an artifact: `<dir>/<stem>.harness.wasm`.
fn harness_path(artifact: &Path) -> Result<PathBuf> {
    let stem = artifact
        .file_stem()
        .and_then(|s| s.to_str())
        .context("the artifact has no UTF-8 name; this is a bug in cargo-medwasm")?;
    Ok(artifact.with_file_name(format!("{stem}.harness.wasm")))
}

/// Runs `wasmedge compile in out`, returning an error that names the command.
fn compile_aot(wasmedge: &Path, input: &Path, ui: &Ui) -> Result<PathBuf> {
    let out = aot_path(input);
    let mut cmd = Command::new(wasmedge);
    cmd.arg("compile").arg(input).arg(&out);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let line = crate::toolchain::command_line(&cmd);
    let _step = ui.spinner(
        "Compiling",
        format!("`{}` ahead of time (WasmEdge)", shown(input)),
    );
    let waited = Supervised::spawn(&mut cmd)?.wait_output(TIMEOUT)?;
    match waited.status {
        Some(status) if status.success() => Ok(out),
        Some(status) => bail!(
            "`{line}` failed ({status}): {}",
            String::from_utf8_lossy(&waited.stderr).trim()
        ),
        None => bail!("`{line}` did not finish in {} s", TIMEOUT.as_secs()),
    }
}

/// The `wasmedge` on PATH.
fn wasmedge_program() -> Option<PathBuf> {
    which::which(WASMEDGE).ok()
}

/// `wasmedge 0.17.1` from `wasmedge --version`.
fn wasmedge_version(wasmedge: &Path) -> String {
    match probe(wasmedge, &["--version"]) {
        Probe::Ran(line) => line,
        _ => WASMEDGE.to_string(),
    }
}

impl Target for WasmEdge {
    fn name(&self) -> &'static str {
        SPEC.name
    }

    fn about(&self) -> &'static str {
        "WASI preview 1 module for WasmEdge, with the portable bench harness beside it; benched with the `wasmedge` CLI (interpreter and AOT)"
    }

    fn spec(&self) -> &'static TargetSpec {
        &SPEC
    }

    fn build(&self, project: &Project, release: bool, ui: &Ui) -> Result<BuildOutput> {
        let dir = project.artifact_dir(SPEC.name);
        let artifact = dir.join(format!("{}.wasm", project.name));
        let built = wasm_build::build_wasm(project, SPEC.name, &SPEC, release, artifact, ui)?;
        check_imports(&built.artifact)?;
        let harness = harness::emit(project, &dir, release, ui)?;
        if let Some(harness) = &harness {
            check_imports(harness)?;
        }
        match wasmedge_program() {
            Some(wasmedge) => {
                compile_aot(&wasmedge, &built.artifact, ui)?;
                if let Some(harness) = &harness {
                    compile_aot(&wasmedge, harness, ui)?;
                }
            }
            None => ui.note(format!(
                "`{WASMEDGE}` is not on PATH, so there is no ahead-of-time compiled copy; {INSTALL_WASMEDGE}"
            )),
        }
        Ok(built)
    }

    fn summary(&self, built: &BuildOutput) -> Result<String> {
        let mut lines = vec![wasm_build::summary(built)];
        let size = |p: &Path| std::fs::metadata(p).ok().map(|m| m.len());
        let aot = aot_path(&built.artifact);
        match size(&aot) {
            Some(n) => lines.push(format!(
                "{}  {}  (WasmEdge AOT: run it with `wasmedge --run-mode aot`)",
                shown(&aot),
                bytes(n)
            )),
            None => lines.push(format!(
                "no AOT copy: `{WASMEDGE}` was not on PATH at build time"
            )),
        }
        let harness = harness_path(&built.artifact)?;
        if let Some(n) = size(&harness) {
            lines.push(format!(
                "{}  {}  (bench harness: `wasmedge {name}`, `wasmtime run {name}`, `node harness-node.mjs {name}`)",
                shown(&harness),
                bytes(n),
                name = harness
                    .file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default()
            ));
        }
        Ok(lines.join("\n"))
    }

    fn open(&self, project: &Project, path: &Path) -> Result<BuildOutput> {
        wasm_build::open_wasm(project, path, SPEC.name)
    }

    fn unavailable(&self) -> Option<String> {
        match wasmedge_program() {
            Some(_) => None,
            None => Some(format!("`{WASMEDGE}` is not on PATH; {INSTALL_WASMEDGE}")),
        }
    }

    fn execute(&self, job: &Job<'_>, progress: &mut dyn FnMut(Progress)) -> Result<Execution> {
        self.execute_all(job, progress)?
            .into_iter()
            .next()
            .context("WasmEdge ran nothing; this is a bug in cargo-medwasm")
    }

    fn execute_all(
        &self,
        job: &Job<'_>,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Vec<Execution>> {
        let wasmedge = wasmedge_program()
            .with_context(|| format!("`{WASMEDGE}` is not on PATH; {INSTALL_WASMEDGE}"))?;
        let harness = harness_path(job.artifact)?;
        if !harness.is_file() {
            bail!(
                "`{}` is missing: build with `cargo medwasm build --target wasmedge` (it needs stored test vectors)",
                harness.display()
            );
        }
        let version = wasmedge_version(&wasmedge);
        let mut modes = vec![("interpreter", harness.clone(), false)];
        let aot = aot_path(&harness);
        if aot.is_file() {
            modes.push(("AOT", aot, true));
        }
        progress(Progress::Phase {
            verb: "WasmEdge",
            len: modes.len() as u64,
        });
        let mut executions = Vec::new();
        for (mode, file, run_aot) in modes {
            let mut cmd = Command::new(&wasmedge);
            // Without `--run-mode aot`, WasmEdge 0.17 runs an AOT file in its
            // interpreter, silently and about 100 times slower.
            if run_aot {
                cmd.args(["--run-mode", "aot"]);
            }
            cmd.arg(&file).arg(job.runs.to_string());
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
            let line = crate::toolchain::command_line(&cmd);
            let started = Instant::now();
            let waited = Supervised::spawn(&mut cmd)?.wait_output(TIMEOUT)?;
            let process_us = started.elapsed().as_secs_f64() * 1e6;
            match waited.status {
                Some(status) if status.success() => {}
                Some(status) => bail!(
                    "`{line}` failed ({status}): {}",
                    String::from_utf8_lossy(&waited.stderr).trim()
                ),
                None => bail!(
                    "`{line}` did not finish in {} s; with a slow model, lower `--runs`",
                    TIMEOUT.as_secs()
                ),
            }
            let runtime = format!("{version} ({mode}, harness)");
            let mut execution =
                harness::execution(&waited.stdout, job.manifest, runtime, Some(process_us))
                    .with_context(|| format!("`{line}`"))?;
            execution.latency.cold_start_cached_us = None;
            executions.push(execution);
            progress(Progress::Step);
        }
        Ok(executions)
    }

    fn checks(&self, sysroot: Option<&Path>) -> Vec<Check> {
        let wasmedge = match wasmedge_program() {
            Some(path) => match probe(&path, &["--version"]) {
                Probe::Ran(version) => Check::ok(WASMEDGE, version),
                _ => Check::ok(WASMEDGE, path.display().to_string()),
            },
            None => Check::missing(
                WASMEDGE,
                false,
                "runs `cargo medwasm bench --target wasmedge` (the build does not need it)",
                INSTALL_WASMEDGE,
            ),
        };
        vec![prereq::rust_target(&SPEC, sysroot), wasmedge]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_outside_wasi_preview1_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let mut module = walrus::Module::default();
        let ty = module.types.add(&[], &[]);
        module.add_import_func("wasi_snapshot_preview1", "fd_write", ty);
        let ok = dir.path().join("ok.wasm");
        std::fs::write(&ok, module.emit_wasm()).unwrap();
        check_imports(&ok).unwrap();
        module.add_import_func("wasi:io/streams@0.2.0", "write", ty);
        module.add_import_func("wasi_snapshot_preview1", "thread_spawn", ty);
        let bad = dir.path().join("bad.wasm");
        std::fs::write(&bad, module.emit_wasm()).unwrap();
        let err = check_imports(&bad).unwrap_err().to_string();
        assert!(
            err.contains("`wasi:io/streams@0.2.0::write`, `wasi_snapshot_preview1::thread_spawn`"),
            "{err}"
        );
    }
}

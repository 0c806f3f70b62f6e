//! The `wasmtime` target: a WASI module (`wasm32-wasip1`, simd128) that imports
//! nothing, run and benched by the Wasmtime embedded in cargo-medwasm; any WASI
//! runtime runs the same file.

mod runner;

use std::path::Path;

use anyhow::Result;

use crate::artifact::BuildOutput;
use crate::prereq::{self, Check};
use crate::project::Project;
use crate::protocol::{Execution, Job, Progress};
use crate::targets::target::Target;
use crate::toolchain::{self, TargetSpec};
use crate::ui::Ui;
use crate::wasm_build;

/// The target's Rust facts.
pub const SPEC: TargetSpec = TargetSpec {
    name: "wasmtime",
    triple: "wasm32-wasip1",
    // The f32 kernels have simd128 versions; every engine we target supports it.
    rustflags: &["-C", "target-feature=+simd128"],
    purpose: "`cargo medwasm build --target wasmtime`",
    buildable: true,
};

/// WASI module for Wasmtime (and any WASI runtime).
#[derive(Debug, Clone, Copy, Default)]
pub struct Wasmtime;

impl Target for Wasmtime {
    fn name(&self) -> &'static str {
        SPEC.name
    }

    fn about(&self) -> &'static str {
        "WASI module for Wasmtime (and any WASI runtime); benched in the embedded Wasmtime"
    }

    fn spec(&self) -> &'static TargetSpec {
        &SPEC
    }

    fn build(&self, project: &Project, release: bool, ui: &Ui) -> Result<BuildOutput> {
        let artifact = project
            .artifact_dir(SPEC.name)
            .join(format!("{}.wasm", project.name));
        wasm_build::build_wasm(project, SPEC.name, &SPEC, release, artifact, ui)
    }

    fn summary(&self, built: &BuildOutput) -> Result<String> {
        Ok(wasm_build::summary(built))
    }

    fn open(&self, project: &Project, path: &Path) -> Result<BuildOutput> {
        wasm_build::open_wasm(project, path, SPEC.name)
    }

    fn execute(&self, job: &Job<'_>, progress: &mut dyn FnMut(Progress)) -> Result<Execution> {
        runner::execute(job, progress)
    }

    fn checks(&self, sysroot: Option<&Path>) -> Vec<Check> {
        vec![
            prereq::rust_target(&SPEC, sysroot),
            Check::ok(
                "wasmtime",
                format!("{}, embedded", toolchain::EMBEDDED_WASMTIME),
            ),
        ]
    }
}

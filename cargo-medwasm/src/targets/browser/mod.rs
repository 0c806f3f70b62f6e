//! The `browser` target: the detector for `wasm32-unknown-unknown` (simd128) with a
//! generated ES module loader, its `.d.ts` and a `package.json` in
//! `target/medwasm/browser/pkg/`, for pages, bundlers and Node.js; benched in
//! headless Chromium. The Node.js target runs the same package.

mod chromium;
pub mod harness;
pub mod package;

use std::path::Path;

use anyhow::{Context as _, Result};

use crate::artifact::BuildOutput;
use crate::prereq::{self, Check};
use crate::project::Project;
use crate::protocol::{Execution, Job, Progress};
use crate::report::bytes;
use crate::targets::target::Target;
use crate::toolchain::TargetSpec;
use crate::ui::Ui;
use crate::wasm_build;

pub use self::chromium::{CHROMIUM_FLAGS, CHROMIUM_NAMES, INSTALL_CHROMIUM, chromium_program};

/// The target's Rust facts.
pub const SPEC: TargetSpec = TargetSpec {
    name: "browser",
    triple: "wasm32-unknown-unknown",
    // Every evergreen browser and Node.js 16+ run simd128.
    rustflags: &["-C", "target-feature=+simd128"],
    purpose: "`cargo medwasm build --target browser`",
    buildable: true,
};

/// ES module package for browsers, bundlers and Node.js.
#[derive(Debug, Clone, Copy, Default)]
pub struct Browser;

impl Target for Browser {
    fn name(&self) -> &'static str {
        SPEC.name
    }

    fn about(&self) -> &'static str {
        "ES module package for browsers, bundlers and Node.js (`target/medwasm/browser/pkg/`); benched in headless Chromium"
    }

    fn spec(&self) -> &'static TargetSpec {
        &SPEC
    }

    fn build(&self, project: &Project, release: bool, ui: &Ui) -> Result<BuildOutput> {
        let artifact = package::package_dir(project).join(format!("{}.wasm", project.name));
        let mut built = wasm_build::build_wasm(project, SPEC.name, &SPEC, release, artifact, ui)?;
        let js = package::write_package(project, &built.artifact, &built.embedded)?;
        // The loader ships with the module, so it counts as code.
        built.size.total += js;
        built.size.code += js;
        Ok(built)
    }

    fn summary(&self, built: &BuildOutput) -> Result<String> {
        let package = package::measure_package(&built.artifact, &built.embedded)?;
        Ok(format!(
            "{}\npackage: JS {} + wasm {}; without weights {} (budget 150 KB), gzip {} (weights included)",
            wasm_build::summary(built),
            bytes(package.js),
            bytes(package.wasm),
            bytes(package.without_weights()),
            bytes(package.gzip)
        ))
    }

    fn open(&self, project: &Project, path: &Path) -> Result<BuildOutput> {
        // The package folder stands for its `.wasm`.
        let wasm = if path.is_dir() {
            path.join(format!("{}.wasm", project.name))
        } else {
            path.to_path_buf()
        };
        let mut built = wasm_build::open_wasm(project, &wasm, SPEC.name)?;
        let loader = package::module_file(&wasm)?;
        let js = std::fs::metadata(&loader)
            .with_context(|| {
                format!(
                    "`{}` has no loader `{}` beside it; pass the `.wasm` of a package written by `cargo medwasm build --target browser`",
                    wasm.display(),
                    loader.display()
                )
            })?
            .len();
        built.size.total += js;
        built.size.code += js;
        Ok(built)
    }

    fn unavailable(&self) -> Option<String> {
        chromium::unavailable()
    }

    fn execute(&self, job: &Job<'_>, progress: &mut dyn FnMut(Progress)) -> Result<Execution> {
        chromium::execute(job, progress)
    }

    fn checks(&self, sysroot: Option<&Path>) -> Vec<Check> {
        vec![prereq::rust_target(&SPEC, sysroot), chromium::check()]
    }
}

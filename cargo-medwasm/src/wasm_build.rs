//! The build step of the wasm targets: cargo compiles the detector's `cdylib` for the
//! target's triple; a release artifact loses every custom section and goes through
//! Binaryen's `-O3`; the `medwasm.manifest` section is appended last. Also reading a
//! wasm artifact back (`bench --artifact`) and what `build` prints about one.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, Result, bail};

use crate::artifact::{BuildOutput, Embedded, read_embedded, shown};
use crate::files::write_atomically;
use crate::manifest::CUSTOM_SECTION;
use crate::project::Project;
use crate::report::{Size, bytes};
use crate::sandbox::Imports;
use crate::toolchain::{Rustc, TargetSpec};
use crate::ui::Ui;
use crate::{cargo, wasm};

/// Builds `project` for `spec` into `artifact` (a `.wasm` path) and returns it with
/// its size split. `target` is recorded as the building target.
pub fn build_wasm(
    project: &Project,
    target: &str,
    spec: &TargetSpec,
    release: bool,
    artifact: PathBuf,
    ui: &Ui,
) -> Result<BuildOutput> {
    if !project.is_cdylib {
        bail!(
            "`{}` does not build a `cdylib`, so there is no `.wasm` to make a detector of; add this to {}:\n\n[lib]\ncrate-type = [\"cdylib\", \"rlib\"]",
            project.name,
            project.manifest_path.display()
        );
    }
    Rustc::in_dir(&project.root).require_target(spec)?;
    let embedded = Embedded::for_build(project, target, release)?;

    let compiled = cargo::build_lib(project, spec, release, ui)?;
    let wasm = std::fs::read(&compiled)
        .with_context(|| format!("cannot read cargo's output `{}`", compiled.display()))?;
    // A detector reaches nothing outside its own memory: no WASI, no JS glue. An
    // import would be a way out (and the embedded runner refuses it anyway).
    let refused = Imports::Nothing.refused_names(&wasm::imports(&wasm)?);
    if !refused.is_empty() {
        bail!(
            "the `{}` build of `{}` imports {}, but a detector imports nothing (`docs/detector-abi.md`, `docs/security.md`): a dependency uses the standard library's I/O, clocks or randomness, or JS bindings; remove it, or keep it out of the `wasm32` build",
            spec.triple,
            project.name,
            refused.join(", ")
        );
    }
    if let Some(dir) = artifact.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create `{}`", dir.display()))?;
    }

    let mut wasm = if release {
        let step = ui.spinner("Optimizing", format!("{} (wasm-opt -O3)", project.name));
        let started = Instant::now();
        let optimized = wasm::optimize(&wasm::strip_custom_sections(&wasm)?, &artifact)?;
        drop(step);
        ui.detail(format_args!(
            "walrus and wasm-opt took {:.1?}: {} -> {} bytes",
            started.elapsed(),
            wasm.len(),
            optimized.len()
        ));
        optimized
    } else {
        wasm
    };
    // Appended last so that nothing in the pipeline can drop or reorder it.
    let section = serde_json::to_vec(&embedded).context("cannot serialize the build manifest")?;
    wasm::set_custom_section(&mut wasm, CUSTOM_SECTION, &section)?;

    let size = wasm::size_split(&wasm, embedded.manifest.blob_bytes)?;
    write_atomically(&artifact, &wasm)?;
    Ok(BuildOutput {
        artifact,
        size,
        embedded,
    })
}

/// A wasm artifact built earlier for `target` from `project`, read as it is.
pub fn open_wasm(project: &Project, path: &Path, target: &str) -> Result<BuildOutput> {
    let wasm = std::fs::read(path).with_context(|| format!("cannot read `{}`", path.display()))?;
    let embedded = read_embedded(&wasm)
        .with_context(|| format!("`{}` is not a WebAssembly module", path.display()))?
        .with_context(|| {
            format!(
                "`{}` has no `{CUSTOM_SECTION}` section, so it is not a detector built by `cargo medwasm build`",
                path.display()
            )
        })?;
    embedded.check_matches(path, project, target)?;
    let size = wasm::size_split(&wasm, embedded.manifest.blob_bytes)?;
    Ok(BuildOutput {
        artifact: path.to_path_buf(),
        size,
        embedded,
    })
}

/// `target/medwasm/wasmtime/x.wasm  41.2 KiB  (code 18.0 KiB, weights 22.9 KiB, metadata 0.3 KiB)`.
pub fn summary(output: &BuildOutput) -> String {
    let Size {
        total,
        code,
        weights,
        metadata,
    } = output.size;
    format!(
        "{}  {}  (code {}, weights {}, metadata {})",
        shown(&output.artifact),
        bytes(total),
        bytes(code),
        bytes(weights),
        bytes(metadata)
    )
}

//! What a build produces: the artifact, its size split, and the record every
//! artifact carries (the model manifest and how it was built), which `bench
//! --artifact` reads back to refuse an artifact of another target or detector.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};

use crate::manifest::{CUSTOM_SECTION, Manifest};
use crate::project::Project;
use crate::report::Size;
use crate::toolchain::Rustc;

/// What a build produced.
#[derive(Debug, Clone)]
pub struct BuildOutput {
    /// The final artifact.
    pub artifact: PathBuf,
    /// Sizes of the artifact.
    pub size: Size,
    /// What was embedded in the artifact's `medwasm.manifest` record.
    pub embedded: Embedded,
}

/// The JSON in the `medwasm.manifest` custom section (see `docs/detector-abi.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Embedded {
    /// The model manifest written by `cargo medwasm import`.
    pub manifest: Manifest,
    /// How the artifact was built.
    pub build: BuildInfo,
}

/// How an artifact was built. No timestamps or paths: artifacts are reproducible.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildInfo {
    /// `cargo-medwasm <version>`.
    pub tool: String,
    /// The `--target` that built it: `wasmtime`, `browser`, `mcu` …
    pub target: String,
    /// `release` or `debug`.
    pub profile: String,
    /// `rustc -V` of the toolchain that compiled it.
    pub rustc: String,
    /// Version of the `medwasm` SDK the detector depends on.
    pub sdk: Option<String>,
    /// The detector's package name. Absent in artifacts built before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
}

impl Embedded {
    /// The record for building `project` for `target`: reads the model manifest and
    /// asks `rustc` for its version.
    pub fn for_build(project: &Project, target: &str, release: bool) -> Result<Embedded> {
        let manifest = project.manifest()?;
        let rustc = Rustc::in_dir(&project.root);
        Ok(Embedded {
            manifest,
            build: BuildInfo {
                tool: format!("cargo-medwasm {}", env!("CARGO_PKG_VERSION")),
                target: target.to_string(),
                profile: if release { "release" } else { "debug" }.to_string(),
                rustc: rustc.version()?,
                sdk: project.sdk_version.clone(),
                package: Some(project.name.clone()),
            },
        })
    }

    /// Fails unless this record says the artifact at `path` was built by `target`
    /// for `project`'s detector with the model the project holds now.
    pub fn check_matches(&self, path: &Path, project: &Project, target: &str) -> Result<()> {
        let shown = path.display();
        if self.build.target != target {
            bail!(
                "`{shown}` was built for target `{}`, not `{target}`; pass an artifact of `cargo medwasm build --target {target}`, or bench it with `--target {}`",
                self.build.target,
                self.build.target
            );
        }
        match &self.build.package {
            Some(package) if *package == project.name => {}
            Some(package) => bail!(
                "`{shown}` is the detector `{package}`, not `{}`; bench it from its own project (`--manifest-path <{package}>/Cargo.toml`)",
                project.name
            ),
            None => bail!(
                "`{shown}` does not record which detector it is (built by {}); rebuild it with `cargo medwasm build --target {target}`",
                self.build.tool
            ),
        }
        let current = project.manifest()?;
        if self.manifest.blob_sha256 != current.blob_sha256 {
            bail!(
                "`{shown}` holds another model (blob sha256 {}…) than the project's `model/` (sha256 {}…); rebuild it, or import the model it was built with",
                short(&self.manifest.blob_sha256),
                short(&current.blob_sha256)
            );
        }
        Ok(())
    }
}

fn short(hex: &str) -> &str {
    hex.get(..12).unwrap_or(hex)
}

/// Reads the `medwasm.manifest` section of a built wasm artifact, if it has one.
pub fn read_embedded(wasm: &[u8]) -> Result<Option<Embedded>> {
    let Some(section) = crate::wasm::custom_section(wasm, CUSTOM_SECTION)? else {
        return Ok(None);
    };
    let embedded = serde_json::from_slice(section).context(
        "the `medwasm.manifest` section is not valid; rebuild with `cargo medwasm build`",
    )?;
    Ok(Some(embedded))
}

/// `path` relative to the current directory when it is inside it, for what commands
/// print.
pub fn shown(path: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| path.to_path_buf())
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wasm::{set_custom_section, small_module};

    #[test]
    fn embedded_manifest_round_trips() {
        let spec = crate::manifest::TensorSpec {
            name: "x".into(),
            shape: vec![1, 3],
            dtype: "f32".into(),
            quant: None,
        };
        let embedded = Embedded {
            manifest: Manifest {
                format_version: 1,
                source: crate::manifest::Source {
                    file: "m.onnx".into(),
                    sha256: "00".into(),
                    format: "onnx".into(),
                    opset: 17,
                    producer: "test 1".into(),
                    input_shapes: vec![vec![1, 3]],
                    min_runtime_version: None,
                    signatures: vec![],
                },
                inputs: vec![spec.clone()],
                outputs: vec![spec],
                arena_bytes: 64,
                weights_bytes: 48,
                blob_bytes: 100,
                blob_sha256: "ff".into(),
                nodes: 1,
                macs: 9,
                ops: vec![("Gemm".into(), 1)],
                fc_requant: None,
                reference: None,
                notes: vec![],
                converter: "cargo-medwasm 0.1.0".into(),
            },
            build: BuildInfo {
                tool: "cargo-medwasm 0.1.0".into(),
                target: "wasmtime".into(),
                profile: "release".into(),
                rustc: "rustc 1.95.0 (59807616e 2026-04-14)".into(),
                sdk: Some("0.1.0".into()),
                package: Some("vitals-demo".into()),
            },
        };
        let mut wasm = small_module();
        assert_eq!(read_embedded(&wasm).unwrap(), None);
        let json = serde_json::to_vec(&embedded).unwrap();
        set_custom_section(&mut wasm, CUSTOM_SECTION, &json).unwrap();
        assert_eq!(read_embedded(&wasm).unwrap(), Some(embedded));
        // The documented shape: two top-level keys, no timestamps.
        let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        let keys: Vec<_> = value.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["build", "manifest"]);
    }
}

//! Finding the detector project and resolving its configuration.
//!
//! What the user typed (clap) is merged with `[package.metadata.medwasm]` into one
//! [`Project`] before any work starts; unknown metadata keys are warned about.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use serde::Deserialize;

use crate::manifest::{BLOB_FILE, MANIFEST_FILE, Manifest};
use crate::sandbox::{Limits, Source, parse_size};

/// Default absolute tolerance for conformance checks.
pub const DEFAULT_ABS_TOL: f32 = 1e-4;
/// Default relative tolerance for conformance checks.
pub const DEFAULT_REL_TOL: f32 = 1e-3;
/// Warm runs when neither `--runs` nor `[package.metadata.medwasm] runs` is given.
pub const DEFAULT_RUNS: usize = 200;

/// `[package.metadata.medwasm]` as written in a detector's Cargo.toml.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Metadata {
    /// Target used when `--target` is not given.
    pub default_target: Option<String>,
    /// Absolute tolerance for conformance.
    pub abs_tolerance: Option<f32>,
    /// Relative tolerance for conformance.
    pub rel_tolerance: Option<f32>,
    /// Warm runs for latency figures.
    pub runs: Option<usize>,
    /// Board of the `mcu` target: a built-in name or a board file.
    pub board: Option<String>,
    /// Quantization steps an int8 output element may be off (default 0).
    pub int8_tolerance_steps: Option<u32>,
    /// Wall-clock milliseconds one call into the detector may take under the
    /// embedded Wasmtime (`bench --target wasmtime`).
    pub deadline_ms: Option<u64>,
    /// The detector's linear memory cap there: bytes, or a string such as `"256MiB"`.
    pub max_memory: Option<SizeValue>,
    /// The cap on its table's elements there.
    pub max_table_elements: Option<u64>,
}

/// A byte size as written in TOML: a number of bytes or a string with a unit.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum SizeValue {
    /// `max-memory = 268435456`.
    Bytes(u64),
    /// `max-memory = "256MiB"`.
    Text(String),
}

const KNOWN_KEYS: &[&str] = &[
    "default-target",
    "abs-tolerance",
    "rel-tolerance",
    "runs",
    "board",
    "int8-tolerance-steps",
    "deadline-ms",
    "max-memory",
    "max-table-elements",
];

/// A detector project, located with cargo_metadata.
#[derive(Debug, Clone)]
pub struct Project {
    /// Package name from Cargo.toml.
    pub name: String,
    /// Directory holding the package's Cargo.toml.
    pub root: PathBuf,
    /// Path of the package's Cargo.toml.
    pub manifest_path: PathBuf,
    /// Cargo's target directory for this package.
    pub target_dir: PathBuf,
    /// Resolved `[package.metadata.medwasm]`.
    pub metadata: Metadata,
    /// Warnings found while resolving (misspelled keys …).
    pub warnings: Vec<String>,
    /// Version of the `medwasm` SDK the package resolved to, if it depends on it.
    pub sdk_version: Option<String>,
    /// The folder of that SDK when it is a path dependency (`None` from a registry);
    /// generated crates that link the detector (the WASI harness) depend on the same.
    pub sdk_path: Option<PathBuf>,
    /// Whether the package's lib has `crate-type` containing `cdylib`.
    pub is_cdylib: bool,
}

impl Project {
    /// Locates the package whose Cargo.toml is at `manifest_path`, or the one in the
    /// current directory.
    pub fn locate(manifest_path: Option<&Path>) -> Result<Project> {
        let mut cmd = cargo_metadata::MetadataCommand::new();
        if let Some(path) = manifest_path {
            cmd.manifest_path(path);
        }
        let meta = cmd.exec().map_err(|e| {
            anyhow::anyhow!(
                "no detector project here ({e}); run this inside a project made by `cargo medwasm new <name>`, or pass `--manifest-path <Cargo.toml>`"
            )
        })?;
        let package = match meta.root_package() {
            Some(p) => p.clone(),
            None => bail!(
                "`{}` is a virtual workspace; run this inside a detector package or pass `--manifest-path <detector>/Cargo.toml`",
                meta.workspace_root
            ),
        };
        let manifest_path: PathBuf = package.manifest_path.clone().into();
        let root = manifest_path
            .parent()
            .context("package manifest has no parent directory")?
            .to_path_buf();
        let mut warnings = Vec::new();
        let raw = package
            .metadata
            .get("medwasm")
            .cloned()
            .unwrap_or(serde_json::Value::Null);
        let metadata = if raw.is_null() {
            Metadata::default()
        } else {
            if let Some(obj) = raw.as_object() {
                for key in obj.keys() {
                    if !KNOWN_KEYS.contains(&key.as_str()) {
                        warnings.push(format!(
                            "unknown key `{key}` in `[package.metadata.medwasm]` of {}; known keys: {}",
                            manifest_path.display(),
                            KNOWN_KEYS.join(", ")
                        ));
                    }
                }
            }
            serde_json::from_value(raw).with_context(|| {
                format!(
                    "`[package.metadata.medwasm]` in {} has a value of the wrong type",
                    manifest_path.display()
                )
            })?
        };
        let sdk = meta.packages.iter().find(|p| p.name.as_str() == "medwasm");
        let sdk_version = sdk.map(|p| p.version.to_string());
        let sdk_path = sdk
            .filter(|p| p.source.is_none())
            .and_then(|p| p.manifest_path.parent())
            .map(|dir| dir.as_std_path().to_path_buf());
        let is_cdylib = package.targets.iter().any(|t| {
            t.kind
                .iter()
                .any(|k| matches!(k, cargo_metadata::TargetKind::CDyLib))
        });
        Ok(Project {
            name: package.name.to_string(),
            root,
            manifest_path,
            target_dir: meta.target_directory.clone().into(),
            metadata,
            warnings,
            sdk_version,
            sdk_path,
            is_cdylib,
        })
    }

    /// Name with `-` replaced by `_`, as rustc names artifacts.
    pub fn crate_name(&self) -> String {
        self.name.replace('-', "_")
    }

    /// `model/` folder of the project.
    pub fn model_dir(&self) -> PathBuf {
        self.root.join("model")
    }

    /// `vectors/` folder of the project.
    pub fn vectors_dir(&self) -> PathBuf {
        self.root.join("vectors")
    }

    /// Path of the model manifest.
    pub fn manifest_file(&self) -> PathBuf {
        self.model_dir().join(MANIFEST_FILE)
    }

    /// Path of the compact model blob.
    pub fn blob_file(&self) -> PathBuf {
        self.model_dir().join(BLOB_FILE)
    }

    /// Reads the model manifest, with an error saying to import first.
    pub fn manifest(&self) -> Result<Manifest> {
        Manifest::read(&self.manifest_file())
    }

    /// Where artifacts for `target` go: `target/medwasm/<target>/`.
    pub fn artifact_dir(&self, target: &str) -> PathBuf {
        self.target_dir.join("medwasm").join(target)
    }

    /// Warm runs for latency figures: `given` (from `--runs`), else `runs` in the
    /// metadata, else [`DEFAULT_RUNS`]. Zero measures nothing and is refused.
    pub fn runs(&self, given: Option<usize>) -> Result<usize> {
        match given.or(self.metadata.runs) {
            Some(0) => bail!(
                "0 warm runs measure nothing: pass `--runs 1` or more, or set `runs` in `[package.metadata.medwasm]` to at least 1"
            ),
            Some(runs) => Ok(runs),
            None => Ok(DEFAULT_RUNS),
        }
    }

    /// Absolute tolerance to use.
    pub fn abs_tolerance(&self) -> f32 {
        self.metadata.abs_tolerance.unwrap_or(DEFAULT_ABS_TOL)
    }

    /// Relative tolerance to use.
    pub fn rel_tolerance(&self) -> f32 {
        self.metadata.rel_tolerance.unwrap_or(DEFAULT_REL_TOL)
    }

    /// The sandbox limits of the embedded Wasmtime: [`Limits::DETECTOR`] with what
    /// `deadline-ms`, `max-memory` and `max-table-elements` in the metadata change.
    pub fn limits(&self) -> Result<Limits> {
        let m = &self.metadata;
        let mut limits = Limits {
            source: Source::Metadata,
            ..Limits::DETECTOR
        };
        if let Some(ms) = m.deadline_ms {
            if ms == 0 {
                bail!(
                    "`deadline-ms = 0` in `[package.metadata.medwasm]` of {} lets no call run: give milliseconds, such as `deadline-ms = 10000`",
                    self.manifest_path.display()
                );
            }
            limits.deadline = Duration::from_millis(ms);
        }
        match &m.max_memory {
            None => {}
            Some(SizeValue::Bytes(0)) => bail!(
                "`max-memory = 0` in `[package.metadata.medwasm]` of {} leaves no memory: give a size such as `max-memory = \"256MiB\"`",
                self.manifest_path.display()
            ),
            Some(SizeValue::Bytes(n)) => limits.max_memory = *n,
            Some(SizeValue::Text(text)) => {
                limits.max_memory = parse_size(text).map_err(|e| {
                    anyhow!(
                        "`max-memory` in `[package.metadata.medwasm]` of {}: {e}",
                        self.manifest_path.display()
                    )
                })?;
            }
        }
        if let Some(n) = m.max_table_elements {
            limits.max_table_elements = n;
        }
        Ok(limits)
    }

    /// Stored input vectors for input `i`: `vectors/inputs.npy`, `vectors/inputs.<i>.npy`.
    pub fn inputs_file(&self, i: usize) -> PathBuf {
        self.vectors_dir().join(indexed("inputs", i))
    }

    /// Stored expected outputs for output `i`: `vectors/expected.npy`, `vectors/expected.<i>.npy`.
    pub fn expected_file(&self, i: usize) -> PathBuf {
        self.vectors_dir().join(indexed("expected", i))
    }
}

/// `stem.npy` for index 0, `stem.<i>.npy` after: how vector files are numbered.
pub fn indexed(stem: &str, i: usize) -> String {
    if i == 0 {
        format!("{stem}.npy")
    } else {
        format!("{stem}.{i}.npy")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A project whose `[package.metadata.medwasm]` is `metadata` (as JSON, the way
    /// `cargo metadata` hands it over).
    fn project(metadata: serde_json::Value) -> Project {
        Project {
            name: "d".into(),
            root: PathBuf::from("/p"),
            manifest_path: PathBuf::from("/p/Cargo.toml"),
            target_dir: PathBuf::from("/p/target"),
            metadata: serde_json::from_value(metadata).expect("metadata of the right types"),
            warnings: vec![],
            sdk_version: None,
            sdk_path: None,
            is_cdylib: true,
        }
    }

    #[test]
    fn sandbox_limits_come_from_the_metadata() {
        let defaults = project(serde_json::json!({})).limits().unwrap();
        assert_eq!(
            defaults,
            Limits {
                source: Source::Metadata,
                ..Limits::DETECTOR
            }
        );
        let set = project(serde_json::json!({
            "deadline-ms": 2500, "max-memory": "64MiB", "max-table-elements": 500
        }))
        .limits()
        .unwrap();
        assert_eq!(set.deadline, Duration::from_millis(2500));
        assert_eq!(set.max_memory, 64 << 20);
        assert_eq!(set.max_table_elements, 500);
        let bytes = project(serde_json::json!({ "max-memory": 1_048_576 }))
            .limits()
            .unwrap();
        assert_eq!(bytes.max_memory, 1 << 20);

        let err = |m| format!("{:#}", project(m).limits().unwrap_err());
        let e = err(serde_json::json!({ "max-memory": "64MB" }));
        assert!(
            e.contains("`max-memory` in `[package.metadata.medwasm]` of /p/Cargo.toml")
                && e.contains("`MB` is not a unit")
                && e.contains("`256MiB`"),
            "{e}"
        );
        let e = err(serde_json::json!({ "deadline-ms": 0 }));
        assert!(e.contains("`deadline-ms = 10000`"), "{e}");
        let e = err(serde_json::json!({ "max-memory": 0 }));
        assert!(e.contains("leaves no memory"), "{e}");
        assert!(KNOWN_KEYS.contains(&"deadline-ms") && KNOWN_KEYS.contains(&"max-memory"));
    }
}

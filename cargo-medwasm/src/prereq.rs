//! Prerequisites as `cargo medwasm doctor` reports them: one [`Check`] per tool or
//! Rust target, each target module contributing its own, and the probe that runs a
//! tool to read its version.

use std::path::Path;
use std::process::Command;

use crate::toolchain::{self, TargetSpec};

/// Whether a prerequisite is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Installed (and recent enough).
    Ok,
    /// Required and missing (or too old).
    Missing,
    /// Optional and missing.
    OptionalMissing,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Missing => "missing",
            Status::OptionalMissing => "optional-missing",
        }
    }
}

/// One line of the checklist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What is checked.
    pub name: String,
    /// Found or not.
    pub status: Status,
    /// The version found, or what the item is for.
    pub detail: String,
    /// How to install it, when missing.
    pub fix: Option<String>,
    /// The rustup target `--fix` can add, for a missing target.
    pub rustup_target: Option<&'static str>,
}

impl Check {
    pub fn ok(name: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            status: Status::Ok,
            detail: detail.into(),
            fix: None,
            rustup_target: None,
        }
    }

    pub fn missing(
        name: impl Into<String>,
        required: bool,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check {
            name: name.into(),
            status: if required {
                Status::Missing
            } else {
                Status::OptionalMissing
            },
            detail: detail.into(),
            fix: Some(fix.into()),
            rustup_target: None,
        }
    }
}

/// What running a probe command gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// The program is not on `PATH`.
    NotFound,
    /// It ran and failed; its stderr (or status).
    Failed(String),
    /// It ran; the first non-empty line of its stdout.
    Ran(String),
}

pub fn probe(program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Probe {
    match Command::new(program).args(args).output() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Probe::NotFound,
        Err(e) => Probe::Failed(e.to_string()),
        Ok(out) if !out.status.success() => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let last = stderr.lines().rev().find(|l| !l.trim().is_empty());
            Probe::Failed(last.map_or_else(|| out.status.to_string(), |l| l.trim().to_string()))
        }
        Ok(out) => {
            let stdout = String::from_utf8_lossy(&out.stdout);
            let first = stdout.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            Probe::Ran(first.trim().to_string())
        }
    }
}

/// The check of `spec`'s Rust target against the standard libraries in `sysroot`.
pub fn rust_target(spec: &TargetSpec, sysroot: Option<&Path>) -> Check {
    let installed = sysroot.is_some_and(|s| toolchain::target_installed(s, spec.triple));
    rust_target_check(spec, installed)
}

/// The check of `spec`'s Rust target, installed or not.
pub fn rust_target_check(spec: &TargetSpec, installed: bool) -> Check {
    let name = format!("target {}", spec.triple);
    let detail = format!("for {}", spec.purpose);
    if installed {
        return Check::ok(name, detail);
    }
    Check {
        rustup_target: Some(spec.triple),
        ..Check::missing(
            name,
            spec.buildable,
            detail,
            format!("rustup target add {}", spec.triple),
        )
    }
}

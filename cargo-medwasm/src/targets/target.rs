//! What a target is: the one trait every target module implements, and the
//! `--target` choice users make among them.

use std::fmt;
use std::path::Path;

use anyhow::Result;

use crate::artifact::BuildOutput;
use crate::prereq::Check;
use crate::project::Project;
use crate::protocol::{Execution, Job, Progress};
use crate::toolchain::TargetSpec;
use crate::ui::Ui;

/// A place a detector runs: how it is built, how `bench` runs it, and what it needs
/// installed. One implementation per module under `targets/`; `targets::all()` lists
/// them.
pub trait Target: Sync + fmt::Debug {
    /// The `--target` value, the report's name and the folder under `target/medwasm/`.
    fn name(&self) -> &'static str;

    /// One line for `--help`.
    fn about(&self) -> &'static str;

    /// The Rust triple and flags the detector is compiled with for this target.
    fn spec(&self) -> &'static TargetSpec;

    /// The target whose build this one runs: itself, or another that produces the
    /// same artifact (Node.js runs the browser package). `bench` builds once per name.
    fn builds_as(&self) -> &'static str {
        self.name()
    }

    /// Builds the artifact: progress on stderr, nothing on stdout.
    fn build(&self, project: &Project, release: bool, ui: &Ui) -> Result<BuildOutput>;

    /// What `cargo medwasm build` prints on stdout about a build.
    fn summary(&self, built: &BuildOutput) -> Result<String>;

    /// An artifact built earlier (`bench --artifact`), read as it is: refused when it
    /// was built for another target, detector or model.
    fn open(&self, project: &Project, path: &Path) -> Result<BuildOutput>;

    /// Why this target cannot run on this machine (a missing browser, QEMU …), or
    /// `None` when it can. `--target all` skips the unavailable ones with this note.
    fn unavailable(&self) -> Option<String> {
        None
    }

    /// Runs every case of `job` once and measures latency.
    ///
    /// An error the detector returns (or a trap) for one case goes into that case's
    /// outcome; `Err` is for failures that leave nothing to report (the artifact does
    /// not load, does not speak the ABI, disagrees with the manifest …).
    fn execute(&self, job: &Job<'_>, progress: &mut dyn FnMut(Progress)) -> Result<Execution>;

    /// Every run of `job` this target makes, one report row each: one for most
    /// targets; one per mode for a runtime that has several (WasmEdge's interpreter
    /// and its ahead-of-time compiled code).
    fn execute_all(
        &self,
        job: &Job<'_>,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Vec<Execution>> {
        Ok(vec![self.execute(job, progress)?])
    }

    /// What `cargo medwasm doctor` checks for this target; `sysroot` is the Rust
    /// sysroot when `rustc` could tell it.
    fn checks(&self, sysroot: Option<&Path>) -> Vec<Check>;
}

/// What `--target` selects.
#[derive(Debug, Clone, Copy)]
pub enum Selection {
    /// Every target this machine can run.
    All,
    /// One target.
    One(&'static dyn Target),
}

//! `cargo medwasm bench`: run conformance and latency checks on each target and print
//! one report (see [`crate::bench`]).

use std::path::PathBuf;

use anyhow::{Context as _, Result};

use crate::args::{ProjectArgs, TargetArgs};
use crate::bench::{BenchOptions, ConformanceFailed, bench};
use crate::ui::Ui;

/// Run conformance and latency checks.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Where to bench (`all`: every target this machine has).
    #[command(flatten)]
    pub target: TargetArgs,
    /// Warm runs for the latency figures [default: `runs` in `[package.metadata.medwasm]`, else 200].
    #[arg(long)]
    pub runs: Option<usize>,
    /// Print JSON on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Bench the debug build instead of the release build.
    #[arg(long)]
    pub debug: bool,
    /// Bench this artifact as it is, without building: a `.wasm` (`wasmtime`, or the
    /// `browser`/`node` package's), or the `mcu` firmware ELF. It must have been built
    /// for `--target` from this project's model.
    #[arg(long, value_name = "PATH", conflicts_with = "debug")]
    pub artifact: Option<PathBuf>,
    /// The detector project.
    #[command(flatten)]
    pub project: ProjectArgs,
}

impl BenchArgs {
    /// Runs the bench, prints the report on stdout, and fails with
    /// [`ConformanceFailed`] when a vector disagrees.
    pub fn run(self, ui: &Ui) -> Result<()> {
        let mut project = self.project.locate(ui)?;
        self.target.apply(&mut project);
        let options = BenchOptions {
            selection: self.target.target,
            runs: self.runs,
            debug: self.debug,
            artifact: self.artifact,
        };
        let report = bench(&project, &options, ui)?;
        if self.json {
            let json = serde_json::to_string_pretty(&report)
                .context("cannot serialize the bench report")?;
            println!("{json}");
        } else {
            print!("{report}");
        }
        if report.passed() {
            Ok(())
        } else {
            let (failed, total) = report.failed_vectors();
            Err(ConformanceFailed { failed, total }.into())
        }
    }
}

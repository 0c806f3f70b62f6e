//! `cargo medwasm bench`: run conformance and latency checks on each target and print
//! one report (see [`crate::bench`]).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use crate::args::{ProjectArgs, TargetArgs};
use crate::bench::{BenchOptions, ConformanceFailed, bench};
use crate::files::write_atomically;
use crate::report::html;
use crate::targets::device::{Device, Runtime};
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
    /// Also write the report to DIR: `report.json` and `report.html`, a
    /// self-contained page with plots (no network needed to open it).
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
    /// Bench the debug build instead of the release build.
    #[arg(long)]
    pub debug: bool,
    /// Bench this artifact as it is, without building: a `.wasm` (`wasmtime`, or the
    /// `browser`/`node` package's), or the `mcu` firmware ELF. It must have been built
    /// for `--target` from this project's model.
    #[arg(long, value_name = "PATH", conflicts_with = "debug")]
    pub artifact: Option<PathBuf>,
    /// Also bench on a device over SSH (`ssh://user@host[:port]`), with the portable
    /// harness and the device's runtime; repeat for several (see docs/device-bench.md).
    #[arg(long = "device", value_name = "ADDRESS", conflicts_with = "artifact")]
    pub devices: Vec<String>,
    /// Also bench on every device of a fleet file (`[[device]]` with `name`,
    /// `address` and `runtime`).
    #[arg(
        long = "devices",
        value_name = "FLEET.toml",
        conflicts_with = "artifact"
    )]
    pub devices_file: Option<PathBuf>,
    /// The runtime the devices run the harness with (a fleet file may set it per
    /// device).
    #[arg(long, value_enum, default_value = "wasmtime")]
    pub runtime: Runtime,
    /// The detector project.
    #[command(flatten)]
    pub project: ProjectArgs,
}

impl BenchArgs {
    /// Runs the bench, prints the report on stdout, and fails with
    /// [`ConformanceFailed`] when a vector disagrees.
    pub fn run(self, ui: &Ui) -> Result<()> {
        let mut project = self.project.locate(ui)?;
        let selection = self.target.apply(&mut project)?;
        let mut devices = self
            .devices
            .iter()
            .map(|a| Device::parse(a, self.runtime))
            .collect::<Result<Vec<_>>>()?;
        if let Some(fleet) = &self.devices_file {
            devices.extend(Device::fleet(fleet, self.runtime)?);
        }
        let options = BenchOptions {
            selection,
            runs: self.runs,
            debug: self.debug,
            artifact: self.artifact,
            devices,
        };
        let report = bench(&project, &options, ui)?;
        let json =
            serde_json::to_string_pretty(&report).context("cannot serialize the bench report")?;
        if let Some(dir) = &self.report {
            write_report(dir, &json, &html::render(&report))?;
            ui.status("Wrote", format!("{}", dir.join("report.html").display()));
        }
        if self.json {
            println!("{json}");
        } else {
            print!("{report}");
        }
        if report.passed() {
            Ok(())
        } else {
            let (failed, total) = report.failed_vectors();
            let unbenched = report.unbenched_targets();
            Err(ConformanceFailed {
                failed,
                total,
                unbenched,
            }
            .into())
        }
    }
}

/// Writes `report.json` and `report.html` into `dir`, creating it.
fn write_report(dir: &Path, json: &str, html: &str) -> Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the report folder `{}`", dir.display()))?;
    write_atomically(&dir.join("report.json"), format!("{json}\n").as_bytes())?;
    write_atomically(&dir.join("report.html"), html.as_bytes())
}

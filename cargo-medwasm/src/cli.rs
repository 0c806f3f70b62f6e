//! Command-line entry: `cargo medwasm <command>`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::args::Verbosity;
use crate::bench::ConformanceFailed;
use crate::cmd;
use crate::ui::{self, Ui};

/// Turn ONNX and TFLite models into small, sandboxed detectors and prove they behave the same everywhere.
#[derive(Debug, Parser)]
#[command(name = "cargo medwasm", bin_name = "cargo", version)]
pub enum CargoCli {
    /// cargo-medwasm: build, import and bench medwasm detectors.
    #[command(name = "medwasm", version)]
    Medwasm(Cli),
}

/// Global options and the command to run.
#[derive(Debug, clap::Args)]
pub struct Cli {
    /// How much to print.
    #[command(flatten)]
    pub verbosity: Verbosity,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scaffold a new detector project from a template.
    New(cmd::new::NewArgs),
    /// Convert an ONNX or TFLite model into the compact format and embed it in this detector.
    Import(cmd::import::ImportArgs),
    /// Build the detector for a target and optimize the artifact.
    Build(cmd::build::BuildArgs),
    /// Run conformance and latency checks of the built detector.
    Bench(cmd::bench::BenchArgs),
    /// Serve the detector's demo page on localhost (browser target).
    Serve(cmd::serve::ServeArgs),
    /// Check (and with `--fix` install) the prerequisites.
    Doctor(cmd::doctor::DoctorArgs),
    /// Print the operator support table.
    Ops(cmd::ops::OpsArgs),
    /// Run a WASI program in the embedded Wasmtime (used as a cargo test runner).
    #[command(hide = true)]
    WasiRun(cmd::wasi_run::WasiRunArgs),
}

/// Parses `std::env::args`, runs the command, prints any error, returns the exit code.
pub fn main() -> ExitCode {
    let CargoCli::Medwasm(cli) = CargoCli::parse();
    let ui = Ui::new(cli.verbosity.quiet, cli.verbosity.verbose);
    let result = match cli.command {
        Command::New(args) => args.run(&ui),
        Command::Import(args) => args.run(&ui),
        Command::Build(args) => args.run(&ui),
        Command::Bench(args) => args.run(&ui),
        Command::Serve(args) => args.run(&ui),
        Command::Doctor(args) => args.run(&ui),
        Command::Ops(args) => args.run(&ui),
        Command::WasiRun(args) => return args.run(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            ui::print_error(&err);
            // A conformance failure is reported in the table already; it only sets the code.
            if err.downcast_ref::<ConformanceFailed>().is_some() {
                ExitCode::from(1)
            } else {
                ExitCode::from(2)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn cli_is_well_formed() {
        CargoCli::command().debug_assert();
    }
}

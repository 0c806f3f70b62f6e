//! Command-line flags several commands share, defined once and flattened into each
//! command's arguments.

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};

use crate::project::Project;
use crate::targets::target::Selection;
use crate::ui::Ui;

/// `-q` / `-v`, global to every command.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct Verbosity {
    /// Print less: results only, no progress.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Print more: child process command lines and timings.
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

/// `--manifest-path`: which detector project a command works on.
#[derive(Debug, Clone, clap::Args)]
pub struct ProjectArgs {
    /// Path to the detector's Cargo.toml [default: the package in the current directory].
    #[arg(long, value_name = "PATH")]
    pub manifest_path: Option<PathBuf>,
}

impl ProjectArgs {
    /// Locates the project and shows the warnings its metadata raised.
    pub fn locate(&self, ui: &Ui) -> Result<Project> {
        let project = Project::locate(self.manifest_path.as_deref())?;
        for warning in &project.warnings {
            ui.warn(warning);
        }
        Ok(project)
    }
}

/// `--target` and `--board`: where a detector is built or benched.
#[derive(Debug, Clone, clap::Args)]
pub struct TargetArgs {
    /// Target to build or bench [default: `default-target` in
    /// `[package.metadata.medwasm]`, else wasmtime].
    #[arg(long, value_parser = crate::targets::selection_parser())]
    pub target: Option<Selection>,
    /// Board for `--target mcu`: a built-in board or a board file (`*.toml`)
    /// [default: `board` in `[package.metadata.medwasm]`, else qemu-mps2-an386].
    #[arg(long)]
    pub board: Option<String>,
}

impl TargetArgs {
    /// Merges `--board` into the project's metadata, where the MCU target reads it,
    /// and returns the targets: `--target`, else the project's `default-target`, else
    /// `wasmtime`.
    pub fn apply(&self, project: &mut Project) -> Result<Selection> {
        if self.board.is_some() {
            project.metadata.board.clone_from(&self.board);
        }
        match (self.target, project.metadata.default_target.as_deref()) {
            (Some(selection), _) => Ok(selection),
            (None, Some("all")) => Ok(Selection::All),
            (None, Some(name)) => match crate::targets::find(name) {
                Some(target) => Ok(Selection::One(target)),
                None => bail!(
                    "`default-target = \"{name}\"` in `[package.metadata.medwasm]` of `{}` is not a target; use one of {}, or `all`",
                    project.manifest_path.display(),
                    crate::targets::all()
                        .iter()
                        .map(|t| format!("`{}`", t.name()))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            },
            (None, None) => Ok(Selection::One(crate::targets::find("wasmtime").context(
                "the `wasmtime` target is missing; this is a bug in cargo-medwasm",
            )?)),
        }
    }
}

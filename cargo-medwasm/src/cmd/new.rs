//! `cargo medwasm new`: scaffold a detector project (see [`crate::scaffold`]).

use std::path::PathBuf;

use anyhow::{Context as _, Result};

use crate::scaffold::{SdkSource, create, next_steps, validate_name};
use crate::templates::Template;
use crate::ui::Ui;

/// Scaffold a new detector project.
#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// Directory and package name of the new detector.
    pub name: String,
    /// Template to start from.
    #[arg(long, value_enum, default_value = "vitals-anomaly")]
    pub template: Template,
    /// Depend on the medwasm SDK at this path instead of the default.
    #[arg(long)]
    pub sdk_path: Option<PathBuf>,
}

impl NewArgs {
    /// Creates the project in the current directory and prints the next steps on stdout.
    pub fn run(self, ui: &Ui) -> Result<()> {
        // Checked before anything else so a bad name is reported as such.
        validate_name(&self.name)?;
        let sdk = SdkSource::resolve(self.sdk_path.as_deref())?;
        let cwd = std::env::current_dir().context("cannot read the current directory")?;
        create(&cwd, &self.name, self.template, &sdk, ui)?;
        print!("{}", next_steps(&self.name, self.template));
        Ok(())
    }
}

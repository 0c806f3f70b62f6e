//! `cargo medwasm build`: build the detector for a target and print what was made.

use anyhow::Result;

use crate::args::{ProjectArgs, TargetArgs};
use crate::bench::build_each;
use crate::ui::Ui;

/// Build the detector for a target.
#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// Where to build for.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Build with optimizations and strip what a release artifact does not need.
    #[arg(long)]
    pub release: bool,
    /// The detector project.
    #[command(flatten)]
    pub project: ProjectArgs,
}

impl BuildArgs {
    /// Runs the build and prints each artifact and its size split on stdout.
    pub fn run(self, ui: &Ui) -> Result<()> {
        let mut project = self.project.locate(ui)?;
        let targets = self.target.apply(&mut project)?.targets();
        let builds = build_each(&project, &targets, self.release, ui)?;
        for (i, (target, built)) in targets.iter().zip(&builds).enumerate() {
            // A target that builds what an earlier one built (Node.js, the browser
            // package) has nothing new to show.
            if targets[..i]
                .iter()
                .any(|t| t.builds_as() == target.builds_as())
            {
                continue;
            }
            println!("{}", target.summary(built)?);
        }
        Ok(())
    }
}

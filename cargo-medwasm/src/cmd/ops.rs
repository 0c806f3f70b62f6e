//! `cargo medwasm ops`: the operator support table (the same one as `docs/ops.md`).

use anyhow::Result;

use crate::ui::Ui;

/// Print the operator support table.
#[derive(Debug, clap::Args)]
pub struct OpsArgs {}

impl OpsArgs {
    /// Prints the table.
    pub fn run(self, _ui: &Ui) -> Result<()> {
        print!("{}", crate::convert::support::markdown_table());
        Ok(())
    }
}

//! `seco model inspect|split|predict`.

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Print a model's layers, shapes and parameter counts.
    Inspect,
}

pub fn run(cmd: ModelCommand) -> anyhow::Result<()> {
    match cmd {
        ModelCommand::Inspect => anyhow::bail!("not implemented yet"),
    }
}

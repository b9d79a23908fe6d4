//! `seco model inspect|split|predict`.

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Print a model's layers, shapes and parameter counts.
    Inspect,
    /// Import an ONNX model (PyTorch/Keras export) into seco's model format.
    Import(crate::cmd::import::ImportArgs),
}

pub fn run(cmd: ModelCommand) -> anyhow::Result<()> {
    match cmd {
        ModelCommand::Inspect => anyhow::bail!("not implemented yet"),
        ModelCommand::Import(args) => crate::cmd::import::run(args),
    }
}

//! One module per subcommand of `seco`.

pub mod bench;
pub mod circuit;
pub mod import;
pub mod model;

use crate::cli::{Cli, Command};

/// Runs the parsed command line.
pub fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Model(cmd) => model::run(cmd),
        Command::Circuit(cmd) => circuit::run(cmd),
        Command::Bench(args) => bench::run(args),
    }
}

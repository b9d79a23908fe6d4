//! One module per subcommand of `seco`.

pub mod bench;
#[cfg(feature = "insecure-simulation")]
pub mod circuit;
pub mod common;
pub mod demo;
pub mod identity;
pub mod import;
pub mod infer;
pub mod inputs;
pub mod model;
pub mod node;
pub mod node_health;
pub mod report;
pub mod store;

use crate::cli::{Cli, Command};

/// Runs the parsed command line.
pub fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Model(cmd) => model::run(cmd),
        #[cfg(feature = "insecure-simulation")]
        Command::Circuit(cmd) => circuit::run(cmd),
        Command::Identity(cmd) => identity::run(cmd),
        Command::Node(args) => node::run(args),
        Command::Store(cmd) => store::run(cmd),
        Command::Infer(args) => infer::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Report(args) => report::run(args),
    }
}

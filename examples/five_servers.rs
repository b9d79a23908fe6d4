//! A gateway and four remote servers: the model's linear layers are spread over five servers
//! (balanced by multiply-accumulate count); every server takes part in key generation,
//! encryption-to-shares and the garbling of every non-linear layer. All nodes run in this
//! process with their own libp2p swarms on 127.0.0.1 (`examples/topologies/five-servers.toml`).
//!
//! Run: `cargo run --release --example five_servers [-- MODEL [INPUTS]]` (default mnist-mlp, 3).
//!
//! Phases, in order:
//! 0. discovery and session (topology file, `Hello`, `Open` to the four remotes);
//! 1. collective key generation among the five servers;
//! 2. preprocessing of one bundle per inference;
//! 3. online inference; the user's cost does not depend on the number of servers.

mod common;

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let (model, inputs) = common::args();
    let topology = common::repo().join("examples/topologies/five-servers.toml");
    let report = common::run(&topology, &model, inputs).await?;
    common::print(&report)
}

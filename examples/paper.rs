//! The paper's setting (SECO, Chen & Khisti 2024): a gateway and two remote servers hold the
//! parts of a split model; a user who talks only to the gateway gets the prediction. Every node
//! runs in this process with its own libp2p swarm on 127.0.0.1
//! (`examples/topologies/paper.toml`); `seco demo` runs the same as separate processes.
//!
//! Run: `cargo run --release --example paper [-- MODEL [INPUTS]]` (default mnist-mlp, 3).
//!
//! Phases, in order:
//! 0. discovery and session: nodes start from the topology file, the user's `Hello` opens a
//!    session at the gateway, the gateway's `Open` at each remote;
//! 1. collective key generation among the servers (first session only; the key is reused);
//! 2. preprocessing: one bundle per inference (masks, encryption-to-shares, garbling);
//! 3. online: masked input, clear linear layers, garbled non-linear layers, one ciphertext back.

mod common;

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let (model, inputs) = common::args();
    let topology = common::repo().join("examples/topologies/paper.toml");
    let report = common::run(&topology, &model, inputs).await?;
    common::print(&report)
}

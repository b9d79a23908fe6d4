//! A two-level hierarchy: the user reaches only the gateway; the remote servers sit in another
//! network segment, publish no address in the topology (`advertise = []`), dial the gateway at
//! start and find each other through the private Kademlia DHT the first time they need to talk
//! (`examples/topologies/hierarchy.toml`). All nodes run in this process on 127.0.0.1.
//!
//! Run: `cargo run --release --example hierarchy [-- MODEL [INPUTS]]` (default mnist-mlp, 3).
//!
//! Phases, in order:
//! 0. discovery: remotes bootstrap to the gateway (identify + Kademlia); the user's `Hello`
//!    opens the session; remote-to-remote messages look the peer up in the DHT first;
//! 1. collective key generation among the servers;
//! 2. preprocessing of one bundle per inference;
//! 3. online inference through the gateway.

mod common;

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let (model, inputs) = common::args();
    let topology = common::repo().join("examples/topologies/hierarchy.toml");
    let report = common::run(&topology, &model, inputs).await?;
    common::print(&report)
}

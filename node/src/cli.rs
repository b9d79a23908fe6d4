//! Command-line interface of `seco` (clap derive). Each subcommand's arguments live in the
//! module of `cmd/` that runs it.

use clap::{Parser, Subcommand};

/// Secure neural-network inference across a hierarchy of servers.
#[derive(Debug, Parser)]
#[command(name = "seco", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Threads for garbling and evaluation (default: every core; also `SECO_THREADS`, which
    /// `seco demo` passes on to its nodes).
    #[arg(long, global = true)]
    pub threads: Option<usize>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Inspect, split and run models in plaintext (float and fixed point).
    #[command(subcommand)]
    Model(crate::cmd::model::ModelCommand),
    /// Garble and evaluate boolean circuits (plain, half-gates, multiparty BMR), every party in
    /// this process (a test tool: it holds all parties' secrets; feature insecure-simulation).
    #[cfg(feature = "insecure-simulation")]
    #[command(subcommand)]
    Circuit(crate::cmd::circuit::CircuitCommand),
    /// Create or show a node identity (Ed25519 key file, mode 0600).
    #[command(subcommand)]
    Identity(crate::cmd::identity::IdentityCommand),
    /// Run a server node (gateway or remote) from a topology file.
    Node(crate::cmd::node::NodeArgs),
    /// Operator commands for a node's store: inspect, reset a broken one, drop the keys.
    #[command(subcommand)]
    Store(crate::cmd::store::StoreCommand),
    /// Run the user side: secure inference of one input through the gateway.
    Infer(crate::cmd::infer::InferArgs),
    /// Start a whole local deployment as separate processes and run secure inference on a
    /// model's test inputs (or given or random ones), checked against the fixed-point reference.
    Demo(crate::cmd::demo::DemoArgs),
    /// Benchmark secure inference in this process or as separate processes over loopback or
    /// shaped LAN / WAN links: time, bytes and CPU per phase and party, next to the in-process
    /// protocol and plaintext fixed point.
    Bench(crate::cmd::bench::BenchArgs),
    /// Write the measured section of the performance report (tables, SVG plots) from bench
    /// JSON files of `seco bench --json` and `bench/crypten_bench.py`.
    Report(crate::cmd::report::ReportArgs),
}

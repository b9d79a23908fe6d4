//! # seco
//!
//! Facade of the seco-rs workspace: secure neural-network inference across a hierarchy of
//! servers (gateway + remotes) with multiparty homomorphic encryption for linear layers and
//! multiparty garbled circuits for non-linear layers. See `../shared/DESIGN.md` and the README.
//!
//! # Layout
//! - [`protocols`]: sans-IO protocol logic (fixed point, models, split plans, MHE, garbling, OT,
//!   the SECO phases).
//! - [`runtime`]: libp2p networking, sled storage, tracing, fault injection.
//! - [`actors`]: ractor actors that drive the protocol state machines over the runtime.
//!
//! This crate owns the workspace's `examples/` and `tests/`.

pub use seco_actors as actors;
pub use seco_protocols as protocols;
pub use seco_runtime as runtime;

/// Secure inference with every party in this process (in-memory router, exact byte counts):
/// see `seco_protocols::seco::local`. **Insecure by design**: one process holds every party's
/// secrets, so it proves nothing about privacy; for tests, benchmarks and experiments only.
/// Feature `insecure-simulation` (off by default).
#[cfg(feature = "insecure-simulation")]
pub use seco_protocols::seco::local::{run_local, LocalDeployment, LocalOptions, LocalRun};

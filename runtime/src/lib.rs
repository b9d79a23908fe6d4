//! # seco-runtime
//!
//! The machinery of seco-rs that is not SECO-specific (DESIGN.md s.6): the libp2p swarm, the peer
//! allowlist, the sled store, tracing setup and fault injection. It knows nothing of SECO's
//! messages beyond bytes and envelopes.
//!
//! # Layout
//! (filled in by the networking issue)

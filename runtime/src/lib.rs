//! # seco-runtime
//!
//! The machinery of seco-rs that is not SECO-specific (DESIGN.md s.6): the libp2p swarm, the peer
//! allowlist, the store, tracing setup and fault injection. It knows nothing of SECO's messages
//! beyond bytes and [`net::Envelope`]s.
//!
//! # Layout
//! - [`net`]: libp2p networking. A [`net::EventLoop`] task owns the swarm (TCP + Noise + Yamux,
//!   identify, Kademlia, request-response, optional mDNS); a cloneable [`net::Client`] sends
//!   commands to it; typed [`net::Event`]s come back on a bounded channel. Messages are
//!   [`net::Envelope`]s (CBOR), chunked above 1 MiB, each acknowledged; peers outside the
//!   allowlist are refused.
//! - [`store`]: the [`store::Store`] trait with typed trees, atomic batches, flush as commit
//!   point and a durable `take`; [`store::SledStore`] on disk and [`store::MemStore`] for tests.
//! - [`identity`]: Ed25519 keypair files (mode 0600) and peer id helpers.
//! - [`telemetry`]: tracing subscriber setup (human or JSON, `SECO_LOG` filter).
//! - [`fault`]: a fault-injection layer over the client (drop, delay, duplicate, reorder,
//!   partition, crash) for tests.
//!
//! The actors crate wraps [`net::Client`] (or [`fault::FaultyClient`], both [`net::Outbox`]) and
//! the event receiver in a network actor: inbound [`net::InboundMessage`]s carry the sender's
//! peer id, the envelope and a [`net::Reply`] to acknowledge once the message is persisted.

pub mod fault;
pub mod identity;
pub mod net;
pub mod store;
pub mod telemetry;

pub use libp2p::{identity::Keypair, Multiaddr, PeerId};

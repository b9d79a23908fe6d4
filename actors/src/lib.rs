//! # seco-actors
//!
//! The SECO parties as ractor actors (DESIGN.md s.6): each process runs one node (a gateway, a
//! remote or a user); a node supervises its network actor and one session actor per session;
//! session actors drive the sans-IO state machines of `seco_protocols::seco` with the raft loop
//! (step, persist + flush, take bundles durably, send, report) and persist what must survive a
//! restart. ractor's own cluster transport is not used: every network hop is a SECO message in a
//! runtime envelope over libp2p.
//!
//! ## Supervision tree
//!
//! ```text
//! NodeActor (one per process; role gateway, remote or user)
//! ├── NetworkActor        owns the runtime Client (or FaultyClient) and its event stream;
//! │                       decodes envelopes, maps peer ids to parties (topology), routes by
//! │                       session id; one sender task per peer sends in order with retries
//! ├── SessionActor  s1    holds ServerSession / UserSession; raft drive loop; phase deadlines
//! ├── SessionActor  s2
//! └── ...
//! ```
//!
//! - A session actor that fails (a panic or a store error) is restarted by the node from the
//!   store: `ServerSession::resume` with the stored key share, session record and bundles
//!   (at most `Limits::max_restarts` times). A session that cannot be resumed (it failed before
//!   it was ready, or the restarts are used up) is aborted on every peer with the reason.
//! - A failed network actor stops the node (a node without network is useless); the process
//!   around it exits with the error.
//! - User sessions live in memory only: a failed user session actor fails its callers.
//! - A server session actor stops when its session ends (closed by the user, expired after
//!   `Timeouts::idle`, aborted as a whole): the node frees its slot at once, its records and
//!   unused bundles are deleted, and late messages for it are refused as ended.
//!
//! ## Phases and deadlines
//!
//! Session open (with the first session's key generation), each bundle's preparation and each
//! inference has an explicit deadline (`config::Timeouts`, settable in the topology file); a
//! lost peer ends as an abort with a reason (servers) or a typed error (user), never a hang.
//! Sends that cannot be delivered within `Timeouts::retry` abort what they belonged to.
//!
//! ## Decisions
//!
//! - **Acknowledgements.** An inbound message is acknowledged once it is queued for its session
//!   actor, not after the state machine ran: acknowledging later would hold the sender for
//!   seconds of cryptography and could deadlock two peers sending to each other. What a message
//!   changes is persisted before anything it causes is sent; a crash between the ack and the
//!   step loses the message and the phase deadline aborts the bundle (`network`).
//! - **Resume.** A resumed `ServerSession` comes with outputs of its own (its record with the
//!   next sequence-number epoch, persisted first, and a fresh OT setup with every peer); its
//!   session actor applies them like any step and counts as opening until `SessionReady`.
//! - **Ordering.** One sender task per peer keeps each peer's messages in order; messages of
//!   different senders may interleave, which the state machines accept.
//!
//! # Layout
//! - [`topology`]: the topology file (TOML): nodes, roles, peer ids, addresses, validation.
//! - [`config`]: parameter sets, [`config::Timeouts`], [`config::Limits`].
//! - [`wire`]: SECO messages in runtime envelopes.
//! - [`store`]: what a node keeps in its store (key share, records, bundles, user peers).
//! - [`stats`]: bytes, messages and CPU time per phase; session outcomes.
//! - [`msgs`]: the mailbox types ([`msgs::NodeMsg`], [`msgs::NetworkMsg`], [`msgs::SessionMsg`],
//!   [`msgs::Outgoing`], [`msgs::Route`]), below every actor module: `context`, `network` and
//!   `session` depend on `msgs`, not on each other's modules (only `node`, at the top, uses
//!   them all).
//! - [`context`]: what a node's actors share; [`context::NodeEvent`].
//! - [`network`]: [`network::NetworkActor`], [`network::Network`], [`network::Transport`].
//! - [`session`]: [`session::SessionActor`] and its drive loop, deadlines, user waiters.
//! - [`node`]: [`node::NodeActor`] (admission, resume, supervision) and the [`Node`] handle.
//! - [`dev`]: deterministic example identities and free ports for local runs (never for
//!   production keys).
//!
//! # Example
//! ```no_run
//! # async fn demo(topology: std::sync::Arc<seco_actors::topology::Topology>,
//! #               part: seco_protocols::plan::UserPart, key: seco_runtime::Keypair,
//! #               x: Vec<u64>) -> seco_actors::Result<()> {
//! use seco_actors::node::{Node, UserSetup};
//! let network = Node::network(&topology, "user", key, false)?;
//! let store = std::sync::Arc::new(seco_runtime::store::MemStore::new());
//! let user = Node::start_user(UserSetup { name: "user".into(), topology, part, store, network }).await?;
//! let session = user.open_session().await?;     // Hello ... Welcome (keygen on first use)
//! session.preprocess().await?;                   // one bundle at every server
//! let (_bundle, logits) = session.infer(&x).await?;
//! # Ok(()) }
//! ```

pub mod config;
pub mod context;
pub mod dev;
pub mod error;
pub mod msgs;
pub mod network;
pub mod node;
pub mod session;
pub mod stats;
pub mod store;
pub mod topology;
pub mod wire;

/// Poison-tolerant lock: a panicking holder leaves consistent data where every update is one
/// call or one assignment (the network queues, the store's shared reads).
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub use error::{ActorError, Result};
pub use node::Node;

//! The SECO protocol end to end (DESIGN.md s.5): per-party sans-IO state machines for the user,
//! the gateway and the remote servers, composing the MHE engine (`mhe`) for linear layers and
//! the multiparty garbling engine (`bmr`) for non-linear layers.
//!
//! | phase | what happens | where |
//! | --- | --- | --- |
//! | 0 session | user key, participants, skeleton digest | `server/open.rs`, `user.rs` |
//! | 1 keygen | collective key, persisted, reused | `server/open.rs` |
//! | 2 preprocessing | masks, `Enc(W r - s)`, E2S, BMR garbling of every chunk of every stage circuit (a window at a time, each chunk stored as it completes) -> one bundle | `server/prep.rs`, `server/e2s.rs`, `server/garble.rs` |
//! | 3 online | masked linear layers in the clear, BMR evaluation chunk by chunk (a stage's chunks taken from the store when it starts), result to the user | `server/online.rs`, `server/gateway.rs` |
//!
//! Drivers (actors, or the in-process router in [`local`]) follow the raft loop of [`io`]:
//! step, persist, take bundles (and stages' chunk garblings), send, report.
//!
//! # Layout
//! - `ids.rs`, `msg.rs`, `error.rs`, `io.rs`, `seq.rs`: identifiers, the message enum, errors,
//!   the driver interface, duplicate detection.
//! - `schedule.rs`, `circuits.rs`: the public schedule (owners, evaluators, receivers, packings)
//!   and the stage circuits, split into chunks of output elements (`docs/protocol.md`,
//!   "Chunks"): no protocol message grows with the model.
//! - `output.rs`: what the user learns (logits or label) and roles instead of server names.
//! - `bundle.rs`, `keys.rs`: what is persisted.
//! - `server/`, `user.rs`: the state machines.
//! - `local.rs`: all parties in one process over an in-memory router, with accounting
//!   (feature `insecure-simulation`: it holds every party's secrets; tests and benches only).

pub mod bundle;
pub mod circuits;
pub mod error;
pub mod ids;
pub mod io;
pub mod keys;
#[cfg(feature = "insecure-simulation")]
pub mod local;
pub mod msg;
pub mod output;
pub mod record;
pub mod schedule;
pub mod seq;
pub mod server;
pub mod user;

pub use error::{Result, SecoError};
pub use ids::{BundleId, Party, SessionId};
pub use io::{ChunkTake, Event, Input, Machine, Persist, Ready};
pub use keys::KeyMaterial;
pub use msg::{AbortKind, Body, CloseReason, Phase, SecoMsg};
pub use output::{OutputMode, Prediction};
pub use record::SessionRecord;
pub use server::{KeyCounter, ServerConfig, ServerSession};
pub use user::{UserConfig, UserSession};

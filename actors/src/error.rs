//! Errors of the actors crate (STYLE.md 10). Errors inside actor handlers are boxed at the
//! ractor boundary (`ActorProcessingErr`); everything callers see is an [`ActorError`].

use std::time::Duration;

use seco_protocols::seco::{AbortKind, BundleId, SecoError};
use seco_runtime::identity::IdentityError;
use seco_runtime::net::NetError;
use seco_runtime::store::StoreError;

use crate::topology::TopologyError;

/// Result alias of the actors crate.
pub type Result<T, E = ActorError> = std::result::Result<T, E>;

/// What can go wrong when running a node or a session.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ActorError {
    /// The topology is invalid or does not fit this node.
    #[error(transparent)]
    Topology(Box<TopologyError>),
    /// The store failed (the node should stop: see `seco_runtime::store`).
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The network failed.
    #[error("network: {0}")]
    Net(#[from] NetError),
    /// The identity key could not be loaded.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The protocol refused a command or stored data.
    #[error("protocol: {0}")]
    Protocol(#[from] SecoError),
    /// The session (or one bundle) was aborted, here or by a peer.
    #[error("{}aborted: {reason}", .bundle.map(|b| format!("bundle {b} ")).unwrap_or_else(|| "session ".into()))]
    Aborted {
        /// The bundle, if only one.
        bundle: Option<BundleId>,
        /// Why.
        reason: String,
        /// Whether a fresh session or bundle may succeed (the user's handle retries only then).
        kind: AbortKind,
    },
    /// A phase did not finish in time.
    #[error("timeout: {what} did not finish within {after:?}")]
    Timeout {
        /// What was waited for.
        what: &'static str,
        /// The timeout.
        after: Duration,
    },
    /// A message to a peer could not be delivered.
    #[error("lost peer: {0}")]
    LostPeer(String),
    /// An actor could not be started.
    #[error("cannot start the {actor} actor: {reason}")]
    Spawn {
        /// Which actor.
        actor: &'static str,
        /// ractor's reason.
        reason: String,
    },
    /// An actor stopped before answering.
    #[error("the {0} actor stopped")]
    Stopped(&'static str),
    /// A command that does not fit this node (e.g. a user session on a server).
    #[error("{0}")]
    Unsupported(&'static str),
}

impl From<TopologyError> for ActorError {
    fn from(e: TopologyError) -> Self {
        ActorError::Topology(Box::new(e))
    }
}

impl ActorError {
    /// An `ActorProcessingErr` for ractor.
    pub fn boxed(self) -> ractor::ActorProcessingErr {
        Box::new(self)
    }
}

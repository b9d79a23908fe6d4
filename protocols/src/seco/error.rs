//! Errors of the SECO session state machines.

use super::ids::{BundleId, Party};
use super::msg::{AbortKind, Phase};
use crate::bmr::BmrError;
use crate::circuit::CircuitError;
use crate::mhe::MheError;
use crate::model::ModelError;
use crate::plan::{BudgetError, PlanError};

/// Result alias of the session machines.
pub type Result<T, E = SecoError> = std::result::Result<T, E>;

/// Why a message or command was refused. A refused message leaves the session unchanged
/// unless the error is [`SecoError::is_fatal`], in which case the session aborts.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecoError {
    /// Undecodable bytes.
    #[error("decode: {0}")]
    Decode(String),
    /// Another message-format version.
    #[error("message version {found}, expected {expected}")]
    Version {
        /// Ours.
        expected: u16,
        /// Theirs.
        found: u16,
    },
    /// A message of another session.
    #[error("message for another session")]
    WrongSession,
    /// The claimed sender is not the transport's authenticated sender, or this party never
    /// receives this message from that sender.
    #[error("{body} from {actual} refused (claimed sender {claimed}, expected {expected})")]
    WrongSender {
        /// Message kind.
        body: &'static str,
        /// Claimed in the message.
        claimed: Party,
        /// Authenticated sender.
        actual: Party,
        /// Who may send it.
        expected: String,
    },
    /// A message that does not fit the current phase.
    #[error("{body} ({phase:?}) refused in phase {current}")]
    WrongPhase {
        /// Message kind.
        body: &'static str,
        /// Its phase.
        phase: Phase,
        /// The session's state.
        current: String,
    },
    /// A repeated sequence number.
    #[error("duplicate message {seq} from {from}")]
    Duplicate {
        /// Sender.
        from: Party,
        /// Sequence number.
        seq: u64,
    },
    /// The bundle is unknown, already used, or its stored bytes are missing.
    #[error("bundle {bundle}: {reason}")]
    Bundle {
        /// The bundle.
        bundle: BundleId,
        /// What is wrong.
        reason: String,
    },
    /// Too many bundles in flight (hostile or runaway peers are bounded).
    #[error("too many bundles in preparation ({limit})")]
    TooManyBundles {
        /// The bound.
        limit: usize,
    },
    /// A stage index or vector length that does not fit the model.
    #[error("{what}: expected {expected}, got {actual}")]
    Length {
        /// What was checked.
        what: &'static str,
        /// Expected.
        expected: usize,
        /// Found.
        actual: usize,
    },
    /// The servers do not agree on the session (model, skeleton, keys).
    #[error("session mismatch: {0}")]
    Mismatch(String),
    /// The user's part (`user.json`) is not the user's part of the gateway's split: its
    /// digest in `Hello` differs from the gateway's (other fixed point, output length, model).
    #[error("the user's model part does not match the deployment: the gateway serves {expected}; use the user.json of the split the servers run")]
    UserPartMismatch {
        /// The gateway's view of the user's part (`UserPart::describe`), public to the user.
        expected: String,
    },
    /// A stored session (and its bundles) was made with another part of this server (other
    /// weights or split): it cannot be resumed and is dropped.
    #[error("the session was stored with another model part at this server (the weights or the split changed since), or by a build with another role layout (`schedule::LAYOUT`): its bundles are dropped")]
    PartChanged,
    /// An output mode this build does not know (`Hello`, `Open`; `output.rs`): the session
    /// is refused.
    #[error("unknown output mode {0} (this build knows 0 = logits and 1 = label)")]
    OutputMode(u8),
    /// The session was aborted.
    #[error("session aborted: {0}")]
    Aborted(String),
    /// The session was closed (by the user, or it expired).
    #[error("session {0}")]
    Closed(super::msg::CloseReason),
    /// A command that the session cannot run now.
    #[error("{0}")]
    NotReady(String),
    /// MHE failure.
    #[error("mhe: {0}")]
    Mhe(#[from] MheError),
    /// BMR failure.
    #[error("bmr: {0}")]
    Bmr(#[from] BmrError),
    /// Circuit construction failure.
    #[error("circuit: {0}")]
    Circuit(#[from] CircuitError),
    /// OT failure (the stage words' conversion).
    #[error("ot: {0}")]
    Ot(#[from] crate::ot::OtError),
    /// Model failure.
    #[error("model: {0}")]
    Model(#[from] ModelError),
    /// Plan/part failure.
    #[error("plan: {0}")]
    Plan(#[from] PlanError),
    /// This server's part does not fit the parameter set for the number of servers (noise or
    /// flooding budget, plane sizes, ring): the session is refused at open (`plan::budget`).
    #[error("model refused: {0}")]
    Budget(#[from] BudgetError),
}

impl SecoError {
    /// What an abort for this error is: `Final` for a refusal that a new session would meet
    /// again (the user's part of another split, an unknown output mode), else `Retry`.
    pub fn abort_kind(&self) -> AbortKind {
        match self {
            SecoError::UserPartMismatch { .. } | SecoError::OutputMode(_) => AbortKind::Final,
            _ => AbortKind::Retry,
        }
    }

    /// Errors after which the session cannot continue (as opposed to one refused message).
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            SecoError::Mismatch(_)
                | SecoError::PartChanged
                | SecoError::UserPartMismatch { .. }
                | SecoError::OutputMode(_)
                | SecoError::Aborted(_)
        )
    }
}

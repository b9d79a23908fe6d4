//! The message types of the actors' mailboxes, below every actor: the node, network and session
//! actors (and the shared context) all send to each other, so their message enums live here and
//! the actor modules depend on this one, not on each other's (no cycle between `context`,
//! `network`, `node` and `session`). Each actor module re-exports its own message type.

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use ractor::{ActorRef, RpcReplyPort};
use seco_protocols::seco::{BundleId, OutputMode, Party, Phase, Prediction, SecoMsg, SessionId};
use seco_runtime::net::{Event, Reply};
use seco_runtime::{Multiaddr, PeerId};
use tokio::sync::oneshot;

use crate::error::Result;
use crate::topology::PeerRole;

/// Messages of the node actor.
pub enum NodeMsg {
    /// A message of a session that has no actor here yet (from the network actor).
    Unrouted {
        /// Sender's party.
        from: Party,
        /// Sender's peer id.
        peer: PeerId,
        /// The message.
        msg: Box<SecoMsg>,
        /// Its acknowledgement (refused when the message cannot be admitted).
        reply: Reply,
    },
    /// User nodes: start a session (the `Hello` goes out); answers with its actor.
    OpenUserSession(
        OutputMode,
        RpcReplyPort<Result<(SessionId, ActorRef<SessionMsg>)>>,
    ),
    /// Ids of the sessions with a live actor.
    Sessions(RpcReplyPort<Vec<SessionId>>),
    /// The network actor.
    Network(RpcReplyPort<ActorRef<NetworkMsg>>),
    /// Fault injection (tests): makes a session actor fail as if it crashed.
    FailSession(SessionId),
    /// Periodic: writes the counters file.
    Tick,
}

/// An outbound message of a session.
#[derive(Debug)]
pub struct Outgoing {
    /// Destination.
    pub to: PeerId,
    /// The message (its `seq` final).
    pub msg: SecoMsg,
    /// Who hears about a failure to deliver it.
    pub notify: Option<ActorRef<SessionMsg>>,
    /// Who waits for its delivery (acknowledged, or failed with the reason): the user's
    /// `Close`, which must reach the gateway before `seco infer` exits.
    pub delivered: Option<oneshot::Sender<Result<(), String>>>,
}

/// Where a session's inbound messages go.
#[derive(Debug, Clone)]
pub struct Route {
    /// The session actor.
    pub actor: ActorRef<SessionMsg>,
    /// Messages queued for it and not yet handled (the actor decrements).
    pub queue: Arc<AtomicUsize>,
}

/// Messages of the network actor.
pub enum NetworkMsg {
    /// An event of the runtime (from the pump task, which waits for the answer).
    Net(Event, RpcReplyPort<()>),
    /// A session actor's message to a peer.
    Send(Outgoing),
    /// Routes a session's messages to its actor (`None`: removes the route).
    Route(SessionId, Option<Route>),
    /// The addresses this node listens on.
    Listening(RpcReplyPort<Vec<Multiaddr>>),
    /// The session ended here (closed, expired, aborted): its messages still queued for a peer
    /// are dropped, except its `Abort` and `Close`.
    Ended(SessionId),
    /// A server whose connection closed could not be reached again within
    /// `Timeouts::grace` (from the liveness watcher): every session actor hears it.
    PeerLost(PeerId),
    /// A watched server was reached again.
    PeerBack(PeerId),
}

/// Messages of a session actor.
pub enum SessionMsg {
    /// A message from a peer (decoded, sender mapped through the topology).
    Inbound {
        /// The sender's party.
        from: Party,
        /// The sender's peer id.
        peer: PeerId,
        /// The message.
        msg: SecoMsg,
    },
    /// A message of this session could not be delivered.
    SendFailed {
        /// Destination.
        to: PeerId,
        /// Message kind.
        body: &'static str,
        /// Its bundle, if any.
        bundle: Option<BundleId>,
        /// Its phase.
        phase: Phase,
        /// Why.
        error: String,
        /// The application reject code if the peer answered and refused it (named in `error`;
        /// `network::REJECT_*`), as opposed to a lost or silent peer (`None`).
        refused: Option<u16>,
    },
    /// A server is lost: its connection closed and it could not be reached again within
    /// `grace` (`network/liveness.rs`).
    PeerLost {
        /// The server.
        peer: PeerId,
        /// Its role (the abort reason names the role, not the server).
        role: PeerRole,
        /// How long it was tried.
        grace: Duration,
    },
    /// A server connected again with a new incarnation: it restarted since `since` (when its
    /// last connection closed here), losing what it held in memory (`network/liveness.rs`).
    PeerRestarted {
        /// The server.
        peer: PeerId,
        /// Its role.
        role: PeerRole,
        /// Sessions created after this are not concerned.
        since: std::time::Instant,
    },
    /// Periodic: deadlines, idleness.
    Tick,
    /// Collects a finished arming and starts taking the next ready bundle whole out of the
    /// store ahead of its inference, on a thread of its own (`session/armed.rs`); sent by the
    /// session to itself, and by that thread when it is done.
    Arm,
    /// User: answer once the session is open.
    WaitOpen(RpcReplyPort<Result<()>>),
    /// User: prepare one bundle; answers once it is ready at every server.
    Preprocess(RpcReplyPort<Result<BundleId>>),
    /// User: one inference on an encoded input; answers with the bundle used and the result
    /// (the logits, or the label: the session's output mode).
    Infer(Vec<u64>, RpcReplyPort<Result<(BundleId, Prediction)>>),
    /// User: closes the session (`Close` to the gateway); answers once the gateway has
    /// acknowledged it (or its delivery failed); the actor stops.
    Close(RpcReplyPort<Result<()>>),
    /// Fault injection (tests): the actor fails with this reason, as a crash would.
    Fail(String),
}

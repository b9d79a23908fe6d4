//! The session actor: one per session, holding its state machine (`ServerSession` or
//! `UserSession`) and driving it with the raft loop of `drive.rs` (STYLE.md 2, 9).
//!
//! # Layout
//! - `mod.rs`: [`SessionActor`], [`SessionMsg`], [`SessionArgs`], the actor's `handle`.
//! - `drive.rs`: step -> persist + flush -> take -> send -> report; aborts.
//! - `deadlines.rs`: per-phase deadlines of server sessions.
//! - `loss.rs`: a lost peer or an undelivered message aborts what is in flight, naming the
//!   phase and the peer's role.
//! - `hold.rs`: preparation messages that reach a resumed server before its OT setup is redone
//!   wait for it (bounded) instead of being refused.
//! - `user.rs`: the user's waiting callers.
//! - `armed.rs`: bundles taken whole from the store ahead of their inference (served from
//!   memory in the online phase).

mod armed;
mod deadlines;
mod drive;
mod hold;
mod loss;
mod user;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use ractor::concurrency::JoinHandle;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use seco_protocols::seco::{
    AbortKind, Party, Ready, SecoMsg, ServerSession, SessionId, UserSession,
};
use seco_runtime::PeerId;

pub use deadlines::{Deadlines, Expired, Op};

use crate::context::NodeContext;
use crate::error::{ActorError, Result};
pub use crate::msgs::SessionMsg;
use armed::Armed;
use user::Waiters;

/// The state machine a session actor drives.
pub enum MachineKind {
    /// A server's session (gateway or remote).
    Server(Box<ServerSession>),
    /// The user's session.
    User(Box<UserSession>),
}

/// Arguments of a session actor.
pub struct SessionArgs {
    /// The node's shared context.
    pub ctx: Arc<NodeContext>,
    /// The session.
    pub session: SessionId,
    /// Its state machine.
    pub machine: MachineKind,
    /// Outputs to apply first (the user's `Hello`).
    pub initial: Ready,
    /// Gateway: the user's peer id (the only peer that may speak as `Party::User`).
    pub user_peer: Option<PeerId>,
    /// Inbound backlog counter shared with the network actor.
    pub queue: Arc<AtomicUsize>,
    /// Whether the session is still opening (new sessions; resumed ones until their OT setup
    /// with every peer is redone).
    pub opening: bool,
}

/// State of a session actor.
pub struct SessionState {
    ctx: Arc<NodeContext>,
    session: SessionId,
    machine: MachineKind,
    user_peer: Option<PeerId>,
    queue: Arc<AtomicUsize>,
    deadlines: Deadlines,
    waiters: Waiters,
    last_activity: Instant,
    /// When this actor started (a server restart concerns only older sessions).
    created: Instant,
    ticker: Option<JoinHandle<()>>,
    /// The whole session was aborted (further failures are only logged).
    aborted: bool,
    /// No inbound message was accepted yet (a refused opener then drops the session).
    fresh: bool,
    /// The session ended (closed, expired, aborted as a whole): why; the actor stops after
    /// the current message, which frees the session's slot at the node.
    ended: Option<String>,
    initial: Option<Ready>,
    /// Preparation messages held until a resumed server's OT setup is redone (`hold.rs`).
    held: Vec<(Party, PeerId, SecoMsg)>,
    /// Bundles taken whole ahead of their inference (`armed.rs`).
    armed: Armed,
}

/// The session actor (see the module docs).
pub struct SessionActor;

impl Actor for SessionActor {
    type Msg = SessionMsg;
    type State = SessionState;
    type Arguments = SessionArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<SessionMsg>,
        args: SessionArgs,
    ) -> Result<SessionState, ActorProcessingErr> {
        let now = Instant::now();
        // A server's deadlines scale with its split's garbled tables (docs/operations.md,
        // "Phase deadlines"); the user's are the topology's or the fixed defaults.
        let table_bytes = match &args.machine {
            MachineKind::Server(s) => Some(s.schedule().table_bytes()),
            MachineKind::User(_) => None,
        };
        let deadlines = Deadlines::new(args.ctx.timeouts, table_bytes, args.opening, now);
        let armed = Armed::new(table_bytes, args.ctx.limits.armed_bytes as u64);
        if table_bytes.is_some() && args.opening {
            tracing::info!(node = %args.ctx.name, session = %args.session, prep = ?deadlines.limit(Op::Prep), inference = ?deadlines.limit(Op::Online), tables_per_bundle = table_bytes.unwrap_or(0), armed = armed.enabled(), "phase deadlines");
        }
        Ok(SessionState {
            deadlines,
            armed,
            waiters: Waiters::new(args.ctx.timeouts),
            last_activity: now,
            created: now,
            ticker: None,
            aborted: false,
            ended: None,
            // New server sessions only (a resumed one starts with its setup messages).
            fresh: args.opening && args.initial.is_empty(),
            initial: Some(args.initial),
            held: Vec::new(),
            ctx: args.ctx,
            session: args.session,
            machine: args.machine,
            user_peer: args.user_peer,
            queue: args.queue,
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<SessionMsg>,
        state: &mut SessionState,
    ) -> Result<(), ActorProcessingErr> {
        state.ticker = Some(myself.send_interval(state.ctx.timeouts.tick, || SessionMsg::Tick));
        if let Some(ready) = state.initial.take() {
            drive::blocking(|| state.apply(&myself, ready))?;
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<SessionMsg>,
        state: &mut SessionState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(t) = state.ticker.take() {
            t.abort();
        }
        // A clean stop keeps the armed bundle usable after a restart (`armed.rs`).
        let (store, session) = (state.ctx.store.clone(), state.session);
        let d = drive::blocking(|| state.armed.disarm(&store, session));
        if d.back > 0 {
            tracing::debug!(node = %state.ctx.name, %session, bundles = d.back, "armed bundles put back");
        }
        if let Some(error) = d.error {
            // Only what failed is lost: the others went back (counted above).
            tracing::warn!(node = %state.ctx.name, %session, lost = d.lost, put_back = d.back, %error, "armed bundles not put back at stop");
        }
        state.waiters.fail_all(|| ActorError::Stopped("session"));
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<SessionMsg>,
        msg: SessionMsg,
        state: &mut SessionState,
    ) -> Result<(), ActorProcessingErr> {
        let now = Instant::now();
        match msg {
            SessionMsg::Inbound { from, peer, msg } => {
                state.queue.fetch_sub(1, Ordering::Relaxed);
                state.last_activity = now;
                if drive::blocking(|| state.on_inbound(&myself, from, peer, msg))? {
                    tracing::warn!(node = %state.ctx.name, session = %state.session, "opening message refused: session dropped");
                    myself.stop(Some("opening message refused".into()));
                }
            }
            SessionMsg::SendFailed {
                to,
                body,
                bundle,
                phase,
                error,
                refused,
            } => drive::blocking(|| {
                state.on_send_failed(&myself, (to, body, bundle, phase), &error, refused)
            })?,
            SessionMsg::PeerLost { peer, role, grace } => {
                drive::blocking(|| state.on_peer_lost(&myself, peer, role, grace))?;
            }
            SessionMsg::PeerRestarted { peer, role, since } => {
                if state.created <= since {
                    drive::blocking(|| state.on_peer_incarnation(&myself, peer, role))?;
                }
            }
            SessionMsg::Tick => {
                drive::blocking(|| state.on_tick(&myself, now))?;
            }
            SessionMsg::Arm => drive::blocking(|| state.arm(&myself))?,
            SessionMsg::WaitOpen(port) => state.waiters.wait_open(port, now),
            SessionMsg::Preprocess(port) => {
                drive::blocking(|| state.preprocess(&myself, port, now))?;
            }
            SessionMsg::Infer(x, port) => drive::blocking(|| state.infer(&myself, &x, port, now))?,
            SessionMsg::Close(port) => drive::blocking(|| state.close(port))?,
            SessionMsg::Fail(reason) => {
                return Err(ActorError::Aborted {
                    bundle: None,
                    reason: format!("session actor failure injected: {reason}"),
                    kind: AbortKind::Retry,
                }
                .boxed())
            }
        }
        if let Some(reason) = state.ended.take() {
            // Everything the session sent on its way out is with the network actor already.
            tracing::debug!(node = %state.ctx.name, session = %state.session, %reason, "session ended: stopping its actor");
            myself.stop(Some(reason));
        }
        Ok(())
    }
}

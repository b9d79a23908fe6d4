//! The node actor: one per process (or per in-process node in tests), the root of the
//! supervision tree. It spawns and supervises the network actor and one session actor per
//! session; it admits new sessions, resumes stored ones, restarts crashed session actors from
//! the store or aborts their session on every peer.
//!
//! # Layout
//! - `mod.rs`: [`NodeActor`], [`NodeMsg`], [`NodeArgs`], supervision.
//! - `admit.rs`: what the node does with a message of a session it has no actor for (open,
//!   resume, refuse), spawning session actors, aborting a session everywhere.
//! - `ended.rs`: sessions that ended here (late messages refused at once), expiry of stored
//!   sessions nobody resumes.
//! - `handle.rs`: [`Node`], the public handle (start a server or a user, open user sessions,
//!   observe events and counters, shut down).
//! - `user_session.rs`: [`UserSessionHandle`], the user's side of a session, with bounded
//!   retries of failed bundles and inferences.

mod admit;
pub(crate) mod ended;
mod handle;
mod user_session;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::concurrency::JoinHandle;
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, SupervisionEvent};
use seco_protocols::plan::{ServerPart, UserPart};
use seco_protocols::seco::{Party, SessionId};
use seco_runtime::PeerId;
use tokio::sync::broadcast;

pub use handle::{Node, ServerSetup, UserSetup};
pub use user_session::{UserSessionHandle, DEFAULT_RETRIES};

use crate::config::{Limits, Timeouts};
use crate::context::{NodeContext, NodeEvent};
use crate::error::{ActorError, Result};
pub use crate::msgs::NodeMsg;
use crate::msgs::{NetworkMsg, Route, SessionMsg};
use crate::network::{Network, NetworkActor, NetworkArgs};
use crate::stats::Stats;
use crate::store::NodeStore;
use crate::topology::Topology;

/// How long a stopping node waits for its session and network actors to stop cleanly.
const CHILDREN_STOP: Duration = Duration::from_secs(5);

/// What a node serves.
#[derive(Clone)]
pub enum NodeKind {
    /// A server with its part of the model.
    Server {
        /// The part (own weights, public skeleton, server names).
        part: Arc<ServerPart>,
    },
    /// A user with its part (input shape, fixed point, output length).
    User {
        /// The user's part.
        part: UserPart,
    },
}

/// Arguments of the node actor.
pub struct NodeArgs {
    /// Node name (from the topology).
    pub name: String,
    /// Server or user.
    pub kind: NodeKind,
    /// The topology.
    pub topology: Arc<Topology>,
    /// The network (moved into the network actor).
    pub network: Network,
    /// The store.
    pub store: NodeStore,
    /// Counters.
    pub stats: Stats,
    /// Bounds.
    pub limits: Limits,
    /// Event broadcast.
    pub events: broadcast::Sender<NodeEvent>,
    /// Where to write the counters (JSON), if anywhere.
    pub stats_file: Option<PathBuf>,
}

/// A session with a live actor.
pub(crate) struct Entry {
    route: Route,
    user_peer: Option<PeerId>,
    restarts: u32,
}

/// State of the node actor.
pub struct NodeState {
    ctx: Arc<NodeContext>,
    kind: NodeKind,
    network_id: ActorId,
    sessions: HashMap<SessionId, Entry>,
    by_actor: HashMap<ActorId, SessionId>,
    /// A session running the collective key generation, and since when (others wait for it).
    keygen: Option<(SessionId, Instant)>,
    /// Unrouted messages queued here (shared with the network actor, which bounds it).
    unrouted: Arc<AtomicUsize>,
    /// Sessions that ended here (closed, aborted, expired); bounded.
    ended: crate::network::ended::EndedSessions,
    /// Stored session records without an actor since the start; they expire after
    /// `Timeouts::idle` unless a message resumes them.
    dormant: ended::Dormant,
    stats_file: Option<PathBuf>,
    ticker: Option<JoinHandle<()>>,
}

/// The node actor (see the module docs).
pub struct NodeActor;

impl Actor for NodeActor {
    type Msg = NodeMsg;
    type State = NodeState;
    type Arguments = NodeArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<NodeMsg>,
        args: NodeArgs,
    ) -> Result<NodeState, ActorProcessingErr> {
        let timeouts: Timeouts = args.topology.timeouts;
        let unrouted = Arc::new(AtomicUsize::new(0));
        let net_args = NetworkArgs {
            unrouted: unrouted.clone(),
            name: args.name.clone(),
            network: args.network,
            topology: args.topology.clone(),
            node: myself.clone(),
            stats: args.stats.clone(),
            timeouts,
            limits: args.limits,
        };
        let (network, _) = Actor::spawn_linked(None, NetworkActor, net_args, myself.get_cell())
            .await
            .map_err(|e| ActorError::Spawn {
                actor: "network",
                reason: e.to_string(),
            })?;
        let me = match &args.kind {
            NodeKind::Server { part } => Party::Server(u16::try_from(part.server_index)?),
            NodeKind::User { .. } => Party::User,
        };
        let ctx = NodeContext {
            name: args.name,
            me,
            store: args.store,
            network: network.clone(),
            servers: args.topology.servers().iter().map(|n| n.peer_id).collect(),
            topology: args.topology,
            stats: args.stats,
            timeouts,
            limits: args.limits,
            events: args.events,
        };
        Ok(NodeState {
            ctx: Arc::new(ctx),
            kind: args.kind,
            network_id: network.get_id(),
            sessions: HashMap::new(),
            by_actor: HashMap::new(),
            keygen: None,
            unrouted,
            ended: crate::network::ended::EndedSessions::default(),
            dormant: ended::Dormant::new(),
            stats_file: args.stats_file,
            ticker: None,
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<NodeMsg>,
        state: &mut NodeState,
    ) -> Result<(), ActorProcessingErr> {
        state.ticker = Some(myself.send_interval(Duration::from_millis(500), || NodeMsg::Tick));
        if matches!(state.kind, NodeKind::Server { .. }) {
            state.load_dormant()?;
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        myself: ActorRef<NodeMsg>,
        state: &mut NodeState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(t) = state.ticker.take() {
            t.abort();
        }
        // Children stop cleanly (their `post_stop` runs: a session puts its armed bundle back
        // in the store) instead of being killed with this actor.
        myself
            .stop_children_and_wait(Some("node stopping".into()), Some(CHILDREN_STOP))
            .await;
        state.write_stats(true);
        state.ctx.store.flush()?;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<NodeMsg>,
        msg: NodeMsg,
        state: &mut NodeState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            NodeMsg::Unrouted {
                from,
                peer,
                msg,
                reply,
            } => {
                state.unrouted.fetch_sub(1, Ordering::Relaxed);
                state.on_unrouted(&myself, from, peer, *msg, reply).await
            }
            NodeMsg::OpenUserSession(output, port) => {
                let r = state.open_user_session(&myself, output).await;
                let _ = port.send(r);
            }
            NodeMsg::Sessions(port) => {
                let _ = port.send(state.sessions.keys().copied().collect());
            }
            NodeMsg::Network(port) => {
                let _ = port.send(state.ctx.network.clone());
            }
            NodeMsg::FailSession(sid) => {
                if let Some(e) = state.sessions.get(&sid) {
                    let _ = e
                        .route
                        .actor
                        .cast(SessionMsg::Fail("requested by a test".into()));
                }
            }
            NodeMsg::Tick => {
                state.write_stats(false);
                state.expire_dormant(Instant::now())?;
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<NodeMsg>,
        event: SupervisionEvent,
        state: &mut NodeState,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorFailed(cell, err) => {
                if cell.get_id() == state.network_id {
                    tracing::error!(node = %state.ctx.name, error = %err, "the network actor failed: the node stops");
                    return Err(format!("the network actor failed: {err}").into());
                }
                if let Some(sid) = state.by_actor.remove(&cell.get_id()) {
                    state
                        .on_session_failed(&myself, sid, &err.to_string())
                        .await?;
                }
            }
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                if cell.get_id() == state.network_id {
                    // Its event loop ended (see `network::spawn_watch`): the node is deaf.
                    let why = reason.unwrap_or_else(|| "no reason given".into());
                    tracing::error!(node = %state.ctx.name, reason = %why, "the network actor stopped: the node stops");
                    return Err(format!("the network actor stopped: {why}").into());
                }
                if let Some(sid) = state.by_actor.remove(&cell.get_id()) {
                    // A session actor stops only when its session ended (closed, expired,
                    // aborted, or its opening message was refused): the slot is free now.
                    state.sessions.remove(&sid);
                    state.ended.insert(sid);
                    // Also removes its route and drops its messages still queued for peers.
                    let _ = state.ctx.network.cast(NetworkMsg::Ended(sid));
                    if state.keygen.is_some_and(|(k, _)| k == sid) {
                        // A key generation that failed (or ended) releases its lock at once.
                        state.keygen = None;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

impl NodeState {
    /// Writes the counters file when they changed (or always, at the end).
    fn write_stats(&self, force: bool) {
        let Some(path) = &self.stats_file else {
            return;
        };
        let stats = if force {
            Some(self.ctx.stats.snapshot())
        } else {
            self.ctx.stats.take_dirty()
        };
        let Some(stats) = stats else {
            return;
        };
        let tmp = path.with_extension("json.tmp");
        let write = serde_json::to_vec_pretty(&stats)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&tmp, bytes))
            .and_then(|()| std::fs::rename(&tmp, path));
        if let Err(e) = write {
            tracing::warn!(node = %self.ctx.name, path = %path.display(), error = %e, "cannot write the stats file");
        }
    }
}

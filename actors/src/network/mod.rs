//! The network actor: the bridge between the runtime's [`Client`] / event stream and the
//! session actors (STYLE.md 7).
//!
//! ```text
//!   runtime events ──pump task (call: one at a time)──▶ NetworkActor ──▶ session actor (by session id)
//!                                                          │         └─▶ node actor (unknown session)
//!   session actor ──Send──▶ NetworkActor ──▶ per-peer sender task ──▶ Outbox::send (retries, then SendFailed)
//! ```
//!
//! Inbound: the envelope is decoded into a [`SecoMsg`](seco_protocols::seco::SecoMsg) (garbage: refused with
//! [`REJECT_MALFORMED`], logged, never a panic), the sender's peer id is mapped to its party
//! through the topology, and the message goes to its session actor, or to the node actor when no
//! session actor has that id yet. The message is acknowledged once it is queued for its session
//! actor (in memory): what it changes is persisted by the session actor before anything it
//! causes is sent (the raft drive loop), and acknowledging only after the state machine ran
//! would hold the sender for seconds of cryptography (the ack timeout would have to cover the
//! longest step). A crash between the ack and the step loses the message; the phase recovers
//! it: the crashed server's peers abort what they had in flight once it is lost (not back
//! within `Timeouts::grace`) or once it restarted (its fresh OT setup, `session/loss.rs`), the
//! phase deadline otherwise, and the user retries with a fresh bundle (`docs/operations.md`,
//! "Acknowledgements and lost messages").
//!
//! Bounds: the pump hands one event at a time to this actor (the runtime's bounded queue then
//! answers `Busy` to senders); each session actor has at most `Limits::max_session_queue`
//! messages waiting, and the node actor at most `Limits::max_unrouted` messages of sessions it
//! has not admitted yet; beyond, senders get `Busy` and retry with back-off.
//!
//! Supervision: the actor watches the runtime's event loop task; when it ends on its own
//! (panic, or a return while the actor runs) the actor stops with the reason, the node actor
//! (its supervisor) fails with it, and `seco node` exits non-zero: a node never runs on deaf.
//!
//! Outbound: one ordered queue per (peer, session) (and a second for `OnlineStart`, which must
//! not hold the stage messages behind its ack), each with its own sender task
//! (`queues.rs`), so that a session whose messages to a peer are retrying never delays
//! another session's messages to it (request-response carries many requests at once); the
//! bytes queued are bounded per peer and in total, and the sends in flight per peer. Each
//! message waits for its ack; dial failures and `Busy` are retried (with a Kademlia lookup
//! when the peer's address is unknown, as in the two-level hierarchy) for `Timeouts::retry`;
//! a message that still cannot be delivered is reported to its session actor as
//! [`SessionMsg::SendFailed`]. "Unknown session" refusals are retried too: a server's
//! key-generation message can reach a remote before the gateway's `Open` does. A refusal is
//! reported in words ([`reject_text`]), so that the user reads why ("no free session slot"),
//! not a code. Messages of a session that ended here ([`NetworkMsg::Ended`]) still queued for
//! a peer are dropped, except its `Abort` and `Close`, and an `Abort` or `Close` the peer
//! answers with "unknown session" is not retried.
//!
//! Loss: when the last connection to a server closes, `liveness.rs` tries to reach it again
//! for `Timeouts::grace`; a server still unreachable then is lost ([`NetworkMsg::PeerLost`]),
//! and every session actor hears it ([`SessionMsg::PeerLost`]).
//!
//! # Layout
//! - `mod.rs`: [`NetworkActor`], its messages, inbound routing.
//! - `queues.rs`: the per-(peer, session) queues and their sender tasks, the byte bounds.
//! - `outbound.rs`: delivery of one message (retries, dropped messages of ended sessions,
//!   failure reports).
//! - `liveness.rs`: loss detection after a closed connection.
//! - `reject.rs`: the application reject codes and their words.

pub(crate) mod ended;
mod liveness;
mod outbound;
mod queues;
mod reject;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use ractor::{Actor, ActorProcessingErr, ActorRef, ActorStatus};
use seco_protocols::seco::{Party, SessionId};
use seco_runtime::fault::{Faults, FaultyClient};
use seco_runtime::net::{self, Client, Envelope, Event, InboundMessage, NetConfig, Reject};
use seco_runtime::{Keypair, Multiaddr, PeerId};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::{Limits, Timeouts};
pub use crate::msgs::{NetworkMsg, Outgoing, Route};
use crate::msgs::{NodeMsg, SessionMsg};
use crate::stats::Stats;
use crate::topology::{PeerRole, Topology};
use crate::wire;
use ended::EndedSessions;
use outbound::notify_failure;
use queues::{lock, Queues};
pub use reject::{
    describe_send_error, reject_text, REJECT_KEYGEN_RUNNING, REJECT_MALFORMED,
    REJECT_NO_SESSION_SLOT, REJECT_REFUSED, REJECT_ROLE, REJECT_SESSION_ENDED,
    REJECT_UNKNOWN_SESSION,
};

/// The outbox the actors send through: the runtime's client, or the fault-injection layer over it.
#[derive(Debug, Clone)]
pub enum Transport {
    /// The real client.
    Plain(Client),
    /// The client behind [`FaultyClient`] (tests).
    Faulty(FaultyClient),
}

impl Transport {
    /// Sends one envelope and waits for its ack.
    pub async fn send(&self, peer: PeerId, env: Envelope) -> net::Result<()> {
        match self {
            Transport::Plain(c) => c.send(peer, env).await,
            Transport::Faulty(f) => net::Outbox::send(f, peer, env).await,
        }
    }

    /// The underlying client (listen, dial, Kademlia).
    pub fn client(&self) -> &Client {
        match self {
            Transport::Plain(c) => c,
            Transport::Faulty(f) => f.client(),
        }
    }
}

/// A node's network: the transport, the event stream, the event loop task.
#[derive(Debug)]
pub struct Network {
    /// Where messages go out.
    pub transport: Transport,
    /// Where inbound messages and status events come from.
    pub events: mpsc::Receiver<Event>,
    /// The runtime's event loop (libp2p swarm): watched by the network actor, which stops
    /// with the reason when it ends on its own (a deaf node must not run on).
    task: Option<JoinHandle<()>>,
}

impl Network {
    /// Starts the runtime's event loop for `keypair` with `config`.
    pub fn spawn(keypair: Keypair, config: NetConfig) -> net::Result<Self> {
        let (client, events, task) = net::spawn(keypair, config)?;
        Ok(Self {
            transport: Transport::Plain(client),
            events,
            task: Some(task),
        })
    }

    /// The same network behind the fault-injection layer; returns its control handle.
    pub fn with_faults(self, seed: u64) -> (Self, Faults) {
        let faulty = FaultyClient::new(self.transport.client().clone(), seed);
        let faults = faulty.faults().clone();
        let events = faulty.events(self.events);
        (
            Self {
                transport: Transport::Faulty(faulty),
                events,
                task: self.task,
            },
            faults,
        )
    }
}

/// Arguments of the network actor.
pub struct NetworkArgs {
    /// Node name (logs).
    pub name: String,
    /// The network.
    pub network: Network,
    /// The topology (allowlist and parties).
    pub topology: Arc<Topology>,
    /// The node actor (unknown sessions).
    pub node: ActorRef<NodeMsg>,
    /// Counters.
    pub stats: Stats,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// Bounds.
    pub limits: Limits,
    /// Messages handed to the node actor and not yet handled (the node actor decrements).
    pub unrouted: Arc<AtomicUsize>,
}

/// State of the network actor.
pub struct NetworkState {
    name: String,
    transport: Transport,
    topology: Arc<Topology>,
    node: ActorRef<NodeMsg>,
    stats: Stats,
    timeouts: Timeouts,
    limits: Limits,
    routes: HashMap<SessionId, Route>,
    unrouted: Arc<AtomicUsize>,
    queues: Queues,
    listening: Vec<Multiaddr>,
    /// Sessions that ended here, shared with the sender tasks (bounded).
    ended: Arc<Mutex<EndedSessions>>,
    /// Servers whose connection closed and that are being watched (`liveness.rs`).
    watched: HashSet<PeerId>,
    /// When each server's last connection last closed (restart detection, `liveness.rs`).
    disconnected: HashMap<PeerId, std::time::Instant>,
    myself: ActorRef<NetworkMsg>,
}

/// The network actor (see the module docs).
pub struct NetworkActor;

impl Actor for NetworkActor {
    type Msg = NetworkMsg;
    type State = NetworkState;
    type Arguments = NetworkArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<NetworkMsg>,
        args: NetworkArgs,
    ) -> Result<NetworkState, ActorProcessingErr> {
        let client = args.network.transport.client().clone();
        for (peer, addr) in args.topology.known_addresses(&client.local_peer_id()) {
            client.add_address(peer, addr).await?;
        }
        if let Some(task) = args.network.task {
            let client = args.network.transport.client().clone();
            spawn_watch(task, client, myself.clone(), args.name.clone());
        }
        spawn_pump(args.network.events, myself.clone());
        let ended: Arc<Mutex<EndedSessions>> = Arc::default();
        let queues = Queues::new(
            args.network.transport.clone(),
            args.timeouts.retry,
            args.limits,
            ended.clone(),
        );
        Ok(NetworkState {
            name: args.name,
            transport: args.network.transport,
            topology: args.topology,
            node: args.node,
            stats: args.stats,
            timeouts: args.timeouts,
            limits: args.limits,
            routes: HashMap::new(),
            unrouted: args.unrouted,
            queues,
            listening: Vec::new(),
            ended,
            watched: HashSet::new(),
            disconnected: HashMap::new(),
            myself,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<NetworkMsg>,
        msg: NetworkMsg,
        state: &mut NetworkState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            NetworkMsg::Net(event, done) => {
                state.on_event(event);
                let _ = done.send(());
            }
            NetworkMsg::Send(out) => state.send(out),
            NetworkMsg::Route(session, Some(route)) => {
                state.routes.insert(session, route);
            }
            NetworkMsg::Route(session, None) => {
                state.routes.remove(&session);
            }
            NetworkMsg::Listening(reply) => {
                let _ = reply.send(state.listening.clone());
            }
            NetworkMsg::Ended(session) => {
                state.routes.remove(&session);
                lock(&state.ended).insert(session);
            }
            NetworkMsg::PeerLost(peer) => state.peer_lost(peer),
            NetworkMsg::PeerBack(peer) => {
                state.watched.remove(&peer);
                tracing::debug!(node = %state.name, %peer, "peer reached again");
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<NetworkMsg>,
        state: &mut NetworkState,
    ) -> Result<(), ActorProcessingErr> {
        state.transport.client().shutdown().await;
        Ok(())
    }
}

/// Forwards runtime events to the actor one at a time (the actor's mailbox is unbounded; the
/// runtime's event queue is not, and stays the bound).
fn spawn_pump(mut events: mpsc::Receiver<Event>, actor: ActorRef<NetworkMsg>) {
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if actor
                .call(|reply| NetworkMsg::Net(event, reply), None)
                .await
                .is_err()
            {
                break;
            }
        }
    });
}

/// Stops the actor with the reason when the runtime's event loop ends while the actor runs
/// (it panicked, or returned): the node actor, its supervisor, then fails too, and `seco node`
/// exits non-zero instead of running on deaf. At a normal stop the actor is already stopping.
fn spawn_watch(task: JoinHandle<()>, client: Client, actor: ActorRef<NetworkMsg>, name: String) {
    tokio::spawn(async move {
        let why = match task.await {
            Ok(()) => "the libp2p event loop ended".to_string(),
            Err(e) if e.is_panic() => {
                let panic = e.into_panic();
                let text = panic
                    .downcast_ref::<&str>()
                    .map(ToString::to_string)
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                format!("the libp2p event loop panicked: {text}")
            }
            Err(_) => "the libp2p event loop was cancelled".to_string(),
        };
        // A shutdown of the node (any clone of the client) ends the loop on purpose. The actor
        // may still be `Starting`: ractor sets `Running` in the actor's own task, after `spawn`
        // has returned, so a loop that ends early must stop it too (its stop waits in the
        // actor's stop port until the processing loop begins).
        let alive = matches!(
            actor.get_status(),
            ActorStatus::Starting | ActorStatus::Running
        );
        if alive && !client.shutdown_requested() {
            tracing::error!(node = %name, reason = %why, "network lost: stopping the node");
            actor.stop(Some(why));
        }
    });
}

impl NetworkState {
    fn on_event(&mut self, event: Event) {
        match event {
            Event::Message(m) => self.on_message(m),
            Event::Listening { address } => self.listening.push(address),
            Event::PeerConnected { peer, address } => {
                tracing::debug!(node = %self.name, %peer, %address, "peer connected");
            }
            Event::PeerDisconnected { peer } => {
                tracing::debug!(node = %self.name, %peer, "peer disconnected");
                self.peer_disconnected(peer);
            }
            Event::PeerRestarted { peer } => self.peer_restarted(peer),
            _ => {}
        }
    }

    /// Decode, map the sender, route (see the module docs).
    fn on_message(&mut self, m: InboundMessage) {
        let InboundMessage {
            peer,
            envelope,
            reply,
        } = m;
        let Some(role) = self.topology.peer_role(&peer) else {
            // The runtime's allowlist should have stopped it already (defense in depth).
            tracing::warn!(node = %self.name, %peer, "dropping a message from a peer outside the topology");
            self.stats.refused();
            reply.reject(REJECT_UNKNOWN_SESSION);
            return;
        };
        // Roles (defense in depth behind the allowlist by role): a remote refuses users.
        if let Some(me) = self.topology.node(&self.name).ok().map(|n| n.role) {
            if let Err(error) = self.topology.check_peer(me, &peer) {
                tracing::warn!(node = %self.name, %peer, %error, "refusing a message by role");
                self.stats.refused();
                reply.reject(REJECT_ROLE);
                return;
            }
        }
        let msg = match wire::from_envelope(&envelope) {
            Ok(msg) => msg,
            Err(error) => {
                tracing::warn!(node = %self.name, %peer, %error, "refusing an undecodable message");
                self.stats.refused();
                reply.reject(REJECT_MALFORMED);
                return;
            }
        };
        self.stats
            .received(msg.body.phase(), envelope.payload.len());
        tracing::trace!(node = %self.name, %peer, session = %msg.session, body = msg.body.name(), bytes = envelope.payload.len(), "received");
        let from = match role {
            PeerRole::Server(i) => Party::Server(i),
            PeerRole::User => Party::User,
        };
        match self.routes.get(&msg.session) {
            Some(route) => {
                if route.queue.load(Ordering::Relaxed) >= self.limits.max_session_queue {
                    tracing::debug!(node = %self.name, %peer, "session queue full: answering busy");
                    reply.answer(net::Ack::Rejected(Reject::Busy));
                    return;
                }
                route.queue.fetch_add(1, Ordering::Relaxed);
                match route.actor.cast(SessionMsg::Inbound { from, peer, msg }) {
                    Ok(()) => reply.ack(),
                    Err(_) => {
                        route.queue.fetch_sub(1, Ordering::Relaxed);
                        reply.answer(net::Ack::Rejected(Reject::Dropped));
                    }
                }
            }
            None => {
                if self.unrouted.load(Ordering::Relaxed) >= self.limits.max_unrouted {
                    tracing::debug!(node = %self.name, %peer, "node queue full: answering busy");
                    reply.answer(net::Ack::Rejected(Reject::Busy));
                    return;
                }
                self.unrouted.fetch_add(1, Ordering::Relaxed);
                if self
                    .node
                    .cast(NodeMsg::Unrouted {
                        from,
                        peer,
                        msg: Box::new(msg),
                        reply,
                    })
                    .is_err()
                {
                    tracing::warn!(node = %self.name, "node actor gone: dropping a message");
                }
            }
        }
    }

    /// Queues `out` behind its session's earlier messages to the same peer.
    fn send(&mut self, out: Outgoing) {
        let bytes = out.msg.to_bytes().len();
        self.stats.sent(out.msg.body.phase(), bytes);
        if let Err(refused) = self.queues.push(out, bytes) {
            let (out, why) = *refused;
            tracing::warn!(node = %self.name, peer = %out.to, body = out.msg.body.name(), %why, "message not queued");
            notify_failure(out, why, None);
        }
    }

    /// Starts watching a server whose last connection closed (once at a time per peer). A
    /// user watches only the gateway: it talks to no other server, and may not be able to
    /// reach them (an idle connection to a remote that closes must not abort its session).
    fn watch(&mut self, peer: PeerId) {
        let me = self.transport.client().local_peer_id();
        let user = matches!(self.topology.peer_role(&me), Some(PeerRole::User));
        match self.topology.peer_role(&peer) {
            Some(PeerRole::Server(0)) => {}
            Some(PeerRole::Server(_)) if !user => {}
            _ => return,
        }
        if !self.watched.insert(peer) {
            return;
        }
        let addrs = self
            .topology
            .known_addresses(&self.transport.client().local_peer_id())
            .into_iter()
            .filter(|(p, _)| *p == peer)
            .map(|(_, a)| a)
            .collect();
        liveness::watch(
            self.transport.clone(),
            peer,
            addrs,
            self.timeouts.grace,
            self.myself.clone(),
        );
    }

    /// A server is lost: every session actor hears it (those with work in flight abort).
    fn peer_lost(&mut self, peer: PeerId) {
        self.watched.remove(&peer);
        let Some(role) = self.topology.peer_role(&peer) else {
            return;
        };
        tracing::warn!(node = %self.name, %peer, grace = ?self.timeouts.grace, "server lost: its connection closed and it could not be reached again");
        for route in self.routes.values() {
            let _ = route.actor.cast(SessionMsg::PeerLost {
                peer,
                role,
                grace: self.timeouts.grace,
            });
        }
    }
}

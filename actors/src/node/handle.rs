//! [`Node`]: the handle a program (the `seco` binary, an example, a test) holds on a running
//! node (the user's side of a session: `user_session.rs`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ractor::concurrency::JoinHandle;
use ractor::rpc::CallResult;
use ractor::{Actor, ActorRef, RpcReplyPort};
use seco_protocols::plan::{ServerPart, UserPart};
use seco_protocols::seco::{OutputMode, SecoMsg, SessionId};
use seco_runtime::net::Client;
use seco_runtime::store::Store;
use seco_runtime::{Keypair, Multiaddr, PeerId};
use tokio::sync::{broadcast, oneshot};

use super::user_session::UserSessionHandle;
use super::{NodeActor, NodeArgs, NodeKind, NodeMsg};
use crate::config::Limits;
use crate::context::{NodeEvent, EVENT_CAPACITY};
use crate::error::{ActorError, Result};
use crate::network::{Network, NetworkMsg, Outgoing};
use crate::session::SessionMsg;
use crate::stats::{NodeStats, Stats};
use crate::store::NodeStore;
use crate::topology::{Role, Topology, TopologyError};

/// What a server node needs.
pub struct ServerSetup {
    /// Its name in the topology.
    pub name: String,
    /// The topology.
    pub topology: Arc<Topology>,
    /// Its part of the model (checked against the topology and the name).
    pub part: Arc<ServerPart>,
    /// Its store (sled in `seco node`).
    pub store: Arc<dyn Store>,
    /// Its network (see [`Node::network`]).
    pub network: Network,
    /// Where to write its counters as JSON, if anywhere.
    pub stats_file: Option<PathBuf>,
    /// Bounds.
    pub limits: Limits,
}

/// What a user node needs.
pub struct UserSetup {
    /// Its name in the topology.
    pub name: String,
    /// The topology.
    pub topology: Arc<Topology>,
    /// The user's part of the model.
    pub part: UserPart,
    /// Its store (the user's input masks; in memory for `seco infer`).
    pub store: Arc<dyn Store>,
    /// Its network.
    pub network: Network,
}

/// A running node.
pub struct Node {
    name: String,
    peer_id: PeerId,
    actor: ActorRef<NodeMsg>,
    /// `None` once the node actor has ended.
    join: Option<JoinHandle<()>>,
    network: ActorRef<NetworkMsg>,
    client: Client,
    events: broadcast::Sender<NodeEvent>,
    stats: Stats,
    store: NodeStore,
    topology: Arc<Topology>,
}

impl Node {
    /// The network of node `name`: its key must be the topology's peer id for it; listen,
    /// bootstrap and allowlist come from the topology. mDNS only when `mdns`.
    pub fn network(
        topology: &Topology,
        name: &str,
        keypair: Keypair,
        mdns: bool,
    ) -> Result<Network> {
        let spec = topology.node(name)?;
        let actual = keypair.public().to_peer_id();
        if actual != spec.peer_id {
            return Err(TopologyError::PeerIdMismatch {
                node: name.to_string(),
                expected: spec.peer_id.to_string(),
                actual: actual.to_string(),
            }
            .into());
        }
        Ok(Network::spawn(keypair, topology.net_config(spec, mdns))?)
    }

    /// Starts a server node (gateway or remote, as its part says).
    pub async fn start_server(s: ServerSetup) -> Result<Node> {
        let role = if s.part.server_index == 0 {
            Role::Gateway
        } else {
            Role::Remote
        };
        s.topology.node_with_role(&s.name, role)?;
        s.topology.check_part(&s.name, &s.part)?;
        let kind = NodeKind::Server { part: s.part };
        let store = NodeStore::new(s.store);
        Self::start(
            s.name,
            kind,
            s.topology,
            s.network,
            store,
            s.stats_file,
            s.limits,
        )
        .await
    }

    /// Starts a user node.
    pub async fn start_user(s: UserSetup) -> Result<Node> {
        s.topology.node_with_role(&s.name, Role::User)?;
        s.topology.check_model(&s.name, &s.part.model)?;
        let kind = NodeKind::User { part: s.part };
        let store = NodeStore::new(s.store);
        Self::start(
            s.name,
            kind,
            s.topology,
            s.network,
            store,
            None,
            Limits::default(),
        )
        .await
    }

    async fn start(
        name: String,
        kind: NodeKind,
        topology: Arc<Topology>,
        network: Network,
        store: NodeStore,
        stats_file: Option<PathBuf>,
        limits: Limits,
    ) -> Result<Node> {
        let client = network.transport.client().clone();
        let peer_id = client.local_peer_id();
        let spec = topology.node(&name)?;
        if spec.peer_id != peer_id {
            return Err(TopologyError::PeerIdMismatch {
                node: name,
                expected: spec.peer_id.to_string(),
                actual: peer_id.to_string(),
            }
            .into());
        }
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        let stats = Stats::new(&name);
        let args = NodeArgs {
            name: name.clone(),
            kind,
            topology: topology.clone(),
            network,
            store: store.clone(),
            stats: stats.clone(),
            limits,
            events: events.clone(),
            stats_file,
        };
        let (actor, join) =
            Actor::spawn(None, NodeActor, args)
                .await
                .map_err(|e| ActorError::Spawn {
                    actor: "node",
                    reason: e.to_string(),
                })?;
        let network = call(&actor, NodeMsg::Network, None).await?;
        Ok(Node {
            name,
            peer_id,
            actor,
            join: Some(join),
            network,
            client,
            events,
            stats,
            store,
            topology,
        })
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The topology it runs with.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// The node's store.
    pub fn store(&self) -> &NodeStore {
        &self.store
    }

    /// Protocol events of every session of this node, from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<NodeEvent> {
        self.events.subscribe()
    }

    /// A copy of the counters.
    pub fn stats(&self) -> NodeStats {
        self.stats.snapshot()
    }

    /// The addresses the node listens on, waiting up to `wait` for the first one.
    pub async fn listen_addrs(&self, wait: Duration) -> Result<Vec<Multiaddr>> {
        let start = tokio::time::Instant::now();
        loop {
            let addrs = call(&self.network, NetworkMsg::Listening, None).await?;
            if !addrs.is_empty() || start.elapsed() >= wait {
                return Ok(addrs);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sessions with a live actor.
    pub async fn sessions(&self) -> Result<Vec<SessionId>> {
        call(&self.actor, NodeMsg::Sessions, None).await
    }

    /// Tests: sends `msg` to `to` through this node's outbound queues, as a session actor
    /// would (its session's queue to that peer, retries, bounds); the answer comes once the
    /// peer acknowledged it or its delivery failed for good (with the reason).
    pub fn send_raw(&self, to: PeerId, msg: SecoMsg) -> oneshot::Receiver<Result<(), String>> {
        let (tx, rx) = oneshot::channel();
        let out = Outgoing {
            to,
            msg,
            notify: None,
            delivered: Some(tx),
        };
        // A stopped network actor drops the sender: the receiver then reports it closed.
        let _ = self.network.cast(NetworkMsg::Send(out));
        rx
    }

    /// Fault injection (tests): the session's actor fails as if it had crashed.
    pub fn fail_session(&self, session: SessionId) {
        let _ = self.actor.cast(NodeMsg::FailSession(session));
    }

    /// User nodes: opens a session with the gateway (collective key generation runs first if
    /// the servers have none) and waits until it is ready; its inferences give the logits.
    /// A failed open is tried again with a new session, and failed bundles and inferences
    /// with a fresh bundle (in a new session if the session itself was aborted), up to
    /// [`DEFAULT_RETRIES`](super::DEFAULT_RETRIES) times ([`Node::open_session_retrying`],
    /// [`UserSessionHandle::set_retries`]).
    pub async fn open_session(&self) -> Result<UserSessionHandle> {
        self.open_session_with(OutputMode::Logits).await
    }

    /// [`Node::open_session`] with an output mode: in label mode the user learns only the
    /// predicted class of each inference ([`UserSessionHandle::predict`]).
    pub async fn open_session_with(&self, output: OutputMode) -> Result<UserSessionHandle> {
        self.open_session_retrying(output, super::DEFAULT_RETRIES)
            .await
    }

    /// [`Node::open_session_with`] with `retries` retries of a failed open, bundle or
    /// inference (0: none; `seco infer --retries`).
    pub async fn open_session_retrying(
        &self,
        output: OutputMode,
        retries: u32,
    ) -> Result<UserSessionHandle> {
        UserSessionHandle::open(self.actor.clone(), self.topology.timeouts, output, retries).await
    }

    /// Stops the node: its actors, then its network; the store is flushed.
    pub async fn shutdown(self) -> Result<()> {
        self.actor.stop(Some("shutdown".into()));
        if let Some(join) = self.join {
            let _ = join.await;
        }
        self.client.shutdown().await;
        self.store.flush()?;
        Ok(())
    }

    /// The runtime client (listen, dial, connected peers).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Waits until the node stops on its own (its network actor failed).
    pub async fn stopped(&mut self) {
        if let Some(join) = &mut self.join {
            let _ = join.await;
            self.join = None;
        }
    }
}

/// An RPC to an actor; a stopped actor is an error.
pub(super) async fn call<M: ractor::Message, T: Send + 'static>(
    actor: &ActorRef<M>,
    f: impl FnOnce(RpcReplyPort<T>) -> M,
    timeout: Option<Duration>,
) -> Result<T> {
    match actor.call(f, timeout).await {
        Ok(CallResult::Success(v)) => Ok(v),
        Ok(CallResult::Timeout) => Err(ActorError::Timeout {
            what: "actor reply",
            after: timeout.unwrap_or_default(),
        }),
        Ok(CallResult::SenderError) | Err(_) => Err(ActorError::Stopped("node")),
    }
}

/// An RPC to a session actor whose answer has its own deadline inside the actor; the call's
/// timeout is a safety net a little beyond it.
pub(super) async fn session_call<T: Send + 'static>(
    actor: &ActorRef<SessionMsg>,
    f: impl FnOnce(RpcReplyPort<Result<T>>) -> SessionMsg,
    limit: Duration,
) -> Result<T> {
    match actor.call(f, Some(limit + Duration::from_secs(5))).await {
        Ok(CallResult::Success(r)) => r,
        Ok(CallResult::Timeout) => Err(ActorError::Timeout {
            what: "session reply",
            after: limit,
        }),
        Ok(CallResult::SenderError) | Err(_) => Err(ActorError::Stopped("session")),
    }
}

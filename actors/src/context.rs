//! What every actor of a node shares: its name and party, the store, the network actor, the
//! topology, counters, timeouts, bounds, and the broadcast of protocol events.

use std::sync::Arc;

use ractor::ActorRef;
use seco_protocols::seco::{Event, Party, SessionId};
use seco_runtime::PeerId;
use tokio::sync::broadcast;

use crate::config::{Limits, Timeouts};
use crate::msgs::NetworkMsg;
use crate::stats::Stats;
use crate::store::NodeStore;
use crate::topology::Topology;

/// Capacity of the event broadcast (slow observers miss events, nobody blocks).
pub const EVENT_CAPACITY: usize = 1024;

/// A protocol event reported by one of a node's sessions.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeEvent {
    /// The node.
    pub node: String,
    /// The session.
    pub session: SessionId,
    /// What happened.
    pub event: Event,
}

/// Shared state of a node's actors.
pub struct NodeContext {
    /// Node name (logs, stats).
    pub name: String,
    /// This node's party (`Server(i)` or `User`).
    pub me: Party,
    /// The store.
    pub store: NodeStore,
    /// The network actor.
    pub network: ActorRef<NetworkMsg>,
    /// The topology.
    pub topology: Arc<Topology>,
    /// Peer id of every server, in plan order (index = `Party::Server(i)`).
    pub servers: Vec<PeerId>,
    /// Counters.
    pub stats: Stats,
    /// Timeouts per phase.
    pub timeouts: Timeouts,
    /// Bounds.
    pub limits: Limits,
    /// Protocol events, for observers (tests, the demo, examples).
    pub events: broadcast::Sender<NodeEvent>,
}

impl NodeContext {
    /// The peer id of server `i`.
    pub fn server_peer(&self, i: usize) -> Option<PeerId> {
        self.servers.get(i).copied()
    }

    /// The name of a peer in the topology (for logs).
    pub fn peer_name(&self, peer: &PeerId) -> String {
        self.topology
            .nodes
            .iter()
            .find(|n| n.peer_id == *peer)
            .map_or_else(|| peer.to_string(), |n| n.name.clone())
    }
}

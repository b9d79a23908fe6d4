//! The topology file: who takes part in a deployment, in which role, under which peer id, and
//! where to reach them (DESIGN.md s.2 and s.5 phase 0; the format is documented in
//! `docs/topology.md`).
//!
//! A topology is TOML with one `[[node]]` table per node (gateway, remotes, users) and optional
//! `[timeouts]`. The server nodes, in file order, are the servers of the split plan: the gateway
//! first, then the remotes, with the same names (index = plan order). A node's allowlist is the
//! set of peer ids in the file its role talks to ([`talks_to`]): the gateway talks to every
//! node, a remote to the servers only, a user to the gateway only (DESIGN.md s.2). A peer
//! outside it is refused by the runtime at connection time; the network actor checks the role
//! of every message's sender again ([`Topology::check_peer`], a typed
//! [`TopologyError::RoleRefused`]).
//!
//! # Layout
//! - `mod.rs`: [`Topology`], [`NodeSpec`], [`Role`], lookups and the derived network settings.
//! - `parse.rs`: the TOML shape and its validation into a [`Topology`].
//! - `error.rs`: [`TopologyError`].

mod error;
mod parse;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use libp2p::multiaddr::Protocol;
use seco_protocols::plan::ServerPart;
use seco_runtime::net::NetConfig;
use seco_runtime::{Multiaddr, PeerId};

use crate::config::Timeouts;
pub use error::TopologyError;

/// Result alias of this module.
pub type Result<T, E = TopologyError> = std::result::Result<T, E>;

/// Largest topology file accepted, in bytes.
pub const MAX_TOPOLOGY_BYTES: u64 = 1 << 20;

/// Version written in (and expected from) topology files.
pub const TOPOLOGY_VERSION: u32 = 1;

/// What a node does in a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Server 0: the user's only contact; coordinates the servers.
    Gateway,
    /// Servers 1..n: hold model parts, talk to the gateway and to each other.
    Remote,
    /// A user: talks only to the gateway.
    User,
}

impl Role {
    /// Parses `gateway`, `remote` or `user`.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "gateway" => Some(Role::Gateway),
            "remote" => Some(Role::Remote),
            "user" => Some(Role::User),
            _ => None,
        }
    }

    /// Whether the role is a server role.
    pub fn is_server(self) -> bool {
        !matches!(self, Role::User)
    }
}

/// Whether a node of role `me` talks to a peer of role `peer`: servers talk to each other, the
/// gateway to users, a user to the gateway only; remotes refuse users and users each other.
pub fn talks_to(me: Role, peer: Role) -> bool {
    match (me, peer) {
        (Role::Gateway, _) | (_, Role::Gateway) => true,
        (Role::Remote, Role::Remote) => true,
        (Role::Remote, Role::User) | (Role::User, Role::Remote) | (Role::User, Role::User) => false,
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Gateway => "gateway",
            Role::Remote => "remote",
            Role::User => "user",
        })
    }
}

/// One node of the topology.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    /// Unique name; for servers, the server name of the split plan.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Its libp2p peer id (Ed25519): the identity every other node checks.
    pub peer_id: PeerId,
    /// Where it listens (its own business; `/tcp/0` picks a free port).
    pub listen: Vec<Multiaddr>,
    /// Where others may dial it, without `/p2p`. Empty: others find it through Kademlia after
    /// it bootstraps (the two-level hierarchy of `examples/`).
    pub advertise: Vec<Multiaddr>,
    /// Nodes it dials at start (then a Kademlia bootstrap), by name.
    pub bootstrap: Vec<String>,
    /// Its key file, if the topology names one (resolved against the file's directory).
    pub identity: Option<PathBuf>,
}

impl NodeSpec {
    /// `advertise` addresses with `/p2p/<peer id>` appended (what a bootstrap dial needs).
    pub fn dial_addresses(&self) -> Vec<Multiaddr> {
        self.advertise
            .iter()
            .map(|a| a.clone().with(Protocol::P2p(self.peer_id)))
            .collect()
    }
}

/// A validated topology.
#[derive(Debug, Clone, PartialEq)]
pub struct Topology {
    /// Model the deployment serves, if the file names one (checked against the parts).
    pub model: Option<String>,
    /// Timeouts of every phase.
    pub timeouts: Timeouts,
    /// Every node, in file order.
    pub nodes: Vec<NodeSpec>,
}

/// The party a peer plays, as the topology says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerRole {
    /// Server `i` of the plan (0 = gateway).
    Server(u16),
    /// A user.
    User,
}

impl Topology {
    /// Reads and validates a topology file (relative `identity` paths are resolved against the
    /// file's directory).
    pub fn load(path: &Path) -> Result<Self> {
        let io = |source| TopologyError::Io {
            path: path.to_path_buf(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(io)?;
        if meta.len() > MAX_TOPOLOGY_BYTES {
            return Err(TopologyError::TooLarge {
                path: path.to_path_buf(),
                len: meta.len(),
            });
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::from_toml(&text, base)
    }

    /// Parses and validates TOML text; `base` resolves relative `identity` paths.
    pub fn from_toml(text: &str, base: &Path) -> Result<Self> {
        parse::parse(text, base)
    }

    /// Writes the topology as TOML (the format [`Topology::from_toml`] reads).
    pub fn to_toml(&self) -> String {
        parse::render(self)
    }

    /// The node called `name`.
    pub fn node(&self, name: &str) -> Result<&NodeSpec> {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .ok_or_else(|| TopologyError::UnknownNode(name.to_string()))
    }

    /// The node called `name`, which must have `role`.
    pub fn node_with_role(&self, name: &str, role: Role) -> Result<&NodeSpec> {
        let node = self.node(name)?;
        if node.role != role {
            return Err(TopologyError::WrongRole {
                node: name.to_string(),
                expected: role,
                actual: node.role,
            });
        }
        Ok(node)
    }

    /// The server nodes in plan order: the gateway, then the remotes in file order.
    pub fn servers(&self) -> Vec<&NodeSpec> {
        self.nodes.iter().filter(|n| n.role.is_server()).collect()
    }

    /// The server names in plan order.
    pub fn server_names(&self) -> Vec<String> {
        self.servers().iter().map(|n| n.name.clone()).collect()
    }

    /// The gateway (always there in a validated topology).
    pub fn gateway(&self) -> Option<&NodeSpec> {
        self.servers().first().copied()
    }

    /// The user nodes.
    pub fn users(&self) -> Vec<&NodeSpec> {
        self.nodes.iter().filter(|n| n.role == Role::User).collect()
    }

    /// Every peer id of the file (the gateway's allowlist; [`Topology::allowlist_for`] gives
    /// each node's).
    pub fn allowlist(&self) -> HashSet<PeerId> {
        self.nodes.iter().map(|n| n.peer_id).collect()
    }

    /// The allowlist of node `me`: the peers of the file its role talks to ([`talks_to`]).
    pub fn allowlist_for(&self, me: &NodeSpec) -> HashSet<PeerId> {
        self.nodes
            .iter()
            .filter(|n| talks_to(me.role, n.role))
            .map(|n| n.peer_id)
            .collect()
    }

    /// The role of `peer` if a node of role `me` talks to it; a peer outside the topology is
    /// [`TopologyError::UnknownPeer`], one of a refused role (a user at a remote)
    /// [`TopologyError::RoleRefused`].
    pub fn check_peer(&self, me: Role, peer: &PeerId) -> Result<PeerRole> {
        let node = self
            .nodes
            .iter()
            .find(|n| n.peer_id == *peer)
            .ok_or_else(|| TopologyError::UnknownPeer(peer.to_string()))?;
        if !talks_to(me, node.role) {
            return Err(TopologyError::RoleRefused {
                me,
                peer: node.role,
            });
        }
        self.peer_role(peer)
            .ok_or_else(|| TopologyError::UnknownPeer(peer.to_string()))
    }

    /// A peer's role in words, for reasons that travel (abort reasons reach the user, which
    /// must not learn server names): "the gateway", "a remote server", "a user".
    pub fn role_text(&self, peer: &PeerId) -> &'static str {
        match self
            .nodes
            .iter()
            .find(|n| n.peer_id == *peer)
            .map(|n| n.role)
        {
            Some(Role::Gateway) => "the gateway",
            Some(Role::Remote) => "a remote server",
            Some(Role::User) => "a user",
            None => "a peer outside the topology",
        }
    }

    /// The role a peer plays, if it is in the topology.
    pub fn peer_role(&self, peer: &PeerId) -> Option<PeerRole> {
        if let Some(i) = self.servers().iter().position(|n| n.peer_id == *peer) {
            return u16::try_from(i).ok().map(PeerRole::Server);
        }
        self.users()
            .iter()
            .any(|n| n.peer_id == *peer)
            .then_some(PeerRole::User)
    }

    /// Checks that a server part fits this topology and the node `name`: same server names in
    /// plan order, this node at the part's index, the same model.
    pub fn check_part(&self, name: &str, part: &ServerPart) -> Result<()> {
        let mismatch = |reason: String| TopologyError::PartMismatch {
            node: name.to_string(),
            reason,
        };
        let servers = self.server_names();
        if part.servers != servers {
            return Err(mismatch(format!(
                "the part is for servers {:?}, the topology lists {:?} (same names, gateway first, plan order)",
                part.servers, servers
            )));
        }
        let own = part.servers.get(part.server_index).map(String::as_str);
        if own != Some(name) {
            return Err(mismatch(format!(
                "the part belongs to server {:?} (index {}), not to {name:?}",
                own.unwrap_or("?"),
                part.server_index
            )));
        }
        self.check_model(name, &part.model)
    }

    /// Checks the model named by the topology (if any) against `model`.
    pub fn check_model(&self, name: &str, model: &str) -> Result<()> {
        match &self.model {
            Some(m) if m != model => Err(TopologyError::PartMismatch {
                node: name.to_string(),
                reason: format!("the part is for model {model:?}, the topology serves {m:?}"),
            }),
            _ => Ok(()),
        }
    }

    /// Network settings of node `me`: its listen addresses, the dial addresses of its bootstrap
    /// nodes, its advertised addresses as the ones told to peers, its allowlist by role
    /// ([`Topology::allowlist_for`]), mDNS only when asked, the ack timeout.
    pub fn net_config(&self, me: &NodeSpec, mdns: bool) -> NetConfig {
        let bootstrap = me
            .bootstrap
            .iter()
            .filter_map(|b| self.node(b).ok())
            .flat_map(NodeSpec::dial_addresses)
            .collect();
        NetConfig {
            listen: me.listen.clone(),
            announce: me.advertise.clone(),
            bootstrap,
            allowlist: self.allowlist_for(me),
            mdns,
            ack_timeout: self.timeouts.ack,
            heartbeat: Some(self.timeouts.heartbeat),
            ..NetConfig::default()
        }
    }

    /// `(peer, address)` of every other node that advertises addresses (added to the swarm at
    /// start so that sends can dial them).
    pub fn known_addresses(&self, me: &PeerId) -> Vec<(PeerId, Multiaddr)> {
        self.nodes
            .iter()
            .filter(|n| n.peer_id != *me)
            .flat_map(|n| n.advertise.iter().map(move |a| (n.peer_id, a.clone())))
            .collect()
    }

    /// Replaces every TCP port of every listen and advertise address with `map(node, port)`
    /// (local runs: free ports chosen by the OS instead of the file's fixed ones).
    pub fn remap_ports(&mut self, mut map: impl FnMut(&str, u16) -> u16) {
        for node in &mut self.nodes {
            let name = node.name.clone();
            for addr in node.listen.iter_mut().chain(node.advertise.iter_mut()) {
                *addr = addr
                    .iter()
                    .map(|p| match p {
                        Protocol::Tcp(port) if port != 0 => Protocol::Tcp(map(&name, port)),
                        other => other,
                    })
                    .collect();
            }
        }
    }
}

#[cfg(test)]
mod tests;

//! Why a topology could not be read, or does not fit a node.

use std::path::PathBuf;

use super::Role;

/// A topology error; each message names the file, node or field at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TopologyError {
    /// The file cannot be read.
    #[error("cannot read topology {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is too large to be a topology.
    #[error("topology {path} is {len} bytes, more than the 1 MiB a topology may have")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its length.
        len: u64,
    },
    /// Not valid TOML, or fields of the wrong type, missing or unknown.
    #[error("topology is not valid: {0}")]
    Syntax(String),
    /// A version this build does not read.
    #[error("topology version {found} is not supported (this build reads version {supported})")]
    Version {
        /// Found in the file.
        found: u32,
        /// Supported.
        supported: u32,
    },
    /// A role other than gateway, remote or user.
    #[error("node {node:?}: unknown role {role:?} (expected gateway, remote or user)")]
    UnknownRole {
        /// The node.
        node: String,
        /// The role found.
        role: String,
    },
    /// A name that is empty, too long or has characters outside `[A-Za-z0-9_.-]`.
    #[error("bad node name {0:?} (1 to 64 characters among A-Z a-z 0-9 _ . -)")]
    BadName(String),
    /// Two nodes with the same name.
    #[error("two nodes are called {0:?}")]
    DuplicateName(String),
    /// Two nodes with the same peer id.
    #[error("nodes {first:?} and {second:?} have the same peer id {peer}")]
    DuplicatePeerId {
        /// The peer id.
        peer: String,
        /// First node.
        first: String,
        /// Second node.
        second: String,
    },
    /// A peer id that does not parse.
    #[error("node {node:?}: {value:?} is not a peer id")]
    BadPeerId {
        /// The node.
        node: String,
        /// The value.
        value: String,
    },
    /// A multiaddr that does not parse or is not usable where it is.
    #[error("node {node:?}: {field} address {value:?} {reason}")]
    BadAddress {
        /// The node.
        node: String,
        /// `listen`, `advertise` or `bootstrap`.
        field: &'static str,
        /// The address.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// A bootstrap entry that names no node (or the node itself, or one without addresses).
    #[error("node {node:?}: bootstrap {target:?} {reason}")]
    BadBootstrap {
        /// The node.
        node: String,
        /// The bootstrap entry.
        target: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The set of roles does not make a deployment.
    #[error("topology: {0}")]
    Roles(&'static str),
    /// A timeout that is not a positive number of seconds up to a day.
    #[error("timeout {name} = {value} is not between 0 and 86400 seconds")]
    BadTimeout {
        /// The timeout.
        name: &'static str,
        /// Its value.
        value: f64,
    },
    /// No node of that name.
    #[error("the topology has no node called {0:?}")]
    UnknownNode(String),
    /// The node exists with another role.
    #[error("node {node:?} is a {actual} in the topology, not a {expected}")]
    WrongRole {
        /// The node.
        node: String,
        /// The role asked for.
        expected: Role,
        /// Its role in the file.
        actual: Role,
    },
    /// The node's key is not the one the topology names.
    #[error("node {node:?}: this identity is peer {actual}, but the topology says {expected}")]
    PeerIdMismatch {
        /// The node.
        node: String,
        /// In the topology.
        expected: String,
        /// Of the key.
        actual: String,
    },
    /// A peer id that is not in the topology.
    #[error("peer {0} is not in the topology")]
    UnknownPeer(String),
    /// A peer whose role this node does not talk to (a user at a remote: a user talks only to
    /// the gateway).
    #[error("a {me} does not talk to a {peer} (a user talks only to the gateway)")]
    RoleRefused {
        /// This node's role.
        me: Role,
        /// The peer's role.
        peer: Role,
    },
    /// A model part that does not belong to this node or deployment.
    #[error("wrong model part for node {node:?}: {reason}")]
    PartMismatch {
        /// The node.
        node: String,
        /// What differs.
        reason: String,
    },
}

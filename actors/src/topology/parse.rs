//! The TOML shape of a topology file and its validation (every check answers with a
//! [`TopologyError`] naming the node and field; nothing here panics on any input).

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use libp2p::multiaddr::Protocol;
use serde::{Deserialize, Serialize};

use super::{NodeSpec, Result, Role, Topology, TopologyError, TOPOLOGY_VERSION};
use crate::config::Timeouts;
use seco_runtime::Multiaddr;

/// Longest node name.
const MAX_NAME: usize = 64;
/// Most nodes in one topology.
const MAX_NODES: usize = 256;
/// Most addresses per list.
const MAX_ADDRESSES: usize = 16;

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileShape {
    #[serde(default)]
    version: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timeouts: Option<TimeoutsShape>,
    #[serde(default, rename = "node")]
    nodes: Vec<NodeShape>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TimeoutsShape {
    open: Option<f64>,
    prep: Option<f64>,
    inference: Option<f64>,
    ack: Option<f64>,
    retry: Option<f64>,
    idle: Option<f64>,
    grace: Option<f64>,
    heartbeat: Option<f64>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeShape {
    name: String,
    role: String,
    peer_id: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    listen: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    advertise: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    bootstrap: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    identity: Option<String>,
}

/// Parses and validates `text`.
pub(super) fn parse(text: &str, base: &Path) -> Result<Topology> {
    let shape: FileShape = toml::from_str(text).map_err(|e| syntax(text, &e))?;
    if let Some(v) = shape.version.filter(|&v| v != TOPOLOGY_VERSION) {
        return Err(TopologyError::Version {
            found: v,
            supported: TOPOLOGY_VERSION,
        });
    }
    if shape.nodes.len() > MAX_NODES {
        return Err(TopologyError::Roles("more than 256 nodes"));
    }
    let timeouts = timeouts(shape.timeouts.unwrap_or_default())?;
    let nodes = shape
        .nodes
        .into_iter()
        .map(|n| node(n, base))
        .collect::<Result<Vec<_>>>()?;
    check_unique(&nodes)?;
    check_roles(&nodes)?;
    check_bootstrap(&nodes)?;
    Ok(Topology {
        model: shape.model,
        timeouts,
        nodes,
    })
}

/// One line: the TOML parser's message and the line it points at.
fn syntax(text: &str, e: &toml::de::Error) -> TopologyError {
    let line = e
        .span()
        .map(|s| text.get(..s.start).unwrap_or("").matches('\n').count() + 1);
    let msg = e.message().trim().replace('\n', " ");
    TopologyError::Syntax(match line {
        Some(l) => format!("line {l}: {msg}"),
        None => msg,
    })
}

fn timeouts(t: TimeoutsShape) -> Result<Timeouts> {
    let d = Timeouts::default();
    let get = |name: &'static str, v: Option<f64>, default: Duration| -> Result<Duration> {
        match v {
            None => Ok(default),
            Some(s) if s.is_finite() && s > 0.0 && s <= 86_400.0 => Ok(Duration::from_secs_f64(s)),
            Some(s) => Err(TopologyError::BadTimeout { name, value: s }),
        }
    };
    // prep and inference: unset means scaled to the split (`Timeouts::prep_for`).
    let opt = |name: &'static str, v: Option<f64>| -> Result<Option<Duration>> {
        v.map(|s| get(name, Some(s), Duration::ZERO)).transpose()
    };
    Ok(Timeouts {
        open: get("open", t.open, d.open)?,
        prep: opt("prep", t.prep)?,
        inference: opt("inference", t.inference)?,
        ack: get("ack", t.ack, d.ack)?,
        retry: get("retry", t.retry, d.retry)?,
        idle: get("idle", t.idle, d.idle)?,
        grace: get("grace", t.grace, d.grace)?,
        heartbeat: get("heartbeat", t.heartbeat, d.heartbeat)?,
        ..d
    })
}

fn node(n: NodeShape, base: &Path) -> Result<NodeSpec> {
    let name_ok = !n.name.is_empty()
        && n.name.len() <= MAX_NAME
        && n.name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if !name_ok {
        return Err(TopologyError::BadName(n.name));
    }
    let role = Role::parse(&n.role).ok_or_else(|| TopologyError::UnknownRole {
        node: n.name.clone(),
        role: n.role.clone(),
    })?;
    let peer_id = seco_runtime::identity::parse_peer_id(&n.peer_id).map_err(|_| {
        TopologyError::BadPeerId {
            node: n.name.clone(),
            value: n.peer_id.clone(),
        }
    })?;
    let listen = addresses(&n.name, "listen", &n.listen)?;
    if role.is_server() && listen.is_empty() {
        return Err(TopologyError::BadAddress {
            node: n.name.clone(),
            field: "listen",
            value: String::new(),
            reason: "is missing: a server must listen on at least one address".into(),
        });
    }
    let advertise = match &n.advertise {
        Some(list) => {
            let addrs = addresses(&n.name, "advertise", list)?;
            for (a, s) in addrs.iter().zip(list) {
                if !dialable(a) {
                    return Err(bad(
                        &n.name,
                        "advertise",
                        s,
                        "cannot be dialled (port 0 or unspecified IP)",
                    ));
                }
            }
            addrs
        }
        None => listen.iter().filter(|a| dialable(a)).cloned().collect(),
    };
    Ok(NodeSpec {
        identity: n.identity.map(|p| base.join(p)),
        name: n.name,
        role,
        peer_id,
        listen,
        advertise,
        bootstrap: n.bootstrap,
    })
}

fn bad(node: &str, field: &'static str, value: &str, reason: &str) -> TopologyError {
    TopologyError::BadAddress {
        node: node.to_string(),
        field,
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

/// Parses TCP multiaddrs without a `/p2p` part.
fn addresses(node: &str, field: &'static str, list: &[String]) -> Result<Vec<Multiaddr>> {
    if list.len() > MAX_ADDRESSES {
        return Err(bad(node, field, "", "list has more than 16 addresses"));
    }
    list.iter()
        .map(|s| {
            let a: Multiaddr = s
                .parse()
                .map_err(|e| bad(node, field, s, &format!("is not a multiaddr: {e}")))?;
            let mut tcp = false;
            for p in a.iter() {
                match p {
                    Protocol::Tcp(_) => tcp = true,
                    Protocol::P2p(_) => {
                        return Err(bad(
                            node,
                            field,
                            s,
                            "must not contain /p2p (the peer id is the node's)",
                        ))
                    }
                    _ => {}
                }
            }
            if !tcp {
                return Err(bad(
                    node,
                    field,
                    s,
                    "has no /tcp/<port> (only TCP is supported)",
                ));
            }
            Ok(a)
        })
        .collect()
}

/// Whether others can dial `a`: a concrete IP or DNS name and a non-zero port.
fn dialable(a: &Multiaddr) -> bool {
    a.iter().all(|p| match p {
        Protocol::Tcp(port) => port != 0,
        Protocol::Ip4(ip) => !ip.is_unspecified(),
        Protocol::Ip6(ip) => !ip.is_unspecified(),
        _ => true,
    })
}

fn check_unique(nodes: &[NodeSpec]) -> Result<()> {
    let mut names = HashMap::new();
    let mut peers = HashMap::new();
    for n in nodes {
        if names.insert(n.name.as_str(), ()).is_some() {
            return Err(TopologyError::DuplicateName(n.name.clone()));
        }
        if let Some(first) = peers.insert(n.peer_id, n.name.as_str()) {
            return Err(TopologyError::DuplicatePeerId {
                peer: n.peer_id.to_string(),
                first: first.to_string(),
                second: n.name.clone(),
            });
        }
    }
    Ok(())
}

fn check_roles(nodes: &[NodeSpec]) -> Result<()> {
    let servers: Vec<Role> = nodes
        .iter()
        .map(|n| n.role)
        .filter(|r| r.is_server())
        .collect();
    match servers.iter().filter(|r| **r == Role::Gateway).count() {
        0 => return Err(TopologyError::Roles("no node has role gateway")),
        1 => {}
        _ => return Err(TopologyError::Roles("more than one node has role gateway")),
    }
    if servers.first() != Some(&Role::Gateway) {
        return Err(TopologyError::Roles(
            "the gateway must be listed before the remotes (server order is plan order)",
        ));
    }
    if servers.len() < 2 {
        return Err(TopologyError::Roles("at least one remote server is needed"));
    }
    if servers.len() > usize::from(u16::MAX) {
        return Err(TopologyError::Roles("too many servers"));
    }
    Ok(())
}

fn check_bootstrap(nodes: &[NodeSpec]) -> Result<()> {
    for n in nodes {
        for b in &n.bootstrap {
            let err = |reason| TopologyError::BadBootstrap {
                node: n.name.clone(),
                target: b.clone(),
                reason,
            };
            let Some(target) = nodes.iter().find(|m| m.name == *b) else {
                return Err(err("names no node of the topology"));
            };
            if target.name == n.name {
                return Err(err("is the node itself"));
            }
            if target.advertise.is_empty() {
                return Err(err("has no dialable address (listen or advertise)"));
            }
            if !super::talks_to(n.role, target.role) {
                return Err(err(
                    "is a node this one may not talk to (a user talks only to the gateway)",
                ));
            }
        }
    }
    Ok(())
}

/// Writes `t` back as TOML.
pub(super) fn render(t: &Topology) -> String {
    let secs = |d: Duration| Some(d.as_secs_f64());
    let shape = FileShape {
        version: Some(TOPOLOGY_VERSION),
        model: t.model.clone(),
        timeouts: Some(TimeoutsShape {
            open: secs(t.timeouts.open),
            prep: t.timeouts.prep.map(|d| d.as_secs_f64()),
            inference: t.timeouts.inference.map(|d| d.as_secs_f64()),
            ack: secs(t.timeouts.ack),
            retry: secs(t.timeouts.retry),
            idle: secs(t.timeouts.idle),
            grace: secs(t.timeouts.grace),
            heartbeat: secs(t.timeouts.heartbeat),
        }),
        nodes: t
            .nodes
            .iter()
            .map(|n| NodeShape {
                name: n.name.clone(),
                role: n.role.to_string(),
                peer_id: n.peer_id.to_string(),
                listen: n.listen.iter().map(ToString::to_string).collect(),
                advertise: Some(n.advertise.iter().map(ToString::to_string).collect()),
                bootstrap: n.bootstrap.clone(),
                identity: n
                    .identity
                    .as_ref()
                    .map(|p| p.to_string_lossy().into_owned()),
            })
            .collect(),
    };
    toml::to_string_pretty(&shape).unwrap_or_default()
}

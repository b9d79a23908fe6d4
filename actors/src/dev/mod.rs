//! Helpers for local runs (examples, tests, `seco demo`): deterministic example identities,
//! free loopback ports, and [`Cluster`], a whole deployment in one process (every node a set of
//! tokio tasks with its own libp2p swarm on 127.0.0.1).
//!
//! **Example identities are public**: anyone can derive their secret keys from the node names.
//! They exist so that the topology files in `examples/topologies/` can carry fixed peer ids; a
//! real deployment creates its keys with `seco identity new`.

mod cluster;

pub use cluster::{Cluster, ClusterOptions, StoreKind};

use std::collections::HashMap;
use std::net::TcpListener;

use libp2p::identity::DecodingError;
use seco_runtime::{Keypair, Multiaddr};

use crate::config::Timeouts;
use crate::topology::{NodeSpec, Role, Topology};

/// The example identity of node `name` (Ed25519 from BLAKE3 of a public string).
pub fn example_keypair(name: &str) -> Result<Keypair, DecodingError> {
    let mut secret = *blake3::hash(format!("seco example identity: {name}").as_bytes()).as_bytes();
    Keypair::ed25519_from_bytes(&mut secret)
}

/// A TCP port on 127.0.0.1 that was free a moment ago (bound, read, released).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Server names of a local deployment of `n` servers: `gateway`, `remote-1`, ...
pub use seco_protocols::plan::default_server_names as server_names;

/// A loopback topology of `n` servers (`gateway`, `remote-1`, ...) and one `user`, with the
/// example identities and free ports; every node bootstraps from the gateway.
pub fn local_topology(n: usize, timeouts: Timeouts) -> std::io::Result<Topology> {
    let mut nodes = Vec::with_capacity(n + 1);
    let mut names = server_names(n);
    names.push("user".into());
    for (i, name) in names.iter().enumerate() {
        let role = match i {
            0 => Role::Gateway,
            i if i == n => Role::User,
            _ => Role::Remote,
        };
        let key = example_keypair(name).map_err(std::io::Error::other)?;
        let listen: Vec<Multiaddr> = if role.is_server() {
            let addr = format!("/ip4/127.0.0.1/tcp/{}", free_port()?);
            vec![addr.parse().map_err(std::io::Error::other)?]
        } else {
            Vec::new()
        };
        nodes.push(NodeSpec {
            name: name.clone(),
            role,
            peer_id: key.public().to_peer_id(),
            advertise: listen.clone(),
            listen,
            bootstrap: if i == 0 {
                Vec::new()
            } else {
                vec!["gateway".into()]
            },
            identity: None,
        });
    }
    Ok(Topology {
        model: None,
        timeouts,
        nodes,
    })
}

/// Replaces every fixed TCP port of the topology with a free loopback port (the same port for
/// the same node and original port), so that local runs do not collide.
pub fn localize(topology: &mut Topology) -> std::io::Result<()> {
    let mut map: HashMap<(String, u16), u16> = HashMap::new();
    let mut error = None;
    topology.remap_ports(|node, port| {
        let key = (node.to_string(), port);
        if let Some(p) = map.get(&key) {
            return *p;
        }
        match free_port() {
            Ok(p) => {
                map.insert(key, p);
                p
            }
            Err(e) => {
                error = Some(e);
                port
            }
        }
    });
    error.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_keys_are_deterministic() {
        let a = example_keypair("gateway").unwrap();
        let b = example_keypair("gateway").unwrap();
        let c = example_keypair("remote-1").unwrap();
        assert_eq!(a.public().to_peer_id(), b.public().to_peer_id());
        assert_ne!(a.public().to_peer_id(), c.public().to_peer_id());
        assert!(free_port().unwrap() > 0);
    }
}

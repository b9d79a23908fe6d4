//! Shared helpers of the network tests: nodes on 127.0.0.1 with ephemeral ports, no mDNS.
#![allow(dead_code)]

use std::time::Duration;

use seco_runtime::net::{self, Client, Envelope, Event, InboundMessage, NetConfig, SessionId};
use seco_runtime::{Keypair, Multiaddr, PeerId};
use tokio::sync::mpsc;

/// One node of a test topology.
pub struct Node {
    pub peer: PeerId,
    pub client: Client,
    pub events: mpsc::Receiver<Event>,
    pub addr: Multiaddr,
    pub task: tokio::task::JoinHandle<()>,
}

/// A test configuration: loopback only, short ack timeout, the given allowlist.
pub fn config(allow: impl IntoIterator<Item = PeerId>) -> NetConfig {
    NetConfig {
        listen: Vec::new(),
        ack_timeout: Duration::from_secs(5),
        ..NetConfig::loopback(allow)
    }
}

/// Starts a node with `keypair` and `config`, listening on 127.0.0.1 (ephemeral port).
pub async fn start(keypair: Keypair, config: NetConfig) -> Node {
    // Logs only when asked for: `SECO_LOG=warn cargo test -p seco-runtime`.
    if std::env::var_os(seco_runtime::telemetry::LOG_ENV).is_some() {
        let _ = seco_runtime::telemetry::init(seco_runtime::telemetry::LogFormat::Human, None);
    }
    let peer = keypair.public().to_peer_id();
    let (client, events, task) = net::spawn(keypair, config).expect("spawn");
    let addr = client.listen(net::loopback_addr()).await.expect("listen");
    assert!(
        addr.to_string().starts_with("/ip4/127.0.0.1/tcp/"),
        "{addr}"
    );
    Node {
        peer,
        client,
        events,
        addr,
        task,
    }
}

/// `n` nodes that all allow each other and know each other's addresses.
pub async fn mesh(n: usize, tweak: impl Fn(&mut NetConfig)) -> Vec<Node> {
    let keys: Vec<Keypair> = (0..n).map(|_| Keypair::generate_ed25519()).collect();
    let peers: Vec<PeerId> = keys.iter().map(|k| k.public().to_peer_id()).collect();
    let mut nodes = Vec::new();
    for k in keys {
        let mut c = config(peers.iter().copied());
        tweak(&mut c);
        nodes.push(start(k, c).await);
    }
    for i in 0..n {
        for j in 0..n {
            if i != j {
                let addr = nodes[j].addr.clone();
                nodes[i]
                    .client
                    .add_address(nodes[j].peer, addr)
                    .await
                    .unwrap();
            }
        }
    }
    nodes
}

/// The address of `node` with its `/p2p/` suffix.
pub fn p2p_addr(node: &Node) -> Multiaddr {
    node.addr.clone().with_p2p(node.peer).expect("p2p suffix")
}

/// Waits for the next inbound message, skipping status events; `None` after `within`.
pub async fn next_message(
    events: &mut mpsc::Receiver<Event>,
    within: Duration,
) -> Option<InboundMessage> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(Event::Message(m))) => return Some(m),
            Ok(Some(_)) => continue,
            Ok(None) | Err(_) => return None,
        }
    }
}

/// Spawns a task that acks every message and forwards `(peer, envelope)` to the returned channel.
pub fn ack_all(mut events: mpsc::Receiver<Event>) -> mpsc::UnboundedReceiver<(PeerId, Envelope)> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if let Event::Message(m) = event {
                m.reply.ack();
                let _ = tx.send((m.peer, m.envelope));
            }
        }
    });
    rx
}

/// A small envelope of session 1.
pub fn env(kind: u16, seq: u64, payload: &[u8]) -> Envelope {
    Envelope::new(SessionId([1; 16]), kind, seq, payload.to_vec())
}

/// Deterministic pseudo-random bytes.
pub fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

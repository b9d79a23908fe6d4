//! The composed libp2p behaviour and the swarm construction (TCP + Noise + Yamux).
//!
//! Order of the sub-behaviours matters: `allow` comes first so that a connection from or to a
//! peer outside the allowlist is denied before any other protocol sees it (DESIGN.md s.2: "messages
//! from a peer id that is not in the session's topology are refused"). `admission` (a token
//! bucket per source IP) and `limits` (libp2p's pending and per-peer connection bounds) come
//! next: they refuse an incoming connection before its handshake, so a flood of handshakes from
//! unknown peers cannot starve the allowed ones (`admission.rs`).

use std::time::Duration;

use libp2p::{
    allow_block_list::{self, AllowedPeers},
    identify,
    identity::Keypair,
    kad, mdns, noise, ping, request_response,
    swarm::{behaviour::toggle::Toggle, NetworkBehaviour},
    tcp, yamux, StreamProtocol, Swarm, SwarmBuilder,
};

use super::admission;
use super::codec::{FrameCodec, MESSAGE_PROTOCOL};
use super::error::{NetError, Result};
use super::NetConfig;

/// Kademlia protocol name: a private DHT, never the public IPFS one.
pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/seco/kad/1");

/// Identify protocol version string.
pub const IDENTIFY_PROTOCOL: &str = "/seco/id/1";

/// All protocols a SECO node speaks.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    /// Denies every connection with a peer outside the allowlist (first, see module docs).
    pub(crate) allow: allow_block_list::Behaviour<AllowedPeers>,
    /// Refuses incoming connections from a source IP beyond its rate, before the handshake.
    pub(crate) admission: admission::Behaviour,
    /// At most `ConnLimits::max_pending_incoming` handshakes at once, and
    /// `ConnLimits::max_established_per_peer` connections per peer.
    pub(crate) limits: libp2p::connection_limits::Behaviour,
    /// SECO messages: one request = one envelope frame, one response = one ack.
    pub(crate) rr: request_response::Behaviour<FrameCodec>,
    /// Learns the peers' announced (or else listen) addresses (fed into Kademlia).
    pub(crate) identify: identify::Behaviour,
    /// Discovery beyond the bootstrap addresses.
    pub(crate) kad: kad::Behaviour<kad::store::MemoryStore>,
    /// LAN discovery, only when `NetConfig::mdns` is set.
    pub(crate) mdns: Toggle<mdns::tokio::Behaviour>,
    /// Heartbeat (`NetConfig::heartbeat`): a connection whose peer answers no ping for a whole
    /// heartbeat is closed (`heartbeat.rs`).
    pub(crate) ping: Toggle<ping::Behaviour>,
}

/// Builds the swarm for `keypair` with `config`.
pub(crate) fn build_swarm(keypair: Keypair, config: &NetConfig) -> Result<Swarm<Behaviour>> {
    let local = keypair.public().to_peer_id();
    let mdns = if config.mdns {
        let m =
            mdns::tokio::Behaviour::new(mdns::Config::default(), local).map_err(NetError::Setup)?;
        Some(m)
    } else {
        None
    };
    let rr_config = request_response::Config::default()
        .with_request_timeout(config.ack_timeout)
        .with_max_concurrent_streams(config.limits.max_concurrent_streams);
    let codec = FrameCodec::new(config.limits.max_frame);
    let mut kad_config = kad::Config::new(KAD_PROTOCOL);
    kad_config.set_query_timeout(Duration::from_secs(10));
    let mut allow = allow_block_list::Behaviour::<AllowedPeers>::default();
    for peer in &config.allowlist {
        allow.allow_peer(*peer);
    }
    let mut swarm = SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| NetError::Setup(std::io::Error::other(e)))?
        .with_behaviour(|key| Behaviour {
            allow,
            admission: admission::Behaviour::new(config.admission),
            limits: config.admission.libp2p(),
            rr: request_response::Behaviour::with_codec(
                codec,
                [(MESSAGE_PROTOCOL, request_response::ProtocolSupport::Full)],
                rr_config,
            ),
            identify: identify::Behaviour::new(
                identify::Config::new(IDENTIFY_PROTOCOL.into(), key.public())
                    .with_agent_version(super::incarnation::agent_version(rand::random()))
                    .with_hide_listen_addrs(!config.announce.is_empty()),
            ),
            kad: kad::Behaviour::with_config(
                local,
                kad::store::MemoryStore::new(local),
                kad_config,
            ),
            mdns: Toggle::from(mdns),
            ping: Toggle::from(config.heartbeat.map(|t| {
                ping::Behaviour::new(ping::Config::new().with_interval(t / 2).with_timeout(t))
            })),
        })
        .map_err(|e| NetError::Setup(std::io::Error::other(e.to_string())))?
        .with_swarm_config(|c| {
            c.with_idle_connection_timeout(config.idle_connection_timeout)
                // Every stream this node opens proposes one protocol that every peer of ours
                // speaks, so it sends its first bytes with the proposal instead of waiting a
                // round trip for the listener's confirmation (multistream-select "V1Lazy",
                // same wire format as V1): one round trip less per message.
                .with_substream_upgrade_protocol_override(libp2p::core::upgrade::Version::V1Lazy)
        })
        .build();
    // Every node answers DHT queries: there are no public-address checks on a private topology.
    swarm.behaviour_mut().kad.set_mode(Some(kad::Mode::Server));
    // Announced addresses replace the listen addresses in identify (hidden above), so that
    // peers (and their Kademlia tables) only ever dial this node where it says.
    for addr in &config.announce {
        swarm.add_external_address(addr.clone());
    }
    Ok(swarm)
}

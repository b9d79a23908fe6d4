//! Networking: a libp2p swarm driven by one task, a cloneable client, typed events.
//!
//! ```text
//!   application ──Client (bounded mpsc + oneshot replies)──▶ EventLoop (owns the Swarm)
//!   application ◀──────── Event (bounded mpsc) ──────────── EventLoop
//! ```
//!
//! Transport: TCP + Noise (authenticated Ed25519 peer ids) + Yamux; every stream a node opens
//! sends its first bytes with its protocol proposal (multistream-select `V1Lazy`, no round trip
//! for the listener's confirmation: every stream proposes one protocol all our peers speak).
//! Protocols: request-response
//! `/seco/msg/1` carrying [`Envelope`] frames acknowledged by an [`Ack`], identify, a private
//! Kademlia DHT (`/seco/kad/1`), and mDNS only when [`NetConfig::mdns`] is set.
//!
//! Security: connections with peers outside [`NetConfig::allowlist`] are denied at connection
//! setup and logged; a request that would still arrive from such a peer is dropped and the peer
//! disconnected. Nothing from them reaches the application. Before the handshake, incoming
//! connections are bounded per source IP (a token bucket), in number while in their handshake,
//! and per peer ([`NetConfig::admission`], `admission.rs`): a handshake flood from unknown peers
//! cannot starve the allowed ones.
//!
//! # Layout
//! - `envelope.rs`: [`Envelope`], [`SessionId`], the CBOR wire format and its validation.
//! - `codec.rs`: length-prefixed frames with size limits, [`Ack`] and [`Reject`].
//! - `behaviour.rs`: the composed behaviour and swarm construction.
//! - `admission.rs`: [`ConnLimits`], the bounds on incoming connections before their handshake.
//! - `client.rs`: [`Client`] and the [`Outbox`] trait (chunking, acks, timeouts).
//! - `event_loop.rs`: [`EventLoop`], the task owning the swarm; `event_loop/discovery.rs`: its
//!   address bookkeeping (topology, identify, mDNS, Kademlia lookups).
//! - `event.rs`: [`Event`], [`InboundMessage`], [`Reply`].
//! - `reassembly.rs`: bounded reassembly of chunked messages.
//! - `incarnation.rs`: the random number of this process in its identify agent version, and
//!   restart detection of peers from theirs.
//! - `error.rs`: [`NetError`].
//!
//! # Example
//! ```no_run
//! # async fn demo(other: libp2p::PeerId) -> seco_runtime::net::Result<()> {
//! use seco_runtime::net::{self, Envelope, Event, NetConfig, SessionId};
//! let keypair = libp2p::identity::Keypair::generate_ed25519();
//! let config = NetConfig::loopback([other]);
//! let (client, mut events, _task) = net::spawn(keypair, config)?;
//! client.send(other, Envelope::new(SessionId([0; 16]), 1, 0, b"hello".to_vec())).await?;
//! while let Some(Event::Message(m)) = events.recv().await {
//!     println!("{} sent {} bytes", m.peer, m.envelope.payload.len());
//!     m.reply.ack();
//! }
//! # Ok(()) }
//! ```

mod admission;
mod behaviour;
mod client;
mod codec;
mod envelope;
mod error;
mod event;
mod event_loop;
mod heartbeat;
mod incarnation;
mod reassembly;

use std::collections::HashSet;
use std::time::Duration;

use libp2p::{identity::Keypair, Multiaddr, PeerId};
use tokio::sync::mpsc;

pub use admission::{ConnLimits, RateLimited};
pub use behaviour::{IDENTIFY_PROTOCOL, KAD_PROTOCOL};
pub use client::{Client, Outbox};
pub use codec::{
    read_frame, write_frame, Ack, Frame, FrameCodec, FrameTooLarge, Reject, DEFAULT_MAX_FRAME,
    MAX_ACK_FRAME, MESSAGE_PROTOCOL,
};
pub use envelope::{
    Chunk, Envelope, EnvelopeError, SessionId, ENVELOPE_OVERHEAD, ENVELOPE_VERSION, MAX_CHUNKS,
};
pub use error::{peer_id_of, FailureKind, NetError, Result};
pub use event::{Event, InboundMessage, Reply};
pub use event_loop::EventLoop;

/// Size and count limits (STYLE.md 8: a remote peer controls what goes into these buffers).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request frame (one encoded envelope) sent or accepted. Default 4 MiB.
    pub max_frame: usize,
    /// Payload bytes per chunk; larger payloads are split. Must leave room for the envelope
    /// framing inside `max_frame` (checked by [`NetConfig::validate`]). Default 1 MiB.
    pub chunk_size: usize,
    /// Largest whole message (sum of its chunks). Default 256 MiB.
    pub max_message: usize,
    /// Bytes of incomplete chunked messages buffered per peer. Default 512 MiB.
    pub max_buffered_per_peer: usize,
    /// Bytes of incomplete chunked messages buffered per session. Default 512 MiB.
    pub max_buffered_per_session: usize,
    /// Bytes of incomplete chunked messages buffered from all peers together (a node with many
    /// peers must not grow to their sum). Default 1 GiB.
    pub max_buffered_total: usize,
    /// Incomplete chunked messages open at once per peer. Default 16.
    pub max_assemblies_per_peer: usize,
    /// An incomplete chunked message is dropped after this long. Default 60 s.
    pub reassembly_timeout: Duration,
    /// Concurrent request streams per connection (libp2p request-response). Default 64.
    pub max_concurrent_streams: usize,
    /// Capacity of the event channel. Default 1024.
    pub event_queue: usize,
    /// Capacity of the command channel. Default 256.
    pub command_queue: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame: DEFAULT_MAX_FRAME,
            chunk_size: 1024 * 1024,
            max_message: 256 * 1024 * 1024,
            max_buffered_per_peer: 512 * 1024 * 1024,
            max_buffered_per_session: 512 * 1024 * 1024,
            max_buffered_total: 1024 * 1024 * 1024,
            max_assemblies_per_peer: 16,
            reassembly_timeout: Duration::from_secs(60),
            max_concurrent_streams: 64,
            event_queue: 1024,
            command_queue: 256,
        }
    }
}

/// Configuration of one node's network.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// Addresses to listen on at start (a node: from its topology entry; tests: none, then
    /// [`Client::listen`] on `/ip4/127.0.0.1/tcp/0`).
    pub listen: Vec<Multiaddr>,
    /// Addresses told to peers (identify) in place of the listen addresses: where others
    /// should dial this node (a topology's `advertise`, e.g. a NAT's public address or the
    /// shaping relay of `seco bench --network`). Empty: the listen addresses are told.
    pub announce: Vec<Multiaddr>,
    /// Peers dialed at start, each `.../p2p/<peer id>`; a Kademlia bootstrap follows.
    pub bootstrap: Vec<Multiaddr>,
    /// The only peers this node talks to (from the topology).
    pub allowlist: HashSet<PeerId>,
    /// LAN discovery by mDNS. Off by default (it multicasts on the LAN); tested only inside a
    /// network namespace (`node/tests/mdns_netns.rs`).
    pub mdns: bool,
    /// How long `send` waits for each ack (and libp2p's request timeout). Default 30 s.
    pub ack_timeout: Duration,
    /// Idle connections are closed after this long. Default 120 s.
    pub idle_connection_timeout: Duration,
    /// Heartbeat: every connection is pinged (libp2p ping) every half of this, and a
    /// connection whose peer does not answer within it is closed, so that a frozen peer
    /// (SIGSTOP, a hung host) shows as a closed connection, which the node's loss detection
    /// handles, instead of only as failed acks. `None`: no heartbeat. Default 10 s.
    pub heartbeat: Option<Duration>,
    /// Chunks of one message in flight at once. Default 2: on loopback with 2 cores, 16 MiB
    /// messages went at about 300-350 MiB/s with 1 or 2 in flight and about 200 MiB/s with 8
    /// (`benches/loopback.rs`); 2 still hides one round trip per chunk on a real link.
    pub send_window: usize,
    /// Size limits.
    pub limits: Limits,
    /// Bounds on incoming connections before their handshake (rate per source IP, handshakes
    /// at once, connections per peer).
    pub admission: ConnLimits,
}

impl Default for NetConfig {
    fn default() -> Self {
        Self {
            listen: Vec::new(),
            announce: Vec::new(),
            bootstrap: Vec::new(),
            allowlist: HashSet::new(),
            mdns: false,
            ack_timeout: Duration::from_secs(30),
            idle_connection_timeout: Duration::from_secs(120),
            heartbeat: Some(Duration::from_secs(10)),
            send_window: 2,
            limits: Limits::default(),
            admission: ConnLimits::default(),
        }
    }
}

impl NetConfig {
    /// A configuration for tests and local demos: listen on `127.0.0.1` (ephemeral port), no
    /// mDNS, the given allowlist.
    pub fn loopback(allowlist: impl IntoIterator<Item = PeerId>) -> Self {
        Self {
            listen: vec![loopback_addr()],
            allowlist: allowlist.into_iter().collect(),
            ..Self::default()
        }
    }

    /// Checks the limits are consistent (a chunk must fit in a frame).
    pub fn validate(&self) -> Result<()> {
        let l = &self.limits;
        let need = l.chunk_size.saturating_add(ENVELOPE_OVERHEAD);
        if l.chunk_size == 0 || need > l.max_frame {
            return Err(NetError::TooLarge {
                len: need,
                max: l.max_frame,
            });
        }
        Ok(())
    }
}

/// `/ip4/127.0.0.1/tcp/0`: loopback, ephemeral port.
pub fn loopback_addr() -> Multiaddr {
    "/ip4/127.0.0.1/tcp/0"
        .parse()
        .unwrap_or_else(|_| Multiaddr::empty())
}

/// Builds the network: the client, the event stream and the event loop (not yet running).
/// Listening and bootstrap dialing from `config` start when the loop is created.
/// Must be called inside a tokio runtime.
pub fn new(
    keypair: Keypair,
    config: NetConfig,
) -> Result<(Client, mpsc::Receiver<Event>, EventLoop)> {
    config.validate()?;
    let local = keypair.public().to_peer_id();
    let swarm = behaviour::build_swarm(keypair, &config)?;
    let (cmd_tx, cmd_rx) = mpsc::channel(config.limits.command_queue.max(1));
    let (ev_tx, ev_rx) = mpsc::channel(config.limits.event_queue.max(1));
    let settings = client::Settings {
        limits: config.limits.clone(),
        ack_timeout: config.ack_timeout,
        send_window: config.send_window,
    };
    let client = Client::new(cmd_tx, local, settings);
    let mut event_loop = EventLoop::new(
        swarm,
        cmd_rx,
        ev_tx,
        config.limits.clone(),
        config.heartbeat,
    );
    event_loop.start(&config.listen, &config.bootstrap);
    Ok((client, ev_rx, event_loop))
}

/// [`new`] and spawn the event loop on the current tokio runtime.
pub fn spawn(
    keypair: Keypair,
    config: NetConfig,
) -> Result<(Client, mpsc::Receiver<Event>, tokio::task::JoinHandle<()>)> {
    let (client, events, event_loop) = new(keypair, config)?;
    Ok((client, events, tokio::spawn(event_loop.run())))
}

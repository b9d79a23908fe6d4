//! The task that owns the [`Swarm`]: it executes [`Command`]s and turns swarm events into
//! [`Event`]s (STYLE.md 7, the Client / EventLoop / Command / Event shape).
//!
//! It never awaits anything but its `select!`: events go up with `try_send` (a full queue answers
//! the sender [`Reject::Busy`]), replies of the application come back through oneshots polled here.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use libp2p::request_response::{
    self, InboundRequestId, OutboundFailure, OutboundRequestId, ResponseChannel,
};
use libp2p::swarm::{dial_opts::DialOpts, ConnectionId, ListenError, SwarmEvent};
use libp2p::{core::transport::ListenerId, kad, ping, Multiaddr, PeerId, Swarm};
use tokio::sync::{mpsc, oneshot};

use super::admission::RefusalLog;
use super::behaviour::{Behaviour, BehaviourEvent};
use super::client::Command;
use super::codec::{Ack, Frame, Reject};
use super::envelope::Envelope;
use super::error::{peer_id_of, FailureKind, NetError, Result};
use super::event::{Event, InboundMessage, Reply};
use super::heartbeat::Heartbeat;
use super::incarnation::Incarnations;
use super::reassembly::Reassembler;
use super::Limits;

mod discovery;

type PendingReply = BoxFuture<'static, (ResponseChannel<Ack>, Ack)>;
type FindReply = oneshot::Sender<Result<Vec<Multiaddr>>>;

/// The network task. Run it with `tokio::spawn(event_loop.run())`.
pub struct EventLoop {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<Event>,
    limits: Limits,
    reassembly: Reassembler,
    /// Requests sent, waiting for their ack (keyed by libp2p's request id).
    pending_sends: HashMap<OutboundRequestId, oneshot::Sender<Result<Ack>>>,
    pending_dials: HashMap<ConnectionId, oneshot::Sender<Result<PeerId>>>,
    pending_listens: HashMap<ListenerId, oneshot::Sender<Result<Multiaddr>>>,
    pending_bootstraps: HashMap<kad::QueryId, oneshot::Sender<Result<()>>>,
    pending_finds: HashMap<kad::QueryId, (PeerId, FindReply)>,
    /// Inbound messages handed up, waiting for the application's `Reply`.
    replies: FuturesUnordered<PendingReply>,
    /// Refused incoming connections (summed-up warnings).
    refusals: RefusalLog,
    /// Last answered ping per connection (`NetConfig::heartbeat`; `None`: off).
    heartbeat: Option<Heartbeat>,
    /// The last failed dial per peer, named when a send to it fails as a dial failure.
    dial_errors: HashMap<PeerId, String>,
    /// The last incarnation each peer announced (restart detection).
    incarnations: Incarnations,
}

impl EventLoop {
    pub(crate) fn new(
        swarm: Swarm<Behaviour>,
        commands: mpsc::Receiver<Command>,
        events: mpsc::Sender<Event>,
        limits: Limits,
        heartbeat: Option<Duration>,
    ) -> Self {
        Self {
            swarm,
            commands,
            events,
            reassembly: Reassembler::new(&limits),
            limits,
            pending_sends: HashMap::new(),
            pending_dials: HashMap::new(),
            pending_listens: HashMap::new(),
            pending_bootstraps: HashMap::new(),
            pending_finds: HashMap::new(),
            replies: FuturesUnordered::new(),
            refusals: RefusalLog::default(),
            heartbeat: heartbeat.map(Heartbeat::new),
            dial_errors: HashMap::new(),
            incarnations: Incarnations::default(),
        }
    }

    /// Dials the bootstrap addresses (each must end in `/p2p/<peer id>`), then starts a
    /// Kademlia bootstrap. Failures are logged: discovery is best effort at start.
    pub(crate) fn start(&mut self, listen: &[Multiaddr], bootstrap: &[Multiaddr]) {
        for addr in listen {
            if let Err(e) = self.swarm.listen_on(addr.clone()) {
                tracing::warn!(%addr, error = %e, "cannot listen");
            }
        }
        for addr in bootstrap {
            match peer_id_of(addr) {
                Ok(peer) => {
                    self.remember(peer, addr.clone());
                    if let Err(e) = self.swarm.dial(
                        DialOpts::peer_id(peer)
                            .addresses(vec![addr.clone()])
                            .build(),
                    ) {
                        tracing::warn!(%addr, error = %e, "cannot dial bootstrap peer");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "ignoring bootstrap address"),
            }
        }
        if !bootstrap.is_empty() {
            if let Err(e) = self.swarm.behaviour_mut().kad.bootstrap() {
                tracing::debug!(error = %e, "kademlia bootstrap not started");
            }
        }
    }

    /// Runs until [`Client::shutdown`](super::Client::shutdown) or until every
    /// [`Client`](super::Client) is dropped.
    pub async fn run(mut self) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                command = self.commands.recv() => match command {
                    Some(Command::Shutdown) | None => break,
                    Some(c) => self.on_command(c),
                },
                Some((channel, ack)) = self.replies.next(), if !self.replies.is_empty() => {
                    // The stream may have timed out or closed meanwhile: nothing to do then.
                    let _ = self.swarm.behaviour_mut().rr.send_response(channel, ack);
                }
                _ = tick.tick() => {
                    self.reassembly.expire(Instant::now());
                    self.close_silent();
                }
            }
        }
        tracing::debug!(peer = %self.swarm.local_peer_id(), "network event loop stopped");
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Listen { addr, reply } => match self.swarm.listen_on(addr) {
                Ok(id) => {
                    self.pending_listens.insert(id, reply);
                }
                Err(e) => {
                    let _ = reply.send(Err(NetError::Listen(e)));
                }
            },
            Command::Dial { addr, reply } => self.dial(addr, reply),
            Command::AddAddress { peer, addr } => self.remember(peer, addr),
            Command::Bootstrap { reply } => match self.swarm.behaviour_mut().kad.bootstrap() {
                Ok(id) => {
                    self.pending_bootstraps.insert(id, reply);
                }
                Err(e) => {
                    let _ = reply.send(Err(NetError::Bootstrap(e.to_string())));
                }
            },
            Command::FindPeer { peer, reply } => {
                let id = self.swarm.behaviour_mut().kad.get_closest_peers(peer);
                self.pending_finds.insert(id, (peer, reply));
            }
            Command::Allow { peer } => {
                self.swarm.behaviour_mut().allow.allow_peer(peer);
            }
            Command::Disallow { peer } => {
                self.swarm.behaviour_mut().allow.disallow_peer(peer);
            }
            Command::ConnectedPeers { reply } => {
                let _ = reply.send(self.swarm.connected_peers().copied().collect());
            }
            Command::Send { peer, frame, reply } => self.send(peer, frame, reply),
            Command::Shutdown => {}
        }
    }

    fn dial(&mut self, addr: Multiaddr, reply: oneshot::Sender<Result<PeerId>>) {
        let peer = match peer_id_of(&addr) {
            Ok(p) => p,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        self.remember(peer, addr.clone());
        if self.swarm.is_connected(&peer) {
            let _ = reply.send(Ok(peer));
            return;
        }
        let opts = DialOpts::peer_id(peer).addresses(vec![addr]).build();
        let id = opts.connection_id();
        match self.swarm.dial(opts) {
            Ok(()) => {
                self.pending_dials.insert(id, reply);
            }
            Err(e) => {
                let _ = reply.send(Err(NetError::Dial(e)));
            }
        }
    }

    fn send(&mut self, peer: PeerId, frame: Frame, reply: oneshot::Sender<Result<Ack>>) {
        if !self.swarm.behaviour().allow.allowed_peers().contains(&peer) {
            let _ = reply.send(Err(NetError::NotAllowed(peer)));
            return;
        }
        let id = self.swarm.behaviour_mut().rr.send_request(&peer, frame);
        self.pending_sends.insert(id, reply);
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Rr(e)) => self.on_rr_event(e),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(e)) => self.on_identify(e),
            SwarmEvent::Behaviour(BehaviourEvent::Kad(e)) => self.on_kad(e),
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(e)) => self.on_mdns(e),
            SwarmEvent::Behaviour(BehaviourEvent::Ping(e)) => self.on_ping(e),
            other => self.on_connection_event(other),
        }
    }

    /// Listeners and connections: answers pending listens/dials, emits status events, logs
    /// refused connections.
    fn on_connection_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        if let Some(h) = &mut self.heartbeat {
            match &event {
                SwarmEvent::ConnectionEstablished {
                    peer_id,
                    connection_id,
                    ..
                } => h.established(*connection_id, *peer_id, Instant::now()),
                SwarmEvent::ConnectionClosed { connection_id, .. } => h.closed(*connection_id),
                _ => {}
            }
        }
        match event {
            SwarmEvent::NewListenAddr {
                listener_id,
                address,
            } => {
                tracing::info!(%address, "listening");
                if let Some(reply) = self.pending_listens.remove(&listener_id) {
                    let _ = reply.send(Ok(address.clone()));
                }
                self.emit(Event::Listening { address });
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                num_established,
                ..
            } => {
                if let Some(reply) = self.pending_dials.remove(&connection_id) {
                    let _ = reply.send(Ok(peer_id));
                }
                self.dial_errors.remove(&peer_id);
                if num_established.get() == 1 {
                    let address = endpoint.get_remote_address().clone();
                    tracing::debug!(peer = %peer_id, %address, "connected");
                    self.emit(Event::PeerConnected {
                        peer: peer_id,
                        address,
                    });
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                tracing::debug!(peer = %peer_id, "disconnected");
                self.reassembly.forget_peer(&peer_id);
                self.emit(Event::PeerDisconnected { peer: peer_id });
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                peer_id,
                error,
            } => {
                tracing::debug!(peer = ?peer_id, error = %error, "outgoing connection failed");
                if let Some(peer) = peer_id {
                    self.dial_errors.insert(peer, error.to_string());
                }
                if let Some(reply) = self.pending_dials.remove(&connection_id) {
                    let _ = reply.send(Err(NetError::Dial(error)));
                }
            }
            SwarmEvent::IncomingConnectionError {
                peer_id,
                error,
                send_back_addr,
                ..
            } => {
                if let ListenError::Denied { cause } = &error {
                    self.refusals.note(peer_id, &send_back_addr, cause);
                } else {
                    tracing::debug!(peer = ?peer_id, error = %error, "incoming connection failed");
                }
            }
            SwarmEvent::ListenerClosed {
                listener_id,
                reason,
                ..
            } => {
                if let Some(reply) = self.pending_listens.remove(&listener_id) {
                    let e = reason
                        .err()
                        .unwrap_or_else(|| std::io::Error::other("listener closed"));
                    let _ = reply.send(Err(NetError::Listen(libp2p::TransportError::Other(e))));
                }
            }
            _ => {}
        }
    }

    fn on_rr_event(&mut self, event: request_response::Event<Frame, Ack>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request_id,
                    request,
                    channel,
                } => self.on_request(peer, request_id, request, channel),
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some(reply) = self.pending_sends.remove(&request_id) {
                        let _ = reply.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                match (&error, self.dial_errors.remove(&peer)) {
                    (OutboundFailure::DialFailure, Some(dial)) => {
                        tracing::warn!(%peer, %dial, "request failed: dial failure")
                    }
                    _ => tracing::debug!(%peer, %error, "request failed"),
                }
                if let Some(reply) = self.pending_sends.remove(&request_id) {
                    let _ = reply.send(Err(NetError::Failed {
                        peer,
                        kind: FailureKind::from(&error),
                    }));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::warn!(%peer, %error, "inbound request failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    /// An inbound frame: allowlist (again), decode, reassemble, hand up with a reply handle.
    fn on_request(
        &mut self,
        peer: PeerId,
        id: InboundRequestId,
        frame: Frame,
        channel: ResponseChannel<Ack>,
    ) {
        if !self.swarm.behaviour().allow.allowed_peers().contains(&peer) {
            // Defense in depth: the allow behaviour should have denied the connection already.
            tracing::warn!(%peer, request = %id, "dropping a message from a peer outside the allowlist");
            let _ = self.swarm.disconnect_peer_id(peer);
            return;
        }
        let envelope = match Envelope::decode(&frame.0, self.limits.max_frame) {
            Ok(e) => e,
            Err(error) => {
                tracing::warn!(%peer, %error, "refusing a malformed envelope");
                self.respond(channel, Ack::Rejected(Reject::Malformed));
                return;
            }
        };
        match self.reassembly.push(peer, envelope, Instant::now()) {
            Err(reason) => {
                tracing::warn!(%peer, %reason, "refusing a chunk");
                self.respond(channel, Ack::Rejected(reason));
            }
            Ok(None) => self.respond(channel, Ack::Accepted),
            Ok(Some(envelope)) => self.deliver(peer, envelope, channel),
        }
    }

    fn deliver(&mut self, peer: PeerId, envelope: Envelope, channel: ResponseChannel<Ack>) {
        let (reply, rx) = Reply::new();
        match self.events.try_send(Event::Message(InboundMessage {
            peer,
            envelope,
            reply,
        })) {
            Ok(()) => self.replies.push(
                async move {
                    // A dropped `Reply` means the application never answered.
                    let ack = rx.await.unwrap_or(Ack::Rejected(Reject::Dropped));
                    (channel, ack)
                }
                .boxed(),
            ),
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(%peer, "event queue full: answering busy");
                self.respond(channel, Ack::Rejected(Reject::Busy));
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.respond(channel, Ack::Rejected(Reject::Dropped));
            }
        }
    }

    fn respond(&mut self, channel: ResponseChannel<Ack>, ack: Ack) {
        let _ = self.swarm.behaviour_mut().rr.send_response(channel, ack);
    }

    /// Status events are lossy: a full queue drops them (with a warning).
    fn emit(&mut self, event: Event) {
        if let Err(mpsc::error::TrySendError::Full(e)) = self.events.try_send(event) {
            tracing::warn!(event = ?e, "event queue full: dropping a status event");
        }
    }

    /// A ping answered (or failed: a silent connection is closed by `close_silent`).
    fn on_ping(&mut self, event: ping::Event) {
        match (event.result, &mut self.heartbeat) {
            (Ok(_), Some(h)) => h.answered(event.connection, Instant::now()),
            (Ok(_), None) => {}
            (Err(e), _) => tracing::debug!(peer = %event.peer, error = %e, "ping failed"),
        }
    }

    /// Closes the connections whose peer answered no ping for a whole heartbeat
    /// (`heartbeat.rs`): the peer is frozen or gone while its connection stays open.
    fn close_silent(&mut self) {
        let Some(h) = &mut self.heartbeat else {
            return;
        };
        for (c, peer) in h.silent(Instant::now()) {
            tracing::warn!(%peer, "no answer to the heartbeat: closing the connection");
            self.swarm.close_connection(c);
        }
    }
}

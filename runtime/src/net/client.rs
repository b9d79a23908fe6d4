//! The cloneable [`Client`]: commands to the event loop over a bounded channel, answers on oneshots.
//!
//! `send` is the heart of it: a payload above the chunk size is split into chunks, several chunks
//! are kept in flight (`send_window`), every chunk must be acknowledged, and every wait is bounded
//! by `ack_timeout`, so a lost peer becomes an error, never a hang (DESIGN.md s.7).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use libp2p::{Multiaddr, PeerId};
use tokio::sync::{mpsc, oneshot};

use super::codec::{Ack, Frame};
use super::envelope::{Chunk, Envelope};
use super::error::{NetError, Result};
use super::Limits;

/// A request to the event loop. Each carries the oneshot its answer goes to.
#[derive(Debug)]
pub(crate) enum Command {
    Listen {
        addr: Multiaddr,
        reply: oneshot::Sender<Result<Multiaddr>>,
    },
    Dial {
        addr: Multiaddr,
        reply: oneshot::Sender<Result<PeerId>>,
    },
    AddAddress {
        peer: PeerId,
        addr: Multiaddr,
    },
    Bootstrap {
        reply: oneshot::Sender<Result<()>>,
    },
    FindPeer {
        peer: PeerId,
        reply: oneshot::Sender<Result<Vec<Multiaddr>>>,
    },
    Allow {
        peer: PeerId,
    },
    Disallow {
        peer: PeerId,
    },
    ConnectedPeers {
        reply: oneshot::Sender<Vec<PeerId>>,
    },
    Send {
        peer: PeerId,
        frame: Frame,
        reply: oneshot::Sender<Result<Ack>>,
    },
    Shutdown,
}

/// Anything that sends envelopes to peers and waits for their acks: the real [`Client`] and the
/// fault-injection layer ([`crate::fault::FaultyClient`]) implement it, so the actors can be
/// written once and tested under faults.
pub trait Outbox: Clone + Send + Sync + 'static {
    /// Sends `envelope` to `peer` and waits until the peer's application acknowledges it.
    fn send(&self, peer: PeerId, envelope: Envelope) -> impl Future<Output = Result<()>> + Send;
    /// This node's peer id.
    fn local_peer_id(&self) -> PeerId;
}

/// Handle to the network event loop; cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    tx: mpsc::Sender<Command>,
    local: PeerId,
    settings: Arc<Settings>,
    /// Set by [`Client::shutdown`] (any clone): the event loop's end is then expected.
    stopping: Arc<std::sync::atomic::AtomicBool>,
}

/// What the client needs from the configuration.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) limits: Limits,
    pub(crate) ack_timeout: Duration,
    pub(crate) send_window: usize,
}

impl Client {
    pub(crate) fn new(tx: mpsc::Sender<Command>, local: PeerId, settings: Settings) -> Self {
        Self {
            tx,
            local,
            settings: Arc::new(settings),
            stopping: Arc::default(),
        }
    }

    /// Ends the event loop as a crash would, without a shutdown request (tests of the
    /// deaf-node path only).
    #[doc(hidden)]
    pub async fn kill_event_loop(&self) {
        let _ = self.tx.send(Command::Shutdown).await;
    }

    /// Whether a shutdown was requested through this client or a clone of it.
    pub fn shutdown_requested(&self) -> bool {
        self.stopping.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// This node's peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.local
    }

    /// The per-ack timeout this client waits before giving up.
    pub fn ack_timeout(&self) -> Duration {
        self.settings.ack_timeout
    }

    async fn call<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .await
            .map_err(|_| NetError::Shutdown)?;
        rx.await.map_err(|_| NetError::Shutdown)
    }

    /// Listens on `addr` (tests: `/ip4/127.0.0.1/tcp/0`); returns the bound address.
    pub async fn listen(&self, addr: Multiaddr) -> Result<Multiaddr> {
        self.call(|reply| Command::Listen { addr, reply }).await?
    }

    /// Dials `addr`, which must end in `/p2p/<peer id>`; returns once connected.
    pub async fn dial(&self, addr: Multiaddr) -> Result<PeerId> {
        let peer = super::error::peer_id_of(&addr)?;
        let timeout = self.settings.ack_timeout;
        let dial = self.call(|reply| Command::Dial { addr, reply });
        match tokio::time::timeout(timeout, dial).await {
            Ok(r) => r?,
            Err(_) => Err(NetError::Timeout { peer, timeout }),
        }
    }

    /// Records an address for `peer` (used when a request needs a new connection).
    pub async fn add_address(&self, peer: PeerId, addr: Multiaddr) -> Result<()> {
        self.tx
            .send(Command::AddAddress { peer, addr })
            .await
            .map_err(|_| NetError::Shutdown)
    }

    /// Runs a Kademlia bootstrap and waits for it to finish.
    pub async fn bootstrap(&self) -> Result<()> {
        self.call(|reply| Command::Bootstrap { reply }).await?
    }

    /// Looks `peer` up in the DHT; returns its addresses (also remembered for dialing).
    pub async fn find_peer(&self, peer: PeerId) -> Result<Vec<Multiaddr>> {
        self.call(|reply| Command::FindPeer { peer, reply }).await?
    }

    /// Adds `peer` to the allowlist.
    pub async fn allow(&self, peer: PeerId) -> Result<()> {
        self.tx
            .send(Command::Allow { peer })
            .await
            .map_err(|_| NetError::Shutdown)
    }

    /// Removes `peer` from the allowlist and closes its connections.
    pub async fn disallow(&self, peer: PeerId) -> Result<()> {
        self.tx
            .send(Command::Disallow { peer })
            .await
            .map_err(|_| NetError::Shutdown)
    }

    /// Peers with at least one open connection.
    pub async fn connected_peers(&self) -> Result<Vec<PeerId>> {
        self.call(|reply| Command::ConnectedPeers { reply }).await
    }

    /// Stops the event loop: every connection closes, every pending request fails.
    pub async fn shutdown(&self) {
        self.stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = self.tx.send(Command::Shutdown).await;
    }

    /// Sends `envelope` to `peer` and waits for the ack of the peer's application.
    ///
    /// Payloads above `Limits::chunk_size` are chunked (at most `send_window` chunks in flight).
    /// Errors: [`NetError::TooLarge`] above `Limits::max_message`, [`NetError::Timeout`] when an
    /// ack does not come within `ack_timeout`, [`NetError::Rejected`] when the peer refuses,
    /// [`NetError::Failed`] on transport failures, [`NetError::NotAllowed`] for peers outside the
    /// allowlist, [`NetError::Shutdown`] when the event loop is gone.
    pub async fn send(&self, peer: PeerId, envelope: Envelope) -> Result<()> {
        let limits = &self.settings.limits;
        let len = envelope.payload.len();
        if len > limits.max_message {
            return Err(NetError::TooLarge {
                len,
                max: limits.max_message,
            });
        }
        if len <= limits.chunk_size {
            let frame = Frame(
                Envelope {
                    chunk: None,
                    ..envelope
                }
                .encode()?,
            );
            return self.send_frame(peer, frame).await;
        }
        let chunk_size = limits.chunk_size.max(1);
        let total = len.div_ceil(chunk_size);
        let total = u32::try_from(total).map_err(|_| NetError::TooLarge {
            len,
            max: limits.max_message,
        })?;
        let env = &envelope;
        futures::stream::iter(0..total)
            .map(|index| async move {
                let start = index as usize * chunk_size;
                let end = (start + chunk_size).min(len);
                let chunk = Envelope {
                    session: env.session,
                    kind: env.kind,
                    seq: env.seq,
                    payload: env.payload[start..end].to_vec(),
                    chunk: Some(Chunk {
                        index,
                        total,
                        len: len as u64,
                    }),
                };
                self.send_frame(peer, Frame(chunk.encode()?)).await
            })
            .buffer_unordered(self.settings.send_window.max(1))
            .try_collect::<()>()
            .await
    }

    /// Sends one encoded frame and waits (bounded) for its ack.
    async fn send_frame(&self, peer: PeerId, frame: Frame) -> Result<()> {
        let timeout = self.settings.ack_timeout;
        let ack = tokio::time::timeout(
            timeout,
            self.call(|reply| Command::Send { peer, frame, reply }),
        )
        .await
        .map_err(|_| NetError::Timeout { peer, timeout })???;
        match ack {
            Ack::Accepted => Ok(()),
            Ack::Rejected(reason) => Err(NetError::Rejected { peer, reason }),
        }
    }
}

impl Outbox for Client {
    fn send(&self, peer: PeerId, envelope: Envelope) -> impl Future<Output = Result<()>> + Send {
        Client::send(self, peer, envelope)
    }

    fn local_peer_id(&self) -> PeerId {
        self.local
    }
}

//! Typed errors of the network layer.

use std::time::Duration;

use libp2p::{request_response::OutboundFailure, Multiaddr, PeerId};

use super::codec::Reject;
use super::envelope::EnvelopeError;

/// Result alias of the network layer.
pub type Result<T, E = NetError> = std::result::Result<T, E>;

/// What went wrong on the network. A lost or crashed peer always ends as one of these (most often
/// [`NetError::Timeout`] or [`NetError::Failed`]), never as a hang (DESIGN.md s.7).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// The event loop has stopped (shut down, crashed by fault injection, or all its handles gone).
    #[error("the network event loop has stopped")]
    Shutdown,
    /// No acknowledgement arrived in time.
    #[error("no ack from {peer} within {timeout:?}")]
    Timeout {
        /// The peer that did not answer.
        peer: PeerId,
        /// The timeout that expired.
        timeout: Duration,
    },
    /// The peer answered with a rejection.
    #[error("{peer} rejected the message: {reason}")]
    Rejected {
        /// The peer that refused.
        peer: PeerId,
        /// Its reason.
        reason: Reject,
    },
    /// The request could not be delivered (dial failure, connection closed, stream error).
    #[error("sending to {peer} failed: {kind}")]
    Failed {
        /// The destination.
        peer: PeerId,
        /// What failed.
        kind: FailureKind,
    },
    /// The peer is not in this node's allowlist: nothing is sent to it.
    #[error("peer {0} is not in the allowlist")]
    NotAllowed(PeerId),
    /// A message is larger than this node's limit.
    #[error("message of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Payload length.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// A multiaddr lacks the `/p2p/<peer id>` suffix it needs.
    #[error("address {0} has no /p2p/<peer id> component")]
    MissingPeerId(Multiaddr),
    /// Dialing failed.
    #[error("dial failed: {0}")]
    Dial(#[source] libp2p::swarm::DialError),
    /// Listening failed.
    #[error("listen failed: {0}")]
    Listen(#[source] libp2p::TransportError<std::io::Error>),
    /// Kademlia found no address for the peer.
    #[error("peer {0} not found in the DHT")]
    PeerNotFound(PeerId),
    /// Kademlia bootstrap had no known peer or failed.
    #[error("kademlia bootstrap failed: {0}")]
    Bootstrap(String),
    /// An envelope could not be encoded.
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    /// The swarm could not be built (noise key, mDNS socket).
    #[error("building the swarm failed: {0}")]
    Setup(#[source] std::io::Error),
}

/// Why an outbound request failed at the transport level (a clonable summary of libp2p's
/// `OutboundFailure`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FailureKind {
    /// No connection could be established.
    #[error("dial failure")]
    DialFailure,
    /// libp2p's request timeout expired.
    #[error("request timed out")]
    Timeout,
    /// The connection closed before the answer.
    #[error("connection closed")]
    ConnectionClosed,
    /// The peer does not speak `/seco/msg/1`.
    #[error("unsupported protocol")]
    UnsupportedProtocols,
    /// A stream I/O error (including the peer refusing an oversized frame).
    #[error("stream error: {0:?}")]
    Io(std::io::ErrorKind),
}

impl From<&OutboundFailure> for FailureKind {
    fn from(f: &OutboundFailure) -> Self {
        match f {
            OutboundFailure::DialFailure => Self::DialFailure,
            OutboundFailure::Timeout => Self::Timeout,
            OutboundFailure::ConnectionClosed => Self::ConnectionClosed,
            OutboundFailure::UnsupportedProtocols => Self::UnsupportedProtocols,
            OutboundFailure::Io(e) => Self::Io(e.kind()),
        }
    }
}

/// The `/p2p/<peer id>` component of a multiaddr.
pub fn peer_id_of(addr: &Multiaddr) -> Result<PeerId> {
    match addr.iter().last() {
        Some(libp2p::multiaddr::Protocol::P2p(peer)) => Ok(peer),
        _ => Err(NetError::MissingPeerId(addr.clone())),
    }
}

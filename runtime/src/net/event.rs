//! Events the network hands up to the application, and the reply handle of an inbound message.

use libp2p::{Multiaddr, PeerId};
use tokio::sync::oneshot;

use super::codec::{Ack, Reject};
use super::envelope::Envelope;

/// Something that happened on the network. Delivered through a bounded channel: status events
/// (connected, disconnected, listening) are dropped with a warning when the channel is full;
/// an inbound message that does not fit is refused with [`Reject::Busy`] so its sender knows.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// A whole (reassembled) message from an allowlisted peer.
    Message(InboundMessage),
    /// First connection to a peer established.
    PeerConnected {
        /// The peer.
        peer: PeerId,
        /// Its address on this connection.
        address: Multiaddr,
    },
    /// Last connection to a peer closed.
    PeerDisconnected {
        /// The peer.
        peer: PeerId,
    },
    /// A peer's new connection announced another incarnation than its earlier ones: the peer
    /// restarted since (`incarnation.rs`), and lost whatever it held only in memory.
    PeerRestarted {
        /// The peer.
        peer: PeerId,
    },
    /// A listener is bound to this address.
    Listening {
        /// The address (with the real port when `/tcp/0` was asked for).
        address: Multiaddr,
    },
}

/// A message received from `peer`. Acknowledge it with [`Reply::ack`] once it is handled (for
/// SECO: after what it changed is persisted, the raft drive loop of STYLE.md 2); the sender's
/// `send` returns only then.
#[derive(Debug)]
pub struct InboundMessage {
    /// The authenticated sender (Noise handshake), always in the allowlist.
    pub peer: PeerId,
    /// The message, reassembled, with no chunk header.
    pub envelope: Envelope,
    /// Where the acknowledgement goes.
    pub reply: Reply,
}

/// The acknowledgement handle of one inbound message. Dropping it without answering sends
/// [`Reject::Dropped`] to the sender.
#[derive(Debug)]
pub struct Reply {
    tx: oneshot::Sender<Ack>,
}

impl Reply {
    pub(crate) fn new() -> (Self, oneshot::Receiver<Ack>) {
        let (tx, rx) = oneshot::channel();
        (Self { tx }, rx)
    }

    /// Acknowledges the message: the sender's `send` returns `Ok`.
    pub fn ack(self) {
        // The event loop may be gone (shut down): then nobody waits for the answer.
        let _ = self.tx.send(Ack::Accepted);
    }

    /// Refuses the message with an application code: the sender gets
    /// `NetError::Rejected { reason: Reject::Application(code) }`.
    pub fn reject(self, code: u16) {
        let _ = self.tx.send(Ack::Rejected(Reject::Application(code)));
    }

    /// Answers with any [`Ack`] (the fault layer uses it to emulate a busy receiver).
    pub fn answer(self, ack: Ack) {
        let _ = self.tx.send(ack);
    }
}

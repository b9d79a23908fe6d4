//! Outbound queues: one ordered queue, with its own sender task, per (peer, session), so that a
//! session whose messages to a peer are retrying never delays another session's messages to
//! that peer (issue 13, item 4: no head-of-line blocking). Within a session, messages to one
//! peer keep their order (the protocol tolerates reordering only within bounded buffers, and
//! an `Abort` must not overtake the messages before it), except `OnlineStart`, which has a
//! lane of its own ([`lane`]).
//!
//! Bounds: the bytes queued and not yet acknowledged, per peer (`Limits::max_queued_per_peer`)
//! and over all peers (`Limits::max_queued_bytes`); a message beyond them fails at once
//! (its session hears `SendFailed`). `Abort` and `Close` are small and always queued. At most
//! `Limits::max_sends_per_peer` sends to one peer are in flight at once (a permit is held
//! during one attempt, not during a retry's back-off). A queue whose task has had nothing to
//! send for [`QUEUE_IDLE`] ends (its entry is removed under the same lock the network actor
//! pushes under, so no message is lost).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use seco_protocols::seco::{Body, SessionId};
use seco_runtime::PeerId;
use tokio::sync::{mpsc, Semaphore};

use super::ended::EndedSessions;
use super::outbound::deliver;
use super::{Outgoing, Transport};
use crate::config::Limits;

/// A (peer, session) queue whose task has been idle this long ends.
const QUEUE_IDLE: Duration = Duration::from_secs(30);

/// A queue: its peer, its session, and its lane ([`lane`]).
type Key = (PeerId, SessionId, u8);

/// The lane of a message within its (peer, session): `OnlineStart` goes on a lane of its own,
/// so that the stage messages the gateway sends the same remote right after it do not wait
/// for its ack (about 2 ms of a 15 ms `mnist-mlp` inference on a loaded 2-core machine). It
/// may arrive after them: a remote starts an inference on the first message of it it sees
/// and drops a late `OnlineStart` (`seco/server/online.rs`).
fn lane(body: &Body) -> u8 {
    u8::from(matches!(body, Body::OnlineStart { .. }))
}

pub(super) use crate::lock;

/// Bytes queued per peer and in total.
#[derive(Default)]
struct Budget {
    per_peer: HashMap<PeerId, usize>,
    total: usize,
}

impl Budget {
    /// Takes `bytes` for `peer`, within the bounds of `limits`.
    fn reserve(&mut self, peer: PeerId, bytes: usize, limits: &Limits) -> Result<(), String> {
        if bytes == 0 {
            return Ok(());
        }
        let queued = self.per_peer.get(&peer).copied().unwrap_or(0);
        if queued + bytes > limits.max_queued_per_peer {
            return Err(format!(
                "outbound queue to this peer full ({queued} bytes queued, at most {})",
                limits.max_queued_per_peer
            ));
        }
        if self.total + bytes > limits.max_queued_bytes {
            return Err(format!(
                "outbound queues full ({} bytes queued, at most {})",
                self.total, limits.max_queued_bytes
            ));
        }
        self.total += bytes;
        *self.per_peer.entry(peer).or_default() += bytes;
        Ok(())
    }

    /// Gives back `bytes` of `peer`.
    fn release(&mut self, peer: PeerId, bytes: usize) {
        self.total = self.total.saturating_sub(bytes);
        if let Some(p) = self.per_peer.get_mut(&peer) {
            *p = p.saturating_sub(bytes);
            if *p == 0 {
                self.per_peer.remove(&peer);
            }
        }
    }
}

/// What the sender tasks share with the network actor.
pub(super) struct Shared {
    pub(super) transport: Transport,
    pub(super) retry: Duration,
    pub(super) ended: Arc<Mutex<EndedSessions>>,
    limits: Limits,
    senders: Mutex<HashMap<Key, mpsc::UnboundedSender<Queued>>>,
    budget: Mutex<Budget>,
    permits: Mutex<HashMap<PeerId, Arc<Semaphore>>>,
}

/// A queued message and the bytes it holds of the budget (released when it is dropped:
/// delivered, failed or discarded).
pub(super) struct Queued {
    pub(super) out: Outgoing,
    pub(super) bytes: Reservation,
    /// When it was queued (its wait behind the session's earlier messages is traced).
    pub(super) at: std::time::Instant,
}

/// Bytes of the budget held by one queued message.
pub(super) struct Reservation {
    shared: Arc<Shared>,
    peer: PeerId,
    bytes: usize,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.bytes == 0 {
            return;
        }
        lock(&self.shared.budget).release(self.peer, self.bytes);
    }
}

/// The outbound queues of one node (see the module docs).
pub(super) struct Queues {
    shared: Arc<Shared>,
}

impl Queues {
    pub(super) fn new(
        transport: Transport,
        retry: Duration,
        limits: Limits,
        ended: Arc<Mutex<EndedSessions>>,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                transport,
                retry,
                ended,
                limits,
                senders: Mutex::default(),
                budget: Mutex::default(),
                permits: Mutex::default(),
            }),
        }
    }

    /// Queues `out` (`bytes` long encoded) behind its session's earlier messages to the same
    /// peer. Refused (the message handed back with the reason) beyond the byte bounds.
    pub(super) fn push(&self, out: Outgoing, bytes: usize) -> Result<(), Box<(Outgoing, String)>> {
        let end_msg = matches!(out.msg.body, Body::Abort { .. } | Body::Close { .. });
        let peer = out.to;
        let reserved = if end_msg { 0 } else { bytes };
        if let Err(why) = self.reserve(peer, reserved) {
            return Err(Box::new((out, why)));
        }
        let queued = Queued {
            out,
            bytes: Reservation {
                shared: self.shared.clone(),
                peer,
                bytes: reserved,
            },
            at: std::time::Instant::now(),
        };
        let key = (peer, queued.out.msg.session, lane(&queued.out.msg.body));
        let mut senders = lock(&self.shared.senders);
        let queued = match senders.get(&key) {
            Some(tx) => match tx.send(queued) {
                Ok(()) => return Ok(()),
                // Its task ended (it removes its entry first; only a panic leaves one).
                Err(mpsc::error::SendError(q)) => q,
            },
            None => queued,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        // A fresh receiver: cannot fail.
        let _ = tx.send(queued);
        senders.insert(key, tx);
        tokio::spawn(session_sender(self.shared.clone(), key, rx));
        Ok(())
    }

    fn reserve(&self, peer: PeerId, bytes: usize) -> Result<(), String> {
        lock(&self.shared.budget).reserve(peer, bytes, &self.shared.limits)
    }
}

impl Shared {
    /// The semaphore bounding the sends in flight to `peer`.
    pub(super) fn permits(&self, peer: PeerId) -> Arc<Semaphore> {
        lock(&self.permits)
            .entry(peer)
            .or_insert_with(|| Arc::new(Semaphore::new(self.limits.max_sends_per_peer.max(1))))
            .clone()
    }
}

/// Sends one (peer, session) queue in order; ends when idle for [`QUEUE_IDLE`].
async fn session_sender(shared: Arc<Shared>, key: Key, mut rx: mpsc::UnboundedReceiver<Queued>) {
    loop {
        let queued = match tokio::time::timeout(QUEUE_IDLE, rx.recv()).await {
            Ok(Some(q)) => q,
            Ok(None) => return,
            Err(_) => {
                let mut senders = lock(&shared.senders);
                if rx.is_empty() {
                    senders.remove(&key);
                    return;
                }
                continue;
            }
        };
        deliver(&shared, key.0, queued).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_bounded_per_peer_and_in_total_and_given_back() {
        let limits = Limits {
            max_queued_per_peer: 100,
            max_queued_bytes: 150,
            ..Limits::default()
        };
        let (a, b) = (PeerId::random(), PeerId::random());
        let mut budget = Budget::default();
        budget.reserve(a, 60, &limits).unwrap();
        let e = budget.reserve(a, 41, &limits).unwrap_err();
        assert!(e.contains("to this peer full"), "{e}");
        budget.reserve(a, 40, &limits).unwrap();
        budget.reserve(b, 50, &limits).unwrap();
        let e = budget.reserve(b, 1, &limits).unwrap_err();
        assert!(e.contains("outbound queues full"), "{e}");
        budget.release(a, 60);
        budget.reserve(b, 50, &limits).unwrap();
        budget.release(a, 40);
        budget.release(b, 100);
        assert_eq!(budget.total, 0);
        assert!(budget.per_peer.is_empty());
    }
}

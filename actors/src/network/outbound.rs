//! Outbound delivery of one queued message (`queues.rs` keeps the per-(peer, session) order):
//! retries with back-off, messages of sessions that ended here dropped (except their `Abort`
//! and `Close`), failures reported to the session actor in words.

use std::time::{Duration, Instant};

use seco_protocols::seco::Body;
use seco_runtime::net::{self, Envelope, FailureKind, NetError, Reject};
use seco_runtime::PeerId;

use super::queues::{lock, Queued, Shared};
use super::reject::{
    describe_send_error, REJECT_KEYGEN_RUNNING, REJECT_NO_SESSION_SLOT, REJECT_UNKNOWN_SESSION,
};
use super::Outgoing;
use crate::msgs::SessionMsg;
use crate::wire;

pub(super) fn notify_failure(out: Outgoing, error: String, refused: Option<u16>) {
    if let Some(session) = out.notify {
        let _ = session.cast(SessionMsg::SendFailed {
            to: out.to,
            body: out.msg.body.name(),
            bundle: out.msg.body.bundle(),
            phase: out.msg.body.phase(),
            error,
            refused,
        });
    }
    if let Some(d) = out.delivered {
        let _ = d.send(Err("not queued".into()));
    }
}

/// Delivers one queued message to `peer` (retried), then reports the outcome.
pub(super) async fn deliver(shared: &Shared, peer: PeerId, queued: Queued) {
    // The budget is released when `_bytes` drops, after the outcome is known.
    let Queued {
        mut out,
        bytes: _bytes,
        at,
    } = queued;
    let waited = at.elapsed();
    let end_msg = matches!(out.msg.body, Body::Abort { .. } | Body::Close { .. });
    if !end_msg && lock(&shared.ended).contains(&out.msg.session) {
        // Nothing of an ended session matters any more.
        tracing::debug!(%peer, session = %out.msg.session, body = out.msg.body.name(), "dropped: the session has ended");
        return;
    }
    let env = wire::to_envelope(&out.msg);
    let delivered = out.delivered.take();
    let result = send_with_retry(shared, peer, env, end_msg).await;
    tracing::trace!(%peer, session = %out.msg.session, body = out.msg.body.name(), ok = result.is_ok(), queued_us = waited.as_micros() as u64, send_us = (at.elapsed() - waited).as_micros() as u64, "sent");
    let outcome = result.as_ref().map_err(describe_send_error).copied();
    match result {
        Ok(()) => {}
        Err(NetError::Shutdown) => {
            // This node is stopping: nobody is left to care.
            tracing::debug!(%peer, body = out.msg.body.name(), "not sent: the network is shut down");
        }
        Err(error) => {
            let refused = match error {
                NetError::Rejected {
                    reason: Reject::Application(code),
                    ..
                } => Some(code),
                _ => None,
            };
            let error = describe_send_error(&error);
            tracing::warn!(%peer, body = out.msg.body.name(), %error, "message not delivered");
            notify_failure(out, error, refused);
        }
    }
    if let Some(d) = delivered {
        let _ = d.send(outcome);
    }
}

/// Whether a failed send may succeed later: the peer is starting, stopping (its application
/// dropped the message: the session's actor was gone) or busy, or it does not know
/// the session yet (a server's key-generation message can overtake the gateway's `Open`), or
/// it has no session slot now (all taken, or key generation running in another session).
/// A session that ended there (`REJECT_SESSION_ENDED`) or a malformed message is final.
fn retryable(e: &NetError) -> bool {
    matches!(
        e,
        NetError::Failed { .. }
            | NetError::Dial(_)
            | NetError::Rejected {
                reason: Reject::Busy
                    | Reject::BufferFull
                    | Reject::Dropped
                    | Reject::Application(
                        REJECT_UNKNOWN_SESSION | REJECT_NO_SESSION_SLOT | REJECT_KEYGEN_RUNNING
                    ),
                ..
            }
    )
}

/// Sends with back-off for up to `budget`; a dial failure triggers a Kademlia lookup of the peer.
/// One attempt holds one of the peer's send permits (`Limits::max_sends_per_peer`); the
/// back-off between attempts does not.
async fn send_with_retry(
    shared: &Shared,
    peer: PeerId,
    env: Envelope,
    end_msg: bool,
) -> net::Result<()> {
    let (transport, budget) = (&shared.transport, shared.retry);
    let permits = shared.permits(peer);
    let start = Instant::now();
    let mut backoff = Duration::from_millis(50);
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let attempt = {
            // The semaphore is never closed.
            let _permit = permits.acquire().await;
            transport.send(peer, env.clone()).await
        };
        let error = match attempt {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        // An `Abort` or `Close` for a session the peer does not know has nothing to end there
        // (behind that session's earlier messages in its queue, it cannot overtake its opening).
        let nothing_to_end = end_msg
            && matches!(
                error,
                NetError::Rejected {
                    reason: Reject::Application(REJECT_UNKNOWN_SESSION),
                    ..
                }
            );
        if nothing_to_end || !retryable(&error) {
            return Err(error);
        }
        if start.elapsed() + backoff > budget {
            let ms = start.elapsed().as_millis() as u64;
            tracing::warn!(%peer, attempts, ms, %error, "retries used up");
            return Err(error);
        }
        if matches!(
            error,
            NetError::Failed {
                kind: FailureKind::DialFailure,
                ..
            }
        ) {
            // No known address (a node that advertises none) or a stale one: ask the DHT.
            match transport.client().find_peer(peer).await {
                Ok(addrs) => tracing::debug!(%peer, ?addrs, "found by Kademlia"),
                Err(e) => tracing::debug!(%peer, error = %e, "Kademlia lookup failed"),
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(1));
    }
}

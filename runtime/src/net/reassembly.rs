//! Reassembly of chunked messages with bounded per-peer, per-session and total buffers.
//!
//! Chunks of one message share `(peer, session, kind, seq)` and may arrive in any order (the
//! sender keeps several in flight). Each accepted chunk counts against three budgets, all from
//! [`Limits`](super::Limits): the message's declared length (`max_message`), the bytes buffered for
//! the sending peer (`max_buffered_per_peer`), for the session (`max_buffered_per_session`) and
//! from all peers together (`max_buffered_total`), plus a cap on the number of open assemblies
//! per peer. A chunk that would exceed one is refused
//! ([`Reject::BufferFull`] / [`Reject::TooLarge`]) and nothing is allocated for it. Incomplete
//! assemblies are dropped after `reassembly_timeout` or when the peer disconnects.
//!
//! A duplicate chunk (same index, same length) is accepted again without effect; a chunk whose
//! header disagrees with the first one seen is [`Reject::Malformed`].

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use libp2p::PeerId;

use super::codec::Reject;
use super::envelope::{Chunk, Envelope, SessionId};
use super::Limits;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    peer: PeerId,
    session: SessionId,
    kind: u16,
    seq: u64,
}

#[derive(Debug)]
struct Assembly {
    total: u32,
    len: u64,
    received: u64,
    parts: BTreeMap<u32, Vec<u8>>,
    started: Instant,
}

/// Buffers for partially received chunked messages.
#[derive(Debug)]
pub(crate) struct Reassembler {
    max_message: u64,
    max_per_peer: u64,
    max_per_session: u64,
    max_total: u64,
    max_assemblies_per_peer: usize,
    timeout: Duration,
    assemblies: HashMap<Key, Assembly>,
    /// Buffered bytes and open assemblies per peer.
    per_peer: HashMap<PeerId, (u64, usize)>,
    /// Buffered bytes per session.
    per_session: HashMap<SessionId, u64>,
    /// Buffered bytes of every peer together.
    total: u64,
}

impl Reassembler {
    pub(crate) fn new(limits: &Limits) -> Self {
        Self {
            max_message: limits.max_message as u64,
            max_per_peer: limits.max_buffered_per_peer as u64,
            max_per_session: limits.max_buffered_per_session as u64,
            max_total: limits.max_buffered_total as u64,
            max_assemblies_per_peer: limits.max_assemblies_per_peer,
            timeout: limits.reassembly_timeout,
            assemblies: HashMap::new(),
            per_peer: HashMap::new(),
            per_session: HashMap::new(),
            total: 0,
        }
    }

    /// Total bytes currently buffered (for tests).
    #[cfg(test)]
    pub(crate) fn buffered(&self) -> u64 {
        self.per_peer.values().map(|(b, _)| b).sum()
    }

    /// Takes one chunk; returns the whole message when this chunk completes it.
    pub(crate) fn push(
        &mut self,
        peer: PeerId,
        env: Envelope,
        now: Instant,
    ) -> Result<Option<Envelope>, Reject> {
        let Some(chunk) = env.chunk else {
            return Ok(Some(env));
        };
        if chunk.len > self.max_message {
            return Err(Reject::TooLarge);
        }
        let key = Key {
            peer,
            session: env.session,
            kind: env.kind,
            seq: env.seq,
        };
        self.check_and_open(key, chunk, now)?;
        let add = env.payload.len() as u64;
        let Some(asm) = self.assemblies.get_mut(&key) else {
            return Err(Reject::Malformed); // unreachable: opened above
        };
        if let Some(prev) = asm.parts.get(&chunk.index) {
            // A duplicate (e.g. a retried or duplicated request) is harmless if identical in size.
            return if prev.len() == env.payload.len() {
                Ok(None)
            } else {
                Err(Reject::Malformed)
            };
        }
        if asm.received + add > asm.len {
            return Err(Reject::Malformed);
        }
        let peer_bytes = self.per_peer.get(&peer).map_or(0, |p| p.0);
        let session_bytes = self.per_session.get(&env.session).copied().unwrap_or(0);
        if peer_bytes + add > self.max_per_peer
            || session_bytes + add > self.max_per_session
            || self.total + add > self.max_total
        {
            return Err(Reject::BufferFull);
        }
        asm.received += add;
        asm.parts.insert(chunk.index, env.payload);
        let complete = asm.parts.len() as u64 == u64::from(asm.total);
        self.account(key, add as i128);
        if !complete {
            return Ok(None);
        }
        let asm = self.close(key);
        if asm.received != asm.len {
            return Err(Reject::Malformed);
        }
        let mut payload = Vec::with_capacity(asm.received as usize);
        for part in asm.parts.into_values() {
            payload.extend_from_slice(&part);
        }
        Ok(Some(Envelope::new(key.session, key.kind, key.seq, payload)))
    }

    /// Opens the assembly for `key` if new (checking the per-peer count), or checks that `chunk`
    /// agrees with it.
    fn check_and_open(&mut self, key: Key, chunk: Chunk, now: Instant) -> Result<(), Reject> {
        if let Some(asm) = self.assemblies.get(&key) {
            return if asm.total == chunk.total && asm.len == chunk.len {
                Ok(())
            } else {
                Err(Reject::Malformed)
            };
        }
        let open = self.per_peer.get(&key.peer).map_or(0, |p| p.1);
        if open >= self.max_assemblies_per_peer {
            return Err(Reject::BufferFull);
        }
        self.assemblies.insert(
            key,
            Assembly {
                total: chunk.total,
                len: chunk.len,
                received: 0,
                parts: BTreeMap::new(),
                started: now,
            },
        );
        self.per_peer.entry(key.peer).or_default().1 += 1;
        Ok(())
    }

    /// Adds `delta` buffered bytes to the peer's, the session's and the total budgets.
    fn account(&mut self, key: Key, delta: i128) {
        self.total = (i128::from(self.total) + delta).max(0) as u64;
        let p = self.per_peer.entry(key.peer).or_default();
        p.0 = (i128::from(p.0) + delta).max(0) as u64;
        let s = self.per_session.entry(key.session).or_default();
        *s = (i128::from(*s) + delta).max(0) as u64;
        if *s == 0 {
            self.per_session.remove(&key.session);
        }
    }

    /// Removes an assembly and releases its budget.
    fn close(&mut self, key: Key) -> Assembly {
        let asm = self.assemblies.remove(&key).unwrap_or(Assembly {
            total: 0,
            len: 0,
            received: 0,
            parts: BTreeMap::new(),
            started: Instant::now(),
        });
        self.account(key, -i128::from(asm.received));
        if let Some(p) = self.per_peer.get_mut(&key.peer) {
            p.1 = p.1.saturating_sub(1);
            if *p == (0, 0) {
                self.per_peer.remove(&key.peer);
            }
        }
        asm
    }

    /// Drops assemblies older than the timeout; returns how many were dropped.
    pub(crate) fn expire(&mut self, now: Instant) -> usize {
        let stale: Vec<Key> = self
            .assemblies
            .iter()
            .filter(|(_, a)| now.saturating_duration_since(a.started) > self.timeout)
            .map(|(k, _)| *k)
            .collect();
        for key in &stale {
            let asm = self.close(*key);
            tracing::warn!(peer = %key.peer, session = %key.session, seq = key.seq, received = asm.received, len = asm.len, "dropping incomplete chunked message (timeout)");
        }
        stale.len()
    }

    /// Drops every assembly from `peer` (it disconnected).
    pub(crate) fn forget_peer(&mut self, peer: &PeerId) {
        let keys: Vec<Key> = self
            .assemblies
            .keys()
            .filter(|k| &k.peer == peer)
            .copied()
            .collect();
        for key in keys {
            self.close(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_message: 100,
            max_buffered_per_peer: 60,
            max_buffered_per_session: 50,
            max_assemblies_per_peer: 2,
            ..Limits::default()
        }
    }

    fn chunk(seq: u64, index: u32, total: u32, len: u64, payload: Vec<u8>) -> Envelope {
        let mut e = Envelope::new(SessionId([1; 16]), 0, seq, payload);
        e.chunk = Some(Chunk { index, total, len });
        e
    }

    #[test]
    fn reassembles_out_of_order_with_duplicates() {
        let mut r = Reassembler::new(&limits());
        let p = PeerId::random();
        let now = Instant::now();
        assert_eq!(r.push(p, chunk(1, 2, 3, 7, vec![7]), now), Ok(None));
        assert_eq!(r.push(p, chunk(1, 0, 3, 7, vec![1, 2, 3]), now), Ok(None));
        assert_eq!(r.push(p, chunk(1, 0, 3, 7, vec![1, 2, 3]), now), Ok(None));
        assert_eq!(r.buffered(), 4);
        let done = r
            .push(p, chunk(1, 1, 3, 7, vec![4, 5, 6]), now)
            .unwrap()
            .unwrap();
        assert_eq!(done.payload, vec![1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(done.chunk(), None);
        assert_eq!(r.buffered(), 0);
    }

    #[test]
    fn budgets_and_inconsistencies_refused() {
        let mut r = Reassembler::new(&limits());
        let p = PeerId::random();
        let now = Instant::now();
        assert_eq!(
            r.push(p, chunk(1, 0, 2, 101, vec![0]), now),
            Err(Reject::TooLarge)
        );
        assert_eq!(r.push(p, chunk(1, 0, 2, 100, vec![0; 40]), now), Ok(None));
        // Session budget (50) exceeded by a second message of the same session.
        assert_eq!(
            r.push(p, chunk(2, 0, 2, 100, vec![0; 20]), now),
            Err(Reject::BufferFull)
        );
        // Third open assembly for this peer.
        assert_eq!(
            r.push(p, chunk(3, 0, 2, 10, vec![0; 1]), now),
            Err(Reject::BufferFull)
        );
        // Header disagreeing with the first chunk, and a chunk overflowing the declared length.
        assert_eq!(
            r.push(p, chunk(1, 1, 3, 100, vec![0]), now),
            Err(Reject::Malformed)
        );
        // Completing with the wrong total length.
        assert_eq!(
            r.push(p, chunk(1, 1, 2, 100, vec![0; 5]), now),
            Err(Reject::Malformed)
        );
        assert_eq!(r.buffered(), 0);
    }

    #[test]
    fn the_total_budget_holds_across_peers_and_sessions() {
        let mut r = Reassembler::new(&Limits {
            max_buffered_total: 70,
            ..limits()
        });
        let (a, b) = (PeerId::random(), PeerId::random());
        let now = Instant::now();
        let other_session = |mut e: Envelope| {
            e.session = SessionId([2; 16]);
            e
        };
        assert_eq!(r.push(a, chunk(1, 0, 2, 80, vec![0; 40]), now), Ok(None));
        // Within b's peer budget (60) and its session's (50), beyond the total (70).
        let e = other_session(chunk(1, 0, 2, 80, vec![0; 40]));
        assert_eq!(r.push(b, e, now), Err(Reject::BufferFull));
        let e = other_session(chunk(1, 0, 2, 80, vec![0; 30]));
        assert_eq!(r.push(b, e, now), Ok(None));
        assert_eq!(r.buffered(), 70);
        // a's message dropped (disconnect): its bytes count no more.
        r.forget_peer(&a);
        let e = other_session(chunk(1, 1, 2, 80, vec![0; 50]));
        assert_eq!(
            r.push(b, e, now),
            Err(Reject::BufferFull),
            "b's own budgets"
        );
        let e = other_session(chunk(2, 0, 2, 80, vec![0; 20]));
        assert_eq!(r.push(b, e, now), Ok(None));
        assert_eq!(r.total, 50);
    }

    #[test]
    fn expiry_and_disconnect_release_budget() {
        let mut r = Reassembler::new(&limits());
        let (a, b) = (PeerId::random(), PeerId::random());
        let t0 = Instant::now();
        r.push(a, chunk(1, 0, 2, 10, vec![0; 5]), t0).unwrap();
        r.push(b, chunk(1, 0, 2, 10, vec![0; 5]), t0).unwrap();
        r.forget_peer(&b);
        assert_eq!(r.buffered(), 5);
        assert_eq!(
            r.expire(t0 + limits().reassembly_timeout + Duration::from_secs(1)),
            1
        );
        assert_eq!(r.buffered(), 0);
        assert!(r.per_session.is_empty() && r.per_peer.is_empty());
    }
}

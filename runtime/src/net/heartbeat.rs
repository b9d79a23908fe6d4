//! Heartbeat bookkeeping of the event loop (`NetConfig::heartbeat`): libp2p ping runs on every
//! connection every half of the heartbeat; a connection with no answered ping for a whole
//! heartbeat is silent, and the event loop closes it. A frozen peer (SIGSTOP, a hung host)
//! keeps its TCP connection open, since its kernel still acknowledges; closing the connection
//! hands it to the node's loss detection (redial within the grace, then the peer is lost).
//!
//! Why not ping's own failures: the first failure of a connection is silent by design, and the
//! second one, on a fresh stream to a frozen peer, is a negotiation timeout of 10 s reported as
//! `Failure::Other`: about 13 s or more before anything is reported, whatever the timeout.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::swarm::ConnectionId;
use libp2p::PeerId;

/// When each connection's peer last answered a ping.
#[derive(Debug)]
pub(crate) struct Heartbeat {
    limit: Duration,
    last: HashMap<ConnectionId, (PeerId, Instant)>,
}

impl Heartbeat {
    pub(crate) fn new(limit: Duration) -> Self {
        Self {
            limit,
            last: HashMap::new(),
        }
    }

    /// A new connection: its peer has a whole heartbeat to answer the first ping.
    pub(crate) fn established(&mut self, c: ConnectionId, peer: PeerId, now: Instant) {
        self.last.insert(c, (peer, now));
    }

    pub(crate) fn closed(&mut self, c: ConnectionId) {
        self.last.remove(&c);
    }

    /// A ping on `c` was answered.
    pub(crate) fn answered(&mut self, c: ConnectionId, now: Instant) {
        if let Some((_, at)) = self.last.get_mut(&c) {
            *at = now;
        }
    }

    /// The connections silent for longer than the heartbeat (forgotten here: the caller closes
    /// them).
    pub(crate) fn silent(&mut self, now: Instant) -> Vec<(ConnectionId, PeerId)> {
        let limit = self.limit;
        let out: Vec<(ConnectionId, PeerId)> = self
            .last
            .iter()
            .filter(|(_, (_, at))| now.saturating_duration_since(*at) > limit)
            .map(|(c, (p, _))| (*c, *p))
            .collect();
        for (c, _) in &out {
            self.last.remove(c);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_without_answers_for_a_heartbeat_is_silent() {
        let mut h = Heartbeat::new(Duration::from_secs(2));
        let (a, b) = (
            ConnectionId::new_unchecked(1),
            ConnectionId::new_unchecked(2),
        );
        let (pa, pb) = (PeerId::random(), PeerId::random());
        let t0 = Instant::now();
        h.established(a, pa, t0);
        h.established(b, pb, t0);
        h.answered(a, t0 + Duration::from_secs(1));
        assert!(h.silent(t0 + Duration::from_secs(2)).is_empty());
        // b never answered; a answered at 1 s.
        assert_eq!(h.silent(t0 + Duration::from_millis(2500)), vec![(b, pb)]);
        assert_eq!(h.silent(t0 + Duration::from_millis(3500)), vec![(a, pa)]);
        h.closed(a);
        assert!(h.silent(t0 + Duration::from_secs(60)).is_empty());
    }
}

//! Restart detection: every process draws a random incarnation number when its swarm is built
//! and announces it in its identify agent version (`seco-rs/<version> incarnation/<hex>`). A
//! peer whose new connection announces another number than before has restarted since: the
//! event loop reports [`Event::PeerRestarted`](super::Event::PeerRestarted), so that sessions
//! waiting on state it lost (key generation, OT setup, bundles in preparation, inferences in
//! flight) end at once instead of at a phase deadline (issue 13).
//!
//! The number is not secret and proves nothing: a peer is authenticated by its Noise handshake;
//! a peer that lies about its incarnation can only make its own sessions abort.

use std::collections::HashMap;

use libp2p::PeerId;

const MARK: &str = " incarnation/";

/// The identify agent version announcing `incarnation`.
pub(crate) fn agent_version(incarnation: u64) -> String {
    format!(
        "seco-rs/{}{MARK}{incarnation:016x}",
        env!("CARGO_PKG_VERSION")
    )
}

/// The incarnation an agent version announces, if it is one of ours.
pub(crate) fn incarnation_of(agent: &str) -> Option<u64> {
    let (_, hex) = agent.rsplit_once(MARK)?;
    if hex.len() != 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// The last incarnation seen per peer (peers of the allowlist only: no one else connects).
#[derive(Debug, Default)]
pub(crate) struct Incarnations {
    seen: HashMap<PeerId, u64>,
}

impl Incarnations {
    /// Records what `peer` announced; `true` if it announced another incarnation before (it
    /// restarted since).
    pub(crate) fn announce(&mut self, peer: PeerId, agent: &str) -> bool {
        let Some(now) = incarnation_of(agent) else {
            return false;
        };
        matches!(self.seen.insert(peer, now), Some(before) if before != now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_incarnation_is_a_restart_and_garbage_is_ignored() {
        assert_eq!(incarnation_of(&agent_version(0xabc)), Some(0xabc));
        for bad in [
            "",
            "rust-libp2p/0.1",
            "x incarnation/12",
            "x incarnation/zzzzzzzzzzzzzzzz",
        ] {
            assert_eq!(incarnation_of(bad), None, "{bad:?}");
        }
        let (a, b) = (PeerId::random(), PeerId::random());
        let mut seen = Incarnations::default();
        assert!(!seen.announce(a, &agent_version(1)));
        assert!(
            !seen.announce(a, &agent_version(1)),
            "same process, new connection"
        );
        assert!(!seen.announce(b, &agent_version(2)));
        assert!(seen.announce(a, &agent_version(3)), "restarted");
        assert!(!seen.announce(a, "garbage"));
        assert!(!seen.announce(a, &agent_version(3)));
    }
}

//! Which sessions ended at this node (closed, expired, aborted), so that late messages for them
//! are refused at once with [`REJECT_SESSION_ENDED`](super::REJECT_SESSION_ENDED) instead of
//! being retried by their senders, and so that their queued outbound messages are dropped. Shared
//! by the node actor (which records the ends) and the network's sender tasks.

use std::collections::{HashSet, VecDeque};

use seco_protocols::seco::SessionId;

/// Most ended sessions remembered (older ones are then refused as unknown, which senders
/// retry for `Timeouts::retry`).
pub(crate) const MAX_ENDED: usize = 4096;

/// A bounded set of sessions that ended here, oldest forgotten first.
#[derive(Default)]
pub(crate) struct EndedSessions {
    order: VecDeque<SessionId>,
    set: HashSet<SessionId>,
}

impl EndedSessions {
    /// Remembers `sid` as ended.
    pub(crate) fn insert(&mut self, sid: SessionId) {
        if !self.set.insert(sid) {
            return;
        }
        self.order.push_back(sid);
        if self.order.len() > MAX_ENDED {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
    }

    /// Whether `sid` ended here.
    pub(crate) fn contains(&self, sid: &SessionId) -> bool {
        self.set.contains(sid)
    }

    /// Number of sessions remembered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.order.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ended_set_is_bounded_and_forgets_the_oldest() {
        let mut e = EndedSessions::default();
        let sid = |i: u32| {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&i.to_le_bytes());
            SessionId(b)
        };
        for i in 0..(MAX_ENDED as u32 + 10) {
            e.insert(sid(i));
            e.insert(sid(i));
        }
        assert_eq!(e.len(), MAX_ENDED);
        assert!(!e.contains(&sid(0)) && !e.contains(&sid(9)));
        assert!(e.contains(&sid(10)) && e.contains(&sid(MAX_ENDED as u32 + 9)));
    }
}

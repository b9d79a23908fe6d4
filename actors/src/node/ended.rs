//! The end of sessions at a node: which sessions ended here (so that late messages for them
//! are refused at once with [`REJECT_SESSION_ENDED`] instead of being retried by their
//! senders), and the expiry of session records found in the store at start that no message
//! claims within `Timeouts::idle` (their actor never ran in this process, so no actor expires
//! them).
//!
//! [`REJECT_SESSION_ENDED`]: crate::network::REJECT_SESSION_ENDED

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Instant;

use seco_protocols::seco::SessionId;

use super::NodeState;
use crate::error::Result;

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

/// Stored session records without an actor, since when (the node's start).
pub(crate) type Dormant = HashMap<SessionId, Instant>;

impl NodeState {
    /// At start: every stored session record is dormant until a message resumes it.
    pub(super) fn load_dormant(&mut self) -> Result<()> {
        let now = Instant::now();
        for sid in self.ctx.store.session_ids()? {
            self.dormant.insert(sid, now);
        }
        if !self.dormant.is_empty() {
            tracing::info!(node = %self.ctx.name, sessions = self.dormant.len(), idle = ?self.ctx.timeouts.idle, "stored sessions expire unless a message resumes them in time");
        }
        Ok(())
    }

    /// Deletes the dormant sessions whose idle time has passed.
    pub(super) fn expire_dormant(&mut self, now: Instant) -> Result<()> {
        let idle = self.ctx.timeouts.idle;
        let due: Vec<SessionId> = self
            .dormant
            .iter()
            .filter(|(_, since)| now.saturating_duration_since(**since) >= idle)
            .map(|(sid, _)| *sid)
            .collect();
        for sid in due {
            self.dormant.remove(&sid);
            if self.sessions.contains_key(&sid) {
                continue;
            }
            self.ctx.store.forget_session(sid)?;
            self.ended.insert(sid);
            tracing::info!(node = %self.ctx.name, session = %sid, "stored session expired: records and bundles deleted");
        }
        Ok(())
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

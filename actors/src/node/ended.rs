//! The expiry of session records found in the store at start that no message claims within
//! `Timeouts::idle` (their actor never ran in this process, so no actor expires them). The set
//! of sessions that ended here is `crate::network::ended::EndedSessions`.

use std::collections::HashMap;
use std::time::Instant;

use seco_protocols::seco::SessionId;

use super::NodeState;
use crate::error::Result;

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

//! Preparation messages that reach a server session before it is ready wait until it is.
//!
//! A server that restarted resumes a session in `await-ot-setup` and refuses preparation
//! messages until its OT setup with every peer is redone (a few round trips). Its peers abort
//! the bundles that were in preparation when it restarted (`loss.rs`), and the user prepares a
//! fresh bundle at once; that bundle's first messages can reach the resumed server a few
//! milliseconds before its setup is done. Refused, they were acknowledged already and would
//! be lost, and the fresh bundle would wait for its deadline. So the session actor holds them
//! (at most `Limits::max_session_queue`, beyond which they are stepped, and refused, as
//! before) and steps them in their order once the session is ready. An `Abort` of a bundle
//! drops its held messages (an `Abort` of the session, all of them): a bundle aborted while its
//! messages waited must not start again here. A new session never receives preparation
//! messages before it is ready (the gateway's `Welcome` waits for every server's setup).

use ractor::ActorRef;
use seco_protocols::seco::{Body, Party, Phase, SecoMsg};
use seco_runtime::PeerId;

use super::{MachineKind, SessionMsg, SessionState};
use crate::error::Result;

impl SessionState {
    /// A message from a peer: held (see the module docs) or stepped, then the held messages
    /// are stepped if the session is ready now. Returns whether the actor should stop.
    pub(super) fn on_inbound(
        &mut self,
        myself: &ActorRef<SessionMsg>,
        from: Party,
        peer: PeerId,
        msg: SecoMsg,
    ) -> Result<bool> {
        if let Body::Abort { bundle, .. } = &msg.body {
            match bundle {
                Some(b) => self.held.retain(|(_, _, m)| m.body.bundle() != Some(*b)),
                None => self.held.clear(),
            }
        }
        if self.must_hold(&msg) {
            tracing::debug!(node = %self.ctx.name, session = %self.session, %from, body = msg.body.name(), held = self.held.len() + 1, "held until the OT setup is redone");
            self.held.push((from, peer, msg));
            return Ok(false);
        }
        let stop = self.inbound_step(myself, from, peer, msg)?;
        if !stop {
            self.step_held(myself)?;
        }
        Ok(stop)
    }

    fn must_hold(&self, msg: &SecoMsg) -> bool {
        let MachineKind::Server(s) = &self.machine else {
            return false;
        };
        msg.body.phase() == Phase::Prep
            && !s.is_ready()
            && !self.aborted
            && self.held.len() < self.ctx.limits.max_session_queue
    }

    /// Steps the held messages in their order once the session is ready.
    fn step_held(&mut self, myself: &ActorRef<SessionMsg>) -> Result<()> {
        let ready = matches!(&self.machine, MachineKind::Server(s) if s.is_ready());
        if !ready || self.held.is_empty() {
            return Ok(());
        }
        let held = std::mem::take(&mut self.held);
        tracing::debug!(node = %self.ctx.name, session = %self.session, count = held.len(), "stepping the held messages: the OT setup is redone");
        for (from, peer, msg) in held {
            // A held message never opens a session: it cannot stop the actor.
            self.inbound_step(myself, from, peer, msg)?;
        }
        Ok(())
    }
}

//! A lost peer or a message that could not be delivered (issue 13, item 1): the session aborts
//! what it has in flight at once, with a reason that names the phase and the peer's role (never
//! a server's name: the reason reaches the user). Phase deadlines stay as the backstop.
//!
//! - A message not delivered after `Timeouts::retry` (or refused by the peer): the bundle it
//!   belonged to aborts (the session, if it had no bundle: key generation, OT setup, or if the
//!   peer refused it because the session has ended there).
//! - A server lost (its connection closed and it could not be reached again within
//!   `Timeouts::grace`, `network/liveness.rs`): a session with work in flight (opening, a
//!   bundle in preparation, an inference) aborts as a whole (the lost server's part of every
//!   bundle is gone with it); an idle session is left alone (it expires, or its next message
//!   fails).
//! - A server restarted and resumed the session (it was back within the grace): its first
//!   messages are fresh OT setup halves (`seco::server::setup`), which a ready session
//!   receives only then. Its part of the bundles in preparation is gone (and it refuses
//!   preparation messages until its setup is redone), so those abort here at once instead of
//!   waiting for their deadline. Inferences go on (a resumed server serves stored bundles).
//! - A server restarted, seen when it connects again (a new incarnation in its identify
//!   announcement, `network/liveness.rs`): a session still opening aborts at once (the key
//!   generation or OT setup state it held is gone, and it would otherwise wait for the open
//!   deadline); a ready one aborts its bundles in preparation as above.

use std::time::Duration;

use ractor::ActorRef;
use seco_protocols::seco::{AbortKind, BundleId, Party, Phase};
use seco_runtime::PeerId;

use super::{MachineKind, SessionMsg, SessionState};
use crate::error::Result;
use crate::network::REJECT_SESSION_ENDED;
use crate::topology::PeerRole;

/// A phase in the words of an abort reason.
pub(super) fn phase_words(phase: Phase) -> &'static str {
    match phase {
        Phase::Session => "session open",
        Phase::Keygen => "key generation",
        Phase::Setup => "OT setup",
        Phase::Prep => "preprocessing",
        Phase::Online => "online inference",
        Phase::Abort => "abort",
    }
}

/// A peer's role in the words of an abort reason (no name: it reaches the user).
pub(super) fn role_words(role: Option<PeerRole>) -> &'static str {
    match role {
        Some(PeerRole::Server(0)) => "the gateway",
        Some(PeerRole::Server(_)) => "a remote server",
        Some(PeerRole::User) => "the user",
        None => "a peer",
    }
}

impl SessionState {
    /// The phase this session is in, for a lost peer's abort reason.
    fn current_phase(&self) -> &'static str {
        match &self.machine {
            MachineKind::Server(s) if !s.is_ready() => "session open (key generation, OT setup)",
            MachineKind::Server(s) => match s.in_flight() {
                (preps, _) if !preps.is_empty() => "preprocessing",
                _ => "online inference",
            },
            MachineKind::User(_) => self.waiters.phase(),
        }
    }

    /// Whether anything is in flight (a lost peer matters).
    fn busy(&self) -> bool {
        match &self.machine {
            MachineKind::Server(_) => self.deadlines.busy(),
            MachineKind::User(_) => self.waiters.busy(),
        }
    }

    /// A message of this session was not delivered: abort what it belonged to.
    pub(super) fn on_send_failed(
        &mut self,
        myself: &ActorRef<SessionMsg>,
        (to, body, bundle, phase): (PeerId, &'static str, Option<BundleId>, Phase),
        error: &str,
        refused: Option<u16>,
    ) -> Result<()> {
        let name = self.ctx.peer_name(&to);
        if self.aborted || body == "Abort" || body == "Close" {
            tracing::warn!(node = %self.ctx.name, session = %self.session, peer = %name, %body, %error, "not delivered (session already aborting)");
            return Ok(());
        }
        tracing::warn!(node = %self.ctx.name, session = %self.session, peer = %name, %body, %error, ?refused, "not delivered: aborting");
        let role = role_words(self.ctx.topology.peer_role(&to));
        let phase = phase_words(phase);
        // Transport errors name the peer by its id: the role instead (the log above has both).
        let error = error.replace(&to.to_string(), role);
        let reason = if refused.is_some() {
            format!("{phase}: {role} refused {body}: {error}")
        } else {
            format!("{phase}: lost {role}: {body} not delivered ({error})")
        };
        // The session has ended at the peer (closed, aborted, expired, or dropped at a restart
        // with another model part): no bundle of it can go on there, so the whole session
        // aborts and the user's handle opens a new one.
        let ended_there = refused == Some(REJECT_SESSION_ENDED);
        // The gateway refused the user's `Hello` (after the sender's own retries): a new
        // session would be refused again.
        let kind = if refused.is_some() && body == "Hello" {
            AbortKind::Final
        } else {
            AbortKind::Retry
        };
        let bundle = if ended_there { None } else { bundle };
        self.abort_as(myself, bundle, &reason, kind)
    }

    /// A server is lost (`network/liveness.rs`): a session with work in flight aborts at once.
    pub(super) fn on_peer_lost(
        &mut self,
        myself: &ActorRef<SessionMsg>,
        peer: PeerId,
        role: PeerRole,
        grace: Duration,
    ) -> Result<()> {
        if self.aborted || !self.busy() {
            return Ok(());
        }
        let reason = format!(
            "{}: lost {} (its connection closed and it could not be reached again within {grace:?})",
            self.current_phase(),
            role_words(Some(role)),
        );
        tracing::warn!(node = %self.ctx.name, session = %self.session, peer = %self.ctx.peer_name(&peer), %reason, "aborting: a peer is lost");
        // Lost beyond the grace: a new session now would not reach it either.
        self.abort_as(myself, None, &reason, AbortKind::Final)
    }

    /// A server sent a fresh OT setup half to this session while it is ready: it restarted
    /// (module docs). The bundles in preparation here abort at once: the restarted server lost
    /// its part of them, and it refuses preparation messages until its setup is redone.
    /// Inferences go on: a resumed server serves its stored bundles during its setup (the
    /// online phase uses no OT), and the inference that made it resume is among them.
    pub(super) fn on_peer_restarted(
        &mut self,
        myself: &ActorRef<SessionMsg>,
        from: Party,
    ) -> Result<()> {
        let MachineKind::Server(s) = &self.machine else {
            return Ok(());
        };
        if self.aborted || !s.is_ready() {
            return Ok(());
        }
        let (preps, _) = s.in_flight();
        let role = match from {
            Party::Server(i) => role_words(Some(PeerRole::Server(i))),
            Party::User => role_words(Some(PeerRole::User)),
        };
        for b in preps {
            let reason = format!(
                "{}: {role} restarted (its part of this bundle was lost)",
                phase_words(Phase::Prep)
            );
            tracing::warn!(node = %self.ctx.name, session = %self.session, bundle = %b, %reason, "aborting: a peer restarted");
            self.abort(myself, Some(b), &reason)?;
        }
        Ok(())
    }

    /// A server that this session used restarted (`SessionMsg::PeerRestarted`): a session
    /// still opening aborts, a ready one aborts its bundles in preparation.
    pub(super) fn on_peer_incarnation(
        &mut self,
        myself: &ActorRef<SessionMsg>,
        peer: PeerId,
        role: PeerRole,
    ) -> Result<()> {
        if self.aborted {
            return Ok(());
        }
        let ready = match &self.machine {
            MachineKind::Server(s) => s.is_ready(),
            // The user's session is resumed by a restarted gateway once open, not before.
            MachineKind::User(u) => u.is_ready() || role != PeerRole::Server(0),
        };
        if ready {
            if matches!(self.machine, MachineKind::User(_)) {
                return Ok(());
            }
            let PeerRole::Server(i) = role else {
                return Ok(());
            };
            return self.on_peer_restarted(myself, Party::Server(i));
        }
        let reason = format!(
            "{}: {} restarted (what it held of this session was lost)",
            self.current_phase(),
            role_words(Some(role)),
        );
        tracing::warn!(node = %self.ctx.name, session = %self.session, peer = %self.ctx.peer_name(&peer), %reason, "aborting: a peer restarted");
        self.abort(myself, None, &reason)
    }
}

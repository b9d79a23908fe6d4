//! The end of a session: closed by the user, or expired after the idle time (the driver keeps
//! the clock, `ServerSession::close`), or aborted (`ServerSession::abort`: the whole session or
//! one bundle, on every peer, with a reason; relayed by the gateway).
//!
//! ```text
//! U -> G      Close { Done }       the user is done (or interrupted)
//! G -> R_i    Close { reason }     the gateway's session closed or expired
//! G -> U      Close { Expired }    the gateway's session expired
//! ```
//!
//! A closed session drops what it has in flight (with its chunk records), refuses every
//! further message and reports [`Event::Closed`]: its driver deletes the session's records and
//! unused bundles and frees its slot. An aborted session ends the same way at every peer
//! (`Abort` plays the role of `Close` there). A remote expires on its own too (its driver waits
//! longer than the gateway's, so that the gateway's `Close` normally comes first).

use super::super::error::{Result, SecoError};
use super::super::ids::{BundleId, Party};
use super::super::io::{Event, Persist, Ready};
use super::super::msg::{AbortKind, Body, CloseReason};
use super::{ServerSession, State};

impl ServerSession {
    /// Closes the session on the driver's initiative (expiry): the gateway tells the remotes
    /// it opened and the user; a remote closes alone. Nothing happens if the session has
    /// already ended.
    pub fn close(&mut self, reason: CloseReason) -> Ready {
        let mut ready = Ready::default();
        if self.has_ended() {
            return ready;
        }
        if self.is_gateway() {
            self.close_remotes(&mut ready, reason);
            if self.user_pk.is_some() {
                self.send(&mut ready, Party::User, Body::Close { reason });
            }
        }
        self.apply_close(reason, &mut ready);
        ready
    }

    /// Whether the session was closed or aborted.
    pub fn has_ended(&self) -> bool {
        matches!(self.state, State::Closed(_) | State::Aborted(_))
    }

    /// Whether the gateway has sent `Open` to the remotes (they know the session).
    pub(super) fn remotes_opened(&self) -> bool {
        !(self.is_gateway() && matches!(self.state, State::AwaitOpen))
    }

    fn close_remotes(&mut self, ready: &mut Ready, reason: CloseReason) {
        if self.remotes_opened() {
            self.broadcast(ready, &Body::Close { reason });
        }
    }

    /// A `Close` from the user (gateway) or from the gateway (remote).
    pub(super) fn on_close(&mut self, from: Party, reason: CloseReason) -> Result<Ready> {
        let allowed = if self.is_gateway() {
            Party::User
        } else {
            Party::GATEWAY
        };
        if from != allowed {
            return Err(SecoError::WrongSender {
                body: "Close",
                claimed: from,
                actual: from,
                expected: allowed.to_string(),
            });
        }
        let mut ready = Ready::default();
        if self.is_gateway() {
            self.close_remotes(&mut ready, reason);
        }
        self.apply_close(reason, &mut ready);
        Ok(ready)
    }

    fn apply_close(&mut self, reason: CloseReason, ready: &mut Ready) {
        let dropped: Vec<BundleId> = self
            .preps
            .keys()
            .chain(self.onlines.keys())
            .copied()
            .collect();
        ready
            .persist
            .extend(dropped.into_iter().map(Persist::ForgetChunks));
        self.preps.clear();
        self.onlines.clear();
        self.state = State::Closed(reason);
        ready.events.push(Event::Closed(reason));
    }
}

impl ServerSession {
    /// Aborts the whole session (or one bundle) on every peer with a reason. The user's copy
    /// names no server: every server name and number in it is replaced by its role
    /// (`output::scrub`).
    pub fn abort(&mut self, bundle: Option<BundleId>, reason: &str) -> Ready {
        self.abort_as(bundle, reason, AbortKind::Retry)
    }

    /// [`Self::abort`] of a given kind: `Final` for a refusal a new session would meet again.
    pub fn abort_as(&mut self, bundle: Option<BundleId>, reason: &str, kind: AbortKind) -> Ready {
        let mut ready = Ready::default();
        let body = Body::Abort {
            bundle,
            reason: reason.to_string(),
            kind,
        };
        if self.remotes_opened() {
            self.broadcast(&mut ready, &body);
        }
        if self.is_gateway() && self.user_pk.is_some() {
            let reason = super::super::output::scrub(reason, &self.cfg.part.servers);
            self.send(
                &mut ready,
                Party::User,
                Body::Abort {
                    bundle,
                    reason,
                    kind,
                },
            );
        }
        self.apply_abort(bundle, reason, kind, &mut ready);
        ready
    }

    pub(super) fn apply_abort(
        &mut self,
        bundle: Option<BundleId>,
        reason: &str,
        kind: AbortKind,
        ready: &mut Ready,
    ) {
        // Chunk records of aborted bundles (in preparation, or not yet taken online) go too.
        let dropped: Vec<BundleId> = match bundle {
            Some(b) => vec![b],
            None => self
                .preps
                .keys()
                .chain(self.onlines.keys())
                .copied()
                .collect(),
        };
        ready
            .persist
            .extend(dropped.into_iter().map(Persist::ForgetChunks));
        match bundle {
            Some(b) => {
                self.preps.remove(&b);
                self.onlines.remove(&b);
                self.gw.forget(b);
            }
            None => {
                self.preps.clear();
                self.onlines.clear();
                self.state = State::Aborted(reason.to_string());
            }
        }
        ready.events.push(Event::Aborted {
            bundle,
            reason: reason.to_string(),
            kind,
        });
    }

    pub(super) fn on_abort(
        &mut self,
        from: Party,
        bundle: Option<BundleId>,
        reason: String,
        kind: AbortKind,
    ) -> Ready {
        // Servers keep the sender in the reason; the user's copy is scrubbed (`abort`).
        let reason = format!("{from}: {reason}");
        if self.is_gateway() {
            // The gateway relays every abort to the other side.
            let mut ready = self.abort_as(bundle, &reason, kind);
            ready.send.retain(|(to, _)| *to != from);
            ready
        } else {
            let mut ready = Ready::default();
            self.apply_abort(bundle, &reason, kind, &mut ready);
            ready
        }
    }
}

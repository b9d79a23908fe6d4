//! Phase 1b: the servers' pairwise OT setup (`bmr::OtSetup`, protocol and security argument in
//! `bmr/setup.rs`). Every garbling of the session draws fresh IKNP extensions from it, so the
//! base OTs (Ristretto scalar multiplications) run once per session instead of once per
//! garbling and pair.
//!
//! ```text
//! G on Hello, R_i on Open:   OtSetup(half) -> every other server  (halves that arrive before
//!                            a server's own start wait in a bounded buffer)
//! all pairs complete:        R_i -> G OtReady
//! G:                         Welcome only when keys agree, its own setup is done and every
//!                            remote sent OtReady; so no preprocessing message can reach a
//!                            server before its setup is complete
//! restart (resume):          the resumed server sends fresh halves; each peer answers with a
//!                            fresh half of its own and replaces that pair (its offset stays);
//!                            the resumed server is ready again once every peer answered
//! ```
//! The setup is in memory only (secret seeds; cheap to redo); the offset is kept in the session
//! record, so a resumed server sets up under the offset its stored garblings need. Garblings running at a restart
//! cannot complete with the restarted server and time out, like any bundle in preparation.

use super::super::error::{Result, SecoError};
use super::super::ids::Party;
use super::super::io::Ready;
use super::super::msg::{Body, Bytes, SecoMsg};
use super::{ServerSession, State};
use crate::bmr::{OtSetup, SetupMsg, SetupOutgoing};

impl ServerSession {
    /// Starts this server's OT setup (at the session's open, or on resume) and replays the
    /// halves that arrived early.
    pub(super) fn start_setup(&mut self) -> Result<Ready> {
        let mut ready = Ready::default();
        if self.ot.is_some() {
            return Ok(ready);
        }
        let (session, n, me) = (self.cfg.session.0, self.sched.n, self.me);
        let (ot, out) = match self.offset {
            Some(r) => OtSetup::with_offset(&mut self.rng, session, n, me, r)?,
            None => OtSetup::new(&mut self.rng, session, n, me)?,
        };
        self.offset = Some(ot.offset());
        self.ot = Some(ot);
        self.send_setup(&mut ready, out);
        for (from, msg) in std::mem::take(&mut self.early_setup) {
            // A buffered half that is refused now is dropped, as it would have been had it
            // arrived later; the others still count.
            if let Ok(r) = self.on_setup(from, msg) {
                ready.extend(r);
            }
        }
        ready.extend(self.check_setup_done()?);
        Ok(ready)
    }

    fn send_setup(&mut self, ready: &mut Ready, out: Vec<SetupOutgoing>) {
        for (to, msg) in out {
            let mut bytes = Vec::new();
            let _ = ciborium::into_writer(&msg, &mut bytes);
            self.send(
                ready,
                Party::Server(to as u16),
                Body::OtSetup(Bytes::from(bytes)),
            );
        }
    }

    pub(super) fn on_setup(&mut self, from: Party, msg: SecoMsg) -> Result<Ready> {
        let sender = Self::expect_server(from, msg.body.name())?;
        match &msg.body {
            Body::OtSetup(bytes) => {
                let half: SetupMsg = ciborium::from_reader(bytes.as_slice())
                    .map_err(|e| SecoError::Decode(format!("OT setup message: {e}")))?;
                let Some(ot) = self.ot.as_mut() else {
                    // Another server started before our `Open` (or the user's `Hello`) arrived.
                    let early = matches!(self.state, State::AwaitOpen)
                        && self.early_setup.len() < 2 * self.sched.n;
                    if !early {
                        return Err(self.wrong_phase(&msg.body));
                    }
                    self.early_setup.push((from, msg));
                    return Ok(Ready::default());
                };
                let out = ot.handle(&mut self.rng, sender, half)?;
                let mut ready = Ready::default();
                self.send_setup(&mut ready, out);
                ready.extend(self.check_setup_done()?);
                Ok(ready)
            }
            Body::OtReady if self.is_gateway() && !matches!(self.state, State::AwaitOpen) => {
                // A resumed remote reports again; once the session is ready that is no news.
                if !self.gw.record_ot_ready(sender) && !matches!(self.state, State::Ready) {
                    return Err(SecoError::Duplicate { from, seq: msg.seq });
                }
                self.try_ready()
            }
            body => Err(self.wrong_phase(body)),
        }
    }

    /// Once every pair is set up: a remote tells the gateway; the session may become ready.
    fn check_setup_done(&mut self) -> Result<Ready> {
        if self.ot_done || !self.ot.as_ref().is_some_and(OtSetup::is_done) {
            return Ok(Ready::default());
        }
        self.ot_done = true;
        let mut ready = Ready::default();
        if !self.is_gateway() {
            self.send(&mut ready, Party::GATEWAY, Body::OtReady);
        }
        ready.extend(self.try_ready()?);
        Ok(ready)
    }
}

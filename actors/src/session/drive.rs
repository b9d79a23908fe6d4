//! The raft drive loop of a session actor (STYLE.md 2; `seco_protocols::seco::io`):
//!
//! 1. step the state machine with one input;
//! 2. **persist** every `Persist` of the step, together with the outbound sequence lease its
//!    sends need, in one atomic batch, then **flush** (the commit point);
//! 3. **send** what the step produced (to the network actor);
//! 4. **report** the events (stats, logs, waiting callers, the node's event broadcast);
//! 5. **take** every bundle the step asks for, durably (removed and flushed before use), and
//!    feed it back as `Input::Loaded`, and likewise every stage's chunk garblings
//!    (`Input::Chunks`); their outputs go through this loop again. A bundle is normally taken
//!    whole before its inference, on a thread of its own while the previous inference runs
//!    (`armed.rs`: one flush, off the online path), and its takes are then served from memory.
//!
//! Nothing is sent before the state that produced it is on disk, so a restart never contradicts
//! a message already sent. Sends go before the takes of the same step (since 2026-12-06): those
//! messages were computed before the take, so none holds anything of a taken record, and the
//! peers start their own work (their takes on `OnlineStart`) without waiting for our take's
//! flush, which was on the online phase's critical path (3.6 ms of the gateway's 12 ms on
//! `Infer` with mnist-mlp). A record is still removed durably before its first use; a crash
//! between the send and the take leaves the record stored and unused, and the peers that took
//! theirs refuse a second use of the bundle.
//!
//! Sequence numbers are the state machine's: a resumed server numbers its messages in a new
//! epoch, persisted in its session record before it sends anything
//! (`seco_protocols::seco::seq`).

use std::time::Instant;

use ractor::{ActorRef, RpcReplyPort};
use seco_protocols::seco::{
    AbortKind, Body, BundleId, CloseReason, Event, Input, Machine, Party, Persist, Phase,
    Prediction, Ready, SecoError, SecoMsg,
};
use seco_runtime::PeerId;
use tokio::runtime::{Handle, RuntimeFlavor};

use super::deadlines::Op;
use super::{MachineKind, SessionMsg, SessionState};
use crate::context::NodeEvent;
use crate::error::{ActorError, Result};
use crate::msgs::{NetworkMsg, Outgoing};

/// Runs CPU- or disk-bound work (cryptography, sled flushes) without starving the runtime's
/// other tasks: on a multi-threaded runtime the worker hands its other tasks over first.
pub(crate) fn blocking<R>(f: impl FnOnce() -> R) -> R {
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

impl SessionState {
    fn machine(&mut self) -> &mut dyn Machine {
        match &mut self.machine {
            MachineKind::Server(s) => s.as_mut(),
            MachineKind::User(u) => u.as_mut(),
        }
    }

    fn is_gateway(&self) -> bool {
        matches!(&self.machine, MachineKind::Server(s) if s.is_gateway())
    }

    /// A message from a peer (not held back, `hold.rs`). Returns whether the actor should stop:
    /// a server session whose opening message (`Hello` / `Open`) is refused is dropped at once.
    pub(super) fn inbound_step(
        &mut self,
        myself: &ActorRef<SessionMsg>,
        from: Party,
        peer: PeerId,
        msg: SecoMsg,
    ) -> Result<bool> {
        if from == Party::User && self.user_peer.is_some_and(|u| u != peer) {
            tracing::warn!(node = %self.ctx.name, session = %self.session, %peer, body = msg.body.name(), "refusing a message from a user peer that did not open this session");
            self.ctx.stats.refused();
            return Ok(false);
        }
        // The gateway's deadline for a user request runs until the user gets its answer.
        let start = match (&msg.body, from) {
            (Body::PrepRequest { bundle, .. }, Party::User) => Some((Op::Prep, *bundle)),
            (Body::Infer { bundle, .. }, Party::User) => Some((Op::Online, *bundle)),
            _ => None,
        };
        if let (Body::OtSetup(_), Party::Server(_)) = (&msg.body, from) {
            // A server that is redoing its OT setup with a ready session restarted.
            self.on_peer_restarted(myself, from)?;
        }
        let phase = msg.body.phase();
        let opener = matches!(msg.body, Body::Hello { .. } | Body::Open { .. });
        let (body, t) = (msg.body.name(), Instant::now());
        let accepted = self.step(myself, Input::Message { from, msg }, phase)?;
        tracing::trace!(node = %self.ctx.name, session = %self.session, %from, body, accepted, us = t.elapsed().as_micros() as u64, "handled (step, commit, sends, takes)");
        if accepted && self.is_gateway() {
            if let Some((op, bundle)) = start {
                self.deadlines.start(op, bundle, Instant::now());
            }
        }
        let drop_session = !accepted && opener && self.fresh && !self.aborted;
        if accepted {
            self.fresh = false;
        }
        if drop_session && matches!(self.machine, MachineKind::Server(_)) {
            self.ctx.store.forget_session(self.session)?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Steps the machine; returns whether the input was accepted.
    fn step(&mut self, myself: &ActorRef<SessionMsg>, input: Input, phase: Phase) -> Result<bool> {
        let t = Instant::now();
        let result = self.machine().handle(input);
        self.ctx.stats.cpu(phase, t.elapsed());
        tracing::trace!(node = %self.ctx.name, us = t.elapsed().as_micros() as u64, "stepped");
        match result {
            Ok(ready) => {
                self.apply(myself, ready)?;
                Ok(true)
            }
            Err(e) => {
                self.refused(myself, e)?;
                Ok(false)
            }
        }
    }

    /// A refused input: logged and dropped, or the session aborts if the error is fatal.
    fn refused(&mut self, myself: &ActorRef<SessionMsg>, e: SecoError) -> Result<()> {
        if e.is_fatal() && !self.aborted {
            tracing::warn!(node = %self.ctx.name, session = %self.session, error = %e, "fatal: aborting the session");
            return self.abort_as(myself, None, &e.to_string(), e.abort_kind());
        }
        tracing::warn!(node = %self.ctx.name, session = %self.session, error = %e, "refused");
        self.ctx.stats.refused();
        Ok(())
    }

    /// The drive loop (module docs): persist + flush, send, report, take, feed taken records.
    pub(super) fn apply(&mut self, myself: &ActorRef<SessionMsg>, mut ready: Ready) -> Result<()> {
        loop {
            let t = Instant::now();
            self.ctx.store.commit(self.session, &ready.persist)?;
            for p in &ready.persist {
                match p {
                    Persist::Bundle { bundle, .. } => self.armed.ready(*bundle),
                    Persist::ForgetChunks(bundle) => self.armed.forget(*bundle),
                    _ => {}
                }
            }
            if !ready.persist.is_empty() {
                tracing::trace!(node = %self.ctx.name, records = ready.persist.len(), us = t.elapsed().as_micros() as u64, "committed");
            }
            ready.persist.clear();
            // Sends before takes: a message of this step was computed before the take ran, so
            // it holds nothing of the taken records (what is computed from them goes out in the
            // next turn of the loop, after the take is durable), and peers start their part of
            // the phase (e.g. their own takes on `OnlineStart`) without waiting for our flush.
            for (to, msg) in std::mem::take(&mut ready.send) {
                self.send(myself, to, msg);
            }
            for event in std::mem::take(&mut ready.events) {
                self.report(event)?;
            }
            let mut taken = Vec::with_capacity(ready.take.len() + ready.take_chunks.len());
            if !ready.take.is_empty() || !ready.take_chunks.is_empty() {
                // Every take of the step in one batch and one flush (each record used once),
                // or from the bundle armed ahead of its inference (`armed.rs`).
                let t = Instant::now();
                let (bundles, chunks) = self.armed.take(
                    &self.ctx.store,
                    self.session,
                    self.ctx.limits.armed_bytes as u64,
                    &ready.take,
                    &ready.take_chunks,
                )?;
                tracing::trace!(node = %self.ctx.name, bundles = bundles.len(), stages = chunks.len(), us = t.elapsed().as_micros() as u64, "took records");
                for (bundle, bytes) in ready.take.drain(..).zip(bundles) {
                    taken.push(Input::Loaded { bundle, bytes });
                }
                for (t, chunks) in ready.take_chunks.drain(..).zip(chunks) {
                    taken.push(Input::Chunks {
                        bundle: t.bundle,
                        stage: t.stage,
                        chunks,
                    });
                }
            }
            self.observe_in_flight();
            let took = !taken.is_empty();
            // Work the step left for after its messages (`Ready::resume`), after the takes.
            let resumed = ready.resume.len();
            taken.extend(
                ready
                    .resume
                    .drain(..)
                    .map(|bundle| Input::Resume { bundle }),
            );
            if took && self.armed.should_queue() {
                // The next bundle's thread starts now, before the taken records are stepped
                // (a large model's first stage decodes for 100 ms and more).
                self.arm(myself)?;
            }
            if taken.is_empty() {
                if self.armed.should_queue() {
                    // After this message: the next bundle is taken on its own thread.
                    let _ = myself.cast(SessionMsg::Arm);
                }
                return Ok(());
            }
            let first_resumed = taken.len() - resumed;
            for (i, input) in taken.into_iter().enumerate() {
                let t = Instant::now();
                let r = self.machine().handle(input);
                if i < first_resumed {
                    self.ctx.stats.cpu(Phase::Online, t.elapsed());
                    tracing::trace!(node = %self.ctx.name, us = t.elapsed().as_micros() as u64, "stepped a taken record");
                } else {
                    self.ctx.stats.cpu(Phase::Prep, t.elapsed());
                    tracing::trace!(node = %self.ctx.name, us = t.elapsed().as_micros() as u64, "stepped a resumed bundle");
                }
                match r {
                    Ok(r) => ready.extend(r),
                    Err(e) => self.refused(myself, e)?,
                }
            }
        }
    }

    fn observe_in_flight(&mut self) {
        if let MachineKind::Server(s) = &self.machine {
            let (preps, onlines) = s.in_flight();
            self.deadlines.observe(&preps, &onlines, Instant::now());
        }
    }

    /// Maps the message's party to a peer and hands it to the network actor.
    fn send(&mut self, myself: &ActorRef<SessionMsg>, to: Party, msg: SecoMsg) {
        let peer = match to {
            Party::Server(i) => self.ctx.server_peer(usize::from(i)),
            Party::User => self.user_peer,
        };
        let Some(peer) = peer else {
            tracing::error!(node = %self.ctx.name, session = %self.session, %to, "no peer for this party: message dropped");
            return;
        };
        if to == Party::User {
            match &msg.body {
                Body::BundleReady { bundle } => self.deadlines.finish(Op::Prep, *bundle),
                Body::Result { bundle, .. } => self.deadlines.finish(Op::Online, *bundle),
                _ => {}
            }
        }
        let out = Outgoing {
            to: peer,
            msg,
            notify: Some(myself.clone()),
            delivered: None,
        };
        if self.ctx.network.cast(NetworkMsg::Send(out)).is_err() {
            tracing::error!(node = %self.ctx.name, "network actor gone: message dropped");
        }
    }

    /// Stats, logs, deadlines, waiting callers, the event broadcast.
    fn report(&mut self, event: Event) -> Result<()> {
        let (node, session) = (&self.ctx.name, self.session);
        self.ctx.stats.event(&event);
        match &event {
            Event::SessionReady => {
                self.deadlines.opened();
                tracing::info!(%node, %session, "session ready");
            }
            Event::BundleReady(b) => tracing::info!(%node, %session, bundle = %b, "bundle ready"),
            Event::InferenceDone(b) => {
                // Whatever of it was not taken (nothing, normally) is dropped and zeroed.
                self.armed.forget(*b);
                tracing::info!(%node, %session, bundle = %b, "inference done")
            }
            Event::Logits { bundle, .. } => {
                self.armed.forget(*bundle);
                tracing::info!(%node, %session, bundle = %bundle, "logits decrypted")
            }
            Event::Label { bundle, .. } => {
                self.armed.forget(*bundle);
                tracing::info!(%node, %session, bundle = %bundle, "label decrypted")
            }
            Event::Aborted {
                bundle: Some(b),
                reason,
                ..
            } => {
                self.deadlines.forget(*b);
                self.armed.forget(*b);
                tracing::warn!(%node, %session, bundle = %b, %reason, "bundle aborted");
            }
            Event::Aborted {
                bundle: None,
                reason,
                ..
            } => {
                self.deadlines.clear();
                self.armed.clear();
                self.aborted = true;
                tracing::warn!(%node, %session, %reason, "session aborted");
                if matches!(self.machine, MachineKind::Server(_)) {
                    // Nothing of an aborted session is usable again: its records and bundles
                    // go, its actor stops (the slot is free) and a later message for it is
                    // refused as ended instead of resuming it.
                    self.ctx.store.forget_session(session)?;
                    self.ended = Some(format!("aborted: {reason}"));
                }
            }
            Event::Closed(reason) => {
                self.deadlines.clear();
                self.armed.clear();
                self.aborted = true;
                tracing::info!(%node, %session, %reason, "session closed");
                if matches!(self.machine, MachineKind::Server(_)) {
                    // Closed or expired: the same as an abort, without an error.
                    self.ctx.store.forget_session(session)?;
                    self.ended = Some(reason.to_string());
                }
            }
        }
        self.waiters.on_event(&event);
        let _ = self.ctx.events.send(NodeEvent {
            node: node.clone(),
            session,
            event,
        });
        Ok(())
    }

    /// Aborts a bundle or the whole session on every peer (servers) or locally (user), as a
    /// fault that a fresh session or bundle may not meet.
    pub(super) fn abort(
        &mut self,
        myself: &ActorRef<SessionMsg>,
        bundle: Option<BundleId>,
        reason: &str,
    ) -> Result<()> {
        self.abort_as(myself, bundle, reason, AbortKind::Retry)
    }

    /// [`Self::abort`] of a given kind: `Final` for a refusal a new session would meet again.
    pub(super) fn abort_as(
        &mut self,
        myself: &ActorRef<SessionMsg>,
        bundle: Option<BundleId>,
        reason: &str,
        kind: AbortKind,
    ) -> Result<()> {
        if self.aborted {
            return Ok(());
        }
        match &mut self.machine {
            MachineKind::Server(s) => {
                let ready = s.abort_as(bundle, reason, kind);
                self.apply(myself, ready)
            }
            MachineKind::User(_) => self.report(Event::Aborted {
                bundle,
                reason: reason.to_string(),
                kind,
            }),
        }
    }

    /// Deadlines and idleness: a server session with no message for `Timeouts::idle` (a
    /// remote: twice that, so that the gateway's `Close` normally comes first) and nothing in
    /// flight expires (`ServerSession::close`), which ends it.
    pub(super) fn on_tick(&mut self, myself: &ActorRef<SessionMsg>, now: Instant) -> Result<()> {
        if matches!(self.machine, MachineKind::User(_)) {
            self.waiters.expire(now);
            return Ok(());
        }
        for e in self.deadlines.expired(now) {
            tracing::warn!(node = %self.ctx.name, session = %self.session, reason = %e.reason, "deadline expired");
            self.abort(myself, e.bundle, &e.reason)?;
        }
        let idle = self.ctx.timeouts.idle * if self.is_gateway() { 1 } else { 2 };
        let expired = now.saturating_duration_since(self.last_activity) >= idle;
        if !expired || self.deadlines.busy() || self.aborted {
            return Ok(());
        }
        let MachineKind::Server(s) = &mut self.machine else {
            return Ok(());
        };
        tracing::info!(node = %self.ctx.name, session = %self.session, idle = ?idle, "session idle: it expires");
        let ready = s.close(CloseReason::Expired);
        self.apply(myself, ready)
    }

    /// User: closes the session. The `Close` goes to the gateway with a delivery report that
    /// answers `port`; the actor stops.
    pub(super) fn close(&mut self, port: RpcReplyPort<Result<()>>) -> Result<()> {
        let MachineKind::User(u) = &mut self.machine else {
            let _ = port.send(Err(ActorError::Unsupported("close is a user command")));
            return Ok(());
        };
        let ready = u.close();
        self.ended = Some("closed by the user".into());
        let gateway = self.ctx.server_peer(0);
        let (Some(peer), [(_, msg)]) = (gateway, ready.send.as_slice()) else {
            // Already ended (aborted, closed): nothing to tell the gateway.
            let _ = port.send(Ok(()));
            return Ok(());
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let out = Outgoing {
            to: peer,
            msg: msg.clone(),
            notify: None,
            delivered: Some(tx),
        };
        if self.ctx.network.cast(NetworkMsg::Send(out)).is_err() {
            let _ = port.send(Err(ActorError::Stopped("network")));
            return Ok(());
        }
        for event in ready.events {
            self.report(event)?;
        }
        tokio::spawn(async move {
            let r = match rx.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(ActorError::LostPeer(format!("Close not delivered: {e}"))),
                Err(_) => Err(ActorError::Stopped("network")),
            };
            let _ = port.send(r);
        });
        Ok(())
    }

    /// User: requests one bundle.
    pub(super) fn preprocess(
        &mut self,
        myself: &ActorRef<SessionMsg>,
        port: RpcReplyPort<Result<BundleId>>,
        now: Instant,
    ) -> Result<()> {
        let MachineKind::User(u) = &mut self.machine else {
            let _ = port.send(Err(ActorError::Unsupported("preprocess is a user command")));
            return Ok(());
        };
        let t = Instant::now();
        let r = u.preprocess();
        self.ctx.stats.cpu(Phase::Prep, t.elapsed());
        match r {
            Ok((bundle, ready)) => {
                self.waiters.wait_prep(bundle, port, now);
                self.apply(myself, ready)
            }
            Err(e) => {
                let _ = port.send(Err(e.into()));
                Ok(())
            }
        }
    }

    /// User: one inference.
    pub(super) fn infer(
        &mut self,
        myself: &ActorRef<SessionMsg>,
        x: &[u64],
        port: RpcReplyPort<Result<(BundleId, Prediction)>>,
        now: Instant,
    ) -> Result<()> {
        let MachineKind::User(u) = &mut self.machine else {
            let _ = port.send(Err(ActorError::Unsupported("infer is a user command")));
            return Ok(());
        };
        let t = Instant::now();
        let r = u.infer(x);
        self.ctx.stats.cpu(Phase::Online, t.elapsed());
        match r {
            Ok((bundle, ready)) => {
                self.waiters.wait_infer(bundle, port, now);
                self.apply(myself, ready)
            }
            Err(e) => {
                let _ = port.send(Err(e.into()));
                Ok(())
            }
        }
    }
}

//! The stage garblings of a bundle in preparation (DESIGN.md s.5, phase 2 step 3). Every stage
//! circuit is split into chunks (`schedule.rs`, `circuits.rs`); every server runs one BMR
//! offline party per chunk, drawn from the session's OT setup (`setup.rs`) with the chunk's
//! own garbling id ([`chunk_id`]), and feeds it the circuit inputs it knows in preprocessing
//! (`bmr/known.rs`). A finished chunk's `bmr::Prepared` is persisted at once as its own record
//! (`Persist::Chunk`), so the bundle's garbled tables are never all in memory.
//!
//! # Window
//! Chunks are started in one order at every server: stage by stage, chunk by chunk (the
//! bundle's cursor). A server starts the next chunk from its cursor only while fewer than
//! [`CHUNK_WINDOW`] chunk garblings of the bundle run at it, and starts the next one when one
//! completes. A message for a chunk the server has not started yet starts it at once (its
//! sender has started it, so refusing or buffering would only stall the peer): the window is
//! soft. A chunk runs at a server only if some server started it from its own cursor, which
//! every server moves only while fewer than `CHUNK_WINDOW` chunks run at it; so in flight at a
//! server are at most `CHUNK_WINDOW` chunks of its own plus chunks that a peer's window
//! reached and this server has not finished yet (a garbler finishes a chunk one round after
//! every party took part in it). In-progress garbling state is held only for those chunks.

use super::super::error::{Result, SecoError};
use super::super::ids::{BundleId, Party};
use super::super::io::{Persist, Ready};
use super::super::msg::{Body, Bytes};
use super::super::schedule::{chunk_id, CHUNK_WINDOW};
use super::ServerSession;
use crate::bmr::{BmrMsg, OfflineParty};

/// One chunk garbling in progress at this server.
pub(crate) struct ChunkRun {
    /// The BMR offline party.
    pub(super) party: OfflineParty,
    /// Whether this server's offline circuit inputs went to it.
    pub(super) fed: bool,
}

impl ServerSession {
    /// Starts chunk `c` of stage `l` of the bundle (drawn from the session's OT setup: no base
    /// OTs, fresh IKNP extensions for this garbling id, which a setup hands out once).
    fn start_chunk(&mut self, bundle: BundleId, l: usize, c: u32) -> Result<Ready> {
        let sched = self.sched.clone();
        let chunk = sched.chunk(l as u16, c)?;
        let cfg = chunk.bmr_config(chunk_id(&bundle.0, l as u16, c));
        let setup = self
            .ot
            .as_mut()
            .ok_or_else(|| SecoError::NotReady("no OT setup".into()))?
            .pairwise_mut()?;
        let (party, out) = match OfflineParty::with_setup(
            &mut self.rng,
            cfg,
            chunk.program.clone(),
            self.me,
            setup,
        ) {
            Ok(r) => r,
            // The session offset garbled its limit (`bmr::MAX_AND_PER_OFFSET`): the
            // session ends; the user's next session sets up a new offset.
            Err(e @ crate::bmr::BmrError::OffsetExhausted { .. }) => {
                return Ok(self.abort(None, &e.to_string()))
            }
            Err(e) => return Err(e.into()),
        };
        let prep = self.prep_of(bundle)?;
        prep.stages[l]
            .running
            .insert(c, ChunkRun { party, fed: false });
        prep.running += 1;
        let mut ready = Ready::default();
        self.send_bmr(&mut ready, bundle, (l as u16, c), out, false);
        ready.extend(self.feed_chunk(bundle, l, c)?);
        Ok(ready)
    }

    /// Starts chunks from the bundle's cursor while fewer than [`CHUNK_WINDOW`] run here.
    pub(super) fn fill_window(&mut self, bundle: BundleId) -> Result<Ready> {
        let mut ready = Ready::default();
        loop {
            let Some(prep) = self.preps.get_mut(&bundle) else {
                return Ok(ready);
            };
            if prep.running >= CHUNK_WINDOW {
                return Ok(ready);
            }
            let (l, c) = prep.cursor;
            let Some(st) = prep.stages.get(l) else {
                return Ok(ready);
            };
            if c as usize >= st.finished.len() {
                prep.cursor = (l + 1, 0);
                continue;
            }
            prep.cursor = (l, c + 1);
            if !st.finished[c as usize] && !st.running.contains_key(&c) {
                ready.extend(self.start_chunk(bundle, l, c)?);
            }
        }
    }

    /// Gives chunk `c` of stage `l` this server's inputs known in preprocessing: its XOR
    /// shares of the stage's input words (unless it owns the stage) and of the stage's output
    /// mask (unless it receives the output), sampled at the bundle's start (`masks.rs`). Only
    /// the owner's `y` (its `z`) remains for the online phase
    /// (`StageCircuitSpec::known_offline`, `bmr/known.rs`).
    fn feed_chunk(&mut self, bundle: BundleId, l: usize, c: u32) -> Result<Ready> {
        let sched = self.sched.clone();
        let (Some(gc), owner) = (&sched.stages[l].gc, sched.stages[l].owner) else {
            return Ok(Ready::default());
        };
        let chunk = sched.chunk(l as u16, c)?;
        let Some(st) = self.preps.get_mut(&bundle).map(|p| &mut p.stages[l]) else {
            return Ok(Ready::default());
        };
        let zeros;
        let y = match (&st.ybits, self.me == owner) {
            (_, true) => {
                zeros = vec![0; gc.spec.y_len];
                &zeros
            }
            (Some(b), false) => b,
            (None, false) => return Ok(Ready::default()),
        };
        let none = Vec::new();
        let r = match (&st.rbits, self.me == gc.receiver) {
            (_, true) => &none,
            (Some(b), false) => b,
            (None, false) => return Ok(Ready::default()),
        };
        let Some(run) = st.running.get_mut(&c) else {
            return Ok(Ready::default());
        };
        if run.fed {
            return Ok(Ready::default());
        }
        let bits = chunk.spec.encode_inputs(self.me, y, r)?;
        let (known, _) = chunk.bmr.split_own_inputs(self.me, &bits)?;
        let out = run.party.provide_inputs(&known)?;
        run.fed = true;
        self.bmr_sent(bundle, l, c, out)
    }

    /// After a step of chunk `c` of stage `l`: keep its result once done, send, start the
    /// next chunk, maybe complete the bundle.
    fn bmr_sent(
        &mut self,
        bundle: BundleId,
        l: usize,
        c: u32,
        out: Vec<crate::bmr::Outgoing>,
    ) -> Result<Ready> {
        let mut ready = Ready::default();
        let mut finished = false;
        if let Some(prep) = self.preps.get_mut(&bundle) {
            let st = &mut prep.stages[l];
            if st.running.get(&c).is_some_and(|r| r.party.is_done()) {
                if let Some(run) = st.running.remove(&c) {
                    let mut prepared = run.party.into_prepared()?;
                    // The session offset is kept once, in the session record.
                    prepared.strip_offset();
                    let bytes = prepared.to_record();
                    // Stored at once, on its own: the tables leave memory chunk by chunk.
                    ready.persist.push(Persist::Chunk {
                        bundle,
                        stage: l as u16,
                        chunk: c,
                        bytes,
                    });
                    if let Some(slot) = st.finished.get_mut(c as usize) {
                        *slot = true;
                    }
                    prep.running -= 1;
                    finished = true;
                }
            }
        }
        self.send_bmr(&mut ready, bundle, (l as u16, c), out, false);
        if finished {
            ready.extend(self.fill_window(bundle)?);
            ready.extend(self.try_complete(bundle)?);
        }
        Ok(ready)
    }

    pub(super) fn send_bmr(
        &mut self,
        ready: &mut Ready,
        bundle: BundleId,
        (stage, chunk): (u16, u32),
        out: Vec<crate::bmr::Outgoing>,
        online: bool,
    ) {
        for (to, msg) in out {
            let mut bytes = Vec::new();
            let _ = ciborium::into_writer(&msg, &mut bytes);
            let msg = Bytes::from(bytes);
            let body = if online {
                Body::BmrOnline {
                    bundle,
                    stage,
                    chunk,
                    msg,
                }
            } else {
                Body::BmrOffline {
                    bundle,
                    stage,
                    chunk,
                    msg,
                }
            };
            self.send(ready, Party::Server(to as u16), body);
        }
    }

    pub(super) fn on_bmr_offline(
        &mut self,
        from: Party,
        bundle: BundleId,
        (stage, chunk): (u16, u32),
        msg: &[u8],
    ) -> Result<Ready> {
        let sender = Self::expect_server(from, "BmrOffline")?;
        self.sched.chunk(stage, chunk)?;
        let msg: BmrMsg = ciborium::from_reader(msg)
            .map_err(|e| SecoError::Decode(format!("BMR message: {e}")))?;
        if msg.session != chunk_id(&bundle.0, stage, chunk) {
            // Checked before a chunk is joined: a message of another garbling starts nothing.
            return Err(crate::bmr::BmrError::WrongSession.into());
        }
        let mut ready = self.prep_mut(bundle)?;
        let l = usize::from(stage);
        let st = &self.prep_of(bundle)?.stages[l];
        if st.finished.get(chunk as usize).copied().unwrap_or(true) {
            return Err(SecoError::NotReady(format!(
                "stage {stage} chunk {chunk} is done"
            )));
        }
        if !st.running.contains_key(&chunk) {
            // Its sender started it: join (the soft part of the window).
            ready.extend(self.start_chunk(bundle, l, chunk)?);
        }
        let Some(run) = self
            .preps
            .get_mut(&bundle)
            .and_then(|p| p.stages[l].running.get_mut(&chunk))
        else {
            // Finished while starting (cannot happen with a message still to handle).
            return Ok(ready);
        };
        let out = match run.party.handle(sender, msg) {
            Ok(out) => out,
            // A garbling drawn across a restart cannot complete: abort the bundle now rather
            // than let it run into the preprocessing deadline.
            Err(e @ crate::bmr::BmrError::PairMismatch { .. }) => {
                ready.extend(self.abort(Some(bundle), &e.to_string()));
                return Ok(ready);
            }
            Err(e) => return Err(e.into()),
        };
        ready.extend(self.bmr_sent(bundle, l, chunk, out)?);
        Ok(ready)
    }
}

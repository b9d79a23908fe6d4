//! Phase 3, the stage circuits of one inference at one server: every chunk of a stage runs as
//! its own BMR online party (`docs/protocol.md`, "Chunks").
//!
//! ```text
//! bundle loaded   take the first stage's chunk records from the store (Ready::take_chunks)
//! Input::Chunks   decode them (bmr::Prepared), kept until the stage starts
//! stage starts    chunks decoded and this server's y known, and: it owns the stage, or the
//!                 stage is the first, or the previous one is done here, or a peer's message
//!                 for it arrived; one OnlineParty per chunk, all at once; early messages
//!                 replayed; the next stage's chunk records are taken now (prefetch)
//! chunk done      receiver keeps its decoded outputs; when all chunks are done it assembles
//!                 x_{l+1} - r_{l+1} in chunk order and continues as the next stage's owner
//! last stage      the output circuit: its receiver G takes its masked output as its share
//!                 of the result; the others sent their mask shares as the bundle was taken
//! ```
//! The prefetch takes and decodes a stage's tables while the server waits for the previous
//! stage, off the critical path; at most the running stage and the next one (plus a stage a
//! peer already started) are in memory, never the whole bundle.

use super::super::error::{Result, SecoError};
use super::super::ids::{BundleId, Party};
use super::super::io::{ChunkTake, Ready};
use super::super::msg::{Body, Bytes};
use super::super::schedule::{chunk_id, Schedule};
use super::online::{Online, MAX_BUFFERED};
use super::ServerSession;
use crate::bmr::{BmrMsg, OnlineParty, Prepared};
use rayon::prelude::*;

/// Whether stage `l` of the bundle's inference has not started at this server.
fn run_parties_empty(s: &ServerSession, bundle: BundleId, l: usize) -> bool {
    matches!(s.onlines.get(&bundle), Some(Online::Running(run)) if run.parties[l].is_empty())
}

/// Most messages held for one inference before its bundle is loaded (`None`) or for one stage
/// before its chunks are: [`MAX_BUFFERED`] plus four per chunk and server.
fn buffer_bound(sched: &Schedule, stage: Option<usize>) -> usize {
    let chunks = |l: usize| sched.stages[l].gc.as_ref().map_or(0, |g| g.chunks.len());
    let total = match stage {
        Some(l) => chunks(l),
        None => (0..sched.len()).map(chunks).sum(),
    };
    MAX_BUFFERED.saturating_add(total.saturating_mul(4 * sched.n))
}

impl ServerSession {
    pub(super) fn on_bmr_online(
        &mut self,
        sender: usize,
        bundle: BundleId,
        (stage, chunk): (u16, u32),
        msg: BmrMsg,
    ) -> Result<Ready> {
        let l = usize::from(stage);
        self.sched.chunk(stage, chunk)?;
        if msg.session != chunk_id(&bundle.0, stage, chunk) {
            return Err(crate::bmr::BmrError::WrongSession.into());
        }
        let mut ready = self.online_mut(bundle)?;
        match self.onlines.get_mut(&bundle) {
            Some(Online::Loading { buffered, .. }) => {
                let limit = buffer_bound(&self.sched, None);
                if buffered.len() >= limit {
                    return Err(SecoError::TooManyBundles { limit });
                }
                let mut bytes = Vec::new();
                let _ = ciborium::into_writer(&msg, &mut bytes);
                buffered.push((
                    Party::Server(sender as u16),
                    Body::BmrOnline {
                        bundle,
                        stage,
                        chunk,
                        msg: Bytes::from(bytes),
                    },
                ));
            }
            Some(Online::Running(run)) if run.parties[l].is_empty() => {
                let limit = buffer_bound(&self.sched, Some(l));
                if run.early[l].len() >= limit {
                    return Err(SecoError::TooManyBundles { limit });
                }
                run.early[l].push((chunk, sender, msg));
                ready.extend(self.request_chunks(bundle, l));
                ready.extend(self.maybe_start(bundle, l)?);
            }
            Some(Online::Running(run)) => {
                let party = run.parties[l]
                    .get_mut(chunk as usize)
                    .and_then(Option::as_mut)
                    .ok_or(SecoError::NotReady(format!(
                        "stage {stage} chunk {chunk} is done"
                    )))?;
                let out = party.handle(sender, msg)?;
                self.send_bmr(&mut ready, bundle, (stage, chunk), out, true);
                ready.extend(self.after_bmr(bundle, l, chunk)?);
            }
            None => {
                return Err(SecoError::Bundle {
                    bundle,
                    reason: "no inference running".into(),
                })
            }
        }
        Ok(ready)
    }

    /// This server's share `y` of stage `l`'s linear output is known: start the stage once
    /// its chunks are loaded ([`Self::maybe_start`]; the owner asks for them now if the
    /// prefetch has not); the last stage's circuit is the output circuit.
    pub(super) fn stage_input(
        &mut self,
        bundle: BundleId,
        l: usize,
        y: Vec<u64>,
        now: bool,
    ) -> Result<Ready> {
        if self.sched.stages[l].gc.is_none() {
            return Err(SecoError::NotReady(format!(
                "stage {l} has no circuit (no output mode set)"
            )));
        }
        match self.onlines.get_mut(&bundle) {
            Some(Online::Running(run)) if run.inputs[l].is_none() && run.parties[l].is_empty() => {
                run.inputs[l] = Some(y);
            }
            _ => {
                return Err(SecoError::Bundle {
                    bundle,
                    reason: format!("stage {l} started twice"),
                })
            }
        }
        let mut ready = Ready::default();
        if now {
            ready.extend(self.request_chunks(bundle, l));
        }
        ready.extend(self.maybe_start(bundle, l)?);
        Ok(ready)
    }

    /// The first stage with a circuit.
    pub(super) fn first_circuit(&self) -> Option<usize> {
        self.sched.stages.iter().position(|s| s.gc.is_some())
    }

    /// Asks the driver for stage `l`'s chunk garblings (once).
    pub(super) fn request_chunks(&mut self, bundle: BundleId, l: usize) -> Ready {
        let mut ready = Ready::default();
        let Some(gc) = &self.sched.stages[l].gc else {
            return ready;
        };
        if let Some(Online::Running(run)) = self.onlines.get_mut(&bundle) {
            if !run.requested[l] {
                run.requested[l] = true;
                ready.take_chunks.push(ChunkTake {
                    bundle,
                    stage: l as u16,
                    chunks: gc.chunks.len() as u32,
                });
            }
        }
        ready
    }

    /// The driver took stage `stage`'s chunk garblings from the store: decode them and keep
    /// them until the stage starts.
    pub(super) fn on_chunks(
        &mut self,
        bundle: BundleId,
        stage: u16,
        stored: Vec<Option<Vec<u8>>>,
    ) -> Result<Ready> {
        let l = usize::from(stage);
        let sched = self.sched.clone();
        let gc = sched.stage(stage)?.gc.as_ref().ok_or(SecoError::Length {
            what: "stage with a circuit",
            expected: sched.len() - 1,
            actual: l,
        })?;
        let asked = match self.onlines.get(&bundle) {
            Some(Online::Running(run)) => run.requested[l] && run.loaded[l].is_none(),
            _ => false,
        };
        if !asked || !run_parties_empty(self, bundle, l) {
            return Err(SecoError::Bundle {
                bundle,
                reason: format!("chunks of stage {l} not asked for"),
            });
        }
        if stored.len() != gc.chunks.len() || stored.iter().any(Option::is_none) {
            return Ok(self.abort(Some(bundle), "a stored chunk garbling is missing"));
        }
        let Some(offset) = self.offset else {
            return Ok(self.abort(Some(bundle), "no session offset"));
        };
        // Each chunk decodes on its own (in parallel on the protocol pool): a large model's
        // first stage is on the online phase's critical path.
        let decoded: Vec<std::result::Result<Prepared, String>> = stored
            .into_par_iter()
            .enumerate()
            .map(|(c, bytes)| {
                let bytes = bytes.unwrap_or_default();
                let mut p = Prepared::from_record(&bytes)
                    .map_err(|e| format!("stored garbling of stage {l} chunk {c}: {e}"))?;
                p.restore_offset(offset);
                Ok(p)
            })
            .collect();
        let mut loaded = Vec::with_capacity(decoded.len());
        for p in decoded {
            match p {
                Ok(p) => loaded.push(p),
                Err(reason) => return Ok(self.abort(Some(bundle), &reason)),
            }
        }
        if let Some(Online::Running(run)) = self.onlines.get_mut(&bundle) {
            run.loaded[l] = Some(loaded);
        }
        self.maybe_start(bundle, l)
    }

    /// Starts stage `l` if it can (module docs): one `OnlineParty` per chunk with this
    /// server's online wires, early messages replayed, the next stage's chunks asked for.
    pub(super) fn maybe_start(&mut self, bundle: BundleId, l: usize) -> Result<Ready> {
        let sched = self.sched.clone();
        let Some(gc) = &sched.stages[l].gc else {
            return Ok(Ready::default());
        };
        let first = self.first_circuit() == Some(l);
        let owner = sched.stages[l].owner == self.me;
        let Some(Online::Running(run)) = self.onlines.get_mut(&bundle) else {
            return Ok(Ready::default());
        };
        let turn = owner || first || (l > 0 && run.done[l - 1]) || !run.early[l].is_empty();
        if !run.parties[l].is_empty() || run.loaded[l].is_none() || run.inputs[l].is_none() {
            return Ok(Ready::default());
        }
        if !turn {
            return Ok(Ready::default());
        }
        let (Some(loaded), Some(y)) = (run.loaded[l].take(), run.inputs[l].take()) else {
            return Ok(Ready::default());
        };
        let r = self.material(bundle, l)?.r_next.clone().unwrap_or_default();
        if y.len() != gc.spec.y_len || r.len() != gc.spec.r_len {
            return Err(SecoError::Bundle {
                bundle,
                reason: "stored masks have the wrong length".into(),
            });
        }
        let mut ready = Ready::default();
        let me = self.me;
        // The chunks' parties start independently (in parallel on the protocol pool).
        let started: Vec<Result<_>> = gc
            .chunks
            .par_iter()
            .zip(loaded)
            .map(|(chunk, prepared)| {
                // Only the wires whose values arrive online (the owner's z); the others went
                // to the evaluator in preprocessing (`prep.rs`, `bmr/known.rs`).
                let bits = chunk.spec.encode_inputs(me, &y, &r)?;
                let (_, online) = prepared.config.split_own_inputs(me, &bits)?;
                Ok(OnlineParty::with_program(
                    prepared,
                    chunk.split.clone(),
                    &online,
                )?)
            })
            .collect();
        let mut parties = Vec::with_capacity(gc.chunks.len());
        for (c, s) in started.into_iter().enumerate() {
            let (party, out) = s?;
            self.send_bmr(&mut ready, bundle, (l as u16, c as u32), out, true);
            parties.push(Some(party));
        }
        let early = match self.onlines.get_mut(&bundle) {
            Some(Online::Running(run)) => {
                run.parties[l] = parties;
                std::mem::take(&mut run.early[l])
            }
            _ => Vec::new(),
        };
        for (chunk, from, msg) in early {
            ready.extend(self.on_bmr_online(from, bundle, (l as u16, chunk), msg)?);
        }
        for c in 0..gc.chunks.len() {
            ready.extend(self.after_bmr(bundle, l, c as u32)?);
        }
        // Prefetch: the next stage's tables come from the store while this one runs.
        if let Some(next) = (l + 1..sched.len()).find(|&m| sched.stages[m].gc.is_some()) {
            ready.extend(self.request_chunks(bundle, next));
        }
        Ok(ready)
    }

    /// After a BMR step of chunk `c` of stage `l`: a finished chunk is dropped (the receiver
    /// keeps its decoded output); when every chunk of the stage is finished, the receiver
    /// assembles the stage output in order and becomes the next stage's owner input.
    pub(super) fn after_bmr(&mut self, bundle: BundleId, l: usize, c: u32) -> Result<Ready> {
        let sched = self.sched.clone();
        let Some(gc) = &sched.stages[l].gc else {
            return Ok(Ready::default());
        };
        let Some(Online::Running(run)) = self.onlines.get_mut(&bundle) else {
            return Ok(Ready::default());
        };
        let Some(slot) = run.parties[l].get_mut(c as usize) else {
            return Ok(Ready::default());
        };
        if !slot.as_ref().is_some_and(OnlineParty::is_done) {
            return Ok(Ready::default());
        }
        let output = slot
            .take()
            .and_then(|p| p.output().map(<[bool]>::to_vec))
            .unwrap_or_default();
        run.chunks_done[l] += 1;
        if gc.receiver == self.me {
            let chunk = &gc.chunks[c as usize];
            run.outputs[l][c as usize] = Some(chunk.spec.decode_outputs(&output));
        }
        if run.chunks_done[l] < gc.chunks.len() || run.done[l] {
            return Ok(Ready::default());
        }
        run.done[l] = true;
        let outputs = std::mem::take(&mut run.outputs[l]);
        let next = (l + 1..sched.len()).find(|&m| sched.stages[m].gc.is_some());
        let mut ready = Ready::default();
        if sched.is_last(l) {
            ready.extend(self.output_share(bundle, l, outputs)?);
        } else if gc.receiver == self.me {
            let fp = self.sched.fp;
            let w: Vec<u64> = outputs.into_iter().flatten().flatten().collect();
            if w.len() != gc.spec.r_len {
                return Err(SecoError::Bundle {
                    bundle,
                    reason: format!("stage {l}: {} outputs of {}", w.len(), gc.spec.r_len),
                });
            }
            let r = self.material(bundle, l)?.r_next.clone().unwrap_or_default();
            // The receiver's own mask share was left out of the circuit.
            let v: Vec<u64> = w.iter().zip(&r).map(|(&a, &b)| fp.sub(a, b)).collect();
            ready.extend(self.owner_input(bundle, l + 1, v)?);
        }
        if let Some(m) = next {
            ready.extend(self.maybe_start(bundle, m)?);
        }
        ready.extend(self.maybe_finish(bundle));
        Ok(ready)
    }

    /// The output circuit (last stage `l`) is done: this server's share of the result, to the
    /// gateway under the user's key. The receiver's is its masked output `v - sum_{p != it}
    /// r_p`, every other server's its mask share `r_p` (kept from preprocessing): they sum to
    /// the truncated logits, or to the label.
    fn output_share(
        &mut self,
        bundle: BundleId,
        l: usize,
        outputs: Vec<Option<Vec<u64>>>,
    ) -> Result<Ready> {
        let receiver = self.sched.stage(l as u16)?.gc.as_ref().map(|g| g.receiver) == Some(self.me);
        let sent =
            matches!(self.onlines.get(&bundle), Some(Online::Running(run)) if run.result_sent);
        if sent {
            // Sent as the bundle was taken (`online.rs`, `on_loaded`).
            return Ok(self.maybe_finish(bundle));
        }
        if !receiver {
            // Encrypted in preprocessing (bundles written before 2026-12-05: below).
            let pre = match self.onlines.get_mut(&bundle) {
                Some(Online::Running(run)) => run.bundle.result_share.take(),
                _ => None,
            };
            if let Some(bytes) = pre {
                return self.send_result_bytes(bundle, bytes);
            }
        }
        let r = self.material(bundle, l)?.r_next.clone().unwrap_or_default();
        let len = self.sched.output_len();
        let share: Vec<u64> = if receiver {
            outputs.into_iter().flatten().flatten().collect()
        } else {
            r
        };
        if share.len() != len {
            return Err(SecoError::Bundle {
                bundle,
                reason: format!("result share of {} values, expected {len}", share.len()),
            });
        }
        self.send_result_share(bundle, &share)
    }
}

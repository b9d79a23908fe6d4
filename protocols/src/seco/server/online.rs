//! Phase 3, one inference at one server (DESIGN.md s.5, phase 3).
//!
//! ```text
//! G -> R_i       OnlineStart: every server takes its bundle from the store (durably)
//! non-owners     of stage l: BMR online with no inputs of their own (u_l^(i), r_{l+1}^(i)
//!                went to the evaluator in preprocessing); they send their keys of z's wires
//! O(l), given    x_l - r_l: z = W_l (x_l - r_l) + b_l + s_l + u_l^(O)   (in the clear)
//!                then BMR online with input z (its r_{l+1}^(O) went offline too)
//! evaluator      the receiver O(l+1): evaluates, learns x_{l+1} - r_{l+1} (minus its own share)
//!                and goes on as the owner of stage l+1 in the same step
//!                every stage circuit runs as its chunks (one BMR online party each, all at
//!                once); the receiver assembles the stage output from them in order
//! last stage     the output circuit (truncated logits or the label, masked), evaluated by its
//!                receiver G, which encrypts its masked output under the user's key and adds
//!                the other servers' shares (ResultShare, encrypted in preprocessing and sent
//!                as the bundle is taken; bundles without one encrypt it when the stage ends)
//! ```
//! Shares: `sum_i z^(i) = W x + b` because `sum_i u^(i) = W r - s`. The stage circuits'
//! chunks (loading, BMR online parties, assembling the output) are in `stages.rs`.

use super::super::bundle::ServerBundle;
use super::super::error::{Result, SecoError};
use super::super::ids::{BundleId, Party};
use super::super::io::{ChunkTake, Event, Ready};
use super::super::msg::{unpack_ring, Body, Bytes};
use super::{ServerSession, State, MAX_IN_FLIGHT};
use crate::bmr::{BmrMsg, OnlineParty};

/// Messages held while the bundle is loading (bounded).
pub(super) const MAX_BUFFERED: usize = 4096;

/// One inference at this server.
pub(crate) enum Online {
    /// Waiting for the bundle from the store.
    Loading {
        /// Messages that arrived meanwhile.
        buffered: Vec<(Party, Body)>,
        /// Owner of stage 0: the masked input, if it came first.
        masked0: Option<Vec<u64>>,
        /// The gateway's `OnlineStart` arrived (at remotes; a peer's message may come first).
        started: bool,
    },
    /// Bundle in hand.
    Running(Box<Run>),
}

pub(crate) struct Run {
    pub(super) bundle: ServerBundle,
    /// The BMR online party of each chunk of each stage: empty until the stage's inputs are
    /// known, then one per chunk (all at once), `None` once that chunk is finished.
    pub(super) parties: Vec<Vec<Option<OnlineParty>>>,
    /// BMR messages `(chunk, sender, msg)` for a stage whose chunks have not started yet.
    pub(super) early: Vec<Vec<(u32, usize, BmrMsg)>>,
    /// This server's share `y` of a stage's linear output until its chunks are loaded.
    pub(super) inputs: Vec<Option<Vec<u64>>>,
    /// Stages whose chunk garblings were asked from the store.
    pub(super) requested: Vec<bool>,
    /// A stage's chunk garblings, taken and decoded, until the stage starts.
    pub(super) loaded: Vec<Option<Vec<crate::bmr::Prepared>>>,
    /// Receiver: each chunk's decoded output, assembled in order when all are in.
    pub(super) outputs: Vec<Vec<Option<Vec<u64>>>>,
    /// Chunks finished per stage.
    pub(super) chunks_done: Vec<usize>,
    /// Stages whose circuit is finished at this server.
    pub(super) done: Vec<bool>,
    pub(super) result_sent: bool,
    /// The gateway's `OnlineStart` arrived (always true at the gateway).
    pub(super) started: bool,
}

/// The shares it holds are zeroized on drop (the bundle and the BMR parties wipe themselves).
impl Drop for Run {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.inputs);
        zeroize::Zeroize::zeroize(&mut self.outputs);
    }
}

impl ServerSession {
    pub(super) fn on_online(&mut self, from: Party, body: Body) -> Result<Ready> {
        // A resumed server serves its stored bundles while it redoes the OT setup: the online
        // phase uses no OT (every garbling's material is in the bundles), and its peers,
        // which may not know of the restart yet, go on with inferences meanwhile.
        let resuming = self.resumed && matches!(self.state, State::AwaitSetup);
        if !matches!(self.state, State::Ready) && !resuming {
            return Err(self.wrong_phase(&body));
        }
        let g = Party::GATEWAY;
        match body {
            Body::Infer {
                bundle,
                masked_input,
            } if self.is_gateway() => {
                self.expect_from(from, "Infer", &[Party::User])?;
                self.on_infer(bundle, masked_input)
            }
            Body::OnlineStart { bundle } if !self.is_gateway() => {
                self.expect_from(from, "OnlineStart", &[g])?;
                if self.finished_unstarted.remove(&bundle) {
                    // Peers' messages started and finished it here already.
                    return Ok(Ready::default());
                }
                let ready = self.online_mut(bundle)?;
                match self.onlines.get_mut(&bundle) {
                    Some(Online::Loading { started, .. }) => *started = true,
                    Some(Online::Running(run)) => run.started = true,
                    None => {}
                }
                Ok(ready)
            }
            Body::MaskedInput { bundle, values } if self.sched.stages[0].owner == self.me => {
                self.expect_from(from, "MaskedInput", &[g])?;
                let len = self.sched.stages[0].spec.linear.in_len();
                let values = unpack_ring(&values, self.sched.fp.ring_bits, len)?;
                self.online_masked_input(bundle, values)
            }
            Body::BmrOnline {
                bundle,
                stage,
                chunk,
                msg,
            } => {
                let sender = from
                    .server()
                    .ok_or_else(|| self.wrong_phase(&Body::OnlineStart { bundle }))?;
                self.sched.chunk(stage, chunk)?;
                let msg: BmrMsg = ciborium::from_reader(msg.as_slice())
                    .map_err(|e| SecoError::Decode(format!("BMR message: {e}")))?;
                self.on_bmr_online(sender, bundle, (stage, chunk), msg)
            }
            Body::ResultShare { bundle, cts } if self.is_gateway() => {
                let i = from
                    .server()
                    .ok_or_else(|| self.wrong_phase(&Body::OnlineStart { bundle }))?;
                self.on_result_share(i, bundle, &cts)
            }
            other => Err(self.wrong_phase(&other)),
        }
    }

    /// The inference of `bundle`, started on first sight: asks the driver to take the bundle.
    pub(super) fn online_mut(&mut self, bundle: BundleId) -> Result<Ready> {
        let mut ready = Ready::default();
        if self.onlines.contains_key(&bundle) {
            return Ok(ready);
        }
        if self.used.contains(&bundle) {
            return Err(SecoError::Bundle {
                bundle,
                reason: "already used".into(),
            });
        }
        if self.onlines.len() >= MAX_IN_FLIGHT {
            return Err(SecoError::TooManyBundles {
                limit: MAX_IN_FLIGHT,
            });
        }
        self.used.insert(bundle);
        self.onlines.insert(
            bundle,
            Online::Loading {
                buffered: Vec::new(),
                masked0: None,
                started: self.is_gateway(),
            },
        );
        ready.take.push(bundle);
        // The first stage's chunk records in the same durable take (one flush).
        if let Some(l) = self.first_circuit() {
            if let Some(gc) = &self.sched.stages[l].gc {
                ready.take_chunks.push(ChunkTake {
                    bundle,
                    stage: l as u16,
                    chunks: gc.chunks.len() as u32,
                });
            }
        }
        Ok(ready)
    }

    /// Owner of stage 0: `x - r_1`.
    pub(super) fn online_masked_input(
        &mut self,
        bundle: BundleId,
        values: Vec<u64>,
    ) -> Result<Ready> {
        let mut ready = self.online_mut(bundle)?;
        match self.onlines.get_mut(&bundle) {
            Some(Online::Loading { masked0, .. }) => {
                if masked0.replace(values).is_some() {
                    return Err(SecoError::Bundle {
                        bundle,
                        reason: "second masked input".into(),
                    });
                }
            }
            Some(Online::Running(_)) => ready.extend(self.owner_input(bundle, 0, values)?),
            None => {
                return Err(SecoError::Bundle {
                    bundle,
                    reason: "no inference running".into(),
                })
            }
        }
        Ok(ready)
    }

    /// The driver took the bundle from the store.
    pub(super) fn on_loaded(&mut self, bundle: BundleId, bytes: Option<Vec<u8>>) -> Result<Ready> {
        let Some(Online::Loading {
            buffered,
            masked0,
            started,
        }) = self.onlines.remove(&bundle)
        else {
            return Err(SecoError::Bundle {
                bundle,
                reason: "not waiting for this bundle".into(),
            });
        };
        let Some(bytes) = bytes else {
            return Ok(self.abort(Some(bundle), "bundle unknown or already used at a server"));
        };
        let record =
            match ServerBundle::from_bytes(&bytes, self.cfg.session, bundle, self.me as u16) {
                Ok(r) if r.stages.len() == self.sched.len() => r,
                Ok(_) => {
                    return Ok(
                        self.abort(Some(bundle), "stored bundle has the wrong number of stages")
                    )
                }
                Err(e) => return Ok(self.abort(Some(bundle), &e.to_string())),
            };
        let n = self.sched.len();
        let chunks = |l: usize| {
            self.sched.stages[l]
                .gc
                .as_ref()
                .map_or(0, |g| g.chunks.len())
        };
        if (0..n).any(|l| record.stages[l].chunks as usize != chunks(l)) {
            return Ok(self.abort(Some(bundle), "stored bundle has the wrong number of chunks"));
        }
        let run = Run {
            bundle: record,
            parties: (0..n).map(|_| Vec::new()).collect(),
            early: (0..n).map(|_| Vec::new()).collect(),
            inputs: vec![None; n],
            requested: vec![false; n],
            loaded: (0..n).map(|_| None).collect(),
            outputs: (0..n).map(|l| vec![None; chunks(l)]).collect(),
            chunks_done: vec![0; n],
            done: self.sched.stages.iter().map(|s| s.gc.is_none()).collect(),
            result_sent: false,
            started,
        };
        self.onlines.insert(bundle, Online::Running(Box::new(run)));
        let mut ready = Ready::default();
        // Every server takes part in every stage circuit: the first stage's tables were taken
        // with the bundle (`online_mut`) and come next.
        if let Some(Online::Running(run)) = self.onlines.get_mut(&bundle) {
            if let Some(l) = (0..n).find(|&l| self.sched.stages[l].gc.is_some()) {
                run.requested[l] = true;
            }
        }
        for l in 0..n {
            if self.sched.stages[l].owner != self.me {
                let u = self.material(bundle, l)?.u.clone();
                ready.extend(self.stage_input(bundle, l, u, false)?);
            }
        }
        // Every server but the output circuit's receiver (the gateway) encrypted its share of
        // the result in preprocessing: it goes to the gateway now, off the critical path, so
        // that the result leaves as soon as the gateway has evaluated the output circuit.
        let early = match self.onlines.get_mut(&bundle) {
            Some(Online::Running(run)) => run.bundle.result_share.take(),
            _ => None,
        };
        if let Some(bytes) = early {
            ready.extend(self.send_result_bytes(bundle, bytes)?);
        }
        if let Some(v) = masked0 {
            ready.extend(self.owner_input(bundle, 0, v)?);
        }
        for (from, body) in buffered {
            ready.extend(self.on_online(from, body)?);
        }
        Ok(ready)
    }

    pub(super) fn material(
        &self,
        bundle: BundleId,
        l: usize,
    ) -> Result<&super::super::bundle::StageMaterial> {
        match self.onlines.get(&bundle) {
            Some(Online::Running(run)) => run.bundle.stages.get(l).ok_or(SecoError::Length {
                what: "stage",
                expected: self.sched.len(),
                actual: l,
            }),
            _ => Err(SecoError::Bundle {
                bundle,
                reason: "not loaded".into(),
            }),
        }
    }

    /// Owner of stage `l` with `v = x_l - r_l`: its share `z` of `W x + b`. One masked input
    /// per stage and inference: a second is refused before anything is computed with it.
    pub(super) fn owner_input(&mut self, bundle: BundleId, l: usize, v: Vec<u64>) -> Result<Ready> {
        let started = match self.onlines.get(&bundle) {
            Some(Online::Running(run)) => run.inputs[l].is_some() || !run.parties[l].is_empty(),
            _ => false,
        };
        if started {
            return Err(SecoError::Bundle {
                bundle,
                reason: format!("second masked input for stage {l}"),
            });
        }
        let st = &self.sched.stages[l];
        if v.len() != st.spec.linear.in_len() {
            return Err(SecoError::Length {
                what: "masked input",
                expected: st.spec.linear.in_len(),
                actual: v.len(),
            });
        }
        let fp = self.sched.fp;
        let op = self
            .cfg
            .part
            .owned
            .iter()
            .find(|(s, _)| *s == l)
            .map(|(_, op)| op.clone())
            .ok_or(SecoError::NotReady(format!("stage {l} is not owned here")))?;
        let m = self.material(bundle, l)?;
        let s = m.s.clone().ok_or(SecoError::Bundle {
            bundle,
            reason: "owner's mask missing".into(),
        })?;
        if m.u.len() != st.y_len || s.len() != st.y_len {
            return Err(SecoError::Bundle {
                bundle,
                reason: "stored shares have the wrong length".into(),
            });
        }
        let wx = op.apply_ring(fp, &v, true);
        let z: Vec<u64> = wx
            .iter()
            .zip(&s)
            .zip(&m.u)
            .map(|((&a, &b), &c)| fp.add(fp.add(a, b), c))
            .collect();
        self.stage_input(bundle, l, z, true)
    }

    /// This server's share `y` of the result, encrypted under the user's key.
    pub(super) fn encrypt_for_user(&mut self, y: &[u64]) -> Result<Vec<Bytes>> {
        let user_pk = self
            .user_pk
            .clone()
            .ok_or(SecoError::NotReady("no user key".into()))?;
        let layout = self.result_layout()?;
        let cts = layout.encrypt(&user_pk, y, &mut self.rng)?;
        Ok(cts.iter().map(|c| Bytes::from(c.to_bytes())).collect())
    }

    /// Preprocessing, as a bundle completes: every server but the output circuit's receiver
    /// knows its share of the result already (its mask share), so it encrypts it now and the
    /// online phase only sends it (`None` at the receiver).
    pub(super) fn encrypt_result_share(
        &mut self,
        stages: &[super::super::bundle::StageMaterial],
    ) -> Result<Option<Vec<Bytes>>> {
        let last = self.sched.len().saturating_sub(1);
        let receiver = self
            .sched
            .stage(last as u16)?
            .gc
            .as_ref()
            .map(|g| g.receiver);
        if receiver == Some(self.me) {
            return Ok(None);
        }
        let r = stages
            .get(last)
            .and_then(|m| m.r_next.clone())
            .unwrap_or_default();
        if r.len() != self.sched.output_len() {
            return Ok(None);
        }
        Ok(Some(self.encrypt_for_user(&r)?))
    }

    /// Last stage: this server's share of the logits, encrypted under the user's key, to G.
    pub(super) fn send_result_share(&mut self, bundle: BundleId, y: &[u64]) -> Result<Ready> {
        let bytes = self.encrypt_for_user(y)?;
        self.send_result_bytes(bundle, bytes)
    }

    /// Sends this server's encrypted share of the result to G (or takes it, at G).
    pub(super) fn send_result_bytes(
        &mut self,
        bundle: BundleId,
        bytes: Vec<Bytes>,
    ) -> Result<Ready> {
        if let Some(Online::Running(run)) = self.onlines.get_mut(&bundle) {
            run.result_sent = true;
        }
        let mut ready = if self.is_gateway() {
            self.on_result_share(0, bundle, &bytes)?
        } else {
            let mut r = Ready::default();
            self.send(
                &mut r,
                Party::GATEWAY,
                Body::ResultShare { bundle, cts: bytes },
            );
            r
        };
        ready.extend(self.maybe_finish(bundle));
        Ok(ready)
    }

    pub(super) fn maybe_finish(&mut self, bundle: BundleId) -> Ready {
        let mut ready = Ready::default();
        if let Some(Online::Running(run)) = self.onlines.get(&bundle) {
            if run.result_sent && run.done.iter().all(|&d| d) {
                if !run.started {
                    self.finished_unstarted.insert(bundle);
                }
                self.onlines.remove(&bundle);
                if !self.is_gateway() {
                    ready.events.push(Event::InferenceDone(bundle));
                }
            }
        }
        ready
    }
}

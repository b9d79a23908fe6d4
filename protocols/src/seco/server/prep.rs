//! Phase 2, preprocessing of one bundle (DESIGN.md s.5, phase 2), at one server.
//!
//! ```text
//! every server, at start:  XOR shares of every stage circuit's words, converted into
//!                          additive shares (`masks.rs`, MaskBits); its mask shares
//!                          r_l^(i) (O(l): random) as they are; Enc(r_l^(i)) -> O(l)  (MaskShare)
//!                          for every chunk of every circuit, at most a window at once
//!                          (`garble.rs`): BMR offline party drawn from the session's OT
//!                          setup (`setup.rs`)                        (BmrOffline rounds 2-5)
//! O(0):                    Enc(r_1) from the user (via G, InputMask)
//! O(l), all masks in:      Enc(W_l r_l - s_l) = eval(sum Enc(r_l^(i)))     (s_l fresh, kept)
//!                          E2sRequest -> others; others answer E2sShare with their converted
//!                          share u_l^(i) as output share (waiting for it if need be)
//! O(l), all shares in:     its own u_l^(O)
//! inputs known here:       the XOR shares, from the start, go to the garbling at once
//!                          (bmr/known.rs); only O(l)'s z is left for online
//! last stage:              its output circuit's mask shares stay here (this server's share
//!                          of the result; the receiver's is its masked output, `stages.rs`)
//! bundle complete:         persist it, then PrepDone -> G; G: BundleReady -> U when all done
//! ```
//! Private inputs: the owner's weights and `s_l`, every server's key share and mask shares.
//! Nothing here depends on the user's input.

use std::collections::BTreeMap;

use rand::Rng;

use super::super::bundle::{ServerBundle, StageMaterial, BUNDLE_VERSION};
use super::super::error::{Result, SecoError};
use super::super::ids::{BundleId, Party};
use super::super::io::{Event, Persist, Ready};
use super::super::msg::{Body, Bytes};
use super::garble::ChunkRun;
use super::{ServerSession, State, MAX_IN_FLIGHT};
use crate::mhe::{Ciphertext, E2sLeader};

/// One stage of a bundle in preparation (its masks and shares are zeroized on drop).
#[derive(Default)]
pub(crate) struct PrepStage {
    /// Owner: `Enc(r_l^(i))` per contributor (stage 0: the user in slot 0).
    pub(super) masks: Vec<Option<Vec<Ciphertext>>>,
    /// Owner: the encryption-to-shares leader, once `Enc(W r - s)` is computed.
    pub(super) leader: Option<E2sLeader>,
    /// Owner: its mask `s_l`.
    pub(super) s: Option<Vec<u64>>,
    /// This server's share of `W_l r_l - s_l`.
    pub(super) u: Option<Vec<u64>>,
    /// This server's share of the next stage's mask.
    pub(super) r_next: Option<Vec<u64>>,
    /// Non-owners: XOR shares of the words summed into the stage input (circuit inputs).
    pub(super) ybits: Option<Vec<u64>>,
    /// Non-receivers: XOR shares of the stage's output mask (circuit inputs).
    pub(super) rbits: Option<Vec<u64>>,
    /// The conversions of both kinds (`masks.rs`), by batch, until each batch is done.
    pub(super) conv: [Vec<Option<crate::ot::B2a>>; 2],
    /// Their finished batches' additive shares.
    pub(super) conv_out: [Vec<Option<Vec<u64>>>; 2],
    /// Non-owners: the additive share of the input words, this server's E2S output share.
    pub(super) u_conv: Option<Vec<u64>>,
    /// An E2S request that arrived before `u_conv`: (sender, request, decoded and so checked).
    pub(super) e2s_early: Option<(Party, crate::mhe::E2sRequest)>,
    /// The chunk garblings in progress at this server, by chunk index (`garble.rs`).
    pub(super) running: BTreeMap<u32, ChunkRun>,
    /// Which chunks are finished (and persisted, `Persist::Chunk`), in chunk order (empty
    /// without a circuit).
    pub(super) finished: Vec<bool>,
}

impl Drop for PrepStage {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.s.zeroize();
        self.u.zeroize();
        self.r_next.zeroize();
        self.ybits.zeroize();
        self.rbits.zeroize();
        self.conv_out.zeroize();
        self.u_conv.zeroize();
    }
}

/// A bundle in preparation.
pub(crate) struct Prep {
    pub(super) stages: Vec<PrepStage>,
    /// The next chunk this server starts on its own: (stage, chunk), in schedule order.
    pub(super) cursor: (usize, u32),
    /// Chunk garblings running at this server (all stages; bounded by the window).
    pub(super) running: usize,
}

impl ServerSession {
    pub(super) fn on_prep(&mut self, from: Party, body: Body) -> Result<Ready> {
        if !matches!(self.state, State::Ready) {
            return Err(self.wrong_phase(&body));
        }
        let g = Party::GATEWAY;
        match body {
            Body::PrepRequest { bundle, input_mask } if self.is_gateway() => {
                self.expect_from(from, "PrepRequest", &[Party::User])?;
                self.on_prep_request(bundle, input_mask)
            }
            Body::PrepStart { bundle } if !self.is_gateway() => {
                self.expect_from(from, "PrepStart", &[g])?;
                self.prep_mut(bundle)
            }
            Body::InputMask { bundle, cts } if self.sched.stages[0].owner == self.me => {
                self.expect_from(from, "InputMask", &[g])?;
                let cts = self.decode_mask(0, &cts)?;
                self.prep_input_mask(bundle, cts)
            }
            Body::MaskShare { bundle, stage, cts } => self.on_mask_share(from, bundle, stage, &cts),
            Body::E2sRequest { bundle, stage, req } => {
                self.on_e2s_request(from, bundle, stage, &req)
            }
            Body::E2sShare {
                bundle,
                stage,
                share,
            } => self.on_e2s_share(from, bundle, stage, &share),
            Body::MaskBits {
                bundle,
                stage,
                kind,
                batch,
                msg,
            } => self.on_mask_bits(from, bundle, (stage, kind, batch), &msg),
            Body::BmrOffline {
                bundle,
                stage,
                chunk,
                msg,
            } => self.on_bmr_offline(from, bundle, (stage, chunk), &msg),
            Body::PrepDone { bundle } if self.is_gateway() => {
                let i = from
                    .server()
                    .filter(|&i| i > 0)
                    .ok_or_else(|| self.wrong_phase(&Body::PrepDone { bundle }))?;
                self.on_prep_done(i, bundle)
            }
            other => Err(self.wrong_phase(&other)),
        }
    }

    /// The bundle in preparation, or a typed refusal if it is not.
    pub(super) fn prep_of(&mut self, bundle: BundleId) -> Result<&mut Prep> {
        self.preps.get_mut(&bundle).ok_or(SecoError::Bundle {
            bundle,
            reason: "not in preparation".into(),
        })
    }

    /// Stage `stage` of the bundle in preparation; the index comes from the network.
    pub(super) fn prep_stage(&mut self, bundle: BundleId, stage: u16) -> Result<&mut PrepStage> {
        self.prep_of(bundle)?
            .stages
            .get_mut(usize::from(stage))
            .ok_or(SecoError::Length {
                what: "stage index",
                expected: 0,
                actual: usize::from(stage),
            })
    }

    /// The bundle's preparation, started on first sight (bounded by [`MAX_IN_FLIGHT`]).
    /// Returns the messages of a fresh start.
    pub(super) fn prep_mut(&mut self, bundle: BundleId) -> Result<Ready> {
        if self.preps.contains_key(&bundle) {
            return Ok(Ready::default());
        }
        if self.prepared.contains(&bundle) {
            return Err(SecoError::Bundle {
                bundle,
                reason: "already prepared".into(),
            });
        }
        if self.preps.len() >= MAX_IN_FLIGHT {
            return Err(SecoError::TooManyBundles {
                limit: MAX_IN_FLIGHT,
            });
        }
        if self.ot.is_none() {
            return Err(SecoError::NotReady("no OT setup".into()));
        }
        let mut ready = Ready::default();
        let mut direct = Vec::new();
        let mut stages: Vec<PrepStage> = (0..self.sched.len())
            .map(|_| PrepStage::default())
            .collect();
        if self.keys.is_none() {
            return Err(SecoError::NotReady("no keys".into()));
        }
        let mask = self.sched.fp.mask();
        let sched = self.sched.clone();
        for l in 0..sched.len() {
            let st = &sched.stages[l];
            let owner = st.owner;
            if owner == self.me {
                let contributors = if l == 0 { 1 } else { self.sched.n };
                stages[l].masks = vec![None; contributors];
            }
            // The other servers' mask shares come from the conversion (`masks.rs`).
            if l >= 1 && (owner == self.me || sched.stages[l - 1].gc.is_none()) {
                let len = st.spec.linear.in_len();
                let r: Vec<u64> = (0..len).map(|_| self.rng.random::<u64>() & mask).collect();
                stages[l - 1].r_next = Some(r.clone());
                direct.push((l, r));
            }
            if let Some(gc) = &st.gc {
                stages[l].finished = vec![false; gc.chunks.len()];
                // The output circuit's receiver keeps no mask of its own: its masked output
                // is its share of the result (`stages.rs`).
                if sched.is_last(l) && gc.receiver == self.me {
                    stages[l].r_next = Some(vec![0; gc.spec.r_len]);
                }
            }
        }
        self.preps.insert(
            bundle,
            Prep {
                stages,
                cursor: (0, 0),
                running: 0,
            },
        );
        // Mask shares, the words of the circuits, then the first chunk garblings (the
        // window), which take those words at once; `fill_window` goes on.
        let started = (|| {
            let mut r = Ready::default();
            for (l, mask) in direct {
                r.extend(self.send_mask_share(bundle, l, &mask)?);
            }
            for l in 0..sched.len() {
                r.extend(self.start_masks(bundle, l)?);
            }
            r.extend(self.fill_window(bundle)?);
            Ok::<Ready, SecoError>(r)
        })();
        match started {
            Ok(r) => ready.extend(r),
            Err(e) => {
                // E.g. a garbling id drawn before (a bundle id prepared again): nothing stays.
                self.preps.remove(&bundle);
                return Err(e);
            }
        }
        Ok(ready)
    }

    /// This server's share `r` of stage `l`'s mask, encrypted, to the stage's owner (itself:
    /// recorded).
    pub(super) fn send_mask_share(
        &mut self,
        bundle: BundleId,
        l: usize,
        r: &[u64],
    ) -> Result<Ready> {
        let keys = self
            .keys
            .clone()
            .ok_or_else(|| SecoError::NotReady("no keys".into()))?;
        let st = self.sched.stage(l as u16)?;
        let owner = st.owner;
        let cts = st.packing.input.encrypt(&keys.pk, r, &mut self.rng)?;
        let mut ready = Ready::default();
        if owner == self.me {
            return self.add_mask(bundle, l, self.me, cts);
        }
        let cts = cts.iter().map(|c| Bytes::from(c.to_bytes())).collect();
        let body = Body::MaskShare {
            bundle,
            stage: l as u16,
            cts,
        };
        self.send(&mut ready, Party::Server(owner as u16), body);
        Ok(ready)
    }

    /// Owner of stage 0: the user's `Enc(r_1)`, decoded ([`Self::decode_mask`]).
    pub(super) fn prep_input_mask(
        &mut self,
        bundle: BundleId,
        cts: Vec<Ciphertext>,
    ) -> Result<Ready> {
        let mut ready = self.prep_mut(bundle)?;
        ready.extend(self.add_mask(bundle, 0, 0, cts)?);
        Ok(ready)
    }

    fn on_mask_share(
        &mut self,
        from: Party,
        bundle: BundleId,
        stage: u16,
        cts: &[Bytes],
    ) -> Result<Ready> {
        let st = self.sched.stage(stage)?;
        let sender = from
            .server()
            .filter(|&i| i != self.me && stage >= 1 && st.owner == self.me);
        let Some(sender) = sender else {
            return Err(SecoError::WrongSender {
                body: "MaskShare",
                claimed: from,
                actual: from,
                expected: format!("a server other than the owner of stage {stage}"),
            });
        };
        let cts = self.decode_mask(stage as usize, cts)?;
        let mut ready = self.prep_mut(bundle)?;
        ready.extend(self.add_mask(bundle, stage as usize, sender, cts)?);
        Ok(ready)
    }

    /// Stage `l`'s mask ciphertexts, decoded and counted (external data).
    pub(super) fn decode_mask(&self, l: usize, cts: &[Bytes]) -> Result<Vec<Ciphertext>> {
        let param = self.cfg.param;
        let expected = self.sched.stages[l].packing.num_in_cts();
        if cts.len() != expected {
            return Err(SecoError::Length {
                what: "mask ciphertexts",
                expected,
                actual: cts.len(),
            });
        }
        Ok(cts
            .iter()
            .map(|b| Ciphertext::from_bytes(b, param))
            .collect::<crate::mhe::Result<Vec<_>>>()?)
    }

    /// Records one contributor's mask ciphertexts (decoded, or this server's own); when all
    /// are in, evaluates the layer and starts the encryption-to-shares.
    fn add_mask(
        &mut self,
        bundle: BundleId,
        l: usize,
        slot: usize,
        cts: Vec<Ciphertext>,
    ) -> Result<Ready> {
        let prep = self.prep_of(bundle)?;
        let masks = &mut prep.stages[l].masks;
        match masks.get_mut(slot) {
            Some(s @ None) => *s = Some(cts),
            _ => {
                return Err(SecoError::Duplicate {
                    from: Party::Server(slot as u16),
                    seq: 0,
                })
            }
        }
        if masks.iter().any(Option::is_none) {
            return Ok(Ready::default());
        }
        let all: Vec<Vec<Ciphertext>> = masks.iter_mut().filter_map(Option::take).collect();
        self.start_e2s(bundle, l, &all)
    }

    /// When every piece is in: persist the bundle, then announce it.
    pub(super) fn try_complete(&mut self, bundle: BundleId) -> Result<Ready> {
        let me = self.me;
        let Some(prep) = self.preps.get(&bundle) else {
            return Ok(Ready::default());
        };
        let complete = prep.stages.iter().enumerate().all(|(l, st)| {
            st.u.is_some()
                && (self.sched.stages[l].gc.is_none()
                    || (st.r_next.is_some()
                        && !st.finished.is_empty()
                        && st.finished.iter().all(|&f| f)))
                && (self.sched.stages[l].owner != me || st.s.is_some())
        });
        if !complete {
            return Ok(Ready::default());
        }
        let Some(prep) = self.preps.remove(&bundle) else {
            return Ok(Ready::default());
        };
        self.prepared.insert(bundle);
        let stages: Vec<StageMaterial> = prep
            .stages
            .into_iter()
            .map(|mut st| StageMaterial {
                u: st.u.take().unwrap_or_default(),
                s: st.s.take(),
                r_next: st.r_next.take(),
                chunks: st.finished.len() as u32,
            })
            .collect();
        let result_share = self.encrypt_result_share(&stages)?;
        let record = ServerBundle {
            version: BUNDLE_VERSION,
            session: self.cfg.session,
            bundle,
            party: me as u16,
            stages,
            result_share,
        };
        let mut ready = Ready::default();
        ready.persist.push(Persist::Bundle {
            bundle,
            bytes: record.to_bytes(),
        });
        ready.events.push(Event::BundleReady(bundle));
        if self.is_gateway() {
            ready.extend(self.on_prep_done(0, bundle)?);
        } else {
            self.send(&mut ready, Party::GATEWAY, Body::PrepDone { bundle });
        }
        Ok(ready)
    }
}

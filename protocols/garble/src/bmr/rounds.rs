//! The round completions of [`OfflineParty`]: what a garbler computes and sends once every
//! peer's message of a round is in (see `offline.rs` for the round list).

use super::material::{Fresh, Material};
use super::msg::{Body, Outgoing};
use super::offline::{OfflineParty, Phase};
use super::prepared::GarblerPrep;
use super::{BmrError, Result};
use crate::block::{Block, PackedBits};
use crate::circuit::PartyId;
use crate::ot::{IknpReceiver, IknpReceiverSetup, IknpSender, IknpSenderSetup};

/// The body a peer sent for the round being completed.
fn take(bodies: &mut [Option<Body>], p: PartyId) -> Result<Body> {
    bodies
        .get_mut(p)
        .and_then(Option::take)
        .ok_or(BmrError::Internal("missing round message"))
}

impl OfflineParty {
    fn peers(&self) -> Vec<PartyId> {
        (0..self.cfg.garblers).filter(|&p| p != self.me).collect()
    }

    /// The peers this party waits for in offline round `r` (`OfflineParty::expects`).
    fn expected(&self, r: usize) -> Vec<PartyId> {
        (0..self.cfg.garblers)
            .filter(|&p| self.expects(r, p))
            .collect()
    }

    /// The keyed garblers other than this party (the senders of its IKNP instances).
    fn keyed_peers(&self) -> Vec<PartyId> {
        (0..self.cfg.garblers)
            .filter(|&p| p != self.me && self.cfg.is_keyed(p))
            .collect()
    }

    /// Completes the current round with every peer's message (`bodies[p]`).
    pub(super) fn complete_round(
        &mut self,
        mut bodies: Vec<Option<Body>>,
    ) -> Result<Vec<Outgoing>> {
        match std::mem::replace(&mut self.phase, Phase::Failed) {
            Phase::Base { fresh, recv, send } => self.round1(&mut bodies, fresh, recv, send),
            Phase::Extend {
                fresh,
                senders,
                rows_t,
            } => self.round2(&mut bodies, fresh, senders, rows_t),
            Phase::BitOt { mat, mu, c } => self.round3(&mut bodies, mat, mu, c),
            Phase::Derand { mat, mu } => self.round4(&mut bodies, mat, mu),
            Phase::AwaitInputs { .. } | Phase::Garbled | Phase::Failed => {
                Err(BmrError::Internal("round after garbling"))
            }
        }
    }

    /// (1) done: finish both base OTs of each pair, extend with this party's choices.
    fn round1(
        &mut self,
        bodies: &mut [Option<Body>],
        fresh: Fresh,
        mut recv: Vec<Option<IknpReceiverSetup>>,
        mut send: Vec<Option<IknpSenderSetup>>,
    ) -> Result<Vec<Outgoing>> {
        let n = self.cfg.garblers;
        let mut receivers: Vec<Option<IknpReceiver>> = (0..n).map(|_| None).collect();
        let mut senders: Vec<Option<IknpSender>> = (0..n).map(|_| None).collect();
        for p in self.expected(1) {
            let Body::Base {
                ot_sender,
                ot_receiver,
            } = take(bodies, p)?
            else {
                return Err(BmrError::Internal("base slot"));
            };
            // Presence was checked against the pair's instances on arrival.
            if let (Some(rs), Some(m)) = (recv[p].take(), ot_receiver) {
                receivers[p] = Some(rs.finish(&m)?);
            }
            if let (Some(ss), Some(m)) = (send[p].take(), ot_sender) {
                senders[p] = Some(ss.finish(&m)?);
            }
        }
        self.start_extend(fresh, receivers, senders)
    }

    /// Start of (2): extend with this party's choices as receiver from every peer (the sender
    /// side waits for the peers' columns).
    pub(super) fn start_extend(
        &mut self,
        fresh: Fresh,
        mut receivers: Vec<Option<IknpReceiver>>,
        senders: Vec<Option<IknpSender>>,
    ) -> Result<Vec<Outgoing>> {
        let choices = fresh.choices();
        let mut rows_t = vec![Vec::new(); self.cfg.garblers];
        let mut out = Vec::new();
        for p in self.keyed_peers() {
            let receiver = receivers[p]
                .as_mut()
                .ok_or(BmrError::Internal("receiver"))?;
            let (ext, t, _) = receiver.extend(&choices);
            rows_t[p] = t;
            let pair = self.pair_tags[p];
            out.push(self.msg(p, Body::Extend { pair, ext }));
        }
        self.phase = Phase::Extend {
            fresh,
            senders,
            rows_t,
        };
        Ok(out)
    }

    /// (2) done: sender rows, per-wire material, bit-OT corrections for the mask products.
    fn round2(
        &mut self,
        bodies: &mut [Option<Body>],
        fresh: Fresh,
        mut senders: Vec<Option<IknpSender>>,
        rows_t: Vec<Vec<Block>>,
    ) -> Result<Vec<Outgoing>> {
        let n = self.cfg.garblers;
        let inputs_of: Vec<Vec<usize>> = (0..n).map(|p| self.cfg.inputs_of(p)).collect();
        let mut rows_q = vec![Vec::new(); n];
        for p in self.expected(2) {
            let Body::Extend { ext, .. } = take(bodies, p)? else {
                return Err(BmrError::Internal("extend slot"));
            };
            let s = senders[p].as_mut().ok_or(BmrError::Internal("sender"))?;
            rows_q[p] = s
                .extend(&ext, Fresh::slots(inputs_of[p].len(), &self.program))?
                .0;
        }
        let c = fresh.c.clone();
        let nonce = self.cfg.tweak_nonce();
        let keyed: Vec<bool> = (0..n).map(|p| self.cfg.is_keyed(p)).collect();
        let mat = Material::build(
            self.me,
            nonce,
            &self.program,
            fresh,
            &inputs_of,
            &keyed,
            rows_t,
            rows_q,
        );
        // This party's own term lambda^me_a lambda^me_b, then its sender shares.
        let mut mu: Vec<bool> = self
            .program
            .ands()
            .map(|g| mat.lam[g.a as usize] & mat.lam[g.b as usize])
            .collect();
        let mut out = Vec::new();
        // As the sender of every instance "p receives from me" (keyed parties only).
        let receivers = if self.cfg.is_keyed(self.me) {
            self.peers()
        } else {
            Vec::new()
        };
        for p in receivers {
            let (d, share) = mat.bit_ot_send(&self.program, p);
            mu.iter_mut().zip(share).for_each(|(x, s)| *x ^= s);
            out.push(self.msg(p, Body::BitOt(PackedBits::from_bools(&d))));
        }
        self.phase = Phase::BitOt { mat, mu, c };
        Ok(out)
    }

    /// (3) done: receiver shares of the mask products; send the derandomization bits.
    fn round3(
        &mut self,
        bodies: &mut [Option<Body>],
        mat: Material,
        mut mu: Vec<bool>,
        c: Vec<bool>,
    ) -> Result<Vec<Outgoing>> {
        for p in self.expected(3) {
            let Body::BitOt(d) = take(bodies, p)? else {
                return Err(BmrError::Internal("bit-OT slot"));
            };
            let share = mat.bit_ot_receive(&self.program, p, &d.to_bools());
            mu.iter_mut().zip(share).for_each(|(x, s)| *x ^= s);
        }
        let e: Vec<bool> = mu.iter().zip(&c).map(|(&m, &ci)| m ^ ci).collect();
        self.phase = Phase::Derand { mat, mu };
        let e = PackedBits::from_bools(&e);
        Ok(self
            .keyed_peers()
            .into_iter()
            .map(|p| self.msg(p, Body::Derand(e.clone())))
            .collect())
    }

    /// (4) done: derandomize, garble.
    fn round4(
        &mut self,
        bodies: &mut [Option<Body>],
        mut mat: Material,
        mu: Vec<bool>,
    ) -> Result<Vec<Outgoing>> {
        for p in self.expected(4) {
            let Body::Derand(e) = take(bodies, p)? else {
                return Err(BmrError::Internal("derand slot"));
            };
            mat.derandomize(p, &e.to_bools());
        }
        self.phase = Phase::AwaitInputs { mat, mu };
        self.try_garble()
    }

    /// Garbles once the products are done and, for a keyed garbler, every owner's offline
    /// masked bits are in (its keys of the offline wires depend on them, `known.rs`).
    pub(super) fn try_garble(&mut self) -> Result<Vec<Outgoing>> {
        let ready = matches!(self.phase, Phase::AwaitInputs { .. })
            && (!self.cfg.is_keyed(self.me) || self.known.inputs_in());
        if !ready {
            return Ok(Vec::new());
        }
        let Phase::AwaitInputs { mut mat, mu } = std::mem::replace(&mut self.phase, Phase::Garbled)
        else {
            return Err(BmrError::Internal("garble phase"));
        };
        if self.cfg.is_keyed(self.me) {
            mat.set_keys(&self.program, &self.known.offline_key0(&self.cfg));
        }
        let out = self.garble(&mat, &mu);
        self.garbled = true;
        Ok(out)
    }

    /// End of round 4: own table share (into the chain, or kept by the evaluator) and
    /// output-mask shares, sent or kept.
    fn garble(&mut self, mat: &Material, mu: &[bool]) -> Vec<Outgoing> {
        let share = mat.table_share(&self.program, mu);
        let masks_of = |p: PartyId| -> PackedBits {
            let bits: Vec<bool> = self
                .cfg
                .outputs_of(p)
                .iter()
                .map(|&o| mat.lam[self.program.outputs[o] as usize])
                .collect();
            PackedBits::from_bools(&bits)
        };
        let mut out = Vec::new();
        for p in (0..self.cfg.num_parties()).filter(|&p| p != self.me && self.cfg.receives_final(p))
        {
            let key_seed = if p == self.cfg.evaluator {
                self.known.seed().filter(|_| self.cfg.is_keyed(self.me))
            } else {
                None
            };
            let body = Body::Final {
                output_masks: masks_of(p),
                key_seed,
            };
            out.push(self.msg(p, body));
        }
        if self.me == self.cfg.evaluator {
            self.tables
                .iter_mut()
                .zip(&share)
                .for_each(|(a, s)| *a ^= *s);
        } else {
            self.own_share = Some(share);
        }
        let own = masks_of(self.me);
        out.extend(self.pass_chain());
        self.out_masks
            .iter_mut()
            .enumerate()
            .for_each(|(i, m)| *m ^= own.get(i));
        // Only the online input wires: the offline ones went to the evaluator (`known.rs`).
        let mine: Vec<bool> = self
            .cfg
            .online_inputs_of(self.me)
            .iter()
            .map(|&w| mat.lam[w])
            .collect();
        // The keyless evaluator keeps only its input masks (offset zero, no keys).
        let input_keys = if self.cfg.is_keyed(self.me) {
            self.cfg
                .online_wires()
                .iter()
                .map(|&w| mat.key0[w])
                .collect()
        } else {
            Vec::new()
        };
        self.garbler_prep = Some(GarblerPrep {
            offset: mat.r,
            input_keys,
            input_masks: PackedBits::from_bools(&mine),
        });
        out
    }
}

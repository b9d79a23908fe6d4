//! The offline (input-independent) phase of BMR as a sans-IO state machine, one per party.
//!
//! Rounds of a garbler (every message goes to every other garbler unless said otherwise):
//! ```text
//! (1) Base     Masny-Rindal base OTs of both IKNP instances of each ordered pair
//! (2) Extend   IKNP columns: COTs with correlation R^sender for the fresh wires' masks
//!              (choices lambda^i) and for the mask-product slots (random choices c)
//! (3) BitOt    bit-OT corrections for lambda_a^i lambda_b^j      -> shares mu^i of lambda_a lambda_b
//! (4) Derand   e = mu^i ^ c                                     -> shares of mu R^j
//!     ...then every garbler computes its share of all garbled rows
//! (5) Final    output-mask shares -> output owners (and the evaluator)
//!     Tables   keyed garbler in slot s: (its table share ^ the chain's part from slot s - 1)
//!              -> slot s + 1, the last slot -> evaluator
//! ```
//! A garbling drawn from the session's OT setup ([`OfflineParty::with_setup`]) skips (1) and
//! starts by sending its (2) columns. An evaluator that is not a garbler only waits for (5).
//! An evaluator that garbles is keyless (`material.rs`): it runs only the IKNP instances in
//! which it receives, so it sends (2) and (4) to the keyed garblers, gets (3) from them
//! (two bits per AND) and neither gets (2) and (4) nor sends (3). Messages may arrive early by
//! at most one round (a peer cannot get further ahead); they wait in a bounded inbox (one slot per round
//! and peer). Wrong session, wrong sender, duplicates, other rounds and wrong lengths are typed
//! errors that leave the state unchanged; a failure while completing a round (an invalid point,
//! say) leaves the party failed, and the session must be aborted.

use std::sync::Arc;

use super::config::BmrConfig;
use super::known::Known;
use super::material::{Fresh, Material};
use super::msg::{BmrMsg, Body, Outgoing};
use super::prepared::{GarblerPrep, Prepared};
use super::{expect_len, BmrError, Result};
use crate::block::{Block, PackedBits};
use crate::circuit::{PartyId, Program};
use crate::ot::{IknpReceiverSetup, IknpSender, IknpSenderSetup, KAPPA};

/// Session id of the IKNP instance in which `recv` receives from `send`.
pub(super) fn pair_sid(session: &[u8; 16], recv: PartyId, send: PartyId) -> [u8; 16] {
    let mut h = blake3::Hasher::new_derive_key("seco bmr pair sid v1");
    h.update(session);
    h.update(&(recv as u64).to_le_bytes());
    h.update(&(send as u64).to_le_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.finalize().as_bytes()[..16]);
    out
}

pub(super) fn msg_of(cfg: &BmrConfig, me: PartyId, body: Body) -> BmrMsg {
    BmrMsg {
        session: cfg.session,
        from: me,
        body,
    }
}

pub(super) enum Phase {
    /// (1) waiting for every peer's base OTs.
    Base {
        fresh: Fresh,
        recv: Vec<Option<IknpReceiverSetup>>,
        send: Vec<Option<IknpSenderSetup>>,
    },
    /// (2) waiting for every peer's extension columns.
    Extend {
        fresh: Fresh,
        senders: Vec<Option<IknpSender>>,
        rows_t: Vec<Vec<Block>>,
    },
    /// (3) waiting for every peer's bit-OT corrections.
    BitOt {
        mat: Material,
        mu: Vec<bool>,
        c: Vec<bool>,
    },
    /// (4) waiting for every peer's derandomization bits.
    Derand { mat: Material, mu: Vec<bool> },
    /// (4b) keyed garbler: products done, waiting for every owner's offline masked bits (its
    /// keys of the offline wires depend on them, `known.rs`) before it garbles.
    AwaitInputs { mat: Material, mu: Vec<bool> },
    /// (5) own garbling done (or not a garbler): waiting for final messages.
    Garbled,
    /// Between states, or after a failed round.
    Failed,
}

/// One party's offline state machine. Produces a [`Prepared`] when complete. Prints as
/// `OfflineParty([redacted])`; its keys and masks (`Fresh`, `Material`, `InputMaterial`,
/// [`GarblerPrep`]) are zeroized on drop.
pub struct OfflineParty {
    pub(super) cfg: BmrConfig,
    pub(super) program: Arc<Program>,
    pub(super) me: PartyId,
    /// Current round 1..=5; 6 when complete.
    pub(super) round: usize,
    pub(super) phase: Phase,
    /// Early or current messages of rounds 1..=4, one slot per peer.
    pub(super) inbox: Vec<Vec<Option<Body>>>,
    /// Which garblers' final message arrived.
    pub(super) finals: Vec<bool>,
    /// Evaluator: XOR of the table shares so far.
    pub(super) tables: Vec<Block>,
    /// The table chain (round 5): whether this party still waits for its predecessor's part
    /// (keyed garblers after slot 0 and the evaluator).
    pub(super) chain_wait: bool,
    /// Keyed garbler: its own table share, kept until the predecessor's part is in.
    pub(super) own_share: Option<Vec<Block>>,
    /// Keyed garbler: the predecessor's part, if it came before this party garbled.
    pub(super) chain_part: Option<Vec<Block>>,
    /// Whether this party computed its table share (true for a non-garbling evaluator).
    pub(super) garbled: bool,
    /// Output owner: XOR of the mask shares of its output wires so far.
    pub(super) out_masks: Vec<bool>,
    pub(super) garbler_prep: Option<GarblerPrep>,
    /// Inputs known in preprocessing (`known.rs`).
    pub(super) known: Known,
    /// Per peer, the tag of the session OT setup pair this garbling was drawn from (`None`
    /// with per-garbling base OTs); the peer's `Extend` must carry the same (`setup.rs`).
    pub(super) pair_tags: Vec<Option<[u8; 16]>>,
}

seco_core::redacted_debug!(OfflineParty);

impl OfflineParty {
    /// The owner fixes the values of its offline input wires (`BmrConfig::offline`, its
    /// wires in order), at any time after the start; their masked bits and keys reach the
    /// evaluator in the offline phase (`known.rs`). Returns the messages to send.
    pub fn provide_inputs(&mut self, bits: &[bool]) -> Result<Vec<Outgoing>> {
        if matches!(self.phase, Phase::Failed) {
            return Err(BmrError::Failed);
        }
        let mut out = self.known.provide(&self.cfg, self.me, bits)?;
        out.extend(self.try_garble()?);
        out.extend(self.advance()?);
        Ok(out)
    }

    /// Whether the offline phase is complete for this party (garbling and offline inputs).
    pub fn is_done(&self) -> bool {
        self.round == 6 && self.known.is_complete()
    }

    /// The current round (1..=5, 6 when complete).
    pub fn round(&self) -> usize {
        self.round
    }

    /// Handles a message from party `from`; returns the messages to send.
    pub fn handle(&mut self, from: PartyId, msg: BmrMsg) -> Result<Vec<Outgoing>> {
        if matches!(self.phase, Phase::Failed) {
            return Err(BmrError::Failed);
        }
        self.check_envelope(from, &msg)?;
        let r = msg.body.round_index();
        match r {
            1..=4 => self.store(from, r, msg.body)?,
            5 => self.take_final(from, msg.body)?,
            8 => return self.take_tables(from, msg.body),
            6 => {
                self.known.handle(&self.cfg, self.me, from, msg.body)?;
                let mut out = self.try_garble()?;
                out.extend(self.advance()?);
                return Ok(out);
            }
            _ => return Err(self.wrong_round(&msg.body)),
        }
        self.advance()
    }

    fn check_envelope(&self, from: PartyId, msg: &BmrMsg) -> Result<()> {
        if msg.session != self.cfg.session {
            return Err(BmrError::WrongSession);
        }
        if from >= self.cfg.num_parties() || from == self.me {
            return Err(BmrError::UnknownParty { party: from });
        }
        if msg.from != from {
            return Err(BmrError::WrongSender {
                claimed: msg.from,
                actual: from,
            });
        }
        Ok(())
    }

    pub(super) fn wrong_round(&self, body: &Body) -> BmrError {
        BmrError::WrongRound {
            party: self.me,
            round: self.round,
            got: body.round(),
        }
    }

    /// Whether this party waits for a message of offline round `r` (1..=4) from `p`: base
    /// OTs from every other garbler; (2) and (4) from the receivers of its instances (every
    /// other garbler if it is keyed, nobody if it is the keyless evaluator); (3) from the
    /// senders of its instances (the keyed garblers).
    pub(super) fn expects(&self, r: usize, p: PartyId) -> bool {
        let cfg = &self.cfg;
        if p == self.me || !cfg.is_garbler(p) || !cfg.is_garbler(self.me) {
            return false;
        }
        match r {
            1 => true,
            2 | 4 => cfg.is_keyed(self.me),
            3 => cfg.is_keyed(p),
            _ => false,
        }
    }

    fn store(&mut self, from: PartyId, r: usize, body: Body) -> Result<()> {
        if !self.expects(r, from) || r < self.round || r > self.round + 1 {
            return Err(self.wrong_round(&body));
        }
        self.check_len(from, &body)?;
        let slot = &mut self.inbox[r - 1][from];
        if slot.is_some() {
            return Err(BmrError::Duplicate {
                from,
                round: body.round(),
            });
        }
        *slot = Some(body);
        Ok(())
    }

    /// Checks the sizes the configuration fixes, before anything is stored.
    pub(super) fn check_len(&self, from: PartyId, body: &Body) -> Result<()> {
        let n_and = self.program.num_and;
        let (what, expected, actual) = match body {
            Body::Base {
                ot_sender,
                ot_receiver,
            } => {
                if ot_sender.is_some() != self.cfg.is_keyed(self.me)
                    || ot_receiver.is_some() != self.cfg.is_keyed(from)
                {
                    return Err(BmrError::Config(
                        "base OT halves do not match the pair's instances".into(),
                    ));
                }
                let points = ot_receiver.as_ref().map_or(KAPPA, |m| m.r.len());
                ("base OT points", KAPPA, points)
            }
            Body::Extend { pair, ext } => {
                if *pair != self.pair_tags[from] {
                    return Err(BmrError::PairMismatch { peer: from });
                }
                (
                    "OT extension count",
                    Fresh::slots(self.cfg.inputs_of(from).len(), &self.program),
                    ext.count as usize,
                )
            }
            Body::BitOt(d) => (
                "bit-OT corrections",
                Material::bit_ot_len(self.cfg.is_keyed(self.me), n_and),
                d.len(),
            ),
            Body::Derand(d) => ("bits per AND gate", n_and, d.len()),
            Body::Final { output_masks, .. } => {
                ("output mask bits", self.out_masks.len(), output_masks.len())
            }
            Body::Tables(t) => (
                "garbled table blocks",
                self.cfg.table_len(&self.program),
                t.len(),
            ),
            _ => return Ok(()),
        };
        expect_len(what, expected, actual)
    }

    /// Completes every round whose messages are all in.
    pub(super) fn advance(&mut self) -> Result<Vec<Outgoing>> {
        let mut out = Vec::new();
        loop {
            if (1..=4).contains(&self.round) {
                let r = self.round;
                let complete = (0..self.cfg.garblers)
                    .all(|p| !self.expects(r, p) || self.inbox[r - 1][p].is_some());
                if !complete {
                    break;
                }
                let bodies: Vec<Option<Body>> = self.inbox[self.round - 1]
                    .iter_mut()
                    .map(Option::take)
                    .collect();
                match self.complete_round(bodies) {
                    Ok(msgs) => out.extend(msgs),
                    Err(e) => {
                        self.phase = Phase::Failed;
                        return Err(e);
                    }
                }
                self.round += 1;
            } else if self.round == 5 {
                let expected = (0..self.cfg.garblers)
                    .filter(|&p| p != self.me)
                    .all(|p| self.finals[p]);
                if (self.cfg.receives_final(self.me) && !expected)
                    || self.chain_wait
                    || !self.garbled
                {
                    break;
                }
                self.round = 6;
            } else {
                break;
            }
        }
        Ok(out)
    }

    pub(super) fn msg(&self, to: PartyId, body: Body) -> Outgoing {
        (to, msg_of(&self.cfg, self.me, body))
    }

    /// The preprocessed material, once complete.
    pub fn into_prepared(mut self) -> Result<Prepared> {
        if !self.is_done() {
            return Err(BmrError::NotFinished { round: self.round });
        }
        Ok(Prepared {
            offline_keys: std::mem::take(&mut self.known.keys),
            tables: if self.me == self.cfg.evaluator {
                Some(self.tables)
            } else {
                None
            },
            config: self.cfg,
            party: self.me,
            garbler: self.garbler_prep,
            output_masks: PackedBits::from_bools(&self.out_masks),
        })
    }
}

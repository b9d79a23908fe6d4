//! Inputs known in preprocessing (`BmrConfig::offline`): online rounds (1) and (2) of BMR for
//! the wires whose values their owner fixes before the online phase, run during the offline
//! phase, so that the online phase carries only the wires whose values arrive online.
//!
//! ```text
//! owner p, any time after the start:  OfflineInputs  Lambda_w = x_w ^ lambda_w of its offline
//!                                                    wires -> every other garbler
//! garbler j, once every owner's bits  OfflineKeys    k^j_{w,Lambda_w} of every offline wire
//! are in:                                            -> the evaluator (kept in its Prepared)
//! ```
//! This reveals exactly what the online phase would: the masked bits to the garblers and one
//! key per wire and garbler to the evaluator, only earlier. Holding some keys of a garbling
//! before others lets the evaluator evaluate the gates that depend only on them, which gives
//! it masked values `Lambda` of those wires, uniformly random to it as in any BMR evaluation;
//! the garbling is still evaluated exactly once. A garbler keeps only the keys of its online
//! wires, the evaluator the offline keys.

use super::config::BmrConfig;
use super::msg::{BmrMsg, Body, Outgoing};
use super::{expect_len, BmrError, Result};
use crate::circuit::PartyId;
use crate::gc::block::{Block, PackedBits};

/// A garbler's input-wire secrets, kept from the start (zeroized on drop).
#[derive(zeroize::ZeroizeOnDrop)]
pub(super) struct InputMaterial {
    /// Its offset `R^i`.
    pub offset: Block,
    /// `k^i_{w,0}` of every input wire.
    pub key0: Vec<Block>,
    /// `lambda_w` of every input wire (its own wires only; 0 elsewhere).
    pub lam: Vec<bool>,
}

/// Offline-input state of one party of one garbling.
pub(super) struct Known {
    /// Garblers: the input material.
    pub mat: Option<InputMaterial>,
    /// Offline wires, in order.
    wires: Vec<usize>,
    /// Masked bits of the offline wires, by wire.
    masked: Vec<bool>,
    /// Garblers whose offline masked bits are in (true for those without offline wires).
    have: Vec<bool>,
    /// Garbler: its offline keys went out (or there are none).
    keys_sent: bool,
    /// Evaluator: `keys[i * K + s]` for the i-th offline wire and the keyed garbler in slot s.
    pub keys: Vec<Block>,
    /// Evaluator: which garblers' offline keys are in.
    have_keys: Vec<bool>,
}

impl Known {
    pub fn new(cfg: &BmrConfig, me: PartyId, mat: Option<InputMaterial>) -> Self {
        let n = cfg.garblers;
        let wires = cfg.offline_wires();
        let none = wires.is_empty();
        Known {
            have: (0..n)
                .map(|p| cfg.offline_inputs_of(p).is_empty())
                .collect(),
            keys_sent: none || !cfg.is_keyed(me),
            keys: if me == cfg.evaluator {
                vec![Block::ZERO; wires.len() * cfg.num_keyed()]
            } else {
                Vec::new()
            },
            have_keys: (0..n)
                .map(|p| none || me != cfg.evaluator || !cfg.is_keyed(p))
                .collect(),
            masked: vec![false; cfg.input_owners.len()],
            wires,
            mat,
        }
    }

    /// Whether this party's part of the offline inputs is complete.
    pub fn is_complete(&self) -> bool {
        self.keys_sent && self.have_keys.iter().all(|&h| h)
    }

    /// The owner fixes its offline input bits (its offline wires, in order).
    pub fn provide(
        &mut self,
        cfg: &BmrConfig,
        me: PartyId,
        bits: &[bool],
    ) -> Result<Vec<Outgoing>> {
        let mine = cfg.offline_inputs_of(me);
        let mat = self
            .mat
            .as_ref()
            .ok_or(BmrError::UnknownParty { party: me })?;
        expect_len("offline input bits", mine.len(), bits.len())?;
        if mine.is_empty() {
            return Ok(Vec::new());
        }
        if self.have[me] {
            return Err(BmrError::Duplicate {
                from: me,
                round: "offline inputs",
            });
        }
        let masked: Vec<bool> = mine
            .iter()
            .zip(bits)
            .map(|(&w, &x)| x ^ mat.lam[w])
            .collect();
        for (&w, &b) in mine.iter().zip(&masked) {
            self.masked[w] = b;
        }
        self.have[me] = true;
        let body = Body::OfflineInputs(PackedBits::from_bools(&masked));
        let mut out: Vec<Outgoing> = (0..cfg.garblers)
            .filter(|&p| p != me)
            .map(|p| (p, msg(cfg, me, body.clone())))
            .collect();
        out.extend(self.progress(cfg, me));
        Ok(out)
    }

    /// A garbler's offline masked bits or offline keys.
    pub fn handle(
        &mut self,
        cfg: &BmrConfig,
        me: PartyId,
        from: PartyId,
        body: Body,
    ) -> Result<Vec<Outgoing>> {
        match body {
            Body::OfflineInputs(bits) if self.mat.is_some() && cfg.is_garbler(from) => {
                take_masked(
                    &mut self.masked,
                    &mut self.have,
                    from,
                    &cfg.offline_inputs_of(from),
                    &bits,
                    ("offline inputs", "offline masked bits"),
                )?;
                Ok(self.progress(cfg, me))
            }
            Body::OfflineKeys(keys) if me == cfg.evaluator && cfg.is_keyed(from) => {
                if self.have_keys[from] {
                    return Err(BmrError::Duplicate {
                        from,
                        round: "offline keys",
                    });
                }
                expect_len("offline input keys", self.wires.len(), keys.len())?;
                self.place(cfg, from, &keys);
                Ok(Vec::new())
            }
            body => Err(BmrError::WrongRound {
                party: me,
                round: 0,
                got: body.round(),
            }),
        }
    }

    /// Places keyed garbler `from`'s keys in its slot (`keys[i * K + slot]`).
    fn place(&mut self, cfg: &BmrConfig, from: PartyId, keys: &[Block]) {
        let (k, Some(slot)) = (cfg.num_keyed(), cfg.slot_of(from)) else {
            return;
        };
        for (i, &key) in keys.iter().enumerate() {
            self.keys[i * k + slot] = key;
        }
        self.have_keys[from] = true;
    }

    /// A garbler with every owner's masked bits sends its keys of the offline wires.
    fn progress(&mut self, cfg: &BmrConfig, me: PartyId) -> Vec<Outgoing> {
        let Some(mat) = &self.mat else {
            return Vec::new();
        };
        // Only keyed garblers have keys (`keys_sent` is set from the start for the others).
        if self.keys_sent || !self.have.iter().all(|&h| h) {
            return Vec::new();
        }
        let keys: Vec<Block> = self
            .wires
            .iter()
            .map(|&w| mat.key0[w] ^ mat.offset.select(self.masked[w]))
            .collect();
        self.keys_sent = true;
        vec![(cfg.evaluator, msg(cfg, me, Body::OfflineKeys(keys)))]
    }
}

/// Stores input owner `from`'s masked bits `Lambda_w` of its `wires` (in order) into `masked`
/// and marks them in `have`; refused if already there or if `from` owns none of these wires.
/// `(round, what)` name the round (for a duplicate) and the bits (for a wrong length).
pub(super) fn take_masked(
    masked: &mut [bool],
    have: &mut [bool],
    from: PartyId,
    wires: &[usize],
    bits: &PackedBits,
    (round, what): (&'static str, &'static str),
) -> Result<()> {
    if wires.is_empty() || have[from] {
        return Err(BmrError::Duplicate { from, round });
    }
    expect_len(what, wires.len(), bits.len())?;
    for (i, &w) in wires.iter().enumerate() {
        masked[w] = bits.get(i);
    }
    have[from] = true;
    Ok(())
}

fn msg(cfg: &BmrConfig, me: PartyId, body: Body) -> BmrMsg {
    BmrMsg {
        session: cfg.session,
        from: me,
        body,
    }
}

//! Inputs known in preprocessing (`BmrConfig::offline`): online rounds (1) and (2) of BMR for
//! the wires whose values their owner fixes before the online phase, run during the offline
//! phase, so that the online phase carries only the wires whose values arrive online.
//!
//! ```text
//! owner p, any time after the start:  OfflineInputs  Lambda_w = x_w ^ lambda_w of its offline
//!                                                    wires -> every other party
//! keyed garbler j, once every owner's bits are in:   its keys of the offline wires are set so
//!                                                    that the active one is s_j(w), then it
//!                                                    garbles (round 5 waits for this)
//! keyed garbler j -> evaluator (in its Final):       the seed of s_j
//! evaluator, with every seed and every bit:          k^j_{w,Lambda_w} = s_j(w) for every j, w
//! ```
//! `s_j(w)` is the w-th block of a BLAKE3 keyed stream under garbler j's fresh 32-byte seed,
//! with its lsb set to `Lambda_w`; garbler j takes `k^j_{w,0} = s_j(w) ^ Lambda_w R^j` (lsb 0,
//! as every key). So the evaluator derives every garbler's active key of every offline wire
//! from 32 bytes per garbler instead of receiving 16 bytes per wire and garbler. The keys'
//! distribution is unchanged: `s_j(w)` is pseudorandom to everybody but j and the evaluator,
//! `k^j_{w,0}` therefore too, and the evaluator learns the active keys, which it would receive
//! anyway; the seed is fresh per garbling and goes to the evaluator only.
//!
//! This reveals exactly what the online phase would: the masked bits to the parties and one
//! key per wire and garbler to the evaluator, only earlier. Holding some keys of a garbling
//! before others lets the evaluator evaluate the gates that depend only on them, which gives
//! it masked values `Lambda` of those wires, uniformly random to it as in any BMR evaluation;
//! the garbling is still evaluated exactly once. A garbler keeps only the keys of its online
//! wires, the evaluator the offline keys.

use super::config::BmrConfig;
use super::msg::{BmrMsg, Body, Outgoing};
use super::{expect_len, BmrError, Result};
use crate::block::{Block, PackedBits};
use crate::circuit::PartyId;

/// A garbler's input-wire secrets, kept from the start (zeroized on drop).
#[derive(zeroize::ZeroizeOnDrop)]
pub(super) struct InputMaterial {
    /// Its offset `R^i` (zero for the keyless evaluator).
    pub offset: Block,
    /// `lambda_w` of every input wire (its own wires only; 0 elsewhere).
    pub lam: Vec<bool>,
    /// Keyed garbler: the seed of its active keys of the offline wires.
    pub seed: [u8; 32],
}

/// Offline-input state of one party of one garbling.
pub(super) struct Known {
    /// Garblers: the input material.
    pub mat: Option<InputMaterial>,
    /// Offline wires, in order.
    wires: Vec<usize>,
    /// Masked bits of the offline wires, by wire.
    masked: Vec<bool>,
    /// Owners whose offline masked bits are in (true for those without offline wires).
    have: Vec<bool>,
    /// Evaluator: `keys[i * K + s]` for the i-th offline wire and the keyed garbler in slot s,
    /// once every seed and bit is in.
    pub keys: Vec<Block>,
    /// Evaluator: the keyed garblers' seeds (`None` until their Final; none needed without
    /// offline wires).
    seeds: Vec<Option<[u8; 32]>>,
    /// Evaluator: whether `keys` are derived.
    derived: bool,
}

/// The `i`-th block of the stream of `seed` for the garbling `session`, for every `i` below
/// `count`.
fn stream(seed: &[u8; 32], session: &[u8; 16], count: usize) -> Vec<Block> {
    let mut h = blake3::Hasher::new_keyed(seed);
    h.update(b"seco bmr offline keys v1");
    h.update(session);
    let mut bytes = vec![0u8; 16 * count];
    h.finalize_xof().fill(&mut bytes);
    Block::vec_from_le_bytes(&bytes)
}

impl Known {
    pub fn new(cfg: &BmrConfig, me: PartyId, mat: Option<InputMaterial>) -> Self {
        let wires = cfg.offline_wires();
        let evaluator = me == cfg.evaluator;
        Known {
            have: (0..cfg.garblers)
                .map(|p| cfg.offline_inputs_of(p).is_empty())
                .collect(),
            keys: Vec::new(),
            seeds: (0..cfg.garblers)
                .map(|p| (!evaluator || wires.is_empty() || !cfg.is_keyed(p)).then_some([0; 32]))
                .collect(),
            derived: !evaluator,
            masked: vec![false; cfg.input_owners.len()],
            wires,
            mat,
        }
    }

    /// Whether every owner's offline masked bits are in (a keyed garbler garbles only then).
    pub fn inputs_in(&self) -> bool {
        self.have.iter().all(|&h| h)
    }

    /// Whether this party's part of the offline inputs is complete (the evaluator: its keys
    /// of the offline wires are derived).
    pub fn is_complete(&self) -> bool {
        self.inputs_in() && self.derived
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
        let out = (0..cfg.num_parties())
            .filter(|&p| p != me)
            .map(|p| (p, msg(cfg, me, body.clone())))
            .collect();
        self.derive(cfg);
        Ok(out)
    }

    /// An owner's offline masked bits.
    pub fn handle(
        &mut self,
        cfg: &BmrConfig,
        me: PartyId,
        from: PartyId,
        body: Body,
    ) -> Result<()> {
        match body {
            Body::OfflineInputs(bits) if cfg.is_garbler(from) => {
                take_masked(
                    &mut self.masked,
                    &mut self.have,
                    from,
                    &cfg.offline_inputs_of(from),
                    &bits,
                    ("offline inputs", "offline masked bits"),
                )?;
                self.derive(cfg);
                Ok(())
            }
            body => Err(BmrError::WrongRound {
                party: me,
                round: 0,
                got: body.round(),
            }),
        }
    }

    /// Keyed garbler, once [`Known::inputs_in`]: its keys `k^j_{w,0} = s_j(w) ^ Lambda_w R^j`
    /// of the offline wires, as (wire, key).
    pub fn offline_key0(&self, cfg: &BmrConfig) -> Vec<(usize, Block)> {
        let Some(mat) = &self.mat else {
            return Vec::new();
        };
        let s = stream(&mat.seed, &cfg.session, self.wires.len());
        self.wires
            .iter()
            .zip(s)
            .map(|(&w, s)| {
                let lam = self.masked[w];
                let active = Block((s.0 & !1) | u128::from(lam));
                (w, active ^ mat.offset.select(lam))
            })
            .collect()
    }

    /// Keyed garbler: the seed the evaluator needs (none without offline wires).
    pub fn seed(&self) -> Option<[u8; 32]> {
        if self.wires.is_empty() {
            return None;
        }
        self.mat.as_ref().map(|m| m.seed)
    }

    /// Evaluator: keyed garbler `from`'s seed (from its Final).
    pub fn take_seed(
        &mut self,
        cfg: &BmrConfig,
        from: PartyId,
        seed: Option<[u8; 32]>,
    ) -> Result<()> {
        let slot = self
            .seeds
            .get_mut(from)
            .ok_or(BmrError::UnknownParty { party: from })?;
        match (slot.is_none(), seed) {
            (true, Some(s)) => *slot = Some(s),
            (false, None) => {}
            _ => {
                return Err(BmrError::Length {
                    what: "offline key seeds",
                    expected: usize::from(slot.is_none()),
                    actual: usize::from(seed.is_some()),
                })
            }
        }
        self.derive(cfg);
        Ok(())
    }

    /// Evaluator, once every seed and every masked bit is in: every keyed garbler's active key
    /// of every offline wire.
    fn derive(&mut self, cfg: &BmrConfig) {
        if self.derived || !self.inputs_in() || self.seeds.iter().any(Option::is_none) {
            return;
        }
        let k = cfg.num_keyed();
        self.keys = vec![Block::ZERO; self.wires.len() * k];
        for (p, seed) in self.seeds.iter().enumerate() {
            let (Some(seed), Some(slot)) = (seed, cfg.slot_of(p)) else {
                continue;
            };
            let s = stream(seed, &cfg.session, self.wires.len());
            for (i, (&w, s)) in self.wires.iter().zip(s).enumerate() {
                self.keys[i * k + slot] = Block((s.0 & !1) | u128::from(self.masked[w]));
            }
        }
        self.derived = true;
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

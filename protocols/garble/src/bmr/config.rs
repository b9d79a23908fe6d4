//! Who takes part in a BMR session and who owns which wire.

use serde::{Deserialize, Serialize};

use super::{BmrError, Result};
use crate::circuit::{Circuit, PartyId, Program};

/// Most garblers in one session (tweaks reserve 8 bits for the party index).
pub const MAX_GARBLERS: usize = 64;

/// Most AND gates in one garbling (tweak indices are 64 bits: gate index, then 16 bits).
pub const MAX_AND: usize = 1 << 40;

/// Public parameters of one BMR garbling, identical at every party.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BmrConfig {
    /// Session id: unique per garbling; bound into every message and every base OT.
    pub session: [u8; 16],
    /// Number of garblers n (parties `0..n`).
    pub garblers: usize,
    /// The evaluator: a garbler (`< n`) or an extra party with id `n` that garbles nothing.
    /// An evaluator that is a garbler holds mask shares (and may own inputs and outputs) but
    /// no keys: it is never a key slot of the tables ("keyless evaluator", `mod.rs`).
    pub evaluator: PartyId,
    /// Owner of each input wire (a garbler), in input-wire order.
    #[serde(with = "super::compact::owners")]
    pub input_owners: Vec<PartyId>,
    /// Party that learns each output wire, in output order.
    #[serde(with = "super::compact::owners")]
    pub output_owners: Vec<PartyId>,
    /// Digest of the circuit ([`Circuit::digest`]).
    pub circuit_digest: [u8; 32],
    /// Input wires whose values their owner fixes during preprocessing
    /// ([`super::OfflineParty::provide_inputs`]): their masked bits and the garblers' keys
    /// reach the evaluator offline, so the online phase carries only the other wires. Empty:
    /// every input arrives online.
    #[serde(default, with = "super::compact::flags")]
    pub offline: Vec<bool>,
    /// The key slot that begins the table chain of round 5; the chain runs through the
    /// slots in order from there, cyclically, and its last place sends the whole table to
    /// the evaluator. Every place but the first receives a table part besides its OT columns
    /// (with 3 servers the second receives about 2.9x the bytes of the first), so `seco`
    /// rotates the start from chunk to chunk (`with_chain_start`) to spread that load over
    /// the keyed garblers.
    #[serde(default)]
    pub chain_start: usize,
}

impl BmrConfig {
    /// A configuration for `circuit`, checked against it.
    pub fn new(
        session: [u8; 16],
        circuit: &Circuit,
        garblers: usize,
        evaluator: PartyId,
        input_owners: Vec<PartyId>,
        output_owners: Vec<PartyId>,
    ) -> Result<Self> {
        let owners = (input_owners, output_owners);
        let c = Self::unchecked(session, circuit.digest(), garblers, evaluator, owners);
        c.check(circuit)?;
        Ok(c)
    }

    /// [`BmrConfig::new`] for a compiled program: its circuit's digest is the program's
    /// (`Program::circuit_digest`), so the circuit is not hashed again.
    pub fn for_program(
        session: [u8; 16],
        program: &Program,
        garblers: usize,
        evaluator: PartyId,
        input_owners: Vec<PartyId>,
        output_owners: Vec<PartyId>,
    ) -> Result<Self> {
        let owners = (input_owners, output_owners);
        let c = Self::unchecked(session, program.circuit_digest, garblers, evaluator, owners);
        c.check_program(program)?;
        Ok(c)
    }

    fn unchecked(
        session: [u8; 16],
        circuit_digest: [u8; 32],
        garblers: usize,
        evaluator: PartyId,
        (input_owners, output_owners): (Vec<PartyId>, Vec<PartyId>),
    ) -> Self {
        BmrConfig {
            session,
            garblers,
            evaluator,
            input_owners,
            output_owners,
            circuit_digest,
            offline: Vec::new(),
            chain_start: 0,
        }
    }

    /// Marks the input wires whose values are known in preprocessing (`offline[w]`, one flag
    /// per input wire).
    pub fn with_offline_inputs(mut self, offline: Vec<bool>) -> Result<Self> {
        if offline.len() != self.input_owners.len() {
            return Err(BmrError::Config(format!(
                "{} offline flags for {} input wires",
                offline.len(),
                self.input_owners.len()
            )));
        }
        self.offline = offline;
        Ok(self)
    }

    /// Starts the table chain at key slot `start` modulo the number of keyed garblers
    /// (`chain_start`).
    pub fn with_chain_start(mut self, start: usize) -> Self {
        self.chain_start = start % self.num_keyed().max(1);
        self
    }

    /// Checks ids, counts and the circuit digest.
    pub fn check(&self, circuit: &Circuit) -> Result<()> {
        self.check_parts(
            circuit.num_inputs(),
            circuit.num_outputs(),
            circuit.counts().and as usize,
            &circuit.digest(),
        )
    }

    /// [`BmrConfig::check`] against a compiled program (no circuit needed).
    pub fn check_program(&self, program: &Program) -> Result<()> {
        self.check_parts(
            program.num_inputs as usize,
            program.outputs.len(),
            program.num_and,
            &program.circuit_digest,
        )
    }

    fn check_parts(
        &self,
        n_in: usize,
        n_out: usize,
        n_and: usize,
        digest: &[u8; 32],
    ) -> Result<()> {
        if n_and >= MAX_AND {
            return Err(BmrError::Config(format!(
                "{n_and} AND gates: at most {MAX_AND} per garbling"
            )));
        }
        if self.garblers == 0 || self.garblers > MAX_GARBLERS {
            return Err(BmrError::Config(format!(
                "garblers must be 1..={MAX_GARBLERS}, got {}",
                self.garblers
            )));
        }
        if self.evaluator > self.garblers {
            return Err(BmrError::Config(format!(
                "evaluator {} is not a party",
                self.evaluator
            )));
        }
        if self.num_keyed() == 0 {
            return Err(BmrError::Config(
                "at least one garbler besides the evaluator must hold keys".into(),
            ));
        }
        if self.chain_start >= self.num_keyed() {
            return Err(BmrError::Config(format!(
                "the table chain starts at slot {} of {}",
                self.chain_start,
                self.num_keyed()
            )));
        }
        if self.input_owners.len() != n_in || self.output_owners.len() != n_out {
            return Err(BmrError::Config(
                "owner lists do not match the circuit's inputs/outputs".into(),
            ));
        }
        if !self.offline.is_empty() && self.offline.len() != n_in {
            return Err(BmrError::Config(
                "offline flags do not match the circuit's inputs".into(),
            ));
        }
        if let Some(p) = self.input_owners.iter().find(|&&p| p >= self.garblers) {
            return Err(BmrError::Config(format!(
                "input owner {p} is not a garbler"
            )));
        }
        if let Some(p) = self
            .output_owners
            .iter()
            .find(|&&p| p >= self.num_parties())
        {
            return Err(BmrError::Config(format!("output owner {p} is not a party")));
        }
        if &self.circuit_digest != digest {
            return Err(BmrError::CircuitMismatch);
        }
        Ok(())
    }

    /// The 56-bit nonce in every hash tweak of this garbling (`crate::hash::tweak_in`), derived
    /// from the garbling id: garblings that share offsets (one OT setup per session) never
    /// share tweaks unless their ids' nonces collide (probability `2^-56` per pair, and then
    /// the hashed keys are still fresh and independent).
    pub fn tweak_nonce(&self) -> u64 {
        let h = blake3::Hasher::new_derive_key("seco bmr tweak nonce v1")
            .update(&self.session)
            .finalize();
        let mut b = [0u8; 8];
        b.copy_from_slice(&h.as_bytes()[..8]);
        u64::from_le_bytes(b) & ((1u64 << 56) - 1)
    }

    /// Garblers plus the evaluator if it is an extra party.
    pub fn num_parties(&self) -> usize {
        self.garblers + usize::from(self.evaluator == self.garblers)
    }

    /// Whether `p` garbles (holds mask shares; the evaluator may be one).
    pub fn is_garbler(&self, p: PartyId) -> bool {
        p < self.garblers
    }

    /// Whether `p` is a keyed garbler: a garbler other than the evaluator. Only keyed
    /// garblers have an offset `R^p`, wire keys and a key slot in every garbled row.
    pub fn is_keyed(&self, p: PartyId) -> bool {
        p < self.garblers && p != self.evaluator
    }

    /// The keyed garblers in party order; slot `s` of every garbled row is `keyed()[s]`'s key.
    pub fn keyed(&self) -> Vec<PartyId> {
        (0..self.garblers).filter(|&p| self.is_keyed(p)).collect()
    }

    /// Number of keyed garblers (key slots per garbled row).
    pub fn num_keyed(&self) -> usize {
        self.garblers - usize::from(self.evaluator < self.garblers)
    }

    /// The keyed garblers in the order of the table chain of round 5: the slots from
    /// `chain_start` on, cyclically.
    pub fn chain(&self) -> Vec<PartyId> {
        let mut keyed = self.keyed();
        let start = self.chain_start.min(keyed.len().saturating_sub(1));
        keyed.rotate_left(start);
        keyed
    }

    /// The table chain of round 5: the party whose part `p` waits for (the keyed garbler
    /// before it in [`Self::chain`]; for the evaluator the last one), none for the first
    /// and for others.
    pub fn chain_prev(&self, p: PartyId) -> Option<PartyId> {
        let chain = self.chain();
        if p == self.evaluator {
            return chain.last().copied();
        }
        let at = chain.iter().position(|&q| q == p)?;
        at.checked_sub(1).map(|at| chain[at])
    }

    /// Where keyed garbler `p` sends its part of the table chain: the next one in
    /// [`Self::chain`], the evaluator after the last.
    pub fn chain_next(&self, p: PartyId) -> PartyId {
        let chain = self.chain();
        match chain.iter().position(|&q| q == p) {
            Some(at) if at + 1 < chain.len() => chain[at + 1],
            _ => self.evaluator,
        }
    }

    /// The key slot of keyed garbler `p`.
    pub fn slot_of(&self, p: PartyId) -> Option<usize> {
        self.is_keyed(p)
            .then(|| p - usize::from(self.evaluator < p))
    }

    /// Input wires owned by `p`, in order.
    pub fn inputs_of(&self, p: PartyId) -> Vec<usize> {
        self.input_owners
            .iter()
            .enumerate()
            .filter(|(_, &o)| o == p)
            .map(|(w, _)| w)
            .collect()
    }

    /// Whether input wire `w` is fixed in preprocessing.
    pub fn is_offline(&self, w: usize) -> bool {
        self.offline.get(w).copied().unwrap_or(false)
    }

    /// The number of input wires fixed in preprocessing.
    pub fn num_offline(&self) -> usize {
        let n_in = self.input_owners.len();
        self.offline.iter().take(n_in).filter(|&&b| b).count()
    }

    /// The number of online input wires of each garbler (one pass over the wires).
    pub fn online_input_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.garblers];
        for (w, &o) in self.input_owners.iter().enumerate() {
            if !self.is_offline(w) {
                if let Some(c) = counts.get_mut(o) {
                    *c += 1;
                }
            }
        }
        counts
    }

    /// Input wires owned by `p` whose values arrive online, in order.
    pub fn online_inputs_of(&self, p: PartyId) -> Vec<usize> {
        self.inputs_of(p)
            .into_iter()
            .filter(|&w| !self.is_offline(w))
            .collect()
    }

    /// Input wires owned by `p` that it fixes in preprocessing, in order.
    pub fn offline_inputs_of(&self, p: PartyId) -> Vec<usize> {
        self.inputs_of(p)
            .into_iter()
            .filter(|&w| self.is_offline(w))
            .collect()
    }

    /// Input wires fixed in preprocessing, in order.
    pub fn offline_wires(&self) -> Vec<usize> {
        (0..self.input_owners.len())
            .filter(|&w| self.is_offline(w))
            .collect()
    }

    /// Input wires whose values arrive online, in order.
    pub fn online_wires(&self) -> Vec<usize> {
        (0..self.input_owners.len())
            .filter(|&w| !self.is_offline(w))
            .collect()
    }

    /// Splits party `p`'s input bits (all its wires, in order) into (offline, online) bits.
    pub fn split_own_inputs(&self, p: PartyId, bits: &[bool]) -> Result<(Vec<bool>, Vec<bool>)> {
        let wires = self.inputs_of(p);
        if bits.len() != wires.len() {
            return Err(BmrError::Length {
                what: "input bits",
                expected: wires.len(),
                actual: bits.len(),
            });
        }
        let (mut off, mut on) = (Vec::new(), Vec::new());
        for (&w, &b) in wires.iter().zip(bits) {
            if self.is_offline(w) {
                off.push(b);
            } else {
                on.push(b);
            }
        }
        Ok((off, on))
    }

    /// Output positions owned by `p`, in order.
    pub fn outputs_of(&self, p: PartyId) -> Vec<usize> {
        self.output_owners
            .iter()
            .enumerate()
            .filter(|(_, &o)| o == p)
            .map(|(i, _)| i)
            .collect()
    }

    /// Garblers that own at least one input wire.
    pub fn input_parties(&self) -> Vec<PartyId> {
        (0..self.garblers)
            .filter(|&p| self.input_owners.contains(&p))
            .collect()
    }

    /// Whether `p` receives the final offline message (it evaluates or owns outputs).
    pub fn receives_final(&self, p: PartyId) -> bool {
        p == self.evaluator || self.output_owners.contains(&p)
    }

    /// Number of blocks in the evaluator's table: 4 rows x one key per keyed garbler per AND
    /// gate.
    pub fn table_len(&self, program: &Program) -> usize {
        4 * self.num_keyed() * program.num_and
    }
}

/// Groups of input bits assigned to parties round-robin: group `g` to party `g % parties`.
pub fn owners_round_robin(groups: &[u32], parties: usize) -> Vec<PartyId> {
    groups
        .iter()
        .enumerate()
        .flat_map(|(g, &bits)| std::iter::repeat_n(g % parties.max(1), bits as usize))
        .collect()
}

//! The online phase of BMR as a sans-IO state machine, built from a [`Prepared`] (consumed).
//!
//! ```text
//! (1) MaskedInputs  input owner p -> every other keyed garbler: Lambda_w = x_w ^ lambda_w,
//!                   p's online wires (the keyless evaluator reads Lambda_w from the keys)
//! (2) InputKeys     every keyed garbler j -> evaluator: k^j_{w,Lambda_w} for all online input
//!                   wires
//!                   (the offline wires' keys are in the evaluator's Prepared, `known.rs`)
//!     evaluator: BMR evaluation (eval.rs) -> Lambda of the output wires
//! (3) Outputs       evaluator -> each output owner: Lambda of its output wires
//!     owner: v = Lambda ^ lambda (its output masks from the offline phase)
//! ```
//! Only the owner of an output learns it: the evaluator sees masked values only, and the
//! masks of an output wire were sent to its owner alone. An evaluator that owns outputs
//! (SECO's stage circuits: the receiver evaluates) unmasks them itself, with no round 3.

use std::sync::Arc;

use super::eval::evaluate_split;
use super::known::take_masked;
use super::msg::{BmrMsg, Body, Outgoing};
use super::prepared::Prepared;
use super::{expect_len, BmrError, Result};
use crate::block::{Block, PackedBits};
use crate::circuit::{Circuit, PartyId, Program, Split};

/// One party's online state machine. Prints as `OnlineParty([redacted])`; the active keys and
/// masked input bits are zeroized on drop (its [`Prepared`] wipes itself).
pub struct OnlineParty {
    prep: Prepared,
    program: Arc<Split>,
    me: PartyId,
    /// The input wires whose values arrive online, in order.
    online: Vec<usize>,
    /// Garbler: the external values of the input wires known so far.
    masked: Vec<bool>,
    /// Garbler: which input owners' masked bits arrived (own included).
    have_masked: Vec<bool>,
    keys_sent: bool,
    /// Evaluator: `keys[w * n + j]`, the active keys of the input wires.
    keys: Vec<Block>,
    have_keys: Vec<bool>,
    evaluated: bool,
    /// The values of the output wires this party owns, once known.
    output: Option<Vec<bool>>,
}

seco_core::redacted_debug!(OnlineParty);

impl Drop for OnlineParty {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.keys);
        zeroize::Zeroize::zeroize(&mut self.masked);
    }
}

impl OnlineParty {
    /// Starts the online phase with this party's input bits (for its online input wires, in
    /// order; `BmrConfig::split_own_inputs` separates them from the offline ones).
    pub fn new(
        prep: Prepared,
        circuit: &Circuit,
        inputs: &[bool],
    ) -> Result<(Self, Vec<Outgoing>)> {
        // Evaluation runs the circuit's independent parts in parallel, each compacted so that
        // only its live keys are kept.
        let program = Arc::new(Split::new(Arc::new(Program::compile(circuit)?)));
        Self::with_program(prep, program, inputs)
    }

    /// [`OnlineParty::new`] with a cached program, `Split::new(Arc::new(Program::compile(c)?))`
    /// (compiling costs about as much as evaluating; a server can compile each layer's circuit
    /// once and share the `Arc` between bundles).
    pub fn with_program(
        prep: Prepared,
        program: Arc<Split>,
        inputs: &[bool],
    ) -> Result<(Self, Vec<Outgoing>)> {
        // Checks the configuration against the program too.
        prep.validate(&program.whole)?;
        let cfg = &prep.config;
        let me = prep.party;
        let mine = cfg.online_inputs_of(me);
        expect_len("input bits", mine.len(), inputs.len())?;
        let n_in = program.whole.num_inputs as usize;
        let n = cfg.garblers;
        let k = cfg.num_keyed();
        let online = cfg.online_wires();
        let mut keys = Vec::new();
        if me == cfg.evaluator && k > 0 {
            // One pass in wire order: the offline wires' keys (validated: `k` per offline
            // wire, in wire order), zeros where the online keys will go.
            keys.reserve_exact(n_in * k);
            let mut offline = prep.offline_keys.chunks_exact(k);
            for w in 0..n_in {
                if !cfg.is_offline(w) {
                    keys.resize(keys.len() + k, Block::ZERO);
                    continue;
                }
                let ks = offline.next().ok_or_else(|| {
                    BmrError::Config("fewer offline keys than offline wires".into())
                })?;
                keys.extend_from_slice(ks);
            }
        }
        let mut party = OnlineParty {
            masked: vec![false; n_in],
            have_masked: cfg.online_input_counts().iter().map(|&c| c == 0).collect(),
            keys_sent: !cfg.is_keyed(me),
            keys,
            online,
            have_keys: (0..n).map(|p| !cfg.is_keyed(p)).collect(),
            evaluated: me != cfg.evaluator,
            output: if cfg.outputs_of(me).is_empty() {
                Some(Vec::new())
            } else {
                None
            },
            program,
            me,
            prep,
        };
        let mut out = Vec::new();
        if let Some(g) = &party.prep.garbler {
            let lam = g.input_masks.to_bools();
            let bits: Vec<bool> = inputs.iter().zip(&lam).map(|(&x, &l)| x ^ l).collect();
            for (&w, &b) in mine.iter().zip(&bits) {
                party.masked[w] = b;
            }
            party.have_masked[me] = true;
            if !mine.is_empty() {
                let body = Body::MaskedInputs(PackedBits::from_bools(&bits));
                out.extend(party.to_garblers(body));
            }
        }
        out.extend(party.progress()?);
        Ok((party, out))
    }

    /// To every other garbler that sends input keys: the keyless evaluator reads the masked
    /// values from the keys' lsbs and would get the masked inputs for nothing (and, done as
    /// soon as its keys are in, after it finished).
    fn to_garblers(&self, body: Body) -> Vec<Outgoing> {
        let cfg = &self.prep.config;
        (0..cfg.garblers)
            .filter(|&p| p != self.me && (p != cfg.evaluator || cfg.is_keyed(p)))
            .map(|p| {
                (
                    p,
                    BmrMsg {
                        session: self.prep.config.session,
                        from: self.me,
                        body: body.clone(),
                    },
                )
            })
            .collect()
    }

    /// Whether this party has nothing left to do.
    pub fn is_done(&self) -> bool {
        self.keys_sent && self.evaluated && self.output.is_some()
    }

    /// The values of the output wires this party owns (in output order), once known.
    pub fn output(&self) -> Option<&[bool]> {
        self.output.as_deref()
    }

    /// Handles a message from party `from`; returns the messages to send.
    pub fn handle(&mut self, from: PartyId, msg: BmrMsg) -> Result<Vec<Outgoing>> {
        let cfg = &self.prep.config;
        if msg.session != cfg.session {
            return Err(BmrError::WrongSession);
        }
        if from >= cfg.num_parties() || from == self.me {
            return Err(BmrError::UnknownParty { party: from });
        }
        if msg.from != from {
            return Err(BmrError::WrongSender {
                claimed: msg.from,
                actual: from,
            });
        }
        let wrong = |body: &Body| BmrError::WrongRound {
            party: self.me,
            round: 10,
            got: body.round(),
        };
        match msg.body {
            Body::MaskedInputs(bits) if cfg.is_garbler(self.me) && cfg.is_garbler(from) => {
                take_masked(
                    &mut self.masked,
                    &mut self.have_masked,
                    from,
                    &cfg.online_inputs_of(from),
                    &bits,
                    ("online 1 (masked inputs)", "masked input bits"),
                )?;
            }
            Body::InputKeys(keys) if self.me == cfg.evaluator && cfg.is_keyed(from) => {
                if self.have_keys[from] {
                    return Err(BmrError::Duplicate {
                        from,
                        round: "online 2 (input keys)",
                    });
                }
                expect_len("input keys", self.online.len(), keys.len())?;
                self.place_keys(from, &keys);
            }
            Body::Outputs(bits) if from == cfg.evaluator && !cfg.outputs_of(self.me).is_empty() => {
                if self.output.is_some() {
                    return Err(BmrError::Duplicate {
                        from,
                        round: "online 3 (outputs)",
                    });
                }
                expect_len("output bits", self.prep.output_masks.len(), bits.len())?;
                self.output = Some(self.unmask(&bits.to_bools()));
            }
            body => return Err(wrong(&body)),
        }
        self.progress()
    }

    /// Places a keyed garbler's keys of the online wires (in order) in its slot.
    fn place_keys(&mut self, from: PartyId, keys: &[Block]) {
        let cfg = &self.prep.config;
        let (k, Some(slot)) = (cfg.num_keyed(), cfg.slot_of(from)) else {
            return;
        };
        for (&w, &key) in self.online.iter().zip(keys) {
            self.keys[w * k + slot] = key;
        }
        self.have_keys[from] = true;
    }

    fn unmask(&self, lambda_masked: &[bool]) -> Vec<bool> {
        lambda_masked
            .iter()
            .enumerate()
            .map(|(i, &b)| b ^ self.prep.output_masks.get(i))
            .collect()
    }

    /// Sends keys once all masked inputs are in; evaluates once all keys are in. Borrows the
    /// configuration (tens of thousands of wires per stage chunk) rather than copying it.
    fn progress(&mut self) -> Result<Vec<Outgoing>> {
        let mut out = Vec::new();
        let (session, evaluator) = (self.prep.config.session, self.prep.config.evaluator);
        if !self.keys_sent && self.have_masked.iter().all(|&h| h) {
            let keyed = self.prep.config.is_keyed(self.me);
            if let Some(g) = self.prep.garbler.as_ref().filter(|_| keyed) {
                let keys: Vec<Block> = g
                    .input_keys
                    .iter()
                    .zip(&self.online)
                    .map(|(&k, &w)| k ^ g.offset.select(self.masked[w]))
                    .collect();
                out.push((
                    evaluator,
                    BmrMsg {
                        session,
                        from: self.me,
                        body: Body::InputKeys(keys),
                    },
                ));
            }
            self.keys_sent = true;
        }
        if !self.evaluated && self.have_keys.iter().all(|&h| h) {
            let cfg = &self.prep.config;
            let tables = self.prep.tables.as_deref().unwrap_or(&[]);
            let lambda = evaluate_split(
                &self.program,
                cfg.num_keyed(),
                cfg.tweak_nonce(),
                tables,
                &self.keys,
            )?;
            for p in (0..cfg.num_parties()).filter(|&p| p != self.me) {
                let pos = cfg.outputs_of(p);
                if !pos.is_empty() {
                    let bits: Vec<bool> = pos.iter().map(|&o| lambda[o]).collect();
                    let body = Body::Outputs(PackedBits::from_bools(&bits));
                    out.push((
                        p,
                        BmrMsg {
                            session,
                            from: self.me,
                            body,
                        },
                    ));
                }
            }
            let mine: Vec<bool> = cfg.outputs_of(self.me).iter().map(|&o| lambda[o]).collect();
            if !mine.is_empty() {
                self.output = Some(self.unmask(&mine));
            }
            self.evaluated = true;
            self.keys = Vec::new();
        }
        Ok(out)
    }
}

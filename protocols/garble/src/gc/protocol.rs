//! The sans-IO two-party half-gates protocol (semi-honest): a garbler and an evaluator, each
//! owning some input wires.
//!
//! ```text
//! (1) G -> E: BaseReceiver    E -> G: BaseSender     Masny-Rindal base OTs, in parallel
//!     G is the IKNP sender with correlation = its free-XOR offset R
//! (2) E -> G: Extend          IKNP columns, choices = E's input bits
//! (3) G -> E: Garbled         tables, G's active input labels, output decoding bits
//!     zero-label of E's input wire i := q_i, so E's label t_i = q_i ^ x_i R is the active one
//! (4) E -> G: Output          the output bits (both parties learn the output)
//! ```
//! Every message is checked against the state it arrives in; anything else is a typed error
//! and leaves the state unchanged.

use rand::{CryptoRng, Rng};
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use super::halfgates::{decode, evaluate, garble};
use super::{GcError, Result};
use crate::block::{blocks_bytes, encoded_len, Block, PackedBits};
use crate::circuit::{Circuit, Program};
use crate::ot::{
    BaseReceiverMsg, BaseSenderMsg, ExtendMsg, IknpReceiver, IknpReceiverSetup, IknpSender,
    IknpSenderSetup,
};

/// Which side owns an input wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Side {
    Garbler,
    Evaluator,
}

/// Messages of the two-party protocol.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HgMsg {
    /// (1) garbler -> evaluator.
    BaseReceiver(BaseReceiverMsg),
    /// (1) evaluator -> garbler.
    BaseSender(BaseSenderMsg),
    /// (2) evaluator -> garbler.
    Extend(ExtendMsg),
    /// (3) garbler -> evaluator.
    Garbled {
        #[serde(with = "blocks_bytes")]
        tables: Vec<Block>,
        #[serde(with = "blocks_bytes")]
        garbler_labels: Vec<Block>,
        decode: PackedBits,
    },
    /// (4) evaluator -> garbler.
    Output(PackedBits),
}

impl HgMsg {
    fn name(&self) -> &'static str {
        match self {
            HgMsg::BaseReceiver(_) => "BaseReceiver",
            HgMsg::BaseSender(_) => "BaseSender",
            HgMsg::Extend(_) => "Extend",
            HgMsg::Garbled { .. } => "Garbled",
            HgMsg::Output(_) => "Output",
        }
    }

    /// Exact encoded size in bytes.
    pub fn encoded_len(&self) -> usize {
        encoded_len(self)
    }
}

/// The result both sides end with.
pub type HgOutput = Vec<bool>;

/// Input wires of `side` in wire order, checking the owner list length.
fn wires_of(program: &Program, owners: &[Side], side: Side) -> Result<Vec<usize>> {
    if owners.len() != program.num_inputs as usize {
        return Err(GcError::Length {
            what: "input owners",
            expected: program.num_inputs as usize,
            actual: owners.len(),
        });
    }
    Ok(owners
        .iter()
        .enumerate()
        .filter(|(_, &s)| s == side)
        .map(|(i, _)| i)
        .collect())
}

/// The compacted program, the input wires of `me` and those of the other side, checking
/// that `inputs` holds one bit per wire of `me`.
fn compile_side(
    circuit: &Circuit,
    owners: &[Side],
    me: Side,
    inputs: &[bool],
) -> Result<(Program, Vec<usize>, Vec<usize>)> {
    let (other, what) = match me {
        Side::Garbler => (Side::Evaluator, "garbler input bits"),
        Side::Evaluator => (Side::Garbler, "evaluator input bits"),
    };
    let program = Program::compile(circuit)?.compact();
    let mine = wires_of(&program, owners, me)?;
    let theirs = wires_of(&program, owners, other)?;
    if inputs.len() != mine.len() {
        return Err(GcError::Length {
            what,
            expected: mine.len(),
            actual: inputs.len(),
        });
    }
    Ok((program, mine, theirs))
}

enum GState {
    /// (1) waiting for the evaluator's base-OT message.
    AwaitBase(IknpSenderSetup),
    /// (2) waiting for the IKNP extension.
    AwaitExtend(IknpSender),
    /// (4) waiting for the output.
    AwaitOutput,
    Done(HgOutput),
    /// A transition is in progress (only observable after a panic, which cannot happen).
    Busy,
}

/// The garbler. Its offset, labels and input bits are zeroized on drop; prints as
/// `HgGarbler([redacted])`.
pub struct HgGarbler {
    program: Program,
    mine: Vec<usize>,
    theirs: Vec<usize>,
    inputs: Vec<bool>,
    delta: Block,
    /// Zero-labels of the garbler's own input wires (secret).
    own_zero: Vec<Block>,
    state: GState,
}

seco_core::redacted_debug!(HgGarbler);

impl Drop for HgGarbler {
    fn drop(&mut self) {
        self.delta.zeroize();
        self.own_zero.zeroize();
        self.inputs.zeroize();
    }
}

impl HgGarbler {
    /// Starts the garbler with its input bits (in the order of its wires). Returns the first
    /// message.
    pub fn new<R: Rng + CryptoRng + ?Sized>(
        rng: &mut R,
        sid: [u8; 16],
        circuit: &Circuit,
        owners: &[Side],
        inputs: &[bool],
    ) -> Result<(Self, Vec<HgMsg>)> {
        let (program, mine, theirs) = compile_side(circuit, owners, Side::Garbler, inputs)?;
        let delta = Block(Block::random(rng).0 | 1);
        let own_zero = mine.iter().map(|_| Block::random(rng)).collect();
        let (setup, msg) = IknpSenderSetup::new(rng, sid, delta);
        let g = HgGarbler {
            program,
            mine,
            theirs,
            inputs: inputs.to_vec(),
            delta,
            own_zero,
            state: GState::AwaitBase(setup),
        };
        Ok((g, vec![HgMsg::BaseReceiver(msg)]))
    }

    /// Handles a message from the evaluator.
    pub fn handle(&mut self, msg: HgMsg) -> Result<Vec<HgMsg>> {
        match (std::mem::replace(&mut self.state, GState::Busy), msg) {
            (GState::AwaitBase(setup), HgMsg::BaseSender(m)) => match setup.finish(&m) {
                Ok(s) => {
                    self.state = GState::AwaitExtend(s);
                    Ok(vec![])
                }
                Err(e) => Err(e.into()),
            },
            (GState::AwaitExtend(mut s), HgMsg::Extend(m)) => match self.garble(&mut s, &m) {
                Ok(out) => {
                    self.state = GState::AwaitOutput;
                    Ok(vec![out])
                }
                Err(e) => {
                    self.state = GState::AwaitExtend(s);
                    Err(e)
                }
            },
            (GState::AwaitOutput, HgMsg::Output(bits))
                if bits.len() == self.program.outputs.len() =>
            {
                self.state = GState::Done(bits.to_bools());
                Ok(vec![])
            }
            (state, msg) => {
                let name = state_name(&state);
                self.state = state;
                Err(GcError::UnexpectedMessage {
                    state: name,
                    got: msg.name(),
                })
            }
        }
    }

    fn garble(&self, sender: &mut IknpSender, ext: &ExtendMsg) -> Result<HgMsg> {
        let (q, _) = sender.extend(ext, self.theirs.len())?;
        let mut zero = vec![Block::ZERO; self.program.num_inputs as usize];
        for (&w, &l) in self.mine.iter().zip(&self.own_zero) {
            zero[w] = l;
        }
        for (&w, &l) in self.theirs.iter().zip(&q) {
            zero[w] = l;
        }
        let mut garbling = garble(&self.program, self.delta, &zero)?;
        zero.zeroize();
        let garbler_labels = self
            .own_zero
            .iter()
            .zip(&self.inputs)
            .map(|(&l, &x)| l ^ self.delta.select(x))
            .collect();
        Ok(HgMsg::Garbled {
            decode: garbling.decode_bits(),
            tables: std::mem::take(&mut garbling.tables),
            garbler_labels,
        })
    }

    /// The output, once the evaluator revealed it.
    pub fn output(&self) -> Option<&[bool]> {
        match &self.state {
            GState::Done(o) => Some(o),
            _ => None,
        }
    }

    /// Number of AND gates (tables sent).
    pub fn num_and(&self) -> usize {
        self.program.num_and
    }
}

fn state_name(s: &GState) -> &'static str {
    match s {
        GState::AwaitBase(_) => "garbler awaiting base OT",
        GState::AwaitExtend(_) => "garbler awaiting extension",
        GState::AwaitOutput => "garbler awaiting output",
        GState::Done(_) => "garbler done",
        GState::Busy => "garbler busy",
    }
}

enum EState {
    /// (1) waiting for the garbler's base-OT message.
    AwaitBase(IknpReceiverSetup),
    /// (3) waiting for the garbled circuit; holds the active labels of its own wires.
    AwaitGarbled(Vec<Block>),
    Done(HgOutput),
    Busy,
}

/// The evaluator. Its input bits and active labels are zeroized on drop; prints as
/// `HgEvaluator([redacted])`.
pub struct HgEvaluator {
    program: Program,
    mine: Vec<usize>,
    theirs: Vec<usize>,
    inputs: Vec<bool>,
    state: EState,
}

seco_core::redacted_debug!(HgEvaluator);

impl Drop for HgEvaluator {
    fn drop(&mut self) {
        self.inputs.zeroize();
        if let EState::AwaitGarbled(labels) = &mut self.state {
            labels.zeroize();
        }
    }
}

impl HgEvaluator {
    /// Starts the evaluator with its input bits (in the order of its wires).
    pub fn new<R: Rng + CryptoRng + ?Sized>(
        rng: &mut R,
        sid: [u8; 16],
        circuit: &Circuit,
        owners: &[Side],
        inputs: &[bool],
    ) -> Result<(Self, Vec<HgMsg>)> {
        let (program, mine, theirs) = compile_side(circuit, owners, Side::Evaluator, inputs)?;
        let (setup, msg) = IknpReceiverSetup::new(rng, sid);
        let e = HgEvaluator {
            program,
            mine,
            theirs,
            inputs: inputs.to_vec(),
            state: EState::AwaitBase(setup),
        };
        Ok((e, vec![HgMsg::BaseSender(msg)]))
    }

    /// Handles a message from the garbler.
    pub fn handle(&mut self, msg: HgMsg) -> Result<Vec<HgMsg>> {
        match (std::mem::replace(&mut self.state, EState::Busy), msg) {
            (EState::AwaitBase(setup), HgMsg::BaseReceiver(m)) => match setup.finish(&m) {
                Ok(mut r) => {
                    let (ext, t, _) = IknpReceiver::extend(&mut r, &self.inputs);
                    self.state = EState::AwaitGarbled(t);
                    Ok(vec![HgMsg::Extend(ext)])
                }
                Err(e) => Err(e.into()),
            },
            (
                EState::AwaitGarbled(t),
                HgMsg::Garbled {
                    tables,
                    garbler_labels,
                    decode: d,
                },
            ) => match self.evaluate(&t, &tables, &garbler_labels, &d) {
                Ok(out) => {
                    let msg = HgMsg::Output(PackedBits::from_bools(&out));
                    self.state = EState::Done(out);
                    Ok(vec![msg])
                }
                Err(e) => {
                    self.state = EState::AwaitGarbled(t);
                    Err(e)
                }
            },
            (state, msg) => {
                let name = match &state {
                    EState::AwaitBase(_) => "evaluator awaiting base OT",
                    EState::AwaitGarbled(_) => "evaluator awaiting garbled circuit",
                    EState::Done(_) => "evaluator done",
                    EState::Busy => "evaluator busy",
                };
                self.state = state;
                Err(GcError::UnexpectedMessage {
                    state: name,
                    got: msg.name(),
                })
            }
        }
    }

    fn evaluate(
        &self,
        own: &[Block],
        tables: &[Block],
        theirs: &[Block],
        d: &PackedBits,
    ) -> Result<HgOutput> {
        if theirs.len() != self.theirs.len() {
            return Err(GcError::Length {
                what: "garbler input labels",
                expected: self.theirs.len(),
                actual: theirs.len(),
            });
        }
        let mut labels = vec![Block::ZERO; self.program.num_inputs as usize];
        for (&w, &l) in self.mine.iter().zip(own) {
            labels[w] = l;
        }
        for (&w, &l) in self.theirs.iter().zip(theirs) {
            labels[w] = l;
        }
        let out = evaluate(&self.program, tables, &labels)?;
        decode(&out, d)
    }

    /// The output, once evaluated.
    pub fn output(&self) -> Option<&[bool]> {
        match &self.state {
            EState::Done(o) => Some(o),
            _ => None,
        }
    }
}

/// Runs both sides in-process (deterministic from `rng`); returns the output and the bytes
/// sent by each side `(garbler, evaluator)`. Insecure by design (one process holds both sides'
/// inputs and labels): feature `insecure-simulation`, for tests and `seco circuit run`.
#[cfg(feature = "insecure-simulation")]
pub fn run_two_party<R: Rng + CryptoRng + ?Sized>(
    rng: &mut R,
    circuit: &Circuit,
    owners: &[Side],
    garbler_inputs: &[bool],
    evaluator_inputs: &[bool],
) -> Result<(HgOutput, [usize; 2])> {
    let sid = [7u8; 16];
    let (mut g, mut to_e) = HgGarbler::new(rng, sid, circuit, owners, garbler_inputs)?;
    let (mut e, mut to_g) = HgEvaluator::new(rng, sid, circuit, owners, evaluator_inputs)?;
    let mut bytes = [0usize; 2];
    while !to_e.is_empty() || !to_g.is_empty() {
        let mut next_e = Vec::new();
        let mut next_g = Vec::new();
        for m in to_e.drain(..) {
            bytes[0] += m.encoded_len();
            next_g.extend(e.handle(m)?);
        }
        for m in to_g.drain(..) {
            bytes[1] += m.encoded_len();
            next_e.extend(g.handle(m)?);
        }
        to_e = next_e;
        to_g = next_g;
    }
    let out = e.output().ok_or(GcError::UnexpectedMessage {
        state: "evaluator",
        got: "end of messages",
    })?;
    Ok((out.to_vec(), bytes))
}

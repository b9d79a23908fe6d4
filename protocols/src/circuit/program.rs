//! The engines' view of a circuit: constants and copies lowered away, gates scheduled in
//! AND-depth layers so that all AND gates of one layer can be hashed as one batch.
//!
//! Lowering: `Copy` gates become wire aliases (no gate); a `Const` gate becomes
//! `zero = XOR(w0, w0)` (and `INV(zero)` for one) on the first input wire, so that every engine
//! only implements XOR, INV and AND. A circuit with constants but no input is refused.
//!
//! Scheduling: the depth of a wire is the number of AND gates on its longest path from the
//! inputs. Layer `l` holds the linear gates whose output has depth `l`, in circuit order, then
//! the AND gates whose inputs have depth at most `l` (and output depth `l + 1`). AND gates are
//! numbered in this execution order; the number is the gate index `g` used for hash tweaks and
//! for the position of the garbled table.

use super::ir::{Circuit, Gate, WireId};
use super::{CircuitError, Result};

/// A linear (free) operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinOp {
    Xor { a: WireId, b: WireId, out: WireId },
    Inv { a: WireId, out: WireId },
}

/// An AND gate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AndOp {
    pub a: WireId,
    pub b: WireId,
    pub out: WireId,
}

/// One AND-depth layer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Layer {
    pub linear: Vec<LinOp>,
    pub ands: Vec<AndOp>,
}

/// A lowered, layered circuit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    /// Wires (input wires are `0..num_inputs`); one more than the circuit's if a zero wire was
    /// added for constants.
    pub num_wires: u32,
    pub num_inputs: u32,
    /// Output wires, aliases resolved.
    pub outputs: Vec<WireId>,
    pub layers: Vec<Layer>,
    pub num_and: usize,
}

impl Program {
    /// Lowers and schedules `circuit`.
    pub fn compile(circuit: &Circuit) -> Result<Self> {
        let num_inputs = circuit.num_inputs() as u32;
        let has_const = circuit
            .gates()
            .iter()
            .any(|g| matches!(g, Gate::Const { .. }));
        if has_const && num_inputs == 0 {
            return Err(CircuitError::ConstantWithoutInput);
        }
        let zero = circuit.num_wires();
        let num_wires = if has_const { zero + 1 } else { zero };
        // alias[w] = the wire that carries w's value after lowering.
        let mut alias: Vec<WireId> = (0..num_wires).collect();
        let mut depth = vec![0u32; num_wires as usize];
        let mut layers: Vec<Layer> = Vec::new();
        let layer_at = |layers: &mut Vec<Layer>, d: u32| -> usize {
            while layers.len() <= d as usize {
                layers.push(Layer::default());
            }
            d as usize
        };
        if has_const {
            let l = layer_at(&mut layers, 0);
            layers[l].linear.push(LinOp::Xor {
                a: 0,
                b: 0,
                out: zero,
            });
        }
        let mut num_and = 0usize;
        for gate in circuit.gates() {
            // Circuit validation guarantees every wire index below is in range.
            match *gate {
                Gate::Copy { a, out } => alias[out as usize] = alias[a as usize],
                Gate::Const { value: false, out } => alias[out as usize] = zero,
                Gate::Const { value: true, out } => {
                    let l = layer_at(&mut layers, 0);
                    layers[l].linear.push(LinOp::Inv { a: zero, out });
                }
                Gate::Xor { a, b, out } => {
                    let (a, b) = (alias[a as usize], alias[b as usize]);
                    let d = depth[a as usize].max(depth[b as usize]);
                    depth[out as usize] = d;
                    let l = layer_at(&mut layers, d);
                    layers[l].linear.push(LinOp::Xor { a, b, out });
                }
                Gate::Inv { a, out } => {
                    let a = alias[a as usize];
                    let d = depth[a as usize];
                    depth[out as usize] = d;
                    let l = layer_at(&mut layers, d);
                    layers[l].linear.push(LinOp::Inv { a, out });
                }
                Gate::And { a, b, out } => {
                    let (a, b) = (alias[a as usize], alias[b as usize]);
                    let d = depth[a as usize].max(depth[b as usize]);
                    depth[out as usize] = d + 1;
                    let l = layer_at(&mut layers, d);
                    layers[l].ands.push(AndOp { a, b, out });
                    num_and += 1;
                }
            }
        }
        let outputs = circuit
            .outputs()
            .iter()
            .map(|&w| alias[w as usize])
            .collect();
        Ok(Program {
            num_wires,
            num_inputs,
            outputs,
            layers,
            num_and,
        })
    }

    /// The same program with wires renumbered so that a wire's slot is reused once its value is
    /// dead (liveness in execution order), for engines that stream through the circuit keeping
    /// only live labels: the working set shrinks from all wires to the live ones, which keeps
    /// it in cache. Gate numbers (and so tables and tweaks) are unchanged; input wires keep
    /// their numbers; outputs are never overwritten. Engines that need every wire's value after
    /// the pass (BMR garbling) must use the uncompacted program.
    pub fn compact(&self) -> Program {
        const FOREVER: usize = usize::MAX;
        let n = self.num_wires as usize;
        // Last use of each wire: (layer, AND batch?) positions in execution order.
        let mut last = vec![0usize; n];
        let mut pos = 0usize;
        for layer in &self.layers {
            for op in &layer.linear {
                pos += 1;
                match *op {
                    LinOp::Xor { a, b, .. } => {
                        last[a as usize] = pos;
                        last[b as usize] = pos;
                    }
                    LinOp::Inv { a, .. } => last[a as usize] = pos,
                }
            }
            pos += 1; // the whole AND batch reads at one position
            for g in &layer.ands {
                last[g.a as usize] = pos;
                last[g.b as usize] = pos;
            }
        }
        for &o in &self.outputs {
            last[o as usize] = FOREVER;
        }
        let mut slot: Vec<WireId> = vec![0; n];
        let mut free: Vec<WireId> = Vec::new();
        let mut next: WireId = self.num_inputs;
        for (w, s) in slot.iter_mut().enumerate().take(self.num_inputs as usize) {
            *s = w as WireId;
        }
        let mut alloc = |free: &mut Vec<WireId>| {
            free.pop().unwrap_or_else(|| {
                next += 1;
                next - 1
            })
        };
        let mut layers = Vec::with_capacity(self.layers.len());
        let mut pos = 0usize;
        for layer in &self.layers {
            let mut out = Layer::default();
            for op in &layer.linear {
                pos += 1;
                // Read operands, release the dead ones, then allocate the output (an op reads
                // before it writes, so the output may take an operand's slot).
                let (new_op, ins): (LinOp, [Option<WireId>; 2]) = match *op {
                    LinOp::Xor { a, b, out: o } => (
                        LinOp::Xor {
                            a: slot[a as usize],
                            b: slot[b as usize],
                            out: o,
                        },
                        [Some(a), Some(b)],
                    ),
                    LinOp::Inv { a, out: o } => (
                        LinOp::Inv {
                            a: slot[a as usize],
                            out: o,
                        },
                        [Some(a), None],
                    ),
                };
                release(&ins, &mut last, pos, &slot, &mut free);
                let o = match new_op {
                    LinOp::Xor { out: o, .. } | LinOp::Inv { out: o, .. } => o,
                };
                slot[o as usize] = alloc(&mut free);
                out.linear.push(match new_op {
                    LinOp::Xor { a, b, .. } => LinOp::Xor {
                        a,
                        b,
                        out: slot[o as usize],
                    },
                    LinOp::Inv { a, .. } => LinOp::Inv {
                        a,
                        out: slot[o as usize],
                    },
                });
            }
            pos += 1;
            // A batch reads all its inputs before writing any output: allocate first.
            for g in &layer.ands {
                let s = alloc(&mut free);
                out.ands.push(AndOp {
                    a: slot[g.a as usize],
                    b: slot[g.b as usize],
                    out: s,
                });
                slot[g.out as usize] = s;
            }
            for g in &layer.ands {
                release(&[Some(g.a), Some(g.b)], &mut last, pos, &slot, &mut free);
            }
            layers.push(out);
        }
        let outputs = self.outputs.iter().map(|&o| slot[o as usize]).collect();
        Program {
            num_wires: next,
            num_inputs: self.num_inputs,
            outputs,
            layers,
            num_and: self.num_and,
        }
    }

    /// Iterates over all AND gates in execution order (their index is the gate number).
    pub fn ands(&self) -> impl Iterator<Item = &AndOp> {
        self.layers.iter().flat_map(|l| l.ands.iter())
    }

    /// Evaluates in the clear (used to check the lowering against [`Circuit::eval_plain`]).
    pub fn eval_plain(&self, inputs: &[bool]) -> Result<Vec<bool>> {
        if inputs.len() != self.num_inputs as usize {
            return Err(CircuitError::CountMismatch {
                what: "input bits",
                expected: u64::from(self.num_inputs),
                actual: inputs.len() as u64,
            });
        }
        let mut v = vec![false; self.num_wires as usize];
        v[..inputs.len()].copy_from_slice(inputs);
        for layer in &self.layers {
            for op in &layer.linear {
                match *op {
                    LinOp::Xor { a, b, out } => v[out as usize] = v[a as usize] ^ v[b as usize],
                    LinOp::Inv { a, out } => v[out as usize] = !v[a as usize],
                }
            }
            for g in &layer.ands {
                v[g.out as usize] = v[g.a as usize] & v[g.b as usize];
            }
        }
        Ok(self.outputs.iter().map(|&w| v[w as usize]).collect())
    }
}

/// Frees the slots of `wires` whose last use is at `pos` (each slot once).
fn release(
    wires: &[Option<WireId>],
    last: &mut [usize],
    pos: usize,
    slot: &[WireId],
    free: &mut Vec<WireId>,
) {
    for w in wires.iter().flatten() {
        if last[*w as usize] == pos {
            free.push(slot[*w as usize]);
            // Released once, even if read again at the same position (x ^ x, fan-out in a batch).
            last[*w as usize] = 0;
        }
    }
}

//! The engines' view of a circuit: constants and copies lowered away, gates scheduled in
//! AND-depth layers so that all AND gates of one layer can be hashed as one batch.
//!
//! Lowering: `Copy` gates become wire aliases (no gate); a `Const` gate becomes
//! `zero = XOR(w0, w0)` (and `INV(zero)` for one) on the first input wire, so that every engine
//! only implements XOR, INV and AND. A circuit with constants but no input is refused.
//!
//! Scheduling: independent parts of the circuit (connected components of its wires, e.g. the
//! per-element circuits of a ReLU layer) are packed into chunks of about 4096 AND gates, run
//! one after the other so that a chunk's labels stay in cache. Within a chunk, the depth of a
//! wire is the number of AND gates on its longest path from the inputs; layer `l` of the chunk
//! holds the linear gates whose output has depth `l`, in circuit order, then the AND gates whose
//! inputs have depth at most `l`. AND gates are numbered in this execution order; the number is
//! the gate index `g` used for hash tweaks and for the position of the garbled table.

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

/// A lowered gate before scheduling.
#[derive(Clone, Copy)]
enum Low {
    Lin(LinOp),
    And(AndOp),
}

fn lin_out(op: &LinOp) -> WireId {
    match *op {
        LinOp::Xor { out, .. } | LinOp::Inv { out, .. } => out,
    }
}

/// AND gates per scheduling chunk: enough for full AES batches, small enough that a chunk's
/// live labels stay in the L2 cache.
const CHUNK_ANDS: usize = 4096;

/// Chunk number of every gate: connected components of the wire graph (constant wires do not
/// connect), packed in order of first appearance into chunks of about [`CHUNK_ANDS`] ANDs.
fn chunks(low: &[Low], global: &[bool], num_wires: usize) -> Vec<u32> {
    let mut parent: Vec<u32> = (0..num_wires as u32).collect();
    fn find(parent: &mut [u32], mut x: u32) -> u32 {
        while parent[x as usize] != x {
            let up = parent[parent[x as usize] as usize];
            parent[x as usize] = up;
            x = up;
        }
        x
    }
    let ops = |g: &Low| -> ([WireId; 2], usize, WireId) {
        match *g {
            Low::Lin(LinOp::Xor { a, b, out }) => ([a, b], 2, out),
            Low::Lin(LinOp::Inv { a, out }) => ([a, 0], 1, out),
            Low::And(op) => ([op.a, op.b], 2, op.out),
        }
    };
    let mut size = vec![1u32; num_wires];
    for g in low {
        let (ins, k, out) = ops(g);
        for &w in &ins[..k] {
            if !global[w as usize] {
                let (x, y) = (find(&mut parent, w), find(&mut parent, out));
                if x != y {
                    // Union by size keeps the trees shallow.
                    let (small, big) = if size[x as usize] < size[y as usize] {
                        (x, y)
                    } else {
                        (y, x)
                    };
                    parent[small as usize] = big;
                    size[big as usize] += size[small as usize];
                }
            }
        }
    }
    let roots: Vec<u32> = low.iter().map(|g| find(&mut parent, ops(g).2)).collect();
    let mut ands_of = vec![0usize; num_wires];
    for (g, &r) in low.iter().zip(&roots) {
        if matches!(g, Low::And(_)) {
            ands_of[r as usize] += 1;
        }
    }
    let mut chunk_of = vec![u32::MAX; num_wires];
    let (mut current, mut filled) = (0u32, 0usize);
    roots
        .iter()
        .map(|&r| {
            if chunk_of[r as usize] == u32::MAX {
                if filled >= CHUNK_ANDS {
                    current += 1;
                    filled = 0;
                }
                filled += ands_of[r as usize];
                chunk_of[r as usize] = current;
            }
            chunk_of[r as usize]
        })
        .collect()
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
    /// First layer of each scheduling chunk, in order; the layers before the first chunk (the
    /// constants' prelude, if any) are read by every chunk. Chunks share no wire but inputs
    /// and the prelude's, so they can be evaluated apart ([`super::Split`]). Empty in a
    /// compacted program, whose wire slots are shared between chunks.
    pub chunk_starts: Vec<u32>,
    pub num_and: usize,
    /// [`Circuit::digest`] of the circuit this program was compiled from, so that garbling
    /// material can be checked against a cached program without the circuit.
    pub circuit_digest: [u8; 32],
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
        // (1) Lower: aliases for copies and constant zero, INV(zero) for constant one.
        let mut alias: Vec<WireId> = (0..num_wires).collect();
        let mut global = vec![false; num_wires as usize];
        let mut prelude = Vec::new();
        if has_const {
            prelude.push(LinOp::Xor {
                a: 0,
                b: 0,
                out: zero,
            });
            global[zero as usize] = true;
        }
        let mut low: Vec<Low> = Vec::with_capacity(circuit.gates().len());
        for gate in circuit.gates() {
            // Circuit validation guarantees every wire index below is in range.
            let al = |w: WireId| alias[w as usize];
            match *gate {
                Gate::Copy { a, out } => alias[out as usize] = al(a),
                Gate::Const { value: false, out } => alias[out as usize] = zero,
                Gate::Const { value: true, out } => {
                    prelude.push(LinOp::Inv { a: zero, out });
                    global[out as usize] = true;
                }
                Gate::Xor { a, b, out } => low.push(Low::Lin(LinOp::Xor {
                    a: al(a),
                    b: al(b),
                    out,
                })),
                Gate::Inv { a, out } => low.push(Low::Lin(LinOp::Inv { a: al(a), out })),
                Gate::And { a, b, out } => low.push(Low::And(AndOp {
                    a: al(a),
                    b: al(b),
                    out,
                })),
            }
        }
        // (2) Chunks of independent components, (3) AND-depth layers within each chunk.
        let chunk = chunks(&low, &global, num_wires as usize);
        let n_chunks = chunk.iter().max().map_or(0, |&c| c as usize + 1);
        let mut by_chunk: Vec<Vec<usize>> = vec![Vec::new(); n_chunks];
        for (i, &c) in chunk.iter().enumerate() {
            by_chunk[c as usize].push(i);
        }
        let mut layers: Vec<Layer> = Vec::new();
        if !prelude.is_empty() {
            layers.push(Layer {
                linear: prelude,
                ands: Vec::new(),
            });
        }
        let mut depth = vec![0u32; num_wires as usize];
        let mut num_and = 0usize;
        let mut chunk_starts = Vec::with_capacity(by_chunk.len());
        for gates in &by_chunk {
            let base = layers.len();
            chunk_starts.push(base as u32);
            for &i in gates {
                let (d, out_depth) = match low[i] {
                    Low::Lin(LinOp::Xor { a, b, .. }) => {
                        let d = depth[a as usize].max(depth[b as usize]);
                        (d, d)
                    }
                    Low::Lin(LinOp::Inv { a, .. }) => (depth[a as usize], depth[a as usize]),
                    Low::And(g) => {
                        let d = depth[g.a as usize].max(depth[g.b as usize]);
                        (d, d + 1)
                    }
                };
                let l = base + d as usize;
                while layers.len() <= l {
                    layers.push(Layer::default());
                }
                match low[i] {
                    Low::Lin(op) => {
                        depth[lin_out(&op) as usize] = out_depth;
                        layers[l].linear.push(op);
                    }
                    Low::And(g) => {
                        depth[g.out as usize] = out_depth;
                        layers[l].ands.push(g);
                        num_and += 1;
                    }
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
            chunk_starts,
            num_and,
            circuit_digest: circuit.digest(),
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
            chunk_starts: Vec::new(),
            num_and: self.num_and,
            circuit_digest: self.circuit_digest,
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

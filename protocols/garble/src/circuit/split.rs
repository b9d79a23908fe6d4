//! A program cut into its independent parts, so that an engine can evaluate them on several
//! threads.
//!
//! [`Program::compile`] packs independent components of a circuit into scheduling chunks of
//! about 4096 AND gates (`Program::chunk_starts`). Two chunks share no wire but input wires
//! and the wires of the constants' prelude, so each chunk is a program of its own: its input
//! wires renumbered `0..`, the prelude copied in, its wires compacted ([`Program::compact`]),
//! its AND gates keeping their numbers (the gate index `g` of hash tweaks and tables starts at
//! [`Part::first_and`]). Evaluating every part and placing its outputs gives what evaluating
//! the whole program gives, bit for bit (test `split_parts_evaluate_like_the_whole`).
//!
//! The stage circuits of SECO have many chunks per garbling (a ReLU word is about 85 AND
//! gates, so a chunk holds about 48 of them), while the layers of one chunk hold only tens of
//! AND gates each: too few to share between threads.

use std::sync::Arc;

use rayon::prelude::*;

use super::program::{LinOp, Program};
use super::WireId;

/// One independent part of a [`Program`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// The part as a program of its own (compacted): its input `i` is the whole program's
    /// input wire `inputs[i]`, its output `o` the whole program's output `outputs[o]`.
    pub program: Program,
    /// The whole program's input wire of each of the part's inputs.
    pub inputs: Vec<WireId>,
    /// The index among the whole program's outputs of each of the part's outputs.
    pub outputs: Vec<usize>,
    /// The gate number of the part's first AND gate in the whole program.
    pub first_and: usize,
}

/// A program and its independent parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    /// The whole program, uncompacted (what configurations and garblings are checked against).
    pub whole: Arc<Program>,
    /// The parts in execution order (at least one); their AND gates cover the whole program's
    /// in order.
    pub parts: Vec<Part>,
}

impl Split {
    /// Cuts a program from [`Program::compile`] into its chunks (a compacted program, whose
    /// wire slots are reused across chunks, has no chunks and is one part).
    pub fn new(whole: Arc<Program>) -> Split {
        // A program without chunks (compacted, or built by hand) is one part.
        let prelude = whole.chunk_starts.first().map_or(0, |&s| s as usize);
        let mut bounds: Vec<usize> = whole.chunk_starts.iter().map(|&s| s as usize).collect();
        if bounds.is_empty() {
            bounds.push(0);
        }
        bounds.push(whole.layers.len());
        // Which chunk writes each wire (prelude and input wires: none).
        let mut writer = vec![usize::MAX; whole.num_wires as usize];
        for (c, r) in bounds.windows(2).enumerate() {
            for layer in &whole.layers[r[0]..r[1]] {
                for op in &layer.linear {
                    writer[lin_out(op) as usize] = c;
                }
                for g in &layer.ands {
                    writer[g.out as usize] = c;
                }
            }
        }
        let mut outputs_of: Vec<Vec<usize>> = vec![Vec::new(); bounds.len() - 1];
        for (o, &w) in whole.outputs.iter().enumerate() {
            // Outputs no chunk writes (input or prelude wires) go to the first part.
            let c = writer[w as usize];
            outputs_of[if c == usize::MAX { 0 } else { c }].push(o);
        }
        // Gate numbers: a part's first AND gate follows the previous parts' AND gates.
        let mut firsts = Vec::with_capacity(bounds.len() - 1);
        let mut first_and = 0;
        for r in bounds.windows(2) {
            firsts.push(first_and);
            first_and += whole.layers[r[0]..r[1]]
                .iter()
                .map(|l| l.ands.len())
                .sum::<usize>();
        }
        // Parts are cut (and compacted) independently, on the thread pool.
        let parts = (0..bounds.len() - 1)
            .into_par_iter()
            .map(|c| {
                let layers = (0..prelude).chain(bounds[c]..bounds[c + 1]);
                cut(&whole, layers, &outputs_of[c], firsts[c])
            })
            .collect();
        Split { whole, parts }
    }
}

fn lin_out(op: &LinOp) -> WireId {
    match *op {
        LinOp::Xor { out, .. } | LinOp::Inv { out, .. } => out,
    }
}

/// The part made of `layers` of `whole` with the given outputs, renumbered and compacted.
fn cut(
    whole: &Program,
    layers: impl Iterator<Item = usize> + Clone,
    outputs: &[usize],
    first_and: usize,
) -> Part {
    const NONE: WireId = WireId::MAX;
    let n_in = whole.num_inputs;
    let mut local = vec![NONE; whole.num_wires as usize];
    // Inputs first, in wire order: every input wire the part reads (or outputs).
    let mut inputs: Vec<WireId> = Vec::new();
    {
        let mut need = |w: WireId| {
            if w < n_in && local[w as usize] == NONE {
                local[w as usize] = 0;
            }
        };
        for l in layers.clone() {
            for op in &whole.layers[l].linear {
                match *op {
                    LinOp::Xor { a, b, .. } => {
                        need(a);
                        need(b);
                    }
                    LinOp::Inv { a, .. } => need(a),
                }
            }
            for g in &whole.layers[l].ands {
                need(g.a);
                need(g.b);
            }
        }
        for &o in outputs {
            need(whole.outputs[o]);
        }
    }
    for w in 0..n_in {
        if local[w as usize] != NONE {
            local[w as usize] = inputs.len() as WireId;
            inputs.push(w);
        }
    }
    let mut next = inputs.len() as WireId;
    let mut def = |local: &mut [WireId], w: WireId| {
        local[w as usize] = next;
        next += 1;
        next - 1
    };
    let mut out_layers = Vec::new();
    let mut num_and = 0;
    for l in layers {
        let layer = &whole.layers[l];
        let mut nl = super::Layer::default();
        for op in &layer.linear {
            nl.linear.push(match *op {
                LinOp::Xor { a, b, out } => LinOp::Xor {
                    a: local[a as usize],
                    b: local[b as usize],
                    out: def(&mut local, out),
                },
                LinOp::Inv { a, out } => LinOp::Inv {
                    a: local[a as usize],
                    out: def(&mut local, out),
                },
            });
        }
        // An AND layer reads only earlier layers: map the operands before defining outputs.
        let ands: Vec<_> = layer
            .ands
            .iter()
            .map(|g| (local[g.a as usize], local[g.b as usize], g.out))
            .collect();
        for (a, b, out) in ands {
            nl.ands.push(super::AndOp {
                a,
                b,
                out: def(&mut local, out),
            });
        }
        num_and += nl.ands.len();
        out_layers.push(nl);
    }
    let program = Program {
        num_wires: next,
        num_inputs: inputs.len() as u32,
        outputs: outputs
            .iter()
            .map(|&o| local[whole.outputs[o] as usize])
            .collect(),
        layers: out_layers,
        chunk_starts: Vec::new(),
        num_and,
        circuit_digest: whole.circuit_digest,
    }
    .compact();
    Part {
        program,
        inputs,
        outputs: outputs.to_vec(),
        first_and,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::circuit::{Circuit, Gate, MaxPoolReshare, ReluReshare};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha12Rng;

    /// Evaluates every part in the clear and places its outputs.
    fn eval_parts(split: &Split, x: &[bool]) -> Vec<bool> {
        let mut out = vec![false; split.whole.outputs.len()];
        for p in &split.parts {
            let xs: Vec<bool> = p.inputs.iter().map(|&w| x[w as usize]).collect();
            for (&o, b) in p.outputs.iter().zip(p.program.eval_plain(&xs).unwrap()) {
                out[o] = b;
            }
        }
        out
    }

    fn check(c: &Circuit, r: &mut ChaCha12Rng) -> usize {
        let whole = Arc::new(Program::compile(c).unwrap());
        let split = Split::new(whole.clone());
        // The parts' AND gates are the whole program's, in order.
        let mut next = 0;
        for p in &split.parts {
            assert_eq!(p.first_and, next);
            next += p.program.num_and;
        }
        assert_eq!(next, whole.num_and);
        for _ in 0..4 {
            let x: Vec<bool> = (0..c.num_inputs()).map(|_| r.random()).collect();
            assert_eq!(eval_parts(&split, &x), c.eval_plain(&x).unwrap());
        }
        // A compacted program is one part and evaluates the same.
        let one = Split::new(Arc::new(whole.compact()));
        assert_eq!(one.parts.len(), 1);
        let x: Vec<bool> = (0..c.num_inputs()).map(|_| r.random()).collect();
        assert_eq!(eval_parts(&one, &x), c.eval_plain(&x).unwrap());
        split.parts.len()
    }

    #[test]
    fn split_parts_evaluate_like_the_whole() {
        let mut r = ChaCha12Rng::seed_from_u64(5);
        let relu = ReluReshare {
            parties: 3,
            elements: 200,
            k: 32,
            f: 10,
        };
        assert!(check(&relu.circuit().unwrap(), &mut r) > 2);
        let pool = MaxPoolReshare {
            parties: 3,
            windows: 30,
            window: 4,
            k: 32,
            f: 10,
            relu: true,
        };
        assert!(check(&pool.circuit().unwrap(), &mut r) > 1);
        // Constants, a copy, outputs that are inputs or constants, an output listed twice,
        // and two independent components.
        let gates = vec![
            Gate::Const {
                value: true,
                out: 4,
            },
            Gate::Const {
                value: false,
                out: 5,
            },
            Gate::And { a: 0, b: 4, out: 6 },
            Gate::Xor { a: 6, b: 1, out: 7 },
            Gate::Copy { a: 7, out: 8 },
            Gate::And { a: 2, b: 3, out: 9 },
            Gate::Inv { a: 9, out: 10 },
        ];
        let c = Circuit::new(11, vec![4], vec![7], vec![8, 2, 4, 5, 7, 10, 3], gates).unwrap();
        check(&c, &mut r);
    }
}

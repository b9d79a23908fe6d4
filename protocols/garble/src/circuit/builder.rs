//! A circuit builder with constant folding and free negation.
//!
//! A [`Bit`] is a constant or a wire with a pending negation flag, so `not` is free and never
//! emits a gate by itself, and XOR/AND with constants, `x ^ x`, `x & x` and `x & !x` fold away.
//! Negations are materialized as INV gates (free under free-XOR) only where an AND gate or an
//! output needs them. Word gadgets built on top (see `gadgets.rs`) get their textbook AND counts
//! from the folding rather than from special cases.

use std::collections::HashMap;

use super::ir::{Circuit, Gate, WireId};
use super::Result;

/// A bit in a circuit under construction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Bit(Repr);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Repr {
    Const(bool),
    Wire { id: WireId, neg: bool },
}

impl Bit {
    pub const ZERO: Bit = Bit(Repr::Const(false));
    pub const ONE: Bit = Bit(Repr::Const(true));

    /// A constant bit.
    pub fn constant(value: bool) -> Bit {
        Bit(Repr::Const(value))
    }

    /// The constant value, if this bit is a constant.
    pub fn as_const(self) -> Option<bool> {
        match self.0 {
            Repr::Const(v) => Some(v),
            Repr::Wire { .. } => None,
        }
    }
}

/// A word of bits, least significant bit first.
pub type Word = Vec<Bit>;

/// Builds a [`Circuit`].
#[derive(Debug)]
pub struct Builder {
    num_wires: u32,
    input_groups: Vec<u32>,
    gates: Vec<Gate>,
    inverted: HashMap<WireId, WireId>,
    const_wires: [Option<WireId>; 2],
    and_count: u64,
}

impl Builder {
    /// Starts a circuit whose inputs are `input_groups` (bits per group); returns the builder
    /// and one word per input group.
    pub fn new(input_groups: &[u32]) -> (Builder, Vec<Word>) {
        let mut next: WireId = 0;
        let words = input_groups
            .iter()
            .map(|&n| {
                (0..n)
                    .map(|_| {
                        let id = next;
                        next += 1;
                        Bit(Repr::Wire { id, neg: false })
                    })
                    .collect()
            })
            .collect();
        let b = Builder {
            num_wires: next,
            input_groups: input_groups.to_vec(),
            gates: Vec::new(),
            inverted: HashMap::new(),
            const_wires: [None, None],
            and_count: 0,
        };
        (b, words)
    }

    /// AND gates emitted so far.
    pub fn and_count(&self) -> u64 {
        self.and_count
    }

    fn fresh(&mut self) -> WireId {
        let id = self.num_wires;
        self.num_wires += 1;
        id
    }

    /// `!a` (free: flips a flag).
    pub fn not(&self, a: Bit) -> Bit {
        match a.0 {
            Repr::Const(v) => Bit(Repr::Const(!v)),
            Repr::Wire { id, neg } => Bit(Repr::Wire { id, neg: !neg }),
        }
    }

    /// `a ^ b` (free).
    pub fn xor(&mut self, a: Bit, b: Bit) -> Bit {
        match (a.0, b.0) {
            (Repr::Const(c), _) => self.xor_const(b, c),
            (_, Repr::Const(c)) => self.xor_const(a, c),
            (Repr::Wire { id: x, neg: nx }, Repr::Wire { id: y, neg: ny }) => {
                if x == y {
                    return Bit::constant(nx ^ ny);
                }
                let out = self.fresh();
                self.gates.push(Gate::Xor { a: x, b: y, out });
                Bit(Repr::Wire {
                    id: out,
                    neg: nx ^ ny,
                })
            }
        }
    }

    fn xor_const(&self, a: Bit, c: bool) -> Bit {
        if c {
            self.not(a)
        } else {
            a
        }
    }

    /// `a & b` (one AND gate unless it folds).
    pub fn and(&mut self, a: Bit, b: Bit) -> Bit {
        match (a.0, b.0) {
            (Repr::Const(false), _) | (_, Repr::Const(false)) => Bit::ZERO,
            (Repr::Const(true), _) => b,
            (_, Repr::Const(true)) => a,
            (Repr::Wire { id: x, neg: nx }, Repr::Wire { id: y, neg: ny }) if x == y => {
                if nx == ny {
                    a
                } else {
                    Bit::ZERO
                }
            }
            _ => {
                let x = self.materialize(a);
                let y = self.materialize(b);
                let out = self.fresh();
                self.gates.push(Gate::And { a: x, b: y, out });
                self.and_count += 1;
                Bit(Repr::Wire {
                    id: out,
                    neg: false,
                })
            }
        }
    }

    /// `a | b` (one AND gate).
    pub fn or(&mut self, a: Bit, b: Bit) -> Bit {
        let (na, nb) = (self.not(a), self.not(b));
        let n = self.and(na, nb);
        self.not(n)
    }

    /// A wire carrying exactly `bit`: emits an INV or a constant gate when needed (cached).
    fn materialize(&mut self, bit: Bit) -> WireId {
        match bit.0 {
            Repr::Wire { id, neg: false } => id,
            Repr::Wire { id, neg: true } => {
                if let Some(&w) = self.inverted.get(&id) {
                    return w;
                }
                let out = self.fresh();
                self.gates.push(Gate::Inv { a: id, out });
                self.inverted.insert(id, out);
                out
            }
            Repr::Const(v) => {
                if let Some(w) = self.const_wires[usize::from(v)] {
                    return w;
                }
                let out = self.fresh();
                self.gates.push(Gate::Const { value: v, out });
                self.const_wires[usize::from(v)] = Some(out);
                out
            }
        }
    }

    /// Finishes the circuit with one output group per word.
    pub fn finish(mut self, outputs: &[Word]) -> Result<Circuit> {
        let mut wires = Vec::new();
        for word in outputs {
            for &bit in word {
                let w = self.materialize(bit);
                wires.push(w);
            }
        }
        let groups = outputs.iter().map(|w| w.len() as u32).collect();
        Circuit::new(self.num_wires, self.input_groups, groups, wires, self.gates)
    }
}

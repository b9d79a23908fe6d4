//! Boolean circuits: the IR, a builder with word gadgets over `Z_{2^k}`, Bristol readers and
//! writer, and the non-linear-layer circuits of DESIGN.md s.5.
//!
//! # Layout
//! - `ir.rs`: [`Circuit`] (validated, SSA), [`Gate`], plain evaluation, gate counts, digest.
//! - `program.rs`: [`Program`], the engines' lowered form (no constants or copies) scheduled
//!   in AND-depth layers so that garbling can batch independent AND gates.
//! - `split.rs`: [`Split`], a program cut into its independent chunks ([`Part`]) for engines
//!   that evaluate on several threads.
//! - `builder.rs`: [`Builder`] with constant folding and free negation; [`Bit`], [`Word`].
//! - `gadgets.rs`: add, sub, neg, signed compare, mux, ReLU, arithmetic shift, max, argmax.
//! - `reshare.rs`: [`ReluReshare`] and [`MaxPoolReshare`], the circuits issue 5 garbles.
//! - `bristol.rs`: Bristol Fashion / old Bristol reader and Bristol Fashion writer, with the
//!   bit order documented there; `bits.rs`: hex and integer conversions in that order.

mod builder;
mod gadgets;
mod ir;
mod program;
mod split;

pub mod bits;
pub mod bristol;
pub mod reshare;

pub use builder::{Bit, Builder, Word};
pub use ir::{Circuit, Gate, GateCounts, WireId, MAX_WIRES};
pub use program::{AndOp, Layer, LinOp, Program};
pub use reshare::{MaxPoolReshare, PartyId, ReluReshare};
pub use split::{Part, Split};

/// Errors of circuit construction, parsing and evaluation.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CircuitError {
    #[error("{what} too large: {value} > {limit}")]
    TooLarge {
        what: &'static str,
        value: u64,
        limit: u64,
    },
    #[error("{what}: expected {expected}, found {actual}")]
    CountMismatch {
        what: &'static str,
        expected: u64,
        actual: u64,
    },
    #[error("gate {gate}: wire {wire} out of range (circuit has {num_wires} wires)")]
    WireOutOfRange {
        gate: usize,
        wire: WireId,
        num_wires: u32,
    },
    #[error("gate {gate}: wire {wire} read before it is defined (or a cycle)")]
    UseBeforeDefine { gate: usize, wire: WireId },
    #[error("gate {gate}: wire {wire} defined twice")]
    Redefined { gate: usize, wire: WireId },
    #[error("output wire {wire} is never defined")]
    UndefinedOutput { wire: WireId },
    #[error("line {line}: unknown gate {name:?}")]
    UnknownGate { line: usize, name: String },
    #[error("line {line}: {message}")]
    Parse { line: usize, message: String },
    #[error("file ends early: missing {what}")]
    Truncated { what: &'static str },
    #[error("circuit has constant gates but no input wire to derive them from")]
    ConstantWithoutInput,
    #[error("bad value: {message}")]
    BadValue { message: String },
}

/// Result alias of this module.
pub type Result<T> = std::result::Result<T, CircuitError>;

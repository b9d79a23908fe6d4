//! Two-party garbled circuits: half-gates with free-XOR and point-and-permute, on the block type
//! and hash of [`crate::block`] and [`crate::hash`].
//!
//! # Layout
//! - `halfgates.rs`: [`garble`], [`evaluate`], [`decode`] on a [`crate::circuit::Program`].
//! - `protocol.rs`: the sans-IO two-party protocol ([`HgGarbler`], [`HgEvaluator`]): input
//!   labels of the evaluator by IKNP correlated OT whose global correlation is the garbler's
//!   offset R, tables and garbler labels in one message, output revealed to both.
//!
//! # Security notes
//! Semi-honest. The hash is TMMO, proven tweakable circular correlation robust in the
//! random-permutation model (Guo-Katz-Wang-Yu, S&P 2020, eprint 2019/074, s.7); two AES calls
//! per hash, 8 per AND when garbling and 4 when evaluating (see `hash.rs`).

pub mod halfgates;
pub mod protocol;

pub use crate::block::{Block, PackedBits};
pub use halfgates::{decode, evaluate, garble, Garbling};
#[cfg(feature = "insecure-simulation")]
pub use protocol::run_two_party;
pub use protocol::{HgEvaluator, HgGarbler, HgMsg, HgOutput, Side};

/// Errors of garbling, evaluation and the two-party protocol.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GcError {
    #[error("{what}: expected {expected}, got {actual}")]
    Length {
        what: &'static str,
        expected: usize,
        actual: usize,
    },
    #[error("the free-XOR offset must have lsb 1")]
    BadDelta,
    #[error("unexpected message {got} in state {state}")]
    UnexpectedMessage {
        state: &'static str,
        got: &'static str,
    },
    #[error("protocol already finished")]
    Finished,
    #[error(transparent)]
    Circuit(#[from] crate::circuit::CircuitError),
    #[error(transparent)]
    Ot(#[from] crate::ot::OtError),
}

/// Result alias of this module.
pub type Result<T> = std::result::Result<T, GcError>;

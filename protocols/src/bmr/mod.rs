//! Multiparty garbled circuits: semi-honest BMR for n garblers and one evaluator, in the style
//! of Ben-Efraim, Lindell and Omri, "Optimizing semi-honest secure multiparty computation for
//! the internet" (CCS 2016, BLO16), with free-XOR per party and OT-based mask products.
//! Secure against a semi-honest adversary corrupting all but one garbler (and the evaluator).
//!
//! # Paper step to code
//! | BLO16 | here |
//! | --- | --- |
//! | per-party offset `R^i`, keys `k^i_{w,0}`, mask shares `lambda^i_w` | `material.rs` (`Fresh`) |
//! | products `lambda^i R^j` by OT | IKNP correlated OT with correlation `R^j` (`ot`), round 2 |
//! | products `lambda_a lambda_b` by OT | bit OT from the same COTs (Gilboa), round 3 |
//! | `lambda_a lambda_b R^j` | derandomized random COT, round 4 |
//! | garbled row shares with PRF `F_k(g, j, row)` | `Material::table_share` (fixed-key-AES hash) |
//! | rows XOR-ed at the evaluator | `OfflineParty` round 5 (evaluator side) |
//! | inputs via masked bits | `OnlineParty` rounds 1-2 |
//! | evaluation, output to its owner | `eval.rs`, `OnlineParty` round 3 |
//!
//! # Layout
//! - `config.rs`: [`BmrConfig`] (parties, evaluator, owner of every input and output wire).
//! - `msg.rs`: [`BmrMsg`] / [`Body`], one enum for all rounds; `encoded_len` for exact sizes.
//! - `material.rs`: a garbler's secrets and local computations (propagation, bit OT, rows).
//! - `offline.rs`: [`OfflineParty`], rounds 1-5 (message intake), ends in a [`Prepared`];
//!   `rounds.rs`: what each round computes once complete.
//! - `prepared.rs`: [`Prepared`], serializable, consumed by the online phase.
//! - `online.rs`: [`OnlineParty`], rounds 1-3 of the online phase.
//! - `eval.rs`: the evaluator's BMR evaluation.
//! - `driver.rs`: in-process deterministic driver ([`driver::run_offline`], [`driver::run_online`]).
//!
//! # Costs (n garblers, per AND gate)
//! Offline, per garbler: 2 COTs with each other garbler (32 bytes each way of IKNP columns) plus
//! 2 bits; the table share `4 n` blocks to the evaluator (none if it is the evaluator). Work: `8n`
//! hashes (rows) + 4 (bit OTs) per peer. Online: evaluator `2 n^2` hashes per AND; traffic is
//! independent of the circuit size except for inputs (16 bytes per input wire per garbler) and
//! outputs (1 bit).
//!
//! # Security notes
//! Semi-honest only: nothing checks that a garbler's table share is consistent (the evaluator's
//! lsb agreement check catches only accidents). The hash is the one of `gc::hash`. A
//! [`Prepared`] must be used at most once.

mod config;
pub mod driver;
mod eval;
mod material;
mod msg;
mod offline;
mod online;
mod prepared;
mod rounds;

pub use config::{owners_round_robin, BmrConfig, MAX_GARBLERS};
pub use eval::evaluate;
pub use msg::{BmrMsg, Body, Outgoing};
pub use offline::OfflineParty;
pub use online::OnlineParty;
pub use prepared::{GarblerPrep, Prepared};

use crate::circuit::PartyId;

/// Errors of the BMR protocol.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BmrError {
    #[error("bad configuration: {0}")]
    Config(String),
    #[error("the circuit does not match the session's circuit digest")]
    CircuitMismatch,
    #[error("party {party} is not a party of this session (or is the receiver itself)")]
    UnknownParty { party: PartyId },
    #[error("message from another session")]
    WrongSession,
    #[error("message claims sender {claimed} but came from {actual}")]
    WrongSender { claimed: PartyId, actual: PartyId },
    #[error("party {party} in round {round} cannot take a message of {got}")]
    WrongRound {
        party: PartyId,
        round: usize,
        got: &'static str,
    },
    #[error("duplicate message of {round} from party {from}")]
    Duplicate { from: PartyId, round: &'static str },
    #[error("{what}: expected {expected}, got {actual}")]
    Length {
        what: &'static str,
        expected: usize,
        actual: usize,
    },
    #[error("garbled keys disagree on wire {wire} (corrupt tables or keys)")]
    Inconsistent { wire: usize },
    #[error("not finished (round {round})")]
    NotFinished { round: usize },
    #[error("party failed earlier in this session")]
    Failed,
    #[error("internal state error: {0}")]
    Internal(&'static str),
    #[error(transparent)]
    Circuit(#[from] crate::circuit::CircuitError),
    #[error(transparent)]
    Ot(#[from] crate::ot::OtError),
}

/// Result alias of this module.
pub type Result<T> = std::result::Result<T, BmrError>;

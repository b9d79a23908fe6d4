//! Multiparty garbled circuits: semi-honest BMR for n garblers and one evaluator, in the style
//! of Ben-Efraim, Lindell and Omri, "Optimizing semi-honest secure multiparty computation for
//! the internet" (CCS 2016, BLO16), with free-XOR per party and OT-based mask products.
//! Secure against a semi-honest adversary corrupting all but one garbler (and the evaluator).
//!
//! # Paper step to code
//! | BLO16 | here |
//! | --- | --- |
//! | per-party offset `R^i`, keys `k^i_{w,0}`, mask shares `lambda^i_w` | `material.rs` (`Fresh`) |
//! | products `lambda^i R^j` by OT | IKNP correlated OT with correlation `R^j` (`ot`), round 2; base OTs in round 1 or once per session (`setup.rs`) |
//! | products `lambda_a lambda_b` by OT | bit OT from the same COTs (Gilboa), round 3 |
//! | `lambda_a lambda_b R^j` | derandomized random COT, round 4 |
//! | garbled row shares with PRF `F_k(g, j, row)` | `Material::table_share` (fixed-key-AES hash) |
//! | rows XOR-ed at the evaluator | `OfflineParty` round 5 (evaluator side) |
//! | inputs via masked bits | `OnlineParty` rounds 1-2 |
//! | evaluation, output to its owner | `eval.rs`, `OnlineParty` round 3 |
//!
//! # Layout
//! - `config.rs`: [`BmrConfig`] (parties, evaluator, owner of every input and output wire);
//!   `compact.rs`: its per-wire vectors as byte strings (one byte per wire).
//! - `msg.rs`: [`BmrMsg`] / [`Body`], one enum for all rounds; `encoded_len` for exact sizes.
//! - `material.rs`: a garbler's secrets and local computations (propagation, bit OT, rows).
//! - `offline.rs`: [`OfflineParty`], rounds 1-5 (message intake), ends in a [`Prepared`];
//!   `start.rs`: how it starts (own base OTs, or drawn from a setup); `rounds.rs`: what each
//!   round computes once complete; `chain.rs`: round 5 intake (output masks, the table chain);
//!   `table.rs`: a garbler's table share.
//! - `setup.rs`: [`OtSetup`] -> [`PairwiseOt`], the session's pairwise base OTs (one round),
//!   from which [`OfflineParty::with_setup`] draws fresh IKNP extensions per garbling (round 1
//!   skipped); why a session-wide offset `R^i` is fine is argued there. `setup/machine.rs`:
//!   the [`OtSetup`] state machine (halves, restarts).
//! - `known.rs`: inputs known in preprocessing ([`BmrConfig::offline`],
//!   [`OfflineParty::provide_inputs`]): their masked bits and keys reach the evaluator offline.
//! - `prepared.rs`: [`Prepared`], serializable, consumed by the online phase.
//! - `online.rs`: [`OnlineParty`], rounds 1-3 of the online phase.
//! - `eval.rs`: the evaluator's BMR evaluation.
//! - `driver.rs`: in-process deterministic driver (`driver::run_offline`, `driver::run_online`;
//!   feature `insecure-simulation`: every party's secrets in one process, tests and tools only).
//!
//! # Example: a ReLU layer garbled in preprocessing, evaluated later
//! Three servers; server 2 owns the next layer (learns the outputs), server 1 evaluates.
//! Each party's state machine is stepped with `handle(from, msg)`; here a plain loop routes the
//! messages (an actor would persist, then send, DESIGN.md s.6).
//! ```
//! use rand::SeedableRng;
//! use seco_garble::bmr::{BmrConfig, OfflineParty, OnlineParty, Prepared};
//! use seco_garble::circuit::{reshare::decode_words, ReluReshare};
//!
//! let spec = ReluReshare { parties: 3, elements: 2, k: 32, f: 8 };
//! let circuit = spec.circuit().unwrap();
//! let cfg = BmrConfig::new([42; 16], &circuit, 3, 1, spec.input_owners(),
//!                          vec![2; circuit.num_outputs()]).unwrap();
//! let mut rng = rand_chacha::ChaCha12Rng::seed_from_u64(1);
//!
//! // Offline: every party starts, then messages are routed until none are left.
//! let mut parties = Vec::new();
//! let mut queue = Vec::new();
//! for me in 0..3 {
//!     let (p, out) = OfflineParty::new(&mut rng, cfg.clone(), &circuit, me).unwrap();
//!     queue.extend(out.into_iter().map(|(to, m)| (me, to, m)));
//!     parties.push(p);
//! }
//! while let Some((from, to, msg)) = queue.pop() {
//!     let out = parties[to].handle(from, msg).unwrap();
//!     queue.extend(out.into_iter().map(|(t, m)| (to, t, m)));
//! }
//! // Each party persists its Prepared (CBOR here) in a bundle, to be used exactly once.
//! let stored: Vec<Vec<u8>> = parties.into_iter().map(|p| {
//!     let mut buf = Vec::new();
//!     ciborium::into_writer(&p.into_prepared().unwrap(), &mut buf).unwrap();
//!     buf
//! }).collect();
//!
//! // Online: server i's shares y_i (sum 0x0000_1234 before truncation) and r_i.
//! let y = [[0x1000u64, 7], [0x0234, 0], [0, 0xffff_fff9]];
//! let r = [[5u64, 6], [0, 0], [0, 0]];
//! let mut online = Vec::new();
//! for me in 0..3 {
//!     let prep: Prepared = ciborium::from_reader(&stored[me][..]).unwrap();
//!     let bits = spec.encode_inputs(&y[me], &r[me]);
//!     let (p, out) = OnlineParty::new(prep, &circuit, &bits).unwrap();
//!     queue.extend(out.into_iter().map(|(to, m)| (me, to, m)));
//!     online.push(p);
//! }
//! while let Some((from, to, msg)) = queue.pop() {
//!     let out = online[to].handle(from, msg).unwrap();
//!     queue.extend(out.into_iter().map(|(t, m)| (to, t, m)));
//! }
//! // Server 2 learns ReLU(trunc(y)) - r for each element; the others learn nothing.
//! let got = decode_words(online[2].output().unwrap(), 32);
//! assert_eq!(got, vec![(0x1234 >> 8) - 5, 0u64.wrapping_sub(6) & 0xffff_ffff]);
//! assert_eq!(online[0].output(), Some(&[][..]));
//! ```
//!
//! # Costs (n garblers, per AND gate)
//! `K` key slots: `K = n - 1` when the evaluator garbles (it is keyless, `material.rs`), `K = n`
//! for an extra evaluator. Offline: each instance "i receives from a keyed j" carries 2 COTs
//! (32 bytes of IKNP columns from i to j) and 1 bit back (2 to the keyless evaluator), plus 1
//! derandomization bit from i; `(n - 1) K` such instances. Tables: every keyed garbler's share
//! is `4 K` blocks; the shares are XOR-ed along the chain of keyed garblers (`Tables`), so the
//! evaluator receives one table of `4 K` blocks (`64 K` bytes) and each keyed garbler after the
//! first receives one partial table. Work: `8 K` hashes per keyed garbler (rows; TMMO,
//! `4 + 8 K` AES calls, the 4 distinct keys permuted once), 2-4 per instance (bit OTs). Base
//! OTs: 128 per ordered pair per garbling, or once per session with a setup. Online: the
//! evaluator does `2 K^2` hashes per AND (`2 K + 2 K^2` AES calls); traffic is independent of
//! the circuit size except for inputs (16 bytes per online input wire per keyed garbler; offline
//! input wires cost 32 bytes of seed per keyed garbler in all, `known.rs`) and outputs (1 bit).
//!
//! # Security notes
//! Semi-honest only: nothing checks that a garbler's table share is consistent (the evaluator's
//! lsb agreement check catches only accidents). The hash is the one of `crate::hash`; every tweak
//! carries the garbling's nonce ([`BmrConfig::tweak_nonce`]). A [`Prepared`] must be used at
//! most once; a garbling id at most once per [`PairwiseOt`] (enforced). Why the keyless
//! evaluator, the table chain and the seeded offline keys keep BLO16's guarantees is argued in
//! `docs/garbled-circuits.md` ("Cheaper BMR").

mod chain;
mod compact;
mod config;
#[cfg(feature = "insecure-simulation")]
pub mod driver;
mod eval;
mod known;
mod material;
mod msg;
mod offline;
mod online;
mod prepared;
mod rounds;
mod setup;
mod start;
mod table;

pub use config::{owners_round_robin, BmrConfig, MAX_AND, MAX_GARBLERS};
pub use eval::{evaluate, evaluate_split};
pub use msg::{BmrMsg, Body, Outgoing};
pub use offline::OfflineParty;
pub use online::OnlineParty;
pub use prepared::{GarblerPrep, Prepared, RECORD_MAGIC};
pub use setup::{
    OtSetup, PairwiseOt, SetupMsg, SetupOutgoing, MAX_AND_PER_OFFSET, MAX_SETUPS_PER_PEER,
};

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
    #[error("no OT setup with party {peer} (yet)")]
    MissingPair { peer: PartyId },
    #[error("garbling id used before with this OT setup (its extensions would repeat)")]
    GarblingReused,
    #[error("the session offset garbled its limit of {limit} AND gates: open a new session")]
    OffsetExhausted { limit: u64 },
    #[error("OT setup answer from party {from} does not answer this party's pending half")]
    StaleSetup { from: PartyId },
    #[error(
        "OT extension from party {peer} drawn from another OT setup of the pair than this \
         party's (a restart raced this garbling): garbling refused"
    )]
    PairMismatch { peer: PartyId },
    #[error("too many {what} (limit {limit})")]
    Limit { what: &'static str, limit: usize },
    #[error("internal state error: {0}")]
    Internal(&'static str),
    #[error(transparent)]
    Circuit(#[from] crate::circuit::CircuitError),
    #[error(transparent)]
    Ot(#[from] crate::ot::OtError),
}

/// Result alias of this module.
pub type Result<T> = std::result::Result<T, BmrError>;

/// A typed [`BmrError::Length`] unless `expected == actual`.
fn expect_len(what: &'static str, expected: usize, actual: usize) -> Result<()> {
    if expected != actual {
        return Err(BmrError::Length {
            what,
            expected,
            actual,
        });
    }
    Ok(())
}

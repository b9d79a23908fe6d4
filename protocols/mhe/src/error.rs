//! Typed errors of the multiparty BFV module.

use super::params::ParamId;
use super::PartyId;

/// Errors of this crate: malformed bytes, protocol violations, parameter mismatches and
/// noise-budget violations. Every decoder and every state machine returns these instead of
/// panicking (DESIGN.md s.7).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MheError {
    /// A parameter-id code that no [`ParamId`] has.
    #[error("unknown parameter id code {code:#06x}")]
    UnknownParamId {
        /// The code read from the bytes.
        code: u16,
    },
    /// An object under one parameter set met an object or context under another.
    #[error("parameter mismatch: expected {expected:?}, got {actual:?}")]
    ParamMismatch {
        /// What the receiver works with.
        expected: ParamId,
        /// What it was given.
        actual: ParamId,
    },
    /// Fewer bytes than the format needs.
    #[error("truncated input: {what} needs {needed} bytes, {available} available")]
    Truncated {
        /// What was being decoded.
        what: &'static str,
        /// Bytes needed.
        needed: usize,
        /// Bytes left.
        available: usize,
    },
    /// Bytes left over after a complete message.
    #[error("{extra} trailing bytes after {what}")]
    TrailingBytes {
        /// What was decoded.
        what: &'static str,
        /// How many bytes remain.
        extra: usize,
    },
    /// The magic bytes or the format version are not ours.
    #[error("bad header: magic {magic:#06x}, version {version}")]
    BadHeader {
        /// Magic read.
        magic: u16,
        /// Version read.
        version: u8,
    },
    /// The message kind in the header is not the one the decoder expects.
    #[error("wrong message kind: expected {expected}, got {actual}")]
    WrongKind {
        /// Expected kind code.
        expected: u8,
        /// Kind code read.
        actual: u8,
    },
    /// A polynomial of another degree than the parameter set's.
    #[error("wrong polynomial degree: expected {expected}, got {actual}")]
    WrongDegree {
        /// The parameter set's degree.
        expected: usize,
        /// What was given.
        actual: usize,
    },
    /// A residue that is not reduced modulo its RNS modulus.
    #[error("coefficient {value} is not below modulus {modulus}")]
    CoefficientOutOfRange {
        /// The residue read.
        value: u64,
        /// The modulus it must be below.
        modulus: u64,
    },
    /// A count or length field that disagrees with what the context requires.
    #[error("{what}: expected length {expected}, got {actual}")]
    WrongLength {
        /// The field.
        what: &'static str,
        /// Required length.
        expected: usize,
        /// Length found.
        actual: usize,
    },
    /// A value outside its allowed range (a plaintext value >= t, a secret coefficient too large).
    #[error("{what}: value {value} out of range (bound {bound})")]
    ValueOutOfRange {
        /// The field.
        what: &'static str,
        /// The offending value.
        value: i128,
        /// The bound it violates.
        bound: i128,
    },
    /// A party id outside `0..n`.
    #[error("party {party} is not one of the {n} parties")]
    UnknownParty {
        /// The party id.
        party: PartyId,
        /// Number of parties.
        n: usize,
    },
    /// A message claims a sender other than the authenticated one, or comes from ourselves.
    #[error("message from party {actual} claims sender {claimed}")]
    SenderMismatch {
        /// Sender written in the message.
        claimed: PartyId,
        /// Sender the transport authenticated.
        actual: PartyId,
    },
    /// A second message of one round from one party.
    #[error("duplicate {round} message from party {party}")]
    Duplicate {
        /// The sender.
        party: PartyId,
        /// The round.
        round: &'static str,
    },
    /// A message that the current state cannot accept.
    #[error("{got} message while in state {state}")]
    WrongRound {
        /// The state we are in.
        state: &'static str,
        /// The message that arrived.
        got: &'static str,
    },
    /// A message for another protocol instance (layer, bundle).
    #[error("message for instance {actual}, expected {expected}")]
    WrongInstance {
        /// Our instance.
        expected: u64,
        /// The message's instance.
        actual: u64,
    },
    /// A revealed seed that does not match its commitment.
    #[error("party {party} revealed a seed that does not match its commitment")]
    CommitmentMismatch {
        /// The cheating (or buggy) party.
        party: PartyId,
    },
    /// Number of parties outside what the parameter set supports.
    #[error("{n} parties not supported (need 2 <= n <= {max})")]
    PartyCount {
        /// Requested number of parties.
        n: usize,
        /// The parameter set's maximum.
        max: usize,
    },
    /// A layer shape that the encoders cannot pack (or inconsistent with its weights).
    #[error("layer shape: {reason}")]
    Shape {
        /// What is wrong.
        reason: &'static str,
    },
    /// A layer whose noise would break decryption or the flooding guarantee at this parameter set.
    #[error(
        "noise budget exceeded: {what} needs {needed_bits:.1} bits, {available_bits:.1} available"
    )]
    NoiseBudget {
        /// Which bound.
        what: &'static str,
        /// log2 of what is needed.
        needed_bits: f64,
        /// log2 of what the parameter set allows.
        available_bits: f64,
    },
    /// An error from the `fhe` crate.
    #[error(transparent)]
    Fhe(#[from] fhe::Error),
    /// An error from `fhe-math`.
    #[error(transparent)]
    Math(#[from] fhe_math::Error),
}

/// Result alias of this crate.
pub type Result<T> = core::result::Result<T, MheError>;

//! Oblivious transfer: Masny-Rindal base OT on Ristretto and IKNP extension (correlated,
//! random and chosen-message OT), sans-IO: every step takes the peer's message and returns the
//! next one; nothing here owns a channel.
//!
//! # Layout
//! - `base.rs`: [`BaseOtSender`], [`BaseOtReceiver`] (one round, random OT); why Masny-Rindal
//!   and not Chou-Orlandi is documented there.
//! - `iknp.rs`: [`IknpSenderSetup`] / [`IknpSender`], [`IknpReceiverSetup`] / [`IknpReceiver`],
//!   [`ExtendMsg`]; reusable bases [`IknpSenderBase`] / [`IknpReceiverBase`] (one extension
//!   per nonce); helpers [`rot_sender`], [`rot_receiver`], [`chosen_encrypt`],
//!   [`chosen_decrypt`].
//! - `transpose.rs`: the 128 x m bit-matrix transpose.
//! - `b2a.rs`: [`B2a`], random words both XOR-shared and additively shared among `m` parties
//!   (per-bit Gilboa products from IKNP), for the SECO stage masks.
//!
//! # Flow (extension sender S with correlation `delta`, receiver R)
//! ```text
//! S: (setup, m1) = IknpSenderSetup::new(rng, sid, delta)     R: (setup, m2) = IknpReceiverSetup::new(rng, sid)
//!    S -> R: m1 (BaseReceiverMsg)                               R -> S: m2 (BaseSenderMsg)
//! S: sender = setup.finish(&m2)?                              R: receiver = setup.finish(&m1)?
//!                                                             R: (ext, t, first) = receiver.extend(&choices)
//!                                                             R -> S: ext
//! S: (q, first) = sender.extend(&ext, n)?       now t[i] == q[i] ^ choices[i] * delta
//! ```

mod b2a;
mod base;
mod iknp;
pub mod transpose;

pub use b2a::{B2a, B2aExtend, B2aLinks, B2aReply, MAX_B2A_OTS};
pub use base::{BaseOtReceiver, BaseOtSender, BaseReceiverMsg, BaseSenderMsg};
pub use iknp::{
    chosen_decrypt, chosen_encrypt, rot_receiver, rot_sender, ExtendMsg, IknpReceiver,
    IknpReceiverBase, IknpReceiverSetup, IknpSender, IknpSenderBase, IknpSenderSetup, KAPPA,
    MAX_EXTEND,
};

/// Errors of the OT protocols.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OtError {
    #[error("{what}: expected {expected}, got {actual}")]
    Length {
        what: &'static str,
        expected: usize,
        actual: usize,
    },
    #[error("invalid group element: {what}")]
    BadPoint { what: &'static str },
    #[error("mismatch: {0}")]
    Mismatch(&'static str),
}

/// Result alias of this module.
pub type Result<T> = std::result::Result<T, OtError>;

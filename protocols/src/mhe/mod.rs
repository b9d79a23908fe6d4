//! Multiparty BFV (Mouchet et al., PETS 2021) on the `fhe` crate 0.1.1, with plaintext modulus
//! `t = 2^k`, coefficient encoding, and noise flooding of every share that leaves a party.
//!
//! # Layout
//! - [`params`]: named, versioned parameter sets ([`ParamId`]) and their constants.
//! - [`wire`]: the byte format shared by every message (header, bit-packed polynomials).
//! - [`keys`]: secret key shares, public keys, the common random polynomial.
//! - [`ciphertext`]: ciphertexts, their bytes, homomorphic addition.
//! - [`layout`]: coefficient layouts of vectors in ciphertexts.
//! - [`linear`]: encrypted Dense / Conv2d / AvgPool2d layers with coefficient encoding.
//! - [`e2s`]: encryption-to-shares with noise flooding, restricted to result coefficients.
//! - [`s2e`]: shares-to-encryption and the user's result ciphertext.
//! - [`session`]: the user's per-session key pair (result delivery).
//! - [`noise`]: noise variances, bounds and budgets.
//! - [`keygen`]: collective public-key generation (commit/reveal seed, key shares), sans-IO.

pub mod ciphertext;
pub mod e2s;
pub mod error;
pub mod keygen;
pub mod keys;
pub mod layout;
pub mod linear;
pub mod noise;
pub mod params;
pub mod s2e;
pub mod session;
pub mod wire;

pub use ciphertext::Ciphertext;
pub use e2s::{E2sConfig, E2sLeader, E2sRequest, E2sShare};
pub use error::{MheError, Result};
pub use keygen::{CollectiveKeygen, KeygenConfig, KeygenMsg};
pub use keys::{PublicKey, SecretKeyShare};
pub use layout::{Layout, Slot};
pub use linear::{EncodedLayer, LayerPacking, LinearShape};
pub use params::{ParamId, Params};
pub use s2e::{ResultCiphertext, S2eAggregator};
pub use session::SessionKey;

/// A server's index in `0..n` within one deployment.
pub type PartyId = u16;

/// Where an outgoing message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum To {
    /// Every other party.
    All,
    /// One party.
    Party(PartyId),
}

/// A message a state machine wants sent.
#[derive(Debug, Clone)]
pub struct Outgoing<M> {
    /// Recipient(s).
    pub to: To,
    /// The message.
    pub msg: M,
}

/// Checks `2 <= n <= max_parties` and `me < n`.
pub(crate) fn check_parties(params: &Params, n: usize, me: PartyId) -> Result<()> {
    if n < 2 || n > params.set.max_parties {
        return Err(MheError::PartyCount {
            n,
            max: params.set.max_parties,
        });
    }
    if me as usize >= n {
        return Err(MheError::UnknownParty { party: me, n });
    }
    Ok(())
}

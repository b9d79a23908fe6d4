//! Multiparty BFV (Mouchet et al., PETS 2021) on the `fhe` crate 0.1.1, with plaintext modulus
//! `t = 2^k`, coefficient encoding (Cheetah-style linear layers without rotations), and noise
//! flooding of every decryption share that leaves a party (DESIGN.md s.2, s.3, s.5;
//! `docs/mhe.md`).
//!
//! What we add to `fhe` 0.1.1 and why: its `mbfv` shares carry only the ordinary error (no
//! flooding) and have no serialization, and its poly-encoded plaintexts are lifted unsigned (a
//! weight `-1` becomes `2^32 - 1` in the noise). So the shares that leave a party are built here
//! from `fhe_math` polynomials: collective public-key shares (the computation of
//! `mbfv::PublicKeyShare`), flooded and restricted decryption shares for encryption-to-shares,
//! encryptions of shares for shares-to-encryption; weights are lifted signed; every message has
//! our own checked byte format. `fhe` remains the arithmetic and the single-party reference.
//!
//! Flow for one linear layer `l` owned by server `O` (preprocessing):
//! `Layout::encrypt` (mask contributors) -> `Ciphertext::sum` + `EncodedLayer::eval` (owner)
//! -> `E2sLeader::new` (owner) / `e2s::follower_share` (others) -> `E2sLeader::handle` (owner):
//! every server holds an additive share of `W r - s`. Result delivery: `SessionKey` (user) ->
//! `Layout::encrypt` of each server's output share under the user's key -> `S2eAggregator`
//! (gateway) -> `ResultCiphertext::restrict` -> `SessionKey::decrypt` (user).
//!
//! # Layout
//! - [`params`]: named, versioned parameter sets ([`ParamId`]) and their constants.
//! - [`wire`]: the byte format shared by every message (header, bit-packed polynomials).
//! - [`keys`]: secret key shares, public keys, the common random polynomial.
//! - [`ciphertext`]: ciphertexts, their bytes, homomorphic addition.
//! - [`layout`]: coefficient layouts of vectors in ciphertexts.
//! - [`linear`]: encrypted Dense / Conv2d / AvgPool2d layers with coefficient encoding.
//! - [`compress`]: rounding of the `c1` polynomials sent in encryption-to-shares.
//! - [`e2s`]: encryption-to-shares with noise flooding, restricted to result coefficients.
//! - [`gaussian`]: exact discrete Gaussian sampling (the flooding distribution).
//! - [`s2e`]: shares-to-encryption and the user's result ciphertext.
//! - [`session`]: the user's per-session key pair (result delivery).
//! - [`noise`]: noise variances, bounds and budgets.
//! - [`keygen`]: collective public-key generation (commit/reveal seed, key shares), sans-IO.

pub mod ciphertext;
pub mod compress;
pub mod e2s;
pub mod error;
pub mod gaussian;
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

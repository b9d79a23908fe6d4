//! The user's per-session key pair (DESIGN.md s.2: "the user ... decrypts results with a fresh
//! key pair of its own per session"), by default on the small [`ParamId::Bfv2048T32V1`] set:
//! the result is about ten values, so a 2048-degree single-modulus key keeps the user's bytes
//! small (public key 13.8 KB, result ciphertext 13.9 KB) at 128-bit security.

use fhe_math::rq::{Poly, Representation};
use rand::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use super::error::{MheError, Result};
use super::keys::{expand_crp, pk_share_poly, PublicKey, SecretKeyShare};
use super::params::{ParamId, CBD_VARIANCE};
use super::s2e::ResultCiphertext;

/// A user's session key pair (the secret half is a [`SecretKeyShare`]: zeroized on drop,
/// printed as `[redacted]`).
pub struct SessionKey {
    sk: SecretKeyShare,
    pk: PublicKey,
}

impl SessionKey {
    /// Samples a fresh key pair: `s`, `a = expand(seed)`, `b = -a*s + e`.
    pub fn generate<R: RngCore + CryptoRng>(param: ParamId, rng: &mut R) -> Result<Self> {
        let params = param.params()?;
        let sk = SecretKeyShare::generate(param, 0, rng)?;
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let a = expand_crp(&params, &seed);
        let e = Zeroizing::new(Poly::small(
            &params.ctx,
            Representation::Ntt,
            CBD_VARIANCE,
            rng,
        )?);
        let b = pk_share_poly(&a, sk.poly(), &e);
        let pk = PublicKey::from_parts(param, seed, b)?;
        Ok(Self { sk, pk })
    }

    /// The public key to send to the gateway.
    pub fn public_key(&self) -> &PublicKey {
        &self.pk
    }

    /// The secret key (e.g. for reference decryption in tests).
    pub fn secret(&self) -> &SecretKeyShare {
        &self.sk
    }

    /// Decrypts the result values.
    pub fn decrypt(&self, rc: &ResultCiphertext) -> Result<Vec<u64>> {
        if rc.param() != self.sk.param() {
            return Err(MheError::ParamMismatch {
                expected: self.sk.param(),
                actual: rc.param(),
            });
        }
        Ok(rc.decrypt_with(self.sk.poly()))
    }
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKey")
            .field("param", &self.sk.param())
            .field("sk", &seco_core::redact::Redacted)
            .finish()
    }
}

//! Key material: secret key shares (persisted by each server), public keys (the collective key
//! and the user's session key) and the common random polynomial they are built on.
//!
//! A public key is the RLWE pair `(b, a)` with `b = -a*s + e` (Mouchet et al., PETS 2021,
//! Protocol 1 "EncKeyGen": the collective `b` is the sum of the parties' `b_i = -a*s_i + e_i`).
//! `a` is expanded from a 32-byte seed in the power basis, so the serialized key is the seed
//! and `b` only, and every build of the code expands the same `a`.

use std::sync::Arc;

use fhe_math::rq::{traits::TryConvertFrom, Poly, Representation};
use fhe_traits::DeserializeParametrized;
use prost::Message;
use rand::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use super::ciphertext::{delta_poly, Ciphertext};
use super::error::{MheError, Result};
use super::params::{ParamId, Params, CBD_VARIANCE};
use super::wire::{Kind, Reader, Writer};
use super::PartyId;

/// Largest absolute secret coefficient: the centered binomial distribution of variance `v`
/// takes values in `[-2v, 2v]`.
const SECRET_BOUND: i64 = 2 * CBD_VARIANCE as i64;

/// The uniform polynomial `a` of a public key, expanded from `seed` (in the power basis, so
/// independent of the NTT implementation), returned in the NTT representation.
pub(crate) fn expand_crp(params: &Params, seed: &[u8; 32]) -> Poly {
    let mut a = Poly::random_from_seed(&params.ctx, Representation::PowerBasis, *seed);
    a.change_representation(Representation::Ntt);
    a
}

/// `b_i = -a * s_i + e_i`: a party's public-key share (Mouchet et al., Protocol 1, step 1; the
/// same computation as `fhe::mbfv::PublicKeyShare::new`).
pub(crate) fn pk_share_poly(a: &Poly, s: &Poly, e: &Poly) -> Poly {
    let mut b = -a;
    b *= s;
    b += e;
    b
}

/// One server's share `s_i` of the collective secret key `s = sum_i s_i`. Zeroized on drop
/// (the coefficients and the NTT polynomial; `fhe`'s own copies, e.g. inside a
/// `fhe::bfv::SecretKey` built for reference decryption, are wiped by `fhe`); prints as
/// `[redacted]`; persisted with [`SecretKeyShare::to_bytes`].
pub struct SecretKeyShare {
    param: ParamId,
    party: PartyId,
    /// Signed coefficients in `[-2v, 2v]` (kept for persistence and for the reference key).
    coeffs: Zeroizing<Vec<i64>>,
    /// The same polynomial in the NTT representation (what the protocols multiply with).
    s: Zeroizing<Poly>,
}

impl SecretKeyShare {
    /// Samples a fresh share (centered binomial, variance [`CBD_VARIANCE`], as `fhe`'s
    /// `SecretKey::random`).
    pub fn generate<R: RngCore + CryptoRng>(
        param: ParamId,
        party: PartyId,
        rng: &mut R,
    ) -> Result<Self> {
        let params = param.params()?;
        let coeffs = sample_cbd(&params, rng)?;
        Self::from_coeffs(param, party, coeffs)
    }

    fn from_coeffs(param: ParamId, party: PartyId, coeffs: Zeroizing<Vec<i64>>) -> Result<Self> {
        let params = param.params()?;
        let mut s = Zeroizing::new(Poly::try_convert_from(
            coeffs.as_slice(),
            &params.ctx,
            false,
            Representation::PowerBasis,
        )?);
        s.change_representation(Representation::Ntt);
        Ok(Self {
            param,
            party,
            coeffs,
            s,
        })
    }

    /// The parameter set.
    pub fn param(&self) -> ParamId {
        self.param
    }

    /// The owning party.
    pub fn party(&self) -> PartyId {
        self.party
    }

    pub(crate) fn poly(&self) -> &Poly {
        &self.s
    }

    /// Serialized for persistence: header, party id, one signed byte per coefficient.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::new(Kind::SecretKeyShare, self.param, 2 + self.coeffs.len());
        w.u16(self.party);
        let bytes: Zeroizing<Vec<u8>> =
            Zeroizing::new(self.coeffs.iter().map(|&c| c as i8 as u8).collect());
        w.bytes(&bytes);
        Zeroizing::new(w.finish())
    }

    /// Parses [`SecretKeyShare::to_bytes`], checking header, degree and coefficient range.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let (mut r, param) = Reader::open(bytes, Kind::SecretKeyShare)?;
        let params = param.params()?;
        let party = r.party()?;
        let raw = r.bytes(params.degree(), "secret key coefficients")?;
        let coeffs: Zeroizing<Vec<i64>> =
            Zeroizing::new(raw.iter().map(|&b| b as i8 as i64).collect());
        if let Some(&c) = coeffs.iter().find(|c| c.abs() > SECRET_BOUND) {
            return Err(MheError::ValueOutOfRange {
                what: "secret key coefficient",
                value: c as i128,
                bound: SECRET_BOUND as i128,
            });
        }
        r.finish("secret key share")?;
        Self::from_coeffs(param, party, coeffs)
    }

    /// The `fhe` secret key `sum_i s_i` of several shares: the single-party reference key
    /// (tests and noise measurements only; no party ever holds it). Feature
    /// `insecure-simulation`.
    #[cfg(feature = "insecure-simulation")]
    pub fn sum_to_fhe(shares: &[&SecretKeyShare]) -> Result<fhe::bfv::SecretKey> {
        let first = shares.first().ok_or(MheError::WrongLength {
            what: "secret key shares",
            expected: 1,
            actual: 0,
        })?;
        let params = first.param.params()?;
        let mut sum = Zeroizing::new(vec![0i64; params.degree()]);
        for sh in shares {
            if sh.param != first.param {
                return Err(MheError::ParamMismatch {
                    expected: first.param,
                    actual: sh.param,
                });
            }
            for (acc, c) in sum.iter_mut().zip(sh.coeffs.iter()) {
                *acc += c;
            }
        }
        let proto = Zeroizing::new(
            fhe::proto::bfv::SecretKey {
                coeffs: sum.to_vec(),
            }
            .encode_to_vec(),
        );
        Ok(fhe::bfv::SecretKey::from_bytes(&proto, &params.bfv)?)
    }
}

impl std::fmt::Debug for SecretKeyShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretKeyShare")
            .field("param", &self.param)
            .field("party", &self.party)
            .field("s", &seco_core::redact::Redacted)
            .finish()
    }
}

/// Centered binomial samples of variance [`CBD_VARIANCE`] (`fhe-util`'s sampler, reached
/// through `Poly::small`), read back as signed integers from the first RNS row.
fn sample_cbd<R: RngCore + CryptoRng>(params: &Params, rng: &mut R) -> Result<Zeroizing<Vec<i64>>> {
    let p = Zeroizing::new(Poly::small(
        &params.ctx,
        Representation::PowerBasis,
        CBD_VARIANCE,
        rng,
    )?);
    let q = params.moduli()[0];
    let coeffs = p.coefficients();
    let out = coeffs
        .row(0)
        .iter()
        .map(|&c| {
            if c > q / 2 {
                c as i64 - q as i64
            } else {
                c as i64
            }
        })
        .collect();
    Ok(Zeroizing::new(out))
}

/// A BFV public key `(b, a = expand(seed))`: the collective key of the servers, or a user's
/// session key.
#[derive(Clone)]
pub struct PublicKey {
    params: Arc<Params>,
    seed: [u8; 32],
    b: Poly,
    a: Poly,
}

impl PublicKey {
    pub(crate) fn from_parts(param: ParamId, seed: [u8; 32], b: Poly) -> Result<Self> {
        let params = param.params()?;
        let a = expand_crp(&params, &seed);
        Ok(Self { params, seed, b, a })
    }

    /// The parameter set.
    pub fn param(&self) -> ParamId {
        self.params.id()
    }

    pub(crate) fn params(&self) -> &Params {
        &self.params
    }

    /// Encrypts the plaintext polynomial with coefficients `coeffs` (each `< t`; missing
    /// coefficients are zero): `c0 = b*u + e1 + Delta*m`, `c1 = a*u + e2` with `u, e1, e2`
    /// centered binomial (as `fhe`'s `PublicKey::try_encrypt`).
    pub fn encrypt<R: RngCore + CryptoRng>(
        &self,
        coeffs: &[u64],
        rng: &mut R,
    ) -> Result<Ciphertext> {
        let params = &self.params;
        let ctx = &params.ctx;
        let u = Zeroizing::new(Poly::small(ctx, Representation::Ntt, CBD_VARIANCE, rng)?);
        // e1 + Delta*m in the power basis: one NTT for both.
        let mut e1m = Zeroizing::new(Poly::small(
            ctx,
            Representation::PowerBasis,
            CBD_VARIANCE,
            rng,
        )?);
        *e1m += &delta_poly(params, coeffs)?;
        e1m.change_representation(Representation::Ntt);
        let e2 = Zeroizing::new(Poly::small(ctx, Representation::Ntt, CBD_VARIANCE, rng)?);
        let mut c0 = &self.b * u.as_ref();
        c0 += e1m.as_ref();
        let mut c1 = &self.a * u.as_ref();
        c1 += e2.as_ref();
        Ok(Ciphertext::from_parts(params.clone(), c0, c1))
    }

    /// Serialized: header, seed of `a`, packed `b`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let params = &self.params;
        let mut w = Writer::new(
            Kind::PublicKey,
            params.id(),
            32 + super::wire::poly_bytes(params),
        );
        w.bytes(&self.seed);
        w.poly(params, &self.b);
        w.finish()
    }

    /// Parses [`PublicKey::to_bytes`] for the expected parameter set.
    pub fn from_bytes(bytes: &[u8], expected: ParamId) -> Result<Self> {
        let mut r = Reader::open_expect(bytes, Kind::PublicKey, expected)?;
        let params = expected.params()?;
        let seed = r.array::<32>("public key seed")?;
        let b = r.poly(&params)?;
        r.finish("public key")?;
        Self::from_parts(expected, seed, b)
    }

    /// The same key as an `fhe::bfv::PublicKey` (reference tests).
    pub fn to_fhe(&self) -> Result<fhe::bfv::PublicKey> {
        use fhe_traits::Serialize as _;
        let params = &self.params;
        let proto = fhe::proto::bfv::PublicKey {
            c: Some(fhe::proto::bfv::Ciphertext {
                c: vec![self.b.to_bytes(), self.a.to_bytes()],
                seed: Vec::new(),
                level: 0,
            }),
        };
        Ok(fhe::bfv::PublicKey::from_bytes(
            &proto.encode_to_vec(),
            &params.bfv,
        )?)
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKey")
            .field("param", &self.params.id())
            .finish_non_exhaustive()
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.params.id() == other.params.id() && self.seed == other.seed && self.b == other.b
    }
}

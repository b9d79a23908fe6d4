//! BFV ciphertexts `(c0, c1)` with `c0 + c1*s = Delta*m + e (mod q)`, their byte format and
//! homomorphic addition.

use std::sync::Arc;

use fhe_math::rq::{traits::TryConvertFrom, Poly, Representation};

use super::error::{MheError, Result};
use super::params::{ParamId, Params};
use super::wire::{poly_bytes, Kind, Reader, Writer};

/// A two-component BFV ciphertext in the NTT representation, tagged with its parameter set.
#[derive(Clone)]
pub struct Ciphertext {
    pub(crate) params: Arc<Params>,
    pub(crate) c0: Poly,
    pub(crate) c1: Poly,
}

impl Ciphertext {
    pub(crate) fn from_parts(params: Arc<Params>, c0: Poly, c1: Poly) -> Self {
        Self { params, c0, c1 }
    }

    /// The parameter set.
    pub fn param(&self) -> ParamId {
        self.params.id()
    }

    /// Adds `other` in place (ciphertexts of one parameter set and key).
    pub fn add_assign(&mut self, other: &Ciphertext) -> Result<()> {
        self.check_same(other)?;
        self.c0 += &other.c0;
        self.c1 += &other.c1;
        Ok(())
    }

    /// The sum of several ciphertexts (e.g. `Enc(r^(1)) + ... + Enc(r^(n))`).
    pub fn sum<'a>(cts: impl IntoIterator<Item = &'a Ciphertext>) -> Result<Ciphertext> {
        let mut it = cts.into_iter();
        let mut acc = it
            .next()
            .ok_or(MheError::WrongLength {
                what: "ciphertexts to add",
                expected: 1,
                actual: 0,
            })?
            .clone();
        for ct in it {
            acc.add_assign(ct)?;
        }
        Ok(acc)
    }

    pub(crate) fn check_same(&self, other: &Ciphertext) -> Result<()> {
        if self.param() != other.param() {
            return Err(MheError::ParamMismatch {
                expected: self.param(),
                actual: other.param(),
            });
        }
        Ok(())
    }

    /// Serialized: header, packed `c0`, packed `c1`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let p = &self.params;
        let mut w = Writer::new(Kind::Ciphertext, p.id(), 2 * poly_bytes(p));
        w.poly(p, &self.c0);
        w.poly(p, &self.c1);
        w.finish()
    }

    /// Parses [`Ciphertext::to_bytes`] for the expected parameter set.
    pub fn from_bytes(bytes: &[u8], expected: ParamId) -> Result<Self> {
        let mut r = Reader::open_expect(bytes, Kind::Ciphertext, expected)?;
        let params = expected.params()?;
        let c0 = r.poly(&params)?;
        let c1 = r.poly(&params)?;
        r.finish("ciphertext")?;
        Ok(Self { params, c0, c1 })
    }

    /// The same ciphertext as an `fhe::bfv::Ciphertext` (reference decryption in tests).
    pub fn to_fhe(&self) -> Result<fhe::bfv::Ciphertext> {
        Ok(fhe::bfv::Ciphertext::new(
            vec![self.c0.clone(), self.c1.clone()],
            &self.params.bfv,
        )?)
    }
}

impl std::fmt::Debug for Ciphertext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ciphertext")
            .field("param", &self.param())
            .finish_non_exhaustive()
    }
}

/// `Delta * m` as a polynomial in the power basis, for plaintext coefficients `coeffs[i] < t`
/// (missing ones zero). Same integers as `fhe`'s `Plaintext::to_poly`.
pub(crate) fn delta_poly(params: &Params, coeffs: &[u64]) -> Result<Poly> {
    let n = params.degree();
    if coeffs.len() > n {
        return Err(MheError::WrongLength {
            what: "plaintext coefficients",
            expected: n,
            actual: coeffs.len(),
        });
    }
    if let Some(&v) = coeffs.iter().find(|&&v| v as u128 >= params.t()) {
        return Err(MheError::ValueOutOfRange {
            what: "plaintext coefficient",
            value: v as i128,
            bound: params.t() as i128,
        });
    }
    let limbs = params.moduli().len();
    let mut flat = vec![0u64; n * limbs];
    for limb in 0..limbs {
        let row = &mut flat[limb * n..(limb + 1) * n];
        for (dst, &m) in row.iter_mut().zip(coeffs) {
            if m != 0 {
                *dst = params.delta_times(m, limb);
            }
        }
    }
    Ok(Poly::try_convert_from(
        flat,
        &params.ctx,
        false,
        Representation::PowerBasis,
    )?)
}

/// Bytes of a serialized ciphertext of this parameter set.
pub fn ciphertext_bytes(params: &Params) -> usize {
    super::wire::HEADER_LEN + 2 * poly_bytes(params)
}

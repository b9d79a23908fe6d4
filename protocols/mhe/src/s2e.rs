//! Shares-to-encryption (Mouchet et al., PETS 2021, s.5 "Share2Enc") and result delivery to
//! the user (DESIGN.md s.5, phase 3 step 4).
//!
//! Every server encrypts its additive share of a vector under a target public key (the user's
//! session key for result delivery, or the collective key) in a layout; an aggregator (the
//! gateway) adds the `n` ciphertexts: the sum encrypts the shared vector. For the user the
//! aggregate is cut down to a [`ResultCiphertext`]: the full `c1` and `c0` only at the result
//! coefficients, which is all the user needs to decrypt.
//!
//! No flooding is needed here: the user decrypts with its own key, and the noise it learns
//! (`sum_i u_i*e + e1_i + s*e2_i`) depends on the servers' fresh encryption randomness and the
//! user's own key only, no server secret.

use std::sync::Arc;

use fhe_math::rq::{Poly, Representation};
use zeroize::Zeroizing;

use super::ciphertext::Ciphertext;
use super::error::{MheError, Result};
use super::layout::Layout;
use super::noise::{fresh_variance, half_delta_bits, TAIL_Z};
use super::params::{ParamId, Params};
use super::wire::{poly_bytes, residues_bytes, Kind, Reader, Writer};
use super::PartyId;

/// The aggregator of shares-to-encryption: collects one ciphertext vector per server.
#[derive(Debug)]
pub struct S2eAggregator {
    param: ParamId,
    n: usize,
    num_cts: usize,
    received: Vec<bool>,
    acc: Option<Vec<Ciphertext>>,
}

impl S2eAggregator {
    /// Expects `num_cts` ciphertexts (under one key of `param`) from each of `n` servers.
    pub fn new(param: ParamId, n: usize, num_cts: usize) -> Self {
        Self {
            param,
            n,
            num_cts,
            received: vec![false; n],
            acc: None,
        }
    }

    /// Adds server `from`'s ciphertexts; returns the sum once all `n` are in.
    pub fn handle(&mut self, from: PartyId, cts: &[Ciphertext]) -> Result<Option<Vec<Ciphertext>>> {
        if from as usize >= self.n {
            return Err(MheError::UnknownParty {
                party: from,
                n: self.n,
            });
        }
        if self.received[from as usize] {
            return Err(MheError::Duplicate {
                party: from,
                round: "S2E ciphertext",
            });
        }
        if cts.len() != self.num_cts {
            return Err(MheError::WrongLength {
                what: "S2E ciphertexts",
                expected: self.num_cts,
                actual: cts.len(),
            });
        }
        if let Some(ct) = cts.iter().find(|ct| ct.param() != self.param) {
            return Err(MheError::ParamMismatch {
                expected: self.param,
                actual: ct.param(),
            });
        }
        match &mut self.acc {
            None => self.acc = Some(cts.to_vec()),
            Some(acc) => {
                for (a, c) in acc.iter_mut().zip(cts) {
                    a.add_assign(c)?;
                }
            }
        }
        self.received[from as usize] = true;
        if self.received.iter().all(|&r| r) {
            return Ok(self.acc.take());
        }
        Ok(None)
    }
}

/// What the user receives: `c1` in full and `c0` at the result coefficients only.
#[derive(Clone)]
pub struct ResultCiphertext {
    pub(crate) params: Arc<Params>,
    /// Result coefficient of each output value.
    pub(crate) positions: Vec<u32>,
    /// `c0` at `positions`, `[limb][i]`.
    pub(crate) c0: Vec<Vec<u64>>,
    pub(crate) c1: Poly,
}

impl ResultCiphertext {
    /// Cuts `ct` down to the coefficients of `layout` (which must fit one ciphertext).
    pub fn restrict(ct: &Ciphertext, layout: &Layout) -> Result<Self> {
        if layout.num_cts != 1 || layout.degree != ct.params.degree() {
            return Err(MheError::Shape {
                reason: "a result layout must be one ciphertext of the key's degree",
            });
        }
        layout.validate(ct.params.degree())?;
        let positions: Vec<u32> = layout.slots.iter().map(|s| s.coeff).collect();
        let mut c0 = ct.c0.clone();
        c0.change_representation(Representation::PowerBasis);
        let c0 = c0
            .coefficients()
            .outer_iter()
            .map(|row| positions.iter().map(|&p| row[p as usize]).collect())
            .collect();
        Ok(Self {
            params: ct.params.clone(),
            positions,
            c0,
            c1: ct.c1.clone(),
        })
    }

    /// The parameter set.
    pub fn param(&self) -> ParamId {
        self.params.id()
    }

    /// Serialized: header, count, positions (u32), packed `c0` residues, packed `c1`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let p = &self.params;
        let k = self.positions.len();
        let mut w = Writer::new(
            Kind::ResultCiphertext,
            p.id(),
            4 + 4 * k + residues_bytes(p, k) + poly_bytes(p),
        );
        w.u32(k as u32);
        for &pos in &self.positions {
            w.u32(pos);
        }
        w.residues(p, &self.c0);
        w.poly(p, &self.c1);
        w.finish()
    }

    /// Parses [`ResultCiphertext::to_bytes`] for the expected parameter set.
    pub fn from_bytes(bytes: &[u8], expected: ParamId) -> Result<Self> {
        let mut r = Reader::open_expect(bytes, Kind::ResultCiphertext, expected)?;
        let params = expected.params()?;
        let n = params.degree();
        let k = r.count("result positions", n)?;
        let positions = (0..k)
            .map(|_| {
                let p = r.u32("result position")?;
                if p as usize >= n {
                    return Err(MheError::ValueOutOfRange {
                        what: "result position",
                        value: p as i128,
                        bound: n as i128,
                    });
                }
                Ok(p)
            })
            .collect::<Result<Vec<_>>>()?;
        let c0 = r.residues(&params, k)?;
        let c1 = r.poly(&params)?;
        r.finish("result ciphertext")?;
        Ok(Self {
            params,
            positions,
            c0,
            c1,
        })
    }

    /// Decrypts with secret `s` (NTT): `round(t/q * (c0 + c1*s))` at the result coefficients.
    pub(crate) fn decrypt_with(&self, s: &Poly) -> Vec<u64> {
        let mut d = Zeroizing::new(&self.c1 * s);
        d.change_representation(Representation::PowerBasis);
        let coeffs = d.coefficients();
        let limbs = self.params.moduli().len();
        let mut residues = Zeroizing::new(vec![0u64; limbs]);
        (0..self.positions.len())
            .map(|i| {
                for (limb, &q) in self.params.moduli().iter().enumerate() {
                    let v = coeffs[[limb, self.positions[i] as usize]] as u128
                        + self.c0[limb][i] as u128;
                    residues[limb] = (v % q as u128) as u64;
                }
                self.params.decode_coeff(&residues)
            })
            .collect()
    }
}

impl std::fmt::Debug for ResultCiphertext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResultCiphertext")
            .field("param", &self.param())
            .field("values", &self.positions.len())
            .finish_non_exhaustive()
    }
}

/// Decryption headroom (bits) of an aggregate of `n` fresh encryptions under a single-party key
/// (the user's session key): `log2(Delta/2) - log2(Z*sigma + n)`.
pub fn result_headroom_bits(params: &Params, n: usize) -> f64 {
    let sigma = (n as f64 * fresh_variance(params, 1)).sqrt();
    half_delta_bits(params) - (TAIL_Z * sigma + n as f64).log2()
}

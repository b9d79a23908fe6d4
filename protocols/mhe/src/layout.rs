//! Coefficient layouts: where each value of a vector sits in a list of ciphertexts.
//!
//! With coefficient encoding (Cheetah, Huang et al., USENIX Security 2022, s.3) a vector is not
//! in SIMD slots but in polynomial coefficients; the layout of a layer's input is chosen so
//! that one polynomial product per (output ciphertext, input ciphertext) computes the layer,
//! and the layout of its output says which coefficients of the product carry results (the
//! others hold partial sums that must never be decrypted).

use rand::{CryptoRng, RngCore};

use super::ciphertext::Ciphertext;
use super::error::{MheError, Result};
use super::keys::PublicKey;

/// The position of one value: ciphertext index and coefficient index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Slot {
    /// Index of the ciphertext.
    pub ct: u32,
    /// Coefficient within it.
    pub coeff: u32,
}

/// Where each value of a vector sits: `slots[i]` holds value `i`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Ring degree N.
    pub degree: usize,
    /// Number of ciphertexts.
    pub num_cts: usize,
    /// One slot per value.
    pub slots: Vec<Slot>,
}

impl Layout {
    /// Values `0..len` at coefficients `0..` of consecutive ciphertexts, `degree` per ciphertext.
    pub fn contiguous(len: usize, degree: usize) -> Self {
        let slots = (0..len)
            .map(|i| Slot {
                ct: (i / degree) as u32,
                coeff: (i % degree) as u32,
            })
            .collect();
        Self {
            degree,
            num_cts: len.div_ceil(degree).max(1),
            slots,
        }
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the layout holds no value.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Checks that every slot lies inside `num_cts` ciphertexts of `degree` coefficients and
    /// that `degree` is the expected ring degree.
    pub fn validate(&self, degree: usize) -> Result<()> {
        if self.degree != degree {
            return Err(MheError::WrongDegree {
                expected: degree,
                actual: self.degree,
            });
        }
        if let Some(s) = self
            .slots
            .iter()
            .find(|s| s.ct as usize >= self.num_cts || s.coeff as usize >= self.degree)
        {
            return Err(MheError::ValueOutOfRange {
                what: "layout slot",
                value: s.coeff.max(s.ct) as i128,
                bound: self.degree.max(self.num_cts) as i128,
            });
        }
        Ok(())
    }

    /// Plaintext coefficient vectors (one per ciphertext, `degree` long) holding `values` at
    /// their slots and zero elsewhere.
    pub fn pack(&self, values: &[u64]) -> Result<Vec<Vec<u64>>> {
        self.check_len(values.len())?;
        self.validate(self.degree)?;
        let mut out = vec![vec![0u64; self.degree]; self.num_cts];
        for (v, s) in values.iter().zip(&self.slots) {
            out[s.ct as usize][s.coeff as usize] = *v;
        }
        Ok(out)
    }

    /// Reads the values back from per-ciphertext coefficient vectors.
    pub fn unpack(&self, cts: &[Vec<u64>]) -> Result<Vec<u64>> {
        self.validate(self.degree)?;
        if cts.len() != self.num_cts {
            return Err(MheError::WrongLength {
                what: "decrypted ciphertexts",
                expected: self.num_cts,
                actual: cts.len(),
            });
        }
        self.slots
            .iter()
            .map(|s| {
                cts[s.ct as usize]
                    .get(s.coeff as usize)
                    .copied()
                    .ok_or(MheError::WrongLength {
                        what: "decrypted coefficients",
                        expected: self.degree,
                        actual: cts[s.ct as usize].len(),
                    })
            })
            .collect()
    }

    /// Per ciphertext, the `(coefficient, value index)` pairs in increasing coefficient order:
    /// exactly the coefficients a restricted decryption must touch.
    pub fn by_ct(&self) -> Vec<Vec<(u32, u32)>> {
        let mut out = vec![Vec::new(); self.num_cts];
        for (i, s) in self.slots.iter().enumerate() {
            out[s.ct as usize].push((s.coeff, i as u32));
        }
        for v in &mut out {
            v.sort_unstable();
        }
        out
    }

    /// Encrypts `values` under `pk` in this layout: the user's `Enc(r_1)`, or a server's
    /// `Enc(r_l^(i))` for the owner of layer `l`.
    pub fn encrypt<R: RngCore + CryptoRng>(
        &self,
        pk: &PublicKey,
        values: &[u64],
        rng: &mut R,
    ) -> Result<Vec<Ciphertext>> {
        self.validate(pk.params().degree())?;
        self.pack(values)?
            .iter()
            .map(|coeffs| pk.encrypt(coeffs, rng))
            .collect()
    }

    fn check_len(&self, len: usize) -> Result<()> {
        if len != self.slots.len() {
            return Err(MheError::WrongLength {
                what: "values for layout",
                expected: self.slots.len(),
                actual: len,
            });
        }
        Ok(())
    }
}

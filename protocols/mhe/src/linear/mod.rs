//! Encrypted linear layers with coefficient encoding (Cheetah, Huang et al., USENIX Security
//! 2022, s.4): the owner of a layer turns `Enc(r)` into `Enc(W r - s)` with plaintext weights,
//! one polynomial product per (output ciphertext, input ciphertext), no rotations, no Galois
//! keys.
//!
//! Private inputs (owner): the weights `W`, the fresh mask `s`. Public inputs: the layer's
//! shape, the input ciphertexts (the sum of every contributor's `Enc(r^(i))`), the collective
//! public key. Output: ciphertexts whose output-layout coefficients hold `W r - s (mod 2^k)`.
//!
//! Each output ciphertext is re-randomized with a fresh encryption (of `-s`): without it,
//! anyone holding `Enc(r)` could divide `c1` of the output by `c1` of the input and read the
//! weight polynomial. The noise that carries `W` (`W * e_in`) is hidden by the flooding of the
//! encryption-to-shares step (see [`crate::e2s`]).
//!
//! # Layout
//! - [`packing`]: the public layouts and the weight placement (HomFC, HomConv, pooling).
//! - this file: the layer shapes, weight encoding and the homomorphic evaluation.

mod op;
pub mod packing;

pub use op::op_noise;

use std::sync::Arc;

use fhe_math::rq::{traits::TryConvertFrom, Poly, Representation};
use rand::{CryptoRng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rayon::prelude::*;
use zeroize::Zeroizing;

use super::ciphertext::Ciphertext;
use super::e2s::{check_budget, E2sBudget};
use super::error::{MheError, Result};
use super::keys::PublicKey;
use super::noise::LayerNoise;
use super::params::{ParamId, Params};
pub use packing::LayerPacking;

pub use seco_model::LinearShape;

/// `(||w||_2^2, ||w||_1)` of one weight polynomial's signed coefficients.
pub(crate) fn coeff_norms(coeffs: &[i64]) -> (f64, f64) {
    coeffs.iter().fold((0.0, 0.0), |(sq, l1), &c| {
        let c = c as f64;
        (sq + c * c, l1 + c.abs())
    })
}

/// A layer's weights encoded as plaintext polynomials, ready for repeated evaluation (the
/// owner encodes once per model load; every bundle reuses them).
pub struct EncodedLayer {
    params: Arc<Params>,
    packing: LayerPacking,
    /// `polys[k][j]`: weight polynomial for output ciphertext k and input ciphertext j
    /// (NttShoup representation for fast products), `None` when zero.
    polys: Vec<Vec<Option<Poly>>>,
    /// Per output ciphertext, `sum_j ||W_kj||_2^2` (noise growth of the product).
    sq_norms: Vec<f64>,
    /// Per output ciphertext, `sum_j ||W_kj||_1` (growth of the encoding's rounding error).
    l1_norms: Vec<f64>,
}

impl EncodedLayer {
    /// Encodes `weight` (signed fixed-point integers in the layout of [`LinearShape`]) for
    /// parameter set `param`.
    pub fn encode(param: ParamId, shape: &LinearShape, weight: &[i64]) -> Result<Self> {
        let params = param.params()?;
        let packing = LayerPacking::new(shape, params.degree())?;
        if weight.len() != shape.weight_len() {
            return Err(MheError::WrongLength {
                what: "layer weights",
                expected: shape.weight_len(),
                actual: weight.len(),
            });
        }
        let (nk, nj) = (packing.num_out_cts(), packing.num_in_cts());
        let mut polys = Vec::with_capacity(nk);
        let (mut sq_norms, mut l1_norms) = (vec![0f64; nk], vec![0f64; nk]);
        for k in 0..nk {
            let mut row = Vec::with_capacity(nj);
            for j in 0..nj {
                let Some(coeffs) = packing.weight_coeffs(weight, k, j) else {
                    row.push(None);
                    continue;
                };
                let (sq, l1) = coeff_norms(&coeffs);
                sq_norms[k] += sq;
                l1_norms[k] += l1;
                // Signed (centered) lift: the noise grows with |w|, not with w mod t.
                let mut p = Poly::try_convert_from(
                    coeffs.as_slice(),
                    &params.ctx,
                    true,
                    Representation::PowerBasis,
                )?;
                p.change_representation(Representation::NttShoup);
                row.push(Some(p));
            }
            polys.push(row);
        }
        Ok(Self {
            params,
            packing,
            polys,
            sq_norms,
            l1_norms,
        })
    }

    /// The public packing.
    pub fn packing(&self) -> &LayerPacking {
        &self.packing
    }

    /// The parameter set.
    pub fn param(&self) -> ParamId {
        self.params.id()
    }

    /// `Enc(W r - s)`: `inputs` are the input ciphertexts (in the input layout, already summed
    /// over contributors), `mask` is the owner's fresh `s` (one value `< t` per output), `pk` the
    /// collective key used for the re-randomizing encryption of `-s`.
    pub fn eval<R: RngCore + CryptoRng>(
        &self,
        pk: &PublicKey,
        inputs: &[Ciphertext],
        mask: &[u64],
        rng: &mut R,
    ) -> Result<Vec<Ciphertext>> {
        self.check_inputs(pk, inputs)?;
        let t_mask = self.params.t_mask();
        let neg: Vec<u64> = mask.iter().map(|&s| s.wrapping_neg() & t_mask).collect();
        let neg_s = self.packing.output.pack(&neg)?;
        // One output ciphertext per task on the protocol pool, each encrypting with its own
        // ChaCha20 stream keyed from `rng` (a CSPRNG keyed by a CSPRNG's output).
        let seeds: Vec<Zeroizing<[u8; 32]>> = (0..self.polys.len())
            .map(|_| {
                let mut seed = Zeroizing::new([0u8; 32]);
                rng.fill_bytes(seed.as_mut());
                seed
            })
            .collect();
        self.polys
            .par_iter()
            .zip(&neg_s)
            .zip(&seeds)
            .map(|((row, neg_s_k), seed)| {
                let mut rng = ChaCha20Rng::from_seed(**seed);
                // Fresh Enc(-s) first: it also re-randomizes the product.
                let mut acc = pk.encrypt(neg_s_k, &mut rng)?;
                for (w, ct) in row.iter().zip(inputs) {
                    if let Some(w) = w {
                        acc.c0 += &(&ct.c0 * w);
                        acc.c1 += &(&ct.c1 * w);
                    }
                }
                Ok(acc)
            })
            .collect()
    }

    fn check_inputs(&self, pk: &PublicKey, inputs: &[Ciphertext]) -> Result<()> {
        let me = self.params.id();
        for p in std::iter::once(pk.param()).chain(inputs.iter().map(Ciphertext::param)) {
            if p != me {
                return Err(MheError::ParamMismatch {
                    expected: me,
                    actual: p,
                });
            }
        }
        if inputs.len() != self.packing.num_in_cts() {
            return Err(MheError::WrongLength {
                what: "input ciphertexts",
                expected: self.packing.num_in_cts(),
                actual: inputs.len(),
            });
        }
        Ok(())
    }

    /// The noise of the output ciphertexts when the inputs are sums of `input_encryptions`
    /// fresh encryptions under a key of `n` parties (1 for the user's `Enc(r_1)`, n for the
    /// servers' `Enc(r_l^(i))`).
    pub fn noise(&self, n: usize, input_encryptions: usize) -> LayerNoise {
        let sq = self.sq_norms.iter().cloned().fold(0f64, f64::max);
        let l1 = self.l1_norms.iter().cloned().fold(0f64, f64::max);
        LayerNoise::of_product(
            &self.params,
            n,
            input_encryptions,
            sq,
            l1,
            self.packing.output.len(),
        )
    }

    /// The encryption-to-shares budget of this layer for `n` servers: fails unless the
    /// flooding gives at least `min_security_bits` and decryption keeps a margin.
    pub fn check_budget(
        &self,
        n: usize,
        input_encryptions: usize,
        min_security_bits: f64,
    ) -> Result<E2sBudget> {
        check_budget(
            &self.params,
            n,
            &self.noise(n, input_encryptions),
            min_security_bits,
        )
    }
}

//! Noise accounting: fresh-encryption noise, growth through plaintext products, and the
//! decryption and flooding budgets of encryption-to-shares (DESIGN.md s.2).
//!
//! Variances are per coefficient. With secrets, encryption randomness and errors all centered
//! binomial of variance `v` ([`CBD_VARIANCE`]) and a key of `n` parties (`s = sum s_i`,
//! `e_pk = sum e_i`), a fresh public-key encryption has noise `u*e_pk + e1 + s*e2` of variance
//! `2*N*n*v^2 + v`. A plaintext product with a weight polynomial `w` multiplies the variance by
//! `||w||_2^2` (the coefficients of a product of independent centered polynomials are
//! uncorrelated) and adds the encoding's rounding, at most `||w||_1`.

use super::params::{big_log2, Params, CBD_VARIANCE};

/// Tail factor for high-probability noise bounds: a coefficient exceeds `Z` standard deviations
/// with probability about `2^-75` (Gaussian tail; the noise is a sum of thousands of terms).
pub const TAIL_Z: f64 = 10.0;

/// Variance of one coefficient of a fresh public-key encryption under an `n`-party key.
pub fn fresh_variance(params: &Params, n: usize) -> f64 {
    let v = CBD_VARIANCE as f64;
    let nn = params.degree() as f64;
    2.0 * nn * n as f64 * v * v + v
}

/// The noise of a layer's output ciphertexts (worst output ciphertext).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerNoise {
    /// Standard deviation of the random part.
    pub sigma: f64,
    /// Deterministic bound on the rounding part (`||W||_1` and the encoding of `-s`).
    pub rounding: f64,
    /// High-probability bound `TAIL_Z * sigma + rounding`.
    pub bound: f64,
    /// Number of result coefficients that encryption-to-shares reveals (the layer's outputs).
    pub revealed: usize,
}

impl LayerNoise {
    pub(crate) fn of_product(
        params: &Params,
        n: usize,
        input_encryptions: usize,
        sq_norm: f64,
        l1_norm: f64,
        revealed: usize,
    ) -> Self {
        let fresh = fresh_variance(params, n);
        // Inputs: a sum of fresh encryptions; output: product plus the re-randomizing Enc(-s).
        let var = sq_norm * input_encryptions as f64 * fresh + fresh;
        let sigma = var.sqrt();
        let rounding = l1_norm + 1.0;
        Self {
            sigma,
            rounding,
            bound: TAIL_Z * sigma + rounding,
            revealed,
        }
    }

    /// `log2` of the high-probability bound.
    pub fn bound_bits(&self) -> f64 {
        self.bound.log2()
    }
}

/// `log2(Delta / 2)`: the decryption threshold.
pub fn half_delta_bits(params: &Params) -> f64 {
    big_log2(params.delta()) - 1.0
}

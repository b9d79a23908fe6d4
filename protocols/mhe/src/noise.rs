//! Noise accounting: fresh-encryption noise, growth through plaintext products, and the
//! decryption and flooding budgets of encryption-to-shares (DESIGN.md s.2; the flooding's
//! privacy argument is in [`super::e2s`]).
//!
//! Variances are per coefficient. With secrets, encryption randomness and errors all centered
//! binomial of variance `v` ([`CBD_VARIANCE`]) and a key of `n` parties (`s = sum s_i`,
//! `e_pk = sum e_i`), a fresh public-key encryption has noise `u*e_pk + e1 + s*e2` of variance
//! `2*N*n*v^2 + v`. A plaintext product with a weight polynomial `w` multiplies the variance by
//! `||w||_2^2` (the coefficients of a product of independent centered polynomials are
//! uncorrelated) and adds the encoding's rounding, at most `||w||_1`.

use super::compress::compression_sigma;
use super::error::{MheError, Result};
use super::gaussian::DiscreteGaussian;
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

/// The flooding bound `B = floor(Delta / (4*(n-1)))` for `n` servers: each server's flooding is
/// truncated at `+-B`.
pub fn flood_bound(params: &Params, n: usize) -> u128 {
    let d = params.delta() / (4 * n.max(2) as u64 - 4);
    u128::try_from(&d).unwrap_or(u128::MAX >> 2)
}

/// How many standard deviations the truncation bound `B` is: `sigma_f = B / FLOOD_TAILS`. A
/// discrete Gaussian exceeds 12 standard deviations with probability below `2^-107`.
pub const FLOOD_TAILS: u128 = 12;

/// `log2` of the statistical distance the truncation of one flooding sample can add (twice the
/// tail mass beyond `FLOOD_TAILS` standard deviations).
pub const TRUNCATION_BITS: f64 = -106.0;

/// The flooding's standard deviation parameter `sigma_f = B / FLOOD_TAILS` for `n` servers.
pub fn flood_sigma(params: &Params, n: usize) -> u128 {
    flood_bound(params, n) / FLOOD_TAILS
}

/// The flooding sampler of one server for `n` servers.
pub fn flooding(params: &Params, n: usize) -> DiscreteGaussian {
    DiscreteGaussian::new(flood_sigma(params, n), flood_bound(params, n))
}

/// The decryption and flooding budgets of one instance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct E2sBudget {
    /// `log2 B`: the truncation bound of each server's flooding.
    pub flood_bits: f64,
    /// `log2 sigma_f`: the flooding's standard deviation.
    pub flood_sigma_bits: f64,
    /// `log2` of the noise bound (ciphertext noise and the `c1` compression rounding).
    pub noise_bits: f64,
    /// `log2(Delta/2) - log2(noise bound + (n-1)*B + n)`: decryption margin (> 0 decrypts;
    /// about 1 by construction, since the flooding takes `Delta/4`).
    pub margin_bits: f64,
    /// `log2(Delta/2 - (n-1)*B - n) - log2(noise bound)`: how many bits the ciphertext noise
    /// could still grow before decryption fails.
    pub headroom_bits: f64,
    /// `-log2` of the statistical distance of the leader's view from one without the noise:
    /// `sqrt(K) * rms(e) / (2 sigma_f)` over the `K` revealed coefficients, plus the truncation.
    /// Divergences add over runs: `R` runs under one key reach `security_bits - log2(R)/2`.
    pub security_bits: f64,
}

/// Budgets for `n` servers and a layer's output noise.
pub fn e2s_budget(params: &Params, n: usize, noise: &LayerNoise) -> E2sBudget {
    let b = flood_bound(params, n) as f64;
    let flood_sigma = flood_sigma(params, n) as f64;
    // The rounding of the compressed c1 (`sum_i delta*s_i`) counts as noise to hide.
    let sigma = noise.sigma.hypot(compression_sigma(params, n));
    let bound = TAIL_Z * sigma + noise.rounding;
    let total = bound + (n as f64 - 1.0) * b + n as f64;
    // sqrt(E e^2) <= sigma + rounding (Minkowski), so E||e||_2 <= sqrt(K) (sigma + rounding).
    let rms = sigma + noise.rounding;
    let k = noise.revealed.max(1) as f64;
    let distance = k.sqrt() * rms / (2.0 * flood_sigma) + k * TRUNCATION_BITS.exp2();
    E2sBudget {
        flood_bits: b.log2(),
        flood_sigma_bits: flood_sigma.log2(),
        noise_bits: bound.log2(),
        margin_bits: half_delta_bits(params) - total.log2(),
        headroom_bits: (2f64.powf(half_delta_bits(params)) - (n as f64 - 1.0) * b - n as f64)
            .log2()
            - bound.log2(),
        security_bits: -distance.log2(),
    }
}

/// Checks the budget: at least `min_security_bits` of flooding and a positive margin.
pub fn check_budget(
    params: &Params,
    n: usize,
    noise: &LayerNoise,
    min_security_bits: f64,
) -> Result<E2sBudget> {
    let b = e2s_budget(params, n, noise);
    if b.security_bits < min_security_bits {
        return Err(MheError::NoiseBudget {
            what: "flooding statistical security",
            needed_bits: min_security_bits,
            available_bits: b.security_bits,
        });
    }
    if b.headroom_bits < 1.0 {
        return Err(MheError::NoiseBudget {
            what: "decryption headroom",
            needed_bits: 1.0,
            available_bits: b.headroom_bits,
        });
    }
    Ok(b)
}

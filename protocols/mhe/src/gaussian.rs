//! Exact sampling of the discrete Gaussian `D_{Z,sigma}` with a large integer `sigma`, truncated
//! at `+-bound`: the flooding distribution of encryption-to-shares ([`super::e2s`]).
//!
//! The algorithm is Canonne, Kamath and Steinke, "The Discrete Gaussian for Differential
//! Privacy" (NeurIPS 2020, arXiv:2004.00010), s.5: Algorithm 1 (a Bernoulli with parameter
//! `exp(-gamma)` for rational `gamma`), Algorithm 2 (the discrete Laplace with scale `t`) and
//! Algorithm 3 (the discrete Gaussian by rejection from the discrete Laplace, `t = sigma + 1`).
//! Every step is integer arithmetic on exact rationals (no floating point), so the output follows
//! `D_{Z,sigma}` exactly, given a uniform random source; `sigma` reaches `2^73` here, so the
//! rejection step works on `num-bigint` integers.
//!
//! Truncation: a sample with `|x| > bound` is drawn again, which keeps the sum of the `n-1`
//! followers' flooding deterministically below `Delta/4`. With `bound >= 12 sigma` the truncated
//! distribution is within statistical distance `2^-100` of `D_{Z,sigma}` (the discrete Gaussian's
//! tail is no heavier than the continuous one's one unit further out, CKS20 s.2:
//! `Pr[|x| > 12 sigma] < 2 Pr[N(0, sigma^2) > 12 sigma - 1] < 2^-107`).
//!
//! Why a Gaussian and not a uniform flooding: shifting `D_{Z,sigma}` by an integer `e` costs a
//! Kullback-Leibler divergence of exactly `e^2 / (2 sigma^2)` (the mean is 0), and divergences add
//! over independent coefficients, so hiding `K` noise coefficients costs a statistical distance
//! of at most `||e||_2 / (2 sigma)` (Pinsker), growing with `sqrt(K)`; a uniform flooding costs
//! `|e| / (2B+1)` per coefficient, growing with `K` ([`super::e2s::e2s_budget`]).

use num_bigint::BigUint;
use rand::{CryptoRng, RngCore};

/// A sampler of `D_{Z,sigma}` truncated at `+-bound`.
#[derive(Debug, Clone)]
pub struct DiscreteGaussian {
    sigma: u128,
    bound: u128,
    /// Laplace scale `t = sigma + 1`.
    t: u128,
    /// `sigma^2`.
    sigma_sq: BigUint,
    /// `2 sigma^2 t^2`: the denominator of the rejection exponent.
    denom: BigUint,
}

impl DiscreteGaussian {
    /// A sampler with standard deviation parameter `sigma >= 1` (at most `2^100`), truncated at
    /// `+-bound` (`bound >= sigma`).
    pub fn new(sigma: u128, bound: u128) -> Self {
        let sigma = sigma.clamp(1, 1 << 100);
        let t = sigma + 1;
        let sigma_sq = BigUint::from(sigma) * sigma;
        let denom = &sigma_sq * 2u32 * t * t;
        Self {
            sigma,
            bound: bound.max(sigma),
            t,
            sigma_sq,
            denom,
        }
    }

    /// The standard deviation parameter.
    pub fn sigma(&self) -> u128 {
        self.sigma
    }

    /// The truncation bound.
    pub fn bound(&self) -> u128 {
        self.bound
    }

    /// One sample (CKS20 Algorithm 3, then truncation).
    pub fn sample<R: RngCore + CryptoRng>(&self, rng: &mut R) -> i128 {
        loop {
            let y = laplace(self.t, rng);
            let abs = y.unsigned_abs();
            if abs > self.bound {
                continue;
            }
            // gamma = (|y| - sigma^2/t)^2 / (2 sigma^2) = (|y| t - sigma^2)^2 / (2 sigma^2 t^2).
            let yt = BigUint::from(abs) * self.t;
            let diff = if yt >= self.sigma_sq {
                yt - &self.sigma_sq
            } else {
                &self.sigma_sq - yt
            };
            if bernoulli_exp_big(&(&diff * &diff), &self.denom, rng) {
                return y;
            }
        }
    }
}

/// A uniform integer in `[0, bound)`, `bound > 0`.
fn below_u128<R: RngCore>(bound: u128, rng: &mut R) -> u128 {
    // Rejection from the smallest power of two above `bound`: unbiased.
    let bits = 128 - (bound - 1).leading_zeros();
    let mask = if bits >= 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    };
    loop {
        let x = ((rng.next_u64() as u128) << 64 | rng.next_u64() as u128) & mask;
        if x < bound {
            return x;
        }
    }
}

/// A uniform integer in `[0, bound)`, `bound > 0`.
fn below_big<R: RngCore>(bound: &BigUint, rng: &mut R) -> BigUint {
    let bits = bound.bits();
    let mut bytes = vec![0u8; bits.div_ceil(8) as usize];
    let spare = (8 * bytes.len() as u64 - bits) as u32;
    loop {
        rng.fill_bytes(&mut bytes);
        if let Some(top) = bytes.last_mut() {
            *top &= 0xff >> spare;
        }
        let x = BigUint::from_bytes_le(&bytes);
        if &x < bound {
            return x;
        }
    }
}

/// Bernoulli(`num / den`), `num <= den`, `den > 0`.
fn bernoulli_u128<R: RngCore>(num: u128, den: u128, rng: &mut R) -> bool {
    below_u128(den, rng) < num
}

/// Bernoulli(`exp(-num/den)`) for `0 <= num/den <= 1` (CKS20 Algorithm 1, first case), in `u128`
/// (`den * k` stays far below `2^128` for the scales used here).
fn bernoulli_exp_small<R: RngCore>(num: u128, den: u128, rng: &mut R) -> bool {
    let mut k: u128 = 1;
    loop {
        match den.checked_mul(k) {
            Some(dk) if bernoulli_u128(num, dk, rng) => k += 1,
            // `den * k` beyond u128 needs `k > 2^28` successive successes first, each with
            // probability at most `1/k`: never reached.
            _ => return k % 2 == 1,
        }
    }
}

/// Bernoulli(`exp(-1)`).
fn bernoulli_exp_one<R: RngCore>(rng: &mut R) -> bool {
    bernoulli_exp_small(1, 1, rng)
}

/// Bernoulli(`exp(-num/den)`) for any `num/den >= 0` (CKS20 Algorithm 1), on big integers.
fn bernoulli_exp_big<R: RngCore>(num: &BigUint, den: &BigUint, rng: &mut R) -> bool {
    let whole = num / den;
    let mut rounds = whole.iter_u64_digits().next().unwrap_or(0);
    if whole.bits() > 64 {
        rounds = u64::MAX;
    }
    for _ in 0..rounds {
        if !bernoulli_exp_one(rng) {
            return false;
        }
    }
    let frac = num - &whole * den;
    // exp(-frac/den) with frac/den in [0, 1).
    let mut k = 1u32;
    loop {
        let dk = den * k;
        if below_big(&dk, rng) < frac {
            k += 1;
        } else {
            return k % 2 == 1;
        }
    }
}

/// The discrete Laplace distribution with scale `t`, `Pr[x] ~ exp(-|x|/t)` (CKS20 Algorithm 2).
fn laplace<R: RngCore>(t: u128, rng: &mut R) -> i128 {
    loop {
        let u = below_u128(t, rng);
        if !bernoulli_exp_small(u, t, rng) {
            continue;
        }
        let mut v: u128 = 0;
        while bernoulli_exp_one(rng) {
            v += 1;
        }
        let Some(x) = v.checked_mul(t).and_then(|vt| vt.checked_add(u)) else {
            continue;
        };
        let Ok(x) = i128::try_from(x) else {
            continue;
        };
        let negative = rng.next_u32() & 1 == 1;
        if negative && x == 0 {
            continue;
        }
        return if negative { -x } else { x };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    /// Moments of many samples: mean, variance and kurtosis of a Gaussian (3), not of a uniform
    /// (1.8) or a Laplace (6); the truncation holds.
    fn moments(sigma: u128, bound: u128, count: usize) -> (f64, f64, f64) {
        let g = DiscreteGaussian::new(sigma, bound);
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let xs: Vec<f64> = (0..count)
            .map(|_| {
                let x = g.sample(&mut rng);
                assert!(x.unsigned_abs() <= bound);
                x as f64 / sigma as f64
            })
            .collect();
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        let kurt = xs.iter().map(|x| (x - mean).powi(4)).sum::<f64>() / n / (var * var);
        (mean, var, kurt)
    }

    #[test]
    fn large_sigma_has_gaussian_moments() {
        for sigma in [1u128 << 20, (1u128 << 74) / 12, (1u128 << 89) / 12] {
            let (mean, var, kurt) = moments(sigma, sigma * 12, 40_000);
            assert!(mean.abs() < 0.03, "mean {mean}");
            assert!((var - 1.0).abs() < 0.04, "variance {var}");
            assert!((kurt - 3.0).abs() < 0.2, "kurtosis {kurt}");
        }
    }

    #[test]
    fn small_sigma_matches_the_exact_probabilities() {
        // sigma = 2: Pr[x] = exp(-x^2/8) / sum_y exp(-y^2/8).
        let g = DiscreteGaussian::new(2, 100);
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let count = 200_000;
        let mut hist = [0usize; 41];
        for _ in 0..count {
            let x = g.sample(&mut rng);
            hist[(x + 20) as usize] += 1;
        }
        let z: f64 = (-20..=20).map(|y: i32| (-(y * y) as f64 / 8.0).exp()).sum();
        for x in -4i32..=4 {
            let p = (-(x * x) as f64 / 8.0).exp() / z;
            let seen = hist[(x + 20) as usize] as f64 / count as f64;
            let sd = (p * (1.0 - p) / count as f64).sqrt();
            assert!((seen - p).abs() < 5.0 * sd, "x = {x}: {seen} vs {p}");
        }
    }

    #[test]
    fn truncation_is_enforced() {
        let g = DiscreteGaussian::new(1000, 1500);
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        for _ in 0..20_000 {
            assert!(g.sample(&mut rng).unsigned_abs() <= 1500);
        }
    }

    #[test]
    fn bernoulli_exp_matches_its_parameter() {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        for (num, den) in [(0u32, 1u32), (1, 2), (3, 2), (5, 1)] {
            let count = 100_000;
            let hits = (0..count)
                .filter(|_| bernoulli_exp_big(&num.into(), &den.into(), &mut rng))
                .count();
            let p = (-(num as f64) / den as f64).exp();
            let sd = (p * (1.0 - p) / count as f64).sqrt().max(1e-9);
            let seen = hits as f64 / count as f64;
            assert!(
                (seen - p).abs() < 5.0 * sd + 1e-9,
                "{num}/{den}: {seen} vs {p}"
            );
        }
    }
}

//! Compression of the `c1` polynomials that encryption-to-shares sends to every follower (the
//! dominant bytes of preprocessing): each coefficient, as an integer in `[0, q)`, is rounded to a
//! multiple of `2^d` (`d = ParamSet::c1_drop_bits`) and sent without its low `d` bits.
//!
//! Followers then compute `c1'*s_i` with `c1' = c1 + delta`, `|delta| <= 2^(d-1)` (`2^d` in the
//! rare clamped top case): decryption picks up `sum_i delta*s_i`. That term depends on the
//! secret key shares, so it is counted as ciphertext noise that the flooding must hide
//! ([`compression_sigma`] enters `e2s_budget`); `d` is chosen so that it stays below the layer
//! noise of the shipped models (14 of 109 bits at N = 4096, 24 of 124 at N = 8192).
//! The leader rounds `c1` itself before sending, so in-memory and wire requests are identical.

use fhe_math::rq::{traits::TryConvertFrom, Poly, Representation};

use super::error::{MheError, Result};
use super::params::{Params, CBD_VARIANCE};
use super::wire::{pack_into, packed_len, unpack};

fn q_u128(params: &Params) -> u128 {
    params
        .moduli()
        .iter()
        .fold(1u128, |acc, &q| acc * q as u128)
}

/// Bits of a compressed coefficient: `bits(q - 1) - d`.
pub(crate) fn word_bits(params: &Params) -> u32 {
    128 - (q_u128(params) - 1).leading_zeros() - params.set.c1_drop_bits
}

/// Bytes of one compressed polynomial.
pub fn compressed_poly_bytes(params: &Params) -> usize {
    let w = word_bits(params);
    let (lo, hi) = (w.min(64), w.saturating_sub(64));
    packed_len(params.degree(), lo)
        + if hi > 0 {
            packed_len(params.degree(), hi)
        } else {
            0
        }
}

/// Standard deviation of `sum_{i != leader} delta*s_i` per coefficient for `n` servers.
pub fn compression_sigma(params: &Params, n: usize) -> f64 {
    let d = params.set.c1_drop_bits;
    if d == 0 {
        return 0.0;
    }
    let var_delta = 4f64.powi(d as i32 - 1) / 3.0;
    (params.degree() as f64 * CBD_VARIANCE as f64 * var_delta * (n.max(2) - 1) as f64).sqrt()
}

/// The compressed words `min(round(x / 2^d), (q-1) >> d)` of a polynomial's coefficients.
pub(crate) fn to_words(params: &Params, p: &Poly) -> Vec<u128> {
    let mut c = p.clone();
    c.change_representation(Representation::PowerBasis);
    let coeffs = c.coefficients();
    let moduli = params.moduli();
    let d = params.set.c1_drop_bits;
    let top = (q_u128(params) - 1) >> d;
    let half = if d == 0 { 0 } else { 1u128 << (d - 1) };
    (0..params.degree())
        .map(|k| {
            // Mixed-radix (Garner) composition: x = a0 + q0*(a1 + q1*(a2 + ...)).
            let mut digits = [0u64; 4];
            for i in 0..moduli.len() {
                let op = params.op(i);
                let mut t = coeffs[[i, k]];
                for (j, &dj) in digits.iter().enumerate().take(i) {
                    t = op.mul(op.sub(t, op.reduce(dj)), params.garner_inv(i, j));
                }
                digits[i] = t;
            }
            let mut x = 0u128;
            for i in (0..moduli.len()).rev() {
                x = x * moduli[i] as u128 + digits[i] as u128;
            }
            ((x + half) >> d).min(top)
        })
        .collect()
}

/// The polynomial (NTT representation) whose coefficients are `word << d`.
pub(crate) fn from_words(params: &Params, words: &[u128]) -> Result<Poly> {
    let d = params.set.c1_drop_bits;
    let top = (q_u128(params) - 1) >> d;
    let n = params.degree();
    let limbs = params.moduli().len();
    let mut flat = vec![0u64; n * limbs];
    for (k, &w) in words.iter().enumerate() {
        if w > top {
            return Err(MheError::ValueOutOfRange {
                what: "compressed c1 coefficient",
                value: w as i128,
                bound: top as i128,
            });
        }
        for limb in 0..limbs {
            flat[limb * n + k] = params.op(limb).reduce_u128(w << d);
        }
    }
    let mut p = Poly::try_convert_from(flat, &params.ctx, false, Representation::PowerBasis)?;
    p.change_representation(Representation::Ntt);
    Ok(p)
}

/// `c1` rounded as the wire will carry it.
#[cfg(test)]
pub(crate) fn round_c1(params: &Params, c1: &Poly) -> Result<Poly> {
    from_words(params, &to_words(params, c1))
}

/// Appends the compressed form of `words` ([`to_words`]; [`compressed_poly_bytes`] long, whole
/// bytes: the forms of several polynomials are concatenated on the wire).
pub(crate) fn pack_words(buf: &mut Vec<u8>, params: &Params, words: &[u128]) {
    let bits = word_bits(params);
    pack_into(buf, words.iter().map(|&x| x as u64), bits.min(64));
    if bits > 64 {
        pack_into(buf, words.iter().map(|&x| (x >> 64) as u64), bits - 64);
    }
}

/// The words of one compressed form, exactly [`compressed_poly_bytes`] long, each checked
/// against its range (no NTT: what a received request is checked with).
pub(crate) fn compressed_words(params: &Params, bytes: &[u8]) -> Result<Vec<u128>> {
    let n = params.degree();
    let bits = word_bits(params);
    let lo_len = packed_len(n, bits.min(64));
    if bytes.len() != compressed_poly_bytes(params) {
        return Err(MheError::WrongLength {
            what: "compressed c1 bytes",
            expected: compressed_poly_bytes(params),
            actual: bytes.len(),
        });
    }
    let (lo, hi) = bytes.split_at(lo_len);
    let lo = unpack(lo, n, bits.min(64));
    let hi = if bits > 64 {
        unpack(hi, n, bits - 64)
    } else {
        vec![0; n]
    };
    let top = (q_u128(params) - 1) >> params.set.c1_drop_bits;
    lo.iter()
        .zip(&hi)
        .map(|(&l, &h)| {
            let w = (h as u128) << 64 | l as u128;
            if w > top {
                return Err(MheError::ValueOutOfRange {
                    what: "compressed c1 coefficient",
                    value: w as i128,
                    bound: top as i128,
                });
            }
            Ok(w)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::ParamId;
    use rand::SeedableRng;

    /// `c1' - c1` is at most `2^d` in absolute value (centered mod q) and rounding is idempotent.
    #[test]
    fn rounding_error_is_bounded() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        for id in [ParamId::Bfv4096T32V1, ParamId::Bfv8192T32V1] {
            let params = id.params().unwrap();
            let p = Poly::random(&params.ctx, Representation::Ntt, &mut rng);
            let r = round_c1(&params, &p).unwrap();
            assert_eq!(round_c1(&params, &r).unwrap(), r);
            let (x, y) = (to_words_exact(&params, &p), to_words_exact(&params, &r));
            let q = q_u128(&params);
            let d = params.set.c1_drop_bits;
            for (a, b) in x.iter().zip(&y) {
                let diff = (b + q - a) % q;
                let centered = diff.min(q - diff);
                assert!(centered <= 1u128 << d);
            }
        }
    }

    /// Exact composition (`d = 0` path of `to_words`).
    fn to_words_exact(params: &Params, p: &Poly) -> Vec<u128> {
        let mut c = p.clone();
        c.change_representation(Representation::PowerBasis);
        let coeffs = c.coefficients();
        (0..params.degree())
            .map(|k| {
                let residues: Vec<u64> =
                    (0..params.moduli().len()).map(|l| coeffs[[l, k]]).collect();
                let x = params.lift(&residues);
                x.iter_u64_digits()
                    .enumerate()
                    .fold(0u128, |acc, (i, d)| acc | (d as u128) << (64 * i))
            })
            .collect()
    }
}

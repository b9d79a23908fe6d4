//! Named, versioned BFV parameter sets with plaintext modulus `t = 2^k` (DESIGN.md s.3).
//!
//! Every serialized object carries its [`ParamId`]; a decoder rejects objects of another set
//! ([`MheError::ParamMismatch`]). The sets meet the HomomorphicEncryption.org 128-bit table for
//! their degree (log2 q <= 54 / 109 / 218 for N = 2048 / 4096 / 8192) and use power-of-two
//! plaintext moduli with coefficient encoding, so that BFV plaintexts and secret shares live in
//! the same ring `Z_{2^k}` as the fixed-point values.
//!
//! The ciphertext moduli are NTT-friendly primes (`q_i = 1 mod 2N`) close to a power of two,
//! few and large: two limbs for the server sets keep every polynomial operation at two NTT rows.

use std::sync::{Arc, OnceLock};

use fhe::bfv::{BfvParameters, BfvParametersBuilder};
use fhe_math::rns::RnsContext;
use fhe_math::rq::Context;
use num_bigint::BigUint;

use super::error::{MheError, Result};

/// Variance of the centered binomial distribution used for secrets, encryption randomness and
/// errors (the `fhe` crate's default: `sigma ~ 3.16`, as in the HE standard's error
/// distribution).
pub const CBD_VARIANCE: usize = 10;

/// A named, versioned parameter set. The name gives the ring degree, the plaintext modulus
/// (`T32` = `t = 2^32`) and the version of the moduli choice; a new choice is a new id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum ParamId {
    /// N = 2048, one 54-bit modulus, t = 2^32: the user's session key (result delivery only).
    Bfv2048T32V1,
    /// N = 4096, q = 55 + 54 bits (log2 q < 109), t = 2^32: the default server set.
    Bfv4096T32V1,
    /// N = 8192, q = 62 + 62 bits (log2 q < 124 <= 218), t = 2^32: more room per ciphertext.
    Bfv8192T32V1,
}

/// The static description of a parameter set.
#[derive(Debug)]
pub struct ParamSet {
    /// Its id.
    pub id: ParamId,
    /// Ring degree N.
    pub degree: usize,
    /// `k`: the plaintext modulus is `t = 2^k`.
    pub plain_bits: u32,
    /// Ciphertext moduli `q_0 .. q_{L-1}`.
    pub moduli: &'static [u64],
    /// Largest number of servers the set is meant for (bounds the flooding noise).
    pub max_parties: usize,
    /// The HomomorphicEncryption.org 128-bit bound on log2 q for this degree.
    pub he_standard_max_log_q: u32,
    /// Low bits of `c1` dropped in encryption-to-shares requests (see `compress.rs`).
    pub c1_drop_bits: u32,
}

const SETS: [ParamSet; 3] = [
    ParamSet {
        id: ParamId::Bfv2048T32V1,
        degree: 2048,
        plain_bits: 32,
        moduli: &[0x003f_ffff_fffe_d001],
        max_parties: 16,
        he_standard_max_log_q: 54,
        c1_drop_bits: 0,
    },
    ParamSet {
        id: ParamId::Bfv4096T32V1,
        degree: 4096,
        plain_bits: 32,
        moduli: &[0x007f_ffff_fffb_4001, 0x003f_ffff_fffd_6001],
        max_parties: 16,
        he_standard_max_log_q: 109,
        c1_drop_bits: 14,
    },
    ParamSet {
        id: ParamId::Bfv8192T32V1,
        degree: 8192,
        plain_bits: 32,
        moduli: &[0x3fff_ffff_ffff_0001, 0x3fff_ffff_fffe_8001],
        max_parties: 16,
        he_standard_max_log_q: 218,
        c1_drop_bits: 24,
    },
];

impl ParamId {
    /// Every parameter set.
    pub const ALL: [ParamId; 3] = [
        ParamId::Bfv2048T32V1,
        ParamId::Bfv4096T32V1,
        ParamId::Bfv8192T32V1,
    ];

    /// The wire code: high byte `log2 N`, low byte the version.
    pub const fn code(self) -> u16 {
        match self {
            ParamId::Bfv2048T32V1 => 0x0b01,
            ParamId::Bfv4096T32V1 => 0x0c01,
            ParamId::Bfv8192T32V1 => 0x0d01,
        }
    }

    /// The id of a wire code.
    pub fn from_code(code: u16) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|id| id.code() == code)
            .ok_or(MheError::UnknownParamId { code })
    }

    /// The static description.
    pub fn set(self) -> &'static ParamSet {
        match self {
            ParamId::Bfv2048T32V1 => &SETS[0],
            ParamId::Bfv4096T32V1 => &SETS[1],
            ParamId::Bfv8192T32V1 => &SETS[2],
        }
    }

    /// The instantiated parameters (built once per process, then shared).
    pub fn params(self) -> Result<Arc<Params>> {
        static CACHE: [OnceLock<Arc<Params>>; 3] =
            [OnceLock::new(), OnceLock::new(), OnceLock::new()];
        let slot = &CACHE[self.index()];
        if let Some(p) = slot.get() {
            return Ok(p.clone());
        }
        let built = Arc::new(Params::build(self.set())?);
        Ok(slot.get_or_init(|| built).clone())
    }

    fn index(self) -> usize {
        match self {
            ParamId::Bfv2048T32V1 => 0,
            ParamId::Bfv4096T32V1 => 1,
            ParamId::Bfv8192T32V1 => 2,
        }
    }
}

/// Instantiated parameters: the `fhe` parameters plus the constants our own polynomial code
/// needs (scaling by `Delta = q/t`, CRT lifting).
#[derive(Debug)]
pub struct Params {
    /// The static description.
    pub set: &'static ParamSet,
    /// The `fhe` crate's parameters (for reference decryption with `fhe::bfv`).
    pub bfv: Arc<BfvParameters>,
    /// The polynomial context at level 0 (all moduli).
    pub ctx: Arc<Context>,
    /// `q = prod q_i`.
    pub q: BigUint,
    /// CRT coefficients: `x = sum_i x_i * garner_i mod q`.
    garner: Vec<BigUint>,
    /// `[q]_t`.
    q_mod_t: u64,
    /// `-t^{-1} mod q_i` per limb.
    neg_t_inv: Vec<u64>,
    /// Barrett reduction per limb.
    ops: Vec<fhe_math::zq::Modulus>,
    /// `garner_inv[i][j] = q_j^{-1} mod q_i` for `j < i` (mixed-radix composition).
    garner_inv: Vec<Vec<u64>>,
    /// `floor(q / t)`.
    delta: BigUint,
}

impl Params {
    fn build(set: &'static ParamSet) -> Result<Self> {
        let t = 1u64 << set.plain_bits;
        let bfv = BfvParametersBuilder::new()
            .set_degree(set.degree)
            .set_plaintext_modulus(t)
            .set_moduli(set.moduli)
            .set_variance(CBD_VARIANCE)
            .build_arc()?;
        let ctx = bfv.context_at_level(0)?.clone();
        let rns = RnsContext::new(set.moduli)?;
        let garner = (0..set.moduli.len())
            .map(|i| rns.get_garner(i).cloned())
            .collect::<Option<Vec<_>>>()
            .ok_or(MheError::Shape {
                reason: "RNS context without Garner coefficients",
            })?;
        let q = rns.modulus().clone();
        let q_mod_t = u64::try_from(&q % t).unwrap_or(0);
        let neg_t_inv = set
            .moduli
            .iter()
            .map(|&qi| {
                let m = fhe_math::zq::Modulus::new(qi)?;
                m.inv(m.neg(t % qi))
                    .ok_or(fhe_math::Error::InvalidModulus(qi))
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let delta = &q / t;
        let ops = set
            .moduli
            .iter()
            .map(|&qi| fhe_math::zq::Modulus::new(qi))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        if set.moduli.len() > 4 || big_log2(&q) > 126.0 {
            return Err(MheError::Shape {
                reason: "parameter sets need at most 4 moduli and q < 2^126",
            });
        }
        let garner_inv = (0..set.moduli.len())
            .map(|i| {
                (0..i)
                    .map(|j| ops[i].inv(ops[i].reduce(set.moduli[j])).unwrap_or(0))
                    .collect()
            })
            .collect();
        Ok(Self {
            garner_inv,
            set,
            bfv,
            ctx,
            q,
            garner,
            q_mod_t,
            neg_t_inv,
            ops,
            delta,
        })
    }

    /// `q_j^{-1} mod q_i` for `j < i`.
    pub(crate) fn garner_inv(&self, i: usize, j: usize) -> u64 {
        self.garner_inv[i][j]
    }

    /// Barrett reduction of limb `limb`.
    pub(crate) fn op(&self, limb: usize) -> &fhe_math::zq::Modulus {
        &self.ops[limb]
    }

    /// The id.
    pub fn id(&self) -> ParamId {
        self.set.id
    }

    /// Ring degree N.
    pub fn degree(&self) -> usize {
        self.set.degree
    }

    /// Ciphertext moduli.
    pub fn moduli(&self) -> &'static [u64] {
        self.set.moduli
    }

    /// Plaintext modulus `t = 2^k` as `u128` (k <= 62).
    pub fn t(&self) -> u128 {
        1u128 << self.set.plain_bits
    }

    /// Mask for reducing mod t.
    pub fn t_mask(&self) -> u64 {
        (self.t() - 1) as u64
    }

    /// `log2 q`.
    pub fn log2_q(&self) -> f64 {
        big_log2(&self.q)
    }

    /// `Delta = floor(q / t)`.
    pub fn delta(&self) -> &BigUint {
        &self.delta
    }

    /// The RNS residues of `floor(q * m / t)` for `m` in `[0, t)`: the BFV encoding of one
    /// coefficient (the same integer as `fhe`'s `Plaintext::to_poly`, computed as
    /// `[q]_t * m mod t * (-t^{-1}) mod q_i`).
    pub fn delta_times(&self, m: u64, limb: usize) -> u64 {
        let op = &self.ops[limb];
        let r = ((self.q_mod_t as u128 * (m & self.t_mask()) as u128) & (self.t() - 1)) as u64;
        op.mul(op.reduce(r), self.neg_t_inv[limb])
    }

    /// CRT-lift residues (one per limb) to `[0, q)`.
    pub fn lift(&self, residues: &[u64]) -> BigUint {
        let mut x = BigUint::default();
        for (r, g) in residues.iter().zip(&self.garner) {
            x += g * *r;
        }
        x % &self.q
    }

    /// BFV decoding of one coefficient: `round(t * x / q) mod t` for the residues of `x`.
    pub fn decode_coeff(&self, residues: &[u64]) -> u64 {
        let x = self.lift(residues);
        let scaled: BigUint = (x * self.t() + (&self.q >> 1usize)) / &self.q;
        let low = scaled.iter_u64_digits().next().unwrap_or(0);
        low & self.t_mask()
    }

    /// The noise of one coefficient: `x - round(t x / q) * q / t`, centered (`|v| <= q / 2t`).
    pub fn decode_noise(&self, residues: &[u64]) -> f64 {
        let x = self.lift(residues);
        let scaled: BigUint = (&x * self.t() + (&self.q >> 1usize)) / &self.q;
        // v * t = x t - scaled q, an integer in [-q/2, q/2].
        let xt = x * self.t();
        let sq = scaled * &self.q;
        let (mag, sign) = if xt >= sq {
            (xt - sq, 1.0)
        } else {
            (sq - xt, -1.0)
        };
        sign * big_log2(&mag).exp2() / self.t() as f64
    }
}

/// `log2` of a big integer (about 52 bits of precision).
pub fn big_log2(x: &BigUint) -> f64 {
    let bits = x.bits();
    if bits == 0 {
        return f64::NEG_INFINITY;
    }
    let shift = bits.saturating_sub(60);
    let top = (x >> shift).iter_u64_digits().next().unwrap_or(0) as f64;
    top.log2() + shift as f64
}

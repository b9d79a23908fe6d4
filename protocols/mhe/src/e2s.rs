//! Encryption-to-shares with noise flooding (Mouchet et al., PETS 2021, s.5 "Enc2Share";
//! Lattigo `multiparty` `E2SProtocol`), restricted to the coefficients that carry results.
//!
//! The leader (the layer's owner, who holds the ciphertexts) sends `c1` of every ciphertext to
//! the other servers, with its low bits dropped ([`crate::compress`]; the rounding is
//! counted as noise in [`e2s_budget`]). Server `i` samples its output share `M_i` uniformly in `Z_t` and returns,
//! only at the result coefficients,
//!
//! `h_i = c1*s_i + E_i - Delta*M_i  (mod q)`, `E_i` drawn from the discrete Gaussian
//! `D_{Z,sigma_f}` truncated at `+-B` (flooding, [`super::gaussian`]), `sigma_f = B / 12`.
//!
//! The leader computes `c0 + c1*s_L + sum_i h_i = Delta*(m - sum_i M_i) + e + sum_i E_i` and
//! decodes its share `m - sum_i M_i`; the shares sum to `m` in `Z_t`.
//!
//! Privacy: `M_i` is uniform, so `h_i` reveals nothing about the plaintext. The leader learns
//! `e + sum_i E_i` at the result coefficients; the flooding `E_i` of any one honest server hides
//! the ciphertext noise `e` (which carries the weights `W` and the secret key): shifting
//! `D_{Z,sigma_f}` by `e` costs a Kullback-Leibler divergence of `e^2 / (2 sigma_f^2)` per
//! coefficient, adding over the `K` revealed coefficients, so the statistical distance of the
//! leader's view from one without `e` is at most `||e||_2 / (2 sigma_f)` (Pinsker), plus twice the
//! truncated tail mass (`< 2^-106` per coefficient). This grows with `sqrt(K)` where a uniform
//! flooding of the same width grows with `K`: Mouchet et al. (s.5) and Lattigo flood with a
//! Gaussian for the same reason. No other coefficient is ever decrypted (they hold partial products of
//! `W`), and restricting the shares to the `K` result coefficients also cuts their size by
//! `N / K` per ciphertext.
//!
//! Correctness: `|e| + (n-1)*B + n < Delta/2` (the truncation makes `|E_i| <= B` certain). We take
//! `B = floor(Delta / (4*(n-1)))`, which leaves `Delta/4` for the ciphertext noise; [`e2s_budget`]
//! reports both margins.

use fhe_math::rq::{Poly, Representation};
use rand::{CryptoRng, Rng, RngCore};
use rayon::prelude::*;
use zeroize::Zeroizing;

use super::ciphertext::Ciphertext;
use super::compress::{compressed_poly_bytes, compressed_words, from_words, pack_words, to_words};
use super::error::{MheError, Result};
use super::keys::SecretKeyShare;
use super::layout::Layout;
pub use super::noise::{
    check_budget, e2s_budget, flood_bound, flood_sigma, flooding, E2sBudget, FLOOD_TAILS,
    TRUNCATION_BITS,
};
use super::params::{ParamId, Params};
use super::wire::{residues_bytes, Kind, Reader, Writer};
use super::{check_parties, Outgoing, PartyId, To};

/// Upper bound on ciphertexts in one request (bounds allocation on decode).
pub const MAX_CTS: usize = 1 << 12;
/// Upper bound on result coefficients in one share.
pub const MAX_VALUES: usize = 1 << 22;

/// Static configuration of one encryption-to-shares instance.
#[derive(Debug, Clone)]
pub struct E2sConfig {
    /// Parameter set of the ciphertexts.
    pub param: ParamId,
    /// Number of servers.
    pub n: usize,
    /// This party.
    pub me: PartyId,
    /// The leader (holds the ciphertexts, decodes its share last).
    pub leader: PartyId,
    /// Instance id (layer and bundle), echoed in every message.
    pub instance: u64,
}

/// Leader -> every other server: `c1` of each ciphertext.
#[derive(Clone, PartialEq)]
pub struct E2sRequest {
    /// Instance id.
    pub instance: u64,
    /// The leader.
    pub from: PartyId,
    /// `c1` of each ciphertext as the compressed words of the wire ([`crate::compress`];
    /// range-checked when decoded, turned into polynomials by the follower that uses them).
    c1: Vec<Vec<u128>>,
}

/// Server -> leader: flooded, blinded decryption shares at the result coefficients.
#[derive(Clone, PartialEq)]
pub struct E2sShare {
    /// Instance id.
    pub instance: u64,
    /// Sender.
    pub from: PartyId,
    /// `values[limb][i]`, `i` over the layout's slots in ciphertext-then-coefficient order.
    values: Vec<Vec<u64>>,
}

/// `c * s (+ add)` in the power basis, read at the given coefficients: `[limb][i]`.
fn product_at(
    c: &Poly,
    s: &Poly,
    add: Option<&Poly>,
    coeffs: &[(u32, u32)],
) -> Zeroizing<Vec<Vec<u64>>> {
    let mut d = Zeroizing::new(c * s);
    if let Some(a) = add {
        *d += a;
    }
    d.change_representation(Representation::PowerBasis);
    Zeroizing::new(
        d.coefficients()
            .outer_iter()
            .map(|row| coeffs.iter().map(|&(p, _)| row[p as usize]).collect())
            .collect(),
    )
}

/// Per-ciphertext `[limb][i]` parts appended in ciphertext order: `[limb][all i]`. The parts
/// (products with a key share) are zeroized.
fn concat_limbs(parts: Vec<Zeroizing<Vec<Vec<u64>>>>, limbs: usize, len: usize) -> Vec<Vec<u64>> {
    let mut out = vec![Vec::with_capacity(len); limbs];
    for part in &parts {
        for (o, p) in out.iter_mut().zip(part.iter()) {
            o.extend_from_slice(p);
        }
    }
    out
}

fn check_cfg(cfg: &E2sConfig, sk: &SecretKeyShare) -> Result<std::sync::Arc<Params>> {
    let params = cfg.param.params()?;
    check_parties(&params, cfg.n, cfg.me)?;
    check_parties(&params, cfg.n, cfg.leader)?;
    if sk.param() != cfg.param {
        return Err(MheError::ParamMismatch {
            expected: cfg.param,
            actual: sk.param(),
        });
    }
    Ok(params)
}

/// A non-leader server's step: its flooded share for the leader and its own output share
/// `M_i` (in the layout's value order).
pub fn follower_share<R: RngCore + CryptoRng>(
    cfg: &E2sConfig,
    sk: &SecretKeyShare,
    layout: &Layout,
    req: &E2sRequest,
    rng: &mut R,
) -> Result<(Outgoing<E2sShare>, Zeroizing<Vec<u64>>)> {
    let params = check_cfg(cfg, sk)?;
    let mine: Zeroizing<Vec<u64>> = Zeroizing::new(
        (0..layout.len())
            .map(|_| rng.random::<u64>() & params.t_mask())
            .collect(),
    );
    let out = follower_share_given(cfg, sk, layout, req, &mine, rng)?;
    Ok((out, mine))
}

/// [`follower_share`] with this server's output share `mine` chosen by the caller (one value
/// per result coefficient, in layout order, reduced mod `t`): it must be uniform in `Z_t` and
/// unknown to the leader, e.g. this server's additive share of a random word from `ot::B2a`
/// (SECO stage masks, `docs/garbled-circuits.md`).
pub fn follower_share_given<R: RngCore + CryptoRng>(
    cfg: &E2sConfig,
    sk: &SecretKeyShare,
    layout: &Layout,
    req: &E2sRequest,
    mine: &[u64],
    rng: &mut R,
) -> Result<Outgoing<E2sShare>> {
    let params = check_cfg(cfg, sk)?;
    if mine.len() != layout.len() {
        return Err(MheError::WrongLength {
            what: "E2S output share",
            expected: layout.len(),
            actual: mine.len(),
        });
    }
    if req.from != cfg.leader || cfg.me == cfg.leader {
        return Err(MheError::SenderMismatch {
            claimed: req.from,
            actual: cfg.leader,
        });
    }
    if req.instance != cfg.instance {
        return Err(MheError::WrongInstance {
            expected: cfg.instance,
            actual: req.instance,
        });
    }
    layout.validate(params.degree())?;
    let by_ct = layout.by_ct();
    if req.c1.len() != by_ct.len() {
        return Err(MheError::WrongLength {
            what: "E2S ciphertexts",
            expected: by_ct.len(),
            actual: req.c1.len(),
        });
    }
    let limbs = params.moduli().len();
    // One ciphertext per task on the protocol pool (mnist-mlp fc1: 26).
    let parts: Vec<_> = req
        .c1
        .par_iter()
        .zip(&by_ct)
        .map(|(c1, coeffs)| {
            Ok(product_at(
                &from_words(&params, c1)?,
                sk.poly(),
                None,
                coeffs,
            ))
        })
        .collect::<Result<_>>()?;
    let mut values = concat_limbs(parts, limbs, layout.len());
    let flooding = flooding(&params, cfg.n);
    let flat = by_ct.iter().flatten();
    for (i, &(_, idx)) in flat.enumerate() {
        let m = mine[idx as usize] & params.t_mask();
        let flood = flooding.sample(rng);
        for (limb, &q) in params.moduli().iter().enumerate() {
            let e = flood.rem_euclid(q as i128) as u64;
            let dm = params.delta_times(m, limb);
            let v = values[limb][i];
            values[limb][i] = ((v as u128 + e as u128 + (q - dm) as u128) % q as u128) as u64;
        }
    }
    let share = E2sShare {
        instance: cfg.instance,
        from: cfg.me,
        values,
    };
    Ok(Outgoing {
        to: To::Party(cfg.leader),
        msg: share,
    })
}

/// The leader's side: holds the ciphertexts, collects every other server's share, decodes.
pub struct E2sLeader {
    cfg: E2sConfig,
    params: std::sync::Arc<Params>,
    layout: Layout,
    /// Value index of each flat position (ciphertext-then-coefficient order).
    order: Vec<u32>,
    /// `c0 + c1*s_L` at the result coefficients, accumulated with the received shares.
    acc: Zeroizing<Vec<Vec<u64>>>,
    received: Vec<bool>,
}

seco_core::redacted_debug!(E2sLeader);

impl E2sLeader {
    /// Starts an instance on `cts` (in `layout`); returns the request for the other servers.
    pub fn new(
        cfg: E2sConfig,
        sk: &SecretKeyShare,
        layout: &Layout,
        cts: &[Ciphertext],
    ) -> Result<(Self, Outgoing<E2sRequest>)> {
        let params = check_cfg(&cfg, sk)?;
        if cfg.me != cfg.leader {
            return Err(MheError::SenderMismatch {
                claimed: cfg.leader,
                actual: cfg.me,
            });
        }
        layout.validate(params.degree())?;
        let by_ct = layout.by_ct();
        if cts.len() != by_ct.len() {
            return Err(MheError::WrongLength {
                what: "E2S ciphertexts",
                expected: by_ct.len(),
                actual: cts.len(),
            });
        }
        let limbs = params.moduli().len();
        if let Some(ct) = cts.iter().find(|ct| ct.param() != cfg.param) {
            return Err(MheError::ParamMismatch {
                expected: cfg.param,
                actual: ct.param(),
            });
        }
        // One ciphertext per task on the protocol pool: c0 + c1*s_L (the leader's own
        // decryption share needs no flooding: it stays here), and c1 compressed for the wire
        // (compress.rs), so in-memory and decoded requests agree.
        let parts: Vec<_> = cts
            .par_iter()
            .zip(&by_ct)
            .map(|(ct, coeffs)| {
                let d = product_at(&ct.c1, sk.poly(), Some(&ct.c0), coeffs);
                (d, to_words(&params, &ct.c1))
            })
            .collect();
        let (ds, c1): (Vec<_>, Vec<_>) = parts.into_iter().unzip();
        let acc = Zeroizing::new(concat_limbs(ds, limbs, layout.len()));
        let order = by_ct.iter().flatten().map(|&(_, idx)| idx).collect();
        let req = E2sRequest {
            instance: cfg.instance,
            from: cfg.me,
            c1,
        };
        let mut received = vec![false; cfg.n];
        received[cfg.me as usize] = true;
        let leader = Self {
            cfg,
            params,
            layout: layout.clone(),
            order,
            acc,
            received,
        };
        Ok((
            leader,
            Outgoing {
                to: To::All,
                msg: req,
            },
        ))
    }

    /// Adds the share of `from`; returns the leader's output share once every server's share
    /// is in.
    pub fn handle(
        &mut self,
        from: PartyId,
        share: &E2sShare,
    ) -> Result<Option<Zeroizing<Vec<u64>>>> {
        let n = self.cfg.n;
        if from as usize >= n {
            return Err(MheError::UnknownParty { party: from, n });
        }
        if share.from != from || from == self.cfg.me {
            return Err(MheError::SenderMismatch {
                claimed: share.from,
                actual: from,
            });
        }
        if share.instance != self.cfg.instance {
            return Err(MheError::WrongInstance {
                expected: self.cfg.instance,
                actual: share.instance,
            });
        }
        if self.received[from as usize] {
            return Err(MheError::Duplicate {
                party: from,
                round: "E2sShare",
            });
        }
        let k = self.layout.len();
        if share.values.len() != self.acc.len() || share.values.iter().any(|row| row.len() != k) {
            return Err(MheError::WrongLength {
                what: "E2S share values",
                expected: k,
                actual: share.values.first().map_or(0, Vec::len),
            });
        }
        for ((acc, row), &q) in self
            .acc
            .iter_mut()
            .zip(&share.values)
            .zip(self.params.moduli())
        {
            for (a, &v) in acc.iter_mut().zip(row) {
                *a = ((*a as u128 + v as u128) % q as u128) as u64;
            }
        }
        self.received[from as usize] = true;
        if !self.received.iter().all(|&r| r) {
            return Ok(None);
        }
        let mut out = Zeroizing::new(vec![0u64; k]);
        let mut residues = Zeroizing::new(vec![0u64; self.acc.len()]);
        for (i, &idx) in self.order.iter().enumerate() {
            for (limb, row) in self.acc.iter().enumerate() {
                residues[limb] = row[i];
            }
            out[idx as usize] = self.params.decode_coeff(&residues);
        }
        Ok(Some(out))
    }

    /// The noise of the leader's view once every share is in: `e + sum_i E_i` at each result
    /// coefficient (flat order), the value whose distribution the flooding argument is about.
    /// For tests and measurements (the leader holds it anyway); `None` before the last share.
    pub fn view_noise(&self) -> Option<Vec<f64>> {
        if !self.received.iter().all(|&r| r) {
            return None;
        }
        let mut residues = vec![0u64; self.acc.len()];
        Some(
            (0..self.order.len())
                .map(|i| {
                    for (limb, row) in self.acc.iter().enumerate() {
                        residues[limb] = row[i];
                    }
                    self.params.decode_noise(&residues)
                })
                .collect(),
        )
    }
}

impl E2sRequest {
    /// Serialized: header, instance, sender, count, packed `c1` polynomials.
    pub fn to_bytes(&self, params: &Params) -> Vec<u8> {
        let mut w = Writer::new(
            Kind::E2sRequest,
            params.id(),
            14 + self.c1.len() * compressed_poly_bytes(params),
        );
        w.u64(self.instance);
        w.u16(self.from);
        w.u32(self.c1.len() as u32);
        let packed: Vec<Vec<u8>> = self
            .c1
            .par_iter()
            .map(|words| {
                let mut buf = Vec::with_capacity(compressed_poly_bytes(params));
                pack_words(&mut buf, params, words);
                buf
            })
            .collect();
        for p in &packed {
            w.bytes(p);
        }
        w.finish()
    }

    /// Parses [`E2sRequest::to_bytes`] for the expected parameter set.
    pub fn from_bytes(bytes: &[u8], expected: ParamId) -> Result<Self> {
        let mut r = Reader::open_expect(bytes, Kind::E2sRequest, expected)?;
        let params = expected.params()?;
        let instance = r.u64("instance")?;
        let from = r.party()?;
        let count = r.count("E2S ciphertexts", MAX_CTS)?;
        let len = compressed_poly_bytes(&params);
        let raw = (0..count)
            .map(|_| r.bytes(len, "compressed c1"))
            .collect::<Result<Vec<_>>>()?;
        r.finish("E2S request")?;
        let c1 = raw
            .par_iter()
            .map(|b| compressed_words(&params, b))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { instance, from, c1 })
    }
}

impl E2sShare {
    /// Serialized: header, instance, sender, count, packed residues.
    pub fn to_bytes(&self, params: &Params) -> Vec<u8> {
        let k = self.values.first().map_or(0, Vec::len);
        let mut w = Writer::new(Kind::E2sShare, params.id(), 14 + residues_bytes(params, k));
        w.u64(self.instance);
        w.u16(self.from);
        w.u32(k as u32);
        w.residues(params, &self.values);
        w.finish()
    }

    /// Parses [`E2sShare::to_bytes`] for the expected parameter set.
    pub fn from_bytes(bytes: &[u8], expected: ParamId) -> Result<Self> {
        let mut r = Reader::open_expect(bytes, Kind::E2sShare, expected)?;
        let params = expected.params()?;
        let instance = r.u64("instance")?;
        let from = r.party()?;
        let k = r.count("E2S share values", MAX_VALUES)?;
        let values = r.residues(&params, k)?;
        r.finish("E2S share")?;
        Ok(Self {
            instance,
            from,
            values,
        })
    }
}

impl std::fmt::Debug for E2sRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("E2sRequest")
            .field("instance", &self.instance)
            .field("from", &self.from)
            .field("cts", &self.c1.len())
            .finish()
    }
}

impl std::fmt::Debug for E2sShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("E2sShare")
            .field("instance", &self.instance)
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

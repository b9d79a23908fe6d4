//! The parameter check of a split or imported model: every linear layer must fit the servers'
//! BFV parameter set for the number of servers (docs/mhe.md "Where the budget is enforced").
//!
//! For each layer, in stage order:
//! 1. the fixed-point ring `Z_{2^k}` is the plaintext ring: `k` equals the set's `log2 t`;
//! 2. the number of servers is one the set supports (`2 <= n <= max_parties`);
//! 3. the layer packs at ring degree N (a padded conv or pooling input plane fits N), and its
//!    messages stay within the decoders' bounds (E2S ciphertext and value counts, message bytes);
//! 4. the encryption-to-shares of its output keeps a positive decryption headroom and a flooding
//!    statistical security of at least [`SECURITY_TARGET_BITS`] (`mhe::e2s::e2s_budget`; the
//!    first layer's input is the user's single `Enc(r_1)`, later ones the sum of the `n`
//!    servers' masks);
//! 5. ([`check_model`]) the layers of one bundle together reach the target as well
//!    ([`BudgetReport::bundle_bits`]), so that a key can serve at least one bundle.
//!
//! The check is sans-IO and cheap (weight norms without encoding): `seco model split` and
//! `seco model import` run it on the whole model ([`check_model`], [`supported_servers`]), every
//! server runs it on its part at session open ([`check_part`]: shapes of every stage, noise of
//! the stages it owns, whose weights only it holds).

use crate::fixed::FixedPoint;
use crate::mhe::ciphertext::ciphertext_bytes;
use crate::mhe::compress::compressed_poly_bytes;
use crate::mhe::e2s::{e2s_budget, E2sBudget, MAX_CTS, MAX_VALUES};
use crate::mhe::linear::op_noise;
use crate::mhe::wire::residues_bytes;
use crate::mhe::{LayerPacking, LinearShape, MheError, ParamId, Params};
use crate::model::{LinearOp, QuantModel};
use crate::plan::ServerPart;
use crate::seco::msg::MAX_MSG_BYTES;

/// The flooding statistical security every encryption-to-shares must reach (docs/mhe.md).
pub const SECURITY_TARGET_BITS: f64 = 40.0;
/// The decryption headroom every encryption-to-shares must keep (bits the noise could still
/// grow before decryption fails).
pub const MIN_HEADROOM_BITS: f64 = 1.0;
/// What a protocol message may hold besides the ciphertexts (envelope, ids, lengths).
const ENVELOPE_ALLOWANCE: usize = 64 << 10;

/// Why a model does not fit the parameter set. Each variant names the layer and the figures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BudgetError {
    /// The fixed-point ring is not the BFV plaintext ring.
    #[error(
        "fixed-point ring Z_2^{ring_bits} does not match the plaintext modulus t = 2^{plain_bits} \
         of parameter set {param:?}"
    )]
    Ring {
        /// The model's `k`.
        ring_bits: u32,
        /// The set's `log2 t`.
        plain_bits: u32,
        /// The set.
        param: ParamId,
    },
    /// A number of servers the parameter set does not support.
    #[error("{n} servers: parameter set {param:?} supports 2 to {max}")]
    Servers {
        /// Requested.
        n: usize,
        /// The set's maximum.
        max: usize,
        /// The set.
        param: ParamId,
    },
    /// A layer larger than the set or the message bounds allow.
    #[error("layer {layer:?}: {what} of {size} exceeds the limit of {limit} ({param:?})")]
    TooLarge {
        /// The linear layer.
        layer: String,
        /// What is too large.
        what: &'static str,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
        /// The set.
        param: ParamId,
    },
    /// The parameter set could not be instantiated.
    #[error("parameter set: {0}")]
    Params(MheError),
    /// A layer the encoders cannot pack for another reason.
    #[error("layer {layer:?}: {source}")]
    Shape {
        /// The linear layer.
        layer: String,
        /// The encoder's refusal.
        source: MheError,
    },
    /// A layer whose encryption-to-shares misses a target.
    #[error(
        "layer {layer:?}: {what} reaches {reached:.1} bits with {n} servers, target {target:.1} \
         bits ({param:?})"
    )]
    Noise {
        /// The linear layer.
        layer: String,
        /// `flooding statistical security` or `decryption headroom`.
        what: &'static str,
        /// Bits reached.
        reached: f64,
        /// Bits required.
        target: f64,
        /// Number of servers.
        n: usize,
        /// The set.
        param: ParamId,
    },
}

/// The budget of one layer that passed.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerBudget {
    /// The linear layer.
    pub layer: String,
    /// Its stage index.
    pub stage: usize,
    /// Its encryption-to-shares figures.
    pub budget: E2sBudget,
}

/// The budgets of the layers checked (all of a model, or the owned layers of a part).
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetReport {
    /// The parameter set.
    pub param: ParamId,
    /// Number of servers.
    pub n: usize,
    /// Per layer, in stage order.
    pub layers: Vec<LayerBudget>,
}

impl BudgetReport {
    /// `-log2` of the statistical distance one bundle costs over every layer checked: each
    /// layer's encryption-to-shares costs a Kullback-Leibler divergence of `2 d_l^2` (`d_l =
    /// 2^-security_bits`, Pinsker in reverse), divergences add over layers, so the bundle's
    /// distance is at most `sqrt(sum_l d_l^2)` (docs/mhe.md, "Lifetime of a key").
    pub fn bundle_bits(&self) -> f64 {
        let sum: f64 = self
            .layers
            .iter()
            .map(|l| (-2.0 * l.budget.security_bits).exp2())
            .sum();
        if sum > 0.0 {
            -0.5 * sum.log2()
        } else {
            f64::INFINITY
        }
    }

    /// How many bundles one collective key can serve while the distance accumulated over all
    /// of them stays within `2^-SECURITY_TARGET_BITS`: `R` bundles cost `sqrt(R) * 2^-bundle_bits`,
    /// so `R = 2^(2 (bundle_bits - target))` (at least 0).
    pub fn key_lifetime_bundles(&self) -> u64 {
        let r = (2.0 * (self.bundle_bits() - SECURITY_TARGET_BITS)).exp2();
        if r.is_finite() {
            r.floor().min(u64::MAX as f64) as u64
        } else {
            u64::MAX
        }
    }

    /// The bundles one owner may lead under one key when this report holds its owned layers
    /// and `owners` servers own layers in all: `2^-80 / (owners * sum_l d_l^2)`, so that the
    /// owners' shares add up to the whole lifetime budget (docs/mhe.md, "Lifetime of a key").
    /// `u64::MAX` for a server that owns no layer.
    pub fn owner_lifetime_bundles(&self, owners: usize) -> u64 {
        let sum: f64 = self
            .layers
            .iter()
            .map(|l| (-2.0 * l.budget.security_bits).exp2())
            .sum();
        if sum <= 0.0 {
            return u64::MAX;
        }
        let r = (-2.0 * SECURITY_TARGET_BITS).exp2() / (owners.max(1) as f64 * sum);
        r.floor().min(u64::MAX as f64) as u64
    }

    /// The layer with the lowest flooding security.
    pub fn weakest(&self) -> Option<&LayerBudget> {
        self.layers
            .iter()
            .min_by(|a, b| a.budget.security_bits.total_cmp(&b.budget.security_bits))
    }
}

/// Checks every layer of `model` against `param` for `n` servers.
pub fn check_model(
    model: &QuantModel,
    param: ParamId,
    n: usize,
) -> Result<BudgetReport, BudgetError> {
    let params = prelude(model.fp, param, n)?;
    let layers = model
        .stages
        .iter()
        .enumerate()
        .map(|(i, s)| check_layer(&params, n, i, &s.name, &s.linear))
        .collect::<Result<_, _>>()?;
    let report = BudgetReport { param, n, layers };
    // The leader views of one bundle's layers together must reach the target too, or a key
    // could not serve a single bundle (docs/mhe.md, "Lifetime of a key").
    let bundle = report.bundle_bits();
    if bundle.is_nan() || bundle < SECURITY_TARGET_BITS {
        return Err(BudgetError::Noise {
            layer: "all layers of one bundle".into(),
            what: "statistical security",
            reached: bundle,
            target: SECURITY_TARGET_BITS,
            n,
            param,
        });
    }
    Ok(report)
}

/// A server's check at session open: the shapes of every stage of the skeleton, the noise of
/// the stages this server owns.
pub fn check_part(part: &ServerPart, param: ParamId) -> Result<BudgetReport, BudgetError> {
    let n = part.servers.len();
    let params = prelude(part.fixed_point, param, n)?;
    for spec in &part.skeleton {
        check_shape(&params, &spec.name, &spec.linear)?;
    }
    let layers = part
        .owned
        .iter()
        .map(|(i, op)| {
            let name = part.skeleton.get(*i).map_or("?", |s| s.name.as_str());
            check_layer(&params, n, *i, name, op)
        })
        .collect::<Result<_, _>>()?;
    let report = BudgetReport { param, n, layers };
    // This server's share of a key's lifetime must allow one bundle (docs/mhe.md, "Lifetime of
    // a key"): `m * sum_l d_l^2 <= 2^-80` over the layers it owns, `m` owners in all.
    let owners: std::collections::BTreeSet<usize> = part.skeleton.iter().map(|s| s.owner).collect();
    let sum: f64 = report
        .layers
        .iter()
        .map(|l| (-2.0 * l.budget.security_bits).exp2())
        .sum();
    if sum > 0.0 {
        let share = -0.5 * (owners.len().max(1) as f64 * sum).log2();
        if share.is_nan() || share < SECURITY_TARGET_BITS {
            return Err(BudgetError::Noise {
                layer: "the layers this server owns".into(),
                what: "statistical security of its share of a key's lifetime",
                reached: share,
                target: SECURITY_TARGET_BITS,
                n,
                param,
            });
        }
    }
    Ok(report)
}

/// For a model not yet split (`seco model import`): the largest number of servers for which
/// every layer passes, and its report. The budget only shrinks as servers are added (smaller
/// flooding width, noisier key), so a model refused with 2 servers is refused for every `n`:
/// that refusal is the error.
pub fn supported_servers(model: &QuantModel, param: ParamId) -> Result<BudgetReport, BudgetError> {
    let mut best = check_model(model, param, 2)?;
    for n in 3..=param.set().max_parties {
        match check_model(model, param, n) {
            Ok(r) => best = r,
            Err(_) => break,
        }
    }
    Ok(best)
}

/// Ring and server-count checks; the instantiated parameters.
fn prelude(
    fp: FixedPoint,
    param: ParamId,
    n: usize,
) -> Result<std::sync::Arc<Params>, BudgetError> {
    let set = param.set();
    if fp.ring_bits != set.plain_bits {
        return Err(BudgetError::Ring {
            ring_bits: fp.ring_bits,
            plain_bits: set.plain_bits,
            param,
        });
    }
    if !(2..=set.max_parties).contains(&n) {
        return Err(BudgetError::Servers {
            n,
            max: set.max_parties,
            param,
        });
    }
    param.params().map_err(BudgetError::Params)
}

/// Whether the shape packs at the set's degree and its messages fit the decoders' bounds.
fn check_shape(
    params: &Params,
    layer: &str,
    shape: &LinearShape,
) -> Result<LayerPacking, BudgetError> {
    let degree = params.degree();
    let too_large = |what, size, limit| BudgetError::TooLarge {
        layer: layer.to_string(),
        what,
        size,
        limit,
        param: params.id(),
    };
    let plane = match *shape {
        LinearShape::Conv2d {
            in_shape: [_, h, w],
            padding,
            ..
        } => Some((
            "padded input plane (coefficients)",
            (h + 2 * padding[0]).saturating_mul(w + 2 * padding[1]),
        )),
        LinearShape::AvgPool2d {
            in_shape: [_, h, w],
            ..
        } => Some(("input plane (coefficients)", h.saturating_mul(w))),
        LinearShape::Dense { .. } => None,
    };
    if let Some((what, size)) = plane.filter(|&(_, size)| size > degree) {
        return Err(too_large(what, size, degree));
    }
    let packing = LayerPacking::new(shape, degree).map_err(|source| BudgetError::Shape {
        layer: layer.to_string(),
        source,
    })?;
    let (cts_in, cts_out, k) = (
        packing.num_in_cts(),
        packing.num_out_cts(),
        packing.output.len(),
    );
    if cts_out > MAX_CTS {
        return Err(too_large("output ciphertexts", cts_out, MAX_CTS));
    }
    if k > MAX_VALUES {
        return Err(too_large("output values", k, MAX_VALUES));
    }
    let limit = MAX_MSG_BYTES - ENVELOPE_ALLOWANCE;
    let messages = [
        (
            "bytes of its input-mask message",
            cts_in.saturating_mul(ciphertext_bytes(params)),
        ),
        (
            "bytes of its E2S request",
            cts_out.saturating_mul(compressed_poly_bytes(params)),
        ),
        ("bytes of its E2S share", residues_bytes(params, k)),
    ];
    if let Some(&(what, size)) = messages.iter().find(|(_, size)| *size > limit) {
        return Err(too_large(what, size, limit));
    }
    Ok(packing)
}

/// Shape, then noise of one layer with its weights.
fn check_layer(
    params: &Params,
    n: usize,
    stage: usize,
    layer: &str,
    op: &LinearOp,
) -> Result<LayerBudget, BudgetError> {
    check_shape(params, layer, &LinearShape::of_op(op))?;
    // Stage 0 takes the user's single Enc(r_1); later stages the sum of the n servers' masks.
    let contributors = if stage == 0 { 1 } else { n };
    let (_, noise) =
        op_noise(params.id(), op, n, contributors).map_err(|source| BudgetError::Shape {
            layer: layer.to_string(),
            source,
        })?;
    let budget = e2s_budget(params, n, &noise);
    let noise_err = |what, reached, target| BudgetError::Noise {
        layer: layer.to_string(),
        what,
        reached,
        target,
        n,
        param: params.id(),
    };
    if budget.headroom_bits.is_nan() || budget.headroom_bits < MIN_HEADROOM_BITS {
        return Err(noise_err(
            "decryption headroom",
            budget.headroom_bits,
            MIN_HEADROOM_BITS,
        ));
    }
    if budget.security_bits.is_nan() || budget.security_bits < SECURITY_TARGET_BITS {
        return Err(noise_err(
            "flooding statistical security",
            budget.security_bits,
            SECURITY_TARGET_BITS,
        ));
    }
    Ok(LayerBudget {
        layer: layer.to_string(),
        stage,
        budget,
    })
}

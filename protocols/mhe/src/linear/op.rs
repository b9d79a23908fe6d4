//! Adapter from the model's quantized linear operations ([`LinearOp`]) to the encoders.

use super::super::error::{MheError, Result};
use super::super::noise::LayerNoise;
use super::super::params::ParamId;
use super::{coeff_norms, EncodedLayer, LayerPacking, LinearShape};
use seco_model::LinearOp;

impl EncodedLayer {
    /// Encodes a model layer's weights (the bias is not encoded: the owner adds it online in
    /// the clear).
    pub fn from_op(param: ParamId, op: &LinearOp) -> Result<Self> {
        let shape = LinearShape::of_op(op);
        match op {
            LinearOp::Dense(d) => Self::encode(param, &shape, &d.weight),
            LinearOp::Conv2d(c) => Self::encode(param, &shape, &c.weight),
            LinearOp::AvgPool2d(p) => Self::encode(param, &shape, &[p.coeff]),
        }
    }
}

/// The weights of a model layer in the shape's layout.
fn op_weights(op: &LinearOp) -> std::borrow::Cow<'_, [i64]> {
    match op {
        LinearOp::Dense(d) => d.weight.as_slice().into(),
        LinearOp::Conv2d(c) => c.weight.as_slice().into(),
        LinearOp::AvgPool2d(p) => vec![p.coeff].into(),
    }
}

/// The packing of a model layer and the noise of its output ciphertexts, computed from the
/// weights without encoding them (no NTT): the same figures as
/// `EncodedLayer::from_op(param, op)?.noise(n, input_encryptions)`, for the budget checks at
/// split and import time (`seco_protocols::plan::budget`).
pub fn op_noise(
    param: ParamId,
    op: &LinearOp,
    n: usize,
    input_encryptions: usize,
) -> Result<(LayerPacking, LayerNoise)> {
    let params = param.params()?;
    let shape = LinearShape::of_op(op);
    let packing = LayerPacking::new(&shape, params.degree())?;
    let weight = op_weights(op);
    if weight.len() != shape.weight_len() {
        return Err(MheError::WrongLength {
            what: "layer weights",
            expected: shape.weight_len(),
            actual: weight.len(),
        });
    }
    let (mut sq, mut l1) = (0f64, 0f64);
    for k in 0..packing.num_out_cts() {
        let (mut sq_k, mut l1_k) = (0f64, 0f64);
        for j in 0..packing.num_in_cts() {
            if let Some(coeffs) = packing.weight_coeffs(&weight, k, j) {
                let (s, l) = coeff_norms(&coeffs);
                sq_k += s;
                l1_k += l;
            }
        }
        sq = sq.max(sq_k);
        l1 = l1.max(l1_k);
    }
    let noise = LayerNoise::of_product(&params, n, input_encryptions, sq, l1, packing.output.len());
    Ok((packing, noise))
}

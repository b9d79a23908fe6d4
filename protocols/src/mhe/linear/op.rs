//! Adapter from the model's quantized linear operations ([`LinearOp`]) to the encoders.

use super::super::error::Result;
use super::super::params::ParamId;
use super::{EncodedLayer, LinearShape};
use crate::model::LinearOp;

impl LinearShape {
    /// The public shape of a model layer.
    pub fn of_op(op: &LinearOp) -> Self {
        match op {
            LinearOp::Dense(d) => LinearShape::Dense {
                in_features: d.in_features,
                out_features: d.out_features,
            },
            LinearOp::Conv2d(c) => LinearShape::Conv2d {
                in_shape: c.in_shape,
                out_channels: c.out_channels,
                kernel: c.kernel,
                stride: c.stride,
                padding: c.padding,
            },
            LinearOp::AvgPool2d(p) => LinearShape::AvgPool2d {
                in_shape: p.in_shape,
                kernel: p.kernel,
                stride: p.stride,
            },
        }
    }
}

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

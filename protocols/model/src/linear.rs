//! Quantized linear operations over `Z_{2^k}`: what a layer's owner evaluates, in the clear on
//! masked values online and under HE on masks in preprocessing (DESIGN.md s.5).
//!
//! Weights are signed integers at scale `2^f`, biases at scale `2^(2f)`; outputs are at scale
//! `2^(2f)` and are truncated by the non-linear stage that follows (see `quantized.rs`).

use serde::{Deserialize, Serialize};

use seco_core::fixed::FixedPoint;

/// Dense layer `y = W x (+ b)` with `weight` row-major `[out_features][in_features]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DenseQ {
    /// Input length.
    pub in_features: usize,
    /// Output length.
    pub out_features: usize,
    /// `round(w * 2^f)`, row-major `[out][in]`.
    pub weight: Vec<i64>,
    /// `round(b * 2^(2f))`, `[out]`.
    pub bias: Vec<i64>,
}

/// Convolution (cross-correlation, zero padding) with `weight` `[oc][ic][kh][kw]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conv2dQ {
    /// `[C, H, W]` of the input.
    pub in_shape: [usize; 3],
    /// Output channels.
    pub out_channels: usize,
    /// `[kh, kw]`.
    pub kernel: [usize; 2],
    /// `[sh, sw]`.
    pub stride: [usize; 2],
    /// `[ph, pw]`.
    pub padding: [usize; 2],
    /// `round(w * 2^f)`, `[oc][ic][kh][kw]`.
    pub weight: Vec<i64>,
    /// `round(b * 2^(2f))`, `[oc]`.
    pub bias: Vec<i64>,
}

/// Average pooling as a linear map: `y = coeff * sum_window(x)` with
/// `coeff = round(2^f / (kh * kw))`; no bias.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AvgPool2dQ {
    /// `[C, H, W]` of the input.
    pub in_shape: [usize; 3],
    /// `[kh, kw]`.
    pub kernel: [usize; 2],
    /// `[sh, sw]`.
    pub stride: [usize; 2],
    /// `round(2^f / (kh * kw))`.
    pub coeff: i64,
}

/// The shape of a linear layer (the public part of a [`LinearOp`]: what every server knows of a
/// layer it does not own). HE packing of a shape lives in `seco_mhe::linear`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum LinearShape {
    /// `y = W x`, `W` row-major `[out][in]`.
    Dense {
        /// Input length.
        in_features: usize,
        /// Output length.
        out_features: usize,
    },
    /// Cross-correlation with zero padding, weights `[oc][ic][kh][kw]`, input `[c, h, w]`.
    Conv2d {
        /// `[c, h, w]`.
        in_shape: [usize; 3],
        /// Output channels.
        out_channels: usize,
        /// `[kh, kw]`.
        kernel: [usize; 2],
        /// `[sh, sw]`.
        stride: [usize; 2],
        /// `[ph, pw]`.
        padding: [usize; 2],
    },
    /// `y = coeff * sum_window(x)` per channel (one weight: the coefficient).
    AvgPool2d {
        /// `[c, h, w]`.
        in_shape: [usize; 3],
        /// `[kh, kw]`.
        kernel: [usize; 2],
        /// `[sh, sw]`.
        stride: [usize; 2],
    },
}

impl LinearShape {
    /// Number of input values.
    pub fn in_len(&self) -> usize {
        match self {
            LinearShape::Dense { in_features, .. } => *in_features,
            LinearShape::Conv2d { in_shape, .. } | LinearShape::AvgPool2d { in_shape, .. } => {
                in_shape.iter().product()
            }
        }
    }

    /// Number of output values.
    pub fn out_len(&self) -> usize {
        match *self {
            LinearShape::Dense { out_features, .. } => out_features,
            LinearShape::Conv2d {
                in_shape: [_, h, w],
                out_channels,
                kernel,
                stride,
                padding,
            } => {
                out_channels
                    * ((h + 2 * padding[0] - kernel[0]) / stride[0] + 1)
                    * ((w + 2 * padding[1] - kernel[1]) / stride[1] + 1)
            }
            LinearShape::AvgPool2d {
                in_shape: [c, h, w],
                kernel,
                stride,
            } => c * ((h - kernel[0]) / stride[0] + 1) * ((w - kernel[1]) / stride[1] + 1),
        }
    }

    /// Number of weights the layer takes.
    pub fn weight_len(&self) -> usize {
        match *self {
            LinearShape::Dense {
                in_features,
                out_features,
            } => in_features * out_features,
            LinearShape::Conv2d {
                in_shape,
                out_channels,
                kernel,
                ..
            } => out_channels * in_shape[0] * kernel[0] * kernel[1],
            LinearShape::AvgPool2d { .. } => 1,
        }
    }

    /// Checks the shape: no empty dimension, kernel or stride, no kernel larger than its
    /// (padded) input. The error is the reason.
    pub fn check(&self) -> std::result::Result<(), &'static str> {
        let bad = Err;
        match *self {
            LinearShape::Dense {
                in_features,
                out_features,
            } => {
                if in_features == 0 || out_features == 0 {
                    return bad("empty dense layer");
                }
            }
            LinearShape::Conv2d {
                in_shape: [c, h, w],
                out_channels,
                kernel,
                stride,
                padding,
            } => {
                if c * h * w * out_channels == 0 || kernel.contains(&0) || stride.contains(&0) {
                    return bad("empty conv2d dimension, kernel or stride");
                }
                if kernel[0] > h + 2 * padding[0] || kernel[1] > w + 2 * padding[1] {
                    return bad("conv2d kernel larger than the padded input");
                }
            }
            LinearShape::AvgPool2d {
                in_shape: [c, h, w],
                kernel,
                stride,
            } => {
                if c * h * w == 0 || kernel.contains(&0) || stride.contains(&0) {
                    return bad("empty avgpool2d dimension, kernel or stride");
                }
                if kernel[0] > h || kernel[1] > w {
                    return bad("avgpool2d kernel larger than the input");
                }
            }
        }
        Ok(())
    }
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

/// A quantized linear layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LinearOp {
    /// Fully connected.
    Dense(DenseQ),
    /// Convolution.
    Conv2d(Conv2dQ),
    /// Average pooling.
    AvgPool2d(AvgPool2dQ),
}

impl Conv2dQ {
    /// `[oh, ow]` of the output.
    pub fn out_hw(&self) -> [usize; 2] {
        let [_, h, w] = self.in_shape;
        [
            (h + 2 * self.padding[0] - self.kernel[0]) / self.stride[0] + 1,
            (w + 2 * self.padding[1] - self.kernel[1]) / self.stride[1] + 1,
        ]
    }
}

impl AvgPool2dQ {
    /// `[oh, ow]` of the output.
    pub fn out_hw(&self) -> [usize; 2] {
        let [_, h, w] = self.in_shape;
        [
            (h - self.kernel[0]) / self.stride[0] + 1,
            (w - self.kernel[1]) / self.stride[1] + 1,
        ]
    }
}

impl LinearOp {
    /// Number of input values.
    pub fn in_len(&self) -> usize {
        match self {
            LinearOp::Dense(d) => d.in_features,
            LinearOp::Conv2d(c) => c.in_shape.iter().product(),
            LinearOp::AvgPool2d(p) => p.in_shape.iter().product(),
        }
    }

    /// Number of output values.
    pub fn out_len(&self) -> usize {
        self.out_shape().iter().product()
    }

    /// Output shape (`[n]` or `[C, H, W]`).
    pub fn out_shape(&self) -> Vec<usize> {
        match self {
            LinearOp::Dense(d) => vec![d.out_features],
            LinearOp::Conv2d(c) => {
                let [oh, ow] = c.out_hw();
                vec![c.out_channels, oh, ow]
            }
            LinearOp::AvgPool2d(p) => {
                let [oh, ow] = p.out_hw();
                vec![p.in_shape[0], oh, ow]
            }
        }
    }

    /// Multiply-accumulate count.
    pub fn macs(&self) -> u64 {
        let per_out = match self {
            LinearOp::Dense(d) => d.in_features,
            LinearOp::Conv2d(c) => c.in_shape[0] * c.kernel[0] * c.kernel[1],
            LinearOp::AvgPool2d(p) => p.kernel[0] * p.kernel[1],
        };
        self.out_len() as u64 * per_out as u64
    }

    /// `W x (+ b)` exactly mod `2^k` (output at scale `2^(2f)`). `x.len()` must be
    /// [`LinearOp::in_len`] (callers validate; a wrong length panics in debug builds).
    pub fn apply_ring(&self, fp: FixedPoint, x: &[u64], with_bias: bool) -> Vec<u64> {
        debug_assert_eq!(x.len(), self.in_len());
        let out = match self {
            LinearOp::Dense(d) => dense(d, x, with_bias),
            LinearOp::Conv2d(c) => conv(c, x, with_bias),
            LinearOp::AvgPool2d(p) => avgpool(p, x),
        };
        out.into_iter().map(|v| fp.reduce(v)).collect()
    }
}

// All sums wrap mod 2^64; reducing mod 2^k afterwards is exact because 2^k divides 2^64.

fn dense(d: &DenseQ, x: &[u64], with_bias: bool) -> Vec<u64> {
    d.weight
        .chunks_exact(d.in_features)
        .zip(&d.bias)
        .map(|(row, &b)| {
            let acc = row.iter().zip(x).fold(0u64, |acc, (&w, &xi)| {
                acc.wrapping_add((w as u64).wrapping_mul(xi))
            });
            if with_bias {
                acc.wrapping_add(b as u64)
            } else {
                acc
            }
        })
        .collect()
}

fn conv(c: &Conv2dQ, x: &[u64], with_bias: bool) -> Vec<u64> {
    let [ic, h, w] = c.in_shape;
    let [kh, kw] = c.kernel;
    let [oh, ow] = c.out_hw();
    let mut out = Vec::with_capacity(c.out_channels * oh * ow);
    for o in 0..c.out_channels {
        for oy in 0..oh {
            for ox in 0..ow {
                let mut acc = if with_bias { c.bias[o] as u64 } else { 0 };
                for i in 0..ic {
                    for ky in 0..kh {
                        let Some(y) = (oy * c.stride[0] + ky).checked_sub(c.padding[0]) else {
                            continue;
                        };
                        if y >= h {
                            continue;
                        }
                        for kx in 0..kw {
                            let Some(xx) = (ox * c.stride[1] + kx).checked_sub(c.padding[1]) else {
                                continue;
                            };
                            if xx >= w {
                                continue;
                            }
                            let wv = c.weight[((o * ic + i) * kh + ky) * kw + kx] as u64;
                            acc = acc.wrapping_add(wv.wrapping_mul(x[(i * h + y) * w + xx]));
                        }
                    }
                }
                out.push(acc);
            }
        }
    }
    out
}

fn avgpool(p: &AvgPool2dQ, x: &[u64]) -> Vec<u64> {
    let [c, h, w] = p.in_shape;
    let [oh, ow] = p.out_hw();
    let mut out = Vec::with_capacity(c * oh * ow);
    for ch in 0..c {
        for oy in 0..oh {
            for ox in 0..ow {
                let mut sum = 0u64;
                for ky in 0..p.kernel[0] {
                    for kx in 0..p.kernel[1] {
                        let (y, xx) = (oy * p.stride[0] + ky, ox * p.stride[1] + kx);
                        sum = sum.wrapping_add(x[(ch * h + y) * w + xx]);
                    }
                }
                out.push(sum.wrapping_mul(p.coeff as u64));
            }
        }
    }
    out
}

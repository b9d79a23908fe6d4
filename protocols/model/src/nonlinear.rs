//! Non-linear operations over `Z_{2^k}`: evaluated inside garbled circuits in the secure
//! protocol, after the truncation of the preceding linear layer's output.

use serde::{Deserialize, Serialize};

use seco_core::fixed::FixedPoint;

/// A non-linear operation on truncated values (scale `2^f`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum NonLinearOp {
    /// `max(0, v)` on signed values.
    Relu,
    /// Max over each window of signed values (no padding, floor mode).
    MaxPool2d {
        /// `[C, H, W]` of the input.
        in_shape: [usize; 3],
        /// `[kh, kw]`.
        kernel: [usize; 2],
        /// `[sh, sw]`.
        stride: [usize; 2],
    },
}

impl NonLinearOp {
    /// Output length for an input of `in_len` values.
    pub fn out_len(&self, in_len: usize) -> usize {
        match self {
            NonLinearOp::Relu => in_len,
            NonLinearOp::MaxPool2d { .. } => self.windows().len(),
        }
    }

    /// For MaxPool, the input indices of each output's window (CHW order); empty for ReLU.
    /// This is what a garbled-circuit builder needs to wire a max-of-words gadget.
    pub fn windows(&self) -> Vec<Vec<usize>> {
        let NonLinearOp::MaxPool2d {
            in_shape: [c, h, w],
            kernel: [kh, kw],
            stride: [sh, sw],
        } = *self
        else {
            return Vec::new();
        };
        let (oh, ow) = ((h - kh) / sh + 1, (w - kw) / sw + 1);
        let mut windows = Vec::with_capacity(c * oh * ow);
        for ch in 0..c {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut idx = Vec::with_capacity(kh * kw);
                    for ky in 0..kh {
                        for kx in 0..kw {
                            idx.push((ch * h + oy * sh + ky) * w + ox * sw + kx);
                        }
                    }
                    windows.push(idx);
                }
            }
        }
        windows
    }

    /// Applies the operation exactly.
    pub fn apply_ring(&self, fp: FixedPoint, x: &[u64]) -> Vec<u64> {
        match self {
            NonLinearOp::Relu => x.iter().map(|&v| fp.relu(v)).collect(),
            NonLinearOp::MaxPool2d { .. } => self
                .windows()
                .iter()
                .map(|win| {
                    win.iter()
                        .map(|&i| x[i])
                        .reduce(|a, b| fp.max(a, b))
                        .unwrap_or(0)
                })
                .collect(),
        }
    }
}

impl std::fmt::Display for NonLinearOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NonLinearOp::Relu => write!(f, "relu"),
            NonLinearOp::MaxPool2d { kernel, stride, .. } => write!(
                f,
                "maxpool2d k{}x{} s{}x{}",
                kernel[0], kernel[1], stride[0], stride[1]
            ),
        }
    }
}

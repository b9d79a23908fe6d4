//! Layers of a float model and their shape rules.

use super::error::{ModelError, Result};
use super::shape::{checked_elements, chw, window_out};

/// A fully connected layer `y = W x + b`; `weight` is row-major `[out_features][in_features]`
/// (PyTorch's `nn.Linear` layout).
#[derive(Debug, Clone, PartialEq)]
pub struct Dense {
    /// Unique name (also the prefix of its tensors).
    pub name: String,
    /// Length of the 1-D input.
    pub in_features: usize,
    /// Length of the output.
    pub out_features: usize,
    /// `[out_features * in_features]`, row-major.
    pub weight: Vec<f32>,
    /// `[out_features]`.
    pub bias: Vec<f32>,
}

/// A 2-D convolution (cross-correlation with zero padding, PyTorch's `nn.Conv2d`, groups = 1);
/// `weight` is `[out_channels][in_channels][kh][kw]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Conv2d {
    /// Unique name.
    pub name: String,
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// `[kh, kw]`.
    pub kernel: [usize; 2],
    /// `[sh, sw]`.
    pub stride: [usize; 2],
    /// `[ph, pw]`, zero padding on both sides.
    pub padding: [usize; 2],
    /// `[out_channels * in_channels * kh * kw]`.
    pub weight: Vec<f32>,
    /// `[out_channels]`.
    pub bias: Vec<f32>,
}

/// Window of a pooling layer (no padding, floor mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool2d {
    /// `[kh, kw]`.
    pub kernel: [usize; 2],
    /// `[sh, sw]`.
    pub stride: [usize; 2],
}

/// One layer of a model.
#[derive(Debug, Clone, PartialEq)]
pub enum Layer {
    /// Linear: fully connected.
    Dense(Dense),
    /// Linear: convolution.
    Conv2d(Conv2d),
    /// Linear: average pooling (a convolution with one constant coefficient).
    AvgPool2d(Pool2d),
    /// Non-linear: max pooling.
    MaxPool2d(Pool2d),
    /// Non-linear: `max(0, x)`.
    Relu,
    /// Reshape `[C, H, W]` to `[C*H*W]` (CHW order); a no-op on the flat data.
    Flatten,
}

impl Layer {
    /// Whether the layer is linear (evaluated under HE by its owner in the secure protocol).
    pub fn is_linear(&self) -> bool {
        matches!(
            self,
            Layer::Dense(_) | Layer::Conv2d(_) | Layer::AvgPool2d(_)
        )
    }

    /// Short type name as in the manifest.
    pub fn kind(&self) -> &'static str {
        match self {
            Layer::Dense(_) => "dense",
            Layer::Conv2d(_) => "conv2d",
            Layer::AvgPool2d(_) => "avgpool2d",
            Layer::MaxPool2d(_) => "maxpool2d",
            Layer::Relu => "relu",
            Layer::Flatten => "flatten",
        }
    }

    /// A one-line description (`dense fc1 64->32`).
    pub fn describe(&self) -> String {
        match self {
            Layer::Dense(d) => format!("dense {} {}->{}", d.name, d.in_features, d.out_features),
            Layer::Conv2d(c) => format!(
                "conv2d {} {}->{} k{}x{} s{}x{} p{}x{}",
                c.name,
                c.in_channels,
                c.out_channels,
                c.kernel[0],
                c.kernel[1],
                c.stride[0],
                c.stride[1],
                c.padding[0],
                c.padding[1]
            ),
            Layer::AvgPool2d(p) | Layer::MaxPool2d(p) => format!(
                "{} k{}x{} s{}x{}",
                self.kind(),
                p.kernel[0],
                p.kernel[1],
                p.stride[0],
                p.stride[1]
            ),
            Layer::Relu | Layer::Flatten => self.kind().to_string(),
        }
    }

    /// Multiply-accumulate count of one evaluation on `input` (0 for non-linear layers).
    pub fn macs(&self, input: &[usize]) -> u64 {
        let Ok(out) = self.output_shape(usize::MAX, input) else {
            return 0;
        };
        let out_len: usize = out.iter().product();
        let per_out = match self {
            Layer::Dense(d) => d.in_features,
            Layer::Conv2d(c) => c.in_channels * c.kernel[0] * c.kernel[1],
            Layer::AvgPool2d(p) => p.kernel[0] * p.kernel[1],
            _ => 0,
        };
        (out_len as u64) * (per_out as u64)
    }

    /// Output shape for `input`, checking that the layer accepts it and that the output is
    /// within the size limits.
    pub fn output_shape(&self, index: usize, input: &[usize]) -> Result<Vec<usize>> {
        let err = |reason: String| ModelError::Structure {
            index,
            layer: self.describe(),
            reason,
        };
        let out = match self {
            Layer::Dense(d) => {
                if input != [d.in_features] {
                    return Err(err(format!(
                        "expects a 1-D input of {} features, got shape {input:?}",
                        d.in_features
                    )));
                }
                vec![d.out_features]
            }
            Layer::Conv2d(c) => {
                let [ci, h, w] = chw(input)
                    .ok_or_else(|| err(format!("expects a [C,H,W] input, got {input:?}")))?;
                if ci != c.in_channels {
                    return Err(err(format!(
                        "expects {} input channels, got {ci}",
                        c.in_channels
                    )));
                }
                let oh = window_out(h, c.kernel[0], c.stride[0], c.padding[0]);
                let ow = window_out(w, c.kernel[1], c.stride[1], c.padding[1]);
                match (oh, ow) {
                    (Some(oh), Some(ow)) => vec![c.out_channels, oh, ow],
                    _ => return Err(err(format!("kernel/stride do not fit input {input:?}"))),
                }
            }
            Layer::AvgPool2d(p) | Layer::MaxPool2d(p) => {
                let [ci, h, w] = chw(input)
                    .ok_or_else(|| err(format!("expects a [C,H,W] input, got {input:?}")))?;
                let oh = window_out(h, p.kernel[0], p.stride[0], 0);
                let ow = window_out(w, p.kernel[1], p.stride[1], 0);
                match (oh, ow) {
                    (Some(oh), Some(ow)) => vec![ci, oh, ow],
                    _ => return Err(err(format!("window does not fit input {input:?}"))),
                }
            }
            Layer::Relu => input.to_vec(),
            Layer::Flatten => vec![input.iter().product()],
        };
        checked_elements(&format!("output of layer {index}"), &out)?;
        Ok(out)
    }
}

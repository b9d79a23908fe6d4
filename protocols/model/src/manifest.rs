//! The JSON manifest of a model directory (`model.json`), format `seco-model/1`.
//!
//! ```json
//! { "format": "seco-model/1", "name": "digits-mlp", "input_shape": [64],
//!   "fixed_point": { "ring_bits": 32, "frac_bits": 10 }, "weights": "model.safetensors",
//!   "layers": [ { "type": "dense", "name": "fc1", "in_features": 64, "out_features": 32,
//!                 "weight": "fc1.weight", "bias": "fc1.bias" }, { "type": "relu" }, ... ] }
//! ```
//! Layer types: `dense`, `conv2d` (`in_channels`, `out_channels`, `kernel`, `stride`,
//! `padding`), `avgpool2d` / `maxpool2d` (`kernel`, `stride`), `relu`, `flatten`. `bias` is
//! optional (zeros). Tensors are F32 in PyTorch layouts.

use serde::{Deserialize, Serialize};

use super::error::{ModelError, Result};
use seco_core::fixed::FixedPoint;

/// The format string this version reads and writes.
pub const FORMAT: &str = "seco-model/1";

/// `model.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Must be [`FORMAT`].
    pub format: String,
    /// Model name.
    pub name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// `[features]` or `[C, H, W]`.
    pub input_shape: Vec<usize>,
    /// Ring and scale of the fixed-point evaluation.
    pub fixed_point: FixedPoint,
    /// Weight file, relative to the manifest's directory.
    pub weights: String,
    /// Layers in order.
    pub layers: Vec<RawLayer>,
}

/// A layer entry as written in the manifest; fields that a type does not use must be absent.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLayer {
    /// `dense`, `conv2d`, `avgpool2d`, `maxpool2d`, `relu` or `flatten`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Required on dense/conv2d; unique.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Dense input length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_features: Option<usize>,
    /// Dense output length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_features: Option<usize>,
    /// Conv input channels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_channels: Option<usize>,
    /// Conv output channels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_channels: Option<usize>,
    /// `[kh, kw]` of conv/pooling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<[usize; 2]>,
    /// `[sh, sw]`; defaults to `[1, 1]` for conv and to `kernel` for pooling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stride: Option<[usize; 2]>,
    /// `[ph, pw]` of conv; defaults to `[0, 0]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub padding: Option<[usize; 2]>,
    /// Weight tensor name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<String>,
    /// Bias tensor name (absent: zeros).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bias: Option<String>,
}

impl Manifest {
    /// Parses and checks the format string.
    pub fn from_json(text: &str) -> Result<Self> {
        let manifest: Manifest =
            serde_json::from_str(text).map_err(|e| ModelError::Manifest(e.to_string()))?;
        if manifest.format != FORMAT {
            return Err(ModelError::UnsupportedFormat {
                found: manifest.format,
                expected: FORMAT,
            });
        }
        manifest.fixed_point.validate()?;
        Ok(manifest)
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        // Serializing plain data with string keys cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

impl RawLayer {
    /// A required field, or a manifest error naming it.
    pub(crate) fn need<T: Copy>(&self, index: usize, field: &str, v: Option<T>) -> Result<T> {
        v.ok_or_else(|| {
            ModelError::Manifest(format!(
                "layer {index} ({}): missing field {field:?}",
                self.kind
            ))
        })
    }

    /// A required string field.
    pub(crate) fn need_str<'a>(
        &self,
        index: usize,
        field: &str,
        v: &'a Option<String>,
    ) -> Result<&'a str> {
        v.as_deref().ok_or_else(|| {
            ModelError::Manifest(format!(
                "layer {index} ({}): missing field {field:?}",
                self.kind
            ))
        })
    }
}

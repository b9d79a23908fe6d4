//! # seco-model
//!
//! Models, their on-disk format, float inference and the bit-exact fixed-point reference
//! (DESIGN.md s.3-4), and the import of ONNX models. Re-exported by the `seco-protocols`
//! facade as `model` (and `onnx`). Depends on `seco-core` only.
//!
//! # Layout
//! - `layer.rs`: float layers (Dense, Conv2d, AvgPool2d, MaxPool2d, ReLU, Flatten) and shapes.
//! - `manifest.rs`, `load.rs`, `tensors.rs`: the model directory (`model.json` +
//!   `model.safetensors`), validated on load (sizes before allocation, shapes, finiteness).
//! - `float.rs`: float inference.
//! - `linear.rs`, `nonlinear.rs`, `quantized.rs`: the fixed-point model as a list of stages (one
//!   linear layer + truncation + non-linear ops) and the reference inference.
//! - `testset.rs`: a model's held-out test set.
//! - `shape.rs`, `error.rs`: size limits and typed errors.
//! - [`onnx`]: import of ONNX models (PyTorch / Keras exports) into the model format.

pub mod onnx;

mod error;
mod float;
mod layer;
mod linear;
mod load;
mod manifest;
mod nonlinear;
mod quantized;
mod shape;
mod tensors;
mod testset;

pub use error::{ModelError, Result};
pub use layer::{Conv2d, Dense, Layer, Pool2d};
pub use linear::{AvgPool2dQ, Conv2dQ, DenseQ, LinearOp, LinearShape};
pub use load::MANIFEST_FILE;
pub use manifest::{Manifest, RawLayer, FORMAT};
pub use nonlinear::NonLinearOp;
pub use quantized::{QuantModel, Stage, StageTrace};
pub use shape::{checked_elements, MAX_DIM, MAX_ELEMENTS, MAX_LAYERS};
pub use testset::{argmax, TestSet, TEST_SET_FILE};

use std::collections::HashSet;

use seco_core::fixed::FixedPoint;

/// A validated float model: layer shapes chain, weights are finite and fit the fixed-point
/// ring, the first computing layer and the last layer are linear.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// Model name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// `[features]` or `[C, H, W]`.
    pub input_shape: Vec<usize>,
    /// Ring and scale of the fixed-point evaluation.
    pub fixed_point: FixedPoint,
    /// Layers in order.
    pub layers: Vec<Layer>,
    /// Output shape of each layer (computed at validation).
    shapes: Vec<Vec<usize>>,
}

impl Model {
    /// Validates and builds a model.
    pub fn new(
        name: String,
        description: String,
        input_shape: Vec<usize>,
        fixed_point: FixedPoint,
        layers: Vec<Layer>,
    ) -> Result<Self> {
        fixed_point.validate()?;
        checked_elements("input_shape", &input_shape)?;
        if layers.is_empty() || layers.len() > MAX_LAYERS {
            return Err(ModelError::Manifest(format!(
                "a model needs 1 to {MAX_LAYERS} layers, found {}",
                layers.len()
            )));
        }
        let mut shapes = Vec::with_capacity(layers.len());
        let mut shape = input_shape.clone();
        let mut names = HashSet::new();
        for (index, layer) in layers.iter().enumerate() {
            check_layer(index, layer, &mut names)?;
            shape = layer.output_shape(index, &shape)?;
            shapes.push(shape.clone());
        }
        check_structure(&layers)?;
        let model = Self {
            name,
            description,
            input_shape,
            fixed_point,
            layers,
            shapes,
        };
        // Quantizing checks that every weight fits the ring.
        QuantModel::from_model(&model)?;
        Ok(model)
    }

    /// Number of input values.
    pub fn input_len(&self) -> usize {
        self.input_shape.iter().product()
    }

    /// Output shape of layer `i`.
    pub fn layer_output_shape(&self, i: usize) -> Option<&[usize]> {
        self.shapes.get(i).map(Vec::as_slice)
    }

    /// Input shape of layer `i`.
    pub fn layer_input_shape(&self, i: usize) -> Option<&[usize]> {
        if i == 0 {
            Some(&self.input_shape)
        } else {
            self.layer_output_shape(i - 1)
        }
    }

    /// Shape of the logits.
    pub fn output_shape(&self) -> &[usize] {
        self.shapes.last().map_or(&[], Vec::as_slice)
    }

    /// Number of weights and biases.
    pub fn parameter_count(&self) -> usize {
        self.layers
            .iter()
            .map(|l| match l {
                Layer::Dense(d) => d.weight.len() + d.bias.len(),
                Layer::Conv2d(c) => c.weight.len() + c.bias.len(),
                _ => 0,
            })
            .sum()
    }

    /// The quantized model (stages) used by the fixed-point reference and the protocol.
    pub fn quantize(&self) -> Result<QuantModel> {
        QuantModel::from_model(self)
    }

    /// The same model with other fixed-point parameters (validated).
    pub fn with_fixed_point(&self, fixed_point: FixedPoint) -> Result<Self> {
        Self::new(
            self.name.clone(),
            self.description.clone(),
            self.input_shape.clone(),
            fixed_point,
            self.layers.clone(),
        )
    }

    /// Fixed-point logits decoded to reals: encode, run the reference, decode.
    pub fn predict_fixed(&self, x: &[f32]) -> Result<Vec<f64>> {
        let q = self.quantize()?;
        let encoded = self.encode_input(x)?;
        let logits = q.infer(&encoded)?;
        Ok(logits.iter().map(|&v| self.fixed_point.decode(v)).collect())
    }

    /// Encodes a float input at scale `2^f`, checking length and finiteness.
    pub fn encode_input(&self, x: &[f32]) -> Result<Vec<u64>> {
        if x.len() != self.input_len() {
            return Err(ModelError::InputLength {
                expected: self.input_len(),
                found: x.len(),
            });
        }
        x.iter()
            .enumerate()
            .map(|(index, &v)| {
                self.fixed_point
                    .encode(f64::from(v))
                    .map_err(|source| match source {
                        seco_core::fixed::FixedError::NotFinite { .. } => ModelError::NotFinite {
                            what: "input".into(),
                            index,
                            value: v,
                        },
                        other => ModelError::Fixed(other),
                    })
            })
            .collect()
    }
}

fn check_layer(index: usize, layer: &Layer, names: &mut HashSet<String>) -> Result<()> {
    let (name, wlen, blen, wshape, out) = match layer {
        Layer::Dense(d) => (
            &d.name,
            d.weight.len(),
            d.bias.len(),
            d.weight_shape(),
            d.out_features,
        ),
        Layer::Conv2d(c) => (
            &c.name,
            c.weight.len(),
            c.bias.len(),
            c.weight_shape(),
            c.out_channels,
        ),
        _ => return Ok(()),
    };
    if name.is_empty() || !names.insert(name.clone()) {
        return Err(ModelError::Manifest(format!(
            "layer {index}: name {name:?} is empty or not unique"
        )));
    }
    let expected = checked_elements(name, &wshape)?;
    if wlen != expected || blen != out {
        return Err(ModelError::ShapeMismatch {
            what: format!("weights of layer {index} ({name})"),
            expected: vec![expected, out],
            found: vec![wlen, blen],
        });
    }
    let weights = match layer {
        Layer::Dense(d) => d.weight.iter().chain(&d.bias),
        Layer::Conv2d(c) => c.weight.iter().chain(&c.bias),
        _ => return Ok(()),
    };
    if let Some((i, &value)) = weights.enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(ModelError::NotFinite {
            what: format!("weights of {name}"),
            index: i,
            value,
        });
    }
    Ok(())
}

/// The first layer that is not Flatten must be linear; the last layer must be linear (its
/// output is the logits, delivered to the user without a garbled circuit).
fn check_structure(layers: &[Layer]) -> Result<()> {
    if let Some((index, layer)) = layers
        .iter()
        .enumerate()
        .find(|(_, l)| !matches!(l, Layer::Flatten))
    {
        if !layer.is_linear() {
            return Err(ModelError::Structure {
                index,
                layer: layer.describe(),
                reason: "the first computing layer must be linear (dense, conv2d or avgpool2d)"
                    .into(),
            });
        }
    }
    let last = layers.len() - 1;
    if !layers[last].is_linear() {
        return Err(ModelError::Structure {
            index: last,
            layer: layers[last].describe(),
            reason: "the last layer must be linear: its output is the logits".into(),
        });
    }
    Ok(())
}

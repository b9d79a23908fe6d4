//! The fixed-point model as the secure protocol sees it: a list of **stages**, each one linear
//! layer followed by the truncation and the non-linear operations up to the next linear layer.
//! [`QuantModel::infer`] is the bit-exact reference that the secure protocol must reproduce.
//!
//! Semantics (DESIGN.md s.3, `docs/fixed-point.md`): every linear output `y` (scale `2^(2f)`) is
//! truncated, `trunc(y) = signed(y) >> f`, then ReLU/MaxPool run on signed values; the logits
//! are the truncated output of the last linear layer.

use super::error::{ModelError, Result};
use super::layer::Layer;
use super::linear::{AvgPool2dQ, Conv2dQ, DenseQ, LinearOp};
use super::nonlinear::NonLinearOp;
use super::shape::chw;
use super::Model;
use seco_core::fixed::FixedPoint;

/// One linear layer plus the non-linear operations that follow it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// Name of the linear layer (`avgpool2d` layers are named `avgpool<index>`).
    pub name: String,
    /// Index of the linear layer in the model's layer list.
    pub layer_index: usize,
    /// The linear operation.
    pub linear: LinearOp,
    /// Operations after truncation, in order (empty for the last stage).
    pub post: Vec<NonLinearOp>,
    /// Shape of the stage's input.
    pub in_shape: Vec<usize>,
    /// Shape of the stage's output (after `post`).
    pub out_shape: Vec<usize>,
}

/// The values a stage produced during reference inference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageTrace {
    /// `W x + b` mod `2^k` (scale `2^(2f)`), before truncation.
    pub linear_out: Vec<u64>,
    /// After truncation and the non-linear operations: the next stage's input.
    pub out: Vec<u64>,
}

/// A quantized model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantModel {
    /// Model name.
    pub name: String,
    /// Ring and scale.
    pub fp: FixedPoint,
    /// Input shape.
    pub input_shape: Vec<usize>,
    /// Stages in order.
    pub stages: Vec<Stage>,
}

impl Stage {
    /// Truncation followed by the non-linear operations (what a garbled circuit computes).
    pub fn apply_post(&self, fp: FixedPoint, y: &[u64]) -> Vec<u64> {
        let mut v: Vec<u64> = y.iter().map(|&x| fp.trunc(x)).collect();
        for op in &self.post {
            v = op.apply_ring(fp, &v);
        }
        v
    }
}

impl QuantModel {
    /// Quantizes a (validated) float model.
    pub fn from_model(model: &Model) -> Result<Self> {
        let fp = model.fixed_point;
        let mut stages: Vec<Stage> = Vec::new();
        let mut shape = model.input_shape.clone();
        for (index, layer) in model.layers.iter().enumerate() {
            let out_shape = layer.output_shape(index, &shape)?;
            if layer.is_linear() {
                stages.push(Stage {
                    name: linear_name(index, layer),
                    layer_index: index,
                    linear: quantize_linear(fp, layer, &shape)?,
                    post: Vec::new(),
                    in_shape: shape.clone(),
                    out_shape: out_shape.clone(),
                });
            } else if let Some(stage) = stages.last_mut() {
                if let Layer::MaxPool2d(p) = layer {
                    stage.post.push(NonLinearOp::MaxPool2d {
                        in_shape: chw(&shape).unwrap_or_default(),
                        kernel: p.kernel,
                        stride: p.stride,
                    });
                } else if let Layer::Relu = layer {
                    stage.post.push(NonLinearOp::Relu);
                }
                stage.out_shape = out_shape.clone();
            } else if !matches!(layer, Layer::Flatten) {
                return Err(ModelError::Structure {
                    index,
                    layer: layer.describe(),
                    reason: "a non-linear layer before the first linear layer".into(),
                });
            }
            shape = out_shape;
        }
        Ok(Self {
            name: model.name.clone(),
            fp,
            input_shape: model.input_shape.clone(),
            stages,
        })
    }

    /// Input length.
    pub fn in_len(&self) -> usize {
        self.input_shape.iter().product()
    }

    /// Output (logits) length.
    pub fn out_len(&self) -> usize {
        self.stages.last().map_or(0, |s| s.linear.out_len())
    }

    /// Reference inference on an encoded input: the logits (scale `2^f`) as ring elements.
    pub fn infer(&self, x: &[u64]) -> Result<Vec<u64>> {
        Ok(self
            .infer_trace(x)?
            .pop()
            .map(|t| t.out)
            .unwrap_or_default())
    }

    /// Reference inference keeping every stage's values.
    pub fn infer_trace(&self, x: &[u64]) -> Result<Vec<StageTrace>> {
        if x.len() != self.in_len() {
            return Err(ModelError::InputLength {
                expected: self.in_len(),
                found: x.len(),
            });
        }
        let mut cur: Vec<u64> = x.iter().map(|&v| self.fp.reduce(v)).collect();
        let mut trace = Vec::with_capacity(self.stages.len());
        for stage in &self.stages {
            let linear_out = stage.linear.apply_ring(self.fp, &cur, true);
            cur = stage.apply_post(self.fp, &linear_out);
            trace.push(StageTrace {
                linear_out,
                out: cur.clone(),
            });
        }
        Ok(trace)
    }
}

fn linear_name(index: usize, layer: &Layer) -> String {
    match layer {
        Layer::Dense(d) => d.name.clone(),
        Layer::Conv2d(c) => c.name.clone(),
        _ => format!("avgpool{index}"),
    }
}

fn quantize_all(fp: FixedPoint, what: &str, values: &[f32], scale: u32) -> Result<Vec<i64>> {
    values
        .iter()
        .map(|&v| {
            fp.quantize(f64::from(v), scale)
                .map_err(|source| ModelError::Quantize {
                    what: what.to_string(),
                    source,
                })
        })
        .collect()
}

fn quantize_linear(fp: FixedPoint, layer: &Layer, in_shape: &[usize]) -> Result<LinearOp> {
    let f = fp.frac_bits;
    Ok(match layer {
        Layer::Dense(d) => LinearOp::Dense(DenseQ {
            in_features: d.in_features,
            out_features: d.out_features,
            weight: quantize_all(fp, &format!("{}.weight", d.name), &d.weight, f)?,
            bias: quantize_all(fp, &format!("{}.bias", d.name), &d.bias, 2 * f)?,
        }),
        Layer::Conv2d(c) => LinearOp::Conv2d(Conv2dQ {
            in_shape: chw(in_shape).unwrap_or_default(),
            out_channels: c.out_channels,
            kernel: c.kernel,
            stride: c.stride,
            padding: c.padding,
            weight: quantize_all(fp, &format!("{}.weight", c.name), &c.weight, f)?,
            bias: quantize_all(fp, &format!("{}.bias", c.name), &c.bias, 2 * f)?,
        }),
        Layer::AvgPool2d(p) => {
            let area = (p.kernel[0] * p.kernel[1]) as f64;
            LinearOp::AvgPool2d(AvgPool2dQ {
                in_shape: chw(in_shape).unwrap_or_default(),
                kernel: p.kernel,
                stride: p.stride,
                coeff: fp.quantize(1.0 / area, f)?,
            })
        }
        other => {
            return Err(ModelError::Structure {
                index: 0,
                layer: other.describe(),
                reason: "not a linear layer".into(),
            })
        }
    })
}

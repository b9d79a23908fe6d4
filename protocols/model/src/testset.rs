//! A model's held-out test set: `test.safetensors` with `inputs` F32 `[n, *input_shape]` and
//! `labels` I64 `[n]`.

use std::path::Path;

use super::error::{ModelError, Result};
use super::tensors::{self, OwnedTensor};

/// File name of the test set inside a model directory.
pub const TEST_SET_FILE: &str = "test.safetensors";

/// Inputs and labels.
#[derive(Debug, Clone, PartialEq)]
pub struct TestSet {
    /// Shape of one input.
    pub input_shape: Vec<usize>,
    /// Flat inputs, one after the other.
    pub inputs: Vec<f32>,
    /// Class labels.
    pub labels: Vec<i64>,
}

impl TestSet {
    /// Loads `dir/test.safetensors` (or the given file).
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = if path.is_dir() {
            path.join(TEST_SET_FILE)
        } else {
            path.to_path_buf()
        };
        let bytes = tensors::read_file(&file)?;
        let st = tensors::parse(&bytes)?;
        let (shape, inputs) = tensors::f32_any(&st, "inputs")?;
        let (lshape, labels) = tensors::i64_any(&st, "labels")?;
        if shape.len() < 2 || lshape != [shape[0]] {
            return Err(ModelError::ShapeMismatch {
                what: "test set labels".into(),
                expected: vec![shape.first().copied().unwrap_or(0)],
                found: lshape,
            });
        }
        Ok(Self {
            input_shape: shape[1..].to_vec(),
            inputs,
            labels,
        })
    }

    /// Writes the test set to a safetensors file.
    pub fn save(&self, file: impl AsRef<Path>) -> Result<()> {
        let mut shape = vec![self.len()];
        shape.extend(&self.input_shape);
        let bytes = tensors::serialize(&[
            ("inputs".to_string(), OwnedTensor::f32(shape, &self.inputs)),
            (
                "labels".to_string(),
                OwnedTensor::i64(vec![self.len()], &self.labels),
            ),
        ])?;
        std::fs::write(file.as_ref(), bytes).map_err(|e| ModelError::io(file.as_ref(), e))
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no examples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The `i`-th input.
    pub fn input(&self, i: usize) -> Option<&[f32]> {
        let n: usize = self.input_shape.iter().product();
        self.inputs.get(i * n..(i + 1) * n)
    }
}

/// Index of the largest value (first on ties), the predicted class.
pub fn argmax<T: PartialOrd + Copy>(values: &[T]) -> usize {
    let mut best = 0;
    for (i, v) in values.iter().enumerate() {
        if *v > values[best] {
            best = i;
        }
    }
    best
}

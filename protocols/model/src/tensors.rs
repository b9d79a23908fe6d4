//! Reading and writing safetensors files with the checks a hostile file needs.

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;

use super::error::{ModelError, Result};
use super::shape::{checked_elements, MAX_TENSOR_FILE_BYTES};

/// Reads a whole file after checking its size against `limit` (refused before reading).
pub fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path).map_err(|e| ModelError::io(path, e))?;
    if meta.len() > limit {
        return Err(ModelError::FileTooLarge {
            path: path.display().to_string(),
            size: meta.len(),
            limit,
        });
    }
    std::fs::read(path).map_err(|e| ModelError::io(path, e))
}

/// Parses a safetensors buffer (the crate checks header length, offsets and overlap).
pub fn parse(bytes: &[u8]) -> Result<SafeTensors<'_>> {
    SafeTensors::deserialize(bytes).map_err(|e| ModelError::Weights(format!("{e:?}")))
}

/// Reads a safetensors file under [`MAX_TENSOR_FILE_BYTES`].
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    read_limited(path, MAX_TENSOR_FILE_BYTES)
}

/// An F32 tensor of exactly `expected` shape, all elements finite.
pub fn f32_tensor(st: &SafeTensors<'_>, name: &str, expected: &[usize]) -> Result<Vec<f32>> {
    let view = tensor(st, name)?;
    check_dtype(name, &view, Dtype::F32, "F32")?;
    if view.shape() != expected {
        return Err(ModelError::ShapeMismatch {
            what: format!("tensor {name:?}"),
            expected: expected.to_vec(),
            found: view.shape().to_vec(),
        });
    }
    let values = f32_values(name, &view)?;
    if let Some((index, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(ModelError::NotFinite {
            what: format!("tensor {name:?}"),
            index,
            value,
        });
    }
    Ok(values)
}

/// An F32 tensor of any shape (checked against the element limit), with its shape.
pub fn f32_any(st: &SafeTensors<'_>, name: &str) -> Result<(Vec<usize>, Vec<f32>)> {
    let view = tensor(st, name)?;
    check_dtype(name, &view, Dtype::F32, "F32")?;
    let shape = view.shape().to_vec();
    checked_elements(name, &shape)?;
    Ok((shape, f32_values(name, &view)?))
}

/// An I64 tensor of any shape, with its shape.
pub fn i64_any(st: &SafeTensors<'_>, name: &str) -> Result<(Vec<usize>, Vec<i64>)> {
    let view = tensor(st, name)?;
    check_dtype(name, &view, Dtype::I64, "I64")?;
    let shape = view.shape().to_vec();
    checked_elements(name, &shape)?;
    let values = view
        .data()
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect();
    Ok((shape, values))
}

fn tensor<'a>(st: &SafeTensors<'a>, name: &str) -> Result<TensorView<'a>> {
    st.tensor(name).map_err(|_| ModelError::MissingTensor {
        name: name.to_string(),
    })
}

fn check_dtype(name: &str, view: &TensorView<'_>, want: Dtype, label: &'static str) -> Result<()> {
    if view.dtype() == want {
        Ok(())
    } else {
        Err(ModelError::WrongDtype {
            name: name.to_string(),
            found: format!("{:?}", view.dtype()),
            expected: label,
        })
    }
}

fn f32_values(name: &str, view: &TensorView<'_>) -> Result<Vec<f32>> {
    let data = view.data();
    if data.len() % 4 != 0 {
        return Err(ModelError::Weights(format!(
            "tensor {name:?} has {} bytes, not a multiple of 4",
            data.len()
        )));
    }
    Ok(data
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// An owned tensor to be written.
pub struct OwnedTensor {
    /// Element type.
    pub dtype: Dtype,
    /// Shape.
    pub shape: Vec<usize>,
    /// Little-endian bytes.
    pub data: Vec<u8>,
}

impl OwnedTensor {
    /// An F32 tensor.
    pub fn f32(shape: Vec<usize>, values: &[f32]) -> Self {
        let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        Self {
            dtype: Dtype::F32,
            shape,
            data,
        }
    }

    /// An I64 tensor.
    pub fn i64(shape: Vec<usize>, values: &[i64]) -> Self {
        let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        Self {
            dtype: Dtype::I64,
            shape,
            data,
        }
    }
}

/// Serializes named tensors to safetensors bytes.
pub fn serialize(tensors: &[(String, OwnedTensor)]) -> Result<Vec<u8>> {
    let mut views = HashMap::new();
    for (name, t) in tensors {
        let view = TensorView::new(t.dtype, t.shape.clone(), &t.data)
            .map_err(|e| ModelError::Weights(format!("{name}: {e:?}")))?;
        views.insert(name.clone(), view);
    }
    safetensors::serialize(views, &None).map_err(|e| ModelError::Weights(format!("{e:?}")))
}

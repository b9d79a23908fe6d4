//! Constant tensors (initializers and `Constant` nodes) decoded to float32 or int64 values,
//! with the checks untrusted data needs: dimensions within the limits, data length equal to
//! the element count, float32 only for weights, no external data.

use super::error::{OnnxError, Result};
use super::proto::{data_type, TensorProto, DATA_LOCATION_EXTERNAL};
use crate::checked_elements;

/// Largest `Reshape` shape or `Dropout` flag tensor read as integers.
const MAX_SMALL_TENSOR: usize = 16;

/// A constant value: a tensor stored in the file, or a value given by a `Constant` node's
/// `value_float(s)` / `value_int(s)` attribute.
#[derive(Debug, Clone)]
pub enum Const<'a> {
    /// A `TensorProto` (initializer or `Constant.value`).
    Tensor(&'a TensorProto),
    /// `value_float` (dims `[]`) or `value_floats` (dims `[n]`).
    Floats(Vec<usize>, Vec<f32>),
    /// `value_int` or `value_ints`.
    Ints(Vec<i64>),
}

/// A float32 constant with its dimensions (`[]` for a scalar).
#[derive(Debug, Clone, PartialEq)]
pub struct Floats {
    /// Dimensions.
    pub dims: Vec<usize>,
    /// Row-major values, `product(dims)` of them.
    pub data: Vec<f32>,
}

impl Const<'_> {
    /// The values as float32 (weights, biases, batch-norm statistics).
    pub fn floats(&self, name: &str) -> Result<Floats> {
        match self {
            Const::Tensor(t) => tensor_floats(name, t),
            Const::Floats(dims, data) => Ok(Floats {
                dims: dims.clone(),
                data: data.clone(),
            }),
            Const::Ints(..) => Err(wrong_type(name, data_type::INT64, "FLOAT")),
        }
    }

    /// The values as int64 (`Reshape` shapes), at most [`MAX_SMALL_TENSOR`] of them.
    pub fn ints(&self, name: &str) -> Result<Vec<i64>> {
        match self {
            Const::Tensor(t) => tensor_ints(name, t),
            Const::Ints(v) if v.len() <= MAX_SMALL_TENSOR => Ok(v.clone()),
            Const::Ints(v) => Err(bad(
                name,
                format!("{} elements, expected at most {MAX_SMALL_TENSOR}", v.len()),
            )),
            Const::Floats(..) => Err(wrong_type(name, data_type::FLOAT, "INT64")),
        }
    }

    /// A boolean scalar (`Dropout`'s `training_mode`).
    pub fn flag(&self, name: &str) -> Result<bool> {
        let Const::Tensor(t) = self else {
            return Err(bad(name, "expected a BOOL tensor".into()));
        };
        check_location(name, t)?;
        if t.data_type != data_type::BOOL {
            return Err(wrong_type(name, t.data_type, "BOOL"));
        }
        if element_count(name, &t.dims)? != 1 {
            return Err(bad(name, "expected a scalar".into()));
        }
        match (t.raw_data.as_slice(), t.int32_data.as_slice()) {
            ([b], []) => Ok(*b != 0),
            ([], [v]) => Ok(*v != 0),
            _ => Err(bad(name, "data does not hold one boolean".into())),
        }
    }
}

fn bad(name: &str, reason: String) -> OnnxError {
    OnnxError::BadTensor {
        tensor: name.to_string(),
        reason,
    }
}

fn wrong_type(name: &str, found: i32, expected: &'static str) -> OnnxError {
    OnnxError::DataType {
        tensor: name.to_string(),
        found: data_type::name(found),
        expected,
    }
}

/// Refuses external data (the importer reads one file only, and never paths named by it).
pub fn check_location(name: &str, t: &TensorProto) -> Result<()> {
    if t.data_location == DATA_LOCATION_EXTERNAL || !t.external_data.is_empty() {
        let location = t
            .external_data
            .iter()
            .find(|e| e.key == "location")
            .map(|e| e.value.clone())
            .unwrap_or_default();
        return Err(OnnxError::ExternalData {
            tensor: name.to_string(),
            location,
        });
    }
    Ok(())
}

/// Dimensions as `usize`, refusing negative ones.
pub fn dims_of(name: &str, dims: &[i64]) -> Result<Vec<usize>> {
    dims.iter()
        .map(|&d| usize::try_from(d).map_err(|_| bad(name, format!("negative dimension {d}"))))
        .collect()
}

/// Number of elements (1 for a scalar), within the model's element limit.
fn element_count(name: &str, dims: &[i64]) -> Result<usize> {
    let dims = dims_of(name, dims)?;
    if dims.is_empty() {
        return Ok(1);
    }
    checked_elements(name, &dims).map_err(|e| bad(name, e.to_string()))
}

fn tensor_floats(name: &str, t: &TensorProto) -> Result<Floats> {
    check_location(name, t)?;
    if t.data_type != data_type::FLOAT {
        return Err(wrong_type(name, t.data_type, "FLOAT"));
    }
    let n = element_count(name, &t.dims)?;
    let data = if !t.raw_data.is_empty() {
        if t.raw_data.len() != n.saturating_mul(4) {
            return Err(bad(
                name,
                format!(
                    "raw data of {} bytes for {n} float32 elements",
                    t.raw_data.len()
                ),
            ));
        }
        t.raw_data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    } else if t.float_data.len() == n {
        t.float_data.clone()
    } else {
        return Err(bad(
            name,
            format!("{} float values for {n} elements", t.float_data.len()),
        ));
    };
    if let Some((i, v)) = data.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(bad(name, format!("element {i} is not finite ({v})")));
    }
    Ok(Floats {
        dims: dims_of(name, &t.dims)?,
        data,
    })
}

fn tensor_ints(name: &str, t: &TensorProto) -> Result<Vec<i64>> {
    check_location(name, t)?;
    if t.data_type != data_type::INT64 {
        return Err(wrong_type(name, t.data_type, "INT64"));
    }
    let n = element_count(name, &t.dims)?;
    if n > MAX_SMALL_TENSOR {
        return Err(bad(
            name,
            format!("{n} elements, expected at most {MAX_SMALL_TENSOR}"),
        ));
    }
    if !t.raw_data.is_empty() {
        if t.raw_data.len() != n * 8 {
            return Err(bad(
                name,
                format!(
                    "raw data of {} bytes for {n} int64 elements",
                    t.raw_data.len()
                ),
            ));
        }
        return Ok(t
            .raw_data
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect());
    }
    if t.int64_data.len() != n {
        return Err(bad(
            name,
            format!("{} int64 values for {n} elements", t.int64_data.len()),
        ));
    }
    Ok(t.int64_data.clone())
}

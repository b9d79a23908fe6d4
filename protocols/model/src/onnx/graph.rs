//! The graph's frame: operator set, initializers, the data input (with batch size 1) and the
//! single output.

use std::collections::HashMap;

use super::error::{OnnxError, Result};
use super::proto::{data_type, GraphProto, ModelProto, ValueInfoProto};
use super::tensor::{check_location, Const};
use super::{MAX_OPSET, MIN_OPSET};
use crate::checked_elements;

/// Whether `domain` names the standard operator set.
pub fn is_default_domain(domain: &str) -> bool {
    domain.is_empty() || domain == "ai.onnx"
}

/// The version of the default operator set, checked against the supported range.
pub fn opset(model: &ModelProto) -> Result<i64> {
    let refuse = |reason: String| OnnxError::UnsupportedOpset {
        reason,
        min: MIN_OPSET,
        max: MAX_OPSET,
    };
    if model.ir_version < 3 {
        return Err(refuse(format!(
            "IR version {} predates operator sets",
            model.ir_version
        )));
    }
    let mut versions = model
        .opset_import
        .iter()
        .filter(|o| is_default_domain(&o.domain))
        .map(|o| o.version);
    let version = match (versions.next(), versions.next()) {
        (Some(v), None) => v,
        (None, _) => return Err(refuse("the model imports no default-domain opset".into())),
        (Some(_), Some(_)) => {
            return Err(refuse(
                "the model imports the default domain more than once".into(),
            ))
        }
    };
    if !(MIN_OPSET..=MAX_OPSET).contains(&version) {
        return Err(refuse(format!("the model uses opset {version}")));
    }
    Ok(version)
}

/// Initializers by name (sparse initializers are refused).
pub fn initializers(graph: &GraphProto) -> Result<HashMap<&str, Const<'_>>> {
    if let Some(s) = graph.sparse_initializer.first() {
        let name = s.values.as_ref().map(|v| v.name.as_str()).unwrap_or("");
        return Err(OnnxError::BadTensor {
            tensor: name.to_string(),
            reason: "sparse initializers are not supported; store the weights densely".into(),
        });
    }
    let mut consts = HashMap::with_capacity(graph.initializer.len());
    for t in &graph.initializer {
        if t.name.is_empty() {
            return Err(OnnxError::graph("an initializer has no name"));
        }
        // Refuse external data at once, even for tensors no node uses.
        check_location(&t.name, t)?;
        if consts.insert(t.name.as_str(), Const::Tensor(t)).is_some() {
            return Err(OnnxError::graph(format!(
                "initializer {:?} is defined twice",
                t.name
            )));
        }
    }
    Ok(consts)
}

/// The single graph input that is not an initializer: its name and its shape without the
/// batch dimension (`[features]` or `[C, H, W]`).
pub fn data_input<'g>(
    graph: &'g GraphProto,
    consts: &HashMap<&str, Const<'_>>,
) -> Result<(&'g str, Vec<usize>)> {
    let mut inputs = graph
        .input
        .iter()
        .filter(|i| !consts.contains_key(i.name.as_str()));
    let input = match (inputs.next(), inputs.next()) {
        (Some(i), None) => i,
        (None, _) => return Err(OnnxError::graph("the graph has no data input")),
        (Some(a), Some(b)) => {
            return Err(OnnxError::graph(format!(
                "the graph has several data inputs ({:?}, {:?}, ...); only one input is supported",
                a.name, b.name
            )))
        }
    };
    Ok((input.name.as_str(), input_shape(input)?))
}

fn input_shape(input: &ValueInfoProto) -> Result<Vec<usize>> {
    let name = &input.name;
    let tensor = input
        .r#type
        .as_ref()
        .and_then(|t| t.tensor_type.as_ref())
        .ok_or_else(|| OnnxError::graph(format!("input {name:?} is not a tensor")))?;
    if tensor.elem_type != data_type::FLOAT {
        return Err(OnnxError::graph(format!(
            "input {name:?} has element type {}, expected FLOAT (float32)",
            data_type::name(tensor.elem_type)
        )));
    }
    let dims = tensor
        .shape
        .as_ref()
        .map(|s| s.dim.as_slice())
        .ok_or_else(|| OnnxError::graph(format!("input {name:?} has no shape")))?;
    if dims.len() != 2 && dims.len() != 4 {
        return Err(OnnxError::graph(format!(
            "input {name:?} has rank {}: supported are [batch, features] and [batch, C, H, W]",
            dims.len()
        )));
    }
    let mut shape = Vec::with_capacity(dims.len() - 1);
    for (axis, d) in dims.iter().enumerate() {
        let dynamic = || OnnxError::DynamicShape {
            input: name.clone(),
            axis,
            dim: d.dim_param.clone().unwrap_or_else(|| "unknown".into()),
        };
        match (axis, d.dim_value) {
            // A symbolic or unknown batch dimension is taken as 1.
            (0, None) | (0, Some(1)) => {}
            (0, Some(b)) => {
                return Err(OnnxError::graph(format!(
                    "input {name:?} has batch size {b}: export with batch size 1 or a dynamic batch"
                )))
            }
            (_, Some(v)) if v > 0 => {
                shape.push(usize::try_from(v).map_err(|_| dynamic())?);
            }
            (_, _) => return Err(dynamic()),
        }
    }
    checked_elements(&format!("input {name:?}"), &shape)?;
    Ok(shape)
}

/// The name of the single graph output.
pub fn output_name(graph: &GraphProto) -> Result<&str> {
    match graph.output.as_slice() {
        [o] => Ok(o.name.as_str()),
        [] => Err(OnnxError::graph("the graph has no output")),
        more => Err(OnnxError::graph(format!(
            "the graph has {} outputs; only one output (the logits) is supported",
            more.len()
        ))),
    }
}

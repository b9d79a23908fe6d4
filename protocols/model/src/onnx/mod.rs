//! Import of ONNX models (PyTorch / Keras exports) into seco's model format.
//!
//! The importer reads one `.onnx` file (untrusted bytes), decodes the subset of the ONNX
//! protobuf schema it needs with `prost`, and maps a linear chain of standard operators to
//! [`Layer`]s, refusing everything it cannot map exactly, with an error naming the node, its
//! op type and the reason. The result is a validated [`Model`] that `Model::save` writes as
//! `model.json` + `model.safetensors`.
//!
//! | ONNX operator | seco layer | conditions |
//! | --- | --- | --- |
//! | `Gemm` | dense | `transA = 0`; `transB` 0 or 1; `alpha`, `beta` folded; bias optional |
//! | `MatMul` (+ `Add`) | dense | activation `[1, K]` times constant `[K, N]`; the `Add` is the bias |
//! | `Conv` | conv2d | 2-D, `group = 1`, dilations 1, symmetric pads, `auto_pad` NOTSET/VALID |
//! | `BatchNormalization` | folded | directly after Conv/Gemm/MatMul(+Add), inference mode |
//! | `Add` | folded | constant per-channel addend directly after Conv/Gemm/MatMul |
//! | `Relu` | relu | |
//! | `MaxPool` | maxpool2d | 2-D, no padding, dilations 1, floor mode |
//! | `AveragePool` | avgpool2d | 2-D, no padding, dilations 1, floor mode |
//! | `GlobalAveragePool` | avgpool2d | kernel = stride = `[H, W]` |
//! | `GlobalMaxPool` | maxpool2d | kernel = stride = `[H, W]` |
//! | `Flatten` | flatten | axis 1 (or 0); omitted on a vector |
//! | `Reshape` | flatten | constant shape resolving to `[1, N]`, or a no-op |
//! | `Identity`, `Dropout` | removed | Dropout not in training mode |
//! | `Constant` | - | a constant input of a later node |
//!
//! The graph must have one float32 input of shape `[1, N]` or `[1, C, H, W]` (a symbolic batch
//! dimension is taken as 1; other dynamic dimensions are refused) and one output, the logits;
//! each node consumes the previous node's output and constants (initializers or `Constant`
//! outputs). The default-domain opset must be in [`MIN_OPSET`]`..=`[`MAX_OPSET`]: the
//! supported operators have the same semantics across that range (later versions only added
//! element types). Weights must be float32 and stored in the file (no external data).
//!
//! Untrusted input: the file size is checked before reading ([`MAX_ONNX_BYTES`]); a wire-format
//! pre-pass bounds counts ([`MAX_NODES`], [`MAX_INITIALIZERS`], attributes, ranks) and the
//! decoded size before `prost` allocates; tensor sizes go through
//! [`crate::checked_elements`]; nothing panics on malformed data.
//!
//! # Layout
//! - `proto.rs`: the `prost` messages (subset of `onnx.proto`, official field numbers).
//! - `wire.rs`: the allocation-free pre-pass that enforces the limits before decoding.
//! - `graph.rs`: opset, initializers, data input and output.
//! - `tensor.rs`: constants decoded to float32 / int64, external data and dtype checks.
//! - `node.rs`: a node's attributes and error context.
//! - `convert.rs`: the chain walk, constants, pooling, flatten, reshape, dropout.
//! - `linear.rs`: Gemm, MatMul, Conv and the folding of Add and BatchNormalization.
//! - `unsupported.rs`: refused operators and their messages.
//! - `error.rs`: [`OnnxError`].

mod convert;
mod error;
mod graph;
mod linear;
mod node;
pub mod proto;
mod tensor;
mod unsupported;
mod wire;

pub use error::{OnnxError, Result};
pub use unsupported::SUPPORTED;

use std::path::Path;

use prost::Message;

use crate::{Layer, Model};
use seco_core::fixed::FixedPoint;

/// Largest `.onnx` file read, in bytes (1 GiB; refused before reading).
pub const MAX_ONNX_BYTES: u64 = 1 << 30;
/// Largest number of nodes in the graph.
pub const MAX_NODES: usize = 8192;
/// Largest number of initializers in the graph.
pub const MAX_INITIALIZERS: usize = 8192;
/// Oldest supported default-domain opset.
pub const MIN_OPSET: i64 = 7;
/// Newest supported default-domain opset.
pub const MAX_OPSET: i64 = 25;

/// Options of an import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOptions {
    /// Name of the model (`model.json`'s `name`).
    pub name: String,
    /// Fixed-point parameters written into the model.
    pub fixed_point: FixedPoint,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            name: "imported".into(),
            fixed_point: FixedPoint::default(),
        }
    }
}

/// Reads and imports an `.onnx` file (size checked before reading).
pub fn import_file(path: impl AsRef<Path>, options: &ImportOptions) -> Result<Model> {
    let path = path.as_ref();
    let io = |error| OnnxError::Io {
        path: path.display().to_string(),
        error,
    };
    let size = std::fs::metadata(path).map_err(io)?.len();
    if size > MAX_ONNX_BYTES {
        return Err(OnnxError::FileTooLarge {
            path: path.display().to_string(),
            size,
            limit: MAX_ONNX_BYTES,
        });
    }
    let bytes = std::fs::read(path).map_err(io)?;
    import_bytes(&bytes, options)
}

/// Imports the bytes of an `.onnx` file.
pub fn import_bytes(bytes: &[u8], options: &ImportOptions) -> Result<Model> {
    let proto = decode(bytes)?;
    let g = match (&proto.graph, proto.ir_version) {
        (Some(g), ir) if ir > 0 => g,
        _ => return Err(OnnxError::corrupt("no IR version or no graph")),
    };
    let opset = graph::opset(&proto)?;
    let consts = graph::initializers(g)?;
    let (input, input_shape) = graph::data_input(g, &consts)?;
    let output = graph::output_name(g)?;
    let layers =
        convert::Converter::new(consts, input, input_shape.clone()).run(&g.node, output)?;
    let description = format!(
        "imported from ONNX (producer {:?} {:?}, opset {opset}): {}",
        proto.producer_name,
        proto.producer_version,
        summary(&layers)
    );
    Ok(Model::new(
        options.name.clone(),
        description,
        input_shape,
        options.fixed_point,
        layers,
    )?)
}

/// Decodes the protobuf after the limits of the wire pre-pass.
pub fn decode(bytes: &[u8]) -> Result<proto::ModelProto> {
    if bytes.len() as u64 > MAX_ONNX_BYTES {
        return Err(OnnxError::LimitExceeded {
            what: "file size in bytes".into(),
            found: bytes.len() as u64,
            limit: MAX_ONNX_BYTES,
        });
    }
    wire::check(bytes)?;
    proto::ModelProto::decode(bytes).map_err(OnnxError::corrupt)
}

fn summary(layers: &[Layer]) -> String {
    layers
        .iter()
        .map(Layer::kind)
        .collect::<Vec<_>>()
        .join(", ")
}

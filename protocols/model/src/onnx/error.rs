//! Errors of the ONNX importer.

use crate::ModelError;

/// Result alias of the ONNX importer.
pub type Result<T, E = OnnxError> = std::result::Result<T, E>;

/// Why an ONNX file cannot be imported. Every refusal names what is wrong; node errors name
/// the node's position in the graph, its op type and its name.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OnnxError {
    /// The file could not be read. (The OS error is part of the message rather than a
    /// `source`, so that a one-line `{:#}` report does not repeat it.)
    #[error("cannot read {path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        error: std::io::Error,
    },
    /// The file is larger than [`super::MAX_ONNX_BYTES`] (refused before reading it).
    #[error("{path}: file of {size} bytes exceeds the limit of {limit} bytes")]
    FileTooLarge {
        /// The file.
        path: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The bytes are not a well-formed ONNX protobuf (corrupt, truncated or another format).
    #[error("not a valid ONNX model (corrupt or truncated file): {reason}")]
    Corrupt {
        /// What the decoder found.
        reason: String,
    },
    /// A count or the estimated decoded size exceeds a limit of the importer.
    #[error("{what}: {found} exceeds the limit of {limit}")]
    LimitExceeded {
        /// What was counted.
        what: String,
        /// The count found.
        found: u64,
        /// The limit.
        limit: u64,
    },
    /// The model has no default-domain operator set, or one outside the supported range.
    #[error("unsupported opset: {reason} (supported: default domain, opset {min} to {max}); re-export with e.g. torch.onnx.export(..., opset_version=13)")]
    UnsupportedOpset {
        /// What was found.
        reason: String,
        /// Smallest supported version.
        min: i64,
        /// Largest supported version.
        max: i64,
    },
    /// An operator the importer cannot turn into a seco layer.
    #[error("node {index} ({op_type}{}): {reason}", node_name(name))]
    UnsupportedOp {
        /// Position of the node in the graph (0-based, Constant nodes included).
        index: usize,
        /// Node name (may be empty).
        name: String,
        /// Operator type.
        op_type: String,
        /// Why, and what to do instead.
        reason: String,
    },
    /// A supported operator used with attributes, inputs or shapes the importer cannot map.
    #[error("node {index} ({op_type}{}): {reason}", node_name(name))]
    UnsupportedNode {
        /// Position of the node in the graph (0-based, Constant nodes included).
        index: usize,
        /// Node name (may be empty).
        name: String,
        /// Operator type.
        op_type: String,
        /// What is not supported.
        reason: String,
    },
    /// A weight stored in an external file (`data_location = EXTERNAL`).
    #[error("tensor {tensor:?}: external data (file {location:?}) is not supported; save the model with its weights inside the .onnx file (onnx.save(model, path, save_as_external_data=False))")]
    ExternalData {
        /// Tensor name.
        tensor: String,
        /// The `location` entry, if any.
        location: String,
    },
    /// A weight or shape tensor with an element type the importer does not read.
    #[error("tensor {tensor:?}: element type {found} is not supported (expected {expected}); export the model in float32")]
    DataType {
        /// Tensor name.
        tensor: String,
        /// The element type found.
        found: &'static str,
        /// The element type expected.
        expected: &'static str,
    },
    /// A tensor's data does not match its dimensions.
    #[error("tensor {tensor:?}: {reason}")]
    BadTensor {
        /// Tensor name.
        tensor: String,
        /// What is wrong.
        reason: String,
    },
    /// The graph input has a dynamic (symbolic or unknown) dimension other than the batch.
    #[error("input {input:?}: dimension {axis} is dynamic ({dim}); only the batch dimension may be dynamic, export with a fixed input size")]
    DynamicShape {
        /// Input name.
        input: String,
        /// The axis (0 is the batch).
        axis: usize,
        /// The symbolic name, or `unknown`.
        dim: String,
    },
    /// The graph is not one the importer maps (inputs, outputs, not a linear chain).
    #[error("graph: {reason}")]
    Graph {
        /// What is wrong.
        reason: String,
    },
    /// The converted layers are not a valid seco model (e.g. a weight does not fit the ring at
    /// the requested `frac_bits`, or the first or last layer is not linear).
    #[error("converted model is invalid: {0}")]
    Model(ModelError),
}

impl From<ModelError> for OnnxError {
    fn from(e: ModelError) -> Self {
        Self::Model(e)
    }
}

fn node_name(name: &str) -> String {
    if name.is_empty() {
        String::new()
    } else {
        format!(" {name:?}")
    }
}

impl OnnxError {
    pub(crate) fn corrupt(reason: impl std::fmt::Display) -> Self {
        Self::Corrupt {
            reason: reason.to_string(),
        }
    }

    pub(crate) fn graph(reason: impl Into<String>) -> Self {
        Self::Graph {
            reason: reason.into(),
        }
    }
}

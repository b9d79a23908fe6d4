//! Errors of model loading, validation and inference.

use seco_core::fixed::FixedError;

/// Result alias of the model module.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;

/// Everything that can be wrong with a model file, a test set or an input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// A file could not be read or written.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// The OS error (shown in the message, so not chained as a source).
        error: std::io::Error,
    },
    /// A file is larger than the limit for its kind (refused before reading it).
    #[error("{path}: file of {size} bytes exceeds the limit of {limit} bytes")]
    FileTooLarge {
        /// The file.
        path: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The JSON manifest does not parse or does not match the schema.
    #[error("manifest: {0}")]
    Manifest(String),
    /// The manifest's `format` field names a format this version does not read.
    #[error("manifest: unsupported format {found:?} (expected {expected:?})")]
    UnsupportedFormat {
        /// What the file says.
        found: String,
        /// What we read.
        expected: &'static str,
    },
    /// A layer type that is not one of dense, conv2d, avgpool2d, maxpool2d, relu, flatten.
    #[error("layer {index}: unknown layer type {kind:?} (supported: dense, conv2d, avgpool2d, maxpool2d, relu, flatten)")]
    UnknownLayer {
        /// Position in the layer list.
        index: usize,
        /// The type string found.
        kind: String,
    },
    /// The safetensors file is corrupt or truncated.
    #[error("weights: {0}")]
    Weights(String),
    /// A tensor named by the manifest is absent from the weight file.
    #[error("weights: tensor {name:?} is missing")]
    MissingTensor {
        /// Tensor name.
        name: String,
    },
    /// A tensor has the wrong dtype.
    #[error("weights: tensor {name:?} has dtype {found}, expected {expected}")]
    WrongDtype {
        /// Tensor name.
        name: String,
        /// Found dtype.
        found: String,
        /// Expected dtype.
        expected: &'static str,
    },
    /// A tensor's shape disagrees with what the manifest implies.
    #[error("shape mismatch for {what}: expected {expected:?}, found {found:?}")]
    ShapeMismatch {
        /// What was being checked (tensor name or layer).
        what: String,
        /// Expected shape.
        expected: Vec<usize>,
        /// Found shape.
        found: Vec<usize>,
    },
    /// A weight or input value is NaN or infinite.
    #[error("{what}: element {index} is not finite ({value})")]
    NotFinite {
        /// Tensor or input name.
        what: String,
        /// Element index.
        index: usize,
        /// The value.
        value: f32,
    },
    /// A dimension is zero, or a product of dimensions exceeds the limit (checked before any
    /// allocation).
    #[error("{what}: dimensions {dims:?} are invalid or exceed the limit of {limit} elements")]
    BadDimensions {
        /// Which tensor or layer.
        what: String,
        /// The offending dimensions.
        dims: Vec<usize>,
        /// The element limit.
        limit: usize,
    },
    /// The layer sequence is not one the secure protocol can evaluate.
    #[error("layer {index} ({layer}): {reason}")]
    Structure {
        /// Position in the layer list.
        index: usize,
        /// Layer description.
        layer: String,
        /// Why it is refused.
        reason: String,
    },
    /// An input vector has the wrong length.
    #[error("input has {found} values, the model expects {expected}")]
    InputLength {
        /// Expected length.
        expected: usize,
        /// Found length.
        found: usize,
    },
    /// Fixed-point parameters or a quantization failed.
    #[error("fixed point: {0}")]
    Fixed(#[from] FixedError),
    /// A quantized weight does not fit the ring.
    #[error("{what}: {source}")]
    Quantize {
        /// Tensor name.
        what: String,
        /// The fixed-point error.
        #[source]
        source: FixedError,
    },
}

impl ModelError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.display().to_string(),
            error: source,
        }
    }
}

//! Operators the importer refuses, with the reason and what to do instead. The importer never
//! approximates an operator: the secure protocol evaluates linear layers under homomorphic
//! encryption and only ReLU and max pooling in garbled circuits (DESIGN.md s.4).

use super::error::Result;
use super::node::NodeCtx;

/// Operators the importer maps (Constant and constant Identity are handled before).
pub const SUPPORTED: &[&str] = &[
    "Gemm",
    "MatMul",
    "Add",
    "Conv",
    "BatchNormalization",
    "Relu",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "Flatten",
    "Reshape",
    "Dropout",
    "Identity",
    "Constant",
];

const ACTIVATIONS: &[&str] = &[
    "Sigmoid",
    "Tanh",
    "LeakyRelu",
    "PRelu",
    "Elu",
    "Selu",
    "Celu",
    "Gelu",
    "Erf",
    "HardSigmoid",
    "HardSwish",
    "Softplus",
    "Softsign",
    "Mish",
    "Swish",
    "Clip",
    "ThresholdedRelu",
    "Exp",
    "Log",
    "Sqrt",
    "Reciprocal",
    "Pow",
    "Abs",
    "Sin",
    "Cos",
];

const OUTPUT_OPS: &[&str] = &["Softmax", "LogSoftmax", "Hardmax", "ArgMax", "TopK"];

const SHAPE_OPS: &[&str] = &[
    "Shape",
    "Gather",
    "Concat",
    "Unsqueeze",
    "Squeeze",
    "Slice",
    "Cast",
    "ConstantOfShape",
    "Expand",
    "Range",
    "Size",
];

/// `Ok` if the operator is one the importer maps, else an error saying why not.
pub fn check_op(ctx: NodeCtx<'_>) -> Result<()> {
    let op = ctx.op();
    if SUPPORTED.contains(&op) {
        return Ok(());
    }
    let reason = if ACTIVATIONS.contains(&op) {
        format!(
            "{op} is not supported: only ReLU non-linearities can be evaluated securely; retrain with ReLU"
        )
    } else if OUTPUT_OPS.contains(&op) {
        format!(
            "{op} is not supported: the model must output the logits of its last linear layer; export it without the final {op} (the predicted class is the argmax of the logits)"
        )
    } else if SHAPE_OPS.contains(&op) {
        format!(
            "{op} is not supported: shape computations must be constant; export with a fixed input shape and constant folding (torch.onnx.export(..., do_constant_folding=True)), and flatten with torch.flatten(x, 1) or nn.Flatten"
        )
    } else {
        match op {
            "Transpose" => "Transpose is not supported: seco models are channels-first; export with NCHW input (for Keras: tf2onnx --inputs-as-nchw)".to_string(),
            "Mul" | "Sub" | "Div" => format!(
                "{op} is not supported: only bias additions (Add after MatMul, Gemm or Conv) and BatchNormalization are folded into linear layers"
            ),
            "Pad" => "Pad is not supported: use the pads attribute of Conv (symmetric zero padding)".to_string(),
            "ConvTranspose" | "Upsample" | "Resize" => format!(
                "{op} is not supported: seco supports Conv, pooling and dense layers only"
            ),
            _ => generic(op),
        }
    };
    Err(ctx.unsupported(reason))
}

/// The message for an operator without a specific one.
pub fn generic(op: &str) -> String {
    format!(
        "{op} is not supported (supported operators: {})",
        SUPPORTED.join(", ")
    )
}

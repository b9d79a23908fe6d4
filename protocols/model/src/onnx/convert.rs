//! Conversion of the node chain to seco layers: the walk (each node consumes the previous
//! node's output; every other input is a constant), constants, and the shape-only and
//! non-linear operators. The linear operators and the folding of biases and batch
//! normalization into them are in `linear.rs`.

use std::collections::{HashMap, HashSet};

use super::error::{OnnxError, Result};
use super::graph::is_default_domain;
use super::node::NodeCtx;
use super::proto::NodeProto;
use super::tensor::Const;
use super::unsupported;
use crate::{Layer, Pool2d};

/// State of the walk along the chain.
pub struct Converter<'a> {
    /// Initializers and `Constant` outputs by value name.
    pub(super) consts: HashMap<&'a str, Const<'a>>,
    /// Name of the activation: the output of the last node (initially the graph input).
    current: &'a str,
    /// Shape of the activation without the batch dimension.
    pub(super) shape: Vec<usize>,
    /// Layers emitted so far.
    pub(super) layers: Vec<Layer>,
    /// Whether the activation is the direct output of the last emitted Dense/Conv2d, so that a
    /// bias `Add` or a `BatchNormalization` can be folded into it.
    pub(super) foldable: bool,
    /// Names given to Dense/Conv2d layers (unique in a model).
    pub(super) names: HashSet<String>,
    /// Every value name defined so far (ONNX graphs are in SSA form).
    defined: HashSet<&'a str>,
}

impl<'a> Converter<'a> {
    /// Starts at the graph input.
    pub fn new(consts: HashMap<&'a str, Const<'a>>, input: &'a str, shape: Vec<usize>) -> Self {
        let mut defined: HashSet<&str> = consts.keys().copied().collect();
        defined.insert(input);
        Self {
            consts,
            current: input,
            shape,
            layers: Vec::new(),
            foldable: false,
            names: HashSet::new(),
            defined,
        }
    }

    /// Converts every node and checks that the chain ends at the graph output.
    pub fn run(mut self, nodes: &'a [NodeProto], output: &str) -> Result<Vec<Layer>> {
        for (index, node) in nodes.iter().enumerate() {
            self.node(NodeCtx { index, node })?;
        }
        if self.current != output {
            return Err(OnnxError::graph(format!(
                "the graph output {output:?} is not the output of the last node of the chain ({:?})",
                self.current
            )));
        }
        // A Flatten after the last linear layer (e.g. GlobalAveragePool + Flatten as the
        // head of an all-convolutional net) does not change the logits' values or order; the
        // model format wants the logits to be the last linear layer's output.
        while self.layers.len() > 1 && matches!(self.layers.last(), Some(Layer::Flatten)) {
            self.layers.pop();
        }
        if self.layers.is_empty() {
            return Err(OnnxError::graph("the graph computes no layer"));
        }
        Ok(self.layers)
    }

    fn node(&mut self, ctx: NodeCtx<'a>) -> Result<()> {
        if !is_default_domain(&ctx.node.domain) {
            return Err(ctx.unsupported(format!(
                "operators of domain {:?} are not supported (only the standard ONNX operators)",
                ctx.node.domain
            )));
        }
        match ctx.op() {
            "Constant" => return self.constant(ctx),
            "Identity" => {
                if let Some(c) = ctx.input(0).and_then(|i| self.consts.get(i)).cloned() {
                    // A constant passed through Identity (shared weights) stays a constant.
                    return self.define_const(ctx, c);
                }
            }
            _ => {}
        }
        unsupported::check_op(ctx)?;
        self.check_chain(ctx)?;
        match ctx.op() {
            "Gemm" => self.gemm(ctx)?,
            "MatMul" => self.matmul(ctx)?,
            "Add" => self.add(ctx)?,
            "Conv" => self.conv(ctx)?,
            "BatchNormalization" => self.batch_norm(ctx)?,
            "Relu" => {
                ctx.only_attrs(&[])?;
                self.push(ctx, Layer::Relu, false)?;
            }
            "MaxPool" | "AveragePool" => self.pool(ctx)?,
            "GlobalAveragePool" | "GlobalMaxPool" => self.global_pool(ctx)?,
            "Flatten" => self.flatten(ctx)?,
            "Reshape" => self.reshape(ctx)?,
            "Dropout" => self.dropout(ctx)?,
            "Identity" => ctx.only_attrs(&[])?,
            _ => return Err(ctx.unsupported(unsupported::generic(ctx.op()))),
        }
        self.advance(ctx)
    }

    /// Exactly one input is the activation (input 0, or input 0 or 1 for `Add`); every other
    /// given input is a constant.
    fn check_chain(&self, ctx: NodeCtx<'a>) -> Result<()> {
        let data_slots: &[usize] = if ctx.op() == "Add" { &[0, 1] } else { &[0] };
        let mut found = false;
        for (i, name) in ctx.node.input.iter().enumerate() {
            if name.is_empty() {
                continue;
            }
            if name == self.current && data_slots.contains(&i) && !found {
                found = true;
            } else if !self.consts.contains_key(name.as_str()) {
                return Err(ctx.err(format!(
                    "input {name:?} is neither the output of the previous node ({:?}) nor a constant: only linear chains of layers are supported (no branches or residual connections)",
                    self.current
                )));
            }
        }
        if !found {
            return Err(ctx.err(format!(
                "the node does not consume the output of the previous node ({:?}): only linear chains of layers are supported",
                self.current
            )));
        }
        Ok(())
    }

    /// Makes the node's first output the activation.
    fn advance(&mut self, ctx: NodeCtx<'a>) -> Result<()> {
        let out = self.define_outputs(ctx)?;
        self.current = out;
        Ok(())
    }

    fn define_outputs(&mut self, ctx: NodeCtx<'a>) -> Result<&'a str> {
        let out = ctx
            .node
            .output
            .first()
            .filter(|o| !o.is_empty())
            .ok_or_else(|| ctx.err("the node has no output"))?;
        for o in ctx.node.output.iter().filter(|o| !o.is_empty()) {
            if !self.defined.insert(o.as_str()) {
                return Err(ctx.err(format!("value {o:?} is defined twice")));
            }
        }
        Ok(out.as_str())
    }

    fn define_const(&mut self, ctx: NodeCtx<'a>, value: Const<'a>) -> Result<()> {
        let out = self.define_outputs(ctx)?;
        self.consts.insert(out, value);
        Ok(())
    }

    /// `Constant`: `value` (a tensor) or `value_float(s)` / `value_int(s)`.
    fn constant(&mut self, ctx: NodeCtx<'a>) -> Result<()> {
        let known = [
            "value",
            "value_float",
            "value_floats",
            "value_int",
            "value_ints",
        ];
        ctx.only_attrs(&known)?;
        if ctx.node.attribute.len() != 1 {
            return Err(ctx.err(format!("expected exactly one of {known:?}")));
        }
        let value = if let Some(t) = ctx.tensor("value")? {
            Const::Tensor(t)
        } else if let Some(v) = ctx.floats("value_floats")? {
            Const::Floats(vec![v.len()], v.to_vec())
        } else if let Some(v) = ctx.ints("value_ints")? {
            Const::Ints(v.to_vec())
        } else if ctx.node.attribute.iter().any(|a| a.name == "value_float") {
            Const::Floats(vec![], vec![ctx.float("value_float", 0.0)?])
        } else {
            Const::Ints(vec![ctx.int("value_int", 0)?])
        };
        self.define_const(ctx, value)
    }

    /// Appends a layer, updating the activation shape (the layer checks that it accepts it).
    pub(super) fn push(&mut self, ctx: NodeCtx<'_>, layer: Layer, foldable: bool) -> Result<()> {
        let shape = layer
            .output_shape(self.layers.len(), &self.shape)
            .map_err(|e| ctx.err(e.to_string()))?;
        self.layers.push(layer);
        self.shape = shape;
        self.foldable = foldable;
        Ok(())
    }

    /// The activation as `[C, H, W]`, or an error naming what the operator needs.
    pub(super) fn chw(&self, ctx: NodeCtx<'_>) -> Result<[usize; 3]> {
        match self.shape.as_slice() {
            [c, h, w] => Ok([*c, *h, *w]),
            other => Err(ctx.err(format!(
                "expects a [1, C, H, W] input, got [1, {}]",
                dims(other)
            ))),
        }
    }

    /// `MaxPool` / `AveragePool` without padding, floor mode (or ceil mode where it gives the
    /// same output size), dilation 1.
    fn pool(&mut self, ctx: NodeCtx<'_>) -> Result<()> {
        let is_max = ctx.op() == "MaxPool";
        let extra = if is_max {
            "storage_order"
        } else {
            "count_include_pad"
        };
        ctx.only_attrs(&[
            "auto_pad",
            "ceil_mode",
            "dilations",
            "kernel_shape",
            "pads",
            "strides",
            extra,
        ])?;
        let [_, h, w] = self.chw(ctx)?;
        let kernel = ctx.pair("kernel_shape", None)?;
        let stride = ctx.pair("strides", Some([1, 1]))?;
        if ctx.padding()? != [0, 0] {
            return Err(ctx.err("padded pooling is not supported: only pads = 0"));
        }
        ctx.unit_dilations()?;
        // ceil_mode only changes the output when the last window would be partial.
        let partial = (h >= kernel[0] && (h - kernel[0]) % stride[0] != 0)
            || (w >= kernel[1] && (w - kernel[1]) % stride[1] != 0);
        if ctx.int("ceil_mode", 0)? != 0 && partial {
            return Err(ctx.err("ceil_mode = 1 is not supported: only floor mode"));
        }
        let pool = Pool2d { kernel, stride };
        let layer = if is_max {
            Layer::MaxPool2d(pool)
        } else {
            Layer::AvgPool2d(pool)
        };
        self.push(ctx, layer, false)
    }

    /// `GlobalAveragePool` / `GlobalMaxPool`: one window over the whole `H x W`.
    fn global_pool(&mut self, ctx: NodeCtx<'_>) -> Result<()> {
        ctx.only_attrs(&[])?;
        let [_, h, w] = self.chw(ctx)?;
        let pool = Pool2d {
            kernel: [h, w],
            stride: [h, w],
        };
        let layer = if ctx.op() == "GlobalMaxPool" {
            Layer::MaxPool2d(pool)
        } else {
            Layer::AvgPool2d(pool)
        };
        self.push(ctx, layer, false)
    }

    /// `Flatten` with axis 1 (or 0, the same with batch 1): `[1, C, H, W]` to `[1, C*H*W]`.
    fn flatten(&mut self, ctx: NodeCtx<'_>) -> Result<()> {
        ctx.only_attrs(&["axis"])?;
        let rank = self.shape.len() as i64 + 1;
        let axis = ctx.int("axis", 1)?;
        let axis = if axis < 0 { axis + rank } else { axis };
        if axis != 0 && axis != 1 {
            return Err(ctx.err(format!(
                "axis = {axis} is not supported: only flattening to a vector (axis = 1)"
            )));
        }
        self.flatten_to_vector(ctx)
    }

    /// A `Flatten` layer, or nothing when the activation is already a vector.
    fn flatten_to_vector(&mut self, ctx: NodeCtx<'_>) -> Result<()> {
        if self.shape.len() > 1 {
            self.push(ctx, Layer::Flatten, false)?;
        }
        Ok(())
    }

    /// `Reshape` to a vector `[1, N]` (a flatten) or to the same shape (a no-op).
    fn reshape(&mut self, ctx: NodeCtx<'_>) -> Result<()> {
        ctx.only_attrs(&["allowzero"])?;
        let allow_zero = ctx.int("allowzero", 0)? != 0;
        let name = ctx
            .input(1)
            .ok_or_else(|| ctx.err("the shape input is missing"))?;
        let target = self.const_of(ctx, name)?.ints(name)?;
        let mut full = vec![1];
        full.extend(&self.shape);
        let resolved = resolve_reshape(&full, &target, allow_zero).ok_or_else(|| {
            ctx.err(format!(
                "shape {target:?} does not fit input [{}]",
                dims(&full)
            ))
        })?;
        let total: usize = self.shape.iter().product();
        if resolved == full {
            Ok(())
        } else if resolved == [1, total] {
            self.flatten_to_vector(ctx)
        } else {
            Err(ctx.err(format!(
                "reshape of [{}] to [{}] is not supported: only reshapes to a vector [1, N] (a flatten)",
                dims(&full),
                dims(&resolved)
            )))
        }
    }

    /// `Dropout` is the identity at inference, unless `training_mode` is set.
    fn dropout(&mut self, ctx: NodeCtx<'_>) -> Result<()> {
        ctx.only_attrs(&["ratio", "seed", "is_test"])?;
        if let Some(name) = ctx.input(2) {
            if self.const_of(ctx, name)?.flag(name)? {
                return Err(ctx.err("training_mode = true: export the model in eval mode"));
            }
        }
        Ok(())
    }

    /// Name of the activation value.
    pub(super) fn current_name(&self) -> &'a str {
        self.current
    }

    /// A constant input (the chain check already ensured it is one).
    pub(super) fn const_of(&self, ctx: NodeCtx<'_>, name: &str) -> Result<&Const<'a>> {
        self.consts
            .get(name)
            .ok_or_else(|| ctx.err(format!("input {name:?} must be a constant")))
    }
}

/// ONNX `Reshape` semantics on a static shape: `0` copies the input dimension (unless
/// `allowzero`), one `-1` is inferred. `None` if the target does not fit.
fn resolve_reshape(input: &[usize], target: &[i64], allow_zero: bool) -> Option<Vec<usize>> {
    let total: usize = input.iter().product();
    let mut out = Vec::with_capacity(target.len());
    let mut infer = None;
    for (i, &t) in target.iter().enumerate() {
        match t {
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            0 if !allow_zero => out.push(*input.get(i)?),
            t if t > 0 => out.push(usize::try_from(t).ok()?),
            _ => return None,
        }
    }
    let known = out.iter().try_fold(1usize, |a, &d| a.checked_mul(d))?;
    if let Some(i) = infer {
        if known == 0 || total % known != 0 {
            return None;
        }
        *out.get_mut(i)? = total / known;
    } else if known != total {
        return None;
    }
    Some(out)
}

/// `a, b, c` for error messages.
pub(super) fn dims(d: &[usize]) -> String {
    d.iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::resolve_reshape;

    #[test]
    fn reshape_resolution() {
        let input = [1, 4, 3, 3];
        assert_eq!(resolve_reshape(&input, &[1, -1], false), Some(vec![1, 36]));
        assert_eq!(resolve_reshape(&input, &[-1, 36], false), Some(vec![1, 36]));
        assert_eq!(resolve_reshape(&input, &[0, -1], false), Some(vec![1, 36]));
        assert_eq!(
            resolve_reshape(&input, &[0, 0, -1], false),
            Some(vec![1, 4, 9])
        );
        assert_eq!(resolve_reshape(&input, &[1, 35], false), None);
        assert_eq!(resolve_reshape(&input, &[-1, -1], false), None);
        assert_eq!(resolve_reshape(&input, &[0, -1], true), None);
        assert_eq!(resolve_reshape(&input, &[-2], false), None);
    }
}

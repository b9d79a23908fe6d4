//! Linear operators (`Gemm`, `MatMul`, `Conv`) and what is folded into them: a constant bias
//! `Add` and `BatchNormalization` (inference form). Folding keeps one seco layer per linear
//! operator, so the secure protocol evaluates exactly the layers the user trained.

use super::convert::{dims, Converter};
use super::error::Result;
use super::node::NodeCtx;
use super::tensor::Floats;
use crate::{Conv2d, Dense, Layer};

impl Converter<'_> {
    fn floats(
        &self,
        ctx: NodeCtx<'_>,
        slot: usize,
        what: &str,
    ) -> Result<Option<(String, Floats)>> {
        let Some(name) = ctx.input(slot) else {
            return Ok(None);
        };
        let values = self.const_of(ctx, name)?.floats(name)?;
        if values.data.is_empty() {
            return Err(ctx.err(format!("{what} {name:?} is empty")));
        }
        Ok(Some((name.to_string(), values)))
    }

    fn required(&self, ctx: NodeCtx<'_>, slot: usize, what: &str) -> Result<(String, Floats)> {
        self.floats(ctx, slot, what)?
            .ok_or_else(|| ctx.err(format!("the {what} input is missing")))
    }

    /// The 1-D activation length, or an error asking for a flatten first.
    fn features(&self, ctx: NodeCtx<'_>) -> Result<usize> {
        match self.shape.as_slice() {
            [k] => Ok(*k),
            other => Err(ctx.err(format!(
                "expects a [1, K] input, got [1, {}]: flatten the activation first",
                dims(other)
            ))),
        }
    }

    /// `Gemm`: `Y = alpha * A B' + beta * C` with `A` the activation; `B` is `[N, K]`
    /// (`transB = 1`, PyTorch's `nn.Linear`) or `[K, N]` (`transB = 0`, transposed here).
    pub(super) fn gemm(&mut self, ctx: NodeCtx<'_>) -> Result<()> {
        ctx.only_attrs(&["alpha", "beta", "transA", "transB"])?;
        if ctx.int("transA", 0)? != 0 {
            return Err(ctx.err("transA = 1 is not supported: the activation must be [1, K]"));
        }
        let k = self.features(ctx)?;
        let (wname, b) = self.required(ctx, 1, "weight")?;
        let trans_b = ctx.int("transB", 0)? != 0;
        let n = match (trans_b, b.dims.as_slice()) {
            (false, [bk, n]) | (true, [n, bk]) if *bk == k => *n,
            (_, other) => {
                return Err(ctx.err(format!(
                    "weight {wname:?} of shape [{}] (transB = {}) does not fit an input of {k} features",
                    dims(other),
                    u8::from(trans_b)
                )))
            }
        };
        let mut weight = if trans_b {
            b.data
        } else {
            transpose(&b.data, k, n)
        };
        let alpha = ctx.float("alpha", 1.0)?;
        let beta = ctx.float("beta", 1.0)?;
        let mut bias = vec![0.0; n];
        if let Some((bname, c)) = self.floats(ctx, 2, "bias")? {
            let c = per_channel(&c, &[1, n]).ok_or_else(|| {
                ctx.err(format!(
                    "bias {bname:?} of shape [{}] does not broadcast to [1, {n}] per output",
                    dims(&c.dims)
                ))
            })?;
            bias = c.iter().map(|v| v * beta).collect();
        }
        if alpha != 1.0 {
            weight.iter_mut().for_each(|w| *w *= alpha);
        }
        let name = self.layer_name(&wname, "dense");
        self.push_dense(ctx, name, k, n, weight, bias)
    }

    /// `MatMul` with the activation `[1, K]` on the left and a constant `[K, N]` on the right
    /// (transposed to seco's `[N, K]`); a following `Add` supplies the bias.
    pub(super) fn matmul(&mut self, ctx: NodeCtx<'_>) -> Result<()> {
        ctx.only_attrs(&[])?;
        let k = self.features(ctx)?;
        let (wname, b) = self.required(ctx, 1, "weight")?;
        let n = match b.dims.as_slice() {
            [bk, n] if *bk == k => *n,
            other => {
                return Err(ctx.err(format!(
                    "weight {wname:?} of shape [{}] is not a [{k}, N] matrix",
                    dims(other)
                )))
            }
        };
        let weight = transpose(&b.data, k, n);
        let name = self.layer_name(&wname, "dense");
        self.push_dense(ctx, name, k, n, weight, vec![0.0; n])
    }

    fn push_dense(
        &mut self,
        ctx: NodeCtx<'_>,
        name: String,
        in_features: usize,
        out_features: usize,
        weight: Vec<f32>,
        bias: Vec<f32>,
    ) -> Result<()> {
        let dense = Dense {
            name,
            in_features,
            out_features,
            weight,
            bias,
        };
        self.push(ctx, Layer::Dense(dense), true)
    }

    /// `Conv`: 2-D, `group = 1`, dilation 1, symmetric zero padding; weight
    /// `[M, C, kh, kw]` as seco's layout.
    pub(super) fn conv(&mut self, ctx: NodeCtx<'_>) -> Result<()> {
        ctx.only_attrs(&[
            "auto_pad",
            "dilations",
            "group",
            "kernel_shape",
            "pads",
            "strides",
        ])?;
        let [c, _, _] = self.chw(ctx)?;
        let group = ctx.int("group", 1)?;
        if group != 1 {
            return Err(ctx.err(format!(
                "group = {group} (grouped or depthwise convolution) is not supported: only group = 1"
            )));
        }
        ctx.unit_dilations()?;
        let padding = ctx.padding()?;
        let stride = ctx.pair("strides", Some([1, 1]))?;
        let (wname, w) = self.required(ctx, 1, "weight")?;
        let [m, wc, kh, kw] = match w.dims.as_slice() {
            [m, wc, kh, kw] => [*m, *wc, *kh, *kw],
            other => {
                return Err(ctx.err(format!(
                    "weight {wname:?} of shape [{}]: only 2-D convolutions ([M, C, kh, kw] weights) are supported",
                    dims(other)
                )))
            }
        };
        if wc != c {
            return Err(ctx.err(format!(
                "weight {wname:?} expects {wc} input channels, the input has {c}"
            )));
        }
        if ctx.pair("kernel_shape", Some([kh, kw]))? != [kh, kw] {
            return Err(ctx.err(format!(
                "kernel_shape does not match the weight's [{kh}, {kw}]"
            )));
        }
        let bias = self.vector_bias(ctx, m)?;
        let conv = Conv2d {
            name: self.layer_name(&wname, "conv"),
            in_channels: c,
            out_channels: m,
            kernel: [kh, kw],
            stride,
            padding,
            weight: w.data,
            bias,
        };
        self.push(ctx, Layer::Conv2d(conv), true)
    }

    /// The optional bias input (slot 2) of length `m`, zeros when absent.
    fn vector_bias(&self, ctx: NodeCtx<'_>, m: usize) -> Result<Vec<f32>> {
        match self.floats(ctx, 2, "bias")? {
            Some((_, b)) if b.dims == [m] => Ok(b.data),
            Some((name, b)) => Err(ctx.err(format!(
                "bias {name:?} of shape [{}] is not [{m}]",
                dims(&b.dims)
            ))),
            None => Ok(vec![0.0; m]),
        }
    }

    /// The Dense/Conv2d layer that produced the activation, for folding.
    fn foldable_layer(&mut self, ctx: NodeCtx<'_>) -> Result<&mut Layer> {
        let last = if self.foldable {
            self.layers.last_mut()
        } else {
            None
        };
        last.ok_or_else(|| {
            ctx.err(format!(
                "{} is only supported directly after MatMul, Gemm or Conv, into which it is folded",
                match ctx.op() {
                    "Add" => "Add (a bias addition)",
                    op => op,
                }
            ))
        })
    }

    /// A constant `Add` after a linear layer: added to its bias. The constant must broadcast
    /// to the activation and vary along the channel/feature axis only.
    pub(super) fn add(&mut self, ctx: NodeCtx<'_>) -> Result<()> {
        ctx.only_attrs(&[])?;
        let slot = if ctx.input(0) == Some(self.current_name()) {
            1
        } else {
            0
        };
        let (name, c) = self.required(ctx, slot, "addend")?;
        let mut full = vec![1];
        full.extend(&self.shape);
        let values = per_channel(&c, &full).ok_or_else(|| {
            ctx.err(format!(
                "constant {name:?} of shape [{}] is not a per-channel bias of [{}]",
                dims(&c.dims),
                dims(&full)
            ))
        })?;
        match self.foldable_layer(ctx)? {
            Layer::Dense(Dense { bias, .. }) | Layer::Conv2d(Conv2d { bias, .. }) => {
                bias.iter_mut().zip(&values).for_each(|(b, v)| *b += v);
            }
            _ => {}
        }
        Ok(())
    }

    /// `BatchNormalization` (inference): `y = scale * (x - mean) / sqrt(var + eps) + B` per
    /// channel, folded into the preceding layer: row `c` of the weight times
    /// `s = scale / sqrt(var + eps)`, bias `(b - mean) * s + B` (computed in f64).
    pub(super) fn batch_norm(&mut self, ctx: NodeCtx<'_>) -> Result<()> {
        ctx.only_attrs(&["epsilon", "momentum", "spatial", "training_mode", "is_test"])?;
        if ctx.int("training_mode", 0)? != 0 || ctx.int("spatial", 1)? != 1 {
            return Err(
                ctx.err("training_mode = 1 or spatial = 0 is not supported: export in eval mode")
            );
        }
        let eps = f64::from(ctx.float("epsilon", 1e-5)?);
        let channels = self.shape.first().copied().unwrap_or(0);
        let mut params = Vec::with_capacity(4);
        for (slot, what) in [(1, "scale"), (2, "B"), (3, "mean"), (4, "var")] {
            let (name, v) = self.required(ctx, slot, what)?;
            if v.dims != [channels] {
                return Err(ctx.err(format!(
                    "{what} {name:?} of shape [{}] is not [{channels}]",
                    dims(&v.dims)
                )));
            }
            params.push(v.data);
        }
        let (scale, shift) =
            bn_affine(&params, eps).ok_or_else(|| ctx.err("var + epsilon must be positive"))?;
        let (weight, bias) = match self.foldable_layer(ctx)? {
            Layer::Dense(Dense { weight, bias, .. })
            | Layer::Conv2d(Conv2d { weight, bias, .. }) => (weight, bias),
            _ => return Ok(()),
        };
        let row = weight.len() / channels.max(1);
        let rows = weight.chunks_mut(row.max(1)).zip(bias.iter_mut());
        for ((w, b), (s, t)) in rows.zip(scale.iter().zip(&shift)) {
            w.iter_mut().for_each(|v| *v = (f64::from(*v) * s) as f32);
            *b = (f64::from(*b) * s + t) as f32;
        }
        Ok(())
    }

    /// A unique layer name: the weight's name without `.weight` (PyTorch module names), else
    /// `dense1`, `conv2`, ...
    pub(super) fn layer_name(&mut self, weight: &str, kind: &str) -> String {
        let base = match weight.strip_suffix(".weight") {
            Some(stem) if !stem.is_empty() => stem.to_string(),
            _ => {
                let n = self
                    .layers
                    .iter()
                    .filter(|l| l.kind().starts_with(kind))
                    .count()
                    + 1;
                format!("{kind}{n}")
            }
        };
        let mut name = base.clone();
        let mut i = 2;
        while self.names.contains(&name) {
            name = format!("{base}_{i}");
            i += 1;
        }
        self.names.insert(name.clone());
        name
    }
}

/// `x` (`[rows, cols]`, row-major) transposed to `[cols, rows]`.
fn transpose(x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    (0..cols)
        .flat_map(|c| (0..rows).map(move |r| x.get(r * cols + c).copied().unwrap_or(0.0)))
        .collect()
}

/// Per-channel values of a constant broadcast to `full` (`[1, C, ...]`): the constant's dims,
/// right-aligned, must be 1 everywhere except possibly on axis 1 where they may equal `C`.
fn per_channel(c: &Floats, full: &[usize]) -> Option<Vec<f32>> {
    let channels = *full.get(1)?;
    let offset = full.len().checked_sub(c.dims.len())?;
    let mut along_channel = false;
    for (i, &d) in c.dims.iter().enumerate() {
        let axis = i + offset;
        match d {
            1 => {}
            d if axis == 1 && d == channels => along_channel = true,
            _ => return None,
        }
    }
    match (along_channel, c.data.as_slice()) {
        (true, data) if data.len() == channels => Some(data.to_vec()),
        (false, [v]) => Some(vec![*v; channels]),
        _ => None,
    }
}

/// `(s, t)` per channel with `y = s * x + t` from `[scale, B, mean, var]`.
fn bn_affine(p: &[Vec<f32>], eps: f64) -> Option<(Vec<f64>, Vec<f64>)> {
    let [scale, b, mean, var] = p else {
        return None;
    };
    let mut s = Vec::with_capacity(scale.len());
    let mut t = Vec::with_capacity(scale.len());
    for c in 0..scale.len() {
        let v = f64::from(*var.get(c)?) + eps;
        if v.is_nan() || v <= 0.0 {
            return None;
        }
        let sc = f64::from(*scale.get(c)?) / v.sqrt();
        s.push(sc);
        t.push(f64::from(*b.get(c)?) - f64::from(*mean.get(c)?) * sc);
    }
    Some((s, t))
}

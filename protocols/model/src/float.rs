//! Float inference (f64 accumulation), the baseline the fixed-point reference is compared to.

use super::error::{ModelError, Result};
use super::layer::{Conv2d, Dense, Layer, Pool2d};
use super::shape::chw;
use super::Model;

impl Model {
    /// Float logits for one input (length = product of `input_shape`).
    pub fn predict_float(&self, x: &[f32]) -> Result<Vec<f64>> {
        if x.len() != self.input_len() {
            return Err(ModelError::InputLength {
                expected: self.input_len(),
                found: x.len(),
            });
        }
        if let Some((index, &value)) = x.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(ModelError::NotFinite {
                what: "input".into(),
                index,
                value,
            });
        }
        let mut cur: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
        let mut shape = self.input_shape.clone();
        for (i, layer) in self.layers.iter().enumerate() {
            cur = match layer {
                Layer::Dense(d) => dense(d, &cur),
                Layer::Conv2d(c) => conv(c, &shape, &cur),
                Layer::AvgPool2d(p) => {
                    pool(p, &shape, &cur, |w| w.iter().sum::<f64>() / w.len() as f64)
                }
                Layer::MaxPool2d(p) => pool(p, &shape, &cur, |w| {
                    w.iter().copied().fold(f64::NEG_INFINITY, f64::max)
                }),
                Layer::Relu => cur.iter().map(|&v| v.max(0.0)).collect(),
                Layer::Flatten => cur,
            };
            shape = layer.output_shape(i, &shape)?;
        }
        Ok(cur)
    }
}

fn dense(d: &Dense, x: &[f64]) -> Vec<f64> {
    d.weight
        .chunks_exact(d.in_features)
        .zip(&d.bias)
        .map(|(row, &b)| {
            row.iter()
                .zip(x)
                .map(|(&w, &v)| f64::from(w) * v)
                .sum::<f64>()
                + f64::from(b)
        })
        .collect()
}

fn conv(c: &Conv2d, shape: &[usize], x: &[f64]) -> Vec<f64> {
    let [ic, h, w] = chw(shape).unwrap_or_default();
    let [kh, kw] = c.kernel;
    let oh = (h + 2 * c.padding[0] - kh) / c.stride[0] + 1;
    let ow = (w + 2 * c.padding[1] - kw) / c.stride[1] + 1;
    let mut out = Vec::with_capacity(c.out_channels * oh * ow);
    for o in 0..c.out_channels {
        for oy in 0..oh {
            for ox in 0..ow {
                let mut acc = f64::from(c.bias[o]);
                for i in 0..ic {
                    for ky in 0..kh {
                        for kx in 0..kw {
                            let y = (oy * c.stride[0] + ky).checked_sub(c.padding[0]);
                            let xx = (ox * c.stride[1] + kx).checked_sub(c.padding[1]);
                            if let (Some(y), Some(xx)) = (y, xx) {
                                if y < h && xx < w {
                                    let wv = c.weight[((o * ic + i) * kh + ky) * kw + kx];
                                    acc += f64::from(wv) * x[(i * h + y) * w + xx];
                                }
                            }
                        }
                    }
                }
                out.push(acc);
            }
        }
    }
    out
}

fn pool(p: &Pool2d, shape: &[usize], x: &[f64], reduce: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    let [c, h, w] = chw(shape).unwrap_or_default();
    let [kh, kw] = p.kernel;
    let (oh, ow) = ((h - kh) / p.stride[0] + 1, (w - kw) / p.stride[1] + 1);
    let mut out = Vec::with_capacity(c * oh * ow);
    let mut win = Vec::with_capacity(kh * kw);
    for ch in 0..c {
        for oy in 0..oh {
            for ox in 0..ow {
                win.clear();
                for ky in 0..kh {
                    for kx in 0..kw {
                        win.push(x[(ch * h + oy * p.stride[0] + ky) * w + ox * p.stride[1] + kx]);
                    }
                }
                out.push(reduce(&win));
            }
        }
    }
    out
}

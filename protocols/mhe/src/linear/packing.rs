//! Public packing of a linear layer (Cheetah, Huang et al., USENIX Security 2022, s.4.1 "HomFC"
//! and s.4.2 "HomConv"): the input layout, the output layout, and where each weight goes in
//! the plaintext polynomials. Everything here depends on shapes only, so the owner, the other
//! servers and (for the first layer) the user compute the same layouts.
//!
//! All three kinds share one geometry: a block of the input occupies `B` consecutive
//! coefficients of an input ciphertext; the weights of one output unit `g` form a "reversed"
//! kernel at offset `g*B + O - (input offset)`; the product coefficient `g*B + O + p` then holds
//! the dot product of that kernel with the input window at `p`. Output units spaced `B` apart
//! do not collide, and `M*B <= N` keeps the negacyclic wrap-around out of the result
//! coefficients (it only lands below `O`).

use super::super::error::{MheError, Result};
use super::super::layout::{Layout, Slot};
use super::LinearShape;

/// The per-kind geometry of a packing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Geometry {
    /// HomFC: input chunks of `l` values (`l <= N`), `m = N / l` output rows per ciphertext.
    Dense { l: usize, m: usize },
    /// HomConv: padded planes `hp x wp`, `cn` input channels per ciphertext (block length
    /// `b = cn*hp*wp`), `mn = N / b` output channels per product, offset `o`.
    Conv {
        hp: usize,
        wp: usize,
        cn: usize,
        b: usize,
        mn: usize,
        o: usize,
    },
    /// Depthwise window sum (average pooling): `cn` channels of `h x w` per ciphertext, one
    /// kernel polynomial for all channels, offset `o`.
    Pool { cn: usize, hw: usize, o: usize },
}

/// The public packing of one linear layer at one ring degree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerPacking {
    /// The layer's shape.
    pub shape: LinearShape,
    /// Layout of the layer's input (its mask `r` is encrypted in this layout).
    pub input: Layout,
    /// Layout of the layer's output in the product ciphertexts.
    pub output: Layout,
    pub(crate) geom: Geometry,
}

impl LayerPacking {
    /// The packing of `shape` for ring degree `degree`.
    pub fn new(shape: &LinearShape, degree: usize) -> Result<Self> {
        shape.check().map_err(|reason| MheError::Shape { reason })?;
        match *shape {
            LinearShape::Dense {
                in_features,
                out_features,
            } => Ok(dense(shape, in_features, out_features, degree)),
            LinearShape::Conv2d {
                in_shape,
                out_channels,
                kernel,
                stride,
                padding,
            } => conv(
                shape,
                in_shape,
                out_channels,
                kernel,
                stride,
                padding,
                degree,
            ),
            LinearShape::AvgPool2d {
                in_shape,
                kernel,
                stride,
            } => pool(shape, in_shape, kernel, stride, degree),
        }
    }

    /// Number of input ciphertexts.
    pub fn num_in_cts(&self) -> usize {
        self.input.num_cts
    }

    /// Number of output ciphertexts (each goes through encryption-to-shares).
    pub fn num_out_cts(&self) -> usize {
        self.output.num_cts
    }

    /// The signed coefficients of the weight polynomial for output ciphertext `k` and input
    /// ciphertext `j` (`None` if it is zero), from the layer's weights.
    pub(crate) fn weight_coeffs(&self, weight: &[i64], k: usize, j: usize) -> Option<Vec<i64>> {
        let mut w = vec![0i64; self.input.degree];
        let mut any = false;
        let mut put = |idx: usize, v: i64| {
            w[idx] += v;
            any |= v != 0;
        };
        match (&self.geom, &self.shape) {
            (
                &Geometry::Dense { l, m },
                &LinearShape::Dense {
                    in_features,
                    out_features,
                },
            ) => dense_terms(weight, [in_features, out_features], l, m, k, j, &mut put),
            (
                g @ Geometry::Conv { .. },
                LinearShape::Conv2d {
                    in_shape,
                    out_channels,
                    kernel,
                    ..
                },
            ) => conv_terms(
                weight,
                g,
                [in_shape[0], *out_channels],
                *kernel,
                k,
                j,
                &mut put,
            ),
            (
                &Geometry::Pool { o, .. },
                LinearShape::AvgPool2d {
                    in_shape, kernel, ..
                },
            ) => {
                if j != k {
                    return None;
                }
                // One kernel for every channel of the block (depthwise window sum).
                for a in 0..kernel[0] {
                    for bb in 0..kernel[1] {
                        put(o - a * in_shape[2] - bb, weight[0]);
                    }
                }
            }
            _ => return None,
        }
        any.then_some(w)
    }
}

/// HomFC terms: row `o = k*m + i`, column `c = j*l + li` goes to coefficient `i*l + l-1-li`.
fn dense_terms(
    weight: &[i64],
    [nin, nout]: [usize; 2],
    l: usize,
    m: usize,
    k: usize,
    j: usize,
    put: &mut impl FnMut(usize, i64),
) {
    for i in 0..m {
        let o = k * m + i;
        if o >= nout {
            break;
        }
        for li in 0..l {
            let c = j * l + li;
            if c >= nin {
                break;
            }
            put(i * l + l - 1 - li, weight[o * nin + c]);
        }
    }
}

/// HomConv terms: output channel `oc = k*mn + i`, input channel `c = j*cn + cl`, tap `(a, bb)`
/// goes to coefficient `i*b + o - cl*hp*wp - a*wp - bb`.
fn conv_terms(
    weight: &[i64],
    geom: &Geometry,
    [c_total, out_channels]: [usize; 2],
    kernel: [usize; 2],
    k: usize,
    j: usize,
    put: &mut impl FnMut(usize, i64),
) {
    let &Geometry::Conv {
        hp,
        wp,
        cn,
        b,
        mn,
        o,
    } = geom
    else {
        return;
    };
    for i in 0..mn {
        let oc = k * mn + i;
        if oc >= out_channels {
            break;
        }
        for cl in 0..cn {
            let c = j * cn + cl;
            if c >= c_total {
                break;
            }
            for a in 0..kernel[0] {
                for bb in 0..kernel[1] {
                    let wi = ((oc * c_total + c) * kernel[0] + a) * kernel[1] + bb;
                    put(i * b + o - cl * hp * wp - a * wp - bb, weight[wi]);
                }
            }
        }
    }
}

fn slot(ct: usize, coeff: usize) -> Slot {
    Slot {
        ct: ct as u32,
        coeff: coeff as u32,
    }
}

fn dense(shape: &LinearShape, nin: usize, nout: usize, degree: usize) -> LayerPacking {
    let l = nin.min(degree);
    let m = degree / l;
    let input = Layout {
        degree,
        num_cts: nin.div_ceil(l),
        slots: (0..nin).map(|c| slot(c / l, c % l)).collect(),
    };
    let output = Layout {
        degree,
        num_cts: nout.div_ceil(m),
        slots: (0..nout)
            .map(|o| slot(o / m, (o % m) * l + l - 1))
            .collect(),
    };
    LayerPacking {
        shape: shape.clone(),
        input,
        output,
        geom: Geometry::Dense { l, m },
    }
}

fn conv(
    shape: &LinearShape,
    [c, h, w]: [usize; 3],
    oc: usize,
    kernel: [usize; 2],
    stride: [usize; 2],
    pad: [usize; 2],
    degree: usize,
) -> Result<LayerPacking> {
    let (hp, wp) = (h + 2 * pad[0], w + 2 * pad[1]);
    if hp * wp > degree {
        return Err(MheError::Shape {
            reason: "a padded input plane exceeds the ring degree (row splitting not implemented)",
        });
    }
    let cn = c.min(degree / (hp * wp));
    let b = cn * hp * wp;
    let mn = degree / b;
    let o = (cn - 1) * hp * wp + (kernel[0] - 1) * wp + kernel[1] - 1;
    let (oh, ow) = (
        (hp - kernel[0]) / stride[0] + 1,
        (wp - kernel[1]) / stride[1] + 1,
    );
    let mut in_slots = Vec::with_capacity(c * h * w);
    for ch in 0..c {
        for y in 0..h {
            for x in 0..w {
                let coeff = (ch % cn) * hp * wp + (y + pad[0]) * wp + x + pad[1];
                in_slots.push(slot(ch / cn, coeff));
            }
        }
    }
    let mut out_slots = Vec::with_capacity(oc * oh * ow);
    for och in 0..oc {
        for y in 0..oh {
            for x in 0..ow {
                let coeff = (och % mn) * b + o + y * stride[0] * wp + x * stride[1];
                out_slots.push(slot(och / mn, coeff));
            }
        }
    }
    Ok(LayerPacking {
        shape: shape.clone(),
        input: Layout {
            degree,
            num_cts: c.div_ceil(cn),
            slots: in_slots,
        },
        output: Layout {
            degree,
            num_cts: oc.div_ceil(mn),
            slots: out_slots,
        },
        geom: Geometry::Conv {
            hp,
            wp,
            cn,
            b,
            mn,
            o,
        },
    })
}

fn pool(
    shape: &LinearShape,
    [c, h, w]: [usize; 3],
    kernel: [usize; 2],
    stride: [usize; 2],
    degree: usize,
) -> Result<LayerPacking> {
    let hw = h * w;
    if hw > degree {
        return Err(MheError::Shape {
            reason: "an input plane exceeds the ring degree",
        });
    }
    let cn = c.min(degree / hw);
    let o = (kernel[0] - 1) * w + kernel[1] - 1;
    let (oh, ow) = (
        (h - kernel[0]) / stride[0] + 1,
        (w - kernel[1]) / stride[1] + 1,
    );
    let input = Layout {
        degree,
        num_cts: c.div_ceil(cn),
        slots: (0..c * hw)
            .map(|i| slot(i / hw / cn, (i / hw % cn) * hw + i % hw))
            .collect(),
    };
    let mut out_slots = Vec::with_capacity(c * oh * ow);
    for ch in 0..c {
        for y in 0..oh {
            for x in 0..ow {
                let coeff = (ch % cn) * hw + o + y * stride[0] * w + x * stride[1];
                out_slots.push(slot(ch / cn, coeff));
            }
        }
    }
    let output = Layout {
        degree,
        num_cts: input.num_cts,
        slots: out_slots,
    };
    Ok(LayerPacking {
        shape: shape.clone(),
        input,
        output,
        geom: Geometry::Pool { cn, hw, o },
    })
}

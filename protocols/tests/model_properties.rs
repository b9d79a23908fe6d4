//! Property tests of the fixed-point reference and of split plans.
//!
//! The reference (u64 ring arithmetic, `protocols/model/src/`) is compared with a
//! straightforward signed model written here from the semantics in `docs/fixed-point.md`:
//! exact `i128` sums, then a wrap to `k` bits, floor division for truncation.

use proptest::prelude::*;
use seco_protocols::fixed::FixedPoint;
use seco_protocols::model::{Conv2d, Dense, Layer, Model, Pool2d};
use seco_protocols::plan::{assemble, SplitPlan};

/// Wraps an exact integer to a signed k-bit value.
fn wrap(fp: FixedPoint, v: i128) -> i128 {
    let m = 1i128 << fp.ring_bits;
    let r = v.rem_euclid(m);
    if r >= m / 2 {
        r - m
    } else {
        r
    }
}

fn q(v: f32, scale: u32) -> i128 {
    (f64::from(v) * f64::powi(2.0, scale as i32)).round() as i128
}

/// The straightforward model: one function, direct loops, signed values.
fn naive(model: &Model, x: &[f32]) -> Vec<i64> {
    let fp = model.fixed_point;
    let f = fp.frac_bits;
    let mut cur: Vec<i128> = x.iter().map(|&v| wrap(fp, q(v, f))).collect();
    let mut shape = model.input_shape.clone();
    for (i, layer) in model.layers.iter().enumerate() {
        let out_shape = layer.output_shape(i, &shape).unwrap();
        let linear = layer.is_linear();
        cur = match layer {
            Layer::Dense(d) => (0..d.out_features)
                .map(|o| {
                    let s: i128 = (0..d.in_features)
                        .map(|j| q(d.weight[o * d.in_features + j], f) * cur[j])
                        .sum();
                    s + q(d.bias[o], 2 * f)
                })
                .collect(),
            Layer::Conv2d(c) => naive_conv(fp, c, &shape, &out_shape, &cur),
            Layer::AvgPool2d(p) => {
                let coeff = q(1.0 / (p.kernel[0] * p.kernel[1]) as f32, f);
                naive_pool(p, &shape, &out_shape, &cur, |w| {
                    coeff * w.iter().sum::<i128>()
                })
            }
            Layer::MaxPool2d(p) => {
                naive_pool(p, &shape, &out_shape, &cur, |w| *w.iter().max().unwrap())
            }
            Layer::Relu => cur.iter().map(|&v| v.max(0)).collect(),
            Layer::Flatten => cur,
        };
        if linear {
            // Wrap the exact sum, then truncate (floor division), then wrap again.
            cur = cur
                .iter()
                .map(|&v| wrap(fp, wrap(fp, v).div_euclid(1i128 << f)))
                .collect();
        }
        shape = out_shape;
    }
    cur.iter().map(|&v| v as i64).collect()
}

fn naive_conv(fp: FixedPoint, c: &Conv2d, ins: &[usize], outs: &[usize], x: &[i128]) -> Vec<i128> {
    let (ic, h, w) = (ins[0] as i64, ins[1] as i64, ins[2] as i64);
    let (oc, oh, ow) = (outs[0], outs[1], outs[2]);
    let (kh, kw) = (c.kernel[0], c.kernel[1]);
    let mut out = Vec::new();
    for o in 0..oc {
        for oy in 0..oh {
            for ox in 0..ow {
                let mut s = q(c.bias[o], 2 * fp.frac_bits);
                for i in 0..ic as usize {
                    for ky in 0..kh {
                        for kx in 0..kw {
                            let y = (oy * c.stride[0] + ky) as i64 - c.padding[0] as i64;
                            let xx = (ox * c.stride[1] + kx) as i64 - c.padding[1] as i64;
                            if y < 0 || xx < 0 || y >= h || xx >= w {
                                continue;
                            }
                            let wv = c.weight[((o * ic as usize + i) * kh + ky) * kw + kx];
                            s += q(wv, fp.frac_bits) * x[((i as i64 * h + y) * w + xx) as usize];
                        }
                    }
                }
                out.push(s);
            }
        }
    }
    out
}

fn naive_pool(
    p: &Pool2d,
    ins: &[usize],
    outs: &[usize],
    x: &[i128],
    reduce: impl Fn(&[i128]) -> i128,
) -> Vec<i128> {
    let (h, w) = (ins[1], ins[2]);
    let mut out = Vec::new();
    for c in 0..outs[0] {
        for oy in 0..outs[1] {
            for ox in 0..outs[2] {
                let mut win = Vec::new();
                for ky in 0..p.kernel[0] {
                    for kx in 0..p.kernel[1] {
                        win.push(x[(c * h + oy * p.stride[0] + ky) * w + ox * p.stride[1] + kx]);
                    }
                }
                out.push(reduce(&win));
            }
        }
    }
    out
}

fn weights(n: usize) -> impl Strategy<Value = Vec<f32>> {
    prop::collection::vec(-2.0f32..2.0, n)
}

/// A random image model: conv -> relu -> [maxpool | avgpool] -> flatten -> dense [-> relu -> dense].
fn image_model() -> impl Strategy<Value = (Model, Vec<f32>)> {
    (
        1usize..3,
        2usize..4,
        6usize..10,
        1usize..4,
        1usize..3,
        0usize..2,
        any::<bool>(),
        8u32..12,
    )
        .prop_flat_map(|(ic, oc, hw, k, s, p, maxpool, f)| {
            let conv_out = (hw + 2 * p - k) / s + 1;
            let pooled = conv_out / 2;
            let flat = oc * pooled * pooled;
            (
                weights(oc * ic * k * k),
                weights(oc),
                weights(3 * flat),
                weights(3),
                weights(ic * hw * hw),
                Just((ic, oc, hw, k, s, p, maxpool, f, flat)),
            )
        })
        .prop_map(
            |(cw, cb, dw, db, x, (ic, oc, hw, k, s, p, maxpool, f, flat))| {
                let pool = Pool2d {
                    kernel: [2, 2],
                    stride: [2, 2],
                };
                let layers = vec![
                    Layer::Conv2d(Conv2d {
                        name: "conv".into(),
                        in_channels: ic,
                        out_channels: oc,
                        kernel: [k, k],
                        stride: [s, s],
                        padding: [p, p],
                        weight: cw,
                        bias: cb,
                    }),
                    Layer::Relu,
                    if maxpool {
                        Layer::MaxPool2d(pool)
                    } else {
                        Layer::AvgPool2d(pool)
                    },
                    Layer::Flatten,
                    Layer::Dense(Dense {
                        name: "fc".into(),
                        in_features: flat,
                        out_features: 3,
                        weight: dw,
                        bias: db,
                    }),
                ];
                let fp = FixedPoint::new(32, f).unwrap();
                (
                    Model::new("img".into(), String::new(), vec![ic, hw, hw], fp, layers).unwrap(),
                    x,
                )
            },
        )
}

/// A random MLP with 2 to 4 dense layers.
fn mlp_model() -> impl Strategy<Value = (Model, Vec<f32>)> {
    (
        prop::collection::vec(1usize..12, 3..6),
        6u32..12,
        any::<bool>(),
    )
        .prop_flat_map(|(dims, f, small_ring)| {
            let ws: Vec<_> = dims.windows(2).map(|d| weights(d[0] * d[1])).collect();
            let bs: Vec<_> = dims[1..].iter().map(|&d| weights(d)).collect();
            (ws, bs, weights(dims[0]), Just((dims, f, small_ring)))
        })
        .prop_map(|(ws, bs, x, (dims, f, small_ring))| {
            let mut layers = Vec::new();
            for (i, (w, b)) in ws.into_iter().zip(bs).enumerate() {
                if i > 0 {
                    layers.push(Layer::Relu);
                }
                layers.push(Layer::Dense(Dense {
                    name: format!("fc{i}"),
                    in_features: dims[i],
                    out_features: dims[i + 1],
                    weight: w,
                    bias: b,
                }));
            }
            // A small ring makes wrap-around common, which the semantics must also pin down.
            let fp = FixedPoint::new(if small_ring { 24 } else { 32 }, f).unwrap();
            (
                Model::new("mlp".into(), String::new(), vec![dims[0]], fp, layers).unwrap(),
                x,
            )
        })
}

fn check_reference(model: &Model, x: &[f32]) {
    let q = model.quantize().unwrap();
    let ours: Vec<i64> = q
        .infer(&model.encode_input(x).unwrap())
        .unwrap()
        .iter()
        .map(|&v| model.fixed_point.to_signed(v))
        .collect();
    assert_eq!(ours, naive(model, x));
}

fn check_split(model: &Model, x: &[f32], n_servers: usize) {
    let q = model.quantize().unwrap();
    let servers: Vec<String> = (0..n_servers).map(|i| format!("s{i}")).collect();
    let plan = SplitPlan::balanced(&q, &servers).unwrap();
    let parts: Vec<_> = (0..n_servers)
        .map(|i| plan.server_part(&q, i).unwrap())
        .collect();
    for (i, part) in parts.iter().enumerate() {
        // A server holds weights only of the stages it owns.
        assert!(part.owned.iter().all(|(s, _)| plan.owners[*s] == i));
    }
    let rebuilt = assemble(&parts).unwrap();
    let enc = model.encode_input(x).unwrap();
    assert_eq!(rebuilt.infer(&enc).unwrap(), q.infer(&enc).unwrap());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn reference_matches_naive_on_random_mlps((model, x) in mlp_model()) {
        check_reference(&model, &x);
    }

    #[test]
    fn reference_matches_naive_on_random_cnns((model, x) in image_model()) {
        check_reference(&model, &x);
    }

    #[test]
    fn split_parts_reproduce_the_model((model, x) in mlp_model(), n in 2usize..6) {
        check_split(&model, &x, n);
    }

    #[test]
    fn split_parts_reproduce_cnns((model, x) in image_model(), n in 2usize..4) {
        check_split(&model, &x, n);
    }
}

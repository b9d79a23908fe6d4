//! Shared harness for the `mhe_*` integration tests: run collective keygen among n parties in a
//! plain loop (seeded RNG), with a router that can reorder deliveries.
#![allow(dead_code)]

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use seco_protocols::mhe::{
    CollectiveKeygen, KeygenConfig, KeygenMsg, Outgoing, ParamId, PartyId, PublicKey,
    SecretKeyShare, To,
};

pub fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// Runs keygen among n parties; deliveries are shuffled with `rng`. Messages also make a round
/// trip through their byte encoding.
pub fn keygen(param: ParamId, n: usize, rng: &mut ChaCha20Rng) -> (Vec<SecretKeyShare>, PublicKey) {
    let params = param.params().unwrap();
    let mut parties: Vec<CollectiveKeygen> = (0..n)
        .map(|me| {
            let cfg = KeygenConfig {
                param,
                n,
                me: me as PartyId,
                context: [7u8; 32],
            };
            CollectiveKeygen::new(cfg, rng).unwrap()
        })
        .collect();
    let mut queue: Vec<(PartyId, PartyId, Vec<u8>)> = Vec::new();
    let push = |queue: &mut Vec<(PartyId, PartyId, Vec<u8>)>,
                from: usize,
                out: Vec<Outgoing<KeygenMsg>>| {
        for o in out {
            let bytes = o.msg.to_bytes(&params);
            match o.to {
                To::All => {
                    for to in 0..n {
                        if to != from {
                            queue.push((from as PartyId, to as PartyId, bytes.clone()));
                        }
                    }
                }
                To::Party(to) => queue.push((from as PartyId, to, bytes)),
            }
        }
    };
    for (i, p) in parties.iter_mut().enumerate() {
        let out = p.start().unwrap();
        push(&mut queue, i, out);
    }
    while !queue.is_empty() {
        queue.shuffle(rng);
        let (from, to, bytes) = queue.pop().unwrap();
        let msg = KeygenMsg::from_bytes(&bytes, param).unwrap();
        let out = parties[to as usize].handle(from, msg).unwrap();
        push(&mut queue, to as usize, out);
    }
    let mut shares = Vec::new();
    let mut pk = None;
    for p in parties {
        assert!(p.is_done());
        let (sk, k) = p.finish().unwrap();
        if let Some(prev) = &pk {
            assert_eq!(prev, &k, "all parties agree on the collective key");
        }
        pk = Some(k);
        shares.push(sk);
    }
    (shares, pk.unwrap())
}

/// The single-party reference key `sum_i s_i` as an `fhe` key.
pub fn reference_key(shares: &[SecretKeyShare]) -> fhe::bfv::SecretKey {
    let refs: Vec<&SecretKeyShare> = shares.iter().collect();
    SecretKeyShare::sum_to_fhe(&refs).unwrap()
}

use seco_protocols::mhe::LinearShape;

pub const MASK32: u64 = 0xffff_ffff;

/// Plain reference `W x mod 2^32` for a layer shape (cross-correlation with zero padding for
/// conv, window sum times the coefficient for pooling).
pub fn apply_plain(shape: &LinearShape, w: &[i64], x: &[u64]) -> Vec<u64> {
    let mul = |a: i64, b: u64| (a as u64).wrapping_mul(b);
    match *shape {
        LinearShape::Dense {
            in_features,
            out_features,
        } => (0..out_features)
            .map(|o| {
                (0..in_features).fold(0u64, |acc, c| {
                    acc.wrapping_add(mul(w[o * in_features + c], x[c]))
                }) & MASK32
            })
            .collect(),
        LinearShape::Conv2d {
            in_shape: [c, h, wd],
            out_channels,
            kernel,
            stride,
            padding,
        } => {
            let oh = (h + 2 * padding[0] - kernel[0]) / stride[0] + 1;
            let ow = (wd + 2 * padding[1] - kernel[1]) / stride[1] + 1;
            let mut out = Vec::new();
            for oc in 0..out_channels {
                for y in 0..oh {
                    for xx in 0..ow {
                        let mut acc = 0u64;
                        for ic in 0..c {
                            for a in 0..kernel[0] {
                                for b in 0..kernel[1] {
                                    let iy = (y * stride[0] + a) as isize - padding[0] as isize;
                                    let ix = (xx * stride[1] + b) as isize - padding[1] as isize;
                                    if iy < 0 || ix < 0 || iy >= h as isize || ix >= wd as isize {
                                        continue;
                                    }
                                    let wi = ((oc * c + ic) * kernel[0] + a) * kernel[1] + b;
                                    let xi = (ic * h + iy as usize) * wd + ix as usize;
                                    acc = acc.wrapping_add(mul(w[wi], x[xi]));
                                }
                            }
                        }
                        out.push(acc & MASK32);
                    }
                }
            }
            out
        }
        LinearShape::AvgPool2d {
            in_shape: [c, h, wd],
            kernel,
            stride,
        } => {
            let oh = (h - kernel[0]) / stride[0] + 1;
            let ow = (wd - kernel[1]) / stride[1] + 1;
            let mut out = Vec::new();
            for ch in 0..c {
                for y in 0..oh {
                    for xx in 0..ow {
                        let mut acc = 0u64;
                        for a in 0..kernel[0] {
                            for b in 0..kernel[1] {
                                let xi = (ch * h + y * stride[0] + a) * wd + xx * stride[1] + b;
                                acc = acc.wrapping_add(mul(w[0], x[xi]));
                            }
                        }
                        out.push(acc & MASK32);
                    }
                }
            }
            out
        }
    }
}

/// Random signed weights `|w| <= bound` for a shape.
pub fn random_weights(shape: &LinearShape, bound: i64, rng: &mut ChaCha20Rng) -> Vec<i64> {
    use rand::Rng;
    (0..shape.weight_len())
        .map(|_| rng.random_range(-bound..=bound))
        .collect()
}

/// Random ring elements.
pub fn random_ring(len: usize, rng: &mut ChaCha20Rng) -> Vec<u64> {
    use rand::Rng;
    (0..len).map(|_| rng.random::<u32>() as u64).collect()
}

/// The linear layers of the shipped models (digits-mlp, mnist-mlp, digits-cnn).
pub fn shipped_shapes() -> Vec<(&'static str, LinearShape)> {
    let dense = |i, o| LinearShape::Dense {
        in_features: i,
        out_features: o,
    };
    vec![
        ("digits-mlp fc1", dense(64, 32)),
        ("digits-mlp fc2", dense(32, 10)),
        ("mnist-mlp fc1", dense(784, 128)),
        ("mnist-mlp fc2", dense(128, 128)),
        ("mnist-mlp fc3", dense(128, 10)),
        (
            "digits-cnn conv1",
            LinearShape::Conv2d {
                in_shape: [1, 28, 28],
                out_channels: 4,
                kernel: [5, 5],
                stride: [2, 2],
                padding: [2, 2],
            },
        ),
        ("digits-cnn fc1", dense(196, 32)),
        ("digits-cnn fc2", dense(32, 10)),
    ]
}

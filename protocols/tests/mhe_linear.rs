//! Encrypted linear layers against the plain reference, decrypted with the single-party
//! reference key (`fhe::bfv` with `s = sum s_i`).

mod mhe_common;

use fhe::bfv::Encoding;
use fhe_traits::{FheDecoder, FheDecrypter};
use seco_protocols::mhe::{EncodedLayer, LayerPacking, LinearShape, ParamId};

use mhe_common::*;

fn check_layer(param: ParamId, shape: &LinearShape, seed: u64) {
    let mut r = rng(seed);
    let (shares, pk) = keygen(param, 2, &mut r);
    let sk = reference_key(&shares);
    let w = random_weights(shape, 600, &mut r);
    let layer = EncodedLayer::encode(param, shape, &w).unwrap();
    let packing = layer.packing().clone();
    let x = random_ring(shape.in_len(), &mut r);
    let s = random_ring(shape.out_len(), &mut r);
    let inputs = packing.input.encrypt(&pk, &x, &mut r).unwrap();
    let outs = layer.eval(&pk, &inputs, &s, &mut r).unwrap();
    let dec: Vec<Vec<u64>> = outs
        .iter()
        .map(|ct| {
            let pt = sk.try_decrypt(&ct.to_fhe().unwrap()).unwrap();
            Vec::<u64>::try_decode(&pt, Encoding::poly()).unwrap()
        })
        .collect();
    let got = packing.output.unpack(&dec).unwrap();
    let want: Vec<u64> = apply_plain(shape, &w, &x)
        .iter()
        .zip(&s)
        .map(|(y, s)| y.wrapping_sub(*s) & MASK32)
        .collect();
    assert_eq!(got, want, "{shape:?}");
}

#[test]
fn shipped_shapes_at_4096() {
    for (i, (_, shape)) in shipped_shapes().iter().enumerate() {
        check_layer(ParamId::Bfv4096T32V1, shape, 100 + i as u64);
    }
}

#[test]
fn other_shapes() {
    let shapes = [
        // Several input ciphertexts (in > N) and several channel blocks.
        LinearShape::Dense {
            in_features: 5000,
            out_features: 3,
        },
        LinearShape::Conv2d {
            in_shape: [6, 12, 12],
            out_channels: 5,
            kernel: [3, 3],
            stride: [1, 1],
            padding: [1, 1],
        },
        LinearShape::Conv2d {
            in_shape: [3, 20, 20],
            out_channels: 7,
            kernel: [4, 3],
            stride: [2, 3],
            padding: [0, 2],
        },
        LinearShape::AvgPool2d {
            in_shape: [4, 14, 14],
            kernel: [2, 2],
            stride: [2, 2],
        },
        LinearShape::AvgPool2d {
            in_shape: [30, 12, 12],
            kernel: [3, 3],
            stride: [1, 1],
        },
    ];
    for (i, shape) in shapes.iter().enumerate() {
        check_layer(ParamId::Bfv4096T32V1, shape, 200 + i as u64);
    }
}

#[test]
fn mnist_fc1_at_8192() {
    let shape = LinearShape::Dense {
        in_features: 784,
        out_features: 128,
    };
    check_layer(ParamId::Bfv8192T32V1, &shape, 300);
}

#[test]
fn packing_counts() {
    let p = LayerPacking::new(
        &LinearShape::Dense {
            in_features: 784,
            out_features: 128,
        },
        4096,
    )
    .unwrap();
    assert_eq!((p.num_in_cts(), p.num_out_cts()), (1, 26));
    let conv = LinearShape::Conv2d {
        in_shape: [1, 28, 28],
        out_channels: 4,
        kernel: [5, 5],
        stride: [2, 2],
        padding: [2, 2],
    };
    let p = LayerPacking::new(&conv, 4096).unwrap();
    assert_eq!((p.num_in_cts(), p.num_out_cts()), (1, 1));
}

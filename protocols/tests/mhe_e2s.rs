//! Encryption-to-shares: for every linear layer of the shipped models, the servers' shares of
//! `W r - s` sum to the plain reference mod 2^32, with n = 2, 3 and 5 servers; the noise and
//! flooding budgets are reported and checked.

mod mhe_common;

use fhe::bfv::Encoding;
use fhe_traits::{FheDecoder, FheDecrypter};
use seco_protocols::mhe::e2s::{e2s_budget, follower_share};
use seco_protocols::mhe::{
    Ciphertext, E2sConfig, E2sLeader, E2sRequest, E2sShare, EncodedLayer, LinearShape, MheError,
    ParamId, PublicKey, SecretKeyShare, To,
};

use mhe_common::*;

/// Runs E2S among all parties (leader = `leader`), messages through bytes; returns the shares.
fn run_e2s(
    param: ParamId,
    shares: &[SecretKeyShare],
    leader: u16,
    layout: &seco_protocols::mhe::Layout,
    cts: &[Ciphertext],
    r: &mut rand_chacha::ChaCha20Rng,
) -> Vec<Vec<u64>> {
    let params = param.params().unwrap();
    let n = shares.len();
    let cfg = |me: u16| E2sConfig {
        param,
        n,
        me,
        leader,
        instance: 42,
    };
    let (mut lead, req) =
        E2sLeader::new(cfg(leader), &shares[leader as usize], layout, cts).unwrap();
    assert_eq!(req.to, To::All);
    let req_bytes = req.msg.to_bytes(&params);
    // The leader already rounds c1 as the wire does: decoding gives the same request back.
    assert_eq!(E2sRequest::from_bytes(&req_bytes, param).unwrap(), req.msg);
    let mut outputs = vec![Vec::new(); n];
    let mut done = None;
    for me in (0..n as u16).filter(|&i| i != leader) {
        let req = E2sRequest::from_bytes(&req_bytes, param).unwrap();
        let (out, mine) = follower_share(&cfg(me), &shares[me as usize], layout, &req, r).unwrap();
        outputs[me as usize] = mine.to_vec();
        let share = E2sShare::from_bytes(&out.msg.to_bytes(&params), param).unwrap();
        assert!(done.is_none());
        done = lead.handle(me, &share).unwrap();
    }
    outputs[leader as usize] = done.expect("leader output after all shares").to_vec();
    outputs
}

fn sum_shares(outputs: &[Vec<u64>]) -> Vec<u64> {
    let mut acc = vec![0u64; outputs[0].len()];
    for o in outputs {
        for (a, v) in acc.iter_mut().zip(o) {
            *a = a.wrapping_add(*v) & MASK32;
        }
    }
    acc
}

/// One layer end to end: inputs from `contributors` encryptions (1 = the user, n = servers).
fn layer_e2s(param: ParamId, shape: &LinearShape, n: usize, contributors: usize, seed: u64) {
    let mut r = rng(seed);
    let (shares, pk) = keygen(param, n, &mut r);
    let w = random_weights(shape, 600, &mut r);
    let layer = EncodedLayer::encode(param, shape, &w).unwrap();
    let packing = layer.packing().clone();
    // r = sum of the contributors' masks; the owner adds their ciphertexts.
    let parts: Vec<Vec<u64>> = (0..contributors)
        .map(|_| random_ring(shape.in_len(), &mut r))
        .collect();
    let x = sum_shares(&parts);
    let enc: Vec<Vec<Ciphertext>> = parts
        .iter()
        .map(|p| packing.input.encrypt(&pk, p, &mut r).unwrap())
        .collect();
    let inputs: Vec<Ciphertext> = (0..packing.num_in_cts())
        .map(|j| Ciphertext::sum(enc.iter().map(|e| &e[j])).unwrap())
        .collect();
    let s = random_ring(shape.out_len(), &mut r);
    let outs = layer.eval(&pk, &inputs, &s, &mut r).unwrap();
    let want: Vec<u64> = apply_plain(shape, &w, &x)
        .iter()
        .zip(&s)
        .map(|(y, s)| y.wrapping_sub(*s) & MASK32)
        .collect();
    // Single-party reference decryption agrees.
    let sk = reference_key(&shares);
    let dec: Vec<Vec<u64>> = outs
        .iter()
        .map(|ct| {
            Vec::<u64>::try_decode(
                &sk.try_decrypt(&ct.to_fhe().unwrap()).unwrap(),
                Encoding::poly(),
            )
            .unwrap()
        })
        .collect();
    assert_eq!(packing.output.unpack(&dec).unwrap(), want);
    let leader = (n - 1) as u16;
    let outputs = run_e2s(param, &shares, leader, &packing.output, &outs, &mut r);
    assert_eq!(sum_shares(&outputs), want, "{shape:?} n = {n}");
    layer.check_budget(n, contributors, 40.0).unwrap();
}

#[test]
fn shipped_layers_n2_n3_n5() {
    for (i, (name, shape)) in shipped_shapes().iter().enumerate() {
        for n in [2usize, 3, 5] {
            // First layers take the user's single Enc(r1); later ones the n servers' masks.
            let contributors = if name.ends_with("fc1") || name.ends_with("conv1") {
                1
            } else {
                n
            };
            layer_e2s(
                ParamId::Bfv4096T32V1,
                shape,
                n,
                contributors,
                1000 + 10 * i as u64 + n as u64,
            );
        }
    }
}

#[test]
fn mnist_fc1_e2s_at_8192() {
    let shape = LinearShape::Dense {
        in_features: 784,
        out_features: 128,
    };
    layer_e2s(ParamId::Bfv8192T32V1, &shape, 3, 1, 77);
}

#[test]
fn e2s_errors() {
    let param = ParamId::Bfv4096T32V1;
    let params = param.params().unwrap();
    let mut r = rng(5);
    let (shares, pk): (Vec<SecretKeyShare>, PublicKey) = keygen(param, 3, &mut r);
    let layout = seco_protocols::mhe::Layout::contiguous(10, 4096);
    let cts = layout.encrypt(&pk, &[1u64; 10], &mut r).unwrap();
    let cfg = |me: u16| E2sConfig {
        param,
        n: 3,
        me,
        leader: 0,
        instance: 1,
    };
    let (mut lead, req) = E2sLeader::new(cfg(0), &shares[0], &layout, &cts).unwrap();
    let (s1, _) = follower_share(&cfg(1), &shares[1], &layout, &req.msg, &mut r).unwrap();
    assert!(matches!(
        lead.handle(2, &s1.msg),
        Err(MheError::SenderMismatch { .. })
    ));
    assert!(matches!(
        lead.handle(9, &s1.msg),
        Err(MheError::UnknownParty { .. })
    ));
    assert!(lead.handle(1, &s1.msg).unwrap().is_none());
    assert!(matches!(
        lead.handle(1, &s1.msg),
        Err(MheError::Duplicate { .. })
    ));
    // Another instance, another layout size.
    let other = E2sConfig {
        instance: 2,
        ..cfg(2)
    };
    assert!(matches!(
        follower_share(&other, &shares[2], &layout, &req.msg, &mut r),
        Err(MheError::WrongInstance { .. })
    ));
    let big = seco_protocols::mhe::Layout::contiguous(5000, 4096);
    assert!(matches!(
        follower_share(&cfg(2), &shares[2], &big, &req.msg, &mut r),
        Err(MheError::WrongLength { .. })
    ));
    // Bytes under another parameter id, truncated.
    let bytes = s1.msg.to_bytes(&params);
    assert!(matches!(
        E2sShare::from_bytes(&bytes, ParamId::Bfv8192T32V1),
        Err(MheError::ParamMismatch { .. })
    ));
    assert!(matches!(
        E2sShare::from_bytes(&bytes[..bytes.len() - 3], param),
        Err(MheError::Truncated { .. })
    ));
    let rb = req.msg.to_bytes(&params);
    assert!(matches!(
        E2sRequest::from_bytes(&rb[..100], param),
        Err(MheError::Truncated { .. })
    ));
}

/// The noise report of DESIGN.md s.2: flooding width and remaining decryption margin for the
/// largest layer of each shipped model at each parameter set (n = 3 servers; realistic
/// fixed-point weights |w| <= 2^10 with f = 10; printed with `--nocapture`).
#[test]
fn noise_budget_report() {
    let models: [(&str, LinearShape, usize); 3] = [
        (
            "digits-mlp",
            LinearShape::Dense {
                in_features: 64,
                out_features: 32,
            },
            1,
        ),
        (
            "mnist-mlp",
            LinearShape::Dense {
                in_features: 784,
                out_features: 128,
            },
            1,
        ),
        (
            "digits-cnn",
            LinearShape::Dense {
                in_features: 196,
                out_features: 32,
            },
            3,
        ),
    ];
    let mut r = rng(3);
    for param in [ParamId::Bfv4096T32V1, ParamId::Bfv8192T32V1] {
        let params = param.params().unwrap();
        for (name, shape, contributors) in &models {
            let w = random_weights(shape, 1024, &mut r);
            let layer = EncodedLayer::encode(param, shape, &w).unwrap();
            for n in [2usize, 3, 5] {
                let b = e2s_budget(&params, n, &layer.noise(n, *contributors));
                println!(
                    "{param:?} {name} n={n}: noise 2^{:.1}, flooding B = 2^{:.1}, total margin {:.2} bits, noise headroom {:.1} bits, flooding security {:.1} bits",
                    b.noise_bits, b.flood_bits, b.margin_bits, b.headroom_bits, b.security_bits
                );
                assert!(
                    b.margin_bits > 0.0 && b.headroom_bits >= 1.0 && b.security_bits >= 40.0,
                    "{name} {param:?} n={n}: {b:?}"
                );
            }
        }
    }
}

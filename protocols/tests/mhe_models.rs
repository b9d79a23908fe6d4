//! Every linear layer of every shipped model under MHE: E2S shares of `W r - s` sum to the
//! fixed-point reference `LinearOp::apply_ring(r) - s` mod 2^k for random `r`, with n = 2, 3
//! and 5 servers; and the noise report of each layer with the real weights (printed with
//! `--nocapture`): estimated and measured noise, flooding width, margins.

mod mhe_common;

use std::path::PathBuf;

use fhe::bfv::Encoding;
use fhe_traits::{FheDecoder, FheDecrypter};
use seco_protocols::mhe::e2s::{e2s_budget, follower_share};
use seco_protocols::mhe::{Ciphertext, E2sConfig, E2sLeader, EncodedLayer, ParamId};
use seco_protocols::model::Model;
use seco_protocols::model::QuantModel;

use mhe_common::*;

const MODELS: [&str; 3] = ["digits-mlp", "mnist-mlp", "digits-cnn"];

fn load(name: &str) -> QuantModel {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("models")
        .join(name);
    Model::load(&dir).unwrap().quantize().unwrap()
}

fn wrap_sub(a: &[u64], b: &[u64], mask: u64) -> Vec<u64> {
    a.iter()
        .zip(b)
        .map(|(x, y)| x.wrapping_sub(*y) & mask)
        .collect()
}

#[test]
fn shipped_models_e2s_n2_n3_n5() {
    let param = ParamId::Bfv4096T32V1;
    let params = param.params().unwrap();
    for (mi, name) in MODELS.iter().enumerate() {
        let qm = load(name);
        let mask = (1u64 << qm.fp.ring_bits) - 1;
        for n in [2usize, 3, 5] {
            let mut r = rng(500 + 10 * mi as u64 + n as u64);
            let (keys, pk) = keygen(param, n, &mut r);
            let sk = reference_key(&keys);
            for (si, stage) in qm.stages.iter().enumerate() {
                let layer = EncodedLayer::from_op(param, &stage.linear).unwrap();
                let p = layer.packing().clone();
                // Stage 0's mask comes from the user (one ciphertext), later ones from n servers.
                let contributors = if si == 0 { 1 } else { n };
                let parts: Vec<Vec<u64>> = (0..contributors)
                    .map(|_| random_ring(stage.linear.in_len(), &mut r))
                    .collect();
                let x = parts
                    .iter()
                    .fold(vec![0u64; stage.linear.in_len()], |acc, v| {
                        acc.iter()
                            .zip(v)
                            .map(|(a, b)| a.wrapping_add(*b) & mask)
                            .collect()
                    });
                let enc: Vec<Vec<Ciphertext>> = parts
                    .iter()
                    .map(|v| p.input.encrypt(&pk, v, &mut r).unwrap())
                    .collect();
                let inputs: Vec<Ciphertext> = (0..p.num_in_cts())
                    .map(|j| Ciphertext::sum(enc.iter().map(|e| &e[j])).unwrap())
                    .collect();
                let s = random_ring(stage.linear.out_len(), &mut r);
                let outs = layer.eval(&pk, &inputs, &s, &mut r).unwrap();
                let want = wrap_sub(&stage.linear.apply_ring(qm.fp, &x, false), &s, mask);
                // Single-party reference (fhe::bfv with s = sum s_i).
                let dec: Vec<Vec<u64>> = outs
                    .iter()
                    .map(|ct| {
                        let pt = sk.try_decrypt(&ct.to_fhe().unwrap()).unwrap();
                        Vec::<u64>::try_decode(&pt, Encoding::poly()).unwrap()
                    })
                    .collect();
                assert_eq!(
                    p.output.unpack(&dec).unwrap(),
                    want,
                    "{name} {} reference",
                    stage.name
                );
                // E2S with the owner as leader (party 0).
                let cfg = |me| E2sConfig {
                    param,
                    n,
                    me,
                    leader: 0,
                    instance: si as u64,
                };
                let (mut lead, req) = E2sLeader::new(cfg(0), &keys[0], &p.output, &outs).unwrap();
                let mut sum = vec![0u64; want.len()];
                let mut add = |v: &[u64]| {
                    for (a, b) in sum.iter_mut().zip(v) {
                        *a = a.wrapping_add(*b) & mask;
                    }
                };
                let mut done = None;
                for me in 1..n as u16 {
                    let (sh, mine) =
                        follower_share(&cfg(me), &keys[me as usize], &p.output, &req.msg, &mut r)
                            .unwrap();
                    add(&mine);
                    done = lead.handle(me, &sh.msg).unwrap();
                }
                add(&done.unwrap());
                assert_eq!(sum, want, "{name} {} n = {n}", stage.name);
                layer.check_budget(n, contributors, 40.0).unwrap();
                let _ = &params;
            }
        }
    }
}

/// The noise report with the real weights, per layer, at both server parameter sets, n = 3:
/// estimated bound vs measured noise (fhe's `measure_noise` with the reference key).
#[test]
fn shipped_models_noise_report() {
    let n = 3;
    for param in [ParamId::Bfv4096T32V1, ParamId::Bfv8192T32V1] {
        let params = param.params().unwrap();
        let mut r = rng(900);
        let (keys, pk) = keygen(param, n, &mut r);
        let sk = reference_key(&keys);
        for name in MODELS {
            let qm = load(name);
            for (si, stage) in qm.stages.iter().enumerate() {
                let layer = EncodedLayer::from_op(param, &stage.linear).unwrap();
                let contributors = if si == 0 { 1 } else { n };
                let noise = layer.noise(n, contributors);
                let b = e2s_budget(&params, n, &noise);
                let p = layer.packing().clone();
                let parts: Vec<Vec<Ciphertext>> = (0..contributors)
                    .map(|_| {
                        p.input
                            .encrypt(&pk, &random_ring(stage.linear.in_len(), &mut r), &mut r)
                            .unwrap()
                    })
                    .collect();
                let inputs: Vec<Ciphertext> = (0..p.num_in_cts())
                    .map(|j| Ciphertext::sum(parts.iter().map(|e| &e[j])).unwrap())
                    .collect();
                let outs = layer
                    .eval(
                        &pk,
                        &inputs,
                        &random_ring(stage.linear.out_len(), &mut r),
                        &mut r,
                    )
                    .unwrap();
                let measured = outs
                    .iter()
                    .map(|ct| unsafe { sk.measure_noise(&ct.to_fhe().unwrap()).unwrap() })
                    .max()
                    .unwrap();
                println!(
                    "{param:?} {name} {} ({} in ct, {} out ct): ciphertext noise sigma 2^{:.1}, bound 2^{:.1}, measured max 2^{measured}; with c1 compression 2^{:.1}; \
                     flooding B = 2^{:.1}; noise headroom {:.1} bits; flooding security {:.1} bits over {} revealed coefficients",
                    stage.name, p.num_in_cts(), p.num_out_cts(), noise.sigma.log2(), noise.bound_bits(), b.noise_bits,
                    b.flood_bits, b.headroom_bits, b.security_bits, noise.revealed
                );
                let largest = qm
                    .stages
                    .iter()
                    .max_by_key(|st| st.linear.in_len() * st.linear.out_len())
                    .is_some_and(|st| st.name == stage.name);
                if largest {
                    println!(
                        "  largest layer of {name} at {param:?}: {} with flooding width B = 2^{:.1} per server, \
                         decryption headroom {:.1} bits, flooding security {:.1} bits",
                        stage.name, b.flood_bits, b.headroom_bits, b.security_bits
                    );
                }
                // The measured maximum over all N coefficients stays below the bound.
                assert!(
                    (measured as f64) <= b.noise_bits + 1.0,
                    "{name} {}",
                    stage.name
                );
                assert!(b.security_bits >= 40.0 && b.headroom_bits >= 1.0);
            }
        }
    }
}

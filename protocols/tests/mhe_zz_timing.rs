//! Manual timing probe (ignored): minimum over many runs, robust to a loaded machine.
//! `cargo test --release -p seco-protocols --test mhe_zz_timing -- --ignored --nocapture`
use std::time::{Duration, Instant};

use fhe_math::rq::{Poly, Representation};
use rand::SeedableRng;
use seco_protocols::mhe::ParamId;

fn min_time(iters: usize, mut f: impl FnMut()) -> Duration {
    (0..iters)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap()
}

#[test]
#[ignore]
fn timing() {
    let mut r = rand_chacha::ChaCha20Rng::seed_from_u64(1);
    for param in [
        ParamId::Bfv2048T32V1,
        ParamId::Bfv4096T32V1,
        ParamId::Bfv8192T32V1,
    ] {
        let p = param.params().unwrap();
        let small = min_time(300, || {
            let _ = Poly::small(&p.ctx, Representation::PowerBasis, 10, &mut r).unwrap();
        });
        let mut a = Poly::random(&p.ctx, Representation::PowerBasis, &mut r);
        let ntt = min_time(300, || {
            a.change_representation(Representation::Ntt);
            a.change_representation(Representation::PowerBasis);
        }) / 2;
        a.change_representation(Representation::Ntt);
        let b = Poly::random(&p.ctx, Representation::Ntt, &mut r);
        let mul = min_time(300, || {
            let _ = &a * &b;
        });
        let pk = seco_protocols::mhe::SessionKey::generate(param, &mut r).unwrap();
        let zeros = vec![0u64; p.degree()];
        let enc = min_time(100, || {
            let _ = pk.public_key().encrypt(&zeros, &mut r).unwrap();
        });
        println!("{param:?}: small {small:?}, ntt {ntt:?}, mul {mul:?}, encrypt {enc:?}");
    }
}

mod mhe_common;

/// Minimum single-thread times of the composite steps for n = 3 (robust to a loaded machine,
/// where criterion's means are inflated by other processes).
#[test]
#[ignore]
fn timing_composite() {
    use seco_protocols::mhe::{
        e2s, E2sConfig, E2sLeader, E2sRequest, E2sShare, EncodedLayer, LinearShape,
    };
    let mut r = mhe_common::rng(7);
    for param in [ParamId::Bfv4096T32V1, ParamId::Bfv8192T32V1] {
        let params = param.params().unwrap();
        let keygen = min_time(10, || {
            let _ = mhe_common::keygen(param, 3, &mut r);
        });
        let (keys, pk) = mhe_common::keygen(param, 3, &mut r);
        let shape = LinearShape::Dense {
            in_features: 784,
            out_features: 128,
        };
        let w = mhe_common::random_weights(&shape, 300, &mut r);
        let layer = EncodedLayer::encode(param, &shape, &w).unwrap();
        let p = layer.packing().clone();
        let inputs = p
            .input
            .encrypt(&pk, &mhe_common::random_ring(784, &mut r), &mut r)
            .unwrap();
        let s = mhe_common::random_ring(128, &mut r);
        let mut outs = Vec::new();
        let eval = min_time(10, || outs = layer.eval(&pk, &inputs, &s, &mut r).unwrap());
        let cfg = |me| E2sConfig {
            param,
            n: 3,
            me,
            leader: 0,
            instance: 1,
        };
        let mut e2s_run = || {
            let (mut lead, req) = E2sLeader::new(cfg(0), &keys[0], &p.output, &outs).unwrap();
            let bytes = req.msg.to_bytes(&params);
            for me in 1..3u16 {
                let req = E2sRequest::from_bytes(&bytes, param).unwrap();
                let (sh, _) =
                    e2s::follower_share(&cfg(me), &keys[me as usize], &p.output, &req, &mut r)
                        .unwrap();
                let sh = E2sShare::from_bytes(&sh.msg.to_bytes(&params), param).unwrap();
                let _ = lead.handle(me, &sh).unwrap();
            }
        };
        let e2s_t = min_time(10, &mut e2s_run);
        println!(
            "{param:?}: keygen 3 parties {keygen:?}; mnist fc1 eval {eval:?}, E2S 3 servers {e2s_t:?}, sum {:?}",
            eval + e2s_t
        );
    }
}

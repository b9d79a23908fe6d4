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
    for param in [ParamId::Bfv2048T32V1, ParamId::Bfv4096T32V1, ParamId::Bfv8192T32V1] {
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

//! The flooding has teeth: the noise of the leader's view in encryption-to-shares (`e + sum_i
//! E_i` at every result coefficient, the value the privacy argument is about) has the documented
//! spread, `sqrt(n-1) * sigma_f` with `sigma_f = B / 12`, the shape of a Gaussian, and stays within
//! the truncation bound. With the flooding set to zero the spread would be the ciphertext noise
//! alone (measured here with the reconstructed key: about `2^20` to `2^30`, against `sigma_f` of
//! `2^70` and more), and this test fails.

mod mhe_common;

use seco_protocols::mhe::e2s::{flood_bound, flood_sigma, follower_share};
use seco_protocols::mhe::{
    Ciphertext, E2sConfig, E2sLeader, E2sShare, EncodedLayer, LinearShape, ParamId, SecretKeyShare,
};

use mhe_common::*;

/// Runs one E2S instance (leader = last server) through bytes; returns the leader's view noise.
fn view_noise(
    param: ParamId,
    shares: &[SecretKeyShare],
    layout: &seco_protocols::mhe::Layout,
    cts: &[Ciphertext],
    r: &mut rand_chacha::ChaCha20Rng,
) -> Vec<f64> {
    let params = param.params().unwrap();
    let n = shares.len();
    let leader = (n - 1) as u16;
    let cfg = |me: u16| E2sConfig {
        param,
        n,
        me,
        leader,
        instance: 9,
    };
    let (mut lead, req) =
        E2sLeader::new(cfg(leader), &shares[leader as usize], layout, cts).unwrap();
    assert!(lead.view_noise().is_none());
    for me in 0..leader {
        let (out, _) = follower_share(&cfg(me), &shares[me as usize], layout, &req.msg, r).unwrap();
        let share = E2sShare::from_bytes(&out.msg.to_bytes(&params), param).unwrap();
        lead.handle(me, &share).unwrap();
    }
    lead.view_noise().expect("every share is in")
}

fn moments(xs: &[f64]) -> (f64, f64, f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    let kurt = xs.iter().map(|x| (x - mean).powi(4)).sum::<f64>() / n / (var * var);
    let max = xs.iter().fold(0f64, |m, x| m.max(x.abs()));
    (mean, var.sqrt(), kurt, max)
}

#[test]
fn the_leaders_view_has_the_documented_flooding_spread() {
    let param = ParamId::Bfv4096T32V1;
    let params = param.params().unwrap();
    let shape = LinearShape::Dense {
        in_features: 64,
        out_features: 1024,
    };
    for n in [2usize, 3, 5] {
        let mut r = rng(500 + n as u64);
        let (shares, pk) = keygen(param, n, &mut r);
        let w = random_weights(&shape, 600, &mut r);
        let layer = EncodedLayer::encode(param, &shape, &w).unwrap();
        let packing = layer.packing().clone();
        let sk = reference_key(&shares);
        let mut noise = Vec::new();
        let mut ct_noise_bits = 0u64;
        for _ in 0..4 {
            let x = random_ring(shape.in_len(), &mut r);
            let inputs = packing.input.encrypt(&pk, &x, &mut r).unwrap();
            let s = random_ring(shape.out_len(), &mut r);
            let outs = layer.eval(&pk, &inputs, &s, &mut r).unwrap();
            for ct in &outs {
                // The ciphertext noise alone, with the key reconstructed from all shares.
                let bits = unsafe { sk.measure_noise(&ct.to_fhe().unwrap()).unwrap() };
                ct_noise_bits = ct_noise_bits.max(bits as u64);
            }
            noise.extend(view_noise(param, &shares, &packing.output, &outs, &mut r));
        }
        let sigma_f = flood_sigma(&params, n) as f64;
        let expected = ((n - 1) as f64).sqrt() * sigma_f;
        let (mean, sd, kurt, max) = moments(&noise);
        println!(
            "n = {n}: {} coefficients, view noise sd 2^{:.2} (expected 2^{:.2} = sqrt(n-1) sigma_f), \
             kurtosis {kurt:.2}, max 2^{:.2}; ciphertext noise alone <= 2^{ct_noise_bits}",
            noise.len(),
            sd.log2(),
            expected.log2(),
            max.log2()
        );
        assert!((ct_noise_bits as f64) < sigma_f.log2() - 30.0);
        assert!(
            (sd / expected - 1.0).abs() < 0.05,
            "n = {n}: sd {sd} vs {expected}"
        );
        assert!(mean.abs() < 0.1 * expected, "n = {n}: mean {mean}");
        assert!((kurt - 3.0).abs() < 0.35, "n = {n}: kurtosis {kurt}");
        let bound = (n - 1) as f64 * flood_bound(&params, n) as f64;
        assert!(
            max <= bound + 2f64.powi(ct_noise_bits as i32 + 1),
            "n = {n}"
        );
    }
}

//! The ReLU-with-reshare and max-pool circuits of DESIGN.md s.5: exact against the integer
//! reference, in plain evaluation and under BMR.

use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha12Rng;
use seco_protocols::bmr::{driver, BmrConfig};
use seco_protocols::circuit::reshare::{decode_words, mask, relu, trunc};
use seco_protocols::circuit::{MaxPoolReshare, ReluReshare};

fn shares(r: &mut ChaCha12Rng, n: usize, count: usize, k: usize) -> Vec<Vec<u64>> {
    (0..n)
        .map(|_| (0..count).map(|_| r.random::<u64>() & mask(k)).collect())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]
    #[test]
    fn relu_reshare_exact_plain(seed in any::<u64>(), n in 2usize..5, f in 0usize..16) {
        let spec = ReluReshare { parties: n, elements: 3, k: 32, f };
        let c = spec.circuit().unwrap();
        let mut r = ChaCha12Rng::seed_from_u64(seed);
        let (y, rr) = (shares(&mut r, n, 3, 32), shares(&mut r, n, 3, 32));
        let flat: Vec<bool> = (0..n).flat_map(|p| spec.encode_inputs(&y[p], &rr[p])).collect();
        let out = decode_words(&c.eval_plain(&flat).unwrap(), 32);
        for e in 0..3 {
            let ye: Vec<u64> = (0..n).map(|p| y[p][e]).collect();
            let re: Vec<u64> = (0..n).map(|p| rr[p][e]).collect();
            prop_assert_eq!(out[e], spec.reference(&ye, &re));
            // Direct statement: out + r = ReLU(trunc(y)) mod 2^k.
            let ysum = ye.iter().fold(0u64, |a, &x| a.wrapping_add(x)) & mask(32);
            let rsum = re.iter().fold(0u64, |a, &x| a.wrapping_add(x));
            prop_assert_eq!(out[e].wrapping_add(rsum) & mask(32), relu(trunc(ysum, 32, f), 32));
        }
    }
}

#[test]
fn relu_reshare_bmr_three_servers() {
    // 3 servers; server 2 owns the next layer (gets the outputs); server 1 evaluates.
    let spec = ReluReshare {
        parties: 3,
        elements: 4,
        k: 32,
        f: 12,
    };
    let c = spec.circuit().unwrap();
    println!(
        "ReLU-reshare, 3 parties, k=32, f=12: {} AND per element",
        c.counts().and / 4
    );
    let owners = spec.input_owners();
    let cfg = BmrConfig::new([5; 16], &c, 3, 1, owners, vec![2; c.num_outputs()]).unwrap();
    let mut r = ChaCha12Rng::seed_from_u64(7);
    let (y, rr) = (shares(&mut r, 3, 4, 32), shares(&mut r, 3, 4, 32));
    let inputs: Vec<Vec<bool>> = (0..3).map(|p| spec.encode_inputs(&y[p], &rr[p])).collect();
    let (prepared, _) = driver::run_offline(&mut r, &cfg, &c).unwrap();
    let (outs, _) = driver::run_online(prepared, &c, &inputs).unwrap();
    assert!(
        outs[0].is_empty() && outs[1].is_empty(),
        "only the owner learns the output"
    );
    let got = decode_words(&outs[2], 32);
    for e in 0..4 {
        let ye: Vec<u64> = (0..3).map(|p| y[p][e]).collect();
        let re: Vec<u64> = (0..3).map(|p| rr[p][e]).collect();
        assert_eq!(got[e], spec.reference(&ye, &re));
    }
}

#[test]
fn maxpool_reshare_plain_and_bmr() {
    let mut r = ChaCha12Rng::seed_from_u64(8);
    for relu_on in [true, false] {
        let spec = MaxPoolReshare {
            parties: 3,
            windows: 2,
            window: 4,
            k: 32,
            f: 10,
            relu: relu_on,
        };
        let c = spec.circuit().unwrap();
        let (y, rr) = (shares(&mut r, 3, 8, 32), shares(&mut r, 3, 2, 32));
        let inputs: Vec<Vec<bool>> = (0..3).map(|p| spec.encode_inputs(&y[p], &rr[p])).collect();
        let expect: Vec<u64> = (0..2)
            .map(|wi| {
                let win: Vec<Vec<u64>> = (0..4)
                    .map(|e| (0..3).map(|p| y[p][wi * 4 + e]).collect())
                    .collect();
                let re: Vec<u64> = (0..3).map(|p| rr[p][wi]).collect();
                spec.reference(&win, &re)
            })
            .collect();
        let flat: Vec<bool> = inputs.concat();
        assert_eq!(decode_words(&c.eval_plain(&flat).unwrap(), 32), expect);
        let cfg = BmrConfig::new(
            [6; 16],
            &c,
            3,
            0,
            spec.input_owners(),
            vec![1; c.num_outputs()],
        )
        .unwrap();
        let (prepared, _) = driver::run_offline(&mut r, &cfg, &c).unwrap();
        let (outs, _) = driver::run_online(prepared, &c, &inputs).unwrap();
        assert_eq!(decode_words(&outs[1], 32), expect);
    }
}

#[test]
fn bad_parameters_are_typed_errors() {
    for (parties, k, f) in [(0, 32, 8), (3, 0, 0), (3, 65, 8), (3, 32, 32)] {
        assert!(ReluReshare {
            parties,
            elements: 1,
            k,
            f
        }
        .circuit()
        .is_err());
        let mp = MaxPoolReshare {
            parties,
            windows: 1,
            window: 2,
            k,
            f,
            relu: true,
        };
        assert!(mp.circuit().is_err());
    }
}

//! The SECO protocol end to end, in one process: secure logits equal the fixed-point reference
//! bit for bit (DESIGN.md s.4-5).

use std::path::PathBuf;

use seco_protocols::model::{Model, TestSet};
use seco_protocols::plan::SplitPlan;
use seco_protocols::seco::local::{LocalDeployment, LocalOptions};

fn model_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../models")
        .join(name)
}

fn servers(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            if i == 0 {
                "gateway".to_string()
            } else {
                format!("remote-{i}")
            }
        })
        .collect()
}

/// Runs `count` test inputs of `name` with `n` servers and checks them against the reference.
fn check(name: &str, n: usize, count: usize, seed: u64) {
    let model = Model::load(model_dir(name)).unwrap();
    let tests = TestSet::load(model_dir(name)).unwrap();
    let q = model.quantize().unwrap();
    let plan = SplitPlan::balanced(&q, &servers(n)).unwrap();
    let opts = LocalOptions {
        seed,
        ..LocalOptions::default()
    };
    let mut d = LocalDeployment::new(&q, &plan, opts).unwrap();
    d.preprocess(count).unwrap();
    for i in 0..count {
        let x = model.encode_input(tests.input(i).unwrap()).unwrap();
        let want: Vec<i64> = q
            .infer(&x)
            .unwrap()
            .iter()
            .map(|&v| model.fixed_point.to_signed(v))
            .collect();
        let got = d.infer(&x).unwrap();
        assert_eq!(got, want, "{name}, {n} servers, input {i}");
    }
}

#[test]
fn digits_mlp_three_servers() {
    check("digits-mlp", 3, 2, 1);
}

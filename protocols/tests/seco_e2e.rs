//! The SECO protocol end to end, in one process (DESIGN.md s.5): secure logits equal the
//! fixed-point reference bit for bit, for every shipped model and 2, 3 and 5 servers.

mod seco_common;

use seco_common::{model_dir, reference, servers};
use seco_protocols::model::{Model, TestSet};
use seco_protocols::plan::{PlanFile, SplitPlan};
use seco_protocols::seco::local::{LocalDeployment, LocalOptions};

/// Runs test inputs `range` of `name` under `plan` and checks them against the reference.
fn check_plan(name: &str, plan: &SplitPlan, range: std::ops::Range<usize>, opts: LocalOptions) {
    let model = Model::load(model_dir(name)).unwrap();
    let tests = TestSet::load(model_dir(name)).unwrap();
    let q = model.quantize().unwrap();
    let mut d = LocalDeployment::new(&q, plan, opts.clone()).unwrap();
    let mut agree = 0;
    for (k, i) in range.clone().enumerate() {
        // A collective key serves a bounded number of bundles (docs/mhe.md, "Lifetime of a
        // key": digits-mlp with 3 servers, 286): a new deployment, with a new key, every 100.
        if k > 0 && k % 100 == 0 {
            let next = LocalOptions {
                seed: opts.seed.wrapping_add(k as u64),
                ..opts.clone()
            };
            d = LocalDeployment::new(&q, plan, next).unwrap();
        }
        d.preprocess(1).unwrap();
        let x = model.encode_input(tests.input(i).unwrap()).unwrap();
        let got = d.infer(&x).unwrap();
        assert_eq!(
            got,
            reference(&model, &q, &x),
            "{name}, {:?}, input {i}",
            plan.owners
        );
        agree += 1;
    }
    assert_eq!(agree, range.len());
    assert!(d.refused.is_empty(), "refused messages: {:?}", d.refused);
}

fn check(name: &str, n: usize, range: std::ops::Range<usize>, seed: u64) {
    let q = Model::load(model_dir(name)).unwrap().quantize().unwrap();
    let plan = SplitPlan::balanced(&q, &servers(n)).unwrap();
    check_plan(
        name,
        &plan,
        range,
        LocalOptions {
            seed,
            ..LocalOptions::default()
        },
    );
}

#[test]
fn digits_mlp_whole_test_set_with_gateway_and_two_remotes() {
    let n = TestSet::load(model_dir("digits-mlp")).unwrap().len();
    check("digits-mlp", 3, 0..n, 1);
}

#[test]
fn digits_mlp_with_2_and_5_servers() {
    check("digits-mlp", 2, 0..3, 2);
    check("digits-mlp", 5, 3..6, 3);
}

#[test]
fn mnist_mlp_with_2_3_and_5_servers() {
    check("mnist-mlp", 2, 0..2, 4);
    check("mnist-mlp", 3, 2..5, 5);
    check("mnist-mlp", 5, 5..7, 6);
}

#[test]
fn digits_cnn_with_2_3_and_5_servers() {
    check("digits-cnn", 2, 0..2, 7);
    check("digits-cnn", 3, 2..4, 8);
    check("digits-cnn", 5, 4..6, 9);
}

#[test]
fn hand_written_plans_with_repeated_owners() {
    // One server owns consecutive stages (it is then owner, evaluator and receiver of one
    // stage circuit), and a remote owns the first stage (the gateway relays the user's input).
    let q = Model::load(model_dir("mnist-mlp"))
        .unwrap()
        .quantize()
        .unwrap();
    for owners in [
        ["remote-1", "remote-1", "gateway"],
        ["gateway", "gateway", "gateway"],
        ["remote-2", "gateway", "remote-2"],
    ] {
        let text = format!(
            "model = \"mnist-mlp\"\nservers = [\"gateway\", \"remote-1\", \"remote-2\"]\n[owners]\nfc1 = \"{}\"\nfc2 = \"{}\"\nfc3 = \"{}\"\n",
            owners[0], owners[1], owners[2]
        );
        let plan = PlanFile::from_toml(&text).unwrap().resolve(&q).unwrap();
        check_plan(
            "mnist-mlp",
            &plan,
            10..11,
            LocalOptions {
                seed: 10,
                ..LocalOptions::default()
            },
        );
    }
}

#[test]
fn any_delivery_order_gives_the_same_result() {
    let q = Model::load(model_dir("digits-cnn"))
        .unwrap()
        .quantize()
        .unwrap();
    let plan = SplitPlan::balanced(&q, &servers(3)).unwrap();
    for seed in 20..23 {
        check_plan(
            "digits-cnn",
            &plan,
            7..8,
            LocalOptions {
                seed,
                shuffle: true,
                ..LocalOptions::default()
            },
        );
    }
}

#[test]
fn a_stored_key_is_reused_without_key_generation() {
    let model = Model::load(model_dir("digits-mlp")).unwrap();
    let q = model.quantize().unwrap();
    let plan = SplitPlan::balanced(&q, &servers(3)).unwrap();
    let first = LocalDeployment::new(&q, &plan, LocalOptions::default()).unwrap();
    let keys = first.stored_keys();
    assert_eq!(keys.len(), 3);
    let opts = LocalOptions {
        seed: 11,
        ..LocalOptions::default()
    };
    let mut again = LocalDeployment::with_keys(&q, &plan, opts, keys).unwrap();
    let keygen_bytes: u64 = again
        .accounting
        .usage
        .iter()
        .filter(|((_, ph), _)| *ph == seco_protocols::seco::Phase::Keygen)
        .map(|(_, u)| u.bytes_sent)
        .sum();
    assert_eq!(keygen_bytes, 0, "no key generation with stored keys");
    again.preprocess(1).unwrap();
    let tests = TestSet::load(model_dir("digits-mlp")).unwrap();
    let x = model.encode_input(tests.input(0).unwrap()).unwrap();
    assert_eq!(again.infer(&x).unwrap(), reference(&model, &q, &x));
}

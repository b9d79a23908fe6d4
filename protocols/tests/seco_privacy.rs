//! What each party sees, and what it costs the user (DESIGN.md s.1-2, s.5).

use std::collections::BTreeMap;

mod seco_common;

use seco_common::{model_dir, servers};
use seco_protocols::model::{Model, TestSet};
use seco_protocols::plan::SplitPlan;
use seco_protocols::seco::local::{Delivered, LocalDeployment, LocalOptions};
use seco_protocols::seco::msg::{pack_ring, Body};
use seco_protocols::seco::{Party, Phase};

fn deployment(name: &str, n: usize, seed: u64) -> (Model, LocalDeployment) {
    let model = Model::load(model_dir(name)).unwrap();
    let q = model.quantize().unwrap();
    let plan = SplitPlan::balanced(&q, &servers(n)).unwrap();
    let opts = LocalOptions {
        seed,
        record: true,
        ..LocalOptions::default()
    };
    (model, LocalDeployment::new(&q, &plan, opts).unwrap())
}

/// The value-carrying payload of an online message, without ids (bundle ids, BMR session ids
/// differ between runs trivially).
fn payload(d: &Delivered) -> Vec<u8> {
    match &d.msg.body {
        Body::Infer { masked_input, .. } => masked_input.to_vec(),
        Body::MaskedInput { values, .. } => values.to_vec(),
        Body::BmrOnline { msg, .. } => {
            let m: seco_protocols::bmr::BmrMsg = ciborium::from_reader(msg.as_slice()).unwrap();
            let mut out = Vec::new();
            ciborium::into_writer(&m.body, &mut out).unwrap();
            out
        }
        Body::ResultShare { cts, .. } => cts.iter().flat_map(|c| c.to_vec()).collect(),
        Body::Result { ct, .. } => ct.to_vec(),
        _ => Vec::new(),
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.len() <= hay.len() && hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn online_messages_are_masked_at_every_server() {
    let (model, mut d) = deployment("mnist-mlp", 3, 31);
    let q = model.quantize().unwrap();
    let tests = TestSet::load(model_dir("mnist-mlp")).unwrap();
    let x = model.encode_input(tests.input(0).unwrap()).unwrap();
    // The same input twice, each time with a fresh bundle.
    let mut runs: Vec<BTreeMap<Party, Vec<Vec<u8>>>> = Vec::new();
    for _ in 0..2 {
        d.preprocess(1).unwrap();
        let start = d.trace.len();
        d.infer(&x).unwrap();
        let mut seen: BTreeMap<Party, Vec<Vec<u8>>> = BTreeMap::new();
        for m in &d.trace[start..] {
            if m.msg.body.phase() == Phase::Online && m.to != Party::User {
                seen.entry(m.to).or_default().push(payload(m));
            }
        }
        runs.push(seen);
    }
    // Every server receives online messages, and none of them repeats across the two runs.
    for i in 0..3u16 {
        let p = Party::Server(i);
        let (a, b) = (&runs[0][&p], &runs[1][&p]);
        assert!(!a.is_empty(), "{p} received nothing");
        for m in a.iter().filter(|m| !m.is_empty()) {
            assert!(
                !b.contains(m),
                "{p} received an identical online message twice"
            );
        }
    }
    // No message carries the input or any activation in the clear (as packed ring elements;
    // windows of 4 elements are searched, enough to rule out a copy).
    let trace = q.infer_trace(&x).unwrap();
    let k = model.fixed_point.ring_bits;
    let mut secrets = vec![x.clone()];
    for t in &trace {
        secrets.push(t.linear_out.clone());
        secrets.push(t.out.clone());
    }
    for m in &d.trace {
        let p = payload(m);
        for s in &secrets {
            for w in s.windows(4).step_by(7) {
                if w.iter().all(|&v| v == 0) {
                    continue; // ReLU zeros are not information about the input.
                }
                assert!(
                    !contains(&p, &pack_ring(w, k)),
                    "{:?} to {} carries a plaintext value",
                    m.msg.body.name(),
                    m.to
                );
            }
        }
    }
}

/// The user's bytes per message kind for one preprocessing and one inference.
fn user_bytes(name: &str) -> (BTreeMap<&'static str, usize>, usize, usize) {
    let (model, mut d) = deployment(name, 3, 41);
    let tests = TestSet::load(model_dir(name)).unwrap();
    let mut sizes = BTreeMap::new();
    for m in &d.trace {
        if m.from == Party::User || m.to == Party::User {
            *sizes.entry(m.msg.body.name()).or_insert(0) += m.bytes;
        }
    }
    let start = d.trace.len();
    d.preprocess(1).unwrap();
    d.infer(&model.encode_input(tests.input(0).unwrap()).unwrap())
        .unwrap();
    for m in &d.trace[start..] {
        if m.from == Party::User || m.to == Party::User {
            *sizes.entry(m.msg.body.name()).or_insert(0) += m.bytes;
        }
    }
    let out = model.output_shape().iter().product();
    (sizes, model.input_len(), out)
}

#[test]
fn the_users_cost_does_not_depend_on_the_model() {
    let (small, small_in, small_out) = user_bytes("digits-mlp");
    let (large, large_in, large_out) = user_bytes("mnist-mlp");
    assert_eq!(small_out, large_out);
    println!("user bytes digits-mlp {small:?}\nuser bytes mnist-mlp {large:?}");
    for (kind, &b) in &small {
        let b2 = large[kind];
        match *kind {
            // The masked input: 4 bytes per input value (k = 32), plus CBOR length prefixes.
            "Infer" => {
                let extra = 4 * (large_in - small_in);
                assert!(b2 >= b + extra && b2 <= b + extra + 8, "Infer {b} -> {b2}");
            }
            // The model name travels in the Hello.
            "Hello" => assert_eq!(b2, b + "mnist-mlp".len() - "digits-mlp".len(), "Hello"),
            // Everything else is the same size for both models: one input-mask ciphertext
            // (<= 4096 values per ciphertext), the collective key, one result ciphertext.
            _ => assert_eq!(b, b2, "{kind}"),
        }
    }
    assert_eq!(
        small.keys().collect::<Vec<_>>(),
        large.keys().collect::<Vec<_>>()
    );
    let total: usize = large.values().sum();
    assert!(total < 300_000, "user bytes {total}");
}

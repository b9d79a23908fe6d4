//! BMR with 3 garblers (the evaluator is one of them): offline garbling rate, online
//! evaluation rate, bytes per AND per party.
//!
//! `cargo bench -p seco-protocols --bench bmr`

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha12Rng;
use seco_protocols::bmr::{self, driver, BmrConfig};
use seco_protocols::circuit::{Program, ReluReshare, Split};
use seco_protocols::gc::Block;

fn bench(c: &mut Criterion) {
    let n = 3;
    // One ReLU layer of 512 elements, k = 32, f = 12: the shape issue 5 garbles.
    let spec = ReluReshare {
        parties: n,
        elements: 512,
        k: 32,
        f: 12,
    };
    let circuit = spec.circuit().unwrap();
    let p = Program::compile(&circuit).unwrap();
    let cfg = BmrConfig::new(
        [1; 16],
        &circuit,
        n,
        1,
        spec.input_owners(),
        vec![2; circuit.num_outputs()],
    )
    .unwrap();
    let mut r = ChaCha12Rng::seed_from_u64(1);
    let (prepared, off) = driver::run_offline(&mut r, &cfg, &circuit).unwrap();
    let inputs: Vec<Vec<bool>> = (0..n)
        .map(|i| (0..cfg.inputs_of(i).len()).map(|_| r.random()).collect())
        .collect();
    let (_, on) = driver::run_online(prepared.clone(), &circuit, &inputs).unwrap();
    let and = p.num_and as f64;
    println!(
        "relu512 (3 parties): {} AND, {} layers; offline {} B total, per party {:?}, {:.1} B per AND per party; online {} B total, {} rounds",
        p.num_and,
        p.layers.len(),
        off.total(),
        off.bytes_sent,
        off.total() as f64 / and / n as f64,
        on.total(),
        on.rounds
    );
    println!(
        "prepared state: evaluator {} B ({:.1} B per AND), garbler {} B",
        prepared[1].encoded_len(),
        prepared[1].encoded_len() as f64 / and,
        prepared[0].encoded_len()
    );
    let mut group = c.benchmark_group("bmr3");
    group.throughput(Throughput::Elements(p.num_and as u64));
    group.bench_function("offline_all_parties_relu512", |b| {
        b.iter(|| driver::run_offline(&mut r, &cfg, &circuit).unwrap())
    });
    // Garblings drawn from one session OT setup (no base OTs; each needs a fresh id).
    let (mut setups, setup_traffic) = driver::run_setup(&mut r, [7; 16], n).unwrap();
    println!(
        "session OT setup (3 parties): {} B total, {} messages",
        setup_traffic.total(),
        setup_traffic.messages
    );
    let mut id = 0u64;
    group.bench_function("offline_all_parties_relu512_with_setup", |b| {
        b.iter(|| {
            id += 1;
            let mut c2 = cfg.clone();
            c2.session[..8].copy_from_slice(&id.to_le_bytes());
            driver::run_offline_with_setup(&mut r, &c2, &circuit, &mut setups, &[]).unwrap()
        })
    });
    group.bench_function("online_all_parties_relu512", |b| {
        b.iter(|| driver::run_online(prepared.clone(), &circuit, &inputs).unwrap())
    });
    // The evaluator's part alone: evaluation of the aggregated tables, with the keys of the
    // `K = n - 1` keyed garblers (the evaluator, party 1, is keyless).
    let tables = prepared[cfg.evaluator].tables.clone().unwrap();
    let split = Split::new(Arc::new(p.clone()));
    let p = p.compact();
    let keyed = cfg.keyed();
    let k = keyed.len();
    let x: Vec<bool> = (0..p.num_inputs).map(|_| r.random()).collect();
    let mut pos = vec![0usize; n];
    let mut keys = vec![Block::ZERO; p.num_inputs as usize * k];
    for (w, &owner) in cfg.input_owners.iter().enumerate() {
        let lam = prepared[owner]
            .garbler
            .as_ref()
            .unwrap()
            .input_masks
            .get(pos[owner]);
        pos[owner] += 1;
        for (s, &j) in keyed.iter().enumerate() {
            let g = prepared[j].garbler.as_ref().unwrap();
            keys[w * k + s] = g.input_keys[w] ^ g.offset.select(x[w] ^ lam);
        }
    }
    group.bench_function("evaluate_relu512", |b| {
        b.iter(|| bmr::evaluate(&p, k, cfg.tweak_nonce(), &tables, &keys).unwrap())
    });
    // The same, its independent parts in parallel (`circuit::Split`, what `OnlineParty` runs).
    println!("relu512 split into {} parts", split.parts.len());
    group.bench_function("evaluate_split_relu512", |b| {
        b.iter(|| bmr::evaluate_split(&split, k, cfg.tweak_nonce(), &tables, &keys).unwrap())
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);

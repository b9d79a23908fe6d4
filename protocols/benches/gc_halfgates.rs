//! Half-gates garbling and evaluation rate (AND gates per second, one core), bytes per AND,
//! and the fixed-key AES hash rate it is bounded by.
//!
//! `cargo bench -p seco-protocols --bench gc_halfgates`

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::SeedableRng;
use rand_chacha::ChaCha12Rng;
use seco_protocols::circuit::{bristol, Circuit, Program, ReluReshare};
use seco_protocols::garble::hash::{fixed_aes, tweak};
use seco_protocols::gc::{self, Block};

fn circuits() -> Vec<(&'static str, Circuit)> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/circuits/aes_128.txt"
    ))
    .unwrap();
    let aes = bristol::read(&text, None).unwrap();
    // A wide circuit: one ReLU layer of 4096 elements with 2 shares (about 460k AND gates).
    let relu = ReluReshare {
        parties: 2,
        elements: 4096,
        k: 32,
        f: 12,
    }
    .circuit()
    .unwrap();
    vec![("aes128", aes), ("relu4096", relu)]
}

fn bench(c: &mut Criterion) {
    let mut r = ChaCha12Rng::seed_from_u64(1);
    let mut group = c.benchmark_group("halfgates");
    for (name, circuit) in circuits() {
        let p = Program::compile(&circuit).unwrap().compact();
        let delta = Block(Block::random(&mut r).0 | 1);
        let zero: Vec<Block> = (0..p.num_inputs).map(|_| Block::random(&mut r)).collect();
        let g = gc::garble(&p, delta, &zero).unwrap();
        let table_bytes = g.tables.len() * 16;
        println!(
            "{name}: {} AND gates, {} layers, tables {table_bytes} B = {:.1} B per AND",
            p.num_and,
            p.layers.len(),
            table_bytes as f64 / p.num_and as f64
        );
        group.throughput(Throughput::Elements(p.num_and as u64));
        group.bench_function(BenchmarkId::new("garble", name), |b| {
            b.iter(|| gc::garble(&p, delta, &zero).unwrap())
        });
        group.bench_function(BenchmarkId::new("evaluate", name), |b| {
            b.iter(|| gc::evaluate(&p, &g.tables, &zero).unwrap())
        });
    }
    group.finish();

    let mut group = c.benchmark_group("fixed_key_aes");
    let xs: Vec<Block> = (0..1 << 16).map(|_| Block::random(&mut r)).collect();
    let mut out = vec![Block::ZERO; xs.len()];
    group.throughput(Throughput::Elements(xs.len() as u64));
    group.bench_function("hash_many", |b| {
        b.iter(|| fixed_aes().hash_many(&xs, |i| tweak(1, i as u128), &mut out))
    });
    group.bench_function("hash_one_at_a_time", |b| {
        b.iter(|| {
            for (o, &x) in out.iter_mut().zip(&xs) {
                *o = fixed_aes().hash(x, tweak(1, 7));
            }
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);

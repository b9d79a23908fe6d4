//! IKNP OT extension rate (both sides on one core, no network) and the base OTs.
//!
//! `cargo bench -p seco-protocols --bench ot_iknp`

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha12Rng;
use seco_protocols::gc::Block;
use seco_protocols::ot::{rot_receiver, rot_sender, IknpReceiverSetup, IknpSenderSetup, KAPPA};

fn bench(c: &mut Criterion) {
    let mut r = ChaCha12Rng::seed_from_u64(1);
    let delta = Block::random(&mut r);
    let n = 1 << 20;
    let choices: Vec<bool> = (0..n).map(|_| r.random()).collect();
    let mut group = c.benchmark_group("iknp");
    group.throughput(Throughput::Elements(n as u64));
    let (ss, m1) = IknpSenderSetup::new(&mut r, [1; 16], delta);
    let (rs, m2) = IknpReceiverSetup::new(&mut r, [1; 16]);
    let (mut s, mut rc) = (ss.finish(&m2).unwrap(), rs.finish(&m1).unwrap());
    group.bench_function("correlated_ot_1M", |b| {
        b.iter(|| {
            let (ext, t, _) = rc.extend(&choices);
            let (q, _) = s.extend(&ext, n).unwrap();
            (t, q)
        })
    });
    group.bench_function("random_ot_1M", |b| {
        b.iter(|| {
            let (ext, t, first) = rc.extend(&choices);
            let (q, _) = s.extend(&ext, n).unwrap();
            (rot_receiver(&t, first), rot_sender(&q, delta, first))
        })
    });
    group.finish();
    let mut group = c.benchmark_group("base_ot");
    group.throughput(Throughput::Elements(KAPPA as u64));
    group.bench_function("masny_rindal_128", |b| {
        b.iter(|| {
            let (ss, m1) = IknpSenderSetup::new(&mut r, [2; 16], delta);
            let (rs, m2) = IknpReceiverSetup::new(&mut r, [2; 16]);
            (ss.finish(&m2).unwrap(), rs.finish(&m1).unwrap())
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);

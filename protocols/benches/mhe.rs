//! Criterion benchmarks of the MHE building blocks for n = 3 servers at N = 4096 and 8192
//! (single core): collective keygen, encryption, each linear layer of mnist-mlp and
//! digits-cnn, encryption-to-shares, and result delivery.
//!
//! Run: `cargo bench -p seco-protocols --bench mhe` (add `--features tfhe-ntt` to compare NTTs).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use seco_protocols::mhe::{
    e2s, Ciphertext, CollectiveKeygen, E2sConfig, E2sLeader, EncodedLayer, KeygenConfig, KeygenMsg,
    Layout, LinearShape, ParamId, PublicKey, ResultCiphertext, S2eAggregator, SecretKeyShare,
    SessionKey, To,
};

const N_SERVERS: usize = 3;

fn keygen(param: ParamId, rng: &mut ChaCha20Rng) -> (Vec<SecretKeyShare>, PublicKey) {
    let mut parties: Vec<CollectiveKeygen> = (0..N_SERVERS)
        .map(|me| {
            let cfg = KeygenConfig {
                param,
                n: N_SERVERS,
                me: me as u16,
                context: [0; 32],
            };
            CollectiveKeygen::new(cfg, rng).unwrap()
        })
        .collect();
    let mut queue: Vec<(u16, KeygenMsg)> = Vec::new();
    for p in parties.iter_mut() {
        queue.extend(
            p.start()
                .unwrap()
                .into_iter()
                .map(|o| (o.msg.from(), o.msg)),
        );
    }
    while let Some((from, msg)) = queue.pop() {
        for to in (0..N_SERVERS).filter(|&t| t != from as usize) {
            let out = parties[to].handle(from, msg.clone()).unwrap();
            queue.extend(out.into_iter().map(|o| {
                assert_eq!(o.to, To::All);
                (o.msg.from(), o.msg)
            }));
        }
    }
    let mut shares = Vec::new();
    let mut pk = None;
    for p in parties {
        let (s, k) = p.finish().unwrap();
        shares.push(s);
        pk = Some(k);
    }
    (shares, pk.unwrap())
}

fn ring(len: usize, rng: &mut ChaCha20Rng) -> Vec<u64> {
    (0..len).map(|_| rng.random::<u32>() as u64).collect()
}

fn weights(shape: &LinearShape, rng: &mut ChaCha20Rng) -> Vec<i64> {
    (0..shape.weight_len())
        .map(|_| rng.random_range(-512..=512))
        .collect()
}

fn layers() -> Vec<(&'static str, LinearShape, usize)> {
    let dense = |i, o| LinearShape::Dense {
        in_features: i,
        out_features: o,
    };
    vec![
        ("mnist-mlp fc1 784x128", dense(784, 128), 1),
        ("mnist-mlp fc2 128x128", dense(128, 128), N_SERVERS),
        ("mnist-mlp fc3 128x10", dense(128, 10), N_SERVERS),
        (
            "digits-cnn conv1",
            LinearShape::Conv2d {
                in_shape: [1, 28, 28],
                out_channels: 4,
                kernel: [5, 5],
                stride: [2, 2],
                padding: [2, 2],
            },
            1,
        ),
        ("digits-cnn fc1 196x32", dense(196, 32), N_SERVERS),
        ("digits-cnn fc2 32x10", dense(32, 10), N_SERVERS),
    ]
}

/// E2S among the 3 servers in one thread (leader = 0): everything the 3 parties compute.
fn run_e2s(
    param: ParamId,
    keys: &[SecretKeyShare],
    layout: &Layout,
    cts: &[Ciphertext],
    rng: &mut ChaCha20Rng,
) -> Vec<u64> {
    let params = param.params().unwrap();
    let cfg = |me| E2sConfig {
        param,
        n: N_SERVERS,
        me,
        leader: 0,
        instance: 1,
    };
    let (mut lead, req) = E2sLeader::new(cfg(0), &keys[0], layout, cts).unwrap();
    let req_bytes = req.msg.to_bytes(&params);
    let mut out = None;
    for me in 1..N_SERVERS as u16 {
        let req = seco_protocols::mhe::E2sRequest::from_bytes(&req_bytes, param).unwrap();
        let (sh, _) = e2s::follower_share(&cfg(me), &keys[me as usize], layout, &req, rng).unwrap();
        let sh =
            seco_protocols::mhe::E2sShare::from_bytes(&sh.msg.to_bytes(&params), param).unwrap();
        out = lead.handle(me, &sh).unwrap();
    }
    out.unwrap().to_vec()
}

fn bench_param(c: &mut Criterion, param: ParamId) {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let tag = format!("N={}", param.params().unwrap().degree());
    let mut g = c.benchmark_group(format!("mhe {tag}"));
    g.sample_size(10);
    g.measurement_time(std::time::Duration::from_secs(3));
    g.warm_up_time(std::time::Duration::from_secs(1));
    g.bench_function("keygen 3 parties (total)", |b| {
        b.iter(|| keygen(param, &mut rng))
    });
    let (keys, pk) = keygen(param, &mut rng);
    let n = param.params().unwrap().degree();
    let pt = ring(n, &mut rng);
    g.bench_function("encrypt 1 ciphertext", |b| {
        b.iter(|| pk.encrypt(&pt, &mut rng).unwrap())
    });
    for (name, shape, _) in layers() {
        let w = weights(&shape, &mut rng);
        g.bench_function(format!("encode weights {name}"), |b| {
            b.iter(|| EncodedLayer::encode(param, &shape, &w).unwrap())
        });
        let layer = EncodedLayer::encode(param, &shape, &w).unwrap();
        let p = layer.packing().clone();
        let inputs = p
            .input
            .encrypt(&pk, &ring(shape.in_len(), &mut rng), &mut rng)
            .unwrap();
        let s = ring(shape.out_len(), &mut rng);
        g.bench_function(format!("eval {name}"), |b| {
            b.iter(|| layer.eval(&pk, &inputs, &s, &mut rng).unwrap())
        });
        let outs = layer.eval(&pk, &inputs, &s, &mut rng).unwrap();
        g.bench_function(format!("e2s 3 servers (total) {name}"), |b| {
            b.iter(|| run_e2s(param, &keys, &p.output, &outs, &mut rng))
        });
        if name.starts_with("mnist-mlp fc1") {
            g.bench_function(format!("eval + e2s 3 servers (total) {name}"), |b| {
                b.iter(|| {
                    let outs = layer.eval(&pk, &inputs, &s, &mut rng).unwrap();
                    run_e2s(param, &keys, &p.output, &outs, &mut rng)
                })
            });
        }
    }
    g.finish();
}

fn bench_result(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let param = ParamId::Bfv2048T32V1;
    let mut g = c.benchmark_group("mhe result delivery N=2048");
    g.sample_size(10);
    g.measurement_time(std::time::Duration::from_secs(3));
    g.warm_up_time(std::time::Duration::from_secs(1));
    g.bench_function("user session keygen", |b| {
        b.iter(|| SessionKey::generate(param, &mut rng).unwrap())
    });
    let user = SessionKey::generate(param, &mut rng).unwrap();
    let layout = Layout::contiguous(10, 2048);
    let shares: Vec<Vec<u64>> = (0..N_SERVERS).map(|_| ring(10, &mut rng)).collect();
    g.bench_function("server s2e encrypt share", |b| {
        b.iter(|| {
            layout
                .encrypt(user.public_key(), &shares[0], &mut rng)
                .unwrap()
        })
    });
    let cts: Vec<Vec<Ciphertext>> = shares
        .iter()
        .map(|s| layout.encrypt(user.public_key(), s, &mut rng).unwrap())
        .collect();
    g.bench_function("gateway aggregate 3 + restrict", |b| {
        b.iter_batched(
            || S2eAggregator::new(param, N_SERVERS, 1),
            |mut agg| {
                let mut t = None;
                for (i, c) in cts.iter().enumerate() {
                    t = agg.handle(i as u16, c).unwrap();
                }
                ResultCiphertext::restrict(&t.unwrap()[0], &layout).unwrap()
            },
            BatchSize::SmallInput,
        )
    });
    let mut agg = S2eAggregator::new(param, N_SERVERS, 1);
    let mut t = None;
    for (i, c) in cts.iter().enumerate() {
        t = agg.handle(i as u16, c).unwrap();
    }
    let rc = ResultCiphertext::restrict(&t.unwrap()[0], &layout).unwrap();
    g.bench_function("user decrypt result", |b| {
        b.iter(|| user.decrypt(&rc).unwrap())
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    bench_param(c, ParamId::Bfv4096T32V1);
    bench_param(c, ParamId::Bfv8192T32V1);
    bench_result(c);
}

criterion_group!(mhe, benches);
criterion_main!(mhe);

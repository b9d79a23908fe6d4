//! Loopback throughput (1 MiB and 16 MiB messages, chunked at 1 MiB) and the round trip of a small
//! message (send + application ack) between two nodes on 127.0.0.1.
//!
//! Run: `cargo bench -p seco-runtime --bench loopback`.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use seco_runtime::net::{self, Client, Envelope, Event, NetConfig, SessionId};
use seco_runtime::{Keypair, PeerId};

fn setup(rt: &tokio::runtime::Runtime) -> (Client, PeerId) {
    rt.block_on(async {
        let (ka, kb) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
        let (pa, pb) = (ka.public().to_peer_id(), kb.public().to_peer_id());
        // Tuning knobs for exploration: SECO_BENCH_WINDOW, SECO_BENCH_CHUNK_KIB.
        let knob = |name: &str| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse::<usize>().ok())
        };
        let cfg = |allow: PeerId| {
            let mut c = NetConfig {
                listen: Vec::new(),
                ..NetConfig::loopback([allow])
            };
            if let Some(w) = knob("SECO_BENCH_WINDOW") {
                c.send_window = w;
            }
            if let Some(k) = knob("SECO_BENCH_CHUNK_KIB") {
                c.limits.chunk_size = k * 1024;
            }
            c
        };
        let (a, _a_events, _) = net::spawn(ka, cfg(pb)).expect("spawn a");
        let (b, mut b_events, _) = net::spawn(kb, cfg(pa)).expect("spawn b");
        let addr = b.listen(net::loopback_addr()).await.expect("listen");
        a.add_address(pb, addr).await.expect("address");
        tokio::spawn(async move {
            let _b = b;
            while let Some(e) = b_events.recv().await {
                if let Event::Message(m) = e {
                    m.reply.ack();
                }
            }
        });
        // Warm the connection up.
        a.send(pb, Envelope::new(SessionId::default(), 0, 0, vec![0]))
            .await
            .expect("warm-up");
        (a, pb)
    })
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (client, peer) = setup(&rt);
    let mut seq = 1u64;

    let mut g = c.benchmark_group("loopback");
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("round_trip_64B", |b| {
        b.iter(|| {
            seq += 1;
            let e = Envelope::new(SessionId::default(), 1, seq, vec![7; 64]);
            rt.block_on(client.send(peer, e)).expect("send")
        })
    });
    for mib in [1usize, 16] {
        let payload = vec![0xA5u8; mib * 1024 * 1024];
        g.throughput(Throughput::Bytes(payload.len() as u64));
        g.sample_size(if mib == 16 { 10 } else { 20 });
        g.bench_function(format!("message_{mib}MiB"), |b| {
            b.iter(|| {
                seq += 1;
                let e = Envelope::new(SessionId::default(), 2, seq, payload.clone());
                rt.block_on(client.send(peer, e)).expect("send")
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! Timing of the store operations on the online critical path (a take of a large record: read,
//! delete, flush). Opt-in: `cargo test --release -p seco-runtime --test store_timing -- --ignored
//! --nocapture`; prints, asserts nothing about time.

use std::time::Instant;

use seco_runtime::store::{SledStore, Store, Tree, WriteBatch};

#[test]
#[ignore]
fn time_takes_of_large_records() {
    let dir = tempfile::tempdir().unwrap();
    let s = SledStore::open(dir.path()).unwrap();
    let tree = Tree::Named("t");
    for size in [1usize << 10, 100 << 10, 2500 << 10] {
        let mut t_get = 0.0;
        let mut t_apply = 0.0;
        let mut t_flush = 0.0;
        let rounds = 20;
        for i in 0..rounds {
            let key = format!("k{size}-{i}");
            s.put(tree, key.as_bytes(), &vec![7u8; size]).unwrap();
            s.flush().unwrap();
            let t = Instant::now();
            let v = s.get(tree, key.as_bytes()).unwrap();
            t_get += t.elapsed().as_secs_f64();
            assert_eq!(v.map(|v| v.len()), Some(size));
            let t = Instant::now();
            s.apply(WriteBatch::new().delete(tree, key.into_bytes()))
                .unwrap();
            t_apply += t.elapsed().as_secs_f64();
            let t = Instant::now();
            s.flush().unwrap();
            t_flush += t.elapsed().as_secs_f64();
        }
        let ms = |x: f64| x * 1e3 / rounds as f64;
        println!(
            "{size:>8} B: get {:.3} ms, delete {:.3} ms, flush {:.3} ms",
            ms(t_get),
            ms(t_apply),
            ms(t_flush)
        );
    }
}

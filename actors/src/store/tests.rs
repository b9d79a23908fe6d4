//! Unit tests of the node's store (keys, commit and take, damaged records).

use super::*;
use seco_protocols::seco::ChunkTake;
use seco_runtime::store::{MemStore, StoreError};

#[test]
fn keys_are_kept_newest_first_up_to_the_limit_and_legacy_records_are_read() {
    let s = NodeStore::new(Arc::new(MemStore::new()));
    let sid = SessionId([1; 16]);
    // A store of an earlier version: one record under `collective`.
    s.inner
        .put(Tree::KeyShares, LEGACY_KEY_SHARE, &[1])
        .unwrap();
    assert_eq!(s.key_ring().unwrap().len(), 1);
    for k in 2..=6u8 {
        s.commit(sid, &[Persist::Keys(vec![k])]).unwrap();
        let ring: Vec<u8> = s.key_ring().unwrap().iter().map(|v| v[0]).collect();
        let want: Vec<u8> = (1..=k).rev().take(MAX_KEYS).collect();
        assert_eq!(ring, want);
        assert_eq!(s.keys().unwrap().unwrap()[0], k);
        assert_eq!(s.summary().unwrap().keys, want.len());
    }
}

#[test]
fn commit_take_and_forget() {
    let s = NodeStore::new(Arc::new(MemStore::new()));
    let sid = SessionId([1; 16]);
    let b = BundleId([2; 16]);
    assert!(!s.commit(sid, &[]).unwrap());
    let persist = [
        Persist::Keys(vec![9; 4]),
        Persist::Bundle {
            bundle: b,
            bytes: vec![5; 3],
        },
        Persist::Session(vec![7]),
    ];
    assert!(s.commit(sid, &persist).unwrap());
    assert_eq!(s.keys().unwrap().unwrap().as_slice(), &[9; 4]);
    assert_eq!(
        s.record(sid).unwrap().as_deref().map(Vec::as_slice),
        Some(&[7u8][..])
    );
    assert_eq!(s.bundles_of(sid).unwrap(), 1);
    let sum = s.summary().unwrap();
    assert!(sum.has_key && sum.sessions == 1 && sum.bundles == 1);
    let take = |b| s.take_records(sid, &[b], &[]).unwrap().0;
    assert_eq!(take(b), vec![Some(vec![5; 3])]);
    assert_eq!(take(b), vec![None]);
    let p = [Persist::Bundle {
        bundle: b,
        bytes: vec![1],
    }];
    s.commit(sid, &p).unwrap();
    let chunk = |stage, chunk| Persist::Chunk {
        bundle: b,
        stage,
        chunk,
        bytes: vec![stage as u8, chunk as u8],
    };
    s.commit(sid, &[chunk(0, 0), chunk(0, 1), chunk(1, 0)])
        .unwrap();
    assert_eq!(s.chunks_of(sid).unwrap(), 3);
    let t = ChunkTake {
        bundle: b,
        stage: 0,
        chunks: 3,
    };
    assert_eq!(
        s.take_records(sid, &[], &[t]).unwrap().1,
        vec![vec![Some(vec![0, 0]), Some(vec![0, 1]), None]]
    );
    assert_eq!(s.chunks_of(sid).unwrap(), 1);
    s.commit(sid, &[Persist::ForgetChunks(b)]).unwrap();
    assert_eq!(s.chunks_of(sid).unwrap(), 0);
    s.commit(sid, &[chunk(2, 0)]).unwrap();
    s.forget_session(sid).unwrap();
    assert_eq!(s.chunks_of(sid).unwrap(), 0);
    assert!(s.record(sid).unwrap().is_none());
    assert_eq!(s.bundles_of(sid).unwrap(), 0);
    assert!(s.keys().unwrap().is_some());
}

/// A store whose values under keys starting with 0xee read as damaged.
struct Scribbled(MemStore);

impl Store for Scribbled {
    fn get(&self, tree: Tree<'_>, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if key.first() == Some(&0xee) {
            return Err(StoreError::Corrupt {
                tree: tree.db_name()?,
                key: String::new(),
            });
        }
        self.0.get(tree, key)
    }
    fn put(&self, tree: Tree<'_>, key: &[u8], value: &[u8]) -> Result<()> {
        self.0.put(tree, key, value)
    }
    fn delete(&self, tree: Tree<'_>, key: &[u8]) -> Result<bool> {
        self.0.delete(tree, key)
    }
    fn scan_prefix(&self, tree: Tree<'_>, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.0.scan_prefix(tree, prefix)
    }
    fn apply(&self, batch: WriteBatch<'_>) -> Result<()> {
        self.0.apply(batch)
    }
    fn take(&self, tree: Tree<'_>, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.0.take(tree, key)
    }
    fn flush(&self) -> Result<()> {
        Ok(())
    }
}

#[test]
fn damaged_disposable_records_are_dropped_and_a_damaged_key_share_is_critical() {
    let raw = Arc::new(Scribbled(MemStore::new()));
    let s = NodeStore::new(raw.clone());
    s.commit(SessionId([1; 16]), &[Persist::Keys(vec![7])])
        .unwrap();
    raw.put(Tree::Bundles, &[0xee, 1], b"x").unwrap();
    raw.put(CHUNK_TREE, &[0xee, 2], b"x").unwrap();
    raw.put(CHUNK_TREE, &[3], b"x").unwrap();
    let found = s.drop_damaged().unwrap();
    assert_eq!((found.checked, found.disposable.len()), (2, 2));
    assert!(found.critical.is_empty());
    assert_eq!(found.describe(), "1 in seco.bundles, 1 in seco.chunks");
    assert_eq!(s.damaged_records().unwrap().count(), 0);
    assert_eq!(raw.keys(CHUNK_TREE, &[]).unwrap(), vec![vec![3]]);

    raw.put(Tree::KeyShares, &[0xee], b"x").unwrap();
    raw.put(Tree::Bundles, &[0xee, 4], b"x").unwrap();
    let found = s.drop_damaged().unwrap();
    assert_eq!(found.critical, vec!["seco.key_shares".to_string()]);
    // Nothing is dropped from a store that is refused.
    assert_eq!(raw.keys(Tree::Bundles, &[]).unwrap().len(), 1);
}

#[test]
fn a_take_that_helps_the_arming_reads_gets_every_record_once_and_removes_them() {
    let s = NodeStore::new(Arc::new(MemStore::new()));
    let (sid, b) = (SessionId([5; 16]), BundleId([6; 16]));
    s.put_test_bundle(sid, b, &[9; 4], &[(0, 200), (1, 50)]);
    let reads = s.bundle_reads(sid, b).unwrap();
    // The arming thread and a take that needs the bundle now read at the same time.
    let (s2, r2) = (s.clone(), reads.clone());
    let thread = std::thread::spawn(move || {
        s2.read_chunks(&r2, false);
        s2.finish_take(&r2, 1 << 20)
    });
    s.read_chunks(&reads, true);
    let mut armed = thread.join().unwrap().unwrap().unwrap();
    assert_eq!(armed.bytes(), 4 + 250 * 5);
    assert_eq!(armed.take_record(), Some(vec![9; 4]));
    for (stage, chunks) in [(0u16, 200u32), (1, 50)] {
        for c in 0..chunks {
            assert_eq!(
                armed.take_chunk(stage, c),
                Some(vec![c as u8; 5]),
                "{stage} {c}"
            );
        }
    }
    assert!(armed.is_empty());
    // Removed durably: nothing of it is left to take again.
    let take = ChunkTake {
        bundle: b,
        stage: 0,
        chunks: 200,
    };
    let (r, c) = s.take_records(sid, &[b], &[take]).unwrap();
    assert_eq!(r, vec![None]);
    assert!(c[0].iter().all(Option::is_none));
}

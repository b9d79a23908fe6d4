//! The same suite on `MemStore` and `SledStore`, plus crash safety of `SledStore` (a child process
//! writes, flushes or takes, then aborts without running any destructor; the parent reopens).

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use seco_runtime::store::{MemStore, SledStore, Store, StoreError, Tree, WriteBatch};

fn suite(store: &dyn Store) {
    basic(store);
    trees_are_separate_and_names_checked(store);
    scan_prefix_in_key_order(store);
    batch_is_atomic_across_trees(store);
    take_returns_once(store);
}

fn basic(s: &dyn Store) {
    assert_eq!(s.get(Tree::Identity, b"k").unwrap(), None);
    s.put(Tree::Identity, b"k", b"v1").unwrap();
    s.put(Tree::Identity, b"k", b"v2").unwrap();
    assert_eq!(s.get(Tree::Identity, b"k").unwrap(), Some(b"v2".to_vec()));
    assert!(s.delete(Tree::Identity, b"k").unwrap());
    assert!(!s.delete(Tree::Identity, b"k").unwrap());
    assert_eq!(s.get(Tree::Identity, b"k").unwrap(), None);
    s.flush().unwrap();
}

fn trees_are_separate_and_names_checked(s: &dyn Store) {
    s.put(Tree::KeyShares, b"x", b"share").unwrap();
    s.put(Tree::Named("extra"), b"x", b"other").unwrap();
    assert_eq!(s.get(Tree::SessionPhase, b"x").unwrap(), None);
    assert_eq!(
        s.get(Tree::Named("extra"), b"x").unwrap(),
        Some(b"other".to_vec())
    );
    assert_eq!(
        s.get(Tree::KeyShares, b"x").unwrap(),
        Some(b"share".to_vec())
    );
    for bad in ["", "Upper", "a/b", &"x".repeat(65)] {
        assert!(
            matches!(
                s.put(Tree::Named(bad), b"k", b"v"),
                Err(StoreError::BadTreeName(_))
            ),
            "{bad:?}"
        );
    }
}

fn scan_prefix_in_key_order(s: &dyn Store) {
    for k in [&b"b/2"[..], b"a/1", b"b/1", b"b", b"c/1"] {
        s.put(Tree::Bundles, k, k).unwrap();
    }
    let keys: Vec<Vec<u8>> = s
        .scan_prefix(Tree::Bundles, b"b/")
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(keys, vec![b"b/1".to_vec(), b"b/2".to_vec()]);
    assert_eq!(s.scan_prefix(Tree::Bundles, b"").unwrap().len(), 5);
    assert!(s.scan_prefix(Tree::Named("empty"), b"").unwrap().is_empty());
}

fn batch_is_atomic_across_trees(s: &dyn Store) {
    s.put(Tree::SessionPhase, b"s1", b"old").unwrap();
    let batch = WriteBatch::new()
        .put(Tree::SessionPhase, &b"s1"[..], &b"online"[..])
        .delete(Tree::Bundles, &b"a/1"[..])
        .put(Tree::Named("log"), &b"1"[..], &b"x"[..]);
    s.apply(batch).unwrap();
    assert_eq!(
        s.get(Tree::SessionPhase, b"s1").unwrap(),
        Some(b"online".to_vec())
    );
    assert_eq!(s.get(Tree::Bundles, b"a/1").unwrap(), None);
    assert_eq!(
        s.get(Tree::Named("log"), b"1").unwrap(),
        Some(b"x".to_vec())
    );
    // A batch with a bad tree name changes nothing.
    let bad = WriteBatch::new()
        .put(Tree::SessionPhase, &b"s1"[..], &b"new"[..])
        .put(Tree::Named("B A D"), &b"k"[..], &b"v"[..]);
    assert!(s.apply(bad).is_err());
    assert_eq!(
        s.get(Tree::SessionPhase, b"s1").unwrap(),
        Some(b"online".to_vec())
    );
    s.apply(WriteBatch::new()).unwrap();
}

fn take_returns_once(s: &dyn Store) {
    s.put(Tree::Bundles, b"bundle/7", b"masks").unwrap();
    assert_eq!(
        s.take(Tree::Bundles, b"bundle/7").unwrap(),
        Some(b"masks".to_vec())
    );
    assert_eq!(s.take(Tree::Bundles, b"bundle/7").unwrap(), None);
    assert_eq!(s.get(Tree::Bundles, b"bundle/7").unwrap(), None);
}

/// Eight threads race to take the same 50 bundles: each is taken exactly once.
fn concurrent_takes(s: Arc<dyn Store>) {
    for i in 0..50u32 {
        s.put(Tree::Bundles, &i.to_be_bytes(), b"b").unwrap();
    }
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let s = s.clone();
            std::thread::spawn(move || {
                (0..50u32)
                    .filter(|i| s.take(Tree::Bundles, &i.to_be_bytes()).unwrap().is_some())
                    .count()
            })
        })
        .collect();
    let taken: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(taken, 50);
}

#[test]
fn mem_store_suite() {
    let s = MemStore::new();
    suite(&s);
    concurrent_takes(Arc::new(s.clone()));
}

#[test]
fn sled_store_suite() {
    let dir = tempfile::tempdir().unwrap();
    let s = SledStore::open(dir.path()).unwrap();
    suite(&s);
    concurrent_takes(Arc::new(s));
}

#[test]
fn sled_store_reopens_with_its_data() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = SledStore::open(dir.path()).unwrap();
        s.put(Tree::KeyShares, b"sk", b"share").unwrap();
        s.flush().unwrap();
    }
    let s = SledStore::open(dir.path()).unwrap();
    assert_eq!(
        s.get(Tree::KeyShares, b"sk").unwrap(),
        Some(b"share".to_vec())
    );
}

const CHILD_ENV: &str = "SECO_STORE_CRASH_CHILD";

/// Runs `crash_child` of this test binary in a child process with `dir` and `step`, which aborts.
fn run_child(dir: &Path, step: &str) {
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, format!("{step}:{}", dir.display()))
        .status()
        .unwrap();
    assert!(!status.success(), "the child must abort, not exit cleanly");
}

/// The child side: not a test of its own (returns at once unless started by `run_child`).
#[test]
fn crash_child() {
    let Ok(arg) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (step, dir) = arg.split_once(':').unwrap();
    let s = SledStore::open(Path::new(dir)).unwrap();
    match step {
        "write" => {
            s.apply(
                WriteBatch::new()
                    .put(Tree::KeyShares, &b"sk"[..], &b"share"[..])
                    .put(Tree::Bundles, &b"b1"[..], &b"m1"[..])
                    .put(Tree::Bundles, &b"b2"[..], &b"m2"[..]),
            )
            .unwrap();
            s.flush().unwrap();
        }
        "take" => {
            assert_eq!(s.take(Tree::Bundles, b"b1").unwrap(), Some(b"m1".to_vec()));
        }
        _ => {}
    }
    // Die without destructors: nothing after the commit point may help.
    std::process::abort();
}

#[test]
fn flushed_writes_and_takes_survive_an_abort() {
    let dir = tempfile::tempdir().unwrap();
    run_child(dir.path(), "write");
    {
        let s = SledStore::open(dir.path()).unwrap();
        assert_eq!(
            s.get(Tree::KeyShares, b"sk").unwrap(),
            Some(b"share".to_vec())
        );
        assert_eq!(s.scan_prefix(Tree::Bundles, b"b").unwrap().len(), 2);
    }
    run_child(dir.path(), "take");
    let s = SledStore::open(dir.path()).unwrap();
    assert_eq!(
        s.get(Tree::Bundles, b"b1").unwrap(),
        None,
        "a taken bundle must stay taken"
    );
    assert_eq!(s.get(Tree::Bundles, b"b2").unwrap(), Some(b"m2".to_vec()));
}

/// Large values (at least `BLOB_MIN` bytes) live in files beside the database: every operation
/// sees them as values, a taken or deleted one's file is gone after the flush, they survive a
/// reopen, and a file no reference points to is removed when the store opens.
#[test]
fn sled_store_keeps_large_values_in_files() {
    use seco_runtime::store::BLOB_MIN;
    let dir = tempfile::tempdir().unwrap();
    let blobs = dir.path().join("blobs");
    let files = || std::fs::read_dir(&blobs).unwrap().count();
    let big = |b: u8| vec![b; BLOB_MIN + 5];
    {
        let s = SledStore::open(dir.path()).unwrap();
        s.put(Tree::Bundles, b"a", &big(1)).unwrap();
        s.apply(WriteBatch::new().put(Tree::Bundles, b"b".to_vec(), big(2)))
            .unwrap();
        s.put(Tree::Bundles, b"c", b"small").unwrap();
        assert_eq!(s.get(Tree::Bundles, b"a").unwrap(), Some(big(1)));
        let all = s.scan_prefix(Tree::Bundles, b"").unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[1].1, big(2));
        s.flush().unwrap();
        assert_eq!(files(), 2);
        // Overwrite, take, delete: their files go at the flush.
        s.put(Tree::Bundles, b"a", &big(3)).unwrap();
        s.flush().unwrap();
        assert_eq!(files(), 2);
        assert_eq!(s.take(Tree::Bundles, b"b").unwrap(), Some(big(2)));
        assert_eq!(s.take(Tree::Bundles, b"b").unwrap(), None);
        assert_eq!(files(), 1);
        s.flush().unwrap();
    }
    // An orphan (a crash between the file and its reference) is removed at open.
    std::fs::write(blobs.join("00000000000000000000000000000000"), b"orphan").unwrap();
    let s = SledStore::open(dir.path()).unwrap();
    assert_eq!(files(), 1);
    assert_eq!(s.get(Tree::Bundles, b"a").unwrap(), Some(big(3)));
    assert!(s.delete(Tree::Bundles, b"a").unwrap());
    s.flush().unwrap();
    assert_eq!(files(), 0);
}

#[test]
fn batches_print_no_values() {
    let batch = WriteBatch::new()
        .put(Tree::KeyShares, b"k".to_vec(), vec![0xa7; 5])
        .delete(Tree::Bundles, b"b".to_vec());
    let debug = format!("{batch:?}");
    assert!(debug.contains("value: 5 bytes [redacted]"), "{debug}");
    assert!(!debug.contains("167"), "{debug}");
    assert!(debug.contains("Delete"), "{debug}");
}

//! The sealed store (`store/sealed.rs`): records unreadable without the key, changed records
//! refused, a truncated or replaced database refused (never opened as empty), key shares
//! recoverable from their separate copy, and the key file's checks.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use seco_runtime::store::{
    SealedStore, SledStore, Store, StoreError, StoreKey, Tree, WriteBatch, FORMAT_FILE,
};

fn open(dir: &Path, key: &StoreKey) -> Result<SealedStore<SledStore>, StoreError> {
    SealedStore::open(SledStore::open(dir)?, key, dir)
}

fn files_contain(dir: &Path, needle: &[u8]) -> bool {
    fs::read_dir(dir).unwrap().flatten().any(|e| {
        let p = e.path();
        if p.is_dir() {
            files_contain(&p, needle)
        } else {
            let b = fs::read(&p).unwrap_or_default();
            b.windows(needle.len()).any(|w| w == needle)
        }
    })
}

#[test]
fn records_round_trip_and_nothing_is_readable_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let key = StoreKey::random();
    let secret = b"SECRET-share-0123456789".repeat(4);
    let large = b"SECRET-share-0123456789".repeat(4000); // a blob file
    {
        let s = open(dir.path(), &key).unwrap();
        s.put(Tree::KeyShares, b"k1", &secret).unwrap();
        s.apply(WriteBatch::new().put(Tree::Bundles, b"b1".to_vec(), large.clone()))
            .unwrap();
        s.flush().unwrap();
    }
    let s = open(dir.path(), &key).unwrap();
    assert_eq!(s.get(Tree::KeyShares, b"k1").unwrap(), Some(secret.clone()));
    assert_eq!(s.take(Tree::Bundles, b"b1").unwrap(), Some(large));
    assert_eq!(s.scan_prefix(Tree::KeyShares, b"").unwrap().len(), 1);
    drop(s);
    assert!(
        !files_contain(dir.path(), b"SECRET-share"),
        "a plaintext on disk"
    );
}

#[test]
fn a_changed_or_moved_record_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = StoreKey::random();
    let s = open(dir.path(), &key).unwrap();
    s.put(Tree::Bundles, b"a", b"value a").unwrap();
    s.put(Tree::Bundles, b"b", b"value b").unwrap();
    let mut raw = s.inner().get(Tree::Bundles, b"a").unwrap().unwrap();
    // Moved under another key: the tag binds tree and key.
    s.inner().put(Tree::Bundles, b"b", &raw).unwrap();
    assert!(matches!(
        s.get(Tree::Bundles, b"b"),
        Err(StoreError::Corrupt { .. })
    ));
    // One byte changed.
    let last = raw.len() - 1;
    raw[last] ^= 1;
    s.inner().put(Tree::Bundles, b"a", &raw).unwrap();
    assert!(matches!(
        s.get(Tree::Bundles, b"a"),
        Err(StoreError::Corrupt { .. })
    ));
    assert!(s.scan_prefix(Tree::Bundles, b"").is_err());
    // Too short.
    s.inner().put(Tree::Bundles, b"a", b"x").unwrap();
    assert!(matches!(
        s.take(Tree::Bundles, b"a"),
        Err(StoreError::Corrupt { .. })
    ));
}

#[test]
fn a_wrong_key_a_lost_format_record_or_a_missing_format_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = StoreKey::random();
    {
        let s = open(dir.path(), &key).unwrap();
        s.put(Tree::KeyShares, b"k", b"share").unwrap();
        s.flush().unwrap();
    }
    assert!(matches!(
        open(dir.path(), &StoreKey::random()),
        Err(StoreError::WrongKey(_))
    ));
    // The database loses its records (as sled does with a truncated file).
    {
        let sled = SledStore::open(dir.path()).unwrap();
        sled.delete(Tree::Named("seco.meta"), b"format").unwrap();
        sled.flush().unwrap();
    }
    let e = open(dir.path(), &key).unwrap_err();
    assert!(matches!(e, StoreError::Lost { .. }), "{e}");
    assert!(
        e.to_string().contains(&dir.path().display().to_string()),
        "{e}"
    );
    // The key shares gone while their copy has them (a truncation that kept the format).
    let third = tempfile::tempdir().unwrap();
    {
        let s = open(third.path(), &key).unwrap();
        s.put(Tree::KeyShares, b"k", b"share").unwrap();
        s.flush().unwrap();
        s.inner().delete(Tree::KeyShares, b"k").unwrap();
        s.inner().flush().unwrap();
    }
    let e = open(third.path(), &key).unwrap_err();
    assert!(e.to_string().contains("key shares are gone"), "{e}");
    // A database without its FORMAT file.
    let other = tempfile::tempdir().unwrap();
    open(other.path(), &key).unwrap();
    fs::remove_file(other.path().join(FORMAT_FILE)).unwrap();
    assert!(matches!(
        open(other.path(), &key),
        Err(StoreError::Lost { .. })
    ));
}

#[test]
fn a_truncated_database_is_never_opened_as_empty() {
    for cut in [0.0, 0.5] {
        let dir = tempfile::tempdir().unwrap();
        let key = StoreKey::random();
        {
            let s = open(dir.path(), &key).unwrap();
            for i in 0..50u32 {
                s.put(Tree::Bundles, &i.to_be_bytes(), &[7u8; 3000])
                    .unwrap();
            }
            s.put(Tree::KeyShares, b"k", b"share").unwrap();
            s.flush().unwrap();
        }
        let db = dir.path().join("db");
        let len = fs::metadata(&db).unwrap().len();
        let f = fs::OpenOptions::new().write(true).open(&db).unwrap();
        f.set_len((len as f64 * cut) as u64).unwrap();
        drop(f);
        // Refused, or opened with its key share (sled recovers a truncated log up to the last
        // complete segment); never opened without it.
        if let Ok(s) = open(dir.path(), &key) {
            assert_eq!(
                s.get(Tree::KeyShares, b"k").unwrap(),
                Some(b"share".to_vec())
            );
        }
        // The key shares are in their separate copy either way.
        let shares = SealedStore::<SledStore>::read_key_backup(dir.path(), &key).unwrap();
        assert_eq!(shares, vec![(b"k".to_vec(), b"share".to_vec())]);
    }
}

#[test]
fn the_key_file_is_created_private_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.key");
    let k1 = StoreKey::load_or_create(&path).unwrap();
    let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(format!("{k1:?}"), "StoreKey([redacted])");
    // The same key next time: a store sealed with it opens.
    let db = dir.path().join("db");
    open(&db, &k1).unwrap();
    let k2 = StoreKey::load_or_create(&path).unwrap();
    open(&db, &k2).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    assert!(matches!(
        StoreKey::load_or_create(&path),
        Err(StoreError::BadKey(_))
    ));
    fs::write(&path, b"short").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    assert!(matches!(
        StoreKey::load_or_create(&path),
        Err(StoreError::BadKey(_))
    ));
}

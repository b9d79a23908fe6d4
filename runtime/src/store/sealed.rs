//! [`SealedStore`]: every record encrypted and authenticated at rest, a format record that
//! detects a truncated or replaced store, and a separate copy of the key shares.
//!
//! **Records.** A value is stored as `version (1 byte) | nonce (24) | ciphertext and tag`
//! (AES-256-GCM under a key of its own since version 2, XChaCha20-Poly1305 in version 1, which
//! still opens: `seal.rs`), with associated data `"seco-record-v2" | tree name | 0 | key`,
//! under a 32-byte store key held outside the store ([`StoreKey`]: a key file of mode 0600 or
//! the `SECO_STORE_KEY` environment variable). So a copy of the data directory without the key
//! reveals nothing but record sizes and keys (ids, no secrets), and a record changed on disk,
//! or moved to another key or tree, fails its tag: [`StoreError::Corrupt`] naming the tree,
//! never a wrong value. Random 192-bit nonces never repeat in practice.
//!
//! **Format.** A new store gets a random 16-byte store id, written twice: sealed in the record
//! `seco.meta/format`, and in plain text in the file `FORMAT` beside the database
//! (`seco-store 1 <id>`, fsynced). At open: no `FORMAT` and no format record is a new store;
//! `FORMAT` without a matching format record is a store that lost records (a truncated or
//! replaced database: sled opens a truncated file as empty) and is refused
//! ([`StoreError::Lost`]); a format record that does not open is the wrong key
//! ([`StoreError::WrongKey`]).
//!
//! **Key shares survive.** At the first flush after a write that touches [`Tree::KeyShares`],
//! once the database is on disk, the whole tree is also written, sealed, to the file
//! `keyshares.backup` (temporary file, fsync, rename): the copy is never newer than what the
//! database committed. A store whose key shares are gone while the copy has some is refused as
//! lost (a truncation that kept the format record); [`SealedStore::read_key_backup`] reads the
//! copy back for a fresh store (`seco store reset`, docs/operations.md).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::seal::RecordCipher;
use super::{Op, Result, Store, StoreError, Tree, WriteBatch};

/// Format version of the `FORMAT` file (records carry their own version, `seal.rs`).
pub const SEALED_VERSION: u8 = 1;
/// The file beside the database that says a store exists.
pub const FORMAT_FILE: &str = "FORMAT";
/// The sealed copy of the key shares.
pub const KEY_BACKUP_FILE: &str = "keyshares.backup";
/// Environment variable that may hold the store key (64 hex digits).
pub const STORE_KEY_ENV: &str = "SECO_STORE_KEY";

const META: Tree<'static> = Tree::Named("seco.meta");
const FORMAT_KEY: &[u8] = b"format";

/// The 32-byte key that seals a store (zeroized on drop; never printed).
#[derive(Clone)]
pub struct StoreKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreKey([redacted])")
    }
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Sled(sled::Error::Io(std::io::Error::new(
        e.kind(),
        format!("{what} {}: {e}", path.display()),
    )))
}

/// Writes `bytes` to `path` durably: temporary file, fsync, rename, directory fsync.
fn write_durably(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| io_err("cannot write", &tmp, e))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| io_err("cannot write", &tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| io_err("cannot rename to", path, e))?;
    if let Some(dir) = path.parent() {
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

impl StoreKey {
    /// A key from 32 bytes.
    pub fn from_bytes(b: [u8; 32]) -> Self {
        Self(Zeroizing::new(b))
    }

    /// A fresh random key.
    pub fn random() -> Self {
        Self::from_bytes(rand::random())
    }

    /// The key from [`STORE_KEY_ENV`] if set (64 hex digits), else from `path`, created (mode
    /// 0600) if missing. A key file must be 32 bytes and readable by its owner only.
    pub fn load_or_create(path: &Path) -> Result<Self> {
        if let Ok(hex) = std::env::var(STORE_KEY_ENV) {
            return Self::from_hex(hex.trim()).ok_or_else(|| {
                StoreError::BadKey(format!("{STORE_KEY_ENV} is not 64 hex digits"))
            });
        }
        if !path.exists() {
            let key = Self::random();
            write_durably(path, &key.0[..], 0o600)?;
            return Ok(key);
        }
        use std::os::unix::fs::PermissionsExt;
        let meta = fs::metadata(path).map_err(|e| io_err("cannot read", path, e))?;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(StoreError::BadKey(format!(
                "store key file {} is readable by others (chmod 600 it)",
                path.display()
            )));
        }
        let bytes = Zeroizing::new(fs::read(path).map_err(|e| io_err("cannot read", path, e))?);
        let b: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            StoreError::BadKey(format!("store key file {} is not 32 bytes", path.display()))
        })?;
        Ok(Self::from_bytes(b))
    }

    fn from_hex(s: &str) -> Option<Self> {
        if s.len() != 64 {
            return None;
        }
        let mut b = [0u8; 32];
        for (i, out) in b.iter_mut().enumerate() {
            *out = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Self::from_bytes(b))
    }

    fn cipher(&self) -> RecordCipher {
        RecordCipher::new(&self.0)
    }
}

/// A record's place, bound into its associated data: tree name, 0, key.
fn aad(tree: Tree<'_>, key: &[u8]) -> Result<Vec<u8>> {
    let mut a = tree.db_name()?.as_bytes().to_vec();
    a.push(0);
    a.extend_from_slice(key);
    Ok(a)
}

/// A store whose records are sealed (module docs).
pub struct SealedStore<S: Store> {
    inner: S,
    cipher: RecordCipher,
    dir: PathBuf,
    /// Key shares written since the last backup.
    keys_dirty: std::sync::atomic::AtomicBool,
    /// The key share copy could not be written (a disk failure, like the inner store's).
    backup_failed: std::sync::Mutex<Option<String>>,
}

impl<S: Store> std::fmt::Debug for SealedStore<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealedStore({})", self.dir.display())
    }
}

impl<S: Store> SealedStore<S> {
    /// Seals `inner`, whose files are in `dir` (`FORMAT` and the key backup go there too);
    /// checks the format (module docs).
    pub fn open(inner: S, key: &StoreKey, dir: &Path) -> Result<Self> {
        let s = Self {
            inner,
            cipher: key.cipher(),
            dir: dir.to_path_buf(),
            keys_dirty: false.into(),
            backup_failed: std::sync::Mutex::new(None),
        };
        let format_path = dir.join(FORMAT_FILE);
        let file_id = match fs::read_to_string(&format_path) {
            Ok(text) => Some(parse_format(&text).ok_or_else(|| StoreError::Lost {
                path: format_path.display().to_string(),
                why: "its FORMAT file does not parse".into(),
            })?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err("cannot read", &format_path, e)),
        };
        let stored = s.inner.get(META, FORMAT_KEY)?;
        let lost = |why: &str| StoreError::Lost {
            path: dir.display().to_string(),
            why: why.into(),
        };
        match (file_id, stored) {
            (None, None) => {
                let id: [u8; 16] = rand::random();
                s.put(META, FORMAT_KEY, &id)?;
                s.inner.flush()?;
                let text = format!("seco-store {SEALED_VERSION} {}\n", hex(&id));
                write_durably(&format_path, text.as_bytes(), 0o600)?;
            }
            (Some(_), None) => {
                return Err(lost(
                    "the database lost its format record (truncated or replaced)",
                ))
            }
            (None, Some(_)) => return Err(lost("the FORMAT file is missing")),
            (Some(id), Some(sealed)) => {
                let got = s
                    .open_record(META, FORMAT_KEY, &sealed)
                    .map_err(|_| StoreError::WrongKey(dir.display().to_string()))?;
                if got.as_slice() != id {
                    return Err(lost("the database belongs to another store"));
                }
            }
        }
        if dir.join(KEY_BACKUP_FILE).exists()
            && s.scan_prefix(Tree::KeyShares, &[])?.is_empty()
            && !Self::read_key_backup(dir, key)?.is_empty()
        {
            return Err(lost(
                "its key shares are gone (their copy is in keyshares.backup)",
            ));
        }
        Ok(s)
    }

    /// The wrapped store (tests, the store inspection command).
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn seal(&self, tree: Tree<'_>, key: &[u8], value: &[u8]) -> Result<Vec<u8>> {
        self.cipher
            .seal(&aad(tree, key)?, value)
            .ok_or_else(|| StoreError::BadKey("encryption failed".into()))
    }

    fn open_record(&self, tree: Tree<'_>, key: &[u8], sealed: &[u8]) -> Result<Vec<u8>> {
        self.open_owned(tree, key, sealed.to_vec())
    }

    /// Opens a sealed record in place: the sealed buffer becomes the plaintext (decrypted where
    /// it is, then moved 25 bytes forward), so a large record (a stage's garbled tables,
    /// megabytes) needs no second buffer.
    fn open_owned(&self, tree: Tree<'_>, key: &[u8], sealed: Vec<u8>) -> Result<Vec<u8>> {
        self.cipher
            .open(&aad(tree, key)?, sealed)
            .ok_or_else(|| StoreError::corrupt(tree, key))
    }

    fn touched(&self, tree: Tree<'_>) {
        if tree == Tree::KeyShares {
            self.keys_dirty
                .store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// Writes the sealed copy of every key share record.
    fn backup_key_shares(&self) -> Result<()> {
        let records = self.scan_prefix(Tree::KeyShares, &[])?;
        let mut plain = Vec::new();
        let _ = ciborium::into_writer(&records, &mut plain);
        let plain = Zeroizing::new(plain);
        let sealed = self.seal(META, b"keyshares.backup", &plain)?;
        write_durably(&self.dir.join(KEY_BACKUP_FILE), &sealed, 0o600)
    }

    /// The key share records of the backup file in `dir` (sealed with `key`), for restoring
    /// them into a fresh store.
    pub fn read_key_backup(dir: &Path, key: &StoreKey) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let path = dir.join(KEY_BACKUP_FILE);
        let sealed = fs::read(&path).map_err(|e| io_err("cannot read", &path, e))?;
        let s = SealedStore {
            inner: super::MemStore::new(),
            cipher: key.cipher(),
            dir: dir.to_path_buf(),
            keys_dirty: false.into(),
            backup_failed: std::sync::Mutex::new(None),
        };
        let plain = Zeroizing::new(s.open_record(META, b"keyshares.backup", &sealed)?);
        ciborium::from_reader(plain.as_slice()).map_err(|_| StoreError::Corrupt {
            tree: KEY_BACKUP_FILE.into(),
            key: String::new(),
        })
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The store id of a `FORMAT` file's text.
fn parse_format(text: &str) -> Option<[u8; 16]> {
    let mut it = text.split_whitespace();
    if it.next()? != "seco-store" || it.next()? != SEALED_VERSION.to_string() {
        return None;
    }
    let h = it.next()?;
    if h.len() != 32 {
        return None;
    }
    let mut id = [0u8; 16];
    for (i, out) in id.iter_mut().enumerate() {
        *out = u8::from_str_radix(h.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(id)
}

impl<S: Store> Store for SealedStore<S> {
    fn get(&self, tree: Tree<'_>, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.inner.get(tree, key)? {
            Some(v) => self.open_owned(tree, key, v).map(Some),
            None => Ok(None),
        }
    }

    fn put(&self, tree: Tree<'_>, key: &[u8], value: &[u8]) -> Result<()> {
        let sealed = self.seal(tree, key, value)?;
        self.inner.put(tree, key, &sealed)?;
        self.touched(tree);
        Ok(())
    }

    fn delete(&self, tree: Tree<'_>, key: &[u8]) -> Result<bool> {
        let was = self.inner.delete(tree, key)?;
        self.touched(tree);
        Ok(was)
    }

    fn scan_prefix(&self, tree: Tree<'_>, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.inner
            .scan_prefix(tree, prefix)?
            .into_iter()
            .map(|(k, v)| {
                let plain = self.open_owned(tree, &k, v)?;
                Ok((k, plain))
            })
            .collect()
    }

    fn keys(&self, tree: Tree<'_>, prefix: &[u8]) -> Result<Vec<Vec<u8>>> {
        self.inner.keys(tree, prefix)
    }

    fn apply(&self, batch: WriteBatch<'_>) -> Result<()> {
        let mut sealed = WriteBatch::new();
        let mut keys = false;
        for op in batch.ops() {
            sealed = match op {
                Op::Put { tree, key, value } => {
                    keys |= *tree == Tree::KeyShares;
                    sealed.put(*tree, key.clone(), self.seal(*tree, key, value)?)
                }
                Op::Delete { tree, key } => {
                    keys |= *tree == Tree::KeyShares;
                    sealed.delete(*tree, key.clone())
                }
            };
        }
        self.inner.apply(sealed)?;
        if keys {
            self.touched(Tree::KeyShares);
        }
        Ok(())
    }

    fn take(&self, tree: Tree<'_>, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.inner.take(tree, key)? {
            Some(v) => self.open_owned(tree, key, v).map(Some),
            None => Ok(None),
        }
    }

    fn flush(&self) -> Result<()> {
        self.inner.flush()?;
        if self
            .keys_dirty
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            if let Err(e) = self.backup_key_shares() {
                // The copy must not stay behind the database: retried at the next flush,
                // and the store counts as failed (the node stops).
                self.keys_dirty
                    .store(true, std::sync::atomic::Ordering::SeqCst);
                let e = StoreError::Failed {
                    path: self.dir.join(KEY_BACKUP_FILE).display().to_string(),
                    op: "key share copy",
                    why: e.to_string(),
                };
                if let Ok(mut f) = self.backup_failed.lock() {
                    f.get_or_insert_with(|| e.to_string());
                }
                return Err(e);
            }
        }
        Ok(())
    }

    fn failure(&self) -> Option<String> {
        let own = self.backup_failed.lock().ok().and_then(|f| f.clone());
        own.or_else(|| self.inner.failure())
    }
}

//! [`SledStore`]: the store on disk, sled 0.34.
//!
//! Each [`Tree`](super::Tree) is a sled tree of one database. `flush` is sled's `Db::flush`
//! (write and fsync every dirty buffer); `take` is `Tree::remove` followed by that flush;
//! `apply` is one sled transaction over every tree the batch touches.
//!
//! **Large values live in files.** sled 0.34 keeps every value it has written in memory (measured:
//! RSS grows by exactly the bytes written, 4 MB values, and stays there after they are removed,
//! whatever `cache_capacity`), and a node writes and consumes hundreds of MB of garbled tables per
//! bundle. So a value of at least [`BLOB_MIN`] bytes goes to its own file in `blobs/` beside the
//! database (written to a temporary name, fsynced, renamed, directory fsynced) *before* the sled
//! write that refers to it, and sled holds only a 32-byte reference. A reference removed or
//! overwritten queues its file for deletion, which happens after the next successful flush, so a
//! crash can leave an orphan file but never a dangling reference; orphans are removed when the
//! store opens. sled's page cache is capped at [`CACHE_BYTES`].

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};

use super::{Op, Result, Store, StoreError, Tree, WriteBatch};

/// sled's page cache (bytes).
pub const CACHE_BYTES: u64 = 64 << 20;

/// How long [`SledStore::open`] waits for a database lock held by a handle being dropped.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Values of at least this many bytes are stored as files (`blobs/`).
pub const BLOB_MIN: usize = 64 << 10;

/// The start of a reference to a blob file; 16 bytes of file id follow.
const BLOB_REF: &[u8; 16] = b"seco-blob-ref-v1";

/// A sled database, with large values in files beside it.
#[derive(Debug, Clone)]
pub struct SledStore {
    db: sled::Db,
    dir: PathBuf,
    blobs: PathBuf,
    /// Blob files whose references are gone, deleted after the next successful flush.
    doomed: Arc<Mutex<Vec<PathBuf>>>,
    /// The first write or flush that failed on disk; every later write is refused with it.
    failed: Arc<Mutex<Option<String>>>,
}

/// The file id of a blob reference, if `v` is one.
fn blob_id(v: &[u8]) -> Option<[u8; 16]> {
    if v.len() != 32 || &v[..16] != BLOB_REF {
        return None;
    }
    let mut id = [0u8; 16];
    id.copy_from_slice(&v[16..]);
    Some(id)
}

fn hex(id: &[u8; 16]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Sled(sled::Error::Io(std::io::Error::new(
        e.kind(),
        format!("{what} {}: {e}", path.display()),
    )))
}

impl SledStore {
    /// Whether another handle, e.g. a running node, holds the database in `path`: sled keeps an
    /// exclusive lock on its `db` file while open. Checked without opening the database, so a
    /// damaged one is not touched. A missing file is not in use.
    pub fn in_use(path: &Path) -> bool {
        let Ok(f) = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path.join("db"))
        else {
            return false;
        };
        match fs2::FileExt::try_lock_exclusive(&f) {
            Ok(()) => {
                let _ = fs2::FileExt::unlock(&f);
                false
            }
            Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
        }
    }

    /// Opens (or creates) the database in directory `path`; removes blob files that no
    /// reference points to (left by a crash).
    pub fn open(path: &Path) -> Result<Self> {
        // A handle of this process that was just dropped releases the file lock only when
        // sled's flusher thread ends (a few ms later): wait for it, boundedly, instead of
        // failing a reopen (a restarted node, a test). Another process's lock stays refused.
        let started = std::time::Instant::now();
        let db = loop {
            match sled::Config::new()
                .path(path)
                .cache_capacity(CACHE_BYTES)
                .open()
            {
                Err(e) if super::sled_lock_busy(&e) && started.elapsed() < LOCK_WAIT => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                r => break r?,
            }
        };
        let blobs = path.join("blobs");
        fs::create_dir_all(&blobs).map_err(|e| io_err("cannot create", &blobs, e))?;
        let s = Self {
            db,
            dir: path.to_path_buf(),
            blobs,
            doomed: Arc::new(Mutex::new(Vec::new())),
            failed: Arc::new(Mutex::new(None)),
        };
        s.remove_orphans()?;
        Ok(s)
    }

    /// Runs write `op`: refused at once after an earlier failure; a disk error (sled, I/O)
    /// becomes [`StoreError::Failed`] with the store's path and is latched (module docs of
    /// `store`). Other errors (a bad tree name) pass unchanged.
    fn write<T>(&self, op: &'static str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let failed = |why: String| StoreError::Failed {
            path: self.dir.display().to_string(),
            op,
            why,
        };
        if self.failure().is_some() {
            return Err(failed("refused, an earlier write failed".into()));
        }
        match f() {
            Err(StoreError::Sled(e)) => {
                let e = failed(e.to_string());
                if let Ok(mut latch) = self.failed.lock() {
                    latch.get_or_insert_with(|| e.to_string());
                }
                Err(e)
            }
            r => r,
        }
    }

    fn tree(&self, tree: Tree<'_>) -> Result<sled::Tree> {
        Ok(self.db.open_tree(tree.db_name()?)?)
    }

    fn blob_path(&self, id: &[u8; 16]) -> PathBuf {
        self.blobs.join(hex(id))
    }

    /// The value to store in sled for `value`: itself, or a reference to a new blob file that
    /// is on disk when this returns.
    fn stored(&self, value: &[u8]) -> Result<Vec<u8>> {
        if value.len() < BLOB_MIN {
            return Ok(value.to_vec());
        }
        let id: [u8; 16] = rand::random();
        let path = self.blob_path(&id);
        let tmp = path.with_extension("tmp");
        let mut f = fs::File::create(&tmp).map_err(|e| io_err("cannot create", &tmp, e))?;
        f.write_all(value)
            .and_then(|()| f.sync_all())
            .map_err(|e| io_err("cannot write", &tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| io_err("cannot rename", &tmp, e))?;
        fs::File::open(&self.blobs)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_err("cannot sync", &self.blobs, e))?;
        let mut r = BLOB_REF.to_vec();
        r.extend_from_slice(&id);
        Ok(r)
    }

    /// The value a stored sled value stands for (a blob file's contents for a reference). A
    /// reference to a blob file that does not exist is a damaged record of `tree` (its bytes
    /// changed on disk, or its file was removed), not a failure of the disk.
    fn loaded(&self, tree: Tree<'_>, key: &[u8], stored: &[u8]) -> Result<Vec<u8>> {
        match blob_id(stored) {
            None => Ok(stored.to_vec()),
            Some(id) => {
                let path = self.blob_path(&id);
                fs::read(&path).map_err(|e| match e.kind() {
                    std::io::ErrorKind::NotFound => StoreError::corrupt(tree, key),
                    _ => io_err("cannot read blob", &path, e),
                })
            }
        }
    }

    /// Queues the blob file of a removed or overwritten stored value for deletion.
    fn doom(&self, old: Option<&[u8]>) {
        if let Some(id) = old.and_then(blob_id) {
            let path = self.blob_path(&id);
            if let Ok(mut d) = self.doomed.lock() {
                d.push(path);
            }
        }
    }

    /// Deletes every blob file that no reference in any tree points to.
    fn remove_orphans(&self) -> Result<()> {
        let mut live = std::collections::HashSet::new();
        for name in self.db.tree_names() {
            for kv in self.db.open_tree(name)?.iter() {
                if let Some(id) = blob_id(&kv?.1) {
                    live.insert(hex(&id));
                }
            }
        }
        let entries =
            fs::read_dir(&self.blobs).map_err(|e| io_err("cannot list", &self.blobs, e))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if !live.contains(&name) {
                let _ = fs::remove_file(entry.path());
            }
        }
        Ok(())
    }
}

impl Store for SledStore {
    fn get(&self, tree: Tree<'_>, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.tree(tree)?
            .get(key)?
            .map(|v| self.loaded(tree, key, &v))
            .transpose()
    }

    fn put(&self, tree: Tree<'_>, key: &[u8], value: &[u8]) -> Result<()> {
        self.write("write", || {
            let stored = self.stored(value)?;
            let old = self.tree(tree)?.insert(key, stored)?;
            self.doom(old.as_deref());
            Ok(())
        })
    }

    fn delete(&self, tree: Tree<'_>, key: &[u8]) -> Result<bool> {
        self.write("write", || {
            let old = self.tree(tree)?.remove(key)?;
            self.doom(old.as_deref());
            Ok(old.is_some())
        })
    }

    fn scan_prefix(&self, tree: Tree<'_>, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.tree(tree)?
            .scan_prefix(prefix)
            .map(|r| {
                let (k, v) = r?;
                let value = self.loaded(tree, &k, &v)?;
                Ok((k.to_vec(), value))
            })
            .collect()
    }

    fn keys(&self, tree: Tree<'_>, prefix: &[u8]) -> Result<Vec<Vec<u8>>> {
        self.tree(tree)?
            .scan_prefix(prefix)
            .map(|r| Ok(r?.0.to_vec()))
            .collect()
    }

    fn apply(&self, batch: WriteBatch<'_>) -> Result<()> {
        self.write("write", || self.apply_batch(batch))
    }

    fn take(&self, tree: Tree<'_>, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.write("take", || {
            let Some(stored) = self.tree(tree)?.remove(key)? else {
                return Ok(None);
            };
            // Read a blob before its file can go; the removal must be on disk before the
            // caller may use the value (DESIGN.md s.5).
            let value = self.loaded(tree, key, &stored);
            self.doom(Some(&stored));
            self.flush_db()?;
            value.map(Some)
        })
    }

    fn flush(&self) -> Result<()> {
        self.write("flush", || self.flush_db())
    }

    fn failure(&self) -> Option<String> {
        self.failed.lock().ok().and_then(|f| f.clone())
    }
}

impl SledStore {
    /// [`Store::apply`] without the failure latch.
    fn apply_batch(&self, batch: WriteBatch<'_>) -> Result<()> {
        // The distinct trees touched, and for each op the index of its tree.
        let mut names: Vec<String> = Vec::new();
        let mut index = Vec::with_capacity(batch.ops().len());
        for op in batch.ops() {
            let (Op::Put { tree, .. } | Op::Delete { tree, .. }) = op;
            let name = tree.db_name()?;
            let i = names.iter().position(|n| *n == name).unwrap_or_else(|| {
                names.push(name);
                names.len() - 1
            });
            index.push(i);
        }
        if names.is_empty() {
            return Ok(());
        }
        let trees: Vec<sled::Tree> = names
            .iter()
            .map(|n| self.db.open_tree(n))
            .collect::<sled::Result<_>>()?;
        // Large values go to their files first; the transaction writes the references.
        let stored: Vec<Option<Vec<u8>>> = batch
            .ops()
            .iter()
            .map(|op| match op {
                Op::Put { value, .. } => self.stored(value).map(Some),
                Op::Delete { .. } => Ok(None),
            })
            .collect::<Result<_>>()?;
        let replaced = Mutex::new(Vec::new());
        let result: std::result::Result<(), TransactionError<()>> =
            trees.as_slice().transaction(|views| {
                let mut old = Vec::new();
                for ((op, &i), value) in batch.ops().iter().zip(&index).zip(&stored) {
                    let view = views
                        .get(i)
                        .ok_or(ConflictableTransactionError::Abort(()))?;
                    let prev = match (op, value) {
                        (Op::Put { key, .. }, Some(v)) => {
                            view.insert(key.as_slice(), v.as_slice())?
                        }
                        (Op::Delete { key, .. }, _) => view.remove(key.as_slice())?,
                        _ => return Err(ConflictableTransactionError::Abort(())),
                    };
                    old.extend(prev.map(|p| p.to_vec()));
                }
                // A retried transaction replaces what an earlier attempt saw.
                if let Ok(mut r) = replaced.lock() {
                    *r = old;
                }
                Ok(())
            });
        if result.is_ok() {
            for old in replaced.into_inner().unwrap_or_default() {
                self.doom(Some(&old));
            }
        } else {
            // The references were never written: their new files are orphans now.
            for v in stored.iter().flatten() {
                self.doom(Some(v));
            }
        }
        result.map_err(|e| match e {
            TransactionError::Storage(e) => StoreError::Sled(e),
            TransactionError::Abort(()) => {
                StoreError::Sled(sled::Error::Unsupported("batch aborted".into()))
            }
        })
    }

    /// [`Store::flush`] without the failure latch.
    fn flush_db(&self) -> Result<()> {
        self.db.flush()?;
        let doomed = match self.doomed.lock() {
            Ok(mut d) => std::mem::take(&mut *d),
            Err(_) => Vec::new(),
        };
        for path in doomed {
            let _ = fs::remove_file(path);
        }
        Ok(())
    }
}

//! Persistent state behind a small trait (STYLE.md 11, after raft-rs `Storage` / `MemStorage`).
//!
//! A node keeps what must survive a restart (DESIGN.md s.7) in typed trees: its identity, its
//! key shares, its preprocessed bundles and the phase of each session, plus named trees for
//! anything else. Keys and values are bytes: **the caller encodes and validates them** (a value
//! read back may be from an older version or corrupted on disk; decoding it is the caller's job
//! and must return a typed error, never panic).
//!
//! # Durability and failures
//! - A write (`put`, `delete`, `apply`) is visible to later reads at once, but reaches the disk
//!   only at the next [`Store::flush`] (sled also flushes in the background every 500 ms). The
//!   raft drive loop (STYLE.md 2) calls `flush` after persisting a step and before sending what
//!   that step produced: that is the commit point.
//! - [`Store::apply`] applies a [`WriteBatch`] atomically, across trees: after a crash either all
//!   of it or none of it is there (once flushed, all of it).
//! - [`Store::take`] removes a key and flushes before returning the value, so a value returned by
//!   `take` is gone from disk: a bundle taken once can never be taken again, even across a crash
//!   (DESIGN.md s.5: "a bundle is marked consumed durably before its first use").
//! - An `Err` from a write means the write may or may not have happened; an `Err` from `flush`
//!   means writes since the last successful flush may be lost. Either way the store is no longer
//!   trustworthy: the node should abort its sessions with a clear reason and stop, not retry
//!   blindly. The disk stores latch the first such failure ([`StoreError::Failed`], with the
//!   store's path): every later write is refused with it at once, and [`Store::failure`]
//!   reports it, which `seco node` watches to exit non-zero with it.
//!
//! # Layout
//! - `mod.rs`: the [`Store`] trait, [`Tree`], [`WriteBatch`], [`StoreError`].
//! - `mem.rs`: [`MemStore`], the in-memory twin for tests (flush is a no-op).
//! - `sled_store.rs`: [`SledStore`], sled 0.34 on disk.
//! - `sealed.rs`: [`SealedStore`], any store with every record encrypted and authenticated
//!   under a [`StoreKey`], a format record against truncation, a copy of the key shares.
//! - `seal.rs`: the record ciphers, AES-256-GCM with a key per record (version 2) and
//!   XChaCha20-Poly1305 (version 1, read only).

mod mem;
mod seal;
mod sealed;
mod sled_store;

pub use mem::MemStore;
pub use sealed::{
    SealedStore, StoreKey, FORMAT_FILE, KEY_BACKUP_FILE, SEALED_VERSION, STORE_KEY_ENV,
};
pub use sled_store::{SledStore, BLOB_MIN, CACHE_BYTES};

/// Result alias of the store.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Longest name of a [`Tree::Named`] tree.
pub const MAX_TREE_NAME: usize = 64;

/// Why a store operation failed (see the module docs for what it means).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// sled reported an error (I/O, corruption, unsupported operation).
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    /// A named tree's name is empty, too long, or has characters outside `[a-z0-9_.-]`.
    #[error("bad tree name {0:?}")]
    BadTreeName(String),
    /// A sealed record failed its authentication tag (changed on disk, or moved).
    #[error("store record corrupt: tree {tree}, key {key}...")]
    Corrupt {
        /// The tree.
        tree: String,
        /// The start of the key, hex.
        key: String,
    },
    /// The store lost records or its format marker: refused, never treated as empty.
    #[error("store {path} refused: {why} (docs/operations.md, \"A broken store\")")]
    Lost {
        /// The store's directory or file.
        path: String,
        /// What is wrong.
        why: String,
    },
    /// The store key does not open this store.
    #[error("the store key does not open the store in {0}")]
    WrongKey(String),
    /// The store key is missing or malformed.
    #[error("store key: {0}")]
    BadKey(String),
    /// A write or flush failed on disk (disk full, read-only file system, I/O error). The
    /// store is no longer trustworthy: it refuses every later write with this error, and
    /// [`Store::failure`] reports it (docs/operations.md, "Storage faults").
    #[error("store {path}: {op} failed: {why} (docs/operations.md, \"Storage faults\")")]
    Failed {
        /// The store's directory (or the file that failed).
        path: String,
        /// What failed (`write`, `flush`, `take`, `key share copy`).
        op: &'static str,
        /// The underlying error.
        why: String,
    },
}

impl StoreError {
    /// A damaged record of `tree` at `key` (the first 8 bytes of the key, hex, name it).
    pub(crate) fn corrupt(tree: Tree<'_>, key: &[u8]) -> Self {
        StoreError::Corrupt {
            tree: tree.db_name().unwrap_or_default(),
            key: key.iter().take(8).map(|b| format!("{b:02x}")).collect(),
        }
    }

    /// Whether the database is locked by another process (a running node holds it).
    pub fn is_locked(&self) -> bool {
        matches!(self, StoreError::Sled(e) if sled_lock_busy(e))
    }
}

/// Whether sled failed to open a database because another handle holds its file lock (sled
/// 0.34 reports it as an `Other` I/O error with this text).
pub(crate) fn sled_lock_busy(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io)
        if io.kind() == std::io::ErrorKind::WouldBlock
            || io.to_string().contains("could not acquire lock"))
}

/// A tree (key space) of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Tree<'a> {
    /// The node's identity and long-lived metadata.
    Identity,
    /// Secret key shares of the collective key (DESIGN.md s.5 phase 1).
    KeyShares,
    /// Preprocessed bundles, one per future inference (phase 2); consume them with [`Store::take`].
    Bundles,
    /// The phase of each session, to resume or abort after a restart.
    SessionPhase,
    /// Any other tree, by name (`[a-z0-9_.-]`, at most [`MAX_TREE_NAME`] bytes).
    Named(&'a str),
}

impl Tree<'_> {
    /// The tree's name in the underlying database (reserved names start with `seco.`).
    pub fn db_name(&self) -> Result<String> {
        Ok(match self {
            Tree::Identity => "seco.identity".into(),
            Tree::KeyShares => "seco.key_shares".into(),
            Tree::Bundles => "seco.bundles".into(),
            Tree::SessionPhase => "seco.session_phase".into(),
            Tree::Named(n) => {
                let ok = !n.is_empty()
                    && n.len() <= MAX_TREE_NAME
                    && n.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b)
                    });
                if !ok {
                    return Err(StoreError::BadTreeName(n.to_string()));
                }
                format!("app.{n}")
            }
        })
    }
}

/// One write of a batch. Values are secret (key shares, bundles, garblings): `Debug` prints
/// their length only.
#[derive(Clone, PartialEq, Eq)]
pub enum Op<'a> {
    /// Insert or overwrite.
    Put {
        /// Tree.
        tree: Tree<'a>,
        /// Key.
        key: Vec<u8>,
        /// Value.
        value: Vec<u8>,
    },
    /// Remove (no error if absent).
    Delete {
        /// Tree.
        tree: Tree<'a>,
        /// Key.
        key: Vec<u8>,
    },
}

/// Writes applied atomically by [`Store::apply`], in order. The values are zeroized when the
/// batch is dropped (after it was applied) and are not printed by `Debug`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBatch<'a> {
    ops: Vec<Op<'a>>,
}

impl std::fmt::Debug for Op<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Op::Put { tree, key, value } => f
                .debug_struct("Put")
                .field("tree", tree)
                .field("key", key)
                .field("value", &format_args!("{} bytes [redacted]", value.len()))
                .finish(),
            Op::Delete { tree, key } => f
                .debug_struct("Delete")
                .field("tree", tree)
                .field("key", key)
                .finish(),
        }
    }
}

impl Drop for WriteBatch<'_> {
    fn drop(&mut self) {
        for op in &mut self.ops {
            if let Op::Put { value, .. } = op {
                zeroize::Zeroize::zeroize(value);
            }
        }
    }
}

impl<'a> WriteBatch<'a> {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a put.
    pub fn put(
        mut self,
        tree: Tree<'a>,
        key: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
    ) -> Self {
        self.ops.push(Op::Put {
            tree,
            key: key.into(),
            value: value.into(),
        });
        self
    }

    /// Adds a delete.
    pub fn delete(mut self, tree: Tree<'a>, key: impl Into<Vec<u8>>) -> Self {
        self.ops.push(Op::Delete {
            tree,
            key: key.into(),
        });
        self
    }

    /// The writes, in order.
    pub fn ops(&self) -> &[Op<'a>] {
        &self.ops
    }
}

/// Storage of a node (see the module docs for durability and failure semantics).
pub trait Store: Send + Sync {
    /// The value at `key`, if any.
    fn get(&self, tree: Tree<'_>, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Inserts or overwrites `key`.
    fn put(&self, tree: Tree<'_>, key: &[u8], value: &[u8]) -> Result<()>;
    /// Removes `key`; returns whether it was there.
    fn delete(&self, tree: Tree<'_>, key: &[u8]) -> Result<bool>;
    /// All entries whose key starts with `prefix`, in key order.
    fn scan_prefix(&self, tree: Tree<'_>, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>>;
    /// The keys of every entry whose key starts with `prefix`, in key order, without reading
    /// (or checking) the values: a damaged value does not hide the keys around it.
    fn keys(&self, tree: Tree<'_>, prefix: &[u8]) -> Result<Vec<Vec<u8>>> {
        Ok(self
            .scan_prefix(tree, prefix)?
            .into_iter()
            .map(|(k, _)| k)
            .collect())
    }
    /// Applies every write of `batch` atomically (all or nothing, also across trees).
    fn apply(&self, batch: WriteBatch<'_>) -> Result<()>;
    /// Atomically removes `key` and returns its value, **flushed to disk before returning**: of
    /// two concurrent `take`s of a key at most one gets the value, and after a crash a taken value
    /// is never there again.
    fn take(&self, tree: Tree<'_>, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Commit point: every write before this call is on disk when it returns `Ok`.
    fn flush(&self) -> Result<()>;
    /// The first write or flush that failed on disk, if any ([`StoreError::Failed`], as text):
    /// from then on every write is refused. Stores without a disk never fail this way.
    fn failure(&self) -> Option<String> {
        None
    }
}

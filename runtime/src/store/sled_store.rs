//! [`SledStore`]: the store on disk, sled 0.34.
//!
//! Each [`Tree`](super::Tree) is a sled tree of one database. `flush` is sled's `Db::flush`
//! (write and fsync every dirty buffer); `take` is `Tree::remove` followed by that flush;
//! `apply` is one sled transaction over every tree the batch touches.
//!
//! sled's page cache is capped at [`CACHE_BYTES`] (sled's default is 1 GiB): bundles and their
//! chunk records are written once and read once, so a large cache only grows a node's memory
//! (measured: the gateway of a `cifar-cnn` deployment held 1.8 GB with the default).

use std::path::Path;

use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};

use super::{Op, Result, Store, StoreError, Tree, WriteBatch};

/// sled's page cache (bytes).
pub const CACHE_BYTES: u64 = 64 << 20;

/// A sled database.
#[derive(Debug, Clone)]
pub struct SledStore {
    db: sled::Db,
}

impl SledStore {
    /// Opens (or creates) the database in directory `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(CACHE_BYTES)
            .open()?;
        Ok(Self { db })
    }

    fn tree(&self, tree: Tree<'_>) -> Result<sled::Tree> {
        Ok(self.db.open_tree(tree.db_name()?)?)
    }
}

impl Store for SledStore {
    fn get(&self, tree: Tree<'_>, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.tree(tree)?.get(key)?.map(|v| v.to_vec()))
    }

    fn put(&self, tree: Tree<'_>, key: &[u8], value: &[u8]) -> Result<()> {
        self.tree(tree)?.insert(key, value)?;
        Ok(())
    }

    fn delete(&self, tree: Tree<'_>, key: &[u8]) -> Result<bool> {
        Ok(self.tree(tree)?.remove(key)?.is_some())
    }

    fn scan_prefix(&self, tree: Tree<'_>, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.tree(tree)?
            .scan_prefix(prefix)
            .map(|r| {
                r.map(|(k, v)| (k.to_vec(), v.to_vec()))
                    .map_err(StoreError::from)
            })
            .collect()
    }

    fn apply(&self, batch: WriteBatch<'_>) -> Result<()> {
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
        let result: std::result::Result<(), TransactionError<()>> =
            trees.as_slice().transaction(|views| {
                for (op, &i) in batch.ops().iter().zip(&index) {
                    let view = views
                        .get(i)
                        .ok_or(ConflictableTransactionError::Abort(()))?;
                    match op {
                        Op::Put { key, value, .. } => {
                            view.insert(key.as_slice(), value.as_slice())?;
                        }
                        Op::Delete { key, .. } => {
                            view.remove(key.as_slice())?;
                        }
                    }
                }
                Ok(())
            });
        result.map_err(|e| match e {
            TransactionError::Storage(e) => StoreError::Sled(e),
            TransactionError::Abort(()) => {
                StoreError::Sled(sled::Error::Unsupported("batch aborted".into()))
            }
        })
    }

    fn take(&self, tree: Tree<'_>, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let value = self.tree(tree)?.remove(key)?;
        if value.is_some() {
            // The removal must be on disk before the caller may use the value (DESIGN.md s.5).
            self.db.flush()?;
        }
        Ok(value.map(|v| v.to_vec()))
    }

    fn flush(&self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }
}

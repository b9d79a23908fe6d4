//! [`MemStore`]: the in-memory twin of [`SledStore`](super::SledStore) for tests.
//!
//! Same semantics except durability: `flush` does nothing and everything is lost with the last
//! clone. Clones share the same data, so a test can "restart" a node by handing a clone to a new
//! actor.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{Op, Result, Store, Tree, WriteBatch};

type Trees = HashMap<String, BTreeMap<Vec<u8>, Vec<u8>>>;

/// An in-memory store; clones share data.
#[derive(Debug, Clone, Default)]
pub struct MemStore {
    trees: Arc<Mutex<Trees>>,
}

impl MemStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Trees> {
        // No code panics while holding the lock; recover the data if a caller's thread did.
        self.trees.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Store for MemStore {
    fn get(&self, tree: Tree<'_>, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let name = tree.db_name()?;
        Ok(self.lock().get(&name).and_then(|t| t.get(key)).cloned())
    }

    fn put(&self, tree: Tree<'_>, key: &[u8], value: &[u8]) -> Result<()> {
        let name = tree.db_name()?;
        self.lock()
            .entry(name)
            .or_default()
            .insert(key.to_vec(), value.to_vec());
        Ok(())
    }

    fn delete(&self, tree: Tree<'_>, key: &[u8]) -> Result<bool> {
        let name = tree.db_name()?;
        Ok(self
            .lock()
            .get_mut(&name)
            .and_then(|t| t.remove(key))
            .is_some())
    }

    fn scan_prefix(&self, tree: Tree<'_>, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let name = tree.db_name()?;
        let trees = self.lock();
        let Some(t) = trees.get(&name) else {
            return Ok(Vec::new());
        };
        Ok(t.range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn apply(&self, batch: WriteBatch<'_>) -> Result<()> {
        // Validate every name first so that a bad one leaves the store untouched.
        let named: Vec<(String, &Op<'_>)> = batch
            .ops()
            .iter()
            .map(|op| {
                let tree = match op {
                    Op::Put { tree, .. } | Op::Delete { tree, .. } => tree,
                };
                tree.db_name().map(|n| (n, op))
            })
            .collect::<Result<_>>()?;
        let mut trees = self.lock();
        for (name, op) in named {
            let t = trees.entry(name).or_default();
            match op {
                Op::Put { key, value, .. } => {
                    t.insert(key.clone(), value.clone());
                }
                Op::Delete { key, .. } => {
                    t.remove(key);
                }
            }
        }
        Ok(())
    }

    fn take(&self, tree: Tree<'_>, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let name = tree.db_name()?;
        Ok(self.lock().get_mut(&name).and_then(|t| t.remove(key)))
    }

    fn flush(&self) -> Result<()> {
        Ok(())
    }
}

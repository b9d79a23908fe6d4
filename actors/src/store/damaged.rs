//! Damaged records: reading back every record of a node's trees at start, and dropping the
//! damaged ones that the protocol can do without (docs/reliability.md, storage faults).

use seco_runtime::store::{Result, StoreError, Tree, WriteBatch};

use super::{NodeStore, CHUNK_TREE, KEY_USES_TREE, USER_TREE};

impl NodeStore {
    /// Reads back every record of the node's trees and lists the damaged ones (a record whose
    /// value fails its check, e.g. its authentication tag in a sealed store), without changing
    /// anything. Other errors (the disk, the database) are returned as they are.
    pub fn damaged_records(&self) -> Result<Damaged> {
        let mut out = Damaged::default();
        for (tree, critical) in CHECKED_TREES {
            for key in self.inner.keys(tree, &[])? {
                match self.inner.get(tree, &key) {
                    Ok(_) => out.checked += 1,
                    Err(StoreError::Corrupt { .. }) => {
                        let name = tree_name(tree);
                        if critical {
                            out.critical.push(name);
                        } else {
                            out.disposable.push((tree, key));
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(out)
    }

    /// Deletes the damaged records of the disposable trees (bundles, chunk garblings, session
    /// records and their users: the protocol aborts or reopens what they belonged to) and
    /// returns what was found. The caller refuses the store if [`Damaged::critical`] is not
    /// empty (a key share or a key's use count cannot be rebuilt; `seco store reset` restores
    /// the key shares from their copy).
    pub fn drop_damaged(&self) -> Result<Damaged> {
        let found = self.damaged_records()?;
        if found.critical.is_empty() && !found.disposable.is_empty() {
            let mut batch = WriteBatch::new();
            for (tree, key) in &found.disposable {
                batch = batch.delete(*tree, key.clone());
            }
            self.inner.apply(batch)?;
            self.inner.flush()?;
        }
        Ok(found)
    }
}

/// The trees [`NodeStore::damaged_records`] reads, and whether a damaged record there is
/// critical (cannot be dropped without losing a secret or a security count).
const CHECKED_TREES: [(Tree<'static>, bool); 6] = [
    (Tree::KeyShares, true),
    (KEY_USES_TREE, true),
    (Tree::SessionPhase, false),
    (USER_TREE, false),
    (Tree::Bundles, false),
    (CHUNK_TREE, false),
];

/// A tree's name as operators see it (`seco.bundles`, `seco.chunks`).
fn tree_name(tree: Tree<'_>) -> String {
    match tree {
        Tree::Named(n) => n.to_string(),
        t => t.db_name().unwrap_or_default(),
    }
}

/// Damaged records of a store ([`NodeStore::damaged_records`]).
#[derive(Debug, Default)]
pub struct Damaged {
    /// Records read back intact.
    pub checked: usize,
    /// Trees holding a damaged record that cannot be dropped (one entry per record).
    pub critical: Vec<String>,
    /// Damaged records that can be dropped: (tree, key).
    pub disposable: Vec<(Tree<'static>, Vec<u8>)>,
}

impl Damaged {
    /// How many damaged records there are in all.
    pub fn count(&self) -> usize {
        self.critical.len() + self.disposable.len()
    }

    /// One line: the count per tree, e.g. `2 in seco.bundles, 1 in seco.chunks`.
    pub fn describe(&self) -> String {
        let mut per: std::collections::BTreeMap<String, usize> = Default::default();
        for name in &self.critical {
            *per.entry(name.clone()).or_default() += 1;
        }
        for (tree, _) in &self.disposable {
            *per.entry(tree_name(*tree)).or_default() += 1;
        }
        per.iter()
            .map(|(t, n)| format!("{n} in {t}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

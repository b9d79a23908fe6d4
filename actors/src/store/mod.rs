//! What a node keeps in its store, on top of the runtime's typed trees (DESIGN.md s.7).
//!
//! | tree | key | value | written |
//! | --- | --- | --- | --- |
//! | `KeyShares` | `key/` ‖ sequence number (u64, big endian) | `KeyMaterial` bytes (secret key share, collective public key, key id) | when a key generation ends; the oldest beyond `MAX_KEYS` are deleted in the same batch (a store of an earlier version holds one record under `collective`, read as the oldest key) |
//! | `SessionPhase` | session id | `SessionRecord` (CBOR) | when a session becomes ready |
//! | `Bundles` | session id ‖ bundle id | the bundle (server: shares, masks, garbling; user: its input mask) | when a bundle is complete; removed by a durable `take` before its use |
//! | `seco.chunks` (named) | session id ‖ bundle id ‖ stage ‖ chunk (big endian) | one chunk garbling of a bundle (server: its `bmr::Prepared`) | as the chunk completes in preprocessing; removed by a durable take when its stage runs online, or when its bundle is aborted |
//! | `seco.key_uses` (named) | key id | bundles this server led under the key (u64, big endian; its lifetime count, docs/mhe.md "Lifetime of a key") | before the E2S request of each bundle it leads |
//! | `seco.user` (named) | session id | the peer id of the user who opened it (gateway) | when the session is created |
//!
//! Every write of a step goes into one atomic batch followed by a flush: the commit point of the
//! raft drive loop (STYLE.md 2), before anything that step produced is sent. The key share is
//! stored as the protocol encodes it; protect the data directory like the identity key (it is
//! created with mode 0700 by `seco node`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use seco_protocols::seco::msg::MAX_KEYS;
use seco_protocols::seco::{BundleId, Persist, SessionId};
use seco_runtime::store::{Result, Store, Tree, WriteBatch};
use seco_runtime::PeerId;
use zeroize::Zeroizing;

mod damaged;
mod take;
pub use damaged::Damaged;
pub use take::{ArmedBundle, BundleReads, TakenRecords};

/// The single key record of stores written before key versions (read as the oldest key).
const LEGACY_KEY_SHARE: &[u8] = b"collective";
/// Prefix of the key records: `key/` ‖ sequence number (big endian, so scans run oldest first).
const KEY_PREFIX: &[u8] = b"key/";
const USER_TREE: Tree<'static> = Tree::Named("seco.user");
const CHUNK_TREE: Tree<'static> = Tree::Named("seco.chunks");
/// Per collective key id, the bundles this server led under it (u64, big endian).
const KEY_USES_TREE: Tree<'static> = Tree::Named("seco.key_uses");

/// Counts of what a store holds (logged at start).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreSummary {
    /// Whether a collective key share is stored.
    pub has_key: bool,
    /// How many collective keys are stored (at most `MAX_KEYS`).
    pub keys: usize,
    /// Session records.
    pub sessions: usize,
    /// Stored (unused) bundles.
    pub bundles: usize,
}

/// A node's store, shared by its session actors (cheap to clone).
#[derive(Clone)]
pub struct NodeStore {
    inner: Arc<dyn Store>,
    /// Per collective key, the bundles this server led under it (loaded from
    /// [`KEY_USES_TREE`] on first use, then shared by every session under that key).
    uses: Arc<Mutex<HashMap<[u8; 32], Arc<AtomicU64>>>>,
    /// Bytes of armed bundles over every session of this node (`take.rs`).
    armed: Arc<AtomicU64>,
}

impl std::fmt::Debug for NodeStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NodeStore")
    }
}

fn bundle_key(session: SessionId, bundle: BundleId) -> [u8; 32] {
    let mut k = [0u8; 32];
    k[..16].copy_from_slice(&session.0);
    k[16..].copy_from_slice(&bundle.0);
    k
}

fn chunk_key(session: SessionId, bundle: BundleId, stage: u16, chunk: u32) -> Vec<u8> {
    let mut k = bundle_key(session, bundle).to_vec();
    k.extend_from_slice(&stage.to_be_bytes());
    k.extend_from_slice(&chunk.to_be_bytes());
    k
}

impl NodeStore {
    /// Wraps a store (a `SledStore` in nodes, a `MemStore` in tests and at the user).
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            uses: Arc::default(),
            armed: Arc::default(),
        }
    }

    /// The counter of bundles this server led under `key_id` (its lifetime count), shared by
    /// every session that runs under the key.
    pub fn key_uses(&self, key_id: &[u8; 32]) -> Result<Arc<AtomicU64>> {
        let mut map = self.uses.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = map.get(key_id) {
            return Ok(c.clone());
        }
        let stored = self
            .inner
            .get(KEY_USES_TREE, key_id)?
            .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
            .map_or(0, u64::from_be_bytes);
        let c = Arc::new(AtomicU64::new(stored));
        map.insert(*key_id, c.clone());
        Ok(c)
    }

    /// The newest stored collective-key material, if any.
    pub fn keys(&self) -> Result<Option<Zeroizing<Vec<u8>>>> {
        Ok(self.key_ring()?.into_iter().next())
    }

    /// Every stored collective-key material, newest first.
    pub fn key_ring(&self) -> Result<Vec<Zeroizing<Vec<u8>>>> {
        Ok(self
            .key_records()?
            .into_iter()
            .rev()
            .map(|(_, v)| Zeroizing::new(v))
            .collect())
    }

    /// The key records, oldest first: the legacy record, then `key/` by sequence number.
    fn key_records(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut out = Vec::new();
        if let Some(v) = self.inner.get(Tree::KeyShares, LEGACY_KEY_SHARE)? {
            out.push((LEGACY_KEY_SHARE.to_vec(), v));
        }
        out.extend(self.inner.scan_prefix(Tree::KeyShares, KEY_PREFIX)?);
        Ok(out)
    }

    /// Adds a new key record to `batch` after the existing ones, deleting the oldest beyond
    /// `MAX_KEYS`.
    fn put_key<'a>(&self, mut batch: WriteBatch<'a>, bytes: &[u8]) -> Result<WriteBatch<'a>> {
        let records = self.key_records()?;
        let next = records
            .iter()
            .filter_map(|(k, _)| k.strip_prefix(KEY_PREFIX))
            .filter_map(|seq| <[u8; 8]>::try_from(seq).ok().map(u64::from_be_bytes))
            .max()
            .map_or(0, |s| s + 1);
        let mut key = KEY_PREFIX.to_vec();
        key.extend_from_slice(&next.to_be_bytes());
        batch = batch.put(Tree::KeyShares, key, bytes.to_vec());
        let keep = MAX_KEYS.saturating_sub(1);
        let drop = records.len().saturating_sub(keep);
        for (k, _) in records.into_iter().take(drop) {
            batch = batch.delete(Tree::KeyShares, k);
        }
        Ok(batch)
    }

    /// The record of `session`, if it became ready before (it holds the session offset:
    /// zeroized when dropped).
    pub fn record(&self, session: SessionId) -> Result<Option<Zeroizing<Vec<u8>>>> {
        Ok(self
            .inner
            .get(Tree::SessionPhase, &session.0)?
            .map(Zeroizing::new))
    }

    /// Ids of the stored session records.
    pub fn session_ids(&self) -> Result<Vec<SessionId>> {
        Ok(self
            .inner
            .scan_prefix(Tree::SessionPhase, &[])?
            .into_iter()
            .filter_map(|(k, _)| <[u8; 16]>::try_from(k.as_slice()).ok().map(SessionId))
            .collect())
    }

    /// Gateway: records which user peer opened `session` (flushed), so that a resumed session
    /// answers the same user and refuses others.
    pub fn put_user_peer(&self, session: SessionId, peer: &PeerId) -> Result<()> {
        self.inner.put(USER_TREE, &session.0, &peer.to_bytes())?;
        self.inner.flush()
    }

    /// Gateway: the user peer of `session`, if recorded (an undecodable value counts as none).
    pub fn user_peer(&self, session: SessionId) -> Result<Option<PeerId>> {
        let v = self.inner.get(USER_TREE, &session.0)?;
        Ok(v.and_then(|b| PeerId::from_bytes(&b).ok()))
    }

    /// Number of stored bundles of `session`.
    pub fn bundles_of(&self, session: SessionId) -> Result<usize> {
        Ok(self.inner.scan_prefix(Tree::Bundles, &session.0)?.len())
    }

    /// The commit point of one step: every `persist` atomically, then flushed. Returns whether
    /// anything was written.
    pub fn commit(&self, session: SessionId, persist: &[Persist]) -> Result<bool> {
        if persist.is_empty() {
            return Ok(false);
        }
        let mut batch = WriteBatch::new();
        for p in persist {
            batch = match p {
                Persist::Keys(bytes) => self.put_key(batch, bytes)?,
                Persist::Bundle { bundle, bytes } => {
                    batch.put(Tree::Bundles, bundle_key(session, *bundle), bytes.clone())
                }
                Persist::Session(bytes) => batch.put(Tree::SessionPhase, session.0, bytes.clone()),
                Persist::Chunk {
                    bundle,
                    stage,
                    chunk,
                    bytes,
                } => batch.put(
                    CHUNK_TREE,
                    chunk_key(session, *bundle, *stage, *chunk),
                    bytes.clone(),
                ),
                Persist::KeyUse { key_id, uses } => {
                    // The shared counter is never below a count a session committed, so writing
                    // the larger of the two keeps the stored count from going back.
                    let now = self.key_uses(key_id)?.load(Ordering::SeqCst).max(*uses);
                    batch.put(KEY_USES_TREE, key_id.to_vec(), now.to_be_bytes().to_vec())
                }
                Persist::ForgetChunks(bundle) => {
                    let prefix = bundle_key(session, *bundle);
                    let mut b = batch;
                    for (key, _) in self.inner.scan_prefix(CHUNK_TREE, &prefix)? {
                        b = b.delete(CHUNK_TREE, key);
                    }
                    b
                }
            };
        }
        self.inner.apply(batch)?;
        self.inner.flush()?;
        Ok(true)
    }

    /// Number of stored chunk garblings of `session`.
    pub fn chunks_of(&self, session: SessionId) -> Result<usize> {
        Ok(self.inner.scan_prefix(CHUNK_TREE, &session.0)?.len())
    }

    /// Deletes an aborted session's record and bundles (durably): nothing of it is usable again.
    pub fn forget_session(&self, session: SessionId) -> Result<()> {
        let mut batch = WriteBatch::new()
            .delete(Tree::SessionPhase, session.0)
            .delete(USER_TREE, session.0);
        for (key, _) in self.inner.scan_prefix(Tree::Bundles, &session.0)? {
            batch = batch.delete(Tree::Bundles, key);
        }
        for (key, _) in self.inner.scan_prefix(CHUNK_TREE, &session.0)? {
            batch = batch.delete(CHUNK_TREE, key);
        }
        self.inner.apply(batch)?;
        self.inner.flush()
    }

    /// The store's first failed write or flush, if any (`seco_runtime::store::Store::failure`):
    /// from then on it refuses every write, and the node should stop.
    pub fn failure(&self) -> Option<String> {
        self.inner.failure()
    }

    /// Resolves with [`NodeStore::failure`] once there is one (checked every 100 ms).
    pub async fn failed(&self) -> String {
        loop {
            if let Some(f) = self.failure() {
                return f;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Flushes (at shutdown).
    pub fn flush(&self) -> Result<()> {
        self.inner.flush()
    }

    /// What the store holds.
    pub fn summary(&self) -> Result<StoreSummary> {
        Ok(StoreSummary {
            has_key: !self.key_records()?.is_empty(),
            keys: self.key_records()?.len(),
            sessions: self.inner.keys(Tree::SessionPhase, &[])?.len(),
            bundles: self.inner.keys(Tree::Bundles, &[])?.len(),
        })
    }
}

#[cfg(test)]
mod tests;

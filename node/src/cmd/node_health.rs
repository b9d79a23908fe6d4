//! What keeps `seco node` honest about its own health (issue 13, item 10):
//!
//! - [`WatchedStore`] wraps the node's store and reports the first I/O failure of the disk
//!   under it (sled or a blob file: unwritable, gone, full). `seco node` then exits non-zero
//!   with that reason instead of running on with a store that no longer persists anything.
//!   A record that fails its authentication tag is not such a failure: the session that read
//!   it aborts, the node goes on.
//! - [`status_line`]: the periodic one-line status (peers connected, sessions open, bundles
//!   held, the collective key and its id), logged at info level every `--status-every`
//!   seconds.

use std::sync::{Arc, Mutex};

use seco_actors::node::Node;
use seco_protocols::plan::ServerPart;
use seco_protocols::seco::KeyMaterial;
use seco_runtime::store::{Result, Store, StoreError, Tree, WriteBatch};
use tokio::sync::watch;

/// A store that reports its first I/O failure on a watch channel (see the module docs).
pub struct WatchedStore {
    inner: Arc<dyn Store>,
    /// The store's directory, named in the failure.
    path: std::path::PathBuf,
    failed: watch::Sender<Option<String>>,
    first: Mutex<bool>,
}

impl WatchedStore {
    /// Wraps `inner`; the receiver sees `Some(reason)` after the first I/O failure.
    pub fn new(
        inner: Arc<dyn Store>,
        path: std::path::PathBuf,
    ) -> (Arc<Self>, watch::Receiver<Option<String>>) {
        let (failed, rx) = watch::channel(None);
        let s = Self {
            inner,
            path,
            failed,
            first: Mutex::new(true),
        };
        (Arc::new(s), rx)
    }

    fn check<T>(&self, what: &str, r: Result<T>) -> Result<T> {
        if let Err(e) = &r {
            if is_disk_failure(e) {
                let mut first = self.first.lock().unwrap_or_else(|p| p.into_inner());
                if *first {
                    *first = false;
                    tracing::error!(error = %e, "the store failed ({what}): the node stops");
                    let why = format!("store {}: {what}: {e}", self.path.display());
                    let _ = self.failed.send(Some(why));
                }
            }
        }
        r
    }
}

/// An error of the disk or the database under the store, after which nothing more can be
/// persisted; a corrupt record or a bad tree name is a problem of one value.
fn is_disk_failure(e: &StoreError) -> bool {
    matches!(e, StoreError::Sled(_) | StoreError::Lost { .. })
}

impl Store for WatchedStore {
    fn get(&self, tree: Tree<'_>, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.check("read", self.inner.get(tree, key))
    }

    fn put(&self, tree: Tree<'_>, key: &[u8], value: &[u8]) -> Result<()> {
        self.check("write", self.inner.put(tree, key, value))
    }

    fn delete(&self, tree: Tree<'_>, key: &[u8]) -> Result<bool> {
        self.check("delete", self.inner.delete(tree, key))
    }

    fn scan_prefix(&self, tree: Tree<'_>, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.check("scan", self.inner.scan_prefix(tree, prefix))
    }

    fn keys(&self, tree: Tree<'_>, prefix: &[u8]) -> Result<Vec<Vec<u8>>> {
        self.check("scan", self.inner.keys(tree, prefix))
    }

    fn apply(&self, batch: WriteBatch<'_>) -> Result<()> {
        self.check("write", self.inner.apply(batch))
    }

    fn take(&self, tree: Tree<'_>, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.check("take", self.inner.take(tree, key))
    }

    fn flush(&self) -> Result<()> {
        self.check("flush", self.inner.flush())
    }

    fn failure(&self) -> Option<String> {
        // The disk store's own record (writes), else the first failure seen here (reads too):
        // either way a session that crashed on it is not restarted.
        self.inner
            .failure()
            .or_else(|| self.failed.borrow().clone())
    }
}

/// The collective key's id as the ready and status lines show it: its first 6 bytes in hex,
/// `none` without a key, `unreadable` if the stored key does not decode or cannot be read.
pub fn key_id(node: &Node, part: &ServerPart) -> String {
    match newest_key(node, part) {
        Ok(Some(k)) => k.key_id[..6].iter().map(|b| format!("{b:02x}")).collect(),
        Ok(None) => "none".into(),
        Err(()) => "unreadable".into(),
    }
}

/// The newest stored collective key of the part's parameter set, decoded for this server.
fn newest_key(node: &Node, part: &ServerPart) -> Result<Option<KeyMaterial>, ()> {
    let index = u16::try_from(part.server_index).unwrap_or(u16::MAX);
    let ring = node.store().key_ring().map_err(|_| ())?;
    let keys = KeyMaterial::ring_of(&ring, part.param, index).map_err(|_| ())?;
    Ok(keys.into_iter().next())
}

/// The newest collective key's age: bundles this server led under it (its lifetime count,
/// docs/mhe.md "Lifetime of a key"), `none` without a key.
pub fn key_uses(node: &Node, part: &ServerPart) -> String {
    match newest_key(node, part).ok().flatten() {
        Some(k) => match node.store().key_uses(&k.key_id) {
            Ok(c) => c.load(std::sync::atomic::Ordering::SeqCst).to_string(),
            Err(_) => "unreadable".into(),
        },
        None => "none".into(),
    }
}

/// One status line: peers connected, sessions open, bundles held, the collective key and the
/// bundles led under it.
pub async fn status_line(node: &Node, part: &ServerPart) -> String {
    let peers = match node.client().connected_peers().await {
        Ok(p) => p.len().to_string(),
        Err(e) => format!("unknown ({e})"),
    };
    let sessions = match node.sessions().await {
        Ok(s) => s.len().to_string(),
        Err(e) => format!("unknown ({e})"),
    };
    let (records, bundles) = match node.store().summary() {
        Ok(s) => (s.sessions.to_string(), s.bundles.to_string()),
        Err(e) => (format!("unknown ({e})"), String::new()),
    };
    format!(
        "{peers} peers connected, {sessions} sessions open ({records} stored), {bundles} bundles held, key id {} ({} bundles led under it)",
        key_id(node, part),
        key_uses(node, part)
    )
}

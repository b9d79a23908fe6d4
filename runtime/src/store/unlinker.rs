//! [`Unlinker`]: deletes the files of removed blobs on a thread of its own, so that a take
//! (remove, then flush) does not wait for them.
//!
//! A blob's file is deleted only after the flush that made its reference's removal durable
//! (`sled_store.rs`), so the file is garbage by then: when it goes does not matter for
//! correctness, and a crash before it goes leaves an orphan that the next open removes. What it
//! costs on the caller's path does: measured here (ext4 mounted with `discard`), deleting 50
//! files of 4 MiB took 100 ms, reading them 42 ms, and a `cifar-cnn` inference takes about that
//! many chunk files per bundle at its first stage.

use std::path::PathBuf;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// Files queued for deletion, and how many are not deleted yet.
#[derive(Debug, Default)]
struct Pending {
    count: Mutex<usize>,
    done: Condvar,
}

/// The deleting thread of one store (shared by its clones); dropping the last clone waits for
/// the queued deletions.
#[derive(Debug)]
pub(super) struct Unlinker {
    tx: Mutex<Option<Sender<Vec<PathBuf>>>>,
    pending: Arc<Pending>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Unlinker {
    /// Starts the thread; `None` if it cannot be started (deletions then run inline).
    pub(super) fn start() -> Option<Self> {
        let (tx, rx) = mpsc::channel::<Vec<PathBuf>>();
        let pending = Arc::new(Pending::default());
        let p = pending.clone();
        let thread = std::thread::Builder::new()
            .name("seco-blob-unlink".into())
            .spawn(move || {
                for paths in rx {
                    let n = paths.len();
                    for path in paths {
                        // Already gone (or a read-only directory): the next open retries.
                        let _ = std::fs::remove_file(path);
                    }
                    let mut c = p.count.lock().unwrap_or_else(|e| e.into_inner());
                    *c = c.saturating_sub(n);
                    p.done.notify_all();
                }
            })
            .ok()?;
        Some(Self {
            tx: Mutex::new(Some(tx)),
            pending,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues `paths` for deletion; gives them back if the thread is gone.
    pub(super) fn queue(&self, paths: Vec<PathBuf>) -> Result<(), Vec<PathBuf>> {
        if paths.is_empty() {
            return Ok(());
        }
        let n = paths.len();
        *self.pending.count.lock().unwrap_or_else(|e| e.into_inner()) += n;
        let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        let Some(sender) = tx.as_ref() else {
            self.forget(n);
            return Err(paths);
        };
        sender.send(paths).map_err(|mpsc::SendError(paths)| {
            self.forget(n);
            paths
        })
    }

    fn forget(&self, n: usize) {
        let mut c = self.pending.count.lock().unwrap_or_else(|e| e.into_inner());
        *c = c.saturating_sub(n);
        self.pending.done.notify_all();
    }

    /// Waits until every queued file is deleted.
    pub(super) fn wait(&self) {
        let mut c = self.pending.count.lock().unwrap_or_else(|e| e.into_inner());
        while *c > 0 {
            c = self.pending.done.wait(c).unwrap_or_else(|e| e.into_inner());
        }
    }
}

impl Drop for Unlinker {
    fn drop(&mut self) {
        // Closing the channel ends the thread once the queue is empty.
        drop(self.tx.lock().unwrap_or_else(|e| e.into_inner()).take());
        if let Some(t) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
    }
}

//! Durable takes: records leave the store (removed and flushed) before their first use, so a
//! bundle is never used twice, even across a crash (DESIGN.md s.5).
//!
//! Two ways out: [`NodeStore::take_records`] removes what one step of the protocol asks for
//! (a bundle, a stage's chunks); [`NodeStore::take_bundle`] removes a whole bundle (its record
//! and every chunk of every stage) in one batch and one flush, and hands it over as an
//! [`ArmedBundle`] that the session serves later takes from (`session/armed.rs`). Armed bytes
//! count against a node-wide budget (`Limits::armed_bytes`): a bundle that does not fit stays in
//! the store and is taken stage by stage.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rayon::prelude::*;
use seco_protocols::seco::{BundleId, ChunkTake, SessionId};
use seco_runtime::store::{Result, Tree, WriteBatch};
use zeroize::Zeroizing;

use super::{bundle_key, chunk_key, NodeStore, CHUNK_TREE};
use crate::lock;

/// What [`NodeStore::take_records`] returns: the bundles, then each take's chunks.
pub type TakenRecords = (Vec<Option<Vec<u8>>>, Vec<Vec<Option<Vec<u8>>>>);

/// The chunk reads of one whole-bundle take, claimed one record at a time by the arming
/// thread and by a take that needs the bundle before the thread is done
/// ([`NodeStore::read_chunks`]): the inference then reads at normal priority on every core
/// instead of waiting for a thread at nice 10.
pub struct BundleReads {
    started: std::time::Instant,
    bundle: BundleId,
    key: [u8; 32],
    keys: Vec<Vec<u8>>,
    /// Per key, the read's outcome once done (`None`: not read yet, or taken).
    results: Mutex<Vec<Option<ChunkRead>>>,
    next: AtomicUsize,
    active: AtomicUsize,
}

impl std::fmt::Debug for BundleReads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BundleReads")
            .field("bundle", &self.bundle)
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

/// One chunk record's read: its bytes, none if it was not there, or the store's error.
type ChunkRead = Result<Option<Vec<u8>>>;

/// A whole bundle taken out of the store (already removed durably), held in memory until its
/// inference takes its records. Its bytes count against the node's armed budget until taken or
/// dropped; the secret payloads are zeroed when dropped.
pub struct ArmedBundle {
    record: Option<Zeroizing<Vec<u8>>>,
    chunks: HashMap<(u16, u32), Zeroizing<Vec<u8>>>,
    budget: Arc<AtomicU64>,
    bytes: u64,
    /// A record of it was served (its inference started): it may never go back to the store.
    touched: bool,
}

impl std::fmt::Debug for ArmedBundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArmedBundle")
            .field("record", &self.record.as_ref().map(|r| r.len()))
            .field("chunks", &self.chunks.len())
            .field("bytes", &self.bytes)
            .finish()
    }
}

impl ArmedBundle {
    fn release(&mut self, n: usize) {
        let n = n as u64;
        self.bytes -= n;
        self.budget.fetch_sub(n, Ordering::Relaxed);
    }

    /// The bundle's own record (once).
    pub fn take_record(&mut self) -> Option<Vec<u8>> {
        self.touched = true;
        let mut r = self.record.take()?;
        self.release(r.len());
        // Moved out, not copied: the protocol owns (and zeroes) the payload from here.
        Some(std::mem::take(&mut *r))
    }

    /// One chunk of a stage (once).
    pub fn take_chunk(&mut self, stage: u16, chunk: u32) -> Option<Vec<u8>> {
        self.touched = true;
        let mut c = self.chunks.remove(&(stage, chunk))?;
        self.release(c.len());
        Some(std::mem::take(&mut *c))
    }

    /// Bytes still held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Whether nothing of it was served yet (it may go back to the store).
    pub fn untouched(&self) -> bool {
        !self.touched
    }

    /// Whether every record was taken.
    pub fn is_empty(&self) -> bool {
        self.record.is_none() && self.chunks.is_empty()
    }
}

impl Drop for ArmedBundle {
    fn drop(&mut self) {
        self.budget.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

impl NodeStore {
    /// Removes bundles and stage chunk garblings durably in one batch with one flush (the
    /// takes of one step) and returns them: the bundles in order, then each take's chunks in
    /// chunk order. A bundle and its chunks are consumed before their first use and never
    /// twice (DESIGN.md s.5).
    pub fn take_records(
        &self,
        session: SessionId,
        bundles: &[BundleId],
        takes: &[ChunkTake],
    ) -> Result<TakenRecords> {
        let bundle_keys: Vec<[u8; 32]> = bundles.iter().map(|&b| bundle_key(session, b)).collect();
        let chunk_keys: Vec<Vec<Vec<u8>>> = takes
            .iter()
            .map(|t| {
                (0..t.chunks)
                    .map(|c| chunk_key(session, t.bundle, t.stage, c))
                    .collect()
            })
            .collect();
        // Reads (a blob file each) and unsealing in parallel on the protocol pool: a large
        // model's stage is hundreds of MB, and this read is on the online phase's critical path.
        let got_bundles = bundle_keys
            .par_iter()
            .map(|k| self.inner.get(Tree::Bundles, k))
            .collect::<Result<Vec<_>>>()?;
        let got_chunks = chunk_keys
            .iter()
            .map(|ks| {
                ks.par_iter()
                    .map(|k| self.inner.get(CHUNK_TREE, k))
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        let mut batch = WriteBatch::new();
        for k in bundle_keys {
            batch = batch.delete(Tree::Bundles, k);
        }
        for k in chunk_keys.into_iter().flatten() {
            batch = batch.delete(CHUNK_TREE, k);
        }
        self.inner.apply(batch)?;
        self.inner.flush()?;
        Ok((got_bundles, got_chunks))
    }

    /// Removes a whole bundle (its record and the chunks of all its stages) durably in one
    /// batch and one flush and returns it armed, if it fits the budget of `limit` armed bytes
    /// over the node. `None` if it does not fit (nothing is removed) or nothing of it is stored.
    /// `parallel`: the chunks are read and unsealed on the protocol pool (a take on the online
    /// phase's critical path) or on the calling thread only (arming ahead, which should leave
    /// the cores to the work in progress).
    pub fn take_bundle(
        &self,
        session: SessionId,
        bundle: BundleId,
        limit: u64,
        parallel: bool,
    ) -> Result<Option<ArmedBundle>> {
        let reads = self.bundle_reads(session, bundle)?;
        self.read_chunks(&reads, parallel);
        self.finish_take(&reads, limit)
    }

    /// The chunk records of a bundle to read for [`Self::take_bundle`], shared so that a take
    /// that needs the bundle now can help the arming thread that reads it ([`Self::read_chunks`]).
    pub fn bundle_reads(&self, session: SessionId, bundle: BundleId) -> Result<Arc<BundleReads>> {
        let key = bundle_key(session, bundle);
        let keys = self.inner.keys(CHUNK_TREE, &key)?;
        Ok(Arc::new(BundleReads {
            started: std::time::Instant::now(),
            bundle,
            key,
            results: Mutex::new((0..keys.len()).map(|_| None).collect()),
            keys,
            next: AtomicUsize::new(0),
            active: AtomicUsize::new(0),
        }))
    }

    /// Reads (a blob file each) and unseals chunk records of `reads` not claimed yet, on the
    /// protocol pool if `parallel`, else on the calling thread; returns when none is left to
    /// claim and this call's reads are done.
    pub fn read_chunks(&self, reads: &BundleReads, parallel: bool) {
        let one = || {
            // Counted before the claim: `finish_take` waits for every claimed read.
            reads.active.fetch_add(1, Ordering::SeqCst);
            let i = reads.next.fetch_add(1, Ordering::SeqCst);
            let more = i < reads.keys.len();
            if more {
                let got = self.inner.get(CHUNK_TREE, &reads.keys[i]);
                lock(&reads.results)[i] = Some(got);
            }
            reads.active.fetch_sub(1, Ordering::SeqCst);
            more
        };
        if parallel {
            let left = reads
                .keys
                .len()
                .saturating_sub(reads.next.load(Ordering::SeqCst));
            (0..left).into_par_iter().for_each(|_| {
                one();
            });
        }
        while one() {}
    }

    /// Finishes a take of a whole bundle once its chunks are read (waiting for helpers' reads
    /// in flight): reserves its bytes within `limit`, removes it durably, returns it armed.
    pub fn finish_take(&self, reads: &BundleReads, limit: u64) -> Result<Option<ArmedBundle>> {
        while reads.active.load(Ordering::SeqCst) > 0 {
            std::thread::sleep(std::time::Duration::from_micros(100));
        }
        let (started, bundle, key) = (reads.started, reads.bundle, reads.key);
        let record = self.inner.get(Tree::Bundles, &key)?;
        let results = std::mem::take(&mut *lock(&reads.results));
        let mut chunks = Vec::with_capacity(results.len());
        for (k, got) in reads.keys.iter().zip(results) {
            if let Some(v) = got.transpose()?.flatten() {
                chunks.push((k.clone(), v));
            }
        }
        if record.is_none() && chunks.is_empty() {
            return Ok(None);
        }
        let bytes = record.as_ref().map_or(0, |r| r.len())
            + chunks.iter().map(|(_, v)| v.len()).sum::<usize>();
        let bytes = bytes as u64;
        let reserved = self
            .armed
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                (used + bytes <= limit).then_some(used + bytes)
            });
        if reserved.is_err() {
            return Ok(None);
        }
        // From here the reservation is the armed bundle's: dropped on any error below.
        let mut armed = ArmedBundle {
            record: None,
            chunks: HashMap::with_capacity(chunks.len()),
            budget: self.armed.clone(),
            bytes,
            touched: false,
        };
        let mut batch = WriteBatch::new().delete(Tree::Bundles, key);
        for (k, v) in chunks {
            let suffix = &k[key.len()..];
            // Keys are bundle key ‖ stage (u16) ‖ chunk (u32), big endian (`chunk_key`).
            if let (Ok(stage), Ok(chunk)) = (
                <[u8; 2]>::try_from(&suffix[..suffix.len().min(2)]),
                <[u8; 4]>::try_from(suffix.get(2..).unwrap_or_default()),
            ) {
                let (stage, chunk) = (u16::from_be_bytes(stage), u32::from_be_bytes(chunk));
                armed.chunks.insert((stage, chunk), Zeroizing::new(v));
            } else {
                // Not a chunk key of ours: removed with the bundle, never served.
                armed.release(v.len());
            }
            batch = batch.delete(CHUNK_TREE, k);
        }
        armed.record = record.map(Zeroizing::new);
        let read_us = started.elapsed().as_micros() as u64;
        self.inner.apply(batch)?;
        let applied_us = started.elapsed().as_micros() as u64;
        self.inner.flush()?;
        tracing::trace!(%bundle, bytes, read_us, applied_us, flushed_us = started.elapsed().as_micros() as u64, "took a bundle whole");
        Ok(Some(armed))
    }

    /// Puts an armed bundle that nothing was served from back into the store (one batch, one
    /// flush): a session actor that stops cleanly (the node shuts down) keeps its armed bundle
    /// usable after the restart. A bundle that served anything is dropped instead (never
    /// stored again: it was used).
    pub fn put_back(
        &self,
        session: SessionId,
        bundle: BundleId,
        armed: ArmedBundle,
    ) -> Result<bool> {
        if !armed.untouched() {
            return Ok(false);
        }
        let key = bundle_key(session, bundle);
        let mut batch = WriteBatch::new();
        if let Some(r) = &armed.record {
            batch = batch.put(Tree::Bundles, key, r.to_vec());
        }
        for ((stage, chunk), c) in &armed.chunks {
            batch = batch.put(
                CHUNK_TREE,
                chunk_key(session, bundle, *stage, *chunk),
                c.to_vec(),
            );
        }
        self.inner.apply(batch)?;
        self.inner.flush()?;
        Ok(true)
    }

    /// Bytes of armed bundles over every session of this node.
    pub fn armed_bytes(&self) -> u64 {
        self.armed.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
impl NodeStore {
    /// Stores a bundle record and, per `(stage, chunks)`, that many chunks (chunk `c` is
    /// `[c; 5]`), as preprocessing would (tests of armed bundles).
    pub(crate) fn put_test_bundle(
        &self,
        session: SessionId,
        bundle: BundleId,
        record: &[u8],
        stages: &[(u16, u32)],
    ) {
        let mut batch = WriteBatch::new().put(Tree::Bundles, bundle_key(session, bundle), record);
        for &(stage, chunks) in stages {
            for c in 0..chunks {
                batch = batch.put(
                    CHUNK_TREE,
                    chunk_key(session, bundle, stage, c),
                    vec![c as u8; 5],
                );
            }
        }
        self.inner.apply(batch).unwrap();
    }
}

//! Armed bundles: a session takes its next bundle out of the store *before* the inference
//! that uses it, so the online phase reads records from memory instead of waiting for a
//! durable take (a store flush) at each stage.
//!
//! - When a bundle is ready here and no other bundle is armed and idle or being armed, the
//!   session sends itself [`SessionMsg::Arm`](crate::msgs::SessionMsg::Arm); handling it starts
//!   taking the oldest ready bundle whole (its record and every stage's chunks, one batch and
//!   one flush: [`NodeStore::take_bundle`]) **on a thread of its own**, one core at nice 10
//!   (it is ahead of time: the inference or preparation running meanwhile keeps the cores), and
//!   the thread sends `Arm` again when it is done, which collects the bundle. The user takes its oldest ready
//!   bundle first too (`UserSession::infer`), so the armed one is normally the next one used.
//! - Arming runs while an inference runs: when bundle `k`'s inference starts, bundle `k + 1`
//!   is taken meanwhile, so back-to-back inferences find their bundle armed. (Until
//!   2026-12-07 arming ran on the session actor after an inference had ended, and the next
//!   inference's first message waited behind it: 4-9 ms of a mnist-mlp inference of about
//!   25 ms on a loaded 2-core machine.)
//! - A step's takes are served from the armed bundle; a take of the bundle being armed reads
//!   the records its thread has not claimed yet itself, on every core at normal priority
//!   ([`NodeStore::read_chunks`]), then waits for the thread's removal and flush (until
//!   2026-12-07 it waited for the thread at nice 10: 229-304 ms of a back-to-back
//!   `cifar-cnn` inference at its stage-0 evaluator); a bundle that is not armed is taken whole when its inference starts (one
//!   flush for all its stages instead of one per stage), and one that does not fit the budget
//!   is taken stage by stage as before.
//! - A record still leaves the store durably before its first use, so no bundle is used twice.
//!   A crash loses the armed bundle (it is no longer on disk): its inference then fails as
//!   "unknown or already used" at this server, the bundle is aborted, and the user retries with
//!   a fresh bundle (`docs/operations.md`, "Armed bundles"). A clean stop of the session actor
//!   waits for a running arming thread and puts every armed bundle that served nothing back
//!   into the store ([`Armed::disarm`]).
//! - Memory: at most one armed bundle per session besides those whose inference runs, only for
//!   sessions whose garbled tables per bundle fit `Limits::armed_bytes`, and all armed bytes of
//!   the node within that budget (a bundle that does not fit when its turn comes stays in the
//!   store). A bundle not armed when its inference starts is taken whole then only if the
//!   session's tables are small (at most an eighth of the budget); a large model's (e.g.
//!   `cifar-cnn`, about 200 MB at its stage-0 evaluator) is taken stage by stage, so that only its first
//!   stage is read on the critical path. (Until 2026-12-07 large models never armed: the take
//!   of `cifar-cnn`'s first stage, 325-536 ms, was part of every inference.)

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{mpsc, Arc};
use std::time::Instant;

use ractor::ActorRef;
use seco_protocols::seco::{BundleId, ChunkTake, SessionId};
use seco_runtime::store::Result;

use super::SessionState;
use crate::error::Result as ActorResult;
use crate::msgs::SessionMsg;
use crate::store::{ArmedBundle, BundleReads, NodeStore, TakenRecords};

/// A bundle whose inference starts before it was armed is taken whole then (one flush for all
/// its stages) only if the session's garbled tables per bundle are at most this fraction of the
/// node's armed budget; a larger one is taken stage by stage, so that only its first stage is
/// read on the online phase's critical path.
const WHOLE_FRACTION: u64 = 8;

/// What [`Armed::disarm`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Disarmed {
    /// Bundles put back into the store.
    pub back: usize,
    /// Untouched bundles that could not be put back (lost).
    pub lost: usize,
    /// The first error (of the arming thread or of a put-back).
    pub error: Option<String>,
}

/// A session's armed bundles (module docs).
#[derive(Debug, Default)]
pub(super) struct Armed {
    /// Whether this session arms at all.
    enabled: bool,
    /// Whether a bundle not armed when its inference starts is taken whole then.
    whole: bool,
    /// Bundles ready here and not taken yet, oldest first.
    order: VecDeque<BundleId>,
    /// Bundles taken whole: the armed one and those whose inference is running.
    held: HashMap<BundleId, ArmedBundle>,
    /// Bundles whose inference runs here (taken, not yet done or aborted): nothing is armed
    /// meanwhile, so that arming (a store flush) never delays an inference.
    running: HashSet<BundleId>,
    /// An `Arm` message is queued.
    queued: bool,
    /// The bundle being taken on its own thread, at most one.
    arming: Option<Arming>,
}

/// A bundle being taken on its own thread (module docs).
#[derive(Debug)]
struct Arming {
    bundle: BundleId,
    /// The thread's outcome (its sender is dropped unsent only if it panicked).
    rx: mpsc::Receiver<Result<Option<ArmedBundle>>>,
    since: Instant,
    /// Its chunk reads, which a take that needs the bundle now helps with.
    reads: Arc<BundleReads>,
}

impl Armed {
    /// Arming for a session whose garbled tables per bundle are `table_bytes` (`None`: the
    /// user, whose bundle is one small record), within a node budget of `limit` bytes.
    pub(super) fn new(table_bytes: Option<u64>, limit: u64) -> Self {
        Self {
            enabled: limit > 0 && table_bytes.is_none_or(|t| t <= limit),
            whole: limit > 0 && table_bytes.is_none_or(|t| t <= limit / WHOLE_FRACTION),
            ..Self::default()
        }
    }

    /// Whether this session arms bundles.
    pub(super) fn enabled(&self) -> bool {
        self.enabled
    }

    /// A bundle became ready here.
    pub(super) fn ready(&mut self, bundle: BundleId) {
        if self.enabled && !self.order.contains(&bundle) {
            self.order.push_back(bundle);
        }
    }

    /// A bundle's inference is done, or the bundle was aborted or forgotten: nothing of it is
    /// served again.
    pub(super) fn forget(&mut self, bundle: BundleId) {
        self.order.retain(|b| *b != bundle);
        self.held.remove(&bundle);
        self.running.remove(&bundle);
        if self.arming.as_ref().is_some_and(|a| a.bundle == bundle) {
            // Its thread's result is dropped (zeroed, its bytes given back) when it finds
            // nobody to send it to.
            self.arming = None;
        }
    }

    /// The session ended: every armed bundle is dropped (zeroed), also the one being armed.
    pub(super) fn clear(&mut self) {
        self.order.clear();
        self.held.clear();
        self.running.clear();
        self.arming = None;
    }

    /// The session actor stops cleanly (the node shuts down): armed bundles that served nothing
    /// go back to the store, the others are dropped. A failed put-back does not stop the
    /// others; the outcome says how many went back and what was lost.
    pub(super) fn disarm(&mut self, store: &NodeStore, session: SessionId) -> Disarmed {
        // A bundle being armed is out of the store already: wait for it, then put it back.
        let mut out = Disarmed::default();
        if let Err(e) = self.settle() {
            // The arming thread's take failed (a store error): nothing of it is held here.
            out.error = Some(e.to_string());
        }
        for (bundle, armed) in self.held.drain() {
            match store.put_back(session, bundle, armed) {
                Ok(true) => out.back += 1,
                Ok(false) => {}
                Err(e) => {
                    out.lost += 1;
                    out.error.get_or_insert_with(|| e.to_string());
                }
            }
        }
        self.clear();
        out
    }

    /// Whether to queue an `Arm` message now (and marks it queued): a bundle is ready, none is
    /// being armed, and every armed one is in use.
    pub(super) fn should_queue(&mut self) -> bool {
        let want = self.enabled
            && !self.queued
            && self.arming.is_none()
            && self.held.keys().all(|b| self.running.contains(b))
            && !self.order.is_empty();
        self.queued |= want;
        want
    }

    /// Handles `Arm`: collects a finished arming thread's bundle (returned with its bytes and
    /// the thread's time), then, if no armed bundle is idle and none is being armed, starts
    /// taking the oldest ready bundle on a new thread, which calls `done` when it is finished.
    pub(super) fn arm(
        &mut self,
        store: &NodeStore,
        session: SessionId,
        limit: u64,
        done: impl FnOnce() + Send + 'static,
    ) -> Result<Option<(BundleId, u64, u128)>> {
        self.queued = false;
        let collected = self.collect(false)?;
        let idle_held = self.held.keys().any(|b| !self.running.contains(b));
        if !self.enabled || self.arming.is_some() || idle_held {
            return Ok(collected);
        }
        // Over the budget or gone from the store: left for the inference to take.
        let Some(bundle) = self.order.pop_front() else {
            return Ok(collected);
        };
        let (tx, rx) = mpsc::sync_channel(1);
        let reads = store.bundle_reads(session, bundle)?;
        let (store, shared) = (store.clone(), reads.clone());
        let spawned = std::thread::Builder::new()
            .name("seco-arm".into())
            .spawn(move || {
                // Nobody waiting (the bundle was forgotten): the bundle drops here, zeroed.
                // Off the critical path: one core at low priority, so that an inference or a
                // bundle's preparation running meanwhile keeps the cores (a take that needs
                // the bundle first reads the rest itself, `take`).
                lower_priority();
                store.read_chunks(&shared, false);
                let _ = tx.send(store.finish_take(&shared, limit));
                done();
            });
        match spawned {
            Ok(_) => {
                self.arming = Some(Arming {
                    bundle,
                    rx,
                    since: Instant::now(),
                    reads,
                })
            }
            // No thread to be had: left for the inference to take.
            Err(e) => tracing::warn!(error = %e, "cannot start a thread to arm a bundle"),
        }
        Ok(collected)
    }

    /// Waits for the arming thread, if one runs, and keeps its bundle.
    pub(super) fn settle(&mut self) -> Result<Option<(BundleId, u64, u128)>> {
        self.collect(true)
    }

    /// The finished arming thread's bundle, kept in `held` (waiting for the thread if `block`).
    fn collect(&mut self, block: bool) -> Result<Option<(BundleId, u64, u128)>> {
        let Some(arming) = &self.arming else {
            return Ok(None);
        };
        let outcome = if block {
            arming.rx.recv().ok()
        } else {
            match arming.rx.try_recv() {
                Ok(r) => Some(r),
                Err(mpsc::TryRecvError::Empty) => return Ok(None),
                Err(mpsc::TryRecvError::Disconnected) => None,
            }
        };
        let (bundle, us) = (arming.bundle, arming.since.elapsed().as_micros());
        self.arming = None;
        match outcome {
            Some(Ok(Some(armed))) => {
                let bytes = armed.bytes();
                self.held.insert(bundle, armed);
                Ok(Some((bundle, bytes, us)))
            }
            // Over the budget, gone, or the thread panicked: the inference takes what is left.
            Some(Ok(None)) | None => Ok(None),
            Some(Err(e)) => Err(e),
        }
    }

    /// Serves one step's takes (drive.rs): bundles starting an inference are taken whole
    /// unless armed already, records of held bundles come from memory, the rest from the store
    /// in one batch and one flush ([`NodeStore::take_records`]).
    pub(super) fn take(
        &mut self,
        store: &NodeStore,
        session: SessionId,
        limit: u64,
        bundles: &[BundleId],
        takes: &[ChunkTake],
    ) -> Result<TakenRecords> {
        let wanted = |b: BundleId| bundles.contains(&b) || takes.iter().any(|t| t.bundle == b);
        if let Some(a) = self.arming.as_ref().filter(|a| wanted(a.bundle)) {
            // The inference needs it now: the records the thread has not claimed yet are read
            // here, on every core at normal priority, instead of waiting for a thread at nice 10.
            store.read_chunks(&a.reads, true);
            self.settle()?;
        }
        if self.enabled {
            self.running.extend(bundles.iter().copied());
            for &b in bundles {
                if self.held.contains_key(&b) {
                    continue;
                }
                self.order.retain(|o| *o != b);
                if self.whole {
                    if let Some(a) = store.take_bundle(session, b, limit, true)? {
                        self.held.insert(b, a);
                    }
                }
            }
        }
        let mut got_bundles = vec![None; bundles.len()];
        let mut got_chunks: Vec<Vec<Option<Vec<u8>>>> = vec![Vec::new(); takes.len()];
        let (mut miss_b, mut miss_bi) = (Vec::new(), Vec::new());
        for (i, &b) in bundles.iter().enumerate() {
            match self.held.get_mut(&b) {
                Some(a) => got_bundles[i] = a.take_record(),
                None => {
                    miss_b.push(b);
                    miss_bi.push(i);
                }
            }
        }
        let (mut miss_t, mut miss_ti) = (Vec::new(), Vec::new());
        for (i, t) in takes.iter().enumerate() {
            match self.held.get_mut(&t.bundle) {
                Some(a) => {
                    got_chunks[i] = (0..t.chunks).map(|c| a.take_chunk(t.stage, c)).collect();
                }
                None => {
                    miss_t.push(*t);
                    miss_ti.push(i);
                }
            }
        }
        self.held.retain(|_, a| !a.is_empty());
        if !miss_b.is_empty() || !miss_t.is_empty() {
            let (b, c) = store.take_records(session, &miss_b, &miss_t)?;
            for (i, v) in miss_bi.into_iter().zip(b) {
                got_bundles[i] = v;
            }
            for (i, v) in miss_ti.into_iter().zip(c) {
                got_chunks[i] = v;
            }
        }
        Ok((got_bundles, got_chunks))
    }
}

/// Lowers the calling thread's scheduling priority (nice 10; on Linux the nice value is a
/// thread's own). Best effort: a failure leaves the priority as it was.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority only changes the calling thread's nice value (`who` = 0).
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 10);
    }
}

impl SessionState {
    /// `SessionMsg::Arm`: collects a finished arming, starts the next (module docs).
    pub(super) fn arm(&mut self, myself: &ActorRef<SessionMsg>) -> ActorResult<()> {
        if self.aborted {
            return Ok(());
        }
        let limit = self.ctx.limits.armed_bytes as u64;
        let me = myself.clone();
        let done = move || {
            let _ = me.cast(SessionMsg::Arm);
        };
        if let Some((bundle, bytes, us)) =
            self.armed.arm(&self.ctx.store, self.session, limit, done)?
        {
            tracing::trace!(node = %self.ctx.name, session = %self.session, %bundle, bytes, us = us as u64, "armed a bundle");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use seco_runtime::store::MemStore;

    use super::*;

    #[test]
    fn an_armed_bundle_serves_its_takes_from_memory_and_is_gone_from_the_store() {
        let store = NodeStore::new(Arc::new(MemStore::new()));
        let (sid, b) = (SessionId([3; 16]), BundleId([4; 16]));
        store.put_test_bundle(sid, b, &[7; 10], &[(0, 2), (2, 1)]);
        let mut armed = Armed::new(Some(100), 1 << 20);
        armed.ready(b);
        assert!(armed.should_queue());
        assert!(!armed.should_queue(), "one Arm message at a time");
        assert_eq!(armed.arm(&store, sid, 1 << 20, || {}).unwrap(), None);
        assert!(!armed.should_queue(), "one arming at a time");
        let (got, bytes, _) = armed.settle().unwrap().unwrap();
        assert_eq!((got, bytes), (b, 10 + 3 * 5));
        assert!(!armed.should_queue(), "nothing else ready");
        assert_eq!(store.armed_bytes(), 25);
        // Nothing of it is left on disk: a crash now loses it, never reuses it.
        let (left, chunks) = store
            .take_records(
                sid,
                &[b],
                &[ChunkTake {
                    bundle: b,
                    stage: 0,
                    chunks: 2,
                }],
            )
            .unwrap();
        assert_eq!(left, vec![None]);
        assert_eq!(chunks, vec![vec![None, None]]);
        let stage0 = ChunkTake {
            bundle: b,
            stage: 0,
            chunks: 2,
        };
        let (r, c) = armed.take(&store, sid, 1 << 20, &[b], &[stage0]).unwrap();
        assert_eq!(r, vec![Some(vec![7; 10])]);
        assert_eq!(c, vec![vec![Some(vec![0; 5]), Some(vec![1; 5])]]);
        assert_eq!(store.armed_bytes(), 5);
        // A second use of the record finds nothing.
        let (r, _) = armed.take(&store, sid, 1 << 20, &[b], &[]).unwrap();
        assert_eq!(r, vec![None]);
        let stage2 = ChunkTake {
            bundle: b,
            stage: 2,
            chunks: 1,
        };
        let (_, c) = armed.take(&store, sid, 1 << 20, &[], &[stage2]).unwrap();
        assert_eq!(c, vec![vec![Some(vec![0; 5])]]);
        assert_eq!(store.armed_bytes(), 0);
        assert!(armed.held.is_empty());
    }

    #[test]
    fn a_bundle_over_the_budget_stays_in_the_store_and_is_taken_by_stage() {
        let store = NodeStore::new(Arc::new(MemStore::new()));
        let (sid, b) = (SessionId([3; 16]), BundleId([5; 16]));
        // 10 + 5 bytes against a budget of 12.
        store.put_test_bundle(sid, b, &[7; 10], &[(1, 1)]);
        let mut armed = Armed::new(Some(1), 12);
        armed.ready(b);
        assert_eq!(armed.arm(&store, sid, 12, || {}).unwrap(), None);
        assert_eq!(armed.settle().unwrap(), None);
        let stage1 = ChunkTake {
            bundle: b,
            stage: 1,
            chunks: 1,
        };
        let (r, c) = armed.take(&store, sid, 12, &[b], &[stage1]).unwrap();
        assert_eq!(r, vec![Some(vec![7; 10])]);
        assert_eq!(c, vec![vec![Some(vec![0; 5])]]);
        assert_eq!(store.armed_bytes(), 0);
        // Large bundles against the budget do not arm at all.
        assert!(!Armed::new(Some(1 << 30), 256 << 20).enabled());
        assert!(Armed::new(None, 256 << 20).enabled());
    }

    #[test]
    fn forgetting_an_armed_bundle_returns_its_bytes() {
        let store = NodeStore::new(Arc::new(MemStore::new()));
        let (sid, b) = (SessionId([3; 16]), BundleId([6; 16]));
        store.put_test_bundle(sid, b, &[7; 10], &[(0, 3)]);
        let mut armed = Armed::new(None, 1 << 20);
        armed.ready(b);
        armed.arm(&store, sid, 1 << 20, || {}).unwrap();
        assert!(armed.settle().unwrap().is_some());
        assert_eq!(store.armed_bytes(), 25);
        armed.forget(b);
        assert_eq!(store.armed_bytes(), 0);
    }

    /// An inference that starts while its bundle is being armed waits for the arming thread
    /// and gets every record; the next bundle is armed while that inference runs.
    #[test]
    fn a_take_of_the_bundle_being_armed_waits_for_it_and_the_next_arms_meanwhile() {
        let store = NodeStore::new(Arc::new(MemStore::new()));
        let sid = SessionId([3; 16]);
        let (b1, b2) = (BundleId([7; 16]), BundleId([8; 16]));
        store.put_test_bundle(sid, b1, &[1; 10], &[(0, 1)]);
        store.put_test_bundle(sid, b2, &[2; 10], &[(0, 1)]);
        let mut armed = Armed::new(None, 1 << 20);
        armed.ready(b1);
        armed.ready(b2);
        let (tx, rx) = std::sync::mpsc::channel();
        armed
            .arm(&store, sid, 1 << 20, move || tx.send(()).unwrap())
            .unwrap();
        let stage0 = |bundle| ChunkTake {
            bundle,
            stage: 0,
            chunks: 1,
        };
        let (r, c) = armed
            .take(&store, sid, 1 << 20, &[b1], &[stage0(b1)])
            .unwrap();
        assert_eq!(r, vec![Some(vec![1; 10])]);
        assert_eq!(c, vec![vec![Some(vec![0; 5])]]);
        rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
        // b1 runs and is used up; b2 is armed meanwhile.
        assert!(armed.should_queue());
        armed.arm(&store, sid, 1 << 20, || {}).unwrap();
        assert_eq!(armed.settle().unwrap().map(|a| a.0), Some(b2));
        assert!(!armed.should_queue(), "b2 is armed and idle");
        assert_eq!(store.armed_bytes(), 15);
    }

    /// A bundle forgotten (aborted) while it is being armed is dropped by its thread, its bytes
    /// given back; a clean stop waits for a running arming and puts its bundle back.
    #[test]
    fn forgetting_or_stopping_while_arming_loses_nothing_else() {
        let store = NodeStore::new(Arc::new(MemStore::new()));
        let sid = SessionId([3; 16]);
        let (b1, b2) = (BundleId([9; 16]), BundleId([10; 16]));
        store.put_test_bundle(sid, b1, &[1; 10], &[(0, 1)]);
        store.put_test_bundle(sid, b2, &[2; 10], &[(0, 1)]);
        let mut armed = Armed::new(None, 1 << 20);
        armed.ready(b1);
        let (tx, rx) = std::sync::mpsc::channel();
        armed
            .arm(&store, sid, 1 << 20, move || tx.send(()).unwrap())
            .unwrap();
        armed.forget(b1);
        rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
        assert_eq!(store.armed_bytes(), 0);
        armed.ready(b2);
        armed.arm(&store, sid, 1 << 20, || {}).unwrap();
        assert_eq!(
            armed.disarm(&store, sid),
            Disarmed {
                back: 1,
                ..Disarmed::default()
            }
        );
        assert_eq!(store.armed_bytes(), 0);
        let (r, _) = store.take_records(sid, &[b2], &[]).unwrap();
        assert_eq!(r, vec![Some(vec![2; 10])], "put back");
    }

    /// A session of a large model (tables over an eighth of the budget) arms its bundles
    /// ahead, but one not armed when its inference starts is taken stage by stage: only what
    /// the first step asks for is read then, the other stages stay in the store.
    #[test]
    fn a_large_session_arms_ahead_but_takes_an_unarmed_bundle_by_stage() {
        let store = NodeStore::new(Arc::new(MemStore::new()));
        let sid = SessionId([3; 16]);
        let (b1, b2) = (BundleId([11; 16]), BundleId([12; 16]));
        store.put_test_bundle(sid, b1, &[1; 10], &[(0, 1), (1, 1)]);
        store.put_test_bundle(sid, b2, &[2; 10], &[(0, 1), (1, 1)]);
        let mut armed = Armed::new(Some(100), 200);
        assert!(armed.enabled() && !armed.whole);
        armed.ready(b1);
        armed.ready(b2);
        armed.arm(&store, sid, 200, || {}).unwrap();
        assert_eq!(armed.settle().unwrap().map(|a| (a.0, a.1)), Some((b1, 20)));
        let stage = |bundle, stage| ChunkTake {
            bundle,
            stage,
            chunks: 1,
        };
        // b2 starts first (not armed): its record and first stage only.
        let (r, c) = armed
            .take(&store, sid, 200, &[b2], &[stage(b2, 0)])
            .unwrap();
        assert_eq!(r, vec![Some(vec![2; 10])]);
        assert_eq!(c, vec![vec![Some(vec![0; 5])]]);
        assert_eq!(store.armed_bytes(), 20, "b2 was not taken whole");
        let (_, c) = store.take_records(sid, &[], &[stage(b2, 1)]).unwrap();
        assert_eq!(
            c,
            vec![vec![Some(vec![0; 5])]],
            "b2's later stage stayed stored"
        );
        // b1 is served from memory.
        let (r, c) = armed
            .take(&store, sid, 200, &[b1], &[stage(b1, 0), stage(b1, 1)])
            .unwrap();
        assert_eq!(r, vec![Some(vec![1; 10])]);
        assert_eq!(c.len(), 2);
        assert_eq!(store.armed_bytes(), 0);
    }
}

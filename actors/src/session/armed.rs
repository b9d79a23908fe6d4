//! Armed bundles: a session takes its next bundle out of the store *before* the inference
//! that uses it, so the online phase reads records from memory instead of waiting for a
//! durable take (a store flush) at each stage.
//!
//! - When a bundle is ready here and nothing is armed or running, the session sends itself
//!   [`SessionMsg::Arm`](crate::msgs::SessionMsg::Arm); handling it takes the oldest ready bundle
//!   whole (its record and every stage's chunks, one batch and one flush:
//!   [`NodeStore::take_bundle`]). The user takes its oldest ready bundle first too
//!   (`UserSession::infer`), so the armed one is normally the next one used. After an inference
//!   the next bundle is armed the same way.
//! - A step's takes are served from the armed bundle; a bundle that is not armed is taken whole
//!   when its inference starts (one flush for all its stages instead of one per stage), and
//!   one that does not fit the budget is taken stage by stage as before.
//! - A record still leaves the store durably before its first use, so no bundle is used twice.
//!   A crash loses the armed bundle (it is no longer on disk): its inference then fails as
//!   "unknown or already used" at this server, the bundle is aborted, and the user retries with
//!   a fresh bundle (`docs/operations.md`, "Armed bundles"). A clean stop of the session actor
//!   puts an armed bundle that served nothing back into the store ([`Armed::disarm`]).
//! - Nothing is armed while an inference of the session runs here: the flush waits for the
//!   inference's end instead of delaying it.
//! - Memory: at most one armed bundle per session besides those whose inference runs, only for
//!   sessions whose bundles are small against `Limits::armed_bytes`, and all armed bytes of the
//!   node within that budget; large models (e.g. `cifar-cnn`) keep streaming stage by stage.

use std::collections::{HashMap, HashSet, VecDeque};

use seco_protocols::seco::{BundleId, ChunkTake, SessionId};
use seco_runtime::store::Result;

use super::{MachineKind, SessionState};
use crate::error::Result as ActorResult;
use crate::store::{ArmedBundle, NodeStore, TakenRecords};

/// A session arms bundles only if its garbled tables per bundle are at most this fraction of
/// the node's armed budget (so that several sessions can arm at once).
const ARM_FRACTION: u64 = 8;

/// A session's armed bundles (module docs).
#[derive(Debug, Default)]
pub(super) struct Armed {
    /// Whether this session arms at all.
    enabled: bool,
    /// Bundles ready here and not taken yet, oldest first.
    order: VecDeque<BundleId>,
    /// Bundles taken whole: the armed one and those whose inference is running.
    held: HashMap<BundleId, ArmedBundle>,
    /// Bundles whose inference runs here (taken, not yet done or aborted): nothing is armed
    /// meanwhile, so that arming (a store flush) never delays an inference.
    running: HashSet<BundleId>,
    /// An `Arm` message is queued.
    queued: bool,
}

impl Armed {
    /// Arming for a session whose garbled tables per bundle are `table_bytes` (`None`: the
    /// user, whose bundle is one small record), within a node budget of `limit` bytes.
    pub(super) fn new(table_bytes: Option<u64>, limit: u64) -> Self {
        Self {
            enabled: limit > 0 && table_bytes.is_none_or(|t| t <= limit / ARM_FRACTION),
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
    }

    /// The session ended: every armed bundle is dropped (zeroed).
    pub(super) fn clear(&mut self) {
        self.order.clear();
        self.held.clear();
        self.running.clear();
    }

    /// The session actor stops cleanly (the node shuts down): armed bundles that served nothing
    /// go back to the store, the others are dropped. Returns how many went back.
    pub(super) fn disarm(&mut self, store: &NodeStore, session: SessionId) -> Result<usize> {
        let mut back = 0;
        for (bundle, armed) in self.held.drain() {
            back += usize::from(store.put_back(session, bundle, armed)?);
        }
        self.clear();
        Ok(back)
    }

    /// Whether to queue an `Arm` message now (and marks it queued).
    pub(super) fn should_queue(&mut self) -> bool {
        let want = self.enabled
            && !self.queued
            && self.running.is_empty()
            && self.held.is_empty()
            && !self.order.is_empty();
        self.queued |= want;
        want
    }

    /// Handles `Arm`: if nothing is held and no inference runs here (`idle`), takes the oldest
    /// ready bundle whole. Returns it and its bytes if one was armed.
    pub(super) fn arm(
        &mut self,
        store: &NodeStore,
        session: SessionId,
        limit: u64,
        idle: bool,
    ) -> Result<Option<(BundleId, u64)>> {
        self.queued = false;
        if !self.enabled || !idle || !self.running.is_empty() || !self.held.is_empty() {
            return Ok(None);
        }
        // Over the budget or gone from the store: left for the inference to take.
        let Some(bundle) = self.order.pop_front() else {
            return Ok(None);
        };
        Ok(store.take_bundle(session, bundle, limit)?.map(|a| {
            let bytes = a.bytes();
            self.held.insert(bundle, a);
            (bundle, bytes)
        }))
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
        if self.enabled {
            self.running.extend(bundles.iter().copied());
            for &b in bundles {
                if !self.held.contains_key(&b) {
                    self.order.retain(|o| *o != b);
                    if let Some(a) = store.take_bundle(session, b, limit)? {
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

impl SessionState {
    /// `SessionMsg::Arm`: arms the oldest ready bundle if no inference runs here.
    pub(super) fn arm(&mut self) -> ActorResult<()> {
        if self.aborted {
            return Ok(());
        }
        let idle = match &self.machine {
            MachineKind::Server(s) => s.in_flight().1.is_empty(),
            MachineKind::User(_) => true,
        };
        let limit = self.ctx.limits.armed_bytes as u64;
        let t = std::time::Instant::now();
        if let Some((bundle, bytes)) = self.armed.arm(&self.ctx.store, self.session, limit, idle)? {
            tracing::trace!(node = %self.ctx.name, session = %self.session, %bundle, bytes, us = t.elapsed().as_micros() as u64, "armed a bundle");
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
        let (got, bytes) = armed.arm(&store, sid, 1 << 20, true).unwrap().unwrap();
        assert_eq!((got, bytes), (b, 10 + 3 * 5));
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
        assert_eq!(armed.arm(&store, sid, 12, true).unwrap(), None);
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
        assert!(
            armed.arm(&store, sid, 1 << 20, false).unwrap().is_none(),
            "not while busy"
        );
        armed.ready(b);
        assert!(armed.arm(&store, sid, 1 << 20, true).unwrap().is_some());
        assert_eq!(store.armed_bytes(), 25);
        armed.forget(b);
        assert_eq!(store.armed_bytes(), 0);
    }
}

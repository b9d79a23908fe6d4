//! Phase deadlines of a server session (DESIGN.md s.7: explicit timeouts per phase).
//!
//! - Session open (with key generation): from the session actor's start until `SessionReady`.
//! - A bundle's preparation and an inference: from the first time the bundle appears in the
//!   state machine's in-flight sets (`ServerSession::in_flight`) until it leaves them; at the
//!   gateway, also from the user's `PrepRequest` / `Infer` until `BundleReady` / `Result` goes
//!   back to the user (the gateway waits for the other servers after its own part is done).
//!
//! An expired deadline aborts the bundle (or the session) on every peer with a reason.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use seco_protocols::seco::BundleId;

use crate::config::Timeouts;

/// What a deadline guards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// A bundle's preparation.
    Prep,
    /// An inference.
    Online,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Prep => "preparation",
            Op::Online => "inference",
        }
    }
}

/// An expired deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expired {
    /// The bundle, or `None` for the session open.
    pub bundle: Option<BundleId>,
    /// Why (the abort reason).
    pub reason: String,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    at: Instant,
    /// Tracked through the in-flight sets (else through the gateway's messages).
    machine: bool,
}

/// The deadlines of one session.
#[derive(Debug)]
pub struct Deadlines {
    /// Session open, one bundle's preparation, one inference.
    limits: (Duration, Duration, Duration),
    open: Option<Instant>,
    ops: HashMap<(Op, BundleId), Entry>,
}

impl Deadlines {
    /// Deadlines of a session that is opening (`opening`) or already open, at a server whose
    /// split garbles `table_bytes` of tables per bundle (scaled deadlines,
    /// [`Timeouts::prep_for`]), or at the user (`None`).
    pub fn new(timeouts: Timeouts, table_bytes: Option<u64>, opening: bool, now: Instant) -> Self {
        let (prep, inference) = match table_bytes {
            Some(b) => (timeouts.prep_for(b), timeouts.inference_for(b)),
            None => (timeouts.user_prep(), timeouts.user_inference()),
        };
        Self {
            limits: (timeouts.open, prep, inference),
            open: opening.then(|| now + timeouts.open),
            ops: HashMap::new(),
        }
    }

    /// The deadline of `op`.
    pub fn limit(&self, op: Op) -> Duration {
        match op {
            Op::Prep => self.limits.1,
            Op::Online => self.limits.2,
        }
    }

    /// The session is open.
    pub fn opened(&mut self) {
        self.open = None;
    }

    /// Whether anything is in flight (the session is not idle).
    pub fn busy(&self) -> bool {
        self.open.is_some() || !self.ops.is_empty()
    }

    /// Syncs the machine-tracked entries with the state machine's in-flight sets.
    pub fn observe(&mut self, preps: &[BundleId], onlines: &[BundleId], now: Instant) {
        for (op, set) in [(Op::Prep, preps), (Op::Online, onlines)] {
            for b in set {
                let at = now + self.limit(op);
                self.ops
                    .entry((op, *b))
                    .or_insert(Entry { at, machine: true });
            }
        }
        self.ops.retain(|(op, b), e| {
            !e.machine
                || match op {
                    Op::Prep => preps.contains(b),
                    Op::Online => onlines.contains(b),
                }
        });
    }

    /// Gateway: the user started `op` on `bundle`.
    pub fn start(&mut self, op: Op, bundle: BundleId, now: Instant) {
        let at = now + self.limit(op);
        self.ops.insert((op, bundle), Entry { at, machine: false });
    }

    /// Gateway: `op` on `bundle` answered to the user.
    pub fn finish(&mut self, op: Op, bundle: BundleId) {
        self.ops.remove(&(op, bundle));
    }

    /// `bundle` was aborted.
    pub fn forget(&mut self, bundle: BundleId) {
        self.ops.retain(|(_, b), _| *b != bundle);
    }

    /// The session was aborted.
    pub fn clear(&mut self) {
        self.open = None;
        self.ops.clear();
    }

    /// Removes and returns what expired at `now`.
    pub fn expired(&mut self, now: Instant) -> Vec<Expired> {
        let mut out = Vec::new();
        if self.open.is_some_and(|at| at <= now) {
            self.open = None;
            out.push(Expired {
                bundle: None,
                reason: format!(
                    "timeout: the session was not open after {:?} (a server is unreachable or key generation stalled)",
                    self.limits.0
                ),
            });
        }
        let due: Vec<(Op, BundleId)> = self
            .ops
            .iter()
            .filter(|(_, e)| e.at <= now)
            .map(|(k, _)| *k)
            .collect();
        for (op, b) in due {
            self.ops.remove(&(op, b));
            out.push(Expired {
                bundle: Some(b),
                reason: format!(
                    "timeout: {} of bundle {b} not finished after {:?} (a server is unreachable?)",
                    op.name(),
                    self.limit(op)
                ),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_ops_and_expiry() {
        let t = Timeouts {
            open: Duration::from_secs(1),
            prep: Some(Duration::from_secs(2)),
            inference: Some(Duration::from_secs(3)),
            ..Timeouts::default()
        };
        let t0 = Instant::now();
        let mut d = Deadlines::new(t, Some(1 << 30), true, t0);
        assert!(d.busy());
        let b = BundleId([1; 16]);
        let c = BundleId([2; 16]);
        d.observe(&[b], &[], t0);
        d.start(Op::Online, c, t0);
        assert!(d.expired(t0).is_empty());
        let e = d.expired(t0 + Duration::from_millis(1500));
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].bundle, None);
        // b leaves the in-flight set: its deadline goes; c is gateway-tracked and stays.
        d.observe(&[], &[], t0);
        let e = d.expired(t0 + Duration::from_secs(10));
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].bundle, Some(c));
        assert!(!d.busy());
    }
}

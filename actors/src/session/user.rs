//! The user's callers waiting on their session: open, one bundle's preparation, one inference.
//! Each waiter has a deadline; events resolve waiters; an abort or a lost gateway fails them.

use std::collections::HashMap;
use std::time::Instant;

use ractor::RpcReplyPort;
use seco_protocols::seco::{AbortKind, BundleId, CloseReason, Event, Prediction, SecoError};

use crate::config::Timeouts;
use crate::error::{ActorError, Result};

type Port<T> = RpcReplyPort<Result<T>>;
type Pending<T> = HashMap<BundleId, (Instant, Port<T>)>;

/// Pending user requests.
pub(crate) struct Waiters {
    timeouts: Timeouts,
    open: Vec<(Instant, Port<()>)>,
    prep: Pending<BundleId>,
    infer: Pending<(BundleId, Prediction)>,
    ready: bool,
    /// Why the session ended (aborted, closed), failing every later wait.
    ended: Option<Ended>,
}

#[derive(Clone)]
enum Ended {
    Aborted(String, AbortKind),
    Closed(CloseReason),
}

impl Waiters {
    pub(crate) fn new(timeouts: Timeouts) -> Self {
        Self {
            timeouts,
            open: Vec::new(),
            prep: HashMap::new(),
            infer: HashMap::new(),
            ready: false,
            ended: None,
        }
    }

    fn ended_error(&self) -> Option<ActorError> {
        self.ended.as_ref().map(|e| match e {
            Ended::Aborted(r, kind) => ActorError::Aborted {
                bundle: None,
                reason: r.clone(),
                kind: *kind,
            },
            Ended::Closed(r) => ActorError::Protocol(SecoError::Closed(*r)),
        })
    }

    /// Whether a caller waits (a lost gateway matters).
    pub(crate) fn busy(&self) -> bool {
        !(self.open.is_empty() && self.prep.is_empty() && self.infer.is_empty())
    }

    /// The phase the callers wait in, for an abort reason.
    pub(crate) fn phase(&self) -> &'static str {
        if !self.ready {
            "session open"
        } else if !self.prep.is_empty() {
            "preprocessing"
        } else {
            "online inference"
        }
    }

    /// Waits for the session to open (answers at once if it is open or aborted).
    pub(crate) fn wait_open(&mut self, port: Port<()>, now: Instant) {
        if let Some(e) = self.ended_error() {
            let _ = port.send(Err(e));
        } else if self.ready {
            let _ = port.send(Ok(()));
        } else {
            self.open.push((now + self.timeouts.open, port));
        }
    }

    /// Waits for `bundle` to be ready at every server.
    pub(crate) fn wait_prep(&mut self, bundle: BundleId, port: Port<BundleId>, now: Instant) {
        self.prep
            .insert(bundle, (now + self.timeouts.user_prep(), port));
    }

    /// Waits for the result (logits or label) of the inference on `bundle`.
    pub(crate) fn wait_infer(
        &mut self,
        bundle: BundleId,
        port: Port<(BundleId, Prediction)>,
        now: Instant,
    ) {
        self.infer
            .insert(bundle, (now + self.timeouts.user_inference(), port));
    }

    /// Resolves waiters from an event of the state machine.
    pub(crate) fn on_event(&mut self, event: &Event) {
        match event {
            Event::SessionReady => {
                self.ready = true;
                for (_, p) in self.open.drain(..) {
                    let _ = p.send(Ok(()));
                }
            }
            Event::BundleReady(b) => {
                if let Some((_, p)) = self.prep.remove(b) {
                    let _ = p.send(Ok(*b));
                }
            }
            Event::Logits { bundle, logits } => {
                if let Some((_, p)) = self.infer.remove(bundle) {
                    let _ = p.send(Ok((*bundle, Prediction::Logits(logits.clone()))));
                }
            }
            Event::Label { bundle, class } => {
                if let Some((_, p)) = self.infer.remove(bundle) {
                    let _ = p.send(Ok((*bundle, Prediction::Label(*class))));
                }
            }
            Event::Aborted {
                bundle: Some(b),
                reason,
                kind,
            } => self.fail_bundle(*b, || ActorError::Aborted {
                bundle: Some(*b),
                reason: reason.clone(),
                kind: *kind,
            }),
            Event::Aborted {
                bundle: None,
                reason,
                kind,
            } => {
                self.ended = Some(Ended::Aborted(reason.clone(), *kind));
                self.fail_all(|| ActorError::Aborted {
                    bundle: None,
                    reason: reason.clone(),
                    kind: *kind,
                });
            }
            Event::Closed(r) => {
                self.ended = Some(Ended::Closed(*r));
                self.fail_all(|| ActorError::Protocol(SecoError::Closed(*r)));
            }
            Event::InferenceDone(_) => {}
        }
    }

    /// Fails the waiter of `bundle` (preparation or inference).
    pub(crate) fn fail_bundle(&mut self, bundle: BundleId, err: impl Fn() -> ActorError) {
        if let Some((_, p)) = self.prep.remove(&bundle) {
            let _ = p.send(Err(err()));
        }
        if let Some((_, p)) = self.infer.remove(&bundle) {
            let _ = p.send(Err(err()));
        }
    }

    /// Fails every waiter.
    pub(crate) fn fail_all(&mut self, err: impl Fn() -> ActorError) {
        for (_, p) in self.open.drain(..) {
            let _ = p.send(Err(err()));
        }
        for (_, (_, p)) in self.prep.drain() {
            let _ = p.send(Err(err()));
        }
        for (_, (_, p)) in self.infer.drain() {
            let _ = p.send(Err(err()));
        }
    }

    /// Fails the waiters whose deadline passed.
    pub(crate) fn expire(&mut self, now: Instant) {
        let t = self.timeouts;
        let (due, keep): (Vec<_>, Vec<_>) = self.open.drain(..).partition(|(at, _)| *at <= now);
        self.open = keep;
        for (_, p) in due {
            let _ = p.send(Err(ActorError::Timeout {
                what: "session open",
                after: t.open,
            }));
        }
        let due: Vec<BundleId> = self
            .prep
            .iter()
            .filter(|(_, (at, _))| *at <= now)
            .map(|(b, _)| *b)
            .collect();
        for b in due {
            if let Some((_, p)) = self.prep.remove(&b) {
                let _ = p.send(Err(ActorError::Timeout {
                    what: "bundle preparation",
                    after: t.user_prep(),
                }));
            }
        }
        let due: Vec<BundleId> = self
            .infer
            .iter()
            .filter(|(_, (at, _))| *at <= now)
            .map(|(b, _)| *b)
            .collect();
        for b in due {
            if let Some((_, p)) = self.infer.remove(&b) {
                let _ = p.send(Err(ActorError::Timeout {
                    what: "inference",
                    after: t.user_inference(),
                }));
            }
        }
    }
}

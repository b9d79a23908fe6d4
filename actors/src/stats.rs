//! Per-node accounting: bytes and messages per phase (counted by the network actor when a
//! message is handed to or received from the runtime: SECO payload bytes, without envelope,
//! Noise and Yamux framing), CPU time per phase (time spent inside the state machine), and
//! session outcomes. `seco node` writes it to `<data-dir>/stats.json`; `seco demo` reads it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use seco_protocols::seco::{Event, Phase};
use serde::{Deserialize, Serialize};

/// Usage of one phase.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseUsage {
    /// SECO payload bytes handed to the network.
    pub bytes_sent: u64,
    /// SECO payload bytes received.
    pub bytes_received: u64,
    /// Messages sent.
    pub messages_sent: u64,
    /// Messages received.
    pub messages_received: u64,
    /// Microseconds spent in the state machine on inputs of this phase.
    pub cpu_us: u64,
}

/// A node's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStats {
    /// Node name.
    pub name: String,
    /// Usage per phase (`session`, `keygen`, `setup`, `prep`, `online`, `abort`).
    pub phases: BTreeMap<String, PhaseUsage>,
    /// Sessions that became ready.
    pub sessions_ready: u64,
    /// Bundles ready.
    pub bundles_ready: u64,
    /// Inferences finished.
    pub inferences: u64,
    /// Aborts (session or bundle).
    pub aborts: u64,
    /// Sessions closed by their user or expired.
    #[serde(default)]
    pub sessions_closed: u64,
    /// Inbound messages refused (undecodable, unknown session, refused by the state machine).
    pub refused: u64,
    /// Session actors restarted after a crash.
    pub restarts: u64,
    /// The process's peak resident set size in KiB (`VmHWM` of `/proc/self/status`) when the
    /// counters were copied; `None` where `/proc` has no such line.
    #[serde(default)]
    pub peak_rss_kib: Option<u64>,
}

/// This process's peak resident set size in KiB (`VmHWM`), on Linux.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The name of a phase in the stats.
pub fn phase_name(p: Phase) -> &'static str {
    match p {
        Phase::Session => "session",
        Phase::Keygen => "keygen",
        Phase::Setup => "setup",
        Phase::Prep => "prep",
        Phase::Online => "online",
        Phase::Abort => "abort",
    }
}

/// Shared, cheap-to-clone counters.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    inner: Arc<Mutex<(NodeStats, bool)>>,
}

impl Stats {
    /// Counters for node `name`.
    pub fn new(name: &str) -> Self {
        let s = Self::default();
        s.lock().0.name = name.to_string();
        s
    }

    fn lock(&self) -> MutexGuard<'_, (NodeStats, bool)> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update(&self, f: impl FnOnce(&mut NodeStats)) {
        let mut g = self.lock();
        f(&mut g.0);
        g.1 = true;
    }

    fn phase(&self, p: Phase, f: impl FnOnce(&mut PhaseUsage)) {
        self.update(|s| f(s.phases.entry(phase_name(p).to_string()).or_default()));
    }

    /// A message of `bytes` sent in phase `p`.
    pub fn sent(&self, p: Phase, bytes: usize) {
        self.phase(p, |u| {
            u.bytes_sent += bytes as u64;
            u.messages_sent += 1;
        });
    }

    /// A message of `bytes` received in phase `p`.
    pub fn received(&self, p: Phase, bytes: usize) {
        self.phase(p, |u| {
            u.bytes_received += bytes as u64;
            u.messages_received += 1;
        });
    }

    /// Time spent in the state machine.
    pub fn cpu(&self, p: Phase, d: Duration) {
        self.phase(p, |u| {
            u.cpu_us += u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
        });
    }

    /// A refused inbound message.
    pub fn refused(&self) {
        self.update(|s| s.refused += 1);
    }

    /// A restarted session actor.
    pub fn restarted(&self) {
        self.update(|s| s.restarts += 1);
    }

    /// Counts a protocol event.
    pub fn event(&self, e: &Event) {
        self.update(|s| match e {
            Event::SessionReady => s.sessions_ready += 1,
            Event::BundleReady(_) => s.bundles_ready += 1,
            Event::InferenceDone(_) | Event::Logits { .. } | Event::Label { .. } => {
                s.inferences += 1
            }
            Event::Aborted { .. } => s.aborts += 1,
            Event::Closed(_) => s.sessions_closed += 1,
        });
    }

    /// A copy of the counters.
    pub fn snapshot(&self) -> NodeStats {
        let mut s = self.lock().0.clone();
        s.peak_rss_kib = peak_rss_kib();
        s
    }

    /// The counters if they changed since the last call (for periodic writing).
    pub fn take_dirty(&self) -> Option<NodeStats> {
        let mut g = self.lock();
        if !g.1 {
            return None;
        }
        g.1 = false;
        let mut s = g.0.clone();
        drop(g);
        s.peak_rss_kib = peak_rss_kib();
        Some(s)
    }
}

//! Bytes and CPU time per party and phase of a local deployment.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::super::ids::Party;
use super::super::msg::Phase;

/// Bytes and CPU time of one party in one phase.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Encoded bytes sent.
    pub bytes_sent: u64,
    /// Encoded bytes received.
    pub bytes_received: u64,
    /// Messages sent.
    pub messages: u64,
    /// Time spent in this party's state machine (one thread: its CPU time).
    pub cpu: Duration,
}

impl Usage {
    fn add(&mut self, o: &Usage) {
        self.bytes_sent += o.bytes_sent;
        self.bytes_received += o.bytes_received;
        self.messages += o.messages;
        self.cpu += o.cpu;
    }
}

/// Usage per party and phase.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Accounting {
    /// `(party, phase) -> usage`.
    pub usage: BTreeMap<(Party, Phase), Usage>,
}

impl Accounting {
    pub(super) fn entry(&mut self, p: Party, ph: Phase) -> &mut Usage {
        self.usage.entry((p, ph)).or_default()
    }

    /// One party's usage in one phase.
    pub fn get(&self, p: Party, ph: Phase) -> Usage {
        self.usage.get(&(p, ph)).copied().unwrap_or_default()
    }

    /// One party's usage over all phases.
    pub fn party(&self, p: Party) -> Usage {
        let mut u = Usage::default();
        for ((q, _), v) in &self.usage {
            if *q == p {
                u.add(v);
            }
        }
        u
    }

    /// The difference `self - before` (usage of what happened in between).
    pub fn since(&self, before: &Accounting) -> Accounting {
        let mut out = Accounting::default();
        for (k, v) in &self.usage {
            let b = before.usage.get(k).copied().unwrap_or_default();
            let d = Usage {
                bytes_sent: v.bytes_sent - b.bytes_sent,
                bytes_received: v.bytes_received - b.bytes_received,
                messages: v.messages - b.messages,
                cpu: v.cpu.saturating_sub(b.cpu),
            };
            if d != Usage::default() {
                out.usage.insert(*k, d);
            }
        }
        out
    }
}

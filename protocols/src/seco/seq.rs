//! Per-sender sequence numbers: every message carries one; a repeated number is refused as a
//! duplicate. Out-of-order arrival is fine. Memory is bounded: numbers below the low watermark
//! or more than [`MAX_GAP`] above it are refused.
//!
//! The top bits are an *epoch* ([`EPOCH_SHIFT`]): a server that restarts cannot know how far
//! its peers' windows got, so it resumes with the next epoch (persisted in its session record
//! before it sends anything). The first number of a higher epoch resets the sender's window;
//! numbers of an older epoch are refused from then on.

use std::collections::BTreeSet;

/// How far ahead of the contiguous prefix a sequence number may be.
pub const MAX_GAP: u64 = 1 << 20;

/// Sequence numbers are `epoch << EPOCH_SHIFT | counter`.
pub const EPOCH_SHIFT: u32 = 44;

/// The first sequence number of `epoch`.
pub fn seq_start(epoch: u32) -> u64 {
    u64::from(epoch) << EPOCH_SHIFT
}

/// The numbers seen from one sender.
#[derive(Debug, Default, Clone)]
pub struct SeqWindow {
    /// Every number below this was seen.
    low: u64,
    /// Numbers seen at or above `low`.
    above: BTreeSet<u64>,
}

impl SeqWindow {
    /// Records `seq`; false if it was seen before or is out of the window.
    pub fn accept(&mut self, seq: u64) -> bool {
        let (epoch, current) = (seq >> EPOCH_SHIFT, self.low >> EPOCH_SHIFT);
        if epoch > current {
            // The sender restarted: a new window from the start of its new epoch.
            self.low = epoch << EPOCH_SHIFT;
            self.above.clear();
        }
        if seq < self.low || seq > self.low.saturating_add(MAX_GAP) || !self.above.insert(seq) {
            return false;
        }
        while self.above.remove(&self.low) {
            self.low += 1;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_and_reordering() {
        let mut w = SeqWindow::default();
        assert!(w.accept(1));
        assert!(w.accept(0));
        assert!(!w.accept(0));
        assert!(!w.accept(1));
        assert!(w.accept(5));
        assert!(!w.accept(5));
        assert!(!w.accept(MAX_GAP + 10));
        assert!(w.accept(2));
    }

    #[test]
    fn a_new_epoch_resets_the_window() {
        let mut w = SeqWindow::default();
        for i in 0..10 {
            assert!(w.accept(i));
        }
        assert!(w.accept(seq_start(1)));
        assert!(!w.accept(seq_start(1)));
        assert!(w.accept(seq_start(1) + 1));
        // The old epoch is over.
        assert!(!w.accept(10));
        assert!(!w.accept(3));
        // Far ahead within an epoch is still refused.
        assert!(!w.accept(seq_start(1) + MAX_GAP + 5));
    }
}

//! Per-sender sequence numbers: every message carries one; a repeated number is refused as a
//! duplicate. Out-of-order arrival is fine. Memory is bounded: numbers below the low watermark
//! or more than [`MAX_GAP`] above it are refused.

use std::collections::BTreeSet;

/// How far ahead of the contiguous prefix a sequence number may be.
pub const MAX_GAP: u64 = 1 << 20;

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
}

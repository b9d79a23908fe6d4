//! Word-level gadgets over `Z_{2^k}` (two's complement, words least significant bit first).
//!
//! AND counts (k = word width; tests in `tests/circuit_gadgets.rs` record them):
//!
//! | gadget | AND gates |
//! | --- | --- |
//! | `add`, `sub` | k - 1 (ripple carry, one AND per carry, no carry out) |
//! | `xor_words` | 0 |
//! | `neg` | k - 2 |
//! | `lt_signed` | k (carry chain of `a - b` with flipped sign bits) |
//! | `mux` | k |
//! | `relu` | k - 1 (only bits that are not copies of the sign bit cost) |
//! | `ashr` | 0 (wiring) |
//! | `max_signed` | 2k |
//! | `max_many` (w words) | 2k (w - 1) |
//! | `argmax` (w words) | (w - 1)(2k + index bits), less where index bits are constant |
//!
//! Words that are sign extensions (e.g. after `ashr` by f) are compared and multiplexed on
//! their significant low bits only, so `max` of truncated values costs 2(k - f) per step.

use super::builder::{Bit, Builder, Word};

/// Width of the smallest two's-complement word that `w` sign-extends (at least 1).
fn significant_width(w: &[Bit]) -> usize {
    let Some(&top) = w.last() else { return 0 };
    let mut m = w.len();
    while m > 1 && w[m - 2] == top {
        m -= 1;
    }
    m
}

/// Sign-extends `w` (non-empty) to `k` bits.
fn sext(mut w: Word, k: usize) -> Word {
    let top = w.last().copied().unwrap_or(Bit::ZERO);
    w.resize(k, top);
    w
}

impl Builder {
    /// The constant word `value mod 2^k`.
    pub fn constant_word(&self, value: u64, k: usize) -> Word {
        (0..k)
            .map(|i| Bit::constant(i < 64 && (value >> i) & 1 == 1))
            .collect()
    }

    /// Ripple-carry `a + b + cin`; returns the sum and, when `carry_out`, the carry out of the
    /// top bit. Carry recurrence `c' = c ^ ((a ^ c) & (b ^ c))`: one AND per carry.
    pub fn add_carry(&mut self, a: &[Bit], b: &[Bit], cin: Bit, carry_out: bool) -> (Word, Bit) {
        assert_eq!(a.len(), b.len(), "add: word widths differ");
        let k = a.len();
        let mut c = cin;
        let mut sum = Vec::with_capacity(k);
        for i in 0..k {
            let ab = self.xor(a[i], b[i]);
            sum.push(self.xor(ab, c));
            if i + 1 < k || carry_out {
                let ac = self.xor(a[i], c);
                let bc = self.xor(b[i], c);
                let t = self.and(ac, bc);
                c = self.xor(c, t);
            }
        }
        (sum, c)
    }

    /// `a + b mod 2^k` (k - 1 ANDs).
    pub fn add(&mut self, a: &[Bit], b: &[Bit]) -> Word {
        self.add_carry(a, b, Bit::ZERO, false).0
    }

    /// `a - b mod 2^k` = `a + !b + 1` (k - 1 ANDs).
    pub fn sub(&mut self, a: &[Bit], b: &[Bit]) -> Word {
        let nb: Word = b.iter().map(|&x| self.not(x)).collect();
        self.add_carry(a, &nb, Bit::ONE, false).0
    }

    /// `-a mod 2^k` (k - 2 ANDs).
    pub fn neg(&mut self, a: &[Bit]) -> Word {
        let zero = self.constant_word(0, a.len());
        self.sub(&zero, a)
    }

    /// Sum of several words (`(m - 1)(k - 1)` ANDs).
    pub fn sum(&mut self, words: &[Word]) -> Word {
        let mut it = words.iter();
        let Some(first) = it.next() else {
            return Word::new();
        };
        let mut acc = first.clone();
        for w in it {
            acc = self.add(&acc, w);
        }
        acc
    }

    /// Bitwise XOR of several words of one width (free: no AND gates).
    pub fn xor_words(&mut self, words: &[Word]) -> Word {
        let mut it = words.iter();
        let Some(first) = it.next() else {
            return Word::new();
        };
        let mut acc = first.clone();
        for w in it {
            assert_eq!(acc.len(), w.len(), "xor: word widths differ");
            acc = acc.iter().zip(w).map(|(&a, &b)| self.xor(a, b)).collect();
        }
        acc
    }

    /// `signed(a) < signed(b)`: flip both sign bits (free) and take the unsigned borrow of
    /// `a - b`, i.e. the negated carry out of `a + !b + 1` (k ANDs on the significant width).
    pub fn lt_signed(&mut self, a: &[Bit], b: &[Bit]) -> Bit {
        assert_eq!(a.len(), b.len(), "lt: word widths differ");
        let m = significant_width(a).max(significant_width(b));
        if m == 0 {
            return Bit::ZERO;
        }
        let mut x = a[..m].to_vec();
        let mut y: Word = b[..m].iter().map(|&v| self.not(v)).collect();
        x[m - 1] = self.not(x[m - 1]);
        y[m - 1] = self.not(y[m - 1]);
        let (_, carry) = self.add_carry(&x, &y, Bit::ONE, true);
        self.not(carry)
    }

    /// `if s { b } else { a }` bitwise (one AND per significant bit).
    pub fn mux(&mut self, s: Bit, a: &[Bit], b: &[Bit]) -> Word {
        assert_eq!(a.len(), b.len(), "mux: word widths differ");
        let k = a.len();
        let m = significant_width(a).max(significant_width(b));
        let mut out = Vec::with_capacity(k);
        for i in 0..m {
            let d = self.xor(a[i], b[i]);
            let t = self.and(s, d);
            out.push(self.xor(a[i], t));
        }
        sext(out, k)
    }

    /// `max(0, signed(a))`: each bit ANDed with the negated sign bit; bits that are copies of
    /// the sign bit fold to zero (k - 1 ANDs at most).
    pub fn relu(&mut self, a: &[Bit]) -> Word {
        let Some(&sign) = a.last() else {
            return Word::new();
        };
        let keep = self.not(sign);
        a.iter().map(|&x| self.and(x, keep)).collect()
    }

    /// Arithmetic shift right by `f`: `signed(a) >> f` (floor division by 2^f), free wiring.
    pub fn ashr(&self, a: &[Bit], f: usize) -> Word {
        let k = a.len();
        (0..k)
            .map(|i| a[(i + f).min(k.saturating_sub(1))])
            .collect()
    }

    /// Signed maximum of two words (2k ANDs on the significant width).
    pub fn max_signed(&mut self, a: &[Bit], b: &[Bit]) -> Word {
        let s = self.lt_signed(a, b);
        self.mux(s, a, b)
    }

    /// Signed maximum of several words (balanced tree).
    pub fn max_many(&mut self, words: &[Word]) -> Word {
        let mut level: Vec<Word> = words.to_vec();
        while level.len() > 1 {
            let mut next = Vec::with_capacity(level.len().div_ceil(2));
            for pair in level.chunks(2) {
                match pair {
                    [a, b] => next.push(self.max_signed(a, b)),
                    [a] => next.push(a.clone()),
                    _ => {}
                }
            }
            level = next;
        }
        level.pop().unwrap_or_default()
    }

    /// Index (first one on ties) and value of the signed maximum of `words` (non-empty).
    /// The index word has `ceil(log2(len))` bits (at least one).
    pub fn argmax(&mut self, words: &[Word]) -> (Word, Word) {
        let bits = (usize::BITS - words.len().saturating_sub(1).leading_zeros()).max(1) as usize;
        let mut level: Vec<(Word, Word)> = words
            .iter()
            .enumerate()
            .map(|(i, w)| (self.constant_word(i as u64, bits), w.clone()))
            .collect();
        while level.len() > 1 {
            let mut next = Vec::with_capacity(level.len().div_ceil(2));
            for pair in level.chunks(2) {
                match pair {
                    // The left element has the lower indices: take the right one only if
                    // strictly greater, so ties keep the first index.
                    [(ia, a), (ib, b)] => {
                        let s = self.lt_signed(a, b);
                        let v = self.mux(s, a, b);
                        let i = self.mux_unsigned(s, ia, ib);
                        next.push((i, v));
                    }
                    [x] => next.push(x.clone()),
                    _ => {}
                }
            }
            level = next;
        }
        level.pop().unwrap_or_default()
    }

    /// Bitwise multiplexer on all bits (no sign-extension narrowing): for index words.
    fn mux_unsigned(&mut self, s: Bit, a: &[Bit], b: &[Bit]) -> Word {
        a.iter()
            .zip(b)
            .map(|(&x, &y)| {
                let d = self.xor(x, y);
                let t = self.and(s, d);
                self.xor(x, t)
            })
            .collect()
    }
}

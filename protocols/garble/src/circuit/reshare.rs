//! The non-linear-layer circuits of DESIGN.md s.5 (phase 2 step 3): ReLU and max-pool with
//! truncation and re-sharing, as the n servers garble them in preprocessing.
//!
//! Per output element, with `y = sum_i y_i` and `r = sum_i r_i` over all n parties (mod 2^k):
//! - [`ReluReshare`]: `ReLU(trunc(y)) - r`;
//! - [`MaxPoolReshare`]: `ReLU(max_e trunc(y_e)) - r` over a window of `w` elements (or without
//!   the ReLU when `relu` is false);
//!
//! with `trunc(v) = signed(v) >> f` (arithmetic shift, FIXED_POINT.md), all mod 2^k.
//!
//! # Wire layout
//! Inputs are grouped per party, party 0 first: party i's input bits are contiguous, so each
//! party owns one range of input wires (see [`ReluReshare::input_owners`]). Within party i:
//! first its y shares (one k-bit word per element, in element order; for max-pool: window by
//! window, `w` words each), then its r shares (one word per output element). Words are least
//! significant bit first. Outputs: one k-bit word per output element, in order.

use super::builder::{Builder, Word};
use super::ir::Circuit;
use super::{CircuitError, Result};

/// Party index (0-based) as used by the engines.
pub type PartyId = usize;

/// `ReLU(trunc(sum y_i)) - sum r_i` per element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReluReshare {
    /// Number of parties n (each holds one share of every y and of every r).
    pub parties: usize,
    /// Number of elements (ReLUs) in the layer.
    pub elements: usize,
    /// Ring bits k (1..=64).
    pub k: usize,
    /// Fraction bits f to truncate (< k).
    pub f: usize,
}

/// `ReLU(max_e trunc(sum y_{e,i})) - sum r_i` per window (ReLU optional).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPoolReshare {
    pub parties: usize,
    /// Number of windows (output elements).
    pub windows: usize,
    /// Elements per window (w >= 1).
    pub window: usize,
    pub k: usize,
    pub f: usize,
    /// Apply ReLU after the max (conv -> ReLU -> max-pool is ReLU(max(..))).
    pub relu: bool,
}

/// Input words of one party: `y` words then `r` words.
fn party_groups(k: usize, n_y: usize, n_r: usize) -> Vec<u32> {
    vec![k as u32; n_y + n_r]
}

/// Builds the circuit with `n_y` y-words and `n_r` r-words per party and combines them with
/// `body(builder, y_sums, r_sums)`.
fn build(
    parties: usize,
    k: usize,
    n_y: usize,
    n_r: usize,
    body: impl Fn(&mut Builder, &[Word], &[Word]) -> Vec<Word>,
) -> Result<Circuit> {
    let groups: Vec<u32> = (0..parties)
        .flat_map(|_| party_groups(k, n_y, n_r))
        .collect();
    let (mut b, words) = Builder::new(&groups);
    let per = n_y + n_r;
    let sum_over = |b: &mut Builder, idx: usize| -> Word {
        let shares: Vec<Word> = (0..parties).map(|p| words[p * per + idx].clone()).collect();
        b.sum(&shares)
    };
    let ys: Vec<Word> = (0..n_y).map(|e| sum_over(&mut b, e)).collect();
    let rs: Vec<Word> = (0..n_r).map(|e| sum_over(&mut b, n_y + e)).collect();
    let outs = body(&mut b, &ys, &rs);
    b.finish(&outs)
}

/// Input owners per input wire for a layout of `per_party` contiguous bits per party.
fn owners(parties: usize, per_party: usize) -> Vec<PartyId> {
    (0..parties)
        .flat_map(|p| std::iter::repeat_n(p, per_party))
        .collect()
}

/// Party `party`'s input bits: its y words then its r words, each `k` bits LSB first.
fn encode(k: usize, y: &[u64], r: &[u64]) -> Vec<bool> {
    y.iter()
        .chain(r)
        .flat_map(|&v| (0..k).map(move |i| (v >> i) & 1 == 1))
        .collect()
}

/// Checks the parameters shared by both circuits.
fn check_params(parties: usize, k: usize, f: usize) -> Result<()> {
    if parties == 0 || k == 0 || k > 64 || f >= k {
        return Err(CircuitError::BadValue {
            message: format!(
                "need parties >= 1, 1 <= k <= 64, f < k; got parties {parties}, k {k}, f {f}"
            ),
        });
    }
    Ok(())
}

/// Output words (k bits each, LSB first) back to integers mod 2^k.
pub fn decode_words(bits: &[bool], k: usize) -> Vec<u64> {
    bits.chunks(k.max(1))
        .map(|c| {
            c.iter()
                .enumerate()
                .fold(0u64, |acc, (i, &b)| acc | (u64::from(b) << i))
        })
        .collect()
}

impl ReluReshare {
    /// Builds the circuit.
    pub fn circuit(&self) -> Result<Circuit> {
        check_params(self.parties, self.k, self.f)?;
        let (k, f) = (self.k, self.f);
        build(
            self.parties,
            k,
            self.elements,
            self.elements,
            |b, ys, rs| {
                ys.iter()
                    .zip(rs)
                    .map(|(y, r)| {
                        let t = b.ashr(y, f);
                        let v = b.relu(&t);
                        b.sub(&v, r)
                    })
                    .collect()
            },
        )
    }

    /// Owner of each input wire (party i owns its own shares).
    pub fn input_owners(&self) -> Vec<PartyId> {
        owners(self.parties, 2 * self.elements * self.k)
    }

    /// Party's input bits from its y shares and r shares (each `elements` long, mod 2^k).
    pub fn encode_inputs(&self, y: &[u64], r: &[u64]) -> Vec<bool> {
        encode(self.k, y, r)
    }

    /// Plain reference: `ReLU(trunc(sum y)) - sum r` for one element's shares.
    pub fn reference(&self, y: &[u64], r: &[u64]) -> u64 {
        let v = relu(trunc(wrap_sum(y, self.k), self.k, self.f), self.k);
        v.wrapping_sub(wrap_sum(r, self.k)) & mask(self.k)
    }
}

impl MaxPoolReshare {
    /// Builds the circuit.
    pub fn circuit(&self) -> Result<Circuit> {
        check_params(self.parties, self.k, self.f)?;
        let (k, f, w, relu_on) = (self.k, self.f, self.window.max(1), self.relu);
        build(
            self.parties,
            k,
            self.windows * w,
            self.windows,
            |b, ys, rs| {
                ys.chunks(w)
                    .zip(rs)
                    .map(|(win, r)| {
                        let ts: Vec<Word> = win.iter().map(|y| b.ashr(y, f)).collect();
                        let m = b.max_many(&ts);
                        let v = if relu_on { b.relu(&m) } else { m };
                        b.sub(&v, r)
                    })
                    .collect()
            },
        )
    }

    /// Owner of each input wire.
    pub fn input_owners(&self) -> Vec<PartyId> {
        owners(
            self.parties,
            (self.windows * self.window.max(1) + self.windows) * self.k,
        )
    }

    /// Party's input bits: y shares (`windows * window`, window by window) then r shares.
    pub fn encode_inputs(&self, y: &[u64], r: &[u64]) -> Vec<bool> {
        encode(self.k, y, r)
    }

    /// Plain reference for one window: `y[e][i]` is party i's share of element e.
    pub fn reference(&self, y: &[Vec<u64>], r: &[u64]) -> u64 {
        let k = self.k;
        let m = y
            .iter()
            .map(|shares| trunc(wrap_sum(shares, k), k, self.f))
            .max_by_key(|&v| signed(v, k))
            .unwrap_or(0);
        let v = if self.relu { relu(m, k) } else { m };
        v.wrapping_sub(wrap_sum(r, k)) & mask(k)
    }
}

/// `2^k - 1`.
pub fn mask(k: usize) -> u64 {
    if k >= 64 {
        u64::MAX
    } else {
        (1u64 << k) - 1
    }
}

/// Two's-complement value of a k-bit word (`1 <= k <= 64`).
pub fn signed(v: u64, k: usize) -> i64 {
    let s = 64 - k.clamp(1, 64) as u32;
    ((v << s) as i64) >> s
}

fn wrap_sum(v: &[u64], k: usize) -> u64 {
    v.iter().fold(0u64, |a, &x| a.wrapping_add(x)) & mask(k)
}

/// `signed(v) >> f` mod 2^k.
pub fn trunc(v: u64, k: usize, f: usize) -> u64 {
    ((signed(v, k) >> f) as u64) & mask(k)
}

/// `max(0, signed(v))` mod 2^k.
pub fn relu(v: u64, k: usize) -> u64 {
    if signed(v, k) < 0 {
        0
    } else {
        v
    }
}

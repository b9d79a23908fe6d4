//! The garbled circuits of one stage's non-linear part (DESIGN.md s.5, phase 2 step 3), split
//! into **chunks** of output elements (`docs/protocol.md`, "Chunks").
//!
//! A chunk computes the outputs `out = [o0, o1)` of the stage. It reads only the `y` words in
//! the cone of those outputs (`y_idx`: for ReLU the same indices, for MaxPool the union of the
//! windows, pushed back through the whole `post` sequence) and the `r` words of its outputs.
//! Inputs, party-major (party 0 first), each word `k` bits, least significant bit first:
//! party `p` inputs its word of `y[y_idx]`, then — unless `p` is the receiver — its word of
//! `r[out]`. The stage's **owner** `O` inputs its additive share `z` of `y`; every other
//! server inputs its *XOR share* `b_p` of `U = y - z` (a random word whose bits are
//! XOR-shared and whose value is additively shared, `seco/b2a.rs`); likewise every server but
//! the receiver inputs its XOR share `c_p` of its part of the mask `R`. The chunk computes
//!
//! `v = post(trunc(z + XOR_{p != O} b_p))[out]`, output `v - XOR_{p != receiver} c_p[out]`,
//!
//! revealed only to the receiver (the owner of the next stage), who subtracts its own mask
//! share locally: revealing `v - R` to the receiver is the same information as `v - r`
//! (`r = R + its own share`). XOR is free in the garbling, so a stage input costs one adder
//! and a stage output one subtractor whatever the number of servers (they cost `n - 1` each
//! when every server input an additive share).
//! `trunc` is the arithmetic shift by `f` (free wiring); `post` is the stage's ReLU/MaxPool
//! sequence, exactly as `model::Stage::apply_post`. The whole-stage circuit is the chunk
//! `[0, r_len)` ([`StageCircuitSpec::whole`]).
//!
//! The **output circuit** of the last stage ([`StageCircuitSpec::output`], `docs/protocol.md`,
//! "What each party learns") has no `post`; it computes the logits `trunc(y)` and, in label
//! mode, their argmax (first index on ties, `model::argmax`) as one word: `argmax` reads every
//! `y` word and has one output. Its receiver is the gateway (`schedule.rs`); the masked output
//! and the other servers' additive mask shares are the shares of the result the user decrypts.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use crate::circuit::{Builder, Circuit, PartyId, Word};
use crate::model::NonLinearOp;

use super::error::{Result, SecoError};

/// Shape of one chunk of a stage circuit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageCircuitSpec {
    /// Number of servers.
    pub parties: usize,
    /// Ring bits.
    pub k: usize,
    /// Truncation bits.
    pub f: usize,
    /// Length of the stage's linear output `y` (all chunks).
    pub y_len: usize,
    /// Length of the stage output (= next stage's input; all chunks).
    pub r_len: usize,
    /// The owner of the stage's linear layer (inputs the additive share `z`).
    pub owner: PartyId,
    /// The party that learns the output.
    pub receiver: PartyId,
    /// Non-linear operations after truncation.
    pub post: Vec<NonLinearOp>,
    /// The `y` words this chunk reads (ascending indices into `y`).
    pub y_idx: Vec<usize>,
    /// The stage outputs this chunk computes.
    pub out: Range<usize>,
    /// Output circuit in label mode: the single output is the index of the largest value of
    /// `post(trunc(y))` (all of them are read).
    pub argmax: bool,
}

/// The input indices each operation of `post` reads, per output (MaxPool windows), computed
/// once per stage.
type Windows = Vec<Vec<Vec<usize>>>;

/// `post` with every ReLU moved after the max-pools that follow it and repeated ReLUs merged:
/// the same function (`relu` is monotone and idempotent), fewer AND gates.
pub fn relu_late(post: &[NonLinearOp]) -> Vec<NonLinearOp> {
    let mut out: Vec<NonLinearOp> = post.to_vec();
    let mut moved = true;
    while moved {
        moved = false;
        for i in 0..out.len().saturating_sub(1) {
            if matches!(out[i], NonLinearOp::Relu)
                && matches!(out[i + 1], NonLinearOp::MaxPool2d { .. })
            {
                out.swap(i, i + 1);
                moved = true;
            }
        }
    }
    out.dedup_by(|a, b| matches!((a, b), (NonLinearOp::Relu, NonLinearOp::Relu)));
    out
}

/// The words of every party but `skip`, in party order.
fn others(words: &[Word], skip: PartyId) -> Vec<Word> {
    words
        .iter()
        .enumerate()
        .filter(|&(p, _)| p != skip)
        .map(|(_, w)| w.clone())
        .collect()
}

fn windows_of(post: &[NonLinearOp]) -> Windows {
    post.iter().map(NonLinearOp::windows).collect()
}

/// The index sets of every level of the post sequence that `out` depends on: `levels[0]` are
/// `y` indices (after truncation), `levels[post.len()]` is `out`.
fn levels(post: &[NonLinearOp], windows: &Windows, out: &Range<usize>) -> Vec<Vec<usize>> {
    let mut levels = vec![out.clone().collect::<Vec<usize>>()];
    for (op, win) in post.iter().zip(windows).rev() {
        let next = levels.last().map(Vec::as_slice).unwrap_or(&[]);
        let prev: Vec<usize> = match op {
            NonLinearOp::Relu => next.to_vec(),
            NonLinearOp::MaxPool2d { .. } => next
                .iter()
                .flat_map(|&o| win.get(o).into_iter().flatten().copied())
                .collect::<BTreeSet<usize>>()
                .into_iter()
                .collect(),
        };
        levels.push(prev);
    }
    levels.reverse();
    levels
}

impl StageCircuitSpec {
    /// The whole stage as one chunk.
    pub fn whole(
        parties: usize,
        (k, f): (usize, usize),
        (y_len, r_len): (usize, usize),
        (owner, receiver): (PartyId, PartyId),
        post: Vec<NonLinearOp>,
    ) -> Result<Self> {
        if owner >= parties || receiver >= parties {
            return Err(SecoError::Mismatch(format!(
                "stage circuit: owner {owner} or receiver {receiver} not among {parties} servers"
            )));
        }
        let base = Self {
            parties,
            k,
            f,
            y_len,
            r_len,
            owner,
            receiver,
            post,
            y_idx: Vec::new(),
            out: 0..r_len,
            argmax: false,
        };
        base.chunk(0..r_len)
    }

    /// The last stage's output circuit: `trunc(y)` (`argmax` false: `y_len` outputs) or its
    /// argmax (one output), with input `y` from `owner`, revealed masked to `receiver` (the
    /// gateway, `schedule.rs`).
    pub fn output(
        parties: usize,
        (k, f): (usize, usize),
        y_len: usize,
        (owner, receiver): (PartyId, PartyId),
        argmax: bool,
    ) -> Result<Self> {
        if y_len == 0 {
            return Err(SecoError::Length {
                what: "output circuit input",
                expected: 1,
                actual: 0,
            });
        }
        let r_len = if argmax { 1 } else { y_len };
        let mut spec = Self::whole(
            parties,
            (k, f),
            (y_len, r_len),
            (owner, receiver),
            Vec::new(),
        )?;
        if argmax {
            spec.argmax = true;
            spec = spec.chunk(0..1)?;
        }
        Ok(spec)
    }

    /// Length of `post(trunc(y))` (the argmax reads all of it).
    fn post_len(&self) -> usize {
        self.post.iter().fold(self.y_len, |len, op| op.out_len(len))
    }

    /// The outputs of `post` this chunk needs: its own, or all of them for an argmax.
    fn top(&self, out: &Range<usize>) -> Range<usize> {
        if self.argmax {
            0..self.post_len()
        } else {
            out.clone()
        }
    }

    /// The chunk computing outputs `out` of this stage.
    pub fn chunk(&self, out: Range<usize>) -> Result<Self> {
        self.chunk_with(&windows_of(&self.post), out)
    }

    fn chunk_with(&self, windows: &Windows, out: Range<usize>) -> Result<Self> {
        if out.start >= out.end || out.end > self.r_len {
            return Err(SecoError::Length {
                what: "chunk output range",
                expected: self.r_len,
                actual: out.end,
            });
        }
        let lv = levels(&self.post, windows, &self.top(&out));
        let y_idx = lv.first().cloned().unwrap_or_default();
        if y_idx.last().is_some_and(|&i| i >= self.y_len) {
            return Err(SecoError::Length {
                what: "stage circuit input",
                expected: self.y_len,
                actual: y_idx.len(),
            });
        }
        Ok(Self {
            y_idx,
            out,
            ..self.clone()
        })
    }

    /// The chunks of `size` outputs each (the last may be shorter), in output order.
    pub fn chunks(&self, size: usize) -> Result<Vec<Self>> {
        let windows = windows_of(&self.post);
        let size = size.max(1);
        (0..self.r_len.div_ceil(size))
            .map(|c| self.chunk_with(&windows, c * size..((c + 1) * size).min(self.r_len)))
            .collect()
    }

    /// Number of `r` words party `p` inputs.
    pub fn r_words(&self, p: PartyId) -> usize {
        if p == self.receiver {
            0
        } else {
            self.out.len()
        }
    }

    /// Owner of every input wire, in wire order.
    pub fn input_owners(&self) -> Vec<PartyId> {
        (0..self.parties)
            .flat_map(|p| std::iter::repeat_n(p, (self.y_idx.len() + self.r_words(p)) * self.k))
            .collect()
    }

    /// Which input wires are known in preprocessing: every wire but the owner's `y` words (its
    /// `z = W (x - r) + b + s + u`, computed online); the others' XOR shares of `U` and of the
    /// masks are sampled in preprocessing (`bmr::BmrConfig::offline`).
    pub fn known_offline(&self) -> Vec<bool> {
        let owner = self.owner;
        (0..self.parties)
            .flat_map(|p| {
                let y = std::iter::repeat_n(p != owner, self.y_idx.len() * self.k);
                y.chain(std::iter::repeat_n(true, self.r_words(p) * self.k))
            })
            .collect()
    }

    /// Party `p`'s input bits of this chunk from its words of the whole stage: `y` (`y_len`
    /// words: the owner's `z`, the others' XOR shares of `U`) and `r` (`r_len` words, XOR
    /// shares of the mask; ignored for the receiver).
    pub fn encode_inputs(&self, p: PartyId, y: &[u64], r: &[u64]) -> Result<Vec<bool>> {
        if y.len() != self.y_len || (p != self.receiver && r.len() != self.r_len) {
            return Err(SecoError::Length {
                what: "stage circuit shares",
                expected: self.y_len,
                actual: y.len(),
            });
        }
        let ys = self.y_idx.iter().map(|&i| y[i]);
        let rs = r.get(self.out.clone()).unwrap_or(&[]);
        let words = ys.chain(rs.iter().take(self.r_words(p)).copied());
        Ok(words
            .flat_map(|w| (0..self.k).map(move |i| (w >> i) & 1 == 1))
            .collect())
    }

    /// Decodes the receiver's output bits into ring elements (`out.len()` of them).
    pub fn decode_outputs(&self, bits: &[bool]) -> Vec<u64> {
        bits.chunks(self.k)
            .map(|c| {
                c.iter()
                    .enumerate()
                    .fold(0u64, |acc, (i, &b)| acc | (u64::from(b) << i))
            })
            .collect()
    }

    /// Builds the chunk's circuit.
    pub fn build(&self) -> Result<Circuit> {
        let k = self.k as u32;
        let ny = self.y_idx.len();
        let groups: Vec<u32> = (0..self.parties)
            .flat_map(|p| std::iter::repeat_n(k, ny + self.r_words(p)))
            .collect();
        let (mut b, words) = Builder::new(&groups);
        let mut at = 0;
        let mut ys: Vec<Vec<Word>> = vec![Vec::with_capacity(self.parties); ny];
        let mut rs: Vec<Vec<Word>> = vec![Vec::new(); self.out.len()];
        for p in 0..self.parties {
            for y in ys.iter_mut() {
                y.push(words[at].clone());
                at += 1;
            }
            for r in rs.iter_mut().take(self.r_words(p)) {
                r.push(words[at].clone());
                at += 1;
            }
        }
        // ReLU after max-pool instead of before: the same values (ReLU is monotone, so
        // `relu(max(..)) = max(relu(..))`; `relu(relu(v)) = relu(v)`), on one value per window
        // instead of every window element.
        let post = relu_late(&self.post);
        let windows = windows_of(&post);
        let top = self.top(&self.out);
        let lv = levels(&post, &windows, &top);
        // Values of the current level by index.
        let mut v: BTreeMap<usize, Word> = self
            .y_idx
            .iter()
            .zip(&ys)
            .map(|(&i, words)| {
                let (z, bits) = (&words[self.owner], b.xor_words(&others(words, self.owner)));
                let sum = b.add(z, &bits);
                (i, b.ashr(&sum, self.f))
            })
            .collect();
        let missing = || SecoError::Mismatch("stage circuit: a value outside the cone".into());
        for (j, op) in post.iter().enumerate() {
            let mut next = BTreeMap::new();
            for &o in lv.get(j + 1).map(Vec::as_slice).unwrap_or(&[]) {
                let w = match op {
                    NonLinearOp::Relu => b.relu(v.get(&o).ok_or_else(missing)?),
                    NonLinearOp::MaxPool2d { .. } => {
                        let win = windows[j].get(o).ok_or_else(missing)?;
                        let ws = win
                            .iter()
                            .map(|i| v.get(i).cloned().ok_or_else(missing))
                            .collect::<Result<Vec<Word>>>()?;
                        b.max_many(&ws)
                    }
                };
                next.insert(o, w);
            }
            v = next;
        }
        if self.argmax {
            let words = top
                .map(|o| v.get(&o).cloned().ok_or_else(missing))
                .collect::<Result<Vec<Word>>>()?;
            let (mut index, _) = b.argmax(&words);
            index.resize(self.k, crate::circuit::Bit::ZERO);
            v = BTreeMap::from([(0, index)]);
        }
        let outs = self
            .out
            .clone()
            .zip(&rs)
            .map(|(o, r)| {
                let x = v.get(&o).ok_or_else(missing)?;
                Ok(if r.is_empty() {
                    x.clone()
                } else {
                    let mask = b.xor_words(r);
                    b.sub(x, &mask)
                })
            })
            .collect::<Result<Vec<Word>>>()?;
        Ok(b.finish(&outs)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixed::FixedPoint;
    use rand::{Rng, SeedableRng};

    fn pool(in_shape: [usize; 3], kernel: usize, stride: usize) -> NonLinearOp {
        NonLinearOp::MaxPool2d {
            in_shape,
            kernel: [kernel, kernel],
            stride: [stride, stride],
        }
    }

    /// Every chunking of a stage, evaluated chunk by chunk in the clear and reassembled,
    /// equals `apply_post` (minus the masks), for ReLU, MaxPool with stride = kernel and
    /// stride < kernel, and sequences of them.
    #[test]
    fn every_chunking_matches_apply_post() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let fp = FixedPoint::new(16, 3).unwrap();
        let shape = [2, 6, 6];
        let y_len = 72;
        for post in [
            vec![],
            vec![NonLinearOp::Relu],
            vec![NonLinearOp::Relu, pool(shape, 2, 2)],
            vec![pool(shape, 2, 2), NonLinearOp::Relu],
            vec![pool(shape, 3, 2)],
            vec![NonLinearOp::Relu, pool(shape, 3, 1), NonLinearOp::Relu],
            vec![pool(shape, 2, 1), pool([2, 5, 5], 2, 2)],
        ] {
            let r_len = post.iter().fold(y_len, |len, op| op.out_len(len));
            // Owner 2 inputs `z`, servers 0 and 1 XOR shares of `U`; the receiver 1 keeps
            // its mask share, 0 and 2 input XOR shares of the rest.
            let whole =
                StageCircuitSpec::whole(3, (16, 3), (y_len, r_len), (2, 1), post.clone()).unwrap();
            let ys: Vec<Vec<u64>> = (0..3)
                .map(|_| (0..y_len).map(|_| rng.random::<u64>() & 0xffff).collect())
                .collect();
            let rs: Vec<Vec<u64>> = (0..3)
                .map(|_| (0..r_len).map(|_| rng.random::<u64>() & 0xffff).collect())
                .collect();
            let y: Vec<u64> = (0..y_len)
                .map(|i| fp.reduce(ys[2][i] + (ys[0][i] ^ ys[1][i])))
                .collect();
            let stage = crate::model::Stage {
                name: "s".into(),
                layer_index: 0,
                linear: crate::model::LinearOp::AvgPool2d(crate::model::AvgPool2dQ {
                    in_shape: shape,
                    kernel: [1, 1],
                    stride: [1, 1],
                    coeff: 1,
                }),
                post: post.clone(),
                in_shape: shape.to_vec(),
                out_shape: vec![],
            };
            let v = stage.apply_post(fp, &y);
            assert_eq!(v.len(), r_len);
            for size in [1, 2, 3, 5, r_len] {
                let chunks = whole.chunks(size).unwrap();
                assert_eq!(chunks.len(), r_len.div_ceil(size));
                let mut out = Vec::new();
                for spec in &chunks {
                    assert!(
                        spec.y_idx.len() <= y_len && spec.y_idx.windows(2).all(|w| w[0] < w[1])
                    );
                    let c = spec.build().unwrap();
                    let inputs: Vec<bool> = (0..3)
                        .flat_map(|p| spec.encode_inputs(p, &ys[p], &rs[p]).unwrap())
                        .collect();
                    out.extend(spec.decode_outputs(&c.eval_plain(&inputs).unwrap()));
                }
                assert_eq!(out.len(), r_len);
                for i in 0..r_len {
                    // The receiver subtracts its own share locally.
                    let got = fp.sub(out[i], rs[1][i]);
                    let want = fp.sub(fp.sub(v[i], rs[0][i] ^ rs[2][i]), rs[1][i]);
                    assert_eq!(got, want, "{post:?}, chunks of {size}, output {i}");
                }
            }
        }
    }

    #[test]
    fn a_relu_chunk_reads_its_own_words_and_a_pool_chunk_its_windows() {
        let post = vec![NonLinearOp::Relu, pool([1, 4, 4], 2, 2)];
        let whole = StageCircuitSpec::whole(2, (16, 3), (16, 4), (1, 0), post).unwrap();
        let c = whole.chunk(1..2).unwrap();
        assert_eq!(c.y_idx, vec![2, 3, 6, 7]);
        let relu =
            StageCircuitSpec::whole(2, (16, 3), (16, 16), (1, 0), vec![NonLinearOp::Relu]).unwrap();
        assert_eq!(relu.chunk(5..8).unwrap().y_idx, vec![5, 6, 7]);
        assert!(whole.chunk(3..5).is_err());
        assert!(whole.chunk(2..2).is_err());
    }
}

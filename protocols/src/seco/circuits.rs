//! The garbled circuit of one stage's non-linear part (DESIGN.md s.5, phase 2 step 3).
//!
//! Inputs, party-major (party 0 first), each word `k` bits, least significant bit first:
//! party `p` inputs its additive shares of the stage's linear output `y` (`y_len` words, CHW
//! order), then — unless `p` is the receiver — its shares of the next stage's input mask `r`
//! (`r_len` words). The circuit computes
//!
//! `v = post(trunc(sum_p y_p))`, output `v - sum_{p != receiver} r_p` (`r_len` words),
//!
//! revealed only to the receiver (the owner of the next stage), who subtracts its own mask
//! share locally: revealing `v - sum_{p != receiver} r_p` to the receiver is the same
//! information as `v - r`, and skipping its share saves one `k`-bit subtractor per element.
//! `trunc` is the arithmetic shift by `f` (free wiring); `post` is the stage's ReLU/MaxPool
//! sequence, exactly as `model::Stage::apply_post`.

use crate::circuit::{Builder, Circuit, PartyId, Word};
use crate::model::NonLinearOp;

use super::error::Result;

/// Shape of a stage circuit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageCircuitSpec {
    /// Number of servers.
    pub parties: usize,
    /// Ring bits.
    pub k: usize,
    /// Truncation bits.
    pub f: usize,
    /// Length of the linear output `y`.
    pub y_len: usize,
    /// Length of the stage output (= next stage's input).
    pub r_len: usize,
    /// The party that learns the output.
    pub receiver: PartyId,
    /// Non-linear operations after truncation.
    pub post: Vec<NonLinearOp>,
}

impl StageCircuitSpec {
    /// Number of `r` words party `p` inputs.
    pub fn r_words(&self, p: PartyId) -> usize {
        if p == self.receiver {
            0
        } else {
            self.r_len
        }
    }

    /// Owner of every input wire, in wire order.
    pub fn input_owners(&self) -> Vec<PartyId> {
        (0..self.parties)
            .flat_map(|p| std::iter::repeat_n(p, (self.y_len + self.r_words(p)) * self.k))
            .collect()
    }

    /// Which input wires are known in preprocessing when `owner` owns the stage's linear
    /// layer: every wire but the owner's `y` words (its `z = W (x - r) + b + s + u`, computed
    /// online); the others' `y` are their E2S shares `u`, every `r` is sampled in
    /// preprocessing (`bmr::BmrConfig::offline`).
    pub fn known_offline(&self, owner: PartyId) -> Vec<bool> {
        (0..self.parties)
            .flat_map(|p| {
                let y = std::iter::repeat_n(p != owner, self.y_len * self.k);
                y.chain(std::iter::repeat_n(true, self.r_words(p) * self.k))
            })
            .collect()
    }

    /// Party `p`'s input bits from its `y` shares and `r` shares (`r` ignored for the
    /// receiver).
    pub fn encode_inputs(&self, p: PartyId, y: &[u64], r: &[u64]) -> Vec<bool> {
        let words = y.iter().chain(r.iter().take(self.r_words(p)));
        words
            .flat_map(|&w| (0..self.k).map(move |i| (w >> i) & 1 == 1))
            .collect()
    }

    /// Decodes the receiver's output bits into ring elements.
    pub fn decode_outputs(&self, bits: &[bool]) -> Vec<u64> {
        bits.chunks(self.k)
            .map(|c| {
                c.iter()
                    .enumerate()
                    .fold(0u64, |acc, (i, &b)| acc | (u64::from(b) << i))
            })
            .collect()
    }

    /// Builds the circuit.
    pub fn build(&self) -> Result<Circuit> {
        let k = self.k as u32;
        let groups: Vec<u32> = (0..self.parties)
            .flat_map(|p| std::iter::repeat_n(k, self.y_len + self.r_words(p)))
            .collect();
        let (mut b, words) = Builder::new(&groups);
        let mut at = 0;
        let mut ys: Vec<Vec<Word>> = vec![Vec::with_capacity(self.parties); self.y_len];
        let mut rs: Vec<Vec<Word>> = vec![Vec::new(); self.r_len];
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
        let mut v: Vec<Word> = ys
            .iter()
            .map(|shares| {
                let sum = b.sum(shares);
                b.ashr(&sum, self.f)
            })
            .collect();
        for op in &self.post {
            v = match op {
                NonLinearOp::Relu => v.iter().map(|w| b.relu(w)).collect(),
                NonLinearOp::MaxPool2d { .. } => op
                    .windows()
                    .iter()
                    .map(|win| {
                        let ws: Vec<Word> = win.iter().map(|&i| v[i].clone()).collect();
                        b.max_many(&ws)
                    })
                    .collect(),
            };
        }
        let outs: Vec<Word> = v
            .iter()
            .zip(&rs)
            .map(|(x, r)| {
                if r.is_empty() {
                    x.clone()
                } else {
                    let rsum = b.sum(r);
                    b.sub(x, &rsum)
                }
            })
            .collect();
        Ok(b.finish(&outs)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixed::FixedPoint;
    use rand::{Rng, SeedableRng};

    #[test]
    fn stage_circuit_matches_apply_post() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let fp = FixedPoint::new(16, 3).unwrap();
        let pool = NonLinearOp::MaxPool2d {
            in_shape: [1, 4, 4],
            kernel: [2, 2],
            stride: [2, 2],
        };
        for post in [
            vec![],
            vec![NonLinearOp::Relu],
            vec![NonLinearOp::Relu, pool.clone()],
            vec![pool.clone(), NonLinearOp::Relu],
        ] {
            let r_len = if post
                .iter()
                .any(|p| matches!(p, NonLinearOp::MaxPool2d { .. }))
            {
                4
            } else {
                16
            };
            let spec = StageCircuitSpec {
                parties: 3,
                k: 16,
                f: 3,
                y_len: 16,
                r_len,
                receiver: 1,
                post: post.clone(),
            };
            let c = spec.build().unwrap();
            let ys: Vec<Vec<u64>> = (0..3)
                .map(|_| (0..16).map(|_| rng.random::<u64>() & 0xffff).collect())
                .collect();
            let rs: Vec<Vec<u64>> = (0..3)
                .map(|_| (0..r_len).map(|_| rng.random::<u64>() & 0xffff).collect())
                .collect();
            let inputs: Vec<bool> = (0..3)
                .flat_map(|p| spec.encode_inputs(p, &ys[p], &rs[p]))
                .collect();
            let out = spec.decode_outputs(&c.eval_plain(&inputs).unwrap());
            let y: Vec<u64> = (0..16)
                .map(|i| fp.reduce(ys[0][i] + ys[1][i] + ys[2][i]))
                .collect();
            let stage = crate::model::Stage {
                name: "s".into(),
                layer_index: 0,
                linear: crate::model::LinearOp::AvgPool2d(crate::model::AvgPool2dQ {
                    in_shape: [1, 4, 4],
                    kernel: [1, 1],
                    stride: [1, 1],
                    coeff: 1,
                }),
                post,
                in_shape: vec![1, 4, 4],
                out_shape: vec![],
            };
            let v = stage.apply_post(fp, &y);
            for i in 0..r_len {
                // The receiver subtracts its own share locally.
                let got = fp.sub(out[i], rs[1][i]);
                let want = fp.sub(fp.sub(fp.sub(v[i], rs[0][i]), rs[1][i]), rs[2][i]);
                assert_eq!(got, want);
            }
        }
    }
}

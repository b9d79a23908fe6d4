//! Random words that are both XOR-shared and additively shared among `m` parties (bit to
//! arithmetic conversion, "daBits" per bit: Rotaru-Wood, Indocrypt 2019; the two-party
//! product is Gilboa's OT multiplication, Crypto 1999), sans-IO, from IKNP correlated OT.
//!
//! Each member `p_t` (`t = 0 .. m-1`, in member order) samples `words` random `k`-bit words
//! `b_t`. For every bit position the members compute additive shares (mod `2^64`) of
//! `A = b_0 ^ b_1 ^ .. ^ b_{m-1}`, one member at a time:
//! ```text
//! A^0 = b_0                       (p_0's share b_0, the others' 0)
//! A^t = A^{t-1} + b_t - 2 A^{t-1} b_t,   A^{t-1} b_t = sum_{q < t} [A^{t-1}]_q b_t
//! ```
//! Each product `[A]_q b_t` is one correlated OT from `q` (sender, value `a = [A]_q`) to
//! `p_t` (receiver, choice `b_t`): from random OT `(m0, m1)` / `m_b` (IKNP rows hashed, low
//! 64 bits), `q` sends `tau = m0 - m1 + a` and keeps `-m0`; `p_t` computes
//! `m_b + b tau = m0 + a b`. Then `[A^t]_q = [A]_q + 2 m0` for `q < t` and
//! `[A^t]_{p_t} = b_t - 2 sum_q (m0 + [A]_q b_t)`. Finally each member's additive share of
//! the word is `sum_j 2^j [A_j] mod 2^k`: the word's value `U = XOR_t b_t` read as an integer.
//!
//! Messages: at the start `p_t` sends one [`B2aExtend`] (the IKNP columns of its choice bits,
//! 16 bytes per bit) to every earlier member; `q` answers with one [`B2aReply`] (`tau`, `k`
//! bits per bit) once its own share of `A^{t-1}` is final, i.e. after its own round and its
//! answers to the members between. So `m - 1` replies lie on the longest chain; `m (m-1) / 2`
//! OTs per bit in all. One member (`m = 1`) needs no message: its share is its word.
//!
//! Security (semi-honest, any `m - 1` members corrupt): `tau` is masked by the random-OT
//! output `m1` that the receiver does not learn (IKNP with a correlation-robust hash, so the
//! receiver's view of each OT is simulated from `m_b` alone), and the sender sees only the IKNP
//! columns, which hide the choices. The honest member's word `b_h` is uniform and never
//! leaves it except as OT choices, so `U` is uniform given the others' views, and so is the
//! honest member's additive share given the others' shares (it is `U` minus them).

use serde::{Deserialize, Serialize};

use super::iknp::{rot_receiver, rot_sender, ExtendMsg, IknpReceiver, IknpSender};
use super::{OtError, Result};

/// Most OTs of one instance (`words * k`), bounding allocation on decode.
pub const MAX_B2A_OTS: usize = 1 << 22;

/// A later member's IKNP columns for its choice bits (its words, least significant bit first).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct B2aExtend {
    /// The pair tag of the OT setup the receiver drew from (mismatch means a replaced pair).
    pub tag: [u8; 16],
    /// The IKNP extension message.
    pub ext: ExtendMsg,
}

/// An earlier member's correction words `tau`, `ceil(k / 8)` bytes each, little endian.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct B2aReply {
    #[serde(with = "serde_bytes")]
    pub tau: Vec<u8>,
}

/// One member's state (its bits, shares and OT outputs are zeroized on drop; prints as
/// `B2a([redacted])`).
pub struct B2a {
    k: usize,
    words: usize,
    /// This member's position among the members.
    pos: usize,
    /// Number of members.
    m: usize,
    /// Choice bits (this member's words, bit `j` of word `w` at `w * k + j`).
    bits: Vec<bool>,
    /// This member's additive share of every bit's `A` (final for sending once `received`).
    share: Vec<u64>,
    /// Receiver side: per earlier member, `m_b` of every OT until its reply is in.
    from_earlier: Vec<Option<Vec<u64>>>,
    /// Sum of the received products' shares `m0 + [A]_q b`.
    zsum: Vec<u64>,
    /// Earlier members whose reply is in.
    received: usize,
    /// Sender side: per later member, its IKNP instance until its extension is processed.
    senders: Vec<Option<IknpSender>>,
    /// Per later member, the random-OT pairs' low words `(m0, m1)` until answered.
    pending: Vec<Option<Vec<[u64; 2]>>>,
    /// The next later member to answer (answers go in member order).
    next: usize,
    /// The pair tags expected in later members' extensions.
    tags: Vec<[u8; 16]>,
}

/// What one member needs from the OT setup: for every other member (by position), the
/// IKNP receiver "I receive from it" (used with earlier members), the IKNP sender "it receives
/// from me" (used with later members) and the pair's tag.
pub struct B2aLinks {
    pub receivers: Vec<Option<IknpReceiver>>,
    pub senders: Vec<Option<IknpSender>>,
    pub tags: Vec<[u8; 16]>,
}

fn low(b: crate::block::Block) -> u64 {
    b.0 as u64
}

seco_core::redacted_debug!(B2a);

impl Drop for B2a {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.bits);
        zeroize::Zeroize::zeroize(&mut self.share);
        zeroize::Zeroize::zeroize(&mut self.zsum);
        zeroize::Zeroize::zeroize(&mut self.from_earlier);
        zeroize::Zeroize::zeroize(&mut self.pending);
    }
}

impl B2a {
    /// Starts member `pos` of `m` with its `words` (each `k` bits, `1 <= k <= 64`). Returns
    /// the state and the extensions for the earlier members, by position.
    pub fn new(
        k: usize,
        pos: usize,
        m: usize,
        words: &[u64],
        mut links: B2aLinks,
    ) -> Result<(Self, Vec<(usize, B2aExtend)>)> {
        let n_ots = words.len() * k;
        let bad_links = links.receivers.len() != m || links.senders.len() != m;
        if !(1..=64).contains(&k) || pos >= m || n_ots > MAX_B2A_OTS || bad_links {
            return Err(OtError::Length {
                what: "B2A instance",
                expected: m,
                actual: pos,
            });
        }
        let bits: Vec<bool> = words
            .iter()
            .flat_map(|&w| (0..k).map(move |j| (w >> j) & 1 == 1))
            .collect();
        let mut out = Vec::with_capacity(pos);
        let mut from_earlier = Vec::with_capacity(pos);
        for (q, recv) in links.receivers.iter_mut().enumerate().take(pos) {
            let recv = recv.as_mut().ok_or(OtError::Length {
                what: "B2A receiver instance",
                expected: q,
                actual: pos,
            })?;
            let (ext, t, first) = recv.extend(&bits);
            from_earlier.push(Some(rot_receiver(&t, first).into_iter().map(low).collect()));
            let tag = links.tags.get(q).copied().unwrap_or_default();
            out.push((q, B2aExtend { tag, ext }));
        }
        let share = if pos == 0 {
            bits.iter().map(|&b| u64::from(b)).collect()
        } else {
            vec![0; n_ots]
        };
        let mut senders: Vec<Option<IknpSender>> = links.senders.drain(..).collect();
        for s in senders.iter_mut().take(pos + 1) {
            *s = None;
        }
        let state = Self {
            k,
            words: words.len(),
            pos,
            m,
            bits,
            share,
            from_earlier,
            zsum: vec![0; if pos == 0 { 0 } else { n_ots }],
            received: 0,
            senders,
            pending: (0..m).map(|_| None).collect(),
            next: pos + 1,
            tags: links.tags,
        };
        Ok((state, out))
    }

    fn tau_bytes(&self) -> usize {
        self.k.div_ceil(8)
    }

    fn n_ots(&self) -> usize {
        self.words * self.k
    }

    /// The extension of the later member at position `from`. Returns the replies that are
    /// due now (by position).
    pub fn on_extend(&mut self, from: usize, msg: &B2aExtend) -> Result<Vec<(usize, B2aReply)>> {
        let n = self.n_ots();
        if from <= self.pos || from >= self.m || self.pending[from].is_some() {
            return Err(OtError::Length {
                what: "B2A extension sender",
                expected: self.pos + 1,
                actual: from,
            });
        }
        if self.tags.get(from) != Some(&msg.tag) {
            return Err(OtError::Mismatch("B2A extension from another OT setup"));
        }
        let sender = self.senders[from].as_mut().ok_or(OtError::Length {
            what: "B2A extension (answered already)",
            expected: self.next,
            actual: from,
        })?;
        let (q, first) = sender.extend(&msg.ext, n)?;
        let pairs = rot_sender(&q, sender.delta(), first)
            .into_iter()
            .map(|[a, b]| [low(a), low(b)])
            .collect();
        self.senders[from] = None;
        self.pending[from] = Some(pairs);
        Ok(self.flush())
    }

    /// The reply of the earlier member at position `from`. Returns the replies that are due
    /// now (by position).
    pub fn on_reply(&mut self, from: usize, msg: &B2aReply) -> Result<Vec<(usize, B2aReply)>> {
        let n = self.n_ots();
        let tb = self.tau_bytes();
        if msg.tau.len() != n * tb {
            return Err(OtError::Length {
                what: "B2A reply bytes",
                expected: n * tb,
                actual: msg.tau.len(),
            });
        }
        let Some(mb) = self.from_earlier.get_mut(from).and_then(Option::take) else {
            return Err(OtError::Length {
                what: "B2A reply sender",
                expected: self.pos,
                actual: from,
            });
        };
        for (i, (c, h)) in msg.tau.chunks_exact(tb).zip(mb).enumerate() {
            let mut b = [0u8; 8];
            b[..tb].copy_from_slice(c);
            let tau = u64::from_le_bytes(b);
            let z = h.wrapping_add(if self.bits[i] { tau } else { 0 });
            self.zsum[i] = self.zsum[i].wrapping_add(z);
        }
        self.received += 1;
        if self.received == self.pos {
            for (i, s) in self.share.iter_mut().enumerate() {
                *s = u64::from(self.bits[i]).wrapping_sub(self.zsum[i].wrapping_mul(2));
            }
            self.zsum = Vec::new();
        }
        Ok(self.flush())
    }

    /// Answers later members in order while this member's share for their round is final.
    fn flush(&mut self) -> Vec<(usize, B2aReply)> {
        let mut out = Vec::new();
        if self.received < self.pos {
            return out;
        }
        let tb = self.tau_bytes();
        let kmask = if self.k == 64 {
            u64::MAX
        } else {
            (1u64 << self.k) - 1
        };
        while self.next < self.m {
            let Some(pairs) = self.pending[self.next].take() else {
                break;
            };
            let mut tau = Vec::with_capacity(pairs.len() * tb);
            for (s, [m0, m1]) in self.share.iter_mut().zip(pairs) {
                let t = m0.wrapping_sub(m1).wrapping_add(*s) & kmask;
                tau.extend_from_slice(&t.to_le_bytes()[..tb]);
                *s = s.wrapping_add(m0.wrapping_mul(2));
            }
            out.push((self.next, B2aReply { tau }));
            self.next += 1;
        }
        out
    }

    /// Whether this member's share is final (every reply in, every later member answered).
    pub fn is_done(&self) -> bool {
        self.received == self.pos && self.next == self.m
    }

    /// This member's additive shares (mod `2^k`) of the words `U = XOR_t b_t`, once done.
    pub fn shares(&self) -> Option<Vec<u64>> {
        if !self.is_done() {
            return None;
        }
        let kmask = if self.k == 64 {
            u64::MAX
        } else {
            (1u64 << self.k) - 1
        };
        Some(
            self.share
                .chunks_exact(self.k)
                .map(|c| {
                    c.iter()
                        .enumerate()
                        .fold(0u64, |acc, (j, &a)| acc.wrapping_add(a << j))
                        & kmask
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::Block;
    use crate::ot::{IknpReceiverBase, IknpSenderBase};
    use rand::{Rng, SeedableRng};

    /// IKNP instances for every ordered pair: `links[me]` of every member.
    fn links(m: usize, rng: &mut rand_chacha::ChaCha20Rng) -> Vec<B2aLinks> {
        let mut out: Vec<B2aLinks> = (0..m)
            .map(|_| B2aLinks {
                receivers: (0..m).map(|_| None).collect(),
                senders: (0..m).map(|_| None).collect(),
                tags: vec![[7; 16]; m],
            })
            .collect();
        // Instance "r receives from s": r holds seed pairs, s holds delta and chosen seeds.
        for r in 0..m {
            for s in 0..m {
                if r == s {
                    continue;
                }
                let pairs: Vec<[Block; 2]> = (0..128)
                    .map(|_| [Block::random(rng), Block::random(rng)])
                    .collect();
                let delta = Block::random(rng);
                let chosen = (0..128)
                    .map(|j| pairs[j][((delta.0 >> j) & 1) as usize])
                    .collect();
                let nonce = [r as u8; 16];
                out[r].receivers[s] = Some(IknpReceiverBase::new(pairs).unwrap().extension(&nonce));
                out[s].senders[r] = Some(
                    IknpSenderBase::new(delta, chosen)
                        .unwrap()
                        .extension(&nonce),
                );
            }
        }
        out
    }

    /// Runs the members, delivering messages in a shuffled order; returns every member's
    /// shares.
    fn run(m: usize, k: usize, words: &[Vec<u64>], seed: u64) -> Vec<Vec<u64>> {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
        let mut states = Vec::new();
        // (to, from, extension or reply)
        let mut queue: Vec<(usize, usize, std::result::Result<B2aExtend, B2aReply>)> = Vec::new();
        for (p, l) in links(m, &mut rng).into_iter().enumerate() {
            let (st, out) = B2a::new(k, p, m, &words[p], l).unwrap();
            states.push(st);
            queue.extend(out.into_iter().map(|(to, e)| (to, p, Ok(e))));
        }
        while !queue.is_empty() {
            let i = rng.random_range(0..queue.len());
            let (to, from, msg) = queue.swap_remove(i);
            let replies = match msg {
                Ok(e) => states[to].on_extend(from, &e).unwrap(),
                Err(r) => states[to].on_reply(from, &r).unwrap(),
            };
            queue.extend(replies.into_iter().map(|(t, r)| (t, to, Err(r))));
        }
        states.iter().map(|s| s.shares().unwrap()).collect()
    }

    #[test]
    fn shares_sum_to_the_xor_of_the_words() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
        for m in 1..=5 {
            for k in [1, 7, 32, 64] {
                let mask = if k == 64 { u64::MAX } else { (1 << k) - 1 };
                let words: Vec<Vec<u64>> = (0..m)
                    .map(|_| (0..9).map(|_| rng.random::<u64>() & mask).collect())
                    .collect();
                let shares = run(m, k, &words, m as u64 * 100 + k as u64);
                for w in 0..9 {
                    let xor = words.iter().fold(0, |a, v| a ^ v[w]);
                    let sum = shares.iter().fold(0u64, |a, s| a.wrapping_add(s[w])) & mask;
                    assert_eq!(sum, xor, "m {m}, k {k}, word {w}");
                }
            }
        }
    }

    #[test]
    fn bad_messages_are_refused() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(4);
        let mut l = links(2, &mut rng).into_iter();
        let (l0, l1) = (l.next().unwrap(), l.next().unwrap());
        let (mut a, _) = B2a::new(8, 0, 2, &[1, 2], l0).unwrap();
        let (mut b, ext) = B2a::new(8, 1, 2, &[3, 4], l1).unwrap();
        let mut wrong = ext[0].1.clone();
        wrong.tag = [0; 16];
        assert!(a.on_extend(1, &wrong).is_err());
        assert!(a.on_extend(0, &ext[0].1).is_err());
        assert!(b.on_reply(0, &B2aReply { tau: vec![0; 3] }).is_err());
        let reply = a.on_extend(1, &ext[0].1).unwrap();
        assert!(a.on_extend(1, &ext[0].1).is_err(), "a second extension");
        b.on_reply(0, &reply[0].1).unwrap();
        assert!(b.on_reply(0, &reply[0].1).is_err(), "a second reply");
        assert!(a.is_done() && b.is_done());
    }
}

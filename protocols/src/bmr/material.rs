//! One garbler's secret garbling material and the local computations of the offline phase.
//!
//! Notation (BLO16 = Ben-Efraim, Lindell, Omri, CCS 2016, s.3-4): garbler i has offset `R^i`
//! (lsb 1) and, per wire w, the key `k^i_{w,0}` (lsb 0; `k^i_{w,1} = k^i_{w,0} ^ R^i`) and a share
//! `lambda^i_w` of the wire mask `lambda_w = xor_i lambda^i_w`. A wire's *external value* is
//! `Lambda_w = v_w ^ lambda_w`; the evaluator holds `k^j_{w,Lambda_w}` for every j and reads
//! `Lambda_w` off the keys' lsb.
//!
//! Products with offsets come from correlated OT whose global correlation is the sender's
//! offset: in the IKNP instance "i receives from j", choice `lambda^i_w` gives `t = q ^
//! lambda^i_w R^j`, so `(t, q)` are XOR shares of `lambda^i_w R^j`. These shares are linear, so
//! they propagate through XOR gates like the masks; INV flips party 0's mask share, and every
//! sender to party 0 adds its R to keep the correlation. Party i's share of `lambda_w R^j`:
//! ```text
//! j == i:  lambda^i_w R^i ^ xor_{p != i} q[p][w]        (q: i is the OT sender to p)
//! j != i:  t[j][w]                                      (t: i is the OT receiver from j)
//! ```
//! Fresh wires (inputs, AND outputs) get their values from the OT rows directly. Input wires
//! are masked by their owner alone (the other shares are 0), so the owner knows `lambda_w`.

use rand::{CryptoRng, Rng};

use super::config::BmrConfig;
use crate::circuit::{LinOp, PartyId, Program};
use crate::gc::block::Block;
use crate::gc::hash::{domain, fixed_aes, tweak_in};

/// Randomness a garbler samples before any message (inputs to the OTs). Zeroized on drop.
#[derive(zeroize::ZeroizeOnDrop)]
pub(super) struct Fresh {
    /// The free-XOR offset `R^i` (lsb 1).
    pub r: Block,
    /// `k^i_{w,0}` of the fresh wires: inputs, then AND outputs in gate order (lsb 0).
    pub key0: Vec<Block>,
    /// `lambda^i_w` of the fresh wires.
    pub lam: Vec<bool>,
    /// Random choice bits of the mask-product OT slots (derandomized in round 4).
    pub c: Vec<bool>,
    /// The input wires this garbler owns (the only inputs whose mask share is not 0).
    #[zeroize(skip)]
    pub own_inputs: Vec<usize>,
}

impl Fresh {
    /// Fresh keys and masks for one garbling under the offset `r` (lsb 1): a fresh random one
    /// (standalone garbling) or the session's (the IKNP correlation of an [`super::OtSetup`]).
    pub fn sample<R: Rng + CryptoRng + ?Sized>(
        rng: &mut R,
        me: PartyId,
        cfg: &BmrConfig,
        p: &Program,
        r: Block,
    ) -> Self {
        let n_in = p.num_inputs as usize;
        let fresh = n_in + p.num_and;
        let key0 = (0..fresh)
            .map(|_| Block(Block::random(rng).0 & !1))
            .collect();
        let lam = (0..fresh)
            .map(|f| {
                if f < n_in {
                    cfg.input_owners[f] == me && rng.random::<bool>()
                } else {
                    rng.random()
                }
            })
            .collect();
        let c = (0..p.num_and).map(|_| rng.random()).collect();
        Fresh {
            r,
            key0,
            lam,
            c,
            own_inputs: cfg.inputs_of(me),
        }
    }

    /// IKNP choices of this garbler as receiver (the slot layout of every pair "i receives
    /// from j": i's own input wires, the AND outputs, then the mask-product slots). Inputs
    /// owned by others have mask share 0 here, so their products need no OT.
    pub fn choices(&self) -> Vec<bool> {
        let n_in = self.key0.len() - self.c.len();
        let own = self.own_inputs.iter().map(|&w| self.lam[w]);
        own.chain(self.lam[n_in..].iter().copied())
            .chain(self.c.iter().copied())
            .collect()
    }

    /// Number of OTs in the instance where `owned` input wires belong to the receiver.
    pub fn slots(owned: usize, p: &Program) -> usize {
        owned + 2 * p.num_and
    }
}

/// Per-wire material after the OT extension. Zeroized on drop.
#[derive(zeroize::ZeroizeOnDrop)]
pub(super) struct Material {
    #[zeroize(skip)]
    pub me: PartyId,
    #[zeroize(skip)]
    pub n: usize,
    /// The garbling's tweak nonce ([`BmrConfig::tweak_nonce`]).
    #[zeroize(skip)]
    pub nonce: u64,
    pub r: Block,
    pub lam: Vec<bool>,
    pub key0: Vec<Block>,
    /// `t[p][w]`: receiver-side shares of `lambda^me_w R^p` (empty for p == me).
    pub t: Vec<Vec<Block>>,
    /// `q[p][w]`: sender-side shares of `lambda^p_w R^me` (empty for p == me).
    pub q: Vec<Vec<Block>>,
    /// Same for the mask-product slots, per AND gate.
    pub t_mu: Vec<Vec<Block>>,
    pub q_mu: Vec<Vec<Block>>,
}

impl Material {
    /// Propagates fresh values and OT rows through the circuit. `rows_t[x]` are this party's
    /// receiver rows from x, `rows_q[x]` its sender rows to x, both in the slot layout of
    /// [`Fresh::choices`] (of the receiver); `inputs_of[x]` are party x's input wires.
    pub fn build(
        me: PartyId,
        nonce: u64,
        p: &Program,
        fresh: Fresh,
        inputs_of: &[Vec<usize>],
        rows_t: Vec<Vec<Block>>,
        rows_q: Vec<Vec<Block>>,
    ) -> Self {
        let n = inputs_of.len();
        let wires = p.num_wires as usize;
        let n_in = p.num_inputs as usize;
        let peers: Vec<PartyId> = (0..n).filter(|&x| x != me).collect();
        let alloc = |x: PartyId| {
            if x == me {
                Vec::new()
            } else {
                vec![Block::ZERO; wires]
            }
        };
        let (own_t, own_q) = (inputs_of[me].len(), |x: PartyId| inputs_of[x].len());
        let mut m = Material {
            me,
            n,
            nonce,
            r: fresh.r,
            lam: vec![false; wires],
            key0: vec![Block::ZERO; wires],
            t: (0..n).map(alloc).collect(),
            q: (0..n).map(alloc).collect(),
            t_mu: (0..n)
                .map(|x| {
                    if x == me {
                        Vec::new()
                    } else {
                        rows_t[x][own_t + p.num_and..].to_vec()
                    }
                })
                .collect(),
            q_mu: (0..n)
                .map(|x| {
                    if x == me {
                        Vec::new()
                    } else {
                        rows_q[x][own_q(x) + p.num_and..].to_vec()
                    }
                })
                .collect(),
        };
        m.lam[..n_in].copy_from_slice(&fresh.lam[..n_in]);
        m.key0[..n_in].copy_from_slice(&fresh.key0[..n_in]);
        // Input wires: a product is non-zero only in the instances whose receiver owns the wire.
        for (slot, &w) in inputs_of[me].iter().enumerate() {
            for &x in &peers {
                m.t[x][w] = rows_t[x][slot];
            }
        }
        for &x in &peers {
            for (slot, &w) in inputs_of[x].iter().enumerate() {
                m.q[x][w] = rows_q[x][slot];
            }
        }
        let mut g = 0;
        for layer in &p.layers {
            for op in &layer.linear {
                m.linear(op, &peers);
            }
            for and in &layer.ands {
                let w = and.out as usize;
                m.lam[w] = fresh.lam[n_in + g];
                m.key0[w] = fresh.key0[n_in + g];
                for &x in &peers {
                    m.t[x][w] = rows_t[x][own_t + g];
                    m.q[x][w] = rows_q[x][own_q(x) + g];
                }
                g += 1;
            }
        }
        m
    }

    fn linear(&mut self, op: &LinOp, peers: &[PartyId]) {
        match *op {
            LinOp::Xor { a, b, out } => {
                let (a, b, o) = (a as usize, b as usize, out as usize);
                self.lam[o] = self.lam[a] ^ self.lam[b];
                self.key0[o] = self.key0[a] ^ self.key0[b];
                for &x in peers {
                    self.t[x][o] = self.t[x][a] ^ self.t[x][b];
                    self.q[x][o] = self.q[x][a] ^ self.q[x][b];
                }
            }
            LinOp::Inv { a, out } => {
                let (a, o) = (a as usize, out as usize);
                // lambda_out = lambda_a ^ 1: party 0 flips its share; senders to party 0 add R.
                self.lam[o] = self.lam[a] ^ (self.me == 0);
                self.key0[o] = self.key0[a];
                for &x in peers {
                    self.t[x][o] = self.t[x][a];
                    self.q[x][o] = self.q[x][a] ^ self.r.select(x == 0);
                }
            }
        }
    }

    /// Party `me`'s share of `lambda_w R^j`.
    #[inline(always)]
    fn lr_share(&self, w: usize, j: PartyId) -> Block {
        if j == self.me {
            let mut s = self.r.select(self.lam[w]);
            for (x, q) in self.q.iter().enumerate() {
                if x != self.me {
                    s ^= q[w];
                }
            }
            s
        } else {
            self.t[j][w]
        }
    }

    /// Party `me`'s share of `mu_g R^j` (`mu` = its share of `lambda_a lambda_b`).
    #[inline(always)]
    fn mu_share(&self, g: usize, mu: bool, j: PartyId) -> Block {
        if j == self.me {
            let mut s = self.r.select(mu);
            for (x, q) in self.q_mu.iter().enumerate() {
                if x != self.me {
                    s ^= q[g];
                }
            }
            s
        } else {
            self.t_mu[j][g]
        }
    }
}

/// Tweak of the bit OT of gate g in the instance "recv receives from send" of the garbling
/// with tweak nonce `nonce`.
fn bit_tweak(nonce: u64, g: usize, recv: PartyId, send: PartyId) -> Block {
    tweak_in(
        domain::BIT_OT,
        nonce,
        ((g as u64) << 16) | ((recv as u64) << 8) | send as u64,
    )
}

impl Material {
    /// Round 3, as OT sender to `recv`: bit-OT corrections `d_g` for `lambda^recv_a lambda^me_b`
    /// (Gilboa-style product from the correlated OT of wire a: `d = H(q) ^ H(q ^ R) ^
    /// lambda^me_b`), and this party's shares `H(q)` of the products.
    pub fn bit_ot_send(&self, p: &Program, recv: PartyId) -> (Vec<bool>, Vec<bool>) {
        let ands: Vec<_> = p.ands().collect();
        let x0: Vec<Block> = ands.iter().map(|g| self.q[recv][g.a as usize]).collect();
        let x1: Vec<Block> = x0.iter().map(|&x| x ^ self.r).collect();
        let mut h0 = vec![Block::ZERO; ands.len()];
        let mut h1 = vec![Block::ZERO; ands.len()];
        let tw = |g: usize| bit_tweak(self.nonce, g, recv, self.me);
        fixed_aes().hash_many(&x0, tw, &mut h0);
        fixed_aes().hash_many(&x1, tw, &mut h1);
        let d = ands
            .iter()
            .enumerate()
            .map(|(g, op)| h0[g].lsb() ^ h1[g].lsb() ^ self.lam[op.b as usize])
            .collect();
        let share = h0.iter().map(|h| h.lsb()).collect();
        (d, share)
    }

    /// Round 3, as OT receiver from `send`: shares `H(t) ^ lambda^me_a d` of
    /// `lambda^me_a lambda^send_b`.
    pub fn bit_ot_receive(&self, p: &Program, send: PartyId, d: &[bool]) -> Vec<bool> {
        let ands: Vec<_> = p.ands().collect();
        let x: Vec<Block> = ands.iter().map(|g| self.t[send][g.a as usize]).collect();
        let mut h = vec![Block::ZERO; ands.len()];
        fixed_aes().hash_many(&x, |g| bit_tweak(self.nonce, g, self.me, send), &mut h);
        ands.iter()
            .enumerate()
            .map(|(g, op)| h[g].lsb() ^ (self.lam[op.a as usize] & d[g]))
            .collect()
    }

    /// Round 4, as OT sender to `recv`: derandomize the mask-product slots with the receiver's
    /// bits `e = mu^recv ^ c^recv` (`q' = q ^ e R`, so `t ^ q' = mu^recv R^me`).
    pub fn derandomize(&mut self, recv: PartyId, e: &[bool]) {
        let r = self.r;
        for (q, &bit) in self.q_mu[recv].iter_mut().zip(e) {
            *q ^= r.select(bit);
        }
    }
}

/// PRF tweak: garbling nonce, gate g, key index j, row r = 2 alpha + beta, side (0 = wire a,
/// 1 = wire b). Unique within a garbling (g < 2^40, j < 64); the nonce separates garblings.
#[inline(always)]
pub(super) fn prf_tweak(nonce: u64, g: usize, j: usize, row: usize, side: usize) -> Block {
    tweak_in(
        domain::BMR_PRF,
        nonce,
        ((g as u64) << 9) | ((j as u64) << 3) | ((side as u64) << 2) | row as u64,
    )
}

/// Gates garbled per batch of PRF calls.
const CHUNK: usize = 32;

impl Material {
    /// Round 5: this garbler's XOR share of every garbled row (BLO16 s.4, Fig. 2): for gate g,
    /// row `(alpha, beta)`, key index j,
    /// ```text
    /// [mu R^j] ^ [lambda_c R^j] ^ alpha [lambda_b R^j] ^ beta [lambda_a R^j]
    ///   ^ (j == me) (alpha beta R^me ^ k^me_{c,0})
    ///   ^ F(k^me_{a,alpha}, g, j, row, a) ^ F(k^me_{b,beta}, g, j, row, b)
    /// ```
    /// XOR over all garblers: `k^j_{c, chi} ^ xor_i F(..)` with `chi = (alpha ^ lambda_a)(beta ^
    /// lambda_b) ^ lambda_c`. Layout: `table[(4 g + row) n + j]`.
    pub fn table_share(&self, p: &Program, mu: &[bool]) -> Vec<Block> {
        let n = self.n;
        let ands: Vec<_> = p.ands().copied().collect();
        let mut out = vec![Block::ZERO; 4 * n * ands.len()];
        let per_gate = 8 * n;
        let mut xs = vec![Block::ZERO; per_gate * CHUNK];
        let mut tws = vec![Block::ZERO; per_gate * CHUNK];
        let mut hs = vec![Block::ZERO; per_gate * CHUNK];
        for (ci, chunk) in ands.chunks(CHUNK).enumerate() {
            let g0 = ci * CHUNK;
            for (k, op) in chunk.iter().enumerate() {
                let g = g0 + k;
                let (ka, kb) = (self.key0[op.a as usize], self.key0[op.b as usize]);
                for row in 0..4 {
                    let (al, be) = (row >> 1 == 1, row & 1 == 1);
                    for j in 0..n {
                        let i = k * per_gate + (row * n + j) * 2;
                        xs[i] = ka ^ self.r.select(al);
                        tws[i] = prf_tweak(self.nonce, g, j, row, 0);
                        xs[i + 1] = kb ^ self.r.select(be);
                        tws[i + 1] = prf_tweak(self.nonce, g, j, row, 1);
                    }
                }
            }
            let len = chunk.len() * per_gate;
            fixed_aes().hash_many(&xs[..len], |i| tws[i], &mut hs[..len]);
            for (k, op) in chunk.iter().enumerate() {
                let g = g0 + k;
                self.rows(
                    op,
                    g,
                    mu[g],
                    &hs[k * per_gate..(k + 1) * per_gate],
                    &mut out[4 * n * g..4 * n * (g + 1)],
                );
            }
        }
        out
    }

    fn rows(&self, op: &crate::circuit::AndOp, g: usize, mu: bool, h: &[Block], out: &mut [Block]) {
        let n = self.n;
        let (a, b, c) = (op.a as usize, op.b as usize, op.out as usize);
        for j in 0..n {
            let base = self.mu_share(g, mu, j) ^ self.lr_share(c, j);
            let (la, lb) = (self.lr_share(a, j), self.lr_share(b, j));
            for row in 0..4 {
                let (al, be) = (row >> 1 == 1, row & 1 == 1);
                let mut v = base ^ lb.select(al) ^ la.select(be);
                if j == self.me {
                    v ^= self.r.select(al & be) ^ self.key0[c];
                }
                let i = (row * n + j) * 2;
                out[row * n + j] = v ^ h[i] ^ h[i + 1];
            }
        }
    }
}

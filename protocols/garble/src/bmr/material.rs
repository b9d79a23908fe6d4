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
//!
//! **Keyless evaluator.** When the evaluator `e` is a garbler it holds mask shares
//! `lambda^e_w` but no offset, keys or key slot (`BmrConfig::is_keyed`). Products
//! `lambda R^j` exist only for keyed `j`, so only the IKNP instances "i receives from j" with a
//! keyed `j` run: `e` is never an OT sender. Its mask products with a keyed `j` both come from
//! the instance "e receives from j": `lambda^e_a lambda^j_b` on wire a (as for every pair) and
//! `lambda^j_a lambda^e_b` on wire b (two bits per AND from `j` in round 3). Its table share
//! has the share terms only: no PRF terms, since it knows nothing that would hide a row from
//! itself, and nobody else ever sees its share.

use rand::{CryptoRng, Rng};

use super::config::BmrConfig;
use crate::block::Block;
use crate::circuit::{LinOp, PartyId, Program};
use crate::hash::{domain, fixed_aes, tweak_in};

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
    /// The keyless evaluator gets masks only (no keys, offset zero).
    pub fn sample<R: Rng + CryptoRng + ?Sized>(
        rng: &mut R,
        me: PartyId,
        cfg: &BmrConfig,
        p: &Program,
        r: Block,
    ) -> Self {
        let n_in = p.num_inputs as usize;
        let fresh = n_in + p.num_and;
        let keyed = cfg.is_keyed(me);
        let key0 = if keyed {
            (0..fresh)
                .map(|_| Block(Block::random(rng).0 & !1))
                .collect()
        } else {
            Vec::new()
        };
        let r = if keyed { r } else { Block::ZERO };
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
        let n_in = self.lam.len() - self.c.len();
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
    /// `keyed[x]`: whether party x is a keyed garbler (has an offset and a key slot).
    #[zeroize(skip)]
    pub keyed: Vec<bool>,
    /// The keyed garblers in slot order.
    #[zeroize(skip)]
    pub slots: Vec<PartyId>,
    /// `R^me` (zero for the keyless evaluator).
    pub r: Block,
    pub lam: Vec<bool>,
    pub key0: Vec<Block>,
    /// `t[p][w]`: receiver-side shares of `lambda^me_w R^p` (empty unless p is keyed, p != me).
    pub t: Vec<Vec<Block>>,
    /// `q[p][w]`: sender-side shares of `lambda^p_w R^me` (empty unless me is keyed, p != me).
    pub q: Vec<Vec<Block>>,
    /// Same for the mask-product slots, per AND gate.
    pub t_mu: Vec<Vec<Block>>,
    pub q_mu: Vec<Vec<Block>>,
}

impl Material {
    /// Propagates fresh values and OT rows through the circuit. `rows_t[x]` are this party's
    /// receiver rows from x, `rows_q[x]` its sender rows to x, both in the slot layout of
    /// [`Fresh::choices`] (of the receiver); `inputs_of[x]` are party x's input wires;
    /// `keyed[x]` whether x is a keyed garbler (instances "i receives from j" exist for keyed
    /// j only).
    #[allow(clippy::too_many_arguments)]
    pub fn build(
        me: PartyId,
        nonce: u64,
        p: &Program,
        fresh: Fresh,
        inputs_of: &[Vec<usize>],
        keyed: &[bool],
        rows_t: Vec<Vec<Block>>,
        rows_q: Vec<Vec<Block>>,
    ) -> Self {
        let n = inputs_of.len();
        let wires = p.num_wires as usize;
        let n_in = p.num_inputs as usize;
        let t_on = |x: PartyId| x != me && keyed[x];
        let q_on = |x: PartyId| x != me && keyed[me];
        let t_peers: Vec<PartyId> = (0..n).filter(|&x| t_on(x)).collect();
        let q_peers: Vec<PartyId> = (0..n).filter(|&x| q_on(x)).collect();
        let alloc = |on: bool| {
            if on {
                vec![Block::ZERO; wires]
            } else {
                Vec::new()
            }
        };
        let (own_t, own_q) = (inputs_of[me].len(), |x: PartyId| inputs_of[x].len());
        let mut m = Material {
            me,
            n,
            nonce,
            keyed: keyed.to_vec(),
            slots: (0..n).filter(|&x| keyed[x]).collect(),
            r: fresh.r,
            lam: vec![false; wires],
            key0: if keyed[me] {
                vec![Block::ZERO; wires]
            } else {
                Vec::new()
            },
            t: (0..n).map(|x| alloc(t_on(x))).collect(),
            q: (0..n).map(|x| alloc(q_on(x))).collect(),
            t_mu: (0..n)
                .map(|x| {
                    if t_on(x) {
                        rows_t[x][own_t + p.num_and..].to_vec()
                    } else {
                        Vec::new()
                    }
                })
                .collect(),
            q_mu: (0..n)
                .map(|x| {
                    if q_on(x) {
                        rows_q[x][own_q(x) + p.num_and..].to_vec()
                    } else {
                        Vec::new()
                    }
                })
                .collect(),
        };
        m.lam[..n_in].copy_from_slice(&fresh.lam[..n_in]);
        if keyed[me] {
            m.key0[..n_in].copy_from_slice(&fresh.key0[..n_in]);
        }
        // Input wires: a product is non-zero only in the instances whose receiver owns the wire.
        for (slot, &w) in inputs_of[me].iter().enumerate() {
            for &x in &t_peers {
                m.t[x][w] = rows_t[x][slot];
            }
        }
        for &x in &q_peers {
            for (slot, &w) in inputs_of[x].iter().enumerate() {
                m.q[x][w] = rows_q[x][slot];
            }
        }
        let mut g = 0;
        for layer in &p.layers {
            for op in &layer.linear {
                m.linear(op, &t_peers, &q_peers);
            }
            for and in &layer.ands {
                let w = and.out as usize;
                m.lam[w] = fresh.lam[n_in + g];
                if keyed[me] {
                    m.key0[w] = fresh.key0[n_in + g];
                }
                for &x in &t_peers {
                    m.t[x][w] = rows_t[x][own_t + g];
                }
                for &x in &q_peers {
                    m.q[x][w] = rows_q[x][own_q(x) + g];
                }
                g += 1;
            }
        }
        m
    }

    fn linear(&mut self, op: &LinOp, t_peers: &[PartyId], q_peers: &[PartyId]) {
        match *op {
            LinOp::Xor { a, b, out } => {
                let (a, b, o) = (a as usize, b as usize, out as usize);
                self.lam[o] = self.lam[a] ^ self.lam[b];
                for &x in t_peers {
                    self.t[x][o] = self.t[x][a] ^ self.t[x][b];
                }
                for &x in q_peers {
                    self.q[x][o] = self.q[x][a] ^ self.q[x][b];
                }
            }
            LinOp::Inv { a, out } => {
                let (a, o) = (a as usize, out as usize);
                // lambda_out = lambda_a ^ 1: party 0 flips its share; senders to party 0 add R.
                self.lam[o] = self.lam[a] ^ (self.me == 0);
                for &x in t_peers {
                    self.t[x][o] = self.t[x][a];
                }
                for &x in q_peers {
                    self.q[x][o] = self.q[x][a] ^ self.r.select(x == 0);
                }
            }
        }
    }

    /// Keyed garbler, before [`Material::table_share`]: overrides the keys of the offline
    /// input wires (`known.rs`) and propagates every key through the XOR and INV gates (input
    /// and AND-output keys are fresh).
    pub fn set_keys(&mut self, p: &Program, offline: &[(usize, Block)]) {
        if self.key0.is_empty() {
            return;
        }
        for &(w, k) in offline {
            self.key0[w] = k;
        }
        for layer in &p.layers {
            for op in &layer.linear {
                match *op {
                    LinOp::Xor { a, b, out } => {
                        self.key0[out as usize] = self.key0[a as usize] ^ self.key0[b as usize]
                    }
                    LinOp::Inv { a, out } => self.key0[out as usize] = self.key0[a as usize],
                }
            }
        }
    }

    /// Party `me`'s share of `lambda_w R^j`.
    #[inline(always)]
    pub(super) fn lr_share(&self, w: usize, j: PartyId) -> Block {
        if j == self.me {
            let mut s = self.r.select(self.lam[w]);
            for q in self.q.iter().filter(|q| !q.is_empty()) {
                s ^= q[w];
            }
            s
        } else {
            self.t[j][w]
        }
    }

    /// Party `me`'s share of `mu_g R^j` (`mu` = its share of `lambda_a lambda_b`).
    #[inline(always)]
    pub(super) fn mu_share(&self, g: usize, mu: bool, j: PartyId) -> Block {
        if j == self.me {
            let mut s = self.r.select(mu);
            for (x, q) in self.q_mu.iter().enumerate() {
                if x != self.me && self.keyed[self.me] {
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
/// with tweak nonce `nonce`, on the gate's wire a (`side` 0) or b (`side` 1; only for the
/// keyless evaluator as receiver). Unique within a garbling (g < 2^40).
fn bit_tweak(nonce: u64, g: usize, recv: PartyId, send: PartyId, side: usize) -> Block {
    tweak_in(
        domain::BIT_OT,
        nonce,
        ((g as u64) << 17) | ((side as u64) << 16) | ((recv as u64) << 8) | send as u64,
    )
}

/// Which wire of an AND gate a bit OT runs on.
fn side_wire(op: &crate::circuit::AndOp, side: usize) -> (usize, usize) {
    if side == 0 {
        (op.a as usize, op.b as usize)
    } else {
        (op.b as usize, op.a as usize)
    }
}

impl Material {
    /// The sides on which bit OTs run in the instance "recv receives from a keyed sender":
    /// wire a only, or both wires when the receiver is the keyless evaluator (its products with
    /// the sender in both orders come from this one instance).
    fn sides(&self, recv: PartyId) -> usize {
        if self.keyed[recv] {
            1
        } else {
            2
        }
    }

    /// Round 3, as OT sender to `recv`: bit-OT corrections `d_g` for `lambda^recv_a lambda^me_b`
    /// (Gilboa-style product from the correlated OT of wire a: `d = H(q) ^ H(q ^ R) ^
    /// lambda^me_b`), and this party's shares `H(q)` of the products. When `recv` is the
    /// keyless evaluator, the corrections for `lambda^recv_b lambda^me_a` (on wire b) follow:
    /// `2 n_and` bits then.
    pub fn bit_ot_send(&self, p: &Program, recv: PartyId) -> (Vec<bool>, Vec<bool>) {
        let ands: Vec<_> = p.ands().collect();
        let mut d = Vec::with_capacity(2 * ands.len());
        let mut share = vec![false; ands.len()];
        for side in 0..self.sides(recv) {
            let x0: Vec<Block> = ands
                .iter()
                .map(|g| self.q[recv][side_wire(g, side).0])
                .collect();
            let x1: Vec<Block> = x0.iter().map(|&x| x ^ self.r).collect();
            let mut h0 = vec![Block::ZERO; ands.len()];
            let mut h1 = vec![Block::ZERO; ands.len()];
            let tw = |g: usize| bit_tweak(self.nonce, g, recv, self.me, side);
            fixed_aes().hash_many(&x0, tw, &mut h0);
            fixed_aes().hash_many(&x1, tw, &mut h1);
            d.extend(
                ands.iter()
                    .enumerate()
                    .map(|(g, op)| h0[g].lsb() ^ h1[g].lsb() ^ self.lam[side_wire(op, side).1]),
            );
            share.iter_mut().zip(&h0).for_each(|(s, h)| *s ^= h.lsb());
        }
        (d, share)
    }

    /// Number of bit-OT corrections a keyed sender sends to `recv` per AND gate.
    pub fn bit_ot_len(keyed_recv: bool, n_and: usize) -> usize {
        if keyed_recv {
            n_and
        } else {
            2 * n_and
        }
    }

    /// Round 3, as OT receiver from `send`: shares `H(t) ^ lambda^me_a d` of
    /// `lambda^me_a lambda^send_b` (and, as the keyless evaluator, of `lambda^me_b
    /// lambda^send_a` from the second half of `d`).
    pub fn bit_ot_receive(&self, p: &Program, send: PartyId, d: &[bool]) -> Vec<bool> {
        let ands: Vec<_> = p.ands().collect();
        let mut share = vec![false; ands.len()];
        for side in 0..self.sides(self.me) {
            let x: Vec<Block> = ands
                .iter()
                .map(|g| self.t[send][side_wire(g, side).0])
                .collect();
            let mut h = vec![Block::ZERO; ands.len()];
            let tw = |g: usize| bit_tweak(self.nonce, g, self.me, send, side);
            fixed_aes().hash_many(&x, tw, &mut h);
            let d = &d[side * ands.len()..(side + 1) * ands.len()];
            for (g, op) in ands.iter().enumerate() {
                share[g] ^= h[g].lsb() ^ (self.lam[side_wire(op, side).0] & d[g]);
            }
        }
        share
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

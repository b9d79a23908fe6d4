//! Round 5 of a garbler: its XOR share of every garbled row (BLO16 s.4, Fig. 2), computed from
//! the per-wire material of `material.rs`, by blocks of gates on the thread pool. AES work per
//! gate of a keyed garbler with `k` key slots: `4 + 8 k` calls (TMMO, `crate::hash`: the first call
//! `pi(x)` of each of the 4 distinct hash inputs once, then one call per (input, tweak)).

use rayon::prelude::*;

use super::material::Material;
use crate::block::Block;
use crate::circuit::Program;
use crate::hash::{domain, fixed_aes, tweak_in};

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

/// Gates per task of the thread pool.
const PAR_GATES: usize = 2048;

impl Material {
    /// Round 5: this garbler's XOR share of every garbled row (BLO16 s.4, Fig. 2): for gate g,
    /// row `(alpha, beta)`, key slot of keyed garbler j,
    /// ```text
    /// [mu R^j] ^ [lambda_c R^j] ^ alpha [lambda_b R^j] ^ beta [lambda_a R^j]
    ///   ^ (j == me) (alpha beta R^me ^ k^me_{c,0})
    ///   ^ F(k^me_{a,alpha}, g, s, row, a) ^ F(k^me_{b,beta}, g, s, row, b)   (me keyed)
    /// ```
    /// XOR over all garblers: `k^j_{c, chi} ^ xor_{i keyed} F(..)` with `chi = (alpha ^
    /// lambda_a)(beta ^ lambda_b) ^ lambda_c`. Layout: `table[(4 g + row) K + s]` for the `K`
    /// keyed garblers, slot `s` in party order. The keyless evaluator's share has no PRF terms.
    pub fn table_share(&self, p: &Program, mu: &[bool]) -> Vec<Block> {
        let k = self.slots.len();
        let ands: Vec<_> = p.ands().copied().collect();
        let mut out = vec![Block::ZERO; 4 * k * ands.len()];
        if k == 0 {
            return out;
        }
        // Gates are independent: blocks of them go to the threads of the pool.
        out.par_chunks_mut(4 * k * PAR_GATES)
            .zip(ands.par_chunks(PAR_GATES))
            .enumerate()
            .for_each(|(bi, (out, ands))| self.table_block(bi * PAR_GATES, ands, mu, out));
        out
    }

    /// [`Material::table_share`] of the gates `ands`, the first being gate `first`.
    fn table_block(
        &self,
        first: usize,
        ands: &[crate::circuit::AndOp],
        mu: &[bool],
        out: &mut [Block],
    ) {
        let k = self.slots.len();
        let with_prf = self.keyed[self.me];
        let per_gate = if with_prf { 8 * k } else { 0 };
        // Per gate only 4 distinct keys are hashed (`ka`, `ka ^ R`, `kb`, `kb ^ R`), under `8 k`
        // tweaks: their first AES call `pi(x)` is made once (`ks`, `pks`), then one call per hash.
        let mut ks = vec![Block::ZERO; if with_prf { 4 * CHUNK } else { 0 }];
        let mut pks = vec![Block::ZERO; ks.len()];
        let mut pxs = vec![Block::ZERO; per_gate * CHUNK];
        let mut tws = vec![Block::ZERO; per_gate * CHUNK];
        let mut hs = vec![Block::ZERO; per_gate * CHUNK];
        for (ci, chunk) in ands.chunks(CHUNK).enumerate() {
            let l0 = ci * CHUNK;
            if with_prf {
                for (i, op) in chunk.iter().enumerate() {
                    let (ka, kb) = (self.key0[op.a as usize], self.key0[op.b as usize]);
                    ks[4 * i..4 * i + 4].copy_from_slice(&[ka, ka ^ self.r, kb, kb ^ self.r]);
                }
                let nk = 4 * chunk.len();
                fixed_aes().permute_many(&ks[..nk], &mut pks[..nk]);
                for i in 0..chunk.len() {
                    let g = first + l0 + i;
                    let pk = &pks[4 * i..4 * i + 4];
                    for row in 0..4 {
                        let (al, be) = (row >> 1, row & 1);
                        for s in 0..k {
                            let x = i * per_gate + (row * k + s) * 2;
                            pxs[x] = pk[al];
                            tws[x] = prf_tweak(self.nonce, g, s, row, 0);
                            pxs[x + 1] = pk[2 + be];
                            tws[x + 1] = prf_tweak(self.nonce, g, s, row, 1);
                        }
                    }
                }
                let len = chunk.len() * per_gate;
                fixed_aes().hash_permuted_many(&pxs[..len], |i| tws[i], &mut hs[..len]);
            }
            for (i, op) in chunk.iter().enumerate() {
                let (g, l) = (first + l0 + i, l0 + i);
                self.rows(
                    op,
                    g,
                    mu[g],
                    &hs[i * per_gate..(i + 1) * per_gate],
                    &mut out[4 * k * l..4 * k * (l + 1)],
                );
            }
        }
    }

    fn rows(&self, op: &crate::circuit::AndOp, g: usize, mu: bool, h: &[Block], out: &mut [Block]) {
        let k = self.slots.len();
        let (a, b, c) = (op.a as usize, op.b as usize, op.out as usize);
        for (s, &j) in self.slots.iter().enumerate() {
            let base = self.mu_share(g, mu, j) ^ self.lr_share(c, j);
            let (la, lb) = (self.lr_share(a, j), self.lr_share(b, j));
            for row in 0..4 {
                let (al, be) = (row >> 1 == 1, row & 1 == 1);
                let mut v = base ^ lb.select(al) ^ la.select(be);
                if j == self.me {
                    v ^= self.r.select(al & be) ^ self.key0[c];
                }
                if !h.is_empty() {
                    let x = (row * k + s) * 2;
                    v ^= h[x] ^ h[x + 1];
                }
                out[row * k + s] = v;
            }
        }
    }
}

//! The evaluator's work: BMR evaluation of the aggregated garbled tables (BLO16 s.4, "online").
//!
//! The evaluator holds, per wire, one key of every keyed garbler `k^j_{w,Lambda_w}` (`n` blocks:
//! here `n` is the number of key slots, the garblers other than a garbling evaluator) and reads
//! `Lambda_w` off their lsb. XOR: keys XOR, INV: keys copied. AND gate g: with row
//! `r = 2 Lambda_a + Lambda_b`, for each j
//! `k^j_c = T[g][r][j] ^ xor_i F(k^i_a, g, j, r, a) ^ F(k^i_b, g, j, r, b)` (2n^2 PRF calls),
//! and all n recovered keys must agree on their lsb (a cheap consistency check on the tables).
//! `F` is the TMMO hash of `crate::hash`; its first AES call `pi(k)` depends on the key only, so a
//! gate costs `2n + 2n^2` AES calls (the 2n input keys permuted once, then one call per hash).

use rayon::prelude::*;

use super::table::prf_tweak;
use super::{BmrError, Result};
use crate::block::Block;
use crate::circuit::{AndOp, LinOp, Program, Split};
use crate::hash::fixed_aes;

/// Gates per batch of PRF calls.
const CHUNK: usize = 32;

/// Gates per task of the thread pool.
const PAR_GATES: usize = 1024;

/// Evaluates `program` with `n` key slots on the input wires (`keys[w * n + j]`); returns
/// the external values `Lambda` of the output wires. `nonce` is the garbling's
/// [`super::BmrConfig::tweak_nonce`].
pub fn evaluate(
    program: &Program,
    n: usize,
    nonce: u64,
    tables: &[Block],
    input_keys: &[Block],
) -> Result<Vec<bool>> {
    check_sizes(program, n, tables, input_keys)?;
    evaluate_at(program, n, nonce, 0, tables, input_keys)
}

/// [`evaluate`] on the parts of a [`Split`] program, in parallel on the thread pool: the
/// same output bits, bit for bit.
pub fn evaluate_split(
    split: &Split,
    n: usize,
    nonce: u64,
    tables: &[Block],
    input_keys: &[Block],
) -> Result<Vec<bool>> {
    check_sizes(&split.whole, n, tables, input_keys)?;
    let parts: Vec<Result<Vec<bool>>> = split
        .parts
        .par_iter()
        .map(|part| {
            let mut keys = Vec::with_capacity(part.inputs.len() * n);
            for &w in &part.inputs {
                keys.extend_from_slice(&input_keys[w as usize * n..(w as usize + 1) * n]);
            }
            let t = 4 * n * part.first_and..4 * n * (part.first_and + part.program.num_and);
            let tables = tables.get(t).ok_or(BmrError::Length {
                what: "garbled table blocks of a part",
                expected: 4 * n * (part.first_and + part.program.num_and),
                actual: tables.len(),
            })?;
            evaluate_at(&part.program, n, nonce, part.first_and, tables, &keys)
        })
        .collect();
    let mut out = vec![false; split.whole.outputs.len()];
    for (part, bits) in split.parts.iter().zip(parts) {
        for (&o, b) in part.outputs.iter().zip(bits?) {
            out[o] = b;
        }
    }
    Ok(out)
}

fn check_sizes(program: &Program, n: usize, tables: &[Block], input_keys: &[Block]) -> Result<()> {
    let n_in = program.num_inputs as usize;
    let want = 4 * n * program.num_and;
    if tables.len() != want {
        return Err(BmrError::Length {
            what: "garbled table blocks",
            expected: want,
            actual: tables.len(),
        });
    }
    if input_keys.len() != n_in * n {
        return Err(BmrError::Length {
            what: "input keys",
            expected: n_in * n,
            actual: input_keys.len(),
        });
    }
    Ok(())
}

/// Evaluates `program`, whose first AND gate is gate `base` of its garbling (the tweaks'
/// gate index; `tables` starts at that gate).
fn evaluate_at(
    program: &Program,
    n: usize,
    nonce: u64,
    base: usize,
    tables: &[Block],
    input_keys: &[Block],
) -> Result<Vec<bool>> {
    let n_in = program.num_inputs as usize;
    for w in 0..n_in {
        check_consistent(&input_keys[w * n..(w + 1) * n], w)?;
    }
    let mut keys = vec![Block::ZERO; program.num_wires as usize * n];
    keys[..input_keys.len()].copy_from_slice(input_keys);
    let mut scratch = Scratch::new(n);
    let mut g = 0;
    for layer in &program.layers {
        for op in &layer.linear {
            linear(&mut keys, n, op);
        }
        if layer.ands.len() <= PAR_GATES {
            // Most layers (a stage circuit's have tens of AND gates): on this thread, the
            // output keys written in place. An AND layer's outputs never share a slot with its
            // inputs (`Program::compact` allocates them first), so no gate reads a key that
            // another gate of its layer wrote.
            for (ci, chunk) in layer.ands.chunks(CHUNK).enumerate() {
                let first = g + ci * CHUNK;
                scratch.hash(&keys, n, nonce, base + first, chunk);
                for (k, op) in chunk.iter().enumerate() {
                    let (r, w) = (scratch.rows[k], op.out as usize);
                    let t = &tables[(4 * (first + k) + r) * n..(4 * (first + k) + r + 1) * n];
                    let out = &mut keys[w * n..(w + 1) * n];
                    finish(n, t, scratch.hashes(k), out);
                    check_consistent(out, w)?;
                }
            }
        } else {
            // Wide layers: blocks of gates on the thread pool, reading the keys of earlier
            // layers; their output keys are written back in order.
            let out: Vec<Result<Vec<Block>>> = layer
                .ands
                .par_chunks(PAR_GATES)
                .enumerate()
                .map(|(bi, ands)| {
                    eval_block(&keys, n, nonce, base, tables, g + bi * PAR_GATES, ands)
                })
                .collect();
            let mut at = 0;
            for block in out {
                for (i, c) in block?.chunks_exact(n).enumerate() {
                    let w = layer.ands[at + i].out as usize;
                    keys[w * n..(w + 1) * n].copy_from_slice(c);
                }
                at += PAR_GATES;
            }
        }
        g += layer.ands.len();
    }
    Ok(program
        .outputs
        .iter()
        .map(|&w| keys[w as usize * n].lsb())
        .collect())
}

fn check_consistent(keys: &[Block], wire: usize) -> Result<()> {
    let l = keys.first().map(|k| k.lsb()).unwrap_or(false);
    if keys.iter().any(|k| k.lsb() != l) {
        return Err(BmrError::Inconsistent { wire });
    }
    Ok(())
}

#[inline(always)]
fn linear(keys: &mut [Block], n: usize, op: &LinOp) {
    let (a, b, o) = match *op {
        LinOp::Xor { a, b, out } => (a as usize * n, Some(b as usize * n), out as usize * n),
        LinOp::Inv { a, out } => (a as usize * n, None, out as usize * n),
    };
    for j in 0..n {
        keys[o + j] = match b {
            Some(b) => keys[a + j] ^ keys[b + j],
            None => keys[a + j],
        };
    }
}

/// The row `r = 2 Lambda_a + Lambda_b` an AND gate's evaluation reads.
#[inline(always)]
fn row_of(keys: &[Block], n: usize, op: &AndOp) -> usize {
    2 * usize::from(keys[op.a as usize * n].lsb()) + usize::from(keys[op.b as usize * n].lsb())
}

/// Buffers of one batch of up to [`CHUNK`] gates, reused from batch to batch.
struct Scratch {
    per_gate: usize,
    /// The 2n input keys of each gate: `k^0_a, .., k^{n-1}_a, k^0_b, ..`.
    ks: Vec<Block>,
    /// Their first AES call `pi(k)`, made once per key.
    pks: Vec<Block>,
    /// The `2 n^2` hash inputs and tweaks of each gate, then the hashes.
    pxs: Vec<Block>,
    tws: Vec<Block>,
    hs: Vec<Block>,
    rows: [usize; CHUNK],
}

impl Scratch {
    fn new(n: usize) -> Self {
        let per_gate = 2 * n * n;
        Scratch {
            per_gate,
            ks: vec![Block::ZERO; 2 * n * CHUNK],
            pks: vec![Block::ZERO; 2 * n * CHUNK],
            pxs: vec![Block::ZERO; per_gate * CHUNK],
            tws: vec![Block::ZERO; per_gate * CHUNK],
            hs: vec![Block::ZERO; per_gate * CHUNK],
            rows: [0; CHUNK],
        }
    }

    /// Rows and PRF outputs of the gates `chunk` (at most [`CHUNK`]), the first being gate
    /// `g` of the garbling: for gate k, `hashes(k)[j * 2n + 2i + side]` is
    /// `F(k^i_side, g + k, j, row, side)`.
    fn hash(&mut self, keys: &[Block], n: usize, nonce: u64, g: usize, chunk: &[AndOp]) {
        // The 2n input keys of a gate are hashed under 2n^2 tweaks: their first AES call
        // `pi(k)` is made once per gate, then one call per hash.
        for (k, op) in chunk.iter().enumerate() {
            let (a, b) = (op.a as usize * n, op.b as usize * n);
            self.ks[2 * n * k..2 * n * k + n].copy_from_slice(&keys[a..a + n]);
            self.ks[2 * n * k + n..2 * n * (k + 1)].copy_from_slice(&keys[b..b + n]);
            self.rows[k] = row_of(keys, n, op);
        }
        let nk = 2 * n * chunk.len();
        fixed_aes().permute_many(&self.ks[..nk], &mut self.pks[..nk]);
        let pg = self.per_gate;
        for k in 0..chunk.len() {
            prepare(
                n,
                nonce,
                g + k,
                self.rows[k],
                &self.pks[2 * n * k..2 * n * (k + 1)],
                &mut self.pxs[k * pg..],
                &mut self.tws[k * pg..],
            );
        }
        let len = chunk.len() * pg;
        let tws = &self.tws;
        fixed_aes().hash_permuted_many(&self.pxs[..len], |i| tws[i], &mut self.hs[..len]);
    }

    fn hashes(&self, k: usize) -> &[Block] {
        &self.hs[k * self.per_gate..(k + 1) * self.per_gate]
    }
}

/// PRF inputs of one gate (gate g, row `row`), already permuted: for j, for i:
/// `(pi(k^i_a), tweak(g, j, r, a))`, `(pi(k^i_b), tweak(.., b))`; `pk` holds
/// `pi(k^0_a), .., pi(k^{n-1}_a), pi(k^0_b), ..`.
#[inline(always)]
fn prepare(
    n: usize,
    nonce: u64,
    g: usize,
    row: usize,
    pk: &[Block],
    pxs: &mut [Block],
    tws: &mut [Block],
) {
    for j in 0..n {
        let (ta, tb) = (
            prf_tweak(nonce, g, j, row, 0),
            prf_tweak(nonce, g, j, row, 1),
        );
        for i in 0..n {
            let k = (j * n + i) * 2;
            pxs[k] = pk[i];
            tws[k] = ta;
            pxs[k + 1] = pk[n + i];
            tws[k + 1] = tb;
        }
    }
}

/// The output keys (`n` per gate, in order) of the AND gates `ands`, the first being gate
/// `first` of `tables` and gate `base + first` of the garbling, from the keys of their inputs.
fn eval_block(
    keys: &[Block],
    n: usize,
    nonce: u64,
    base: usize,
    tables: &[Block],
    first: usize,
    ands: &[AndOp],
) -> Result<Vec<Block>> {
    let mut scratch = Scratch::new(n);
    let mut out = vec![Block::ZERO; ands.len() * n];
    for (ci, chunk) in ands.chunks(CHUNK).enumerate() {
        let l0 = ci * CHUNK;
        scratch.hash(keys, n, nonce, base + first + l0, chunk);
        for (k, op) in chunk.iter().enumerate() {
            let (l, r) = (first + l0 + k, scratch.rows[k]);
            let o = &mut out[(l0 + k) * n..(l0 + k + 1) * n];
            finish(
                n,
                &tables[(4 * l + r) * n..(4 * l + r + 1) * n],
                scratch.hashes(k),
                o,
            );
            check_consistent(o, op.out as usize)?;
        }
    }
    Ok(out)
}

/// `out[j] = t[j] ^ xor of the 2n hashes of slot j`.
#[inline(always)]
fn finish(n: usize, t: &[Block], h: &[Block], out: &mut [Block]) {
    for j in 0..n {
        let mut k = t[j];
        for x in &h[j * 2 * n..(j + 1) * 2 * n] {
            k ^= *x;
        }
        out[j] = k;
    }
}

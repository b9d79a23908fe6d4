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
use crate::circuit::{AndOp, LinOp, Program};
use crate::hash::fixed_aes;

/// Gates per batch of PRF calls.
const CHUNK: usize = 16;

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
    for w in 0..n_in {
        check_consistent(&input_keys[w * n..(w + 1) * n], w)?;
    }
    let mut keys = vec![Block::ZERO; program.num_wires as usize * n];
    keys[..input_keys.len()].copy_from_slice(input_keys);
    let mut g = 0;
    for layer in &program.layers {
        for op in &layer.linear {
            linear(&mut keys, n, op);
        }
        // The AND gates of a layer are independent: blocks of them go to the thread pool,
        // reading the keys of earlier layers; their output keys are written back in order.
        let out: Vec<Result<Vec<Block>>> = layer
            .ands
            .par_chunks(PAR_GATES)
            .enumerate()
            .map(|(bi, ands)| eval_block(&keys, n, nonce, tables, g + bi * PAR_GATES, ands))
            .collect();
        let mut at = 0;
        for block in out {
            for (i, c) in block?.chunks_exact(n).enumerate() {
                let w = layer.ands[at + i].out as usize;
                keys[w * n..(w + 1) * n].copy_from_slice(c);
            }
            at += PAR_GATES;
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
    match *op {
        LinOp::Xor { a, b, out } => {
            for j in 0..n {
                keys[out as usize * n + j] = keys[a as usize * n + j] ^ keys[b as usize * n + j];
            }
        }
        LinOp::Inv { a, out } => {
            for j in 0..n {
                keys[out as usize * n + j] = keys[a as usize * n + j];
            }
        }
    }
}

/// The row `r = 2 Lambda_a + Lambda_b` an AND gate's evaluation reads.
#[inline(always)]
fn row_of(keys: &[Block], n: usize, op: &AndOp) -> usize {
    2 * usize::from(keys[op.a as usize * n].lsb()) + usize::from(keys[op.b as usize * n].lsb())
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
/// `first`, from the keys of their inputs.
fn eval_block(
    keys: &[Block],
    n: usize,
    nonce: u64,
    tables: &[Block],
    first: usize,
    ands: &[AndOp],
) -> Result<Vec<Block>> {
    let per_gate = 2 * n * n;
    // The 2n input keys of a gate are hashed under 2n^2 tweaks: their first AES call `pi(k)`
    // is made once per gate (`ks`, `pks`), then one call per hash.
    let mut ks = vec![Block::ZERO; 2 * n * CHUNK];
    let mut pks = vec![Block::ZERO; 2 * n * CHUNK];
    let mut pxs = vec![Block::ZERO; per_gate * CHUNK];
    let mut tws = vec![Block::ZERO; per_gate * CHUNK];
    let mut hs = vec![Block::ZERO; per_gate * CHUNK];
    let mut out = vec![Block::ZERO; ands.len() * n];
    for (ci, chunk) in ands.chunks(CHUNK).enumerate() {
        let l0 = ci * CHUNK;
        for (k, op) in chunk.iter().enumerate() {
            let (a, b) = (op.a as usize * n, op.b as usize * n);
            ks[2 * n * k..2 * n * k + n].copy_from_slice(&keys[a..a + n]);
            ks[2 * n * k + n..2 * n * (k + 1)].copy_from_slice(&keys[b..b + n]);
        }
        let nk = 2 * n * chunk.len();
        fixed_aes().permute_many(&ks[..nk], &mut pks[..nk]);
        for (k, op) in chunk.iter().enumerate() {
            prepare(
                n,
                nonce,
                first + l0 + k,
                row_of(keys, n, op),
                &pks[2 * n * k..2 * n * (k + 1)],
                &mut pxs[k * per_gate..],
                &mut tws[k * per_gate..],
            );
        }
        let len = chunk.len() * per_gate;
        fixed_aes().hash_permuted_many(&pxs[..len], |i| tws[i], &mut hs[..len]);
        for (k, op) in chunk.iter().enumerate() {
            let l = l0 + k;
            finish(
                keys,
                n,
                op,
                first + l,
                tables,
                &hs[k * per_gate..(k + 1) * per_gate],
                &mut out[l * n..(l + 1) * n],
            )?;
        }
    }
    Ok(out)
}

#[inline(always)]
fn finish(
    keys: &[Block],
    n: usize,
    op: &AndOp,
    g: usize,
    tables: &[Block],
    h: &[Block],
    out: &mut [Block],
) -> Result<()> {
    let row = row_of(keys, n, op);
    let t = &tables[(4 * g + row) * n..(4 * g + row + 1) * n];
    for j in 0..n {
        let mut k = t[j];
        for x in &h[j * 2 * n..(j + 1) * 2 * n] {
            k ^= *x;
        }
        out[j] = k;
    }
    check_consistent(out, op.out as usize)
}

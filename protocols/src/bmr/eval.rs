//! The evaluator's work: BMR evaluation of the aggregated garbled tables (BLO16 s.4, "online").
//!
//! The evaluator holds, per wire, one key of every keyed garbler `k^j_{w,Lambda_w}` (`n` blocks:
//! here `n` is the number of key slots, the garblers other than a garbling evaluator) and reads
//! `Lambda_w` off their lsb. XOR: keys XOR, INV: keys copied. AND gate g: with row
//! `r = 2 Lambda_a + Lambda_b`, for each j
//! `k^j_c = T[g][r][j] ^ xor_i F(k^i_a, g, j, r, a) ^ F(k^i_b, g, j, r, b)` (2n^2 PRF calls),
//! and all n recovered keys must agree on their lsb (a cheap consistency check on the tables).

use rayon::prelude::*;

use super::table::prf_tweak;
use super::{BmrError, Result};
use crate::circuit::{AndOp, LinOp, Program};
use crate::gc::block::Block;
use crate::gc::hash::fixed_aes;

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

/// PRF inputs of one gate: for j, for i: `(k^i_a, tweak(g, j, r, a))`, `(k^i_b, tweak(.., b))`.
#[inline(always)]
fn prepare(
    keys: &[Block],
    n: usize,
    nonce: u64,
    op: &AndOp,
    g: usize,
    xs: &mut [Block],
    tws: &mut [Block],
) {
    let (a, b) = (op.a as usize * n, op.b as usize * n);
    let row = 2 * usize::from(keys[a].lsb()) + usize::from(keys[b].lsb());
    for j in 0..n {
        let (ta, tb) = (
            prf_tweak(nonce, g, j, row, 0),
            prf_tweak(nonce, g, j, row, 1),
        );
        for i in 0..n {
            let k = (j * n + i) * 2;
            xs[k] = keys[a + i];
            tws[k] = ta;
            xs[k + 1] = keys[b + i];
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
    let mut xs = vec![Block::ZERO; per_gate * CHUNK];
    let mut tws = vec![Block::ZERO; per_gate * CHUNK];
    let mut hs = vec![Block::ZERO; per_gate * CHUNK];
    let mut out = vec![Block::ZERO; ands.len() * n];
    for (ci, chunk) in ands.chunks(CHUNK).enumerate() {
        let l0 = ci * CHUNK;
        for (k, op) in chunk.iter().enumerate() {
            prepare(
                keys,
                n,
                nonce,
                op,
                first + l0 + k,
                &mut xs[k * per_gate..],
                &mut tws[k * per_gate..],
            );
        }
        let len = chunk.len() * per_gate;
        fixed_aes().hash_many(&xs[..len], |i| tws[i], &mut hs[..len]);
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
    let (a, b) = (op.a as usize * n, op.b as usize * n);
    let row = 2 * usize::from(keys[a].lsb()) + usize::from(keys[b].lsb());
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

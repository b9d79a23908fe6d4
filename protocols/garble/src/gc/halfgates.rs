//! Half-gates garbling (Zahur, Rosulek, Evans, "Two halves make a whole", Eurocrypt 2015, s.3)
//! with free-XOR (Kolesnikov-Schneider 2008) and point-and-permute.
//!
//! Secrets: the global offset `R` (lsb 1, so the lsb of a label is its permute bit) and every
//! zero-label `W^0`; the label of value v is `W^0 ^ v R`. Public: the tables (two blocks per
//! AND gate) and the decoding bits (lsb of each output zero-label).
//!
//! AND gate g with inputs a, b (`pa = lsb(A0)`, `pb = lsb(B0)`, tweaks `j = 2g`, `j' = 2g+1`):
//! ```text
//! TG = H(A0, j) ^ H(A1, j) ^ pb R          WG0 = H(A0, j) ^ pa TG
//! TE = H(B0, j') ^ H(B1, j') ^ A0          WE0 = H(B0, j') ^ pb (TE ^ A0)
//! C0 = WG0 ^ WE0,  table = (TG, TE)
//! evaluator: C = H(A, j) ^ sa TG  ^  H(B, j') ^ sb (TE ^ A)
//! ```
//! XOR: `C0 = A0 ^ B0`; INV: `C0 = A0 ^ R` (the evaluator copies its label).
//! `H` is TMMO (`crate::hash`, two AES calls): 8 AES calls per AND when garbling, 4 when
//! evaluating. Gates of one AND layer are independent, so their hashes go through AES 64 blocks
//! per call (16 gates when garbling, 32 when evaluating), eight-way pipelined inside the AES
//! backend.

use crate::circuit::{AndOp, LinOp, Program};

use super::{GcError, Result};
use crate::block::{Block, PackedBits};
use crate::hash::{domain, fixed_aes, tweak};

/// The garbler's output of garbling: the tables and the output zero-labels. The labels are
/// zeroized on drop and not printed (`Garbling { tables: N, output_zero: [redacted] }`).
#[derive(Clone)]
pub struct Garbling {
    /// Two blocks per AND gate, in the program's gate order (32 bytes per AND).
    pub tables: Vec<Block>,
    /// Zero-labels of the output wires (secret; their lsbs are the decoding bits).
    pub output_zero: Vec<Block>,
}

impl Drop for Garbling {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.output_zero);
    }
}

impl std::fmt::Debug for Garbling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Garbling")
            .field("tables", &self.tables.len())
            .field("output_zero", &seco_core::redact::Redacted)
            .finish()
    }
}

impl Garbling {
    /// Public decoding information: `lsb(W^0)` of every output wire.
    pub fn decode_bits(&self) -> PackedBits {
        let bits: Vec<bool> = self.output_zero.iter().map(|b| b.lsb()).collect();
        PackedBits::from_bools(&bits)
    }
}

/// Garbles `program` under offset `delta` (lsb must be 1) with the given input zero-labels.
pub fn garble(program: &Program, delta: Block, input_zero: &[Block]) -> Result<Garbling> {
    if !delta.lsb() {
        return Err(GcError::BadDelta);
    }
    check_len(
        "input labels",
        program.num_inputs as usize,
        input_zero.len(),
    )?;
    let mut w = vec![Block::ZERO; program.num_wires as usize];
    w[..input_zero.len()].copy_from_slice(input_zero);
    let mut tables = Vec::with_capacity(2 * program.num_and);
    let mut g = 0u64;
    for layer in &program.layers {
        linear(&mut w, &layer.linear, Some(delta));
        for chunk in layer.ands.chunks(GARBLE_CHUNK) {
            garble_chunk(&mut w, chunk, delta, g, &mut tables);
            g += chunk.len() as u64;
        }
    }
    let output_zero = program.outputs.iter().map(|&o| w[o as usize]).collect();
    Ok(Garbling {
        tables,
        output_zero,
    })
}

fn linear(w: &mut [Block], ops: &[LinOp], delta: Option<Block>) {
    for op in ops {
        match *op {
            LinOp::Xor { a, b, out } => w[out as usize] = w[a as usize] ^ w[b as usize],
            LinOp::Inv { a, out } => w[out as usize] = w[a as usize] ^ delta.unwrap_or(Block::ZERO),
        }
    }
}

#[inline(always)]
fn tweaks(g: u64) -> (Block, Block) {
    let j = u128::from(g) << 1;
    (
        tweak(domain::HALF_GATES, j),
        tweak(domain::HALF_GATES, j | 1),
    )
}

/// Table and output zero-label from the four hashes of one gate.
#[inline(always)]
fn assemble(a0: Block, b0: Block, h: [Block; 4], delta: Block) -> (Block, Block, Block) {
    let (pa, pb) = (a0.lsb(), b0.lsb());
    let tg = h[0] ^ h[1] ^ delta.select(pb);
    let wg0 = h[0] ^ tg.select(pa);
    let te = h[2] ^ h[3] ^ a0;
    let we0 = h[2] ^ (te ^ a0).select(pb);
    (tg, te, wg0 ^ we0)
}

/// Gates per batch of hashes when garbling (4 hashes each: 64 blocks per AES call).
const GARBLE_CHUNK: usize = 16;
/// Gates per batch of hashes when evaluating (2 hashes each: 64 blocks per AES call).
const EVAL_CHUNK: usize = 32;

fn garble_chunk(w: &mut [Block], ops: &[AndOp], delta: Block, g: u64, tables: &mut Vec<Block>) {
    let mut x = [Block::ZERO; 4 * GARBLE_CHUNK];
    let mut t = [Block::ZERO; 4 * GARBLE_CHUNK];
    for (i, op) in ops.iter().enumerate() {
        let (j0, j1) = tweaks(g + i as u64);
        let (a0, b0) = (w[op.a as usize], w[op.b as usize]);
        x[4 * i..4 * i + 4].copy_from_slice(&[a0, a0 ^ delta, b0, b0 ^ delta]);
        t[4 * i..4 * i + 4].copy_from_slice(&[j0, j0, j1, j1]);
    }
    let mut k = [Block::ZERO; 4 * GARBLE_CHUNK];
    let len = 4 * ops.len();
    fixed_aes().hash_many(&x[..len], |i| t[i], &mut k[..len]);
    for (i, op) in ops.iter().enumerate() {
        let h = [k[4 * i], k[4 * i + 1], k[4 * i + 2], k[4 * i + 3]];
        let (tg, te, c0) = assemble(w[op.a as usize], w[op.b as usize], h, delta);
        tables.push(tg);
        tables.push(te);
        w[op.out as usize] = c0;
    }
}

/// Evaluates garbled `tables` on the active input labels; returns the output labels.
pub fn evaluate(program: &Program, tables: &[Block], input_labels: &[Block]) -> Result<Vec<Block>> {
    check_len("garbled table blocks", 2 * program.num_and, tables.len())?;
    check_len(
        "input labels",
        program.num_inputs as usize,
        input_labels.len(),
    )?;
    let mut w = vec![Block::ZERO; program.num_wires as usize];
    w[..input_labels.len()].copy_from_slice(input_labels);
    let mut g = 0usize;
    for layer in &program.layers {
        linear(&mut w, &layer.linear, None);
        for chunk in layer.ands.chunks(EVAL_CHUNK) {
            eval_chunk(&mut w, chunk, g, tables);
            g += chunk.len();
        }
    }
    Ok(program.outputs.iter().map(|&o| w[o as usize]).collect())
}

fn eval_chunk(w: &mut [Block], ops: &[AndOp], g: usize, tables: &[Block]) {
    let mut x = [Block::ZERO; 2 * EVAL_CHUNK];
    let mut t = [Block::ZERO; 2 * EVAL_CHUNK];
    for (i, op) in ops.iter().enumerate() {
        let (j0, j1) = tweaks((g + i) as u64);
        x[2 * i] = w[op.a as usize];
        x[2 * i + 1] = w[op.b as usize];
        t[2 * i] = j0;
        t[2 * i + 1] = j1;
    }
    let mut k = [Block::ZERO; 2 * EVAL_CHUNK];
    let len = 2 * ops.len();
    fixed_aes().hash_many(&x[..len], |i| t[i], &mut k[..len]);
    for (i, op) in ops.iter().enumerate() {
        let (a, b) = (w[op.a as usize], w[op.b as usize]);
        let (tg, te) = (tables[2 * (g + i)], tables[2 * (g + i) + 1]);
        let wg = k[2 * i] ^ tg.select(a.lsb());
        let we = k[2 * i + 1] ^ (te ^ a).select(b.lsb());
        w[op.out as usize] = wg ^ we;
    }
}

/// Decodes output labels with the decoding bits.
pub fn decode(output_labels: &[Block], decode_bits: &PackedBits) -> Result<Vec<bool>> {
    check_len("decoding bits", output_labels.len(), decode_bits.len())?;
    Ok(output_labels
        .iter()
        .enumerate()
        .map(|(i, l)| l.lsb() ^ decode_bits.get(i))
        .collect())
}

fn check_len(what: &'static str, expected: usize, actual: usize) -> Result<()> {
    if expected != actual {
        return Err(GcError::Length {
            what,
            expected,
            actual,
        });
    }
    Ok(())
}

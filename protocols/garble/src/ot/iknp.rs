//! IKNP OT extension (Ishai, Kilian, Nissim, Petrank, Crypto 2003, semi-honest), producing
//! correlated OT with a global correlation, from which random and chosen-message OT follow.
//!
//! Roles are crossed: the extension *sender* S holds `delta = s` (128 bits) and is the
//! base-OT *receiver* with choices `s`; the extension *receiver* R is the base-OT sender with
//! seed pairs `(k_j^0, k_j^1)`, `j < 128`. For m OTs with choices `r`:
//! ```text
//! R: t^j = G(k_j^0),  u^j = t^j ^ G(k_j^1) ^ r        (columns of m bits)  --u-->  S
//! S: q^j = G(k_j^{s_j}) ^ s_j u^j = t^j ^ s_j r
//! rows: q_i = t_i ^ r_i s                              (transpose of the columns)
//! ```
//! so `(q_i, t_i)` is a correlated OT with correlation `delta`: `t_i = q_i ^ r_i delta`. The
//! PRG `G` is AES-128 in counter mode keyed by the seed; its counter continues across calls so
//! that one setup serves many extensions. Random OT: S gets `H(q_i), H(q_i ^ delta)`, R gets
//! `H(t_i)` with the correlation-robust hash of `crate::hash` (tweak = global OT index).
//! Private: `delta`, the seeds, `r`. Public: the columns `u` (16 bytes per OT).
//!
//! Reuse: [`IknpReceiverBase`] / [`IknpSenderBase`] keep the base-OT outputs and derive one
//! independent extension per nonce (`extension_seed`), so a pair of parties runs its 128 base
//! OTs once per session and every later protocol instance extends with its own nonce.
//!
//! `delta` is chosen by the sender: garbling uses its free-XOR offset (lsb 1), so the rows are
//! directly the label correlation (127 bits of the offset stay secret).

use aes::cipher::{generic_array::GenericArray, BlockEncrypt, KeyInit};
use aes::Aes128Enc;
use rand::{CryptoRng, Rng};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use super::base::{BaseOtReceiver, BaseOtSender, BaseReceiverMsg, BaseSenderMsg};
use super::transpose::columns_to_rows;
use super::{OtError, Result};
use crate::block::{blocks_bytes, Block};
use crate::hash::{domain, fixed_aes, tweak};

/// Security parameter: number of base OTs and width of a row.
pub const KAPPA: usize = 128;

/// Most OTs in one extension message (2^26: a 1 GiB message).
pub const MAX_EXTEND: usize = 1 << 26;

/// The receiver's extension message: 128 columns of `count` bits (padded to blocks).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtendMsg {
    pub count: u64,
    /// Column-major: `u[j * nb + b]`, `nb = ceil(count / 128)`.
    #[serde(with = "blocks_bytes")]
    pub u: Vec<Block>,
}

/// AES-CTR expansion of one seed.
struct Prg {
    cipher: Aes128Enc,
}

impl Prg {
    fn new(seed: Block) -> Self {
        Prg {
            cipher: Aes128Enc::new(&GenericArray::from(seed.to_bytes())),
        }
    }
    /// Blocks `ctr..ctr + n` of the stream, XORed into `out` (64 blocks per AES call, no
    /// allocation).
    fn xor_into(&self, ctr: u64, out: &mut [u128]) {
        let mut buf = [GenericArray::default(); 64];
        for (c, chunk) in out.chunks_mut(64).enumerate() {
            let base = ctr + 64 * c as u64;
            for (i, b) in buf.iter_mut().enumerate().take(chunk.len()) {
                *b = GenericArray::from(u128::from(base + i as u64).to_le_bytes());
            }
            self.cipher.encrypt_blocks(&mut buf[..chunk.len()]);
            for (o, b) in chunk.iter_mut().zip(&buf) {
                let mut a = [0u8; 16];
                a.copy_from_slice(b);
                *o ^= u128::from_le_bytes(a);
            }
        }
    }
}

/// Extension sender before its base OTs finish. Every IKNP state prints as `Type([redacted])`;
/// `delta` is zeroized on drop, the PRGs' expanded AES keys are (`aes`'s `zeroize` feature).
pub struct IknpSenderSetup {
    delta: Zeroizing<Block>,
    base: BaseOtReceiver,
}

/// Extension receiver before its base OTs finish.
pub struct IknpReceiverSetup {
    base: BaseOtSender,
}

/// Extension sender: holds `delta` and one PRG per base OT.
pub struct IknpSender {
    delta: Block,
    prgs: Vec<Prg>,
    ctr: u64,
    next_index: u64,
}

/// Extension receiver: holds both PRGs per base OT.
pub struct IknpReceiver {
    prgs: Vec<[Prg; 2]>,
    ctr: u64,
    next_index: u64,
}

seco_core::redacted_debug!(IknpSenderSetup);
seco_core::redacted_debug!(IknpReceiverSetup);
seco_core::redacted_debug!(IknpSender);
seco_core::redacted_debug!(IknpReceiver);
seco_core::redacted_debug!(IknpSenderBase);
seco_core::redacted_debug!(IknpReceiverBase);

impl Drop for IknpSender {
    fn drop(&mut self) {
        self.delta.zeroize();
    }
}

fn delta_bits(delta: Block) -> Vec<bool> {
    (0..KAPPA).map(|j| (delta.0 >> j) & 1 == 1).collect()
}

impl IknpSenderSetup {
    /// Starts the base OTs (as their receiver, choices = bits of `delta`).
    pub fn new<R: Rng + CryptoRng + ?Sized>(
        rng: &mut R,
        sid: [u8; 16],
        delta: Block,
    ) -> (Self, BaseReceiverMsg) {
        let (base, msg) = BaseOtReceiver::new(rng, sid, &delta_bits(delta));
        (
            IknpSenderSetup {
                delta: Zeroizing::new(delta),
                base,
            },
            msg,
        )
    }

    /// Finishes the base OTs.
    pub fn finish(self, msg: &BaseSenderMsg) -> Result<IknpSender> {
        let seeds = self.base.finish(msg)?;
        Ok(IknpSender {
            delta: *self.delta,
            prgs: seeds.into_iter().map(Prg::new).collect(),
            ctr: 0,
            next_index: 0,
        })
    }
}

impl IknpReceiverSetup {
    /// Starts the base OTs (as their sender).
    pub fn new<R: Rng + CryptoRng + ?Sized>(rng: &mut R, sid: [u8; 16]) -> (Self, BaseSenderMsg) {
        let (base, msg) = BaseOtSender::new(rng, sid, KAPPA);
        (IknpReceiverSetup { base }, msg)
    }

    /// Finishes the base OTs.
    pub fn finish(self, msg: &BaseReceiverMsg) -> Result<IknpReceiver> {
        let seeds = self.base.finish(msg)?;
        let prgs = seeds
            .into_iter()
            .map(|[k0, k1]| [Prg::new(k0), Prg::new(k1)])
            .collect();
        Ok(IknpReceiver {
            prgs,
            ctr: 0,
            next_index: 0,
        })
    }
}

/// The base OTs of an extension receiver, kept to derive any number of independent
/// extensions ([`IknpReceiverBase::extension`]): the base OTs run once per pair of parties and
/// session, each extension gets its own PRG streams (zeroized on drop).
#[derive(zeroize::ZeroizeOnDrop)]
pub struct IknpReceiverBase {
    seeds: Vec<[Block; 2]>,
}

/// The base OTs of an extension sender (its correlation `delta` = its base-OT choices and the
/// seeds it received), kept to derive any number of extensions (zeroized on drop).
#[derive(zeroize::ZeroizeOnDrop)]
pub struct IknpSenderBase {
    delta: Block,
    seeds: Vec<Block>,
}

/// The seed of column `j` of the extension `nonce`: `BLAKE3-derive("seco iknp extension seed
/// v1"; nonce, j, seed)`, i.e. a PRF keyed by the base-OT seed. Both ends derive the same seed
/// from `k_j^{s_j}`; extensions with distinct nonces get independent streams, as if one long
/// PRG output had been cut into pieces, which is what IKNP's security allows (one set of base
/// OTs, one correlation `delta`, any number of extension calls).
fn extension_seed(seed: Block, nonce: &[u8; 16], j: usize) -> Block {
    let mut h = blake3::Hasher::new_derive_key("seco iknp extension seed v1");
    h.update(nonce);
    h.update(&(j as u64).to_le_bytes());
    h.update(&seed.to_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.finalize().as_bytes()[..16]);
    Block::from_bytes(out)
}

fn check_kappa(what: &'static str, actual: usize) -> Result<()> {
    if actual != KAPPA {
        return Err(OtError::Length {
            what,
            expected: KAPPA,
            actual,
        });
    }
    Ok(())
}

impl IknpReceiverBase {
    /// From the base-OT sender's outputs `(k_j^0, k_j^1)`, `j < 128`.
    pub fn new(seeds: Vec<[Block; 2]>) -> Result<Self> {
        check_kappa("base OT seed pairs", seeds.len())?;
        Ok(Self { seeds })
    }

    /// A fresh extension receiver for `nonce`. A nonce must be used at most once per base
    /// (two extensions with one nonce would reveal the XOR of their choice vectors).
    pub fn extension(&self, nonce: &[u8; 16]) -> IknpReceiver {
        let prgs = self
            .seeds
            .iter()
            .enumerate()
            .map(|(j, [k0, k1])| {
                [
                    Prg::new(extension_seed(*k0, nonce, j)),
                    Prg::new(extension_seed(*k1, nonce, j)),
                ]
            })
            .collect();
        IknpReceiver {
            prgs,
            ctr: 0,
            next_index: 0,
        }
    }
}

impl IknpSenderBase {
    /// From the base-OT receiver's choices `delta` and outputs `k_j^{delta_j}`.
    pub fn new(delta: Block, seeds: Vec<Block>) -> Result<Self> {
        check_kappa("base OT seeds", seeds.len())?;
        Ok(Self { delta, seeds })
    }

    /// The correlation of every extension of this base.
    pub fn delta(&self) -> Block {
        self.delta
    }

    /// A fresh extension sender for `nonce` (the receiver's [`IknpReceiverBase::extension`]
    /// with the same nonce is its peer).
    pub fn extension(&self, nonce: &[u8; 16]) -> IknpSender {
        let prgs = self
            .seeds
            .iter()
            .enumerate()
            .map(|(j, k)| Prg::new(extension_seed(*k, nonce, j)))
            .collect();
        IknpSender {
            delta: self.delta,
            prgs,
            ctr: 0,
            next_index: 0,
        }
    }
}

/// Packs choice bits into 128-bit blocks (bit i of block b = choice 128b + i).
fn pack(choices: &[bool], nb: usize) -> Vec<u128> {
    let mut r = vec![0u128; nb];
    for (i, &c) in choices.iter().enumerate() {
        r[i / 128] |= u128::from(c) << (i % 128);
    }
    r
}

impl IknpReceiver {
    /// Extends `choices.len()` correlated OTs: returns the message for the sender and the rows
    /// `t_i` (with `t_i = q_i ^ choices[i] * delta`), and the global index of the first OT.
    pub fn extend(&mut self, choices: &[bool]) -> (ExtendMsg, Vec<Block>, u64) {
        let m = choices.len();
        let nb = m.div_ceil(128);
        let r = pack(choices, nb);
        let mut t = vec![0u128; KAPPA * nb];
        let mut u = vec![0u128; KAPPA * nb];
        for (j, [p0, p1]) in self.prgs.iter().enumerate() {
            let (tj, uj) = (&mut t[j * nb..(j + 1) * nb], &mut u[j * nb..(j + 1) * nb]);
            p0.xor_into(self.ctr, tj);
            p1.xor_into(self.ctr, uj);
            for b in 0..nb {
                uj[b] ^= tj[b] ^ r[b];
            }
        }
        self.ctr += nb as u64;
        let first = self.next_index;
        self.next_index += m as u64;
        let rows = columns_to_rows(&t, nb, m).into_iter().map(Block).collect();
        (
            ExtendMsg {
                count: m as u64,
                u: u.into_iter().map(Block).collect(),
            },
            rows,
            first,
        )
    }
}

impl IknpSender {
    /// The global correlation.
    pub fn delta(&self) -> Block {
        self.delta
    }

    /// Processes the receiver's extension of `expected` OTs: returns the rows `q_i` and the
    /// global index of the first OT.
    pub fn extend(&mut self, msg: &ExtendMsg, expected: usize) -> Result<(Vec<Block>, u64)> {
        if msg.count != expected as u64 || expected > MAX_EXTEND {
            return Err(OtError::Length {
                what: "extension OT count",
                expected,
                actual: msg.count as usize,
            });
        }
        let nb = expected.div_ceil(128);
        if msg.u.len() != KAPPA * nb {
            return Err(OtError::Length {
                what: "extension columns",
                expected: KAPPA * nb,
                actual: msg.u.len(),
            });
        }
        let mut q = vec![0u128; KAPPA * nb];
        for (j, prg) in self.prgs.iter().enumerate() {
            let qj = &mut q[j * nb..(j + 1) * nb];
            prg.xor_into(self.ctr, qj);
            if (self.delta.0 >> j) & 1 == 1 {
                for (b, x) in qj.iter_mut().enumerate() {
                    *x ^= msg.u[j * nb + b].0;
                }
            }
        }
        self.ctr += nb as u64;
        let first = self.next_index;
        self.next_index += expected as u64;
        Ok((
            columns_to_rows(&q, nb, expected)
                .into_iter()
                .map(Block)
                .collect(),
            first,
        ))
    }
}

/// Random-OT outputs of the sender: `(H(q_i), H(q_i ^ delta))` with tweak `first + i`.
pub fn rot_sender(q: &[Block], delta: Block, first: u64) -> Vec<[Block; 2]> {
    let aes = fixed_aes();
    let tw = |i: usize| tweak(domain::OT, u128::from(first + i as u64));
    let mut h0 = vec![Block::ZERO; q.len()];
    let mut h1 = vec![Block::ZERO; q.len()];
    aes.hash_many(q, tw, &mut h0);
    let q1: Vec<Block> = q.iter().map(|&x| x ^ delta).collect();
    aes.hash_many(&q1, tw, &mut h1);
    h0.into_iter().zip(h1).map(|(a, b)| [a, b]).collect()
}

/// Random-OT outputs of the receiver: `H(t_i)` with tweak `first + i`.
pub fn rot_receiver(t: &[Block], first: u64) -> Vec<Block> {
    let mut out = vec![Block::ZERO; t.len()];
    fixed_aes().hash_many(
        t,
        |i| tweak(domain::OT, u128::from(first + i as u64)),
        &mut out,
    );
    out
}

/// Chosen-message OT from random OT: the sender's ciphertexts `m_b ^ k_b`.
pub fn chosen_encrypt(keys: &[[Block; 2]], messages: &[[Block; 2]]) -> Result<Vec<[Block; 2]>> {
    if keys.len() != messages.len() {
        return Err(OtError::Length {
            what: "chosen messages",
            expected: keys.len(),
            actual: messages.len(),
        });
    }
    Ok(keys
        .iter()
        .zip(messages)
        .map(|(k, m)| [k[0] ^ m[0], k[1] ^ m[1]])
        .collect())
}

/// The receiver's decryption: `y_{c_i} ^ k_i`.
pub fn chosen_decrypt(keys: &[Block], choices: &[bool], cts: &[[Block; 2]]) -> Result<Vec<Block>> {
    if keys.len() != cts.len() || choices.len() != cts.len() {
        return Err(OtError::Length {
            what: "chosen ciphertexts",
            expected: keys.len(),
            actual: cts.len(),
        });
    }
    Ok(keys
        .iter()
        .zip(choices)
        .zip(cts)
        .map(|((k, &c), y)| y[usize::from(c)] ^ *k)
        .collect())
}

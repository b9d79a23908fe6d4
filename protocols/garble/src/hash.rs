//! Fixed-key AES and the hash built from it.
//!
//! `pi` is AES-128 under a fixed public key (Bellare, Hoang, Keelveedhi, Rogaway, S&P 2013).
//! The hash is TMMO of Guo, Katz, Wang and Yu ("Efficient and secure multiparty computation
//! from fixed-key block ciphers", S&P 2020, eprint 2019/074, s.7):
//!
//! ```text
//! H(x, t) = pi(pi(x) ^ t) ^ pi(x)
//! ```
//!
//! GKWY20 s.7 prove TMMO tweakable circular correlation robust (TCCR) in the random-permutation
//! model, which is what half-gates (with tweaks), IKNP random OT and the BMR row PRF need. The
//! tweak `t` is unique per use (gate index, party, row, domain byte, and for BMR a 56-bit
//! per-garbling nonce; see [`tweak`], [`tweak_in`]).
//!
//! Cost: two AES calls per hash, but the first, `pi(x)`, does not depend on the tweak, so an
//! input hashed under several tweaks needs it once ([`FixedKeyAes::permute_many`], then
//! [`FixedKeyAes::hash_permuted_many`]). AES calls per AND gate: half-gates garbler 8 (4 hashes
//! of 4 distinct inputs), evaluator 4 (2 hashes); BMR keyed garbler with `k` key slots `4 + 8k`
//! (4 distinct keys `ka, ka ^ R, kb, kb ^ R` under `8k` tweaks), evaluator with `n` key slots
//! `2n + 2n^2` (2n keys under `2n^2` tweaks). The slice functions call AES on 64 blocks at a
//! time so the AES-NI pipeline stays full.
//!
//! Security in words: the advantage of an adversary against TCCR grows with (its queries to
//! `pi`, i.e. its offline AES evaluations `q`) x (the hash calls under one secret offset `R`)
//! / 2^128. Hash calls under one offset are a small multiple of the AND gates garbled under it
//! (4 per AND for half-gates, `8k` for a BMR garbler). A BMR garbler's offset lasts a session
//! (one OT setup, `bmr/setup.rs`), whose garblings are separated by the 56-bit tweak nonce;
//! with at most 2^40 AND gates under one session offset (a session's bundles are bounded by the
//! key lifetime of `docs/mhe.md`, "Lifetime of a key", times the AND gates per bundle, e.g.
//! cifar-cnn about 4 million = 2^22 per bundle) the security stays above about
//! `128 - 40 - log2(q)` bits, less the few bits of hashes per AND.
//!
//! Measured (`cargo bench -p seco-protocols --bench gc_halfgates`, one core, AES-NI,
//! 2026-12-05): `hash_many` 216 M hashes/s (432 M AES blocks/s), `hash` one at a time 43 M/s;
//! the one-call MMO-sigma hash it replaces ran at 324-346 M/s in batches
//! (`docs/garbled-circuits.md`, "Benchmarks").
//!
//! Version choice: `aes` 0.8 rather than 0.9. Measured here (x86-64 with AES-NI/VAES, release):
//! 0.8: 73 M/s chained single blocks, 459 M/s independent single-block calls, 622 M/s in
//! batches of 8; 0.9.4: 19 M/s, 18 M/s and 114 M/s. 0.8 inlines its AES-NI path; 0.9's
//! per-call dispatch dominates small batches.

use std::sync::OnceLock;

use aes::cipher::{generic_array::GenericArray, BlockEncrypt, KeyInit};
use aes::Aes128Enc;

use crate::block::Block;

/// The fixed public AES key (the first 16 bytes of the BLAKE3 hash of "seco fixed-key aes").
fn fixed_key() -> [u8; 16] {
    let h = blake3::hash(b"seco fixed-key aes");
    let mut k = [0u8; 16];
    k.copy_from_slice(&h.as_bytes()[..16]);
    k
}

/// Fixed-key AES-128 as a public permutation `pi`.
pub struct FixedKeyAes {
    cipher: Aes128Enc,
}

/// The process-wide fixed-key AES instance.
pub fn fixed_aes() -> &'static FixedKeyAes {
    static AES: OnceLock<FixedKeyAes> = OnceLock::new();
    AES.get_or_init(|| FixedKeyAes {
        cipher: Aes128Enc::new(&GenericArray::from(fixed_key())),
    })
}

/// Domains of the hash tweak (top byte), so that no two uses ever share a tweak.
pub mod domain {
    /// Half-gates garbling (`gc::halfgates`).
    pub const HALF_GATES: u8 = 1;
    /// BMR garbled-row PRF.
    pub const BMR_PRF: u8 = 2;
    /// Random-OT outputs of IKNP.
    pub const OT: u8 = 3;
    /// Bit products from correlated OT (BMR offline).
    pub const BIT_OT: u8 = 4;
}

/// A tweak: domain byte on top, then a 120-bit index.
#[inline(always)]
pub fn tweak(domain: u8, index: u128) -> Block {
    Block((u128::from(domain) << 120) | (index & ((1u128 << 120) - 1)))
}

/// A tweak of one protocol instance among many that share an offset: domain byte on top, then
/// a 56-bit instance nonce, then a 64-bit index. BMR garblings drawn from one OT setup share
/// each garbler's offset for the whole session; the nonce (derived from the garbling id) keeps
/// their tweaks apart, so no (input, tweak) pair of one garbling recurs in another.
#[inline(always)]
pub fn tweak_in(domain: u8, nonce: u64, index: u64) -> Block {
    Block(
        (u128::from(domain) << 120)
            | (u128::from(nonce & ((1u64 << 56) - 1)) << 64)
            | u128::from(index),
    )
}

#[inline(always)]
fn to_ga(b: Block) -> GenericArray<u8, aes::cipher::consts::U16> {
    GenericArray::from(b.to_bytes())
}

#[inline(always)]
fn from_ga(g: &GenericArray<u8, aes::cipher::consts::U16>) -> Block {
    let mut a = [0u8; 16];
    a.copy_from_slice(g);
    Block::from_bytes(a)
}

impl FixedKeyAes {
    /// `pi(x)`.
    #[inline(always)]
    pub fn permute(&self, x: Block) -> Block {
        let mut g = to_ga(x);
        self.cipher.encrypt_block(&mut g);
        from_ga(&g)
    }

    /// `pi` on a batch, in place.
    #[inline(always)]
    pub fn permute_batch<const N: usize>(&self, x: &mut [Block; N]) {
        let mut g = x.map(to_ga);
        self.cipher.encrypt_blocks(&mut g);
        for (o, gi) in x.iter_mut().zip(g.iter()) {
            *o = from_ga(gi);
        }
    }

    /// `pi(x[i])` for a slice, 64 blocks per AES call; `out` must be as long as `x`.
    pub fn permute_many(&self, x: &[Block], out: &mut [Block]) {
        debug_assert_eq!(x.len(), out.len());
        let mut g = [GenericArray::default(); BATCH];
        for (xc, oc) in x.chunks(BATCH).zip(out.chunks_mut(BATCH)) {
            let m = xc.len().min(oc.len());
            for (gi, &xi) in g.iter_mut().zip(&xc[..m]) {
                *gi = to_ga(xi);
            }
            self.cipher.encrypt_blocks(&mut g[..m]);
            for (oi, gi) in oc[..m].iter_mut().zip(g.iter()) {
                *oi = from_ga(gi);
            }
        }
    }

    /// `H(x, t) = pi(pi(x) ^ t) ^ pi(x)` (TMMO, two AES calls).
    #[inline(always)]
    pub fn hash(&self, x: Block, t: Block) -> Block {
        let px = self.permute(x);
        self.permute(px ^ t) ^ px
    }

    /// `H` on a batch of (input, tweak) pairs.
    #[inline(always)]
    pub fn hash_batch<const N: usize>(&self, x: &[Block; N], t: &[Block; N]) -> [Block; N] {
        let mut px = *x;
        self.permute_batch(&mut px);
        let mut k: [Block; N] = std::array::from_fn(|i| px[i] ^ t[i]);
        self.permute_batch(&mut k);
        for (o, p) in k.iter_mut().zip(px) {
            *o ^= p;
        }
        k
    }

    /// `H(x[i], t(i))` for a slice, 64 blocks per AES call (one backend dispatch, eight-way
    /// pipelined inside; two calls per 64 blocks); `out` must be as long as `x`.
    pub fn hash_many(&self, x: &[Block], t: impl Fn(usize) -> Block, out: &mut [Block]) {
        debug_assert_eq!(x.len(), out.len());
        let n = x.len().min(out.len());
        let mut px = [Block::ZERO; BATCH];
        let mut g = [GenericArray::default(); BATCH];
        let mut i = 0;
        while i < n {
            let m = (n - i).min(BATCH);
            for j in 0..m {
                g[j] = to_ga(x[i + j]);
            }
            self.cipher.encrypt_blocks(&mut g[..m]);
            for j in 0..m {
                px[j] = from_ga(&g[j]);
                g[j] = to_ga(px[j] ^ t(i + j));
            }
            self.cipher.encrypt_blocks(&mut g[..m]);
            for j in 0..m {
                out[i + j] = from_ga(&g[j]) ^ px[j];
            }
            i += m;
        }
    }

    /// `H` from already permuted inputs: `pi(px[i] ^ t(i)) ^ px[i]` with `px[i] = pi(x[i])`
    /// (from [`Self::permute_many`]) equals `H(x[i], t(i))`. One AES call per hash: an input
    /// hashed under several tweaks needs its first call once. 64 blocks per AES call; `out`
    /// must be as long as `px`.
    pub fn hash_permuted_many(&self, px: &[Block], t: impl Fn(usize) -> Block, out: &mut [Block]) {
        debug_assert_eq!(px.len(), out.len());
        let n = px.len().min(out.len());
        let mut g = [GenericArray::default(); BATCH];
        let mut i = 0;
        while i < n {
            let m = (n - i).min(BATCH);
            for j in 0..m {
                g[j] = to_ga(px[i + j] ^ t(i + j));
            }
            self.cipher.encrypt_blocks(&mut g[..m]);
            for j in 0..m {
                out[i + j] = from_ga(&g[j]) ^ px[i + j];
            }
            i += m;
        }
    }
}

/// Blocks per AES call in the slice functions.
const BATCH: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha12Rng;

    fn inputs(n: usize, seed: u64) -> (Vec<Block>, Vec<Block>) {
        let mut r = ChaCha12Rng::seed_from_u64(seed);
        let x = (0..n).map(|_| Block::random(&mut r)).collect();
        let t = (0..n)
            .map(|i| tweak_in(domain::BMR_PRF, 5, i as u64))
            .collect();
        (x, t)
    }

    /// TMMO by its definition, with single-block `pi`.
    fn tmmo(x: Block, t: Block) -> Block {
        let a = fixed_aes();
        a.permute(a.permute(x) ^ t) ^ a.permute(x)
    }

    #[test]
    fn hash_is_tmmo() {
        let (x, t) = inputs(50, 1);
        for (&x, &t) in x.iter().zip(&t) {
            assert_eq!(fixed_aes().hash(x, t), tmmo(x, t));
        }
        // The tweak matters, and pi is not the identity.
        assert_ne!(fixed_aes().hash(x[0], t[0]), fixed_aes().hash(x[0], t[1]));
        assert_ne!(fixed_aes().permute(x[0]), x[0]);
    }

    #[test]
    fn hash_batch_is_tmmo() {
        let (x, t) = inputs(8, 2);
        let x: [Block; 8] = x.try_into().unwrap();
        let t: [Block; 8] = t.try_into().unwrap();
        let h = fixed_aes().hash_batch(&x, &t);
        for i in 0..8 {
            assert_eq!(h[i], tmmo(x[i], t[i]));
        }
    }

    #[test]
    fn slice_functions_are_tmmo_at_odd_lengths() {
        let aes = fixed_aes();
        for n in [0, 1, 7, 63, 64, 65, 129, 200, 1000] {
            let (x, t) = inputs(n, 3 + n as u64);
            let mut px = vec![Block::ZERO; n];
            aes.permute_many(&x, &mut px);
            for i in 0..n {
                assert_eq!(px[i], aes.permute(x[i]), "permute_many, n = {n}, i = {i}");
            }
            let mut h = vec![Block::ZERO; n];
            aes.hash_many(&x, |i| t[i], &mut h);
            for i in 0..n {
                assert_eq!(h[i], tmmo(x[i], t[i]), "hash_many, n = {n}, i = {i}");
            }
            let mut hp = vec![Block::ZERO; n];
            aes.hash_permuted_many(&px, |i| t[i], &mut hp);
            assert_eq!(hp, h, "hash_permuted_many, n = {n}");
        }
    }

    #[test]
    fn one_permuted_input_under_many_tweaks() {
        // A key hashed under several tweaks: permute once, hash from the permuted copies.
        let aes = fixed_aes();
        let (x, t) = inputs(3, 9);
        let idx: Vec<usize> = (0..150).map(|i| (i * 7) % 3).collect();
        let tw = |i: usize| t[idx[i] % 3] ^ Block(i as u128);
        let mut px = vec![Block::ZERO; 3];
        aes.permute_many(&x, &mut px);
        let spread: Vec<Block> = idx.iter().map(|&k| px[k]).collect();
        let mut hp = vec![Block::ZERO; idx.len()];
        aes.hash_permuted_many(&spread, tw, &mut hp);
        let xs: Vec<Block> = idx.iter().map(|&k| x[k]).collect();
        let mut h = vec![Block::ZERO; idx.len()];
        aes.hash_many(&xs, tw, &mut h);
        assert_eq!(hp, h);
        for i in 0..idx.len() {
            assert_eq!(h[i], tmmo(xs[i], tw(i)));
        }
    }
}

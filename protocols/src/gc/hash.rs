//! Fixed-key AES and the hash built from it.
//!
//! `pi` is AES-128 under a fixed public key (Bellare, Hoang, Keelveedhi, Rogaway, S&P 2013).
//! The hash is the MMO construction with the linear orthomorphism `sigma` of Guo, Katz, Wang
//! and Yu ("Efficient and secure multiparty computation from fixed-key block ciphers", S&P 2020,
//! eprint 2019/074, s.7), with the tweak folded into the input:
//!
//! ```text
//! sigma(xL || xR) = (xL ^ xR) || xL          (64-bit halves)
//! H(x, t)         = pi(K) ^ K,  K = sigma(x) ^ t
//! ```
//!
//! `x -> pi(sigma(x)) ^ sigma(x)` is circular correlation robust (GKWY20, Thm. 7.1); the tweak
//! `t` is unique per use (gate index, party, row, domain byte; see [`tweak`]). This is one AES
//! call per hash, the cost model of DESIGN.md s.9 (4 AES per garbled AND). The construction that
//! GKWY20 s.7.4 *proves* tweakable-CCR, `pi(pi(x) ^ t) ^ pi(x)`, costs two calls; it is the
//! conservative alternative if a proof for the folded tweak is required (see the module docs of
//! `gc` for the trade-off). Hashes of independent inputs are computed in batches of 8 so the
//! AES-NI pipeline stays full (DESIGN.md s.9).
//!
//! Version choice: `aes` 0.8 rather than 0.9. Measured here (x86-64 with AES-NI/VAES, release):
//! 0.8: 73 M/s chained single blocks, 459 M/s independent single-block calls, 622 M/s in
//! batches of 8; 0.9.4: 19 M/s, 18 M/s and 114 M/s. 0.8 inlines its AES-NI path; 0.9's
//! per-call dispatch dominates small batches.

use std::sync::OnceLock;

use aes::cipher::{generic_array::GenericArray, BlockEncrypt, KeyInit};
use aes::Aes128Enc;

use super::block::Block;

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

/// The linear orthomorphism `sigma(xL || xR) = (xL ^ xR) || xL`.
#[inline(always)]
pub fn sigma(x: Block) -> Block {
    let hi = (x.0 >> 64) as u64;
    let lo = x.0 as u64;
    Block((u128::from(hi ^ lo) << 64) | u128::from(hi))
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

    /// MMO on prepared inputs: `k -> pi(k) ^ k`, in place (callers pass `sigma(x) ^ t`).
    #[inline(always)]
    pub fn mmo_batch<const N: usize>(&self, k: &mut [Block; N]) {
        let orig = *k;
        self.permute_batch(k);
        for (o, i) in k.iter_mut().zip(orig) {
            *o ^= i;
        }
    }

    /// `H(x, t) = pi(sigma(x) ^ t) ^ sigma(x) ^ t`.
    #[inline(always)]
    pub fn hash(&self, x: Block, t: Block) -> Block {
        let k = sigma(x) ^ t;
        self.permute(k) ^ k
    }

    /// `H` on a batch of (input, tweak) pairs.
    #[inline(always)]
    pub fn hash_batch<const N: usize>(&self, x: &[Block; N], t: &[Block; N]) -> [Block; N] {
        let mut k: [Block; N] = std::array::from_fn(|i| sigma(x[i]) ^ t[i]);
        self.mmo_batch(&mut k);
        k
    }

    /// MMO on prepared inputs of any length, in place, 64 blocks per AES call.
    pub fn mmo_slice(&self, k: &mut [Block]) {
        let mut g = [GenericArray::default(); 64];
        for chunk in k.chunks_mut(64) {
            for (gi, &ki) in g.iter_mut().zip(chunk.iter()) {
                *gi = to_ga(ki);
            }
            self.cipher.encrypt_blocks(&mut g[..chunk.len()]);
            for (ki, gi) in chunk.iter_mut().zip(g.iter()) {
                *ki ^= from_ga(gi);
            }
        }
    }

    /// `H(x[i], t(i))` for a slice, 64 blocks per AES call (one backend dispatch, eight-way
    /// pipelined inside); `out` must be as long as `x`.
    pub fn hash_many(&self, x: &[Block], t: impl Fn(usize) -> Block, out: &mut [Block]) {
        const B: usize = 64;
        let n = x.len().min(out.len());
        let mut k = [Block::ZERO; B];
        let mut g = [GenericArray::default(); B];
        let mut i = 0;
        while i < n {
            let m = (n - i).min(B);
            for j in 0..m {
                k[j] = sigma(x[i + j]) ^ t(i + j);
                g[j] = to_ga(k[j]);
            }
            self.cipher.encrypt_blocks(&mut g[..m]);
            for j in 0..m {
                out[i + j] = from_ga(&g[j]) ^ k[j];
            }
            i += m;
        }
    }
}

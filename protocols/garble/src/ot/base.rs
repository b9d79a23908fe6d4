//! Base oblivious transfer on Ristretto: the Masny-Rindal "endemic" OT (Masny, Rindal,
//! "Endemic oblivious transfer", CCS 2019, Fig. 8 instantiated with a random-oracle
//! hash-to-group), producing *random* OTs: the sender gets `(m0, m1)`, the receiver `m_c`.
//!
//! ```text
//! receiver (choice c, OT i)                    sender
//!   b <- Zq, B = bG                              a <- Zq, A = aG      (one A for all i)
//!   r_{1-c} <- G uniform
//!   r_c = B - Hg(i, r_{1-c})
//!   ------------ (r_0, r_1) ------------>   <------- A -------
//!   m_c = KDF(i, A, r_0, r_1, bA)            m_b = KDF(i, A, r_0, r_1, a (r_b + Hg(i, r_{1-b})))
//! ```
//! Both messages are independent of each other, so the base OT is a single round in which each
//! side sends one message. Private inputs: c (receiver), a and b (ephemeral). Public: A, r_0,
//! r_1.
//!
//! # Why not Chou-Orlandi ("simplest OT", CO15)
//! CO15 is two messages in sequence (B depends on A) and has known pitfalls: its original
//! security proof was flawed and the protocol is not UC-secure as claimed (Genc, Iovino, Rial,
//! eprint 2017/370; Hauck, Loss, eprint 2017/1011); a malicious receiver can correlate the two
//! keys unless the KDF binds A and B; on curves with a cofactor a low-order A breaks the
//! receiver's privacy. Masny-Rindal has a UC proof in the random-oracle model, needs no
//! ordering between the two messages, and Ristretto (a prime-order group) removes the
//! cofactor issue. The KDF binds the index, A, r_0 and r_1; points that do not decode and an
//! identity A are refused.

use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::Identity;
use rand::{CryptoRng, Rng};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{OtError, Result};
use crate::block::Block;

/// The sender's message: its public point A.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseSenderMsg {
    pub a: [u8; 32],
}

/// The receiver's message: `(r_0, r_1)` per OT.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseReceiverMsg {
    pub r: Vec<([u8; 32], [u8; 32])>,
}

fn random_scalar<R: Rng + CryptoRng + ?Sized>(rng: &mut R) -> Scalar {
    let mut wide = Zeroizing::new([0u8; 64]);
    rng.fill_bytes(wide.as_mut());
    Scalar::from_bytes_mod_order_wide(&wide)
}

/// Hash to the group: `Hg(sid, i, r)`.
fn hash_to_group(sid: &[u8; 16], i: usize, r: &[u8; 32]) -> RistrettoPoint {
    let mut h = blake3::Hasher::new_derive_key("seco ot mr19 hash-to-group v1");
    h.update(sid);
    h.update(&(i as u64).to_le_bytes());
    h.update(r);
    let mut out = [0u8; 64];
    h.finalize_xof().fill(&mut out);
    RistrettoPoint::from_uniform_bytes(&out)
}

/// Key derivation binding the transcript of OT `i`.
fn kdf(
    sid: &[u8; 16],
    i: usize,
    a: &[u8; 32],
    r: &([u8; 32], [u8; 32]),
    p: &RistrettoPoint,
) -> Block {
    let mut h = blake3::Hasher::new_derive_key("seco ot mr19 kdf v1");
    h.update(sid);
    h.update(&(i as u64).to_le_bytes());
    h.update(a);
    h.update(&r.0);
    h.update(&r.1);
    h.update(p.compress().as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.finalize().as_bytes()[..16]);
    Block::from_bytes(out)
}

fn decode(bytes: &[u8; 32], what: &'static str) -> Result<RistrettoPoint> {
    CompressedRistretto(*bytes)
        .decompress()
        .ok_or(OtError::BadPoint { what })
}

/// Base-OT sender (random OT): learns `(m0, m1)` for each OT.
pub struct BaseOtSender {
    sid: [u8; 16],
    a: Zeroizing<Scalar>,
    a_bytes: [u8; 32],
    count: usize,
}

seco_core::redacted_debug!(BaseOtSender);
seco_core::redacted_debug!(BaseOtReceiver);

impl BaseOtSender {
    /// Starts `count` OTs in session `sid` (unique per pair of parties and session).
    pub fn new<R: Rng + CryptoRng + ?Sized>(
        rng: &mut R,
        sid: [u8; 16],
        count: usize,
    ) -> (Self, BaseSenderMsg) {
        let a = Zeroizing::new(random_scalar(rng));
        let a_bytes = RistrettoPoint::mul_base(&a).compress().to_bytes();
        (
            BaseOtSender {
                sid,
                a,
                a_bytes,
                count,
            },
            BaseSenderMsg { a: a_bytes },
        )
    }

    /// Finishes with the receiver's message: `(m0, m1)` per OT.
    pub fn finish(&self, msg: &BaseReceiverMsg) -> Result<Vec<[Block; 2]>> {
        self.finish_with_sid(&self.sid, msg)
    }

    /// [`BaseOtSender::finish`] in session `sid` instead of the one given to `new`: for setups
    /// in which the receiver picks the session id and sends it along (A does not depend on
    /// it, so the sender's message can leave before the id is known). The state is not
    /// consumed: a refused message leaves the sender able to finish with another one.
    pub fn finish_with_sid(
        &self,
        sid: &[u8; 16],
        msg: &BaseReceiverMsg,
    ) -> Result<Vec<[Block; 2]>> {
        if msg.r.len() != self.count {
            return Err(OtError::Length {
                what: "base OT receiver points",
                expected: self.count,
                actual: msg.r.len(),
            });
        }
        let mut out = Vec::with_capacity(self.count);
        for (i, r) in msg.r.iter().enumerate() {
            let r0 = decode(&r.0, "r_0")?;
            let r1 = decode(&r.1, "r_1")?;
            let p0 = *self.a * (r0 + hash_to_group(sid, i, &r.1));
            let p1 = *self.a * (r1 + hash_to_group(sid, i, &r.0));
            out.push([
                kdf(sid, i, &self.a_bytes, r, &p0),
                kdf(sid, i, &self.a_bytes, r, &p1),
            ]);
        }
        Ok(out)
    }
}

/// Base-OT receiver (random OT): learns `m_c` for its choice c of each OT.
pub struct BaseOtReceiver {
    sid: [u8; 16],
    b: Vec<Zeroizing<Scalar>>,
    r: Vec<([u8; 32], [u8; 32])>,
}

impl BaseOtReceiver {
    /// Starts one OT per choice bit.
    pub fn new<R: Rng + CryptoRng + ?Sized>(
        rng: &mut R,
        sid: [u8; 16],
        choices: &[bool],
    ) -> (Self, BaseReceiverMsg) {
        let mut b = Vec::with_capacity(choices.len());
        let mut r = Vec::with_capacity(choices.len());
        for (i, &c) in choices.iter().enumerate() {
            let bi = Zeroizing::new(random_scalar(rng));
            let big_b = RistrettoPoint::mul_base(&bi);
            let mut uniform = [0u8; 64];
            rng.fill_bytes(&mut uniform);
            let other = RistrettoPoint::from_uniform_bytes(&uniform)
                .compress()
                .to_bytes();
            let mine = (big_b - hash_to_group(&sid, i, &other))
                .compress()
                .to_bytes();
            r.push(if c { (other, mine) } else { (mine, other) });
            b.push(bi);
        }
        let msg = BaseReceiverMsg { r: r.clone() };
        (BaseOtReceiver { sid, b, r }, msg)
    }

    /// Finishes with the sender's message: `m_c` per OT (the state is not consumed: a refused
    /// message leaves the receiver able to finish with another one).
    pub fn finish(&self, msg: &BaseSenderMsg) -> Result<Vec<Block>> {
        let a = decode(&msg.a, "A")?;
        if a == RistrettoPoint::identity() {
            return Err(OtError::BadPoint {
                what: "A (identity)",
            });
        }
        Ok(self
            .b
            .iter()
            .zip(&self.r)
            .enumerate()
            .map(|(i, (bi, r))| kdf(&self.sid, i, &msg.a, r, &(**bi * a)))
            .collect())
    }
}

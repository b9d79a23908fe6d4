//! The record ciphers of [`super::SealedStore`].
//!
//! **Version 2** (written since 2026-12-07): `2 | nonce (24 random bytes) | AES-256-GCM
//! ciphertext | tag (16)`. Each record has a key of its own, `K_r = BLAKE3-keyed(K_2, "seco-record-v2
//! key" | nonce)`, and GCM's 96-bit nonce is zero: every (key, nonce) pair is used once, so
//! GCM's nonce-uniqueness requirement (NIST SP 800-38D s.8) holds by construction, whatever
//! the number of records, like XChaCha's subkeys. `K_2 = BLAKE3-derive-key("seco-rs store
//! 2026-12-07 record keys v2", store key)`, so the store key is never used as a key of two
//! primitives. The associated data is `"seco-record-v2" | tree | 0 | key`, as in version 1.
//! Security: GCM is IND-CCA and INT-CTXT for a nonce-respecting adversary (McGrew-Viega,
//! INDOCRYPT 2004; SP 800-38D), and the per-record keys are outputs of a PRF (BLAKE3 in
//! keyed mode, "BLAKE3: one function, fast everywhere", s.5) on distinct inputs but with
//! probability `records^2 / 2^193`. AES-256 key schedule and GHASH use AES-NI and carry-less
//! multiplication through `ring`.
//!
//! **Version 1** (read only): `1 | nonce (24) | XChaCha20-Poly1305 ciphertext and tag` under
//! the store key itself, associated data `"seco-record-v1" | tree | 0 | key`. Stores written
//! before version 2 keep opening; a record is rewritten as version 2 when it is next written.
//!
//! Why the change: the evaluator of a `cifar-cnn` stage reads about 210 MB of garbled tables
//! per inference. On this project's machine (x86-64, AES-NI, VAES) `ring`'s AES-256-GCM seals
//! 4.9-5.2 GB/s where RustCrypto's XChaCha20-Poly1305 seals 0.96 GB/s (4 MiB records, one
//! core): opening them was a third of that server's CPU in the online phase.

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Key, Tag, XChaCha20Poly1305, XNonce};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use zeroize::Zeroizing;

/// Random bytes after the version byte.
pub const NONCE: usize = 24;
const TAG: usize = 16;
const V1: u8 = 1;
const V2: u8 = 2;
/// Version, nonce and tag: a sealed record is this much longer than its value.
pub const OVERHEAD: usize = 1 + NONCE + TAG;

/// Seals and opens records under one store key.
pub struct RecordCipher {
    v1: XChaCha20Poly1305,
    v2: Zeroizing<[u8; 32]>,
}

impl RecordCipher {
    pub fn new(store_key: &[u8; 32]) -> Self {
        RecordCipher {
            v1: XChaCha20Poly1305::new(Key::from_slice(store_key)),
            v2: Zeroizing::new(blake3::derive_key(
                "seco-rs store 2026-12-07 record keys v2",
                store_key,
            )),
        }
    }

    fn record_key(&self, nonce: &[u8]) -> Option<LessSafeKey> {
        let mut h = blake3::Hasher::new_keyed(&self.v2);
        h.update(b"seco-record-v2 key");
        h.update(nonce);
        let k = Zeroizing::new(*h.finalize().as_bytes());
        UnboundKey::new(&AES_256_GCM, &k[..])
            .ok()
            .map(LessSafeKey::new)
    }

    /// `value` sealed as version 2 under associated data `ad` (tree, 0, key).
    pub fn seal(&self, ad: &[u8], value: &[u8]) -> Option<Vec<u8>> {
        let nonce: [u8; NONCE] = rand::random();
        let mut out = Vec::with_capacity(OVERHEAD + value.len());
        out.push(V2);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(value);
        let tag = self
            .record_key(&nonce)?
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key([0; 12]),
                Aad::from(aad(V2, ad)),
                &mut out[1 + NONCE..],
            )
            .ok()?;
        out.extend_from_slice(tag.as_ref());
        Some(out)
    }

    /// Opens a sealed record in place (the buffer becomes the value); `None` if it does not
    /// open (damaged, another key, another place, an unknown version).
    pub fn open(&self, ad: &[u8], mut sealed: Vec<u8>) -> Option<Vec<u8>> {
        if sealed.len() < OVERHEAD {
            return None;
        }
        let end = sealed.len() - TAG;
        let (head, body) = sealed.split_at_mut(1 + NONCE);
        match head[0] {
            V2 => {
                self.record_key(&head[1..])?
                    .open_in_place(
                        Nonce::assume_unique_for_key([0; 12]),
                        Aad::from(aad(V2, ad)),
                        body,
                    )
                    .ok()?;
            }
            V1 => {
                let (ct, tag) = body.split_at_mut(end - 1 - NONCE);
                self.v1
                    .decrypt_in_place_detached(
                        XNonce::from_slice(&head[1..]),
                        &aad(V1, ad),
                        ct,
                        Tag::from_slice(tag),
                    )
                    .ok()?;
            }
            _ => return None,
        }
        sealed.truncate(end);
        sealed.drain(..1 + NONCE);
        Some(sealed)
    }

    /// `value` sealed as version 1 (tests: stores written before version 2).
    #[cfg(test)]
    pub fn seal_v1(&self, ad: &[u8], value: &[u8]) -> Vec<u8> {
        let nonce: [u8; NONCE] = rand::random();
        let mut out = vec![V1];
        out.extend_from_slice(&nonce);
        out.extend_from_slice(value);
        let tag = self
            .v1
            .encrypt_in_place_detached(
                XNonce::from_slice(&nonce),
                &aad(V1, ad),
                &mut out[1 + NONCE..],
            )
            .expect("a record fits XChaCha20-Poly1305");
        out.extend_from_slice(&tag);
        out
    }
}

fn aad(version: u8, ad: &[u8]) -> Vec<u8> {
    let mut a = format!("seco-record-v{version}").into_bytes();
    a.extend_from_slice(ad);
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_versions_open_and_any_change_is_refused() {
        let c = RecordCipher::new(&[9; 32]);
        let value = vec![5u8; 1000];
        for sealed in [c.seal(b"t\0k", &value).unwrap(), c.seal_v1(b"t\0k", &value)] {
            assert_eq!(sealed.len(), value.len() + OVERHEAD);
            assert_eq!(c.open(b"t\0k", sealed.clone()).as_deref(), Some(&value[..]));
            // Another place, another key, any flipped bit, a cut, another version: refused.
            assert!(c.open(b"t\0j", sealed.clone()).is_none());
            assert!(RecordCipher::new(&[8; 32])
                .open(b"t\0k", sealed.clone())
                .is_none());
            for i in [0, 1, 24, 25, 500, sealed.len() - 1] {
                let mut bad = sealed.clone();
                bad[i] ^= 1;
                assert!(c.open(b"t\0k", bad).is_none(), "bit flipped at {i}");
            }
            for cut in [0, 1, OVERHEAD - 1, sealed.len() - 1] {
                assert!(c.open(b"t\0k", sealed[..cut].to_vec()).is_none());
            }
            let mut v3 = sealed.clone();
            v3[0] = 3;
            assert!(c.open(b"t\0k", v3).is_none());
        }
        // Fresh nonces: the same value seals differently.
        assert_ne!(c.seal(b"a", &value), c.seal(b"a", &value));
        assert_eq!(c.open(b"a", c.seal(b"a", &[]).unwrap()), Some(Vec::new()));
    }
}

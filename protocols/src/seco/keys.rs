//! A server's collective-key material as persisted: its secret key share (never leaves the
//! node), the collective public key and the key id (BLAKE3 of the public key's bytes), which
//! servers compare when a session opens.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use zeroize::Zeroizing;

use super::error::{Result, SecoError};
use crate::mhe::{ParamId, PublicKey, SecretKeyShare};

/// Key material of one server.
pub struct KeyMaterial {
    /// The secret key share `s_i` (Mouchet et al. s.4, private input of every server).
    pub sk: SecretKeyShare,
    /// The collective public key.
    pub pk: PublicKey,
    /// BLAKE3 of the public key's bytes.
    pub key_id: [u8; 32],
    /// Bundles whose encryption-to-shares this server led under the key (its lifetime budget,
    /// docs/mhe.md "Lifetime of a key"). Shared by every session of a node that runs under the
    /// key (the node hands each the same counter, loaded from its store); not part of the bytes.
    pub uses: Arc<AtomicU64>,
}

impl KeyMaterial {
    /// Builds the material and its id.
    pub fn new(sk: SecretKeyShare, pk: PublicKey) -> Self {
        let key_id = *blake3::hash(&pk.to_bytes()).as_bytes();
        Self {
            sk,
            pk,
            key_id,
            uses: Arc::default(),
        }
    }

    /// Bytes for the store: `len(sk) || sk || pk` (the secret part is zeroized after use).
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let sk = self.sk.to_bytes();
        let pk = self.pk.to_bytes();
        let mut out = Zeroizing::new(Vec::with_capacity(8 + sk.len() + pk.len()));
        out.extend_from_slice(&(sk.len() as u64).to_le_bytes());
        out.extend_from_slice(&sk);
        out.extend_from_slice(&pk);
        out
    }

    /// The parameter set of stored bytes (of [`KeyMaterial::to_bytes`]), without decoding the
    /// public key: a node whose split moved to another set skips the keys of the old one.
    pub fn stored_param(bytes: &[u8]) -> Result<ParamId> {
        let bad = || SecoError::Decode("stored key material: truncated".into());
        let len = bytes
            .get(..8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as usize)
            .ok_or_else(bad)?;
        let sk = bytes.get(8..8usize.saturating_add(len)).ok_or_else(bad)?;
        Ok(SecretKeyShare::from_bytes(sk)?.param())
    }

    /// The keys of `param` among stored records (newest first, as the store's key ring),
    /// decoded for `party`; records of other parameter sets are skipped, a record that does
    /// not decode is an error.
    pub fn ring_of<B: AsRef<[u8]>>(records: &[B], param: ParamId, party: u16) -> Result<Vec<Self>> {
        let mut out = Vec::new();
        for r in records {
            let r = r.as_ref();
            if Self::stored_param(r)? == param {
                out.push(Self::from_bytes(r, param, party)?);
            }
        }
        Ok(out)
    }

    /// Decodes stored bytes; checks the parameter set and that the share belongs to `party`.
    pub fn from_bytes(bytes: &[u8], param: ParamId, party: u16) -> Result<Self> {
        let bad = |why: &str| SecoError::Decode(format!("stored key material: {why}"));
        let len = bytes
            .get(..8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as usize)
            .ok_or_else(|| bad("truncated"))?;
        let sk_bytes = bytes
            .get(8..8usize.saturating_add(len))
            .ok_or_else(|| bad("truncated"))?;
        let sk = SecretKeyShare::from_bytes(sk_bytes)?;
        let pk = PublicKey::from_bytes(&bytes[8 + len..], param)?;
        if sk.param() != param || sk.party() != party {
            return Err(bad("share of another parameter set or server"));
        }
        Ok(Self::new(sk, pk))
    }
}

/// Prints the parameter set, the party and the key id; the share is `[redacted]` (and zeroized
/// on drop, as every [`SecretKeyShare`]).
impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyMaterial")
            .field("param", &self.sk.param())
            .field("party", &self.sk.party())
            .field("key_id", &crate::seco::ids::hex(&self.key_id))
            .field("sk", &crate::redact::Redacted)
            .finish_non_exhaustive()
    }
}

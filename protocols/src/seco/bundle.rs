//! Bundles: all input-independent material of one inference (DESIGN.md s.5, phase 2), as each
//! party persists it. A bundle is consumed (durably removed from the store) before its first
//! use, so it is never used twice, also across a crash: reusing masks would leak `x1 - x2`.

use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use super::error::{Result, SecoError};
use super::ids::{BundleId, SessionId};

/// Format version of persisted bundles (4: the last stage has its output circuit, its chunks
/// and its result mask shares).
pub const BUNDLE_VERSION: u16 = 4;

/// A server's material for one stage. Every share and mask in it is secret: zeroized on drop,
/// printed as `StageMaterial { len: N, .. [redacted] }` (`N` = length of `u`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageMaterial {
    /// This server's additive share `u_l^(i)` of `W_l r_l - s_l` (encryption-to-shares).
    pub u: Vec<u64>,
    /// Owner only: its fresh mask `s_l` (added back online).
    pub s: Option<Vec<u64>>,
    /// This server's share `r_{l+1}^(i)` of the next stage's input mask; for the last stage,
    /// of the output circuit's mask: this server's share of the result (zeros at the output
    /// circuit's receiver, whose masked output is its share).
    pub r_next: Option<Vec<u64>>,
    /// Number of chunks of the stage's circuit (the last stage's: of its output circuit). This server's BMR state
    /// of each chunk (`bmr::Prepared`; the evaluator's include the garbled tables) is a store
    /// record of its own (`io::Persist::Chunk`), written as the chunk completes and taken when
    /// the stage runs online.
    pub chunks: u32,
}

/// A server's bundle (its stages are zeroized on drop; printed without them).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerBundle {
    /// [`BUNDLE_VERSION`].
    pub version: u16,
    /// Session it belongs to.
    pub session: SessionId,
    /// Its id.
    pub bundle: BundleId,
    /// The server that made it.
    pub party: u16,
    /// One entry per stage.
    pub stages: Vec<StageMaterial>,
    /// Every server but the output circuit's receiver: its share of the result (the last
    /// stage's `r_next`), already encrypted under the user's session key in preprocessing, so
    /// that the online phase only sends it. Absent in bundles written before 2026-12-05 (the
    /// share is then encrypted online, as before) and at the receiver.
    #[serde(default)]
    pub result_share: Option<Vec<serde_bytes::ByteBuf>>,
}

/// The user's bundle: its input mask `r_1` (zeroized on drop, printed as `[redacted]`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserBundle {
    /// [`BUNDLE_VERSION`].
    pub version: u16,
    /// Session it belongs to.
    pub session: SessionId,
    /// Its id.
    pub bundle: BundleId,
    /// `r_1` in `Z_{2^k}`.
    pub r1: Vec<u64>,
}

impl Drop for StageMaterial {
    fn drop(&mut self) {
        self.u.zeroize();
        self.s.zeroize();
        self.r_next.zeroize();
    }
}

crate::redacted_debug!(StageMaterial, |m| m.u.len());

impl std::fmt::Debug for ServerBundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerBundle")
            .field("version", &self.version)
            .field("session", &self.session)
            .field("bundle", &self.bundle)
            .field("party", &self.party)
            .field("stages", &self.stages.len())
            .field("material", &crate::redact::Redacted)
            .finish()
    }
}

impl Drop for UserBundle {
    fn drop(&mut self) {
        self.r1.zeroize();
    }
}

impl std::fmt::Debug for UserBundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserBundle")
            .field("version", &self.version)
            .field("session", &self.session)
            .field("bundle", &self.bundle)
            .field("r1", &crate::redact::Redacted)
            .finish()
    }
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = ciborium::into_writer(v, &mut out);
    out
}

fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8], bundle: BundleId) -> Result<T> {
    ciborium::from_reader(bytes).map_err(|e| SecoError::Bundle {
        bundle,
        reason: format!("stored bytes do not decode: {e}"),
    })
}

fn check(
    version: u16,
    session: SessionId,
    id: BundleId,
    want: (SessionId, BundleId),
) -> Result<()> {
    if version != BUNDLE_VERSION || (session, id) != want {
        return Err(SecoError::Bundle {
            bundle: want.1,
            reason: format!("stored bundle is version {version} of {session}/{id}"),
        });
    }
    Ok(())
}

impl ServerBundle {
    /// CBOR bytes for the store.
    pub fn to_bytes(&self) -> Vec<u8> {
        encode(self)
    }

    /// Decodes and checks the version, session, bundle and party.
    pub fn from_bytes(
        bytes: &[u8],
        session: SessionId,
        bundle: BundleId,
        party: u16,
    ) -> Result<Self> {
        let b: Self = decode(bytes, bundle)?;
        check(b.version, b.session, b.bundle, (session, bundle))?;
        if b.party != party {
            return Err(SecoError::Bundle {
                bundle,
                reason: format!("stored bundle belongs to server {}", b.party),
            });
        }
        Ok(b)
    }
}

impl UserBundle {
    /// CBOR bytes for the store.
    pub fn to_bytes(&self) -> Vec<u8> {
        encode(self)
    }

    /// Decodes and checks the version, session and bundle.
    pub fn from_bytes(bytes: &[u8], session: SessionId, bundle: BundleId) -> Result<Self> {
        let b: Self = decode(bytes, bundle)?;
        check(b.version, b.session, b.bundle, (session, bundle))?;
        Ok(b)
    }
}

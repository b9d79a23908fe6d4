//! The persisted session record: what a server needs to resume a session after a restart
//! (DESIGN.md s.7): the session id, the user's session public key, the key id and the
//! sequence-number epoch, the user's output mode and the server's session free-XOR offset. The
//! pairwise OT setup is not persisted: a resumed server redoes it under the same offset, so its
//! stored garblings (which do not hold the offset) stay usable.
//! Bundles are persisted separately; a bundle in preparation at the crash is lost and its
//! preparation times out (the user asks for another).

use serde::{Deserialize, Serialize};

use super::error::{Result, SecoError};
use super::ids::SessionId;
use super::msg::Bytes;

/// Format version of session records.
pub const RECORD_VERSION: u16 = 1;

/// A session as persisted at a server. Its `offset` is zeroized on drop and printed as
/// `[redacted]`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// [`RECORD_VERSION`].
    pub version: u16,
    /// The session.
    pub session: SessionId,
    /// Model name.
    pub model: String,
    /// The user's session public key (`mhe::PublicKey` bytes).
    pub user_pk: Bytes,
    /// Id of the collective key the session runs under.
    pub key_id: [u8; 32],
    /// Sequence-number epoch of the server's messages: 0 at open, +1 at every resume
    /// (`seq.rs`); records written before epochs existed read as 0.
    #[serde(default)]
    pub epoch: u32,
    /// The session's output mode (`OutputMode::code`); records written before output modes
    /// existed read as 0 (logits).
    #[serde(default)]
    pub output: u8,
    /// This server's session offset `R^i` (secret, 16 bytes; `bmr/setup.rs`): the one copy
    /// that its stored chunk garblings are restored with (`bmr::Prepared::restore_offset`).
    /// Records written before 2026-12-05 have none (their bundles hold the offset).
    #[serde(default)]
    pub offset: Option<Bytes>,
    /// `ServerPart::digest` of the part the session ran with: a server resumed with another
    /// part refuses the record (`SecoError::PartChanged`) and drops the session with its
    /// bundles. Records written before 2026-12-06 have none and are refused the same way (the
    /// part they were made with is unknown).
    #[serde(default)]
    pub part: Option<[u8; 32]>,
    /// `schedule::LAYOUT` the session's bundles were garbled for (who evaluates which stage
    /// circuit, so which server holds its tables): a server resumed with another layout drops
    /// the session with its bundles, as for another part. Records written before 2026-12-07
    /// have none (0, the first layout).
    #[serde(default)]
    pub layout: u16,
}

impl SessionRecord {
    /// The stored offset, if any (a wrong length is a decode error).
    pub fn offset_block(&self) -> Result<Option<crate::garble::block::Block>> {
        self.offset
            .as_ref()
            .map(|b| {
                <[u8; 16]>::try_from(b.as_slice())
                    .map(crate::garble::block::Block::from_bytes)
                    .map_err(|_| SecoError::Decode("session record: offset is not 16 bytes".into()))
            })
            .transpose()
    }
}

impl Drop for SessionRecord {
    fn drop(&mut self) {
        if let Some(offset) = self.offset.as_mut() {
            zeroize::Zeroize::zeroize(offset.as_mut_slice());
        }
    }
}

impl std::fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRecord")
            .field("version", &self.version)
            .field("session", &self.session)
            .field("model", &self.model)
            .field("user_pk", &format_args!("{} bytes", self.user_pk.len()))
            .field("key_id", &super::ids::hex(&self.key_id))
            .field("epoch", &self.epoch)
            .field("output", &self.output)
            .field(
                "offset",
                &self.offset.as_ref().map(|_| crate::redact::Redacted),
            )
            .field("part", &self.part.as_ref().map(|d| super::ids::hex(d)))
            .field("layout", &self.layout)
            .finish()
    }
}

impl SessionRecord {
    /// CBOR bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let _ = ciborium::into_writer(self, &mut out);
        out
    }

    /// Decodes and checks the version.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let r: Self = ciborium::from_reader(bytes)
            .map_err(|e| SecoError::Decode(format!("session record: {e}")))?;
        if r.version != RECORD_VERSION {
            return Err(SecoError::Version {
                expected: RECORD_VERSION,
                found: r.version,
            });
        }
        Ok(r)
    }
}

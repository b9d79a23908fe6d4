//! The persisted session record: what a server needs to resume a session after a restart
//! (DESIGN.md s.7): the session id, the user's session public key, the key id and the
//! sequence-number epoch and the user's output mode. The pairwise OT setup is not persisted: a resumed server redoes it.
//! Bundles are persisted separately; a bundle in preparation at the crash is lost and its
//! preparation times out (the user asks for another).

use serde::{Deserialize, Serialize};

use super::error::{Result, SecoError};
use super::ids::SessionId;
use super::msg::Bytes;

/// Format version of session records.
pub const RECORD_VERSION: u16 = 1;

/// A session as persisted at a server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

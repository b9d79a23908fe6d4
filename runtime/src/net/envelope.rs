//! The envelope: the only structure the runtime reads inside a message (DESIGN.md s.6).
//!
//! An [`Envelope`] wraps an opaque application payload with the fields the runtime needs to route,
//! chunk and reassemble it. The application (the `actors` crate) puts its own serde message in
//! `payload`; the runtime never looks inside.
//!
//! # Wire format
//!
//! One envelope is one CBOR map (RFC 8949) with short text keys, in this order:
//!
//! | key | type | meaning |
//! | --- | --- | --- |
//! | `v` | uint | envelope version, [`ENVELOPE_VERSION`]; any other value is refused |
//! | `s` | bytes(16) | session id ([`SessionId`]) |
//! | `k` | uint (u16) | message kind / topic, chosen by the application |
//! | `q` | uint (u64) | sequence number, chosen by the application; unique per sender and session |
//! | `c` | null or [index, total, len] | chunk header, set by the runtime only (see below) |
//! | `p` | bytes | the payload (or this chunk's slice of it) |
//!
//! Unknown keys are refused (`deny_unknown_fields`). A message larger than the chunk size is sent
//! as `total` envelopes with the same `(s, k, q)`, chunk `index` in `0..total`, and `len` the length
//! of the whole payload; the receiver reassembles them (see `reassembly.rs`) and hands up one
//! envelope with no chunk header.
//!
//! Every decode checks sizes and the chunk header and returns an [`EnvelopeError`]; no input makes
//! it panic (tested with proptest on garbage).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Version written in every envelope; a different version is refused on decode.
pub const ENVELOPE_VERSION: u8 = 1;

/// Most chunks one message may be split into (bounds the receiver's bookkeeping).
pub const MAX_CHUNKS: u32 = 1 << 16;

/// Bytes of CBOR framing an envelope adds around its payload, at most (used to size chunks).
pub const ENVELOPE_OVERHEAD: usize = 128;

/// A session identifier: 16 opaque bytes chosen by the gateway when it opens a session.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SessionId(pub [u8; 16]);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({self})")
    }
}

/// Position of one chunk inside a chunked message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    /// Index of this chunk, `0..total`.
    pub index: u32,
    /// Number of chunks of the message, `1..=MAX_CHUNKS`.
    pub total: u32,
    /// Length in bytes of the whole reassembled payload.
    pub len: u64,
}

/// A message as the runtime sees it: routing fields plus an opaque payload.
#[derive(Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Session this message belongs to.
    pub session: SessionId,
    /// Application-defined kind or topic (which state machine / message type).
    pub kind: u16,
    /// Application-defined sequence number: unique per (sender, session). Receivers use it to
    /// detect duplicates; the runtime uses `(sender, session, kind, seq)` to reassemble chunks.
    pub seq: u64,
    /// Opaque application bytes.
    pub payload: Vec<u8>,
    /// Chunk header, set only by the runtime on the wire; `None` in every envelope handed to or
    /// received from the application.
    pub(crate) chunk: Option<Chunk>,
}

impl fmt::Debug for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Envelope")
            .field("session", &self.session)
            .field("kind", &self.kind)
            .field("seq", &self.seq)
            .field("payload_len", &self.payload.len())
            .field("chunk", &self.chunk)
            .finish()
    }
}

/// Why an envelope could not be decoded or encoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// The frame is larger than the limit the decoder was given.
    #[error("envelope of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Length of the offending frame or payload.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The bytes are not a valid CBOR envelope (syntax, types, unknown or missing fields).
    #[error("malformed CBOR envelope: {0}")]
    Cbor(#[from] ciborium::de::Error<std::io::Error>),
    /// Valid CBOR followed by more bytes.
    #[error("{0} trailing bytes after the envelope")]
    TrailingBytes(usize),
    /// A version this node does not speak.
    #[error("unsupported envelope version {found} (this node speaks {supported})")]
    UnsupportedVersion {
        /// Version found in the envelope.
        found: u8,
        /// Version this node speaks.
        supported: u8,
    },
    /// The session id is not 16 bytes.
    #[error("session id of {0} bytes, expected 16")]
    BadSessionId(usize),
    /// An inconsistent chunk header.
    #[error("bad chunk header: index {index} of {total}, message length {len}, chunk length {chunk_len}")]
    BadChunk {
        /// Chunk index.
        index: u32,
        /// Declared number of chunks.
        total: u32,
        /// Declared message length.
        len: u64,
        /// Length of this chunk's payload.
        chunk_len: usize,
    },
    /// Encoding failed (only on I/O errors of the writer, which a `Vec` never returns).
    #[error("CBOR encoding failed: {0}")]
    Encode(#[from] ciborium::ser::Error<std::io::Error>),
}

/// The serde shape of the wire format (see the module docs).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    #[serde(rename = "v")]
    version: u8,
    #[serde(rename = "s", with = "bytes_field")]
    session: Vec<u8>,
    #[serde(rename = "k")]
    kind: u16,
    #[serde(rename = "q")]
    seq: u64,
    #[serde(rename = "c")]
    chunk: Option<(u32, u32, u64)>,
    #[serde(rename = "p", with = "bytes_field")]
    payload: Vec<u8>,
}

/// Borrowing twin of [`Wire`] so that encoding does not copy the payload.
#[derive(Serialize)]
struct WireRef<'a> {
    #[serde(rename = "v")]
    version: u8,
    #[serde(rename = "s", with = "bytes_field")]
    session: &'a [u8],
    #[serde(rename = "k")]
    kind: u16,
    #[serde(rename = "q")]
    seq: u64,
    #[serde(rename = "c")]
    chunk: Option<(u32, u32, u64)>,
    #[serde(rename = "p", with = "bytes_field")]
    payload: &'a [u8],
}

impl Envelope {
    /// A new unchunked envelope.
    pub fn new(session: SessionId, kind: u16, seq: u64, payload: Vec<u8>) -> Self {
        Self {
            session,
            kind,
            seq,
            payload,
            chunk: None,
        }
    }

    /// The chunk header (always `None` for envelopes the application sees).
    pub fn chunk(&self) -> Option<Chunk> {
        self.chunk
    }

    /// Encodes this envelope as CBOR.
    pub fn encode(&self) -> Result<Vec<u8>, EnvelopeError> {
        let mut out = Vec::with_capacity(self.payload.len() + ENVELOPE_OVERHEAD);
        self.encode_into(&mut out)?;
        Ok(out)
    }

    /// Encodes this envelope as CBOR, appending to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), EnvelopeError> {
        let wire = WireRef {
            version: ENVELOPE_VERSION,
            session: &self.session.0,
            kind: self.kind,
            seq: self.seq,
            chunk: self.chunk.map(|c| (c.index, c.total, c.len)),
            payload: &self.payload,
        };
        ciborium::into_writer(&wire, out)?;
        Ok(())
    }

    /// Decodes and validates an envelope from at most `max_len` bytes of CBOR.
    ///
    /// Checks the length before parsing, then the version, the session id length, the chunk
    /// header and that no bytes follow the envelope.
    pub fn decode(bytes: &[u8], max_len: usize) -> Result<Self, EnvelopeError> {
        if bytes.len() > max_len {
            return Err(EnvelopeError::TooLarge {
                len: bytes.len(),
                max: max_len,
            });
        }
        let mut reader = bytes;
        // Recursion limit: an envelope nests at most 2 levels; garbage cannot blow the stack.
        let wire: Wire = ciborium::de::from_reader_with_recursion_limit(&mut reader, 8)?;
        if !reader.is_empty() {
            return Err(EnvelopeError::TrailingBytes(reader.len()));
        }
        if wire.version != ENVELOPE_VERSION {
            return Err(EnvelopeError::UnsupportedVersion {
                found: wire.version,
                supported: ENVELOPE_VERSION,
            });
        }
        let session: [u8; 16] = wire
            .session
            .as_slice()
            .try_into()
            .map_err(|_| EnvelopeError::BadSessionId(wire.session.len()))?;
        let chunk = match wire.chunk {
            None => None,
            Some((index, total, len)) => {
                let chunk = Chunk { index, total, len };
                check_chunk(chunk, wire.payload.len())?;
                Some(chunk)
            }
        };
        Ok(Self {
            session: SessionId(session),
            kind: wire.kind,
            seq: wire.seq,
            payload: wire.payload,
            chunk,
        })
    }
}

/// A chunk header is valid when `index < total <= MAX_CHUNKS` and the chunk fits in the message.
fn check_chunk(c: Chunk, chunk_len: usize) -> Result<(), EnvelopeError> {
    let fits = u64::try_from(chunk_len).is_ok_and(|l| l <= c.len);
    if c.total == 0 || c.total > MAX_CHUNKS || c.index >= c.total || !fits {
        return Err(EnvelopeError::BadChunk {
            index: c.index,
            total: c.total,
            len: c.len,
            chunk_len,
        });
    }
    Ok(())
}

/// Serde helper: a `Vec<u8>` / `&[u8]` as a CBOR byte string (not an array of integers).
/// Decoding accepts only byte strings: an array where bytes are expected is a type error.
mod bytes_field {
    use serde::{de, Deserializer, Serializer};

    pub fn serialize<S: Serializer, B: AsRef<[u8]>>(v: &B, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v.as_ref())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
        }
        d.deserialize_byte_buf(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Envelope {
        Envelope::new(SessionId([7; 16]), 3, 42, vec![1, 2, 3, 255])
    }

    #[test]
    fn roundtrip() {
        let e = sample();
        let bytes = e.encode().unwrap();
        assert_eq!(Envelope::decode(&bytes, 1024).unwrap(), e);
    }

    #[test]
    fn chunk_roundtrip_and_checks() {
        let mut e = sample();
        e.chunk = Some(Chunk {
            index: 1,
            total: 2,
            len: 8,
        });
        let bytes = e.encode().unwrap();
        assert_eq!(Envelope::decode(&bytes, 1024).unwrap(), e);
        e.chunk = Some(Chunk {
            index: 2,
            total: 2,
            len: 8,
        });
        let bytes = e.encode().unwrap();
        assert!(matches!(
            Envelope::decode(&bytes, 1024),
            Err(EnvelopeError::BadChunk { .. })
        ));
        e.chunk = Some(Chunk {
            index: 0,
            total: 2,
            len: 2,
        });
        let bytes = e.encode().unwrap();
        assert!(matches!(
            Envelope::decode(&bytes, 1024),
            Err(EnvelopeError::BadChunk { .. })
        ));
    }

    #[test]
    fn payload_is_a_byte_string() {
        let e = Envelope::new(SessionId::default(), 0, 0, vec![0xAB; 1000]);
        let bytes = e.encode().unwrap();
        assert!(bytes.len() < 1000 + ENVELOPE_OVERHEAD);
    }

    #[test]
    fn refuses_size_version_trailing() {
        let bytes = sample().encode().unwrap();
        assert!(matches!(
            Envelope::decode(&bytes, 4),
            Err(EnvelopeError::TooLarge { .. })
        ));
        let mut long = bytes.clone();
        long.push(0);
        assert!(matches!(
            Envelope::decode(&long, 1024),
            Err(EnvelopeError::TrailingBytes(1))
        ));
        let wire = Wire {
            version: 9,
            session: vec![0; 16],
            kind: 0,
            seq: 0,
            chunk: None,
            payload: vec![],
        };
        let mut v = Vec::new();
        ciborium::into_writer(&wire, &mut v).unwrap();
        assert!(matches!(
            Envelope::decode(&v, 1024),
            Err(EnvelopeError::UnsupportedVersion { found: 9, .. })
        ));
        let wire = Wire {
            version: 1,
            session: vec![0; 3],
            ..wire
        };
        let mut v = Vec::new();
        ciborium::into_writer(&wire, &mut v).unwrap();
        assert!(matches!(
            Envelope::decode(&v, 1024),
            Err(EnvelopeError::BadSessionId(3))
        ));
    }
}

//! The messages of the SECO protocol: one versioned envelope, one body enum for all phases
//! (STYLE.md 6). Transport-free: the runtime carries the encoded bytes.
//!
//! Every message carries the protocol version, the session id, the sender and a per-sender
//! sequence number; its phase follows from its body ([`Body::phase`]). Payloads of the
//! sub-protocols (MHE ciphertexts and shares, BMR rounds) travel as opaque bytes in their own
//! validated encodings.

use serde::{Deserialize, Serialize};

use super::error::{Result, SecoError};
use super::ids::{BundleId, Party, SessionId};

/// Version of the message format (3: `Hello` carries the user-part digest, `Close`; 4: the
/// stage words' conversion, `MaskBits`; 5: `Hello` and `Open` carry the output mode, the result
/// is the truncated logits or the label, `output.rs`; `Open` / `OpenAck` list collective keys and
/// `UseKey` picks the one the session runs under, `server/open.rs`).
pub const VERSION: u16 = 5;
/// Largest encoded message accepted (the runtime chunks large payloads below this). BMR
/// messages stay far below it: each carries one chunk of a stage circuit
/// (`schedule::MAX_CHUNK_TABLE_BYTES`, `docs/protocol.md`, "Chunks").
pub const MAX_MSG_BYTES: usize = 256 << 20;

/// Most collective keys a server keeps (and lists in `Open`): the newest and the ones before it
/// that a session may fall back to (`server/open.rs`).
pub const MAX_KEYS: usize = 4;

/// The phases of a session (DESIGN.md s.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Phase {
    /// Phase 0: session open.
    Session,
    /// Phase 1: collective key generation.
    Keygen,
    /// Phase 1b: the pairwise OT setup of the servers (once per session, in memory).
    Setup,
    /// Phase 2: preprocessing (bundles).
    Prep,
    /// Phase 3: online inference and result delivery.
    Online,
    /// Abort, valid in any phase.
    Abort,
}

/// Why a session was closed ([`Body::Close`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CloseReason {
    /// The user is done with the session (`seco infer` at its end, or interrupted).
    Done,
    /// No message for the session within the idle time (`[timeouts] idle`): it expired.
    Expired,
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CloseReason::Done => "closed by the user",
            CloseReason::Expired => "expired (idle)",
        })
    }
}

/// A SECO message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecoMsg {
    /// [`VERSION`].
    pub version: u16,
    /// Session the message belongs to.
    pub session: SessionId,
    /// Sender as it claims; checked against the authenticated transport sender.
    pub from: Party,
    /// Per-sender, per-session sequence number (duplicates are refused).
    pub seq: u64,
    /// The payload.
    pub body: Body,
}

/// Opaque bytes (CBOR byte string).
pub type Bytes = serde_bytes::ByteBuf;

/// Every message body, grouped by phase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    // ---- Phase 0: session ----
    /// U -> G: open a session with the user's session public key (result delivery).
    Hello {
        /// Model the user wants to query.
        model: String,
        /// The user's session public key (`mhe::PublicKey` bytes).
        user_pk: Bytes,
        /// `UserPart::digest` of the user's part: the gateway refuses the session if it is not
        /// the digest of the user's part of its own split (`SecoError::UserPartMismatch`).
        /// A CBOR byte string (fixed size on the wire; any other length does not decode).
        #[serde(with = "serde_bytes")]
        part_digest: [u8; 32],
        /// What the user learns (`OutputMode::code`: 0 logits, 1 label); an unknown code
        /// aborts the session (`SecoError::OutputMode`).
        output: u8,
    },
    /// G -> remotes: join the session.
    Open {
        /// Model name.
        model: String,
        /// Digest of the public skeleton, so that every server holds parts of one split.
        skeleton: [u8; 32],
        /// The collective keys G holds, newest first (at most [`MAX_KEYS`]; none: run key
        /// generation at once).
        key_ids: Vec<[u8; 32]>,
        /// The user's session public key.
        user_pk: Bytes,
        /// The user's output mode (`OutputMode::code`), checked by every remote.
        output: u8,
    },
    /// Remote -> G: joined; the keys of G's `Open` list that this remote holds (same order).
    OpenAck {
        /// Key ids, a subsequence of the `Open`'s.
        key_ids: Vec<[u8; 32]>,
    },
    /// G -> remotes: the key the session runs under, the newest every server holds (none: run
    /// a fresh key generation).
    UseKey {
        /// The chosen key id.
        key_id: Option<[u8; 32]>,
    },
    /// G -> U: the session is ready; the collective public key for the input masks.
    Welcome {
        /// `mhe::PublicKey` bytes.
        collective_pk: Bytes,
    },

    // ---- Phase 1: key generation ----
    /// Server <-> server: one message of the collective key generation (`mhe::KeygenMsg`).
    Keygen(Bytes),
    /// Remote -> G: key generation done and the key share persisted.
    KeyReady {
        /// Id of the collective public key.
        key_id: [u8; 32],
    },

    // ---- Phase 1b: pairwise OT setup ----
    /// Server <-> server: one half of the pair's base OTs (`bmr::SetupMsg`), at session open
    /// and when a server restarts.
    OtSetup(Bytes),
    /// Remote -> G: this server's OT setup with every other server is complete.
    OtReady,

    // ---- Phase 2: preprocessing ----
    /// U -> G: prepare a bundle; `Enc(r_1)` under the collective key (stage 0's input layout).
    PrepRequest {
        /// Bundle id chosen by the user.
        bundle: BundleId,
        /// Ciphertexts of the user's input mask.
        input_mask: Vec<Bytes>,
    },
    /// G -> remotes: start preparing a bundle.
    PrepStart {
        /// The bundle.
        bundle: BundleId,
    },
    /// G -> owner of stage 0 (when not G): the user's `Enc(r_1)`.
    InputMask {
        /// The bundle.
        bundle: BundleId,
        /// Ciphertexts.
        cts: Vec<Bytes>,
    },
    /// Server -> owner of `stage`: `Enc(r_stage^(i))`, this server's share of the stage's mask.
    MaskShare {
        /// The bundle.
        bundle: BundleId,
        /// The stage.
        stage: u16,
        /// Ciphertexts.
        cts: Vec<Bytes>,
    },
    /// Owner -> other servers: encryption-to-shares request (`mhe::E2sRequest`).
    E2sRequest {
        /// The bundle.
        bundle: BundleId,
        /// The stage.
        stage: u16,
        /// Encoded request.
        req: Bytes,
    },
    /// Server -> owner: flooded decryption share (`mhe::E2sShare`).
    E2sShare {
        /// The bundle.
        bundle: BundleId,
        /// The stage.
        stage: u16,
        /// Encoded share.
        share: Bytes,
    },
    /// Server <-> server: one step of the conversion of this server's random XOR-shared words
    /// of `stage` into additive shares (`ot::B2a`, `server/masks.rs`): an `ot::B2aExtend` to
    /// an earlier member or an `ot::B2aReply` to a later one, CBOR.
    MaskBits {
        /// The bundle.
        bundle: BundleId,
        /// The stage.
        stage: u16,
        /// 0: the words of the stage's input sum (its non-owners); 1: the words of its output
        /// mask (its non-receivers).
        kind: u8,
        /// The batch of words (`server::masks::B2A_BATCH` words each).
        batch: u32,
        /// Encoded step.
        msg: Bytes,
    },
    /// Server <-> server: one round of the BMR garbling of one chunk of `stage`'s circuit.
    BmrOffline {
        /// The bundle.
        bundle: BundleId,
        /// The stage.
        stage: u16,
        /// The chunk of the stage circuit (its own BMR garbling; checked against the schedule).
        chunk: u32,
        /// Encoded `bmr::BmrMsg`.
        msg: Bytes,
    },
    /// Remote -> G: bundle complete and persisted.
    PrepDone {
        /// The bundle.
        bundle: BundleId,
    },
    /// G -> U: bundle ready at every server.
    BundleReady {
        /// The bundle.
        bundle: BundleId,
    },

    // ---- Phase 3: online ----
    /// U -> G: run one inference on `x - r_1` with this bundle.
    Infer {
        /// The bundle.
        bundle: BundleId,
        /// The masked input `x - r_1` in `Z_{2^k}`, packed ([`pack_ring`]).
        masked_input: Bytes,
    },
    /// G -> remotes: start the online phase of a bundle.
    OnlineStart {
        /// The bundle.
        bundle: BundleId,
    },
    /// G -> owner of stage 0 (when not G): `x - r_1`.
    MaskedInput {
        /// The bundle.
        bundle: BundleId,
        /// The masked input, packed ([`pack_ring`]).
        values: Bytes,
    },
    /// Server <-> server: one round of the BMR evaluation of one chunk of `stage`'s circuit.
    BmrOnline {
        /// The bundle.
        bundle: BundleId,
        /// The stage.
        stage: u16,
        /// The chunk of the stage circuit (its own BMR evaluation; checked against the schedule).
        chunk: u32,
        /// Encoded `bmr::BmrMsg`.
        msg: Bytes,
    },
    /// Server -> G: this server's share of the logits encrypted under the user's key.
    ResultShare {
        /// The bundle.
        bundle: BundleId,
        /// Ciphertexts (`mhe::Ciphertext` bytes).
        cts: Vec<Bytes>,
    },
    /// G -> U: the aggregated result ciphertext (`mhe::ResultCiphertext`).
    Result {
        /// The bundle.
        bundle: BundleId,
        /// Encoded result ciphertext.
        ct: Bytes,
    },

    // ---- any phase ----
    /// End the session: U -> G when the user is done, G -> remotes when the session closes or
    /// expires at the gateway, G -> U when it expires. The receiver drops what is in flight,
    /// deletes the session's records and unused bundles and frees its slot.
    Close {
        /// Why.
        reason: CloseReason,
    },
    /// Abort the session (or one bundle) with a reason, on every peer.
    Abort {
        /// The bundle concerned, if only one.
        bundle: Option<BundleId>,
        /// Human-readable reason.
        reason: String,
        /// Whether a fresh session or bundle may succeed (absent: it may, as before the field).
        #[serde(default, skip_serializing_if = "AbortKind::is_retry")]
        kind: AbortKind,
    },
}

/// Whether what an abort ended is worth trying again with a fresh session or bundle. The user's
/// handle retries only `Retry` aborts (`seco infer`'s retries); `Final` ones are refusals a new
/// session would meet again (a `user.json` of another split, an output mode the build does not
/// know, the gateway refusing the session, a server lost beyond the grace).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum AbortKind {
    /// A fault of this session or bundle (a lost message, a deadline, a restarted peer).
    #[default]
    Retry,
    /// A refusal that a new session would meet again.
    Final,
}

impl AbortKind {
    /// Whether a fresh session or bundle may succeed.
    pub fn is_retry(&self) -> bool {
        *self == AbortKind::Retry
    }
}

impl Body {
    /// The phase the body belongs to.
    pub fn phase(&self) -> Phase {
        match self {
            Body::Hello { .. }
            | Body::Open { .. }
            | Body::OpenAck { .. }
            | Body::UseKey { .. }
            | Body::Welcome { .. }
            | Body::Close { .. } => Phase::Session,
            Body::Keygen(_) | Body::KeyReady { .. } => Phase::Keygen,
            Body::OtSetup(_) | Body::OtReady => Phase::Setup,
            Body::PrepRequest { .. }
            | Body::PrepStart { .. }
            | Body::InputMask { .. }
            | Body::MaskShare { .. }
            | Body::E2sRequest { .. }
            | Body::E2sShare { .. }
            | Body::MaskBits { .. }
            | Body::BmrOffline { .. }
            | Body::PrepDone { .. }
            | Body::BundleReady { .. } => Phase::Prep,
            Body::Infer { .. }
            | Body::OnlineStart { .. }
            | Body::MaskedInput { .. }
            | Body::BmrOnline { .. }
            | Body::ResultShare { .. }
            | Body::Result { .. } => Phase::Online,
            Body::Abort { .. } => Phase::Abort,
        }
    }

    /// The variant's name (for errors and logs).
    pub fn name(&self) -> &'static str {
        match self {
            Body::Hello { .. } => "Hello",
            Body::Open { .. } => "Open",
            Body::OpenAck { .. } => "OpenAck",
            Body::UseKey { .. } => "UseKey",
            Body::Welcome { .. } => "Welcome",
            Body::Keygen(_) => "Keygen",
            Body::KeyReady { .. } => "KeyReady",
            Body::OtSetup(_) => "OtSetup",
            Body::OtReady => "OtReady",
            Body::PrepRequest { .. } => "PrepRequest",
            Body::PrepStart { .. } => "PrepStart",
            Body::InputMask { .. } => "InputMask",
            Body::MaskShare { .. } => "MaskShare",
            Body::E2sRequest { .. } => "E2sRequest",
            Body::E2sShare { .. } => "E2sShare",
            Body::MaskBits { .. } => "MaskBits",
            Body::BmrOffline { .. } => "BmrOffline",
            Body::PrepDone { .. } => "PrepDone",
            Body::BundleReady { .. } => "BundleReady",
            Body::Infer { .. } => "Infer",
            Body::OnlineStart { .. } => "OnlineStart",
            Body::MaskedInput { .. } => "MaskedInput",
            Body::BmrOnline { .. } => "BmrOnline",
            Body::ResultShare { .. } => "ResultShare",
            Body::Result { .. } => "Result",
            Body::Close { .. } => "Close",
            Body::Abort { .. } => "Abort",
        }
    }

    /// The bundle a preprocessing or online body refers to.
    pub fn bundle(&self) -> Option<BundleId> {
        match self {
            Body::PrepRequest { bundle, .. }
            | Body::PrepStart { bundle }
            | Body::InputMask { bundle, .. }
            | Body::MaskShare { bundle, .. }
            | Body::E2sRequest { bundle, .. }
            | Body::E2sShare { bundle, .. }
            | Body::MaskBits { bundle, .. }
            | Body::BmrOffline { bundle, .. }
            | Body::PrepDone { bundle }
            | Body::BundleReady { bundle }
            | Body::Infer { bundle, .. }
            | Body::OnlineStart { bundle }
            | Body::MaskedInput { bundle, .. }
            | Body::BmrOnline { bundle, .. }
            | Body::ResultShare { bundle, .. }
            | Body::Result { bundle, .. } => Some(*bundle),
            Body::Abort { bundle, .. } => *bundle,
            _ => None,
        }
    }
}

impl SecoMsg {
    /// CBOR bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Writing plain data to a Vec cannot fail.
        let _ = ciborium::into_writer(self, &mut out);
        out
    }

    /// Decodes and checks the version and the size limit.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_MSG_BYTES {
            return Err(SecoError::Decode(format!(
                "message of {} bytes exceeds {MAX_MSG_BYTES}",
                bytes.len()
            )));
        }
        let msg: SecoMsg = ciborium::from_reader(bytes)
            .map_err(|e| SecoError::Decode(format!("not a SECO message: {e}")))?;
        if msg.version != VERSION {
            return Err(SecoError::Version {
                expected: VERSION,
                found: msg.version,
            });
        }
        Ok(msg)
    }
}

/// Bytes per ring element on the wire: `ceil(k / 8)`.
pub fn ring_bytes(ring_bits: u32) -> usize {
    ring_bits.div_ceil(8) as usize
}

/// Packs ring elements little-endian, `ceil(k/8)` bytes each (exact sizes: the user's bytes
/// depend only on the input length).
pub fn pack_ring(values: &[u64], ring_bits: u32) -> Bytes {
    let w = ring_bytes(ring_bits);
    Bytes::from(
        values
            .iter()
            .flat_map(|v| v.to_le_bytes().into_iter().take(w))
            .collect::<Vec<u8>>(),
    )
}

/// Unpacks [`pack_ring`] bytes into exactly `len` elements below `2^k`.
pub fn unpack_ring(bytes: &[u8], ring_bits: u32, len: usize) -> Result<Vec<u64>> {
    let w = ring_bytes(ring_bits);
    if Some(bytes.len()) != len.checked_mul(w) {
        return Err(SecoError::Length {
            what: "packed ring elements (bytes)",
            expected: len.saturating_mul(w),
            actual: bytes.len(),
        });
    }
    let mask = if ring_bits >= 64 {
        u64::MAX
    } else {
        (1u64 << ring_bits) - 1
    };
    bytes
        .chunks_exact(w)
        .map(|c| {
            let mut b = [0u8; 8];
            b[..w].copy_from_slice(c);
            let v = u64::from_le_bytes(b);
            if v & !mask != 0 {
                Err(SecoError::Decode("ring element out of range".into()))
            } else {
                Ok(v)
            }
        })
        .collect()
}

//! What a session state machine exchanges with its driver (raft's `Ready`, STYLE.md 2).
//!
//! The driver (an actor, or the in-process router of `local.rs`) feeds [`Input`]s and gets a
//! [`Ready`] back. It must then, in this order:
//! 1. apply every [`Persist`] durably (flush), because the messages in `send` were produced
//!    from that state;
//! 2. send `send` and report `events` (they hold nothing of the records this `Ready` asks to
//!    take: what is computed from those comes in the `Ready` of the `Loaded` / `Chunks` input,
//!    after the take; the driver may also take first and send after);
//! 3. for every bundle id in `take`, remove the bundle from the store durably (flushed) and feed
//!    it back as [`Input::Loaded`]: a bundle is consumed before its first use and can never be
//!    used twice, also across a crash (DESIGN.md s.5);
//! 4. for every [`ChunkTake`] in `take_chunks`, remove that stage's chunk records from the store
//!    durably and feed them back as [`Input::Chunks`] (a stored garbling is used once, too);
//!    steps 3 and 4 may share one flush, and the inputs go back in this order: every
//!    `Loaded` first, then every `Chunks` (a bundle and its first stage are taken together);
//! 5. for every bundle id in `resume`, feed back [`Input::Resume`], after the sends: a step
//!    whose messages let peers start their part sends them first and does its own long work
//!    (e.g. the gateway's HE product on a new bundle's input mask) in the resumed step.

use std::fmt;

use super::ids::{BundleId, Party};
use super::msg::{AbortKind, CloseReason, SecoMsg};

/// An input to a session state machine. Its `Debug` prints the lengths of stored bytes (a
/// bundle or a chunk garbling is secret), not the bytes.
pub enum Input {
    /// A message from an authenticated sender.
    Message {
        /// Transport-level sender (peer id mapped through the topology).
        from: Party,
        /// The decoded message.
        msg: SecoMsg,
    },
    /// The answer to [`Ready::take`]: the bundle's bytes, or `None` if the store did not have
    /// it (already used or never made).
    Loaded {
        /// The bundle.
        bundle: BundleId,
        /// Its stored bytes.
        bytes: Option<Vec<u8>>,
    },
    /// The answer to a [`ChunkTake`]: the stage's chunk records in chunk order (`None` where
    /// the store had none).
    Chunks {
        /// The bundle.
        bundle: BundleId,
        /// The stage.
        stage: u16,
        /// One record per chunk.
        chunks: Vec<Option<Vec<u8>>>,
    },
    /// The answer to [`Ready::resume`]: continue the work of `bundle` that the last step left
    /// for after its messages went out.
    Resume {
        /// The bundle.
        bundle: BundleId,
    },
}

/// Stored chunk garblings to take: chunks `0..chunks` of `stage` of `bundle`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkTake {
    /// The bundle.
    pub bundle: BundleId,
    /// The stage.
    pub stage: u16,
    /// Number of chunks of the stage.
    pub chunks: u32,
}

/// Durable state changes. Every payload is secret (key share, masks, garblings, offset): its
/// `Debug` prints lengths only.
#[derive(Clone, PartialEq, Eq)]
pub enum Persist {
    /// A server's collective-key material (secret key share, public key, key id).
    Keys(Vec<u8>),
    /// A completed bundle (server: its shares, masks, garbling; user: its input mask).
    Bundle {
        /// The bundle.
        bundle: BundleId,
        /// Encoded bundle.
        bytes: Vec<u8>,
    },
    /// The session record ([`super::record::SessionRecord`]), written when the session
    /// becomes ready, for resume-or-abort after a restart.
    Session(Vec<u8>),
    /// Server: one finished chunk garbling of a bundle in preparation (its `bmr::Prepared`,
    /// CBOR), stored on its own as it completes so that a bundle's garbled tables never sit
    /// in memory all at once; taken per stage in the online phase ([`Ready::take_chunks`]).
    Chunk {
        /// The bundle.
        bundle: BundleId,
        /// The stage.
        stage: u16,
        /// The chunk.
        chunk: u32,
        /// Encoded `bmr::Prepared`.
        bytes: Vec<u8>,
    },
    /// Server: delete every chunk record of a bundle (aborted in preparation or online).
    ForgetChunks(BundleId),
    /// Server: the bundles it has led under a collective key (its lifetime count, written
    /// before the encryption-to-shares request that counts goes out; stores keep the largest).
    KeyUse {
        /// The key.
        key_id: [u8; 32],
        /// The count after this bundle.
        uses: u64,
    },
}

/// `N bytes [redacted]`: the `Debug` of a secret payload.
struct Len(usize);

impl fmt::Debug for Len {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} bytes [redacted]", self.0)
    }
}

fn len_of(bytes: &Option<Vec<u8>>) -> Option<Len> {
    bytes.as_ref().map(|b| Len(b.len()))
}

impl fmt::Debug for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::Message { from, msg } => f
                .debug_struct("Message")
                .field("from", from)
                .field("msg", msg)
                .finish(),
            Input::Loaded { bundle, bytes } => f
                .debug_struct("Loaded")
                .field("bundle", bundle)
                .field("bytes", &len_of(bytes))
                .finish(),
            Input::Chunks {
                bundle,
                stage,
                chunks,
            } => f
                .debug_struct("Chunks")
                .field("bundle", bundle)
                .field("stage", stage)
                .field("chunks", &chunks.iter().map(len_of).collect::<Vec<_>>())
                .finish(),
            Input::Resume { bundle } => f.debug_struct("Resume").field("bundle", bundle).finish(),
        }
    }
}

impl fmt::Debug for Persist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Persist::Keys(b) => f.debug_tuple("Keys").field(&Len(b.len())).finish(),
            Persist::Bundle { bundle, bytes } => f
                .debug_struct("Bundle")
                .field("bundle", bundle)
                .field("bytes", &Len(bytes.len()))
                .finish(),
            Persist::Session(b) => f.debug_tuple("Session").field(&Len(b.len())).finish(),
            Persist::Chunk {
                bundle,
                stage,
                chunk,
                bytes,
            } => f
                .debug_struct("Chunk")
                .field("bundle", bundle)
                .field("stage", stage)
                .field("chunk", chunk)
                .field("bytes", &Len(bytes.len()))
                .finish(),
            Persist::ForgetChunks(b) => f.debug_tuple("ForgetChunks").field(b).finish(),
            Persist::KeyUse { key_id, uses } => f
                .debug_struct("KeyUse")
                .field("key_id", &super::ids::hex(key_id))
                .field("uses", uses)
                .finish(),
        }
    }
}

/// Something the session reports to its owner.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The session is open and keys are in place; preprocessing may start.
    SessionReady,
    /// A bundle is ready at this party (at the user: at every server).
    BundleReady(BundleId),
    /// The user's result in logits mode: the logits as signed fixed-point integers (scale
    /// `2^f`).
    Logits {
        /// The bundle consumed.
        bundle: BundleId,
        /// Signed logits.
        logits: Vec<i64>,
    },
    /// The user's result in label mode: the predicted class (the argmax of the logits) only.
    Label {
        /// The bundle consumed.
        bundle: BundleId,
        /// The class index.
        class: u32,
    },
    /// A server finished its part of an inference.
    InferenceDone(BundleId),
    /// The session ended without an error: closed by the user or expired (at a server, its
    /// records and unused bundles are to be deleted and its slot freed).
    Closed(CloseReason),
    /// The session or a bundle was aborted.
    Aborted {
        /// The bundle, if only one.
        bundle: Option<BundleId>,
        /// Why.
        reason: String,
        /// Whether a fresh session or bundle may succeed.
        kind: AbortKind,
    },
}

/// The outputs of one step.
#[derive(Debug, Default)]
pub struct Ready {
    /// Durable writes, before anything is sent.
    pub persist: Vec<Persist>,
    /// Bundles to take (durably remove) from the store and feed back as [`Input::Loaded`].
    pub take: Vec<BundleId>,
    /// Stages' chunk records to take (durably remove) and feed back as [`Input::Chunks`].
    pub take_chunks: Vec<ChunkTake>,
    /// Messages to send, in order.
    pub send: Vec<(Party, SecoMsg)>,
    /// Events for the owner.
    pub events: Vec<Event>,
    /// Bundles whose work continues once `send` is out: fed back as [`Input::Resume`].
    pub resume: Vec<BundleId>,
}

impl Ready {
    /// Appends another step's outputs.
    pub fn extend(&mut self, other: Ready) {
        self.persist.extend(other.persist);
        self.take.extend(other.take);
        self.take_chunks.extend(other.take_chunks);
        self.send.extend(other.send);
        self.events.extend(other.events);
        self.resume.extend(other.resume);
    }

    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.persist.is_empty()
            && self.take.is_empty()
            && self.take_chunks.is_empty()
            && self.send.is_empty()
            && self.events.is_empty()
            && self.resume.is_empty()
    }
}

/// A session state machine, as drivers see it.
pub trait Machine {
    /// This party.
    fn party(&self) -> Party;
    /// Steps the machine with one input.
    fn handle(&mut self, input: Input) -> super::error::Result<Ready>;
}

//! The pairwise OT setup of a session: base OTs between every pair of garblers, run once, from
//! which every later garbling derives fresh IKNP extensions ([`PairwiseOt`], consumed by
//! [`super::OfflineParty::with_setup`]). Without it every garbling redoes 128 Masny-Rindal base
//! OTs per ordered pair (offline round 1), which was about half of all preprocessing time.
//!
//! # Protocol
//! Each garbler i samples its session offset `R^i` (lsb 1) and sends every peer p one *half*:
//! ```text
//! SetupMsg { nonce_i, reply_to, A_i, (r_0, r_1)_{j<128} with choices R^i }
//!   A_i        base-OT sender part of the instance "i receives from p" (i is IKNP receiver)
//!   r pairs    base-OT receiver part of the instance "p receives from i" (i is IKNP sender,
//!              its correlation R^i = its base-OT choices), session id H(session, p, i, nonce_i)
//! ```
//! The two halves of a pair are independent (Masny-Rindal is one round, `ot/base.rs`), so all
//! halves go out at once and the setup is one round. Once p's half is in, i holds
//! [`IknpReceiverBase`] (seed pairs, instance "i receives from p") and [`IknpSenderBase`]
//! (seeds `k_j^{R^i_j}`, instance "p receives from i").
//!
//! # Per garbling
//! A garbling with id `sid` (its `BmrConfig::session`, unique per setup: enforced, a repeated
//! id is refused) extends with nonce `pair_sid(sid, recv, send)`: every PRG seed becomes
//! `BLAKE3-derive(nonce, j, seed)` (`ot/iknp.rs`), so each garbling gets independent IKNP
//! columns. Reusing a nonce would reveal the XOR of two garblings' mask shares.
//!
//! # Why a fixed offset per session is fine
//! A garbler's IKNP correlation is its base-OT choice vector, so its BMR free-XOR offset `R^i`
//! is now the same in every garbling of the session. This is the *global Delta* of
//! authenticated garbling (Wang-Ranellucci-Katz CCS 2017, Katz-Ranellucci-Rosulek-Wang Crypto
//! 2018), where one Delta per party serves every circuit of a session: the security of free-XOR
//! garbling needs `R` secret and every hash input `(k ^ alpha R, tweak)` used once. Here
//! (a) every garbling samples fresh wire keys `k^i_{w,0}` and mask shares `lambda^i_w`, so the
//! evaluator's keys in two garblings are independent of each other and of `R^i`; (b) every
//! hash tweak carries the garbling's 56-bit nonce ([`super::BmrConfig::tweak_nonce`],
//! `crate::hash::tweak_in`) besides the gate, party and row, so within a garbling tweaks are
//! unique by construction and across garblings no (key, tweak) pair repeats (fresh keys and,
//! except with probability `2^-56` per pair of garblings, distinct tweaks); (c) the IKNP rows
//! of each garbling come from fresh PRG streams. An evaluator that sees many garblings
//! therefore sees what it would see from one large garbling under one offset, which is the
//! single-circuit case of BLO16. What it does not tolerate: a [`super::Prepared`] used twice
//! (unchanged rule) and a garbling id used twice with one setup (refused here).
//!
//! # Restarts
//! The setup lives in memory only. A restarted party creates a new [`OtSetup`] (new halves
//! with fresh nonces, `reply_to = None`); it keeps its offset ([`OtSetup::with_offset`]) when
//! it kept garblings made under it (a SECO server: its session record holds the offset, its
//! stored garblings do not), else it takes a new one. Redoing the base OTs with the same
//! choice bits (the offset's bits) is the ordinary case of a receiver using one choice vector
//! in independent base-OT runs: fresh sender randomness, nothing learnt about the choices. A peer whose pair is complete and that
//! receives a spontaneous half with an unseen nonce takes it as a restart: it answers with a
//! fresh half of its own (`reply_to` = that nonce) and replaces the pair, keeping its offset.
//! Two parties that send spontaneous halves to each other (session open, or both restarted)
//! combine the halves they sent and received. A reply that does not answer this party's
//! pending half is refused (stale), and a nonce seen before is a duplicate. Garblings already
//! running keep the extensions they derived at start; they cannot complete with a restarted
//! peer. A garbling that one end of a pair drew before the pair was replaced and the other end
//! after (messages of different senders are not ordered) would pair IKNP columns from
//! mismatched base OTs and garble wrong tables without any error; so each pair has a public
//! tag (both halves' nonces), every `Extend` carries it, and a mismatch is refused
//! (`BmrError::PairMismatch`; the SECO server aborts that bundle).
//!
//! Private: the offsets, the base-OT scalars and seeds. Public: the nonces and points.
//! Memory: a [`PairwiseOt`] remembers every garbling id it handed out (16 bytes each) for its
//! lifetime, and at most [`MAX_SETUPS_PER_PEER`] nonces per peer.

mod machine;

use serde::{Deserialize, Serialize};

pub use machine::OtSetup;

use super::offline::pair_sid;
use super::{BmrError, Result};
use crate::block::{encoded_len, Block};
use crate::circuit::PartyId;
use crate::ot::{
    BaseOtReceiver, BaseOtSender, BaseReceiverMsg, BaseSenderMsg, IknpReceiver, IknpReceiverBase,
    IknpSender, IknpSenderBase,
};

/// Most setups remembered per peer (a peer that restarts more often is refused).
pub const MAX_SETUPS_PER_PEER: usize = 1024;

/// One half of a pair's setup, from `from` to the recipient.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetupMsg {
    /// The setup's session id (the SECO session), bound into every base OT.
    pub session: [u8; 16],
    /// The sender.
    pub from: PartyId,
    /// Fresh per half: names it, and picks the session id of the base OTs whose receiver is
    /// the sender of this half.
    pub nonce: [u8; 16],
    /// `None` for a spontaneous half; the recipient's nonce when answering a restart.
    pub reply_to: Option<[u8; 16]>,
    /// Base-OT sender message (A) of the instance in which `from` is the IKNP receiver.
    pub ot_sender: BaseSenderMsg,
    /// Base-OT receiver message (choices `R^from`) of the instance in which `from` is the IKNP
    /// sender.
    pub ot_receiver: BaseReceiverMsg,
}

impl SetupMsg {
    /// Exact size of the message's CBOR encoding in bytes.
    pub fn encoded_len(&self) -> usize {
        encoded_len(self)
    }
}

/// An outgoing setup message and its recipient.
pub type SetupOutgoing = (PartyId, SetupMsg);

/// Base-OT session id of the instance in which `recv` is the IKNP receiver and `send` the
/// IKNP sender (the base-OT receiver), chosen by `send` with its half's nonce.
fn setup_sid(session: &[u8; 16], recv: PartyId, send: PartyId, nonce: &[u8; 16]) -> [u8; 16] {
    let mut h = blake3::Hasher::new_derive_key("seco bmr ot setup sid v1");
    h.update(session);
    h.update(&(recv as u64).to_le_bytes());
    h.update(&(send as u64).to_le_bytes());
    h.update(nonce);
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.finalize().as_bytes()[..16]);
    out
}

/// This party's half with one peer, waiting for the peer's half.
struct Half {
    nonce: [u8; 16],
    /// Base-OT sender of "me receives from peer" (its session id comes with the peer's half).
    sender: BaseOtSender,
    /// Base-OT receiver (choices `R^me`) of "peer receives from me".
    receiver: BaseOtReceiver,
}

/// The two IKNP bases of one pair, as seen by this party.
struct Pair {
    /// Instance "me receives from peer".
    recv: IknpReceiverBase,
    /// Instance "peer receives from me" (correlation `R^me`).
    send: IknpSenderBase,
    /// Names this pair's setup, the same at both ends ([`pair_tag`]).
    tag: [u8; 16],
}

/// The public name of one pair's setup: both halves' nonces, ordered by party. Both ends
/// compute the same tag; every garbling's `Extend` carries it, so a garbling drawn from a
/// replaced pair (a restart that raced the garbling) is refused instead of yielding IKNP
/// columns from mismatched base OTs, which would garble silently wrong tables.
fn pair_tag(
    session: &[u8; 16],
    a: PartyId,
    nonce_a: &[u8; 16],
    b: PartyId,
    nonce_b: &[u8; 16],
) -> [u8; 16] {
    let ((lo, n_lo), (hi, n_hi)) = if a < b {
        ((a, nonce_a), (b, nonce_b))
    } else {
        ((b, nonce_b), (a, nonce_a))
    };
    let mut h = blake3::Hasher::new_derive_key("seco bmr ot pair tag v1");
    h.update(session);
    h.update(&(lo as u64).to_le_bytes());
    h.update(n_lo);
    h.update(&(hi as u64).to_le_bytes());
    h.update(n_hi);
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.finalize().as_bytes()[..16]);
    out
}

/// One party's outcome of the setup: its session offset and the IKNP bases with every peer.
/// Garblings draw fresh extensions from it ([`super::OfflineParty::with_setup`]). Secret, in
/// memory only (zeroized on drop, printed as `[redacted]`).
pub struct PairwiseOt {
    session: [u8; 16],
    garblers: usize,
    me: PartyId,
    /// `R^me`: the free-XOR offset of every garbling drawn from this setup.
    offset: Block,
    pairs: Vec<Option<Pair>>,
    /// Garbling ids already drawn (each may be used once).
    used: std::collections::HashSet<[u8; 16]>,
    /// AND gates garbled under `offset` so far (at most `and_limit`).
    and_gates: u64,
    /// [`MAX_AND_PER_OFFSET`], or lower ([`PairwiseOt::lower_and_limit`]).
    and_limit: u64,
}

/// AND gates one session offset may garble (`docs/garbled-circuits.md`, the TMMO bound: the
/// advantage grows with the hash calls under one offset, a small multiple of these). A setup
/// that reached it refuses further garblings ([`BmrError::OffsetExhausted`]); the session must
/// be reopened, which sets up a new offset.
pub const MAX_AND_PER_OFFSET: u64 = 1 << 40;

impl Drop for PairwiseOt {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.offset);
    }
}

seco_core::redacted_debug!(PairwiseOt);
seco_core::redacted_debug!(OtSetup);

/// The fresh IKNP instances of one garbling, per peer (`None` at this party's own index).
pub(super) struct Extensions {
    pub receivers: Vec<Option<IknpReceiver>>,
    pub senders: Vec<Option<IknpSender>>,
    /// The pair tags ([`pair_tag`]) the extensions were drawn from.
    pub tags: Vec<Option<[u8; 16]>>,
}

impl PairwiseOt {
    /// Number of garblers.
    pub fn garblers(&self) -> usize {
        self.garblers
    }

    /// This party.
    pub fn party(&self) -> PartyId {
        self.me
    }

    /// The setup's session id.
    pub fn session(&self) -> [u8; 16] {
        self.session
    }

    /// Whether the pair with every peer is set up.
    pub fn is_complete(&self) -> bool {
        (0..self.garblers).all(|p| p == self.me || self.pairs[p].is_some())
    }

    /// Garblings drawn so far.
    pub fn garblings(&self) -> usize {
        self.used.len()
    }

    /// `R^me` (secret): a server keeps it in its session record, not in its stored
    /// garblings ([`super::Prepared::strip_offset`]).
    pub fn offset(&self) -> Block {
        self.offset
    }

    /// AND gates garbled under this setup's offset so far.
    pub fn and_gates(&self) -> u64 {
        self.and_gates
    }

    /// Lowers the AND gates this offset may garble (tests; never above
    /// [`MAX_AND_PER_OFFSET`]).
    pub fn lower_and_limit(&mut self, limit: u64) {
        self.and_limit = self.and_limit.min(limit);
    }

    /// Fresh extensions with every peer for the garbling `garbling` of `and_gates` AND gates
    /// (refused if the id was drawn before, a pair is missing, or the offset would garble
    /// more than [`MAX_AND_PER_OFFSET`]).
    pub(super) fn extensions(&mut self, garbling: &[u8; 16], and_gates: u64) -> Result<Extensions> {
        if let Some(peer) = (0..self.garblers).find(|&p| p != self.me && self.pairs[p].is_none()) {
            return Err(BmrError::MissingPair { peer });
        }
        let total = self.and_gates.saturating_add(and_gates);
        if total > self.and_limit {
            return Err(BmrError::OffsetExhausted {
                limit: self.and_limit,
            });
        }
        if !self.used.insert(*garbling) {
            return Err(BmrError::GarblingReused);
        }
        self.and_gates = total;
        let n = self.garblers;
        let mut receivers: Vec<Option<IknpReceiver>> = (0..n).map(|_| None).collect();
        let mut senders: Vec<Option<IknpSender>> = (0..n).map(|_| None).collect();
        let mut tags = vec![None; n];
        for (p, pair) in self.pairs.iter().enumerate() {
            if let Some(pair) = pair {
                receivers[p] = Some(pair.recv.extension(&pair_sid(garbling, self.me, p)));
                senders[p] = Some(pair.send.extension(&pair_sid(garbling, p, self.me)));
                tags[p] = Some(pair.tag);
            }
        }
        Ok(Extensions {
            receivers,
            senders,
            tags,
        })
    }
}

impl PairwiseOt {
    /// Fresh IKNP instances with `members` (by position; `None` at this party's own) for a
    /// protocol instance other than a garbling, e.g. the SECO mask conversion (`ot::B2a`).
    /// The id follows the garbling-id rule (each drawn once per setup); callers derive it in
    /// their own domain so that it never equals a garbling id.
    pub fn links(&mut self, id: &[u8; 16], members: &[PartyId]) -> Result<crate::ot::B2aLinks> {
        let ext = self.extensions(id, 0)?;
        let (mut receivers, mut senders) = (ext.receivers, ext.senders);
        let mut links = crate::ot::B2aLinks {
            receivers: Vec::with_capacity(members.len()),
            senders: Vec::with_capacity(members.len()),
            tags: Vec::with_capacity(members.len()),
        };
        for &p in members {
            if p >= self.garblers {
                return Err(BmrError::MissingPair { peer: p });
            }
            links.receivers.push(receivers[p].take());
            links.senders.push(senders[p].take());
            links.tags.push(ext.tags[p].unwrap_or_default());
        }
        Ok(links)
    }
}

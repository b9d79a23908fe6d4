//! The random words of a bundle's stage circuits, XOR-shared for the circuit and additively
//! shared for the linear layers (`ot::B2a`; why: `circuits.rs`, security:
//! `docs/garbled-circuits.md`, "XOR-shared stage words").
//!
//! For every stage `l` with a circuit, two sets of words:
//! ```text
//! input (kind 0):  the servers but O(l) sample b_p (y_len words) -> circuit inputs at once;
//!                  B2a among them -> u_p with sum_p u_p = XOR_p b_p, which is p's E2S output
//!                  share of stage l (e2s::follower_share_given; an E2sRequest that arrives
//!                  before u_p waits here)
//! mask (kind 1):   the servers but O(l+1) sample c_p (r_len words) -> circuit inputs at once;
//!                  B2a among them -> r_p, this server's share of stage l+1's mask:
//!                  Enc(r_p) -> O(l+1) (MaskShare), r_p kept as r_next
//! ```
//! The last stage's output circuit has no stage l+1: its mask shares r_p stay at p as p's
//! share of the result (`stages.rs`).
//! O(l+1) itself samples its mask share directly (it subtracts it outside the circuit). Each
//! set is converted in batches of [`B2A_BATCH`] words, each with its own IKNP extensions drawn
//! from the session's OT setup (id [`b2a_id`]), so no message grows with the model.

use rand::Rng;

use super::super::error::{Result, SecoError};
use super::super::ids::{BundleId, Party};
use super::super::io::Ready;
use super::super::msg::{Body, Bytes};
use super::ServerSession;
use crate::ot::{B2a, B2aExtend, B2aReply};

/// Words per conversion instance (`words * k` OTs; 2048 words of 32 bits: 1 MiB of IKNP
/// columns per message).
pub const B2A_BATCH: usize = 2048;

/// Kind 0: the words summed into the stage's input; kind 1: the stage's output mask.
pub(super) const INPUT: u8 = 0;
pub(super) const MASK: u8 = 1;

/// The IKNP extension id of one conversion batch (a domain of its own: never a garbling id).
pub fn b2a_id(bundle: &[u8; 16], stage: u16, kind: u8, batch: u32) -> [u8; 16] {
    let mut h = blake3::Hasher::new();
    h.update(b"seco b2a");
    h.update(bundle);
    h.update(&stage.to_le_bytes());
    h.update(&[kind]);
    h.update(&batch.to_le_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.finalize().as_bytes()[..16]);
    out
}

impl ServerSession {
    /// The members of a conversion (ascending), if stage `l` has a circuit.
    pub(super) fn b2a_members(&self, l: usize, kind: u8) -> Option<Vec<usize>> {
        let gc = self.sched.stages.get(l)?.gc.as_ref()?;
        let skip = match kind {
            INPUT => self.sched.stages[l].owner,
            MASK => gc.receiver,
            _ => return None,
        };
        Some((0..self.sched.n).filter(|&p| p != skip).collect())
    }

    fn b2a_words(&self, l: usize, kind: u8) -> usize {
        match (&self.sched.stages[l].gc, kind) {
            (Some(gc), INPUT) => gc.spec.y_len,
            (Some(gc), _) => gc.spec.r_len,
            (None, _) => 0,
        }
    }

    /// At the bundle's start: this server's words of stage `l` (both kinds it takes part in)
    /// and the first messages of their conversions.
    pub(super) fn start_masks(&mut self, bundle: BundleId, l: usize) -> Result<Ready> {
        let mut ready = Ready::default();
        for kind in [INPUT, MASK] {
            let Some(members) = self.b2a_members(l, kind) else {
                continue;
            };
            let Some(pos) = members.iter().position(|&p| p == self.me) else {
                continue;
            };
            let mask = self.sched.fp.mask();
            let k = self.sched.fp.ring_bits as usize;
            let n_words = self.b2a_words(l, kind);
            let words: Vec<u64> = (0..n_words)
                .map(|_| self.rng.random::<u64>() & mask)
                .collect();
            let batches = n_words.div_ceil(B2A_BATCH);
            let mut outs = Vec::new();
            let mut states = Vec::with_capacity(batches);
            for (b, chunk) in words.chunks(B2A_BATCH).enumerate() {
                let id = b2a_id(&bundle.0, l as u16, kind, b as u32);
                let setup = self
                    .ot
                    .as_mut()
                    .ok_or_else(|| SecoError::NotReady("no OT setup".into()))?
                    .pairwise_mut()?;
                let links = setup.links(&id, &members)?;
                let (state, out) = B2a::new(k, pos, members.len(), chunk, links)?;
                states.push(state);
                outs.extend(out.into_iter().map(|(q, e)| (b as u32, members[q], e)));
            }
            let st = &mut self.prep_of(bundle)?.stages[l];
            st.conv[kind as usize] = states.into_iter().map(Some).collect();
            st.conv_out[kind as usize] = vec![None; batches];
            if kind == INPUT {
                st.ybits = Some(words);
            } else {
                st.rbits = Some(words);
            }
            for (batch, to, ext) in outs {
                let mut bytes = Vec::new();
                let _ = ciborium::into_writer(&ext, &mut bytes);
                let body = Body::MaskBits {
                    bundle,
                    stage: l as u16,
                    kind,
                    batch,
                    msg: Bytes::from(bytes),
                };
                self.send(&mut ready, Party::Server(to as u16), body);
            }
            // A single member (two servers) has its shares at once.
            for b in 0..batches {
                self.take_batch(bundle, l, kind, b)?;
            }
            ready.extend(self.conv_done(bundle, l, kind)?);
        }
        Ok(ready)
    }

    /// One step of a conversion from server `from`.
    pub(super) fn on_mask_bits(
        &mut self,
        from: Party,
        bundle: BundleId,
        (stage, kind, batch): (u16, u8, u32),
        msg: &[u8],
    ) -> Result<Ready> {
        let sender = Self::expect_server(from, "MaskBits")?;
        let l = usize::from(stage);
        self.sched.stage(stage)?;
        let refuse = |reason: &str| SecoError::Bundle {
            bundle,
            reason: format!("MaskBits of stage {stage} kind {kind} batch {batch}: {reason}"),
        };
        let members = self
            .b2a_members(l, kind)
            .ok_or_else(|| refuse("no such conversion"))?;
        let (Some(me), Some(them)) = (
            members.iter().position(|&p| p == self.me),
            members.iter().position(|&p| p == sender),
        ) else {
            return Err(refuse("sender or receiver not a member"));
        };
        let mut ready = self.prep_mut(bundle)?;
        let st = &mut self.prep_of(bundle)?.stages[l];
        let state = st.conv[kind as usize]
            .get_mut(batch as usize)
            .and_then(Option::as_mut)
            .ok_or_else(|| refuse("unknown or finished batch"))?;
        let replies = if them > me {
            let ext: B2aExtend = ciborium::from_reader(msg)
                .map_err(|e| SecoError::Decode(format!("MaskBits extension: {e}")))?;
            state.on_extend(them, &ext)?
        } else {
            let reply: B2aReply = ciborium::from_reader(msg)
                .map_err(|e| SecoError::Decode(format!("MaskBits reply: {e}")))?;
            state.on_reply(them, &reply)?
        };
        for (q, reply) in replies {
            let mut bytes = Vec::new();
            let _ = ciborium::into_writer(&reply, &mut bytes);
            let body = Body::MaskBits {
                bundle,
                stage,
                kind,
                batch,
                msg: Bytes::from(bytes),
            };
            self.send(&mut ready, Party::Server(members[q] as u16), body);
        }
        self.take_batch(bundle, l, kind, batch as usize)?;
        ready.extend(self.conv_done(bundle, l, kind)?);
        Ok(ready)
    }

    /// Moves a finished batch's shares out of its conversion state.
    fn take_batch(&mut self, bundle: BundleId, l: usize, kind: u8, b: usize) -> Result<()> {
        let st = &mut self.prep_of(bundle)?.stages[l];
        let k = kind as usize;
        let done = st.conv[k]
            .get(b)
            .and_then(Option::as_ref)
            .and_then(B2a::shares);
        if let Some(shares) = done {
            st.conv[k][b] = None;
            st.conv_out[k][b] = Some(shares);
        }
        Ok(())
    }

    /// When every batch of a conversion is in: the input shares answer a waiting E2S request;
    /// the mask shares become `r_next` and go, encrypted, to the next stage's owner.
    fn conv_done(&mut self, bundle: BundleId, l: usize, kind: u8) -> Result<Ready> {
        let st = &mut self.prep_of(bundle)?.stages[l];
        let out = &mut st.conv_out[kind as usize];
        if out.is_empty() || out.iter().any(Option::is_none) {
            return Ok(Ready::default());
        }
        let shares: Vec<u64> = std::mem::take(out)
            .into_iter()
            .flatten()
            .flatten()
            .collect();
        if kind == INPUT {
            st.u_conv = Some(shares);
            return match st.e2s_early.take() {
                Some((from, req)) => self.answer_e2s(from, bundle, l as u16, &req),
                None => Ok(Ready::default()),
            };
        }
        st.r_next = Some(shares.clone());
        // The output circuit's mask shares are this server's share of the result: kept.
        let mut ready = if self.sched.is_last(l) {
            Ready::default()
        } else {
            self.send_mask_share(bundle, l + 1, &shares)?
        };
        ready.extend(self.try_complete(bundle)?);
        Ok(ready)
    }
}

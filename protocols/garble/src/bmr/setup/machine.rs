//! [`OtSetup`], the setup state machine of one garbler: its halves out, the peers' halves in,
//! answers to restarted peers (the protocol is in `setup.rs`).

use rand::{CryptoRng, Rng};

use super::{pair_tag, setup_sid, Half, Pair, PairwiseOt, SetupMsg, SetupOutgoing};
use super::{MAX_AND_PER_OFFSET, MAX_SETUPS_PER_PEER};
use crate::block::Block;
use crate::bmr::{BmrError, Result, MAX_GARBLERS};
use crate::circuit::PartyId;
use crate::ot::{BaseOtReceiver, BaseOtSender, IknpReceiverBase, IknpSenderBase, KAPPA};

/// The setup state machine of one garbler (sans-IO). It stays alive for the session to answer
/// restarted peers. Prints as `OtSetup([redacted])`; its base OTs wipe themselves.
pub struct OtSetup {
    ot: PairwiseOt,
    /// This party's halves not yet combined, per peer.
    pending: Vec<Option<Half>>,
    /// Nonces of the peers' halves combined so far (duplicates are refused).
    seen: Vec<Vec<[u8; 16]>>,
}

fn offset_bits(r: Block) -> Vec<bool> {
    (0..KAPPA).map(|j| (r.0 >> j) & 1 == 1).collect()
}

impl OtSetup {
    /// Starts garbler `me` of `garblers` in `session`: a fresh offset and one half per peer.
    pub fn new<R: Rng + CryptoRng + ?Sized>(
        rng: &mut R,
        session: [u8; 16],
        garblers: usize,
        me: PartyId,
    ) -> Result<(Self, Vec<SetupOutgoing>)> {
        let offset = Block(Block::random(rng).0 | 1);
        Self::with_offset(rng, session, garblers, me, offset)
    }

    /// Starts garbler `me` with a given session offset (lsb 1): a party that restarts keeps
    /// the offset its stored garblings were made under (module docs, "Restarts").
    pub fn with_offset<R: Rng + CryptoRng + ?Sized>(
        rng: &mut R,
        session: [u8; 16],
        garblers: usize,
        me: PartyId,
        offset: Block,
    ) -> Result<(Self, Vec<SetupOutgoing>)> {
        if !offset.lsb() {
            return Err(BmrError::Config("a session offset must have lsb 1".into()));
        }
        if garblers == 0 || garblers > MAX_GARBLERS {
            return Err(BmrError::Config(format!(
                "garblers must be 1..={MAX_GARBLERS}, got {garblers}"
            )));
        }
        if me >= garblers {
            return Err(BmrError::UnknownParty { party: me });
        }
        let mut s = OtSetup {
            ot: PairwiseOt {
                session,
                garblers,
                me,
                offset,
                pairs: (0..garblers).map(|_| None).collect(),
                used: Default::default(),
                and_gates: 0,
                and_limit: MAX_AND_PER_OFFSET,
            },
            pending: (0..garblers).map(|_| None).collect(),
            seen: vec![Vec::new(); garblers],
        };
        let mut out = Vec::with_capacity(garblers.saturating_sub(1));
        for p in (0..garblers).filter(|&p| p != me) {
            let (half, msg) = s.half(rng, p, None);
            s.pending[p] = Some(half);
            out.push((p, msg));
        }
        Ok((s, out))
    }

    /// A fresh half for `peer`.
    fn half<R: Rng + CryptoRng + ?Sized>(
        &self,
        rng: &mut R,
        peer: PartyId,
        reply_to: Option<[u8; 16]>,
    ) -> (Half, SetupMsg) {
        let ot = &self.ot;
        let nonce: [u8; 16] = rng.random();
        // The base-OT sender's session id arrives with the peer's half (`finish_with_sid`).
        let (sender, ot_sender) = BaseOtSender::new(rng, [0; 16], KAPPA);
        let sid = setup_sid(&ot.session, peer, ot.me, &nonce);
        let (receiver, ot_receiver) = BaseOtReceiver::new(rng, sid, &offset_bits(ot.offset));
        let msg = SetupMsg {
            session: ot.session,
            from: ot.me,
            nonce,
            reply_to,
            ot_sender,
            ot_receiver,
        };
        (
            Half {
                nonce,
                sender,
                receiver,
            },
            msg,
        )
    }

    /// This party's session offset `R^me` (secret).
    pub fn offset(&self) -> Block {
        self.ot.offset
    }

    /// Whether every pair is set up.
    pub fn is_done(&self) -> bool {
        self.ot.is_complete()
    }

    /// The setup's outcome, once complete.
    pub fn pairwise(&self) -> Result<&PairwiseOt> {
        self.check_done()?;
        Ok(&self.ot)
    }

    /// The setup's outcome, mutably (garblings draw from it), once complete.
    pub fn pairwise_mut(&mut self) -> Result<&mut PairwiseOt> {
        self.check_done()?;
        Ok(&mut self.ot)
    }

    /// The outcome, for drivers that do not answer restarts.
    pub fn into_pairwise(self) -> Result<PairwiseOt> {
        self.check_done()?;
        Ok(self.ot)
    }

    fn check_done(&self) -> Result<()> {
        match (0..self.ot.garblers).find(|&p| p != self.ot.me && self.ot.pairs[p].is_none()) {
            Some(peer) => Err(BmrError::MissingPair { peer }),
            None => Ok(()),
        }
    }

    fn check(&self, from: PartyId, msg: &SetupMsg) -> Result<()> {
        if msg.session != self.ot.session {
            return Err(BmrError::WrongSession);
        }
        if from >= self.ot.garblers || from == self.ot.me {
            return Err(BmrError::UnknownParty { party: from });
        }
        if msg.from != from {
            return Err(BmrError::WrongSender {
                claimed: msg.from,
                actual: from,
            });
        }
        if msg.ot_receiver.r.len() != KAPPA {
            return Err(BmrError::Length {
                what: "base OT points",
                expected: KAPPA,
                actual: msg.ot_receiver.r.len(),
            });
        }
        if self.seen[from].contains(&msg.nonce)
            || self.pending[from]
                .as_ref()
                .is_some_and(|h| h.nonce == msg.nonce)
        {
            return Err(BmrError::Duplicate {
                from,
                round: "OT setup",
            });
        }
        if self.seen[from].len() >= MAX_SETUPS_PER_PEER {
            return Err(BmrError::Limit {
                what: "OT setups per peer",
                limit: MAX_SETUPS_PER_PEER,
            });
        }
        Ok(())
    }

    /// Handles a peer's half; returns the messages to send (an answer if the peer restarted).
    /// A refused message leaves the state unchanged.
    pub fn handle<R: Rng + CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        from: PartyId,
        msg: SetupMsg,
    ) -> Result<Vec<SetupOutgoing>> {
        self.check(from, &msg)?;
        let mut out = Vec::new();
        let half = match (msg.reply_to, self.pending[from].take()) {
            // The answer to our half (we restarted).
            (Some(n), Some(h)) if h.nonce == n => h,
            (Some(_), h) => {
                self.pending[from] = h;
                return Err(BmrError::StaleSetup { from });
            }
            // Both sent spontaneous halves: session open, or both restarted.
            (None, Some(h)) => h,
            // The pair was complete: the peer restarted; answer with a fresh half.
            (None, None) => {
                let (h, m) = self.half(rng, from, Some(msg.nonce));
                out.push((from, m));
                h
            }
        };
        match self.combine(&half, from, &msg) {
            Ok(pair) => {
                self.ot.pairs[from] = Some(pair);
                self.seen[from].push(msg.nonce);
                Ok(out)
            }
            Err(e) => {
                // Keep our pending half unless it was made for this (refused) message.
                if out.is_empty() {
                    self.pending[from] = Some(half);
                }
                Err(e)
            }
        }
    }

    /// Finishes both base OTs of the pair with `from` from our half and theirs.
    fn combine(&self, half: &Half, from: PartyId, msg: &SetupMsg) -> Result<Pair> {
        let ot = &self.ot;
        let sid = setup_sid(&ot.session, ot.me, from, &msg.nonce);
        let pairs = half.sender.finish_with_sid(&sid, &msg.ot_receiver)?;
        let seeds = half.receiver.finish(&msg.ot_sender)?;
        Ok(Pair {
            recv: IknpReceiverBase::new(pairs)?,
            send: IknpSenderBase::new(ot.offset, seeds)?,
            tag: pair_tag(&ot.session, ot.me, &half.nonce, from, &msg.nonce),
        })
    }
}

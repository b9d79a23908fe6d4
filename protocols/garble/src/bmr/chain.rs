//! Round 5 intake of [`OfflineParty`]: the output-mask shares (`Final`, with a keyed garbler's
//! key seed for the evaluator, `known.rs`) and the table chain (`Tables`): keyed garbler in
//! slot s adds its share to the part from slot s - 1 and passes it on; the evaluator adds the
//! last part to its own share terms.

use super::msg::{Body, Outgoing};
use super::offline::OfflineParty;
use super::{BmrError, Result};
use crate::circuit::PartyId;

impl OfflineParty {
    pub(super) fn take_final(&mut self, from: PartyId, body: Body) -> Result<()> {
        // A keyed garbler sends it after round 4, which needs this party's round-3 message;
        // the keyless evaluator after its round 3, which needs this party's round 2.
        let earliest = if self.cfg.is_keyed(from) { 4 } else { 3 };
        if !self.cfg.receives_final(self.me) || !self.cfg.is_garbler(from) || self.round < earliest
        {
            return Err(self.wrong_round(&body));
        }
        if self.finals[from] {
            return Err(BmrError::Duplicate {
                from,
                round: body.round(),
            });
        }
        self.check_len(from, &body)?;
        if let Body::Final {
            output_masks,
            key_seed,
        } = body
        {
            if self.me == self.cfg.evaluator {
                self.known.take_seed(&self.cfg, from, key_seed)?;
            }
            for (i, m) in self.out_masks.iter_mut().enumerate() {
                *m ^= output_masks.get(i);
            }
            self.finals[from] = true;
        }
        Ok(())
    }

    /// Round 5, the table chain: the predecessor's part (`BmrConfig::chain_prev`). The
    /// evaluator adds it to its own share terms; a keyed garbler adds its own share and
    /// passes the sum on, at once or when it has garbled.
    pub(super) fn take_tables(&mut self, from: PartyId, body: Body) -> Result<Vec<Outgoing>> {
        if self.cfg.chain_prev(self.me) != Some(from) || self.round < 4 {
            return Err(self.wrong_round(&body));
        }
        if !self.chain_wait || self.chain_part.is_some() {
            return Err(BmrError::Duplicate {
                from,
                round: body.round(),
            });
        }
        self.check_len(from, &body)?;
        let Body::Tables(part) = body else {
            return Err(self.wrong_round(&body));
        };
        let mut out = Vec::new();
        if self.me == self.cfg.evaluator {
            for (acc, t) in self.tables.iter_mut().zip(&part) {
                *acc ^= *t;
            }
            self.chain_wait = false;
        } else {
            self.chain_part = Some(part);
            out.extend(self.pass_chain());
        }
        out.extend(self.advance()?);
        Ok(out)
    }

    /// A keyed garbler with its own share and its predecessor's part (if it has one) sends
    /// their XOR down the chain.
    pub(super) fn pass_chain(&mut self) -> Vec<Outgoing> {
        let Some(mut share) = self.own_share.take() else {
            return Vec::new();
        };
        if self.chain_wait {
            let Some(part) = self.chain_part.take() else {
                self.own_share = Some(share);
                return Vec::new();
            };
            for (s, p) in share.iter_mut().zip(&part) {
                *s ^= *p;
            }
            self.chain_wait = false;
        }
        let next = self.cfg.chain_next(self.me);
        vec![self.msg(next, Body::Tables(share))]
    }
}

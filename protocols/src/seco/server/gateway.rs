//! What only the gateway does: it is the user's single contact (DESIGN.md s.2), relays the
//! user's preprocessing and inference requests to the servers, collects the servers'
//! acknowledgements, and aggregates the result ciphertexts into the one the user decrypts.

use std::collections::HashMap;

use super::super::error::{Result, SecoError};
use super::super::ids::{BundleId, Party};
use super::super::io::{Event, Ready};
use super::super::msg::{unpack_ring, Body, Bytes};
use super::{ServerSession, MAX_IN_FLIGHT};
use crate::mhe::{Ciphertext, Layout, ResultCiphertext, S2eAggregator};

/// The gateway's bookkeeping (empty on remotes).
pub(crate) struct GatewayState {
    /// `KeyReady` key id of every remote (index 0 unused).
    key_ready: Vec<Option<[u8; 32]>>,
    /// Which remotes reported their OT setup complete (index 0 unused).
    ot_ready: Vec<bool>,
    /// Which servers finished each bundle.
    prep_done: HashMap<BundleId, Vec<bool>>,
    /// The user's encrypted input mask of each bundle whose `PrepStart` went out and whose HE
    /// work waits for the resumed step ([`super::super::io::Input::Resume`]).
    masks: HashMap<BundleId, PendingMask>,
    /// Result ciphertexts of each inference, aggregated (shares-to-encryption).
    results: HashMap<BundleId, S2eAggregator>,
}

/// The user's input mask of a bundle between its `PrepStart` and the resumed step.
pub(crate) enum PendingMask {
    /// Decoded: this server owns stage 0.
    Mine(Vec<Ciphertext>),
    /// As received, for the owner of stage 0.
    Forward(Vec<Bytes>),
}

impl GatewayState {
    pub(crate) fn new(n: usize) -> Self {
        Self {
            key_ready: vec![None; n],
            ot_ready: vec![false; n],
            prep_done: HashMap::new(),
            masks: HashMap::new(),
            results: HashMap::new(),
        }
    }

    pub(crate) fn record_key_ready(&mut self, from: Party, key_id: [u8; 32]) -> Result<()> {
        let i = from.server().unwrap_or(0);
        match self.key_ready.get_mut(i) {
            Some(slot @ None) => {
                *slot = Some(key_id);
                Ok(())
            }
            _ => Err(SecoError::Duplicate { from, seq: 0 }),
        }
    }

    /// A remote's `OtReady`; false if it had reported before.
    pub(crate) fn record_ot_ready(&mut self, i: usize) -> bool {
        self.ot_ready
            .get_mut(i)
            .is_some_and(|r| !std::mem::replace(r, true))
    }

    /// Whether every remote reported its OT setup complete.
    pub(crate) fn all_ot_ready(&self) -> bool {
        self.ot_ready.iter().skip(1).all(|&r| r)
    }

    /// `None` while some remote has not reported, else whether all match `mine`.
    pub(crate) fn keys_agree(&self, mine: [u8; 32]) -> Option<bool> {
        let remotes = &self.key_ready[1..];
        if remotes.iter().any(Option::is_none) {
            return None;
        }
        Some(remotes.iter().all(|k| *k == Some(mine)))
    }

    pub(crate) fn forget(&mut self, bundle: BundleId) {
        self.prep_done.remove(&bundle);
        self.results.remove(&bundle);
    }
}

impl ServerSession {
    /// Gateway: the user asks for a bundle with `Enc(r_1)`.
    pub(super) fn on_prep_request(
        &mut self,
        bundle: BundleId,
        input_mask: Vec<Bytes>,
    ) -> Result<Ready> {
        if self.preps.contains_key(&bundle) || self.gw.prep_done.contains_key(&bundle) {
            return Err(SecoError::Bundle {
                bundle,
                reason: "already requested".into(),
            });
        }
        if self.gw.prep_done.len() >= MAX_IN_FLIGHT {
            return Err(SecoError::TooManyBundles {
                limit: MAX_IN_FLIGHT,
            });
        }
        // A malformed mask is refused before any server starts the bundle (a remote owner of
        // stage 0 checks the copy it is forwarded).
        let pending = if self.sched.stages[0].owner == self.me {
            PendingMask::Mine(self.decode_mask(0, &input_mask)?)
        } else {
            PendingMask::Forward(input_mask)
        };
        self.gw.prep_done.insert(bundle, vec![false; self.sched.n]);
        let mut ready = Ready::default();
        // `PrepStart` goes out first, so that the remotes start garbling while this server
        // computes on the mask (the HE product of stage 0 takes tens of milliseconds).
        self.broadcast(&mut ready, &Body::PrepStart { bundle });
        self.gw.masks.insert(bundle, pending);
        ready.resume.push(bundle);
        Ok(ready)
    }

    /// Gateway: the work on a new bundle's input mask, after its `PrepStart` went out.
    pub(super) fn on_resume(&mut self, bundle: BundleId) -> Result<Ready> {
        let Some(input_mask) = self.gw.masks.remove(&bundle) else {
            return Err(SecoError::Bundle {
                bundle,
                reason: "nothing to resume".into(),
            });
        };
        let mut ready = Ready::default();
        match input_mask {
            PendingMask::Mine(cts) => ready.extend(self.prep_input_mask(bundle, cts)?),
            PendingMask::Forward(cts) => {
                ready.extend(self.prep_mut(bundle)?);
                let to = Party::Server(self.sched.stages[0].owner as u16);
                self.send(&mut ready, to, Body::InputMask { bundle, cts });
            }
        }
        Ok(ready)
    }

    /// Gateway: server `from` (or the gateway itself) finished `bundle`.
    pub(super) fn on_prep_done(&mut self, from: usize, bundle: BundleId) -> Result<Ready> {
        let done = self
            .gw
            .prep_done
            .get_mut(&bundle)
            .ok_or(SecoError::Bundle {
                bundle,
                reason: "not in preparation".into(),
            })?;
        if std::mem::replace(&mut done[from], true) {
            return Err(SecoError::Duplicate {
                from: Party::Server(from as u16),
                seq: 0,
            });
        }
        let mut ready = Ready::default();
        if done.iter().all(|&d| d) {
            self.gw.prep_done.remove(&bundle);
            self.send(&mut ready, Party::User, Body::BundleReady { bundle });
        }
        Ok(ready)
    }

    /// Gateway: the user runs an inference.
    pub(super) fn on_infer(&mut self, bundle: BundleId, masked_input: Bytes) -> Result<Ready> {
        let expected = self.sched.stages[0].spec.linear.in_len();
        let values = unpack_ring(&masked_input, self.sched.fp.ring_bits, expected)?;
        if self.gw.results.contains_key(&bundle) || self.onlines.contains_key(&bundle) {
            return Err(SecoError::Bundle {
                bundle,
                reason: "already in use".into(),
            });
        }
        if self.gw.results.len() >= MAX_IN_FLIGHT {
            return Err(SecoError::TooManyBundles {
                limit: MAX_IN_FLIGHT,
            });
        }
        let agg = S2eAggregator::new(self.cfg.user_param, self.sched.n, 1);
        self.gw.results.insert(bundle, agg);
        let mut ready = Ready::default();
        self.broadcast(&mut ready, &Body::OnlineStart { bundle });
        let owner0 = self.sched.stages[0].owner;
        if owner0 == self.me {
            ready.extend(self.online_masked_input(bundle, values)?);
        } else {
            ready.extend(self.online_mut(bundle)?);
            let to = Party::Server(owner0 as u16);
            self.send(
                &mut ready,
                to,
                Body::MaskedInput {
                    bundle,
                    values: masked_input,
                },
            );
        }
        Ok(ready)
    }

    /// Gateway: one server's encrypted share of the logits; the last one completes the result.
    pub(super) fn on_result_share(
        &mut self,
        from: usize,
        bundle: BundleId,
        cts: &[Bytes],
    ) -> Result<Ready> {
        let cts = cts
            .iter()
            .map(|b| Ciphertext::from_bytes(b, self.cfg.user_param))
            .collect::<crate::mhe::Result<Vec<_>>>()?;
        let agg = self.gw.results.get_mut(&bundle).ok_or(SecoError::Bundle {
            bundle,
            reason: "no inference running".into(),
        })?;
        let Some(total) = agg.handle(from as u16, &cts)? else {
            return Ok(Ready::default());
        };
        self.gw.results.remove(&bundle);
        let layout = self.result_layout()?;
        let first = total.first().ok_or(SecoError::Length {
            what: "result ciphertexts",
            expected: 1,
            actual: 0,
        })?;
        let rc = ResultCiphertext::restrict(first, &layout)?;
        let mut ready = Ready::default();
        self.send(
            &mut ready,
            Party::User,
            Body::Result {
                bundle,
                ct: Bytes::from(rc.to_bytes()),
            },
        );
        ready.events.push(Event::InferenceDone(bundle));
        Ok(ready)
    }

    /// Layout of the result (truncated logits, or the label) in the user's ciphertext.
    pub(crate) fn result_layout(&self) -> Result<Layout> {
        let degree = self.cfg.user_param.params()?.degree();
        Ok(Layout::contiguous(self.sched.output_len(), degree))
    }
}

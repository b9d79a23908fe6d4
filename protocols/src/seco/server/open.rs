//! Phase 0 (session open) and phase 1 (collective key generation, Mouchet et al. PETS 2021
//! s.4, run when the servers hold no key in common: otherwise the newest key every server
//! holds is reused).
//!
//! ```text
//! U -> G      Hello { model, user_pk, user-part digest, output mode }   (checked against G's
//!             part; the mode builds the last stage's output circuit, an unknown one aborts)
//! G -> R_i    Open { model, skeleton digest, key_ids (G's keys, newest first), user_pk,
//!             output mode }
//!   key_ids not empty: R_i -> G OpenAck { the listed keys it holds };
//!                      G -> R_i UseKey { the newest key all hold, or none }
//!   key_ids empty, or UseKey { none }:
//!                      every server runs CollectiveKeygen, persists its key share (a new
//!                      key beside the ones it holds), R_i -> G KeyReady { key_id };
//!                      G checks they all match.
//!   meanwhile, from Hello (G) or Open (R_i): the pairwise OT setup (`setup.rs`),
//!                      R_i -> G OtReady once its pairs are done
//! G -> U      Welcome { collective_pk }    (keys agree, every server's OT setup done)
//! ```
//!
//! Why keys never lock out: a server keeps its previous keys (up to `MAX_KEYS`) when it stores
//! a new one, and a session runs under the newest key that *every* server confirms holding.
//! A key generation interrupted after some servers stored the new key (a crash, a lost
//! `KeyReady`) leaves those servers with one key more than the others; the next session falls
//! back to the newest key all hold, or, when there is none, generates a fresh one. No operator
//! step is needed and no server ever uses a key another lacks.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::super::error::{Result, SecoError};
use super::super::ids::Party;
use super::super::io::{Event, Persist, Ready};
use super::super::keys::KeyMaterial;
use super::super::msg::{Body, Bytes, SecoMsg, MAX_KEYS};
use super::{ServerSession, State};
use crate::mhe::{CollectiveKeygen, KeygenConfig, KeygenMsg, PublicKey, To};

impl ServerSession {
    pub(super) fn on_open(&mut self, from: Party, msg: SecoMsg) -> Result<Ready> {
        match (&self.state, &msg.body) {
            (State::AwaitOpen, Body::Hello { .. }) if self.is_gateway() => {
                self.on_hello(from, msg.body)
            }
            (State::AwaitOpen, Body::Open { .. }) if !self.is_gateway() => {
                self.on_open_msg(from, msg.body)
            }
            (State::AwaitKeyChoice, Body::UseKey { key_id }) => {
                let key_id = *key_id;
                self.expect_from(from, "UseKey", &[Party::GATEWAY])?;
                self.on_use_key(key_id)
            }
            (State::AwaitOpen | State::AwaitKeyChoice, Body::Keygen(_)) => {
                // Another server started key generation before our `Open` arrived.
                if self.early_keygen.len() >= 4 * self.sched.n {
                    return Err(self.wrong_phase(&msg.body));
                }
                self.early_keygen.push((from, msg));
                Ok(Ready::default())
            }
            (State::Opening { .. }, Body::OpenAck { .. }) => self.on_open_ack(from, msg.body),
            (State::Keygen(_), Body::Keygen(bytes)) => {
                let bytes = bytes.clone();
                self.on_keygen(from, &bytes)
            }
            (State::Keygen(_) | State::AwaitKeyReady, Body::KeyReady { key_id })
                if self.is_gateway() =>
            {
                self.expect_from(from, msg.body.name(), &self.remotes())?;
                self.gw.record_key_ready(from, *key_id)?;
                self.try_finish_key_ready()
            }
            _ => Err(self.wrong_phase(&msg.body)),
        }
    }

    fn remotes(&self) -> Vec<Party> {
        (1..self.sched.n).map(|i| Party::Server(i as u16)).collect()
    }

    fn check_model(&self, model: &str) -> Result<()> {
        if model != self.cfg.part.model {
            return Err(SecoError::Mismatch(format!(
                "session is for model {model:?}, this server serves {:?}",
                self.cfg.part.model
            )));
        }
        Ok(())
    }

    /// Gateway, (1): the user opens the session.
    fn on_hello(&mut self, from: Party, body: Body) -> Result<Ready> {
        self.expect_from(from, "Hello", &[Party::User])?;
        let Body::Hello {
            model,
            user_pk,
            part_digest,
            output,
        } = body
        else {
            return Err(self.wrong_phase(&body));
        };
        // The user's key first: with it the session counts as the user's, and a refusal
        // below (fatal: the session aborts) reaches the user as an `Abort` with the reason.
        self.user_pk = Some(PublicKey::from_bytes(&user_pk, self.cfg.user_param)?);
        self.check_model(&model)?;
        let expected = self.cfg.part.user_part();
        if part_digest != expected.digest() {
            return Err(SecoError::UserPartMismatch {
                expected: expected.describe(),
            });
        }
        self.set_output(output)?;
        let key_ids = self.key_ids();
        let mut ready = Ready::default();
        let open = Body::Open {
            model,
            skeleton: self.sched.digest,
            key_ids: key_ids.clone(),
            user_pk,
            output,
        };
        self.broadcast(&mut ready, &open);
        ready.extend(self.start_setup()?);
        if key_ids.is_empty() {
            ready.extend(self.start_keygen()?);
        } else {
            self.state = State::Opening {
                acks: vec![None; self.sched.n],
            };
        }
        Ok(ready)
    }

    /// Remote, (1): the gateway opens the session.
    fn on_open_msg(&mut self, from: Party, body: Body) -> Result<Ready> {
        self.expect_from(from, "Open", &[Party::GATEWAY])?;
        let Body::Open {
            model,
            skeleton,
            key_ids,
            user_pk,
            output,
        } = body
        else {
            return Err(self.wrong_phase(&body));
        };
        self.check_model(&model)?;
        if skeleton != self.sched.digest {
            return Err(SecoError::Mismatch(
                "the gateway's split differs from this server's part (skeleton digest)".into(),
            ));
        }
        if key_ids.len() > MAX_KEYS {
            return Err(SecoError::Decode(format!(
                "Open lists {} keys, at most {MAX_KEYS}",
                key_ids.len()
            )));
        }
        self.set_output(output)?;
        self.user_pk = Some(PublicKey::from_bytes(&user_pk, self.cfg.user_param)?);
        let mut ready = self.start_setup()?;
        if key_ids.is_empty() {
            ready.extend(self.start_keygen()?);
        } else {
            let held: Vec<[u8; 32]> = key_ids
                .into_iter()
                .filter(|id| self.ring.iter().any(|k| k.key_id == *id && self.usable(k)))
                .collect();
            self.send(&mut ready, Party::GATEWAY, Body::OpenAck { key_ids: held });
            self.state = State::AwaitKeyChoice;
        }
        Ok(ready)
    }

    /// Gateway, (2): a remote's key id.
    fn on_open_ack(&mut self, from: Party, body: Body) -> Result<Ready> {
        self.expect_from(from, "OpenAck", &self.remotes())?;
        let (State::Opening { acks }, Body::OpenAck { key_ids }) = (&mut self.state, &body) else {
            return Err(self.wrong_phase(&body));
        };
        if key_ids.len() > MAX_KEYS {
            return Err(SecoError::Decode(format!(
                "OpenAck lists {} keys, at most {MAX_KEYS}",
                key_ids.len()
            )));
        }
        let slot = &mut acks[from.server().unwrap_or(0)];
        if slot.is_some() {
            return Err(SecoError::Duplicate { from, seq: 0 });
        }
        *slot = Some(key_ids.clone());
        if acks.iter().skip(1).any(Option::is_none) {
            return Ok(Ready::default());
        }
        // The newest of the gateway's keys that every remote holds.
        let lifetime = self.key_lifetime;
        let chosen = self
            .ring
            .iter()
            .filter(|k| k.uses.load(Ordering::SeqCst) < lifetime)
            .find(|k| {
                acks.iter()
                    .skip(1)
                    .all(|a| a.as_ref().is_some_and(|ids| ids.contains(&k.key_id)))
            });
        let mut ready = Ready::default();
        match chosen.cloned() {
            Some(key) => {
                let key_id = key.key_id;
                self.keys = Some(key);
                self.broadcast(
                    &mut ready,
                    &Body::UseKey {
                        key_id: Some(key_id),
                    },
                );
                ready.extend(self.keys_in_place()?);
            }
            None => {
                self.broadcast(&mut ready, &Body::UseKey { key_id: None });
                ready.extend(self.start_keygen()?);
            }
        }
        Ok(ready)
    }

    /// Remote, (2'): the gateway's choice of key.
    fn on_use_key(&mut self, key_id: Option<[u8; 32]>) -> Result<Ready> {
        match key_id {
            None => self.start_keygen(),
            Some(id) => {
                let Some(key) = self.ring.iter().find(|k| k.key_id == id).cloned() else {
                    return Ok(self.abort(
                        None,
                        "the gateway chose a collective key this server does not hold",
                    ));
                };
                self.keys = Some(key);
                self.keys_in_place()
            }
        }
    }

    /// The ids of the keys this server holds and may still use, newest first.
    fn key_ids(&self) -> Vec<[u8; 32]> {
        self.ring
            .iter()
            .filter(|k| self.usable(k))
            .map(|k| k.key_id)
            .collect()
    }

    /// Whether this server may lead more bundles under `key` (its lifetime budget).
    fn usable(&self, key: &KeyMaterial) -> bool {
        key.uses.load(Ordering::SeqCst) < self.key_lifetime
    }

    /// (5) Keys in place (at every server, for the gateway): wait for the OT setup.
    pub(super) fn keys_in_place(&mut self) -> Result<Ready> {
        self.state = State::AwaitSetup;
        self.try_ready()
    }

    /// (6) Ready once the keys and the OT setup are in place: the gateway needs its own setup
    /// and every remote's `OtReady` (after a resume, its own setup only), a remote its own
    /// setup. Persist the record, then (gateway, not resumed) tell the user.
    pub(super) fn try_ready(&mut self) -> Result<Ready> {
        let setups_done =
            self.ot_done && (!self.is_gateway() || self.resumed || self.gw.all_ot_ready());
        if !matches!(self.state, State::AwaitSetup) || !setups_done {
            return Ok(Ready::default());
        }
        let pk = self
            .keys
            .as_ref()
            .map(|k| k.pk.to_bytes())
            .ok_or_else(|| SecoError::NotReady("no collective key".into()))?;
        self.state = State::Ready;
        let mut ready = Ready::default();
        ready.persist.extend(self.record());
        if self.is_gateway() && !self.resumed {
            self.send(
                &mut ready,
                Party::User,
                Body::Welcome {
                    collective_pk: Bytes::from(pk),
                },
            );
        }
        ready.events.push(Event::SessionReady);
        Ok(ready)
    }

    /// (3) Starts the collective key generation and replays early messages.
    fn start_keygen(&mut self) -> Result<Ready> {
        let mut ctx = blake3::Hasher::new();
        ctx.update(b"seco keygen");
        ctx.update(&self.cfg.session.0);
        ctx.update(&self.sched.digest);
        let cfg = KeygenConfig {
            param: self.cfg.param,
            n: self.sched.n,
            me: self.me as u16,
            context: *ctx.finalize().as_bytes(),
        };
        let mut kg = CollectiveKeygen::new(cfg, &mut self.rng)?;
        let out = kg.start()?;
        self.state = State::Keygen(Box::new(kg));
        let mut ready = Ready::default();
        self.send_keygen(&mut ready, out)?;
        for (from, msg) in std::mem::take(&mut self.early_keygen) {
            if let Body::Keygen(bytes) = msg.body {
                ready.extend(self.on_keygen(from, &bytes)?);
            }
        }
        Ok(ready)
    }

    fn send_keygen(
        &mut self,
        ready: &mut Ready,
        out: Vec<crate::mhe::Outgoing<KeygenMsg>>,
    ) -> Result<()> {
        let params = self.cfg.param.params()?;
        for o in out {
            let body = Body::Keygen(Bytes::from(o.msg.to_bytes(&params)));
            match o.to {
                To::All => self.broadcast(ready, &body),
                To::Party(p) => self.send(ready, Party::Server(p), body),
            }
        }
        Ok(())
    }

    fn on_keygen(&mut self, from: Party, bytes: &[u8]) -> Result<Ready> {
        let sender = from
            .server()
            .ok_or_else(|| SecoError::Decode("key generation message from the user".into()))?;
        let msg = KeygenMsg::from_bytes(bytes, self.cfg.param)?;
        let State::Keygen(kg) = &mut self.state else {
            return Err(SecoError::NotReady("no key generation running".into()));
        };
        let out = kg.handle(sender as u16, msg)?;
        let done = kg.is_done();
        let mut ready = Ready::default();
        self.send_keygen(&mut ready, out)?;
        if done {
            ready.extend(self.finish_keygen()?);
        }
        Ok(ready)
    }

    /// (4) Persist the key share before announcing it.
    fn finish_keygen(&mut self) -> Result<Ready> {
        let State::Keygen(kg) = std::mem::replace(&mut self.state, State::AwaitOpen) else {
            return Err(SecoError::NotReady("no key generation running".into()));
        };
        let (sk, pk) = kg.finish()?;
        let mut keys = KeyMaterial::new(sk, pk);
        if let Some(counter) = &self.key_counter {
            keys.uses = counter(&keys.key_id);
        }
        let keys = Arc::new(keys);
        let key_id = keys.key_id;
        let mut ready = Ready::default();
        ready.persist.push(Persist::Keys(keys.to_bytes().to_vec()));
        self.ring.insert(0, keys.clone());
        self.ring.truncate(MAX_KEYS);
        self.keys = Some(keys);
        if self.is_gateway() {
            self.state = State::AwaitKeyReady;
            ready.extend(self.try_finish_key_ready()?);
        } else {
            self.send(&mut ready, Party::GATEWAY, Body::KeyReady { key_id });
            ready.extend(self.keys_in_place()?);
        }
        Ok(ready)
    }

    /// Gateway, (4): every remote persisted the same key.
    fn try_finish_key_ready(&mut self) -> Result<Ready> {
        if !matches!(self.state, State::AwaitKeyReady) {
            return Ok(Ready::default());
        }
        let Some(mine) = self.keys.as_ref().map(|k| k.key_id) else {
            return Ok(Ready::default());
        };
        match self.gw.keys_agree(mine) {
            None => Ok(Ready::default()),
            Some(false) => Ok(self.abort(None, "key generation ended with different keys")),
            Some(true) => self.keys_in_place(),
        }
    }
}

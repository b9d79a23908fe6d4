//! Phase 0 (session open) and phase 1 (collective key generation, Mouchet et al. PETS 2021
//! s.4, run once per deployment: a stored key is reused when every server holds the same one).
//!
//! ```text
//! U -> G      Hello { model, user_pk, user-part digest, output mode }   (checked against G's
//!             part; the mode builds the last stage's output circuit, an unknown one aborts)
//! G -> R_i    Open { model, skeleton digest, key_id?, user_pk, output mode }
//!   key_id = Some(id): R_i -> G OpenAck { its key id }; G checks they all match.
//!   key_id = None:     every server runs CollectiveKeygen, persists its key share,
//!                      R_i -> G KeyReady { key_id }; G checks they all match.
//!   meanwhile, from Hello (G) or Open (R_i): the pairwise OT setup (`setup.rs`),
//!                      R_i -> G OtReady once its pairs are done
//! G -> U      Welcome { collective_pk }    (keys agree, every server's OT setup done)
//! ```

use std::sync::Arc;

use super::super::error::{Result, SecoError};
use super::super::ids::Party;
use super::super::io::{Event, Persist, Ready};
use super::super::keys::KeyMaterial;
use super::super::msg::{Body, Bytes, SecoMsg};
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
            (State::AwaitOpen, Body::Keygen(_)) => {
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
        let key_id = self.keys.as_ref().map(|k| k.key_id);
        let mut ready = Ready::default();
        let open = Body::Open {
            model,
            skeleton: self.sched.digest,
            key_id,
            user_pk,
            output,
        };
        self.broadcast(&mut ready, &open);
        ready.extend(self.start_setup()?);
        if key_id.is_some() {
            self.state = State::Opening {
                acks: vec![None; self.sched.n],
            };
        } else {
            ready.extend(self.start_keygen()?);
        }
        Ok(ready)
    }

    /// Remote, (1): the gateway opens the session.
    fn on_open_msg(&mut self, from: Party, body: Body) -> Result<Ready> {
        self.expect_from(from, "Open", &[Party::GATEWAY])?;
        let Body::Open {
            model,
            skeleton,
            key_id,
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
        self.set_output(output)?;
        self.user_pk = Some(PublicKey::from_bytes(&user_pk, self.cfg.user_param)?);
        let mine = self.keys.as_ref().map(|k| k.key_id);
        let mut ready = self.start_setup()?;
        match key_id {
            None => ready.extend(self.start_keygen()?),
            Some(id) => {
                self.send(&mut ready, Party::GATEWAY, Body::OpenAck { key_id: mine });
                if mine == Some(id) {
                    ready.extend(self.keys_in_place()?);
                } else {
                    self.state = State::Aborted("collective key differs from the gateway's".into());
                }
            }
        }
        Ok(ready)
    }

    /// Gateway, (2): a remote's key id.
    fn on_open_ack(&mut self, from: Party, body: Body) -> Result<Ready> {
        self.expect_from(from, "OpenAck", &self.remotes())?;
        let (State::Opening { acks }, Body::OpenAck { key_id }) = (&mut self.state, &body) else {
            return Err(self.wrong_phase(&body));
        };
        let slot = &mut acks[from.server().unwrap_or(0)];
        if slot.is_some() {
            return Err(SecoError::Duplicate { from, seq: 0 });
        }
        *slot = Some(*key_id);
        if acks.iter().skip(1).any(Option::is_none) {
            return Ok(Ready::default());
        }
        let mine = self.keys.as_ref().map(|k| k.key_id);
        let all_match = acks.iter().skip(1).all(|a| *a == Some(mine));
        if !all_match {
            return Ok(self.abort(
                None,
                "servers hold different collective keys: delete the keys and rerun key generation",
            ));
        }
        self.keys_in_place()
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
        let keys = KeyMaterial::new(sk, pk);
        let key_id = keys.key_id;
        let mut ready = Ready::default();
        ready.persist.push(Persist::Keys(keys.to_bytes().to_vec()));
        self.keys = Some(Arc::new(keys));
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

//! Phase 2's encryption-to-shares at one server (Mouchet et al. s.5): the stage owner's
//! `Enc(W r - s)` and request, the followers' answers, the owner's share of the result.

use std::sync::atomic::Ordering;

use rand::Rng;

use super::super::error::{Result, SecoError};
use super::super::ids::{BundleId, Party};
use super::super::io::{Persist, Ready};
use super::super::msg::{Body, Bytes};
use super::super::schedule::derive_id;
use super::ServerSession;
use crate::mhe::{e2s, Ciphertext, E2sConfig, E2sLeader, E2sRequest, E2sShare};

impl ServerSession {
    /// Owner: `Enc(W r - s)` then the encryption-to-shares request (Mouchet et al. s.5).
    pub(super) fn start_e2s(
        &mut self,
        bundle: BundleId,
        l: usize,
        masks: &[Vec<Ciphertext>],
    ) -> Result<Ready> {
        let keys = self
            .keys
            .clone()
            .ok_or_else(|| SecoError::NotReady("no keys".into()))?;
        let mut ready = Ready::default();
        if self.first_owned == Some(l) {
            // This bundle counts against the key's lifetime (docs/mhe.md "Lifetime of a key"),
            // durably, before its E2S request goes out.
            let used = keys.uses.fetch_add(1, Ordering::SeqCst);
            if used >= self.key_lifetime {
                keys.uses.fetch_sub(1, Ordering::SeqCst);
                return Ok(self.abort(
                    None,
                    "the collective key's lifetime budget is spent: open a new session (it runs \
                     a new key generation)",
                ));
            }
            ready.persist.push(Persist::KeyUse {
                key_id: keys.key_id,
                uses: used + 1,
            });
        }
        let st = &self.sched.stages[l];
        let summed = (0..st.packing.num_in_cts())
            .map(|j| Ciphertext::sum(masks.iter().map(|m| &m[j])))
            .collect::<crate::mhe::Result<Vec<_>>>()?;
        let fpmask = self.sched.fp.mask();
        let s: Vec<u64> = (0..st.y_len)
            .map(|_| self.rng.random::<u64>() & fpmask)
            .collect();
        let layer = self.encoded[l]
            .as_ref()
            .ok_or(SecoError::NotReady(format!("no weights for stage {l}")))?;
        let outs = layer.eval(&keys.pk, &summed, &s, &mut self.rng)?;
        let cfg = self.e2s_config(bundle, l);
        let (leader, req) = E2sLeader::new(cfg, &keys.sk, &st.packing.output, &outs)?;
        let bytes = req.msg.to_bytes(&*self.cfg.param.params()?);
        if let Some(prep) = self.preps.get_mut(&bundle) {
            prep.stages[l].leader = Some(leader);
            prep.stages[l].s = Some(s);
        }
        let body = Body::E2sRequest {
            bundle,
            stage: l as u16,
            req: Bytes::from(bytes),
        };
        self.broadcast(&mut ready, &body);
        Ok(ready)
    }

    fn e2s_config(&self, bundle: BundleId, l: usize) -> E2sConfig {
        let id = derive_id(b"seco e2s", &bundle.0, l as u16);
        E2sConfig {
            param: self.cfg.param,
            n: self.sched.n,
            me: self.me as u16,
            leader: self.sched.stages[l].owner as u16,
            instance: u64::from_le_bytes(id[..8].try_into().unwrap_or([0; 8])),
        }
    }

    /// Follower: blinded, flooded decryption share for the owner, once this server's output
    /// share is converted (`masks.rs`; the request waits until then).
    pub(super) fn on_e2s_request(
        &mut self,
        from: Party,
        bundle: BundleId,
        stage: u16,
        req: &[u8],
    ) -> Result<Ready> {
        let owner = self.sched.stage(stage)?.owner;
        self.expect_from(from, "E2sRequest", &[Party::Server(owner as u16)])?;
        let mut ready = self.prep_mut(bundle)?;
        let l = stage as usize;
        let converted = self.b2a_members(l, super::masks::INPUT).is_some();
        let st = self.prep_stage(bundle, stage)?;
        if st.u.is_some() || st.e2s_early.is_some() {
            return Err(SecoError::Duplicate { from, seq: 0 });
        }
        let early = converted && st.u_conv.is_none();
        // Decoded (and so validated) once, also when it is answered later.
        let req = E2sRequest::from_bytes(req, self.cfg.param)?;
        if early {
            // Answered when the conversion is done.
            let st = self.prep_stage(bundle, stage)?;
            st.e2s_early = Some((from, req));
            return Ok(ready);
        }
        ready.extend(self.answer_e2s(from, bundle, stage, &req)?);
        Ok(ready)
    }

    /// Follower: the E2S answer with this server's output share (converted, or random for a
    /// stage without a circuit); keeps its share.
    pub(super) fn answer_e2s(
        &mut self,
        from: Party,
        bundle: BundleId,
        stage: u16,
        req: &E2sRequest,
    ) -> Result<Ready> {
        let keys = self
            .keys
            .clone()
            .ok_or_else(|| SecoError::NotReady("no keys".into()))?;
        let l = stage as usize;
        let cfg = self.e2s_config(bundle, l);
        let given = self.prep_stage(bundle, stage)?.u_conv.take();
        let layout = &self.sched.stages[l].packing.output;
        let (out, mine) = match given {
            Some(u) => {
                let out =
                    e2s::follower_share_given(&cfg, &keys.sk, layout, req, &u, &mut self.rng)?;
                (out, u)
            }
            None => {
                let (out, mine) = e2s::follower_share(&cfg, &keys.sk, layout, req, &mut self.rng)?;
                (out, mine.to_vec())
            }
        };
        self.prep_stage(bundle, stage)?.u = Some(mine);
        let bytes = out.msg.to_bytes(&*self.cfg.param.params()?);
        let mut ready = Ready::default();
        self.send(
            &mut ready,
            from,
            Body::E2sShare {
                bundle,
                stage,
                share: Bytes::from(bytes),
            },
        );
        ready.extend(self.try_complete(bundle)?);
        Ok(ready)
    }

    /// Owner: one follower's share; the last one yields the owner's own share.
    pub(super) fn on_e2s_share(
        &mut self,
        from: Party,
        bundle: BundleId,
        stage: u16,
        share: &[u8],
    ) -> Result<Ready> {
        let sender = Self::expect_server(from, "E2sShare")?;
        let share = E2sShare::from_bytes(share, self.cfg.param)?;
        let st = self.prep_stage(bundle, stage)?;
        let leader = st
            .leader
            .as_mut()
            .ok_or(SecoError::NotReady("E2S share before the request".into()))?;
        if let Some(mine) = leader.handle(sender as u16, &share)? {
            st.u = Some(mine.to_vec());
            st.leader = None;
            return self.try_complete(bundle);
        }
        Ok(Ready::default())
    }
}

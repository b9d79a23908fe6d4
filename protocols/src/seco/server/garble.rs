//! The stage garblings of a bundle in preparation (DESIGN.md s.5, phase 2 step 3): every
//! server runs one BMR offline party per stage circuit, drawn from the session's OT setup
//! (`setup.rs`), and feeds it the circuit inputs it knows in preprocessing (`bmr/known.rs`).

use super::super::error::{Result, SecoError};
use super::super::ids::{BundleId, Party};
use super::super::io::Ready;
use super::super::msg::{Body, Bytes};
use super::ServerSession;
use crate::bmr::{BmrMsg, OfflineParty};

impl ServerSession {
    /// Gives stage `l`'s garbling this server's inputs known in preprocessing, once they are:
    /// its share `r_{l+1}^(i)` (from the start) and, unless it owns the stage, its share `u_l^(i)`
    /// (once its encryption-to-shares answer is out). Only the owner's `y` (its `z`) remains
    /// for the online phase (`StageCircuitSpec::known_offline`, `bmr/known.rs`).
    pub(super) fn feed_known(&mut self, bundle: BundleId, l: usize) -> Result<Ready> {
        let sched = self.sched.clone();
        let (Some(gc), owner) = (&sched.stages[l].gc, sched.stages[l].owner) else {
            return Ok(Ready::default());
        };
        let Some(st) = self.preps.get_mut(&bundle).map(|p| &mut p.stages[l]) else {
            return Ok(Ready::default());
        };
        let y = match (&st.u, self.me == owner) {
            (_, true) => vec![0; gc.spec.y_len],
            (Some(u), false) => u.clone(),
            (None, false) => return Ok(Ready::default()),
        };
        let (Some(r), Some(party), false) = (&st.r_next, st.bmr.as_mut(), st.fed) else {
            return Ok(Ready::default());
        };
        let bits = gc.spec.encode_inputs(self.me, &y, r);
        let (known, _) = gc.bmr.split_own_inputs(self.me, &bits)?;
        let out = party.provide_inputs(&known)?;
        st.fed = true;
        self.bmr_sent(bundle, l, out)
    }

    /// After a step of stage `l`'s garbling: keep its result once done, send, maybe complete.
    fn bmr_sent(
        &mut self,
        bundle: BundleId,
        l: usize,
        out: Vec<crate::bmr::Outgoing>,
    ) -> Result<Ready> {
        let st = self
            .preps
            .get_mut(&bundle)
            .and_then(|p| p.stages.get_mut(l));
        if let Some(st) = st {
            if st.bmr.as_ref().is_some_and(OfflineParty::is_done) {
                let prepared = st.bmr.take().map(OfflineParty::into_prepared).transpose()?;
                let mut bytes = Vec::new();
                let _ = ciborium::into_writer(&prepared, &mut bytes);
                st.prepared = Some(bytes);
            }
        }
        let mut ready = Ready::default();
        self.send_bmr(&mut ready, bundle, l as u16, out, false);
        ready.extend(self.try_complete(bundle)?);
        Ok(ready)
    }

    pub(super) fn send_bmr(
        &mut self,
        ready: &mut Ready,
        bundle: BundleId,
        stage: u16,
        out: Vec<crate::bmr::Outgoing>,
        online: bool,
    ) {
        for (to, msg) in out {
            let mut bytes = Vec::new();
            let _ = ciborium::into_writer(&msg, &mut bytes);
            let msg = Bytes::from(bytes);
            let body = if online {
                Body::BmrOnline { bundle, stage, msg }
            } else {
                Body::BmrOffline { bundle, stage, msg }
            };
            self.send(ready, Party::Server(to as u16), body);
        }
    }

    pub(super) fn on_bmr_offline(
        &mut self,
        from: Party,
        bundle: BundleId,
        stage: u16,
        msg: &[u8],
    ) -> Result<Ready> {
        let sender = Self::expect_server(from, "BmrOffline")?;
        let msg: BmrMsg = ciborium::from_reader(msg)
            .map_err(|e| SecoError::Decode(format!("BMR message: {e}")))?;
        let mut ready = self.prep_mut(bundle)?;
        let st = self.prep_stage(bundle, stage)?;
        let party = st.bmr.as_mut().ok_or(SecoError::NotReady(format!(
            "stage {stage} has no circuit or it is done"
        )))?;
        let out = match party.handle(sender, msg) {
            Ok(out) => out,
            // A garbling drawn across a restart cannot complete: abort the bundle now rather
            // than let it run into the preprocessing deadline.
            Err(e @ crate::bmr::BmrError::PairMismatch { .. }) => {
                ready.extend(self.abort(Some(bundle), &e.to_string()));
                return Ok(ready);
            }
            Err(e) => return Err(e.into()),
        };
        ready.extend(self.bmr_sent(bundle, usize::from(stage), out)?);
        Ok(ready)
    }
}

//! [`UserSessionHandle`]: the user's side of a session (`seco infer`, examples, tests), with
//! bounded retries (issue 13, item 1).
//!
//! A bundle preparation or an inference that fails because it was aborted (a lost or refusing
//! server, an undelivered message, a session aborted as a whole) is tried again with a fresh
//! bundle, at most `retries` times (default [`DEFAULT_RETRIES`]): a bundle aborted alone is
//! replaced in the same session; a session aborted as a whole is replaced by a new session
//! first (the bundles it had ready are prepared again when an inference needs one). Timeouts,
//! an expired or closed session and refused commands are not retried. The last error is
//! returned, its reason ending with the number of attempts.
//!
//! Opening a session is retried the same way (a new session each time, after
//! [`OPEN_RETRY_PAUSE`], as many times), except when the gateway refused the `Hello` itself
//! (no free slot, a user part that does not match the deployment or the parameters: answers,
//! not faults) or a server is lost (its connection closed and it could not be reached again
//! within the grace: a new session would wait for it until the open deadline). A lost first
//! dial, an undelivered message, a server that restarted during key generation or OT setup,
//! or a key generation aborted by a peer are faults the next attempt usually does not meet.

use std::sync::{Mutex, MutexGuard};

use ractor::ActorRef;
use seco_protocols::seco::{BundleId, OutputMode, Prediction, SecoError, SessionId};

use super::handle::{call, session_call};
use super::NodeMsg;
use crate::config::Timeouts;
use crate::error::{ActorError, Result};
use crate::session::SessionMsg;

/// Retries of a failed bundle or inference, by default.
pub const DEFAULT_RETRIES: u32 = 2;

/// The pause before a failed session open is tried again: long enough for a restarted server
/// to be dialled again and for the failed attempt's abort to reach every server.
pub const OPEN_RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(300);

/// The session the handle uses now.
struct Current {
    session: SessionId,
    actor: ActorRef<SessionMsg>,
    /// Bundles prepared through this handle and not used yet in this session.
    ready: usize,
    /// Bundles prepared earlier that were lost with an aborted session: an inference prepares
    /// one first.
    owed: usize,
}

/// The user's side of an open session.
pub struct UserSessionHandle {
    node: ActorRef<NodeMsg>,
    /// The output mode of its sessions (a replacement session keeps it).
    output: OutputMode,
    current: Mutex<Current>,
    limits: Timeouts,
    retries: u32,
}

/// What a failure means for a retry.
enum Failure {
    /// Not worth a retry (timeout, closed or expired session, refused command).
    Final,
    /// The bundle (or inference) was aborted; the session goes on.
    Bundle,
    /// The session itself ended: a new one is needed.
    Session,
}

fn classify(e: &ActorError) -> Failure {
    match e {
        ActorError::Aborted {
            bundle: Some(_), ..
        } => Failure::Bundle,
        ActorError::Aborted { bundle: None, .. }
        | ActorError::Protocol(SecoError::Aborted(_))
        | ActorError::LostPeer(_)
        | ActorError::Stopped("session") => Failure::Session,
        _ => Failure::Final,
    }
}

/// Whether a failed session open is worth another: an abort or a lost peer, unless the abort
/// is `AbortKind::Final`, a refusal a new session would meet again: the gateway's reject of
/// the `Hello` (`session/loss.rs`), its abort for a user part that does not match the
/// deployment or an unknown output mode (`SecoError::abort_kind`), or a server lost for longer
/// than the grace (`session/loss.rs`). The kind travels in the `Abort` message (`msg.rs`).
fn open_worth_retry(e: &ActorError) -> bool {
    match e {
        ActorError::Aborted { kind, .. } => kind.is_retry(),
        e => !matches!(classify(e), Failure::Final),
    }
}

/// The last error, with the number of attempts in its reason.
fn after_attempts(e: ActorError, attempts: u32, each: &str) -> ActorError {
    match e {
        ActorError::Aborted {
            bundle,
            reason,
            kind,
        } if attempts > 1 => ActorError::Aborted {
            bundle,
            reason: format!("{reason} (failed {attempts} times, {each})"),
            kind,
        },
        e => e,
    }
}

impl UserSessionHandle {
    /// Opens a session through the user's node actor and waits until it is ready; a failed
    /// open, and later a failed bundle or inference, is tried again up to `retries` times.
    pub(super) async fn open(
        node: ActorRef<NodeMsg>,
        limits: Timeouts,
        output: OutputMode,
        retries: u32,
    ) -> Result<Self> {
        let mut attempts = 0;
        let (session, actor) = loop {
            attempts += 1;
            match open_session(&node, limits, output).await {
                Ok(opened) => break opened,
                Err(e) if attempts <= retries && open_worth_retry(&e) => {
                    tracing::warn!(error = %e, attempt = attempts, of = retries + 1, "session open failed: retrying with a new session");
                    tokio::time::sleep(OPEN_RETRY_PAUSE).await;
                }
                Err(e) => return Err(after_attempts(e, attempts, "each with a new session")),
            }
        };
        Ok(Self {
            node,
            output,
            current: Mutex::new(Current {
                session,
                actor,
                ready: 0,
                owed: 0,
            }),
            limits,
            retries,
        })
    }

    fn current(&self) -> MutexGuard<'_, Current> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many times a failed bundle or inference is tried again (0: never).
    pub fn set_retries(&mut self, retries: u32) {
        self.retries = retries;
    }

    /// The session id (a new one after a session was replaced by a retry).
    pub fn id(&self) -> SessionId {
        self.current().session
    }

    /// Prepares one bundle at every server; returns its id once it is ready.
    pub async fn preprocess(&self) -> Result<BundleId> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.prepare_once().await {
                Ok(b) => return Ok(b),
                Err(e) => self.recover(e, attempts).await?,
            }
        }
    }

    /// One inference on an input encoded with the model's fixed point
    /// (`Model::encode_input`) in a logits-mode session; consumes a ready bundle (a fresh one
    /// when a retry needs it); returns it and the signed logits (scale `2^f`). A label-mode
    /// session answers [`ActorError::Unsupported`] (use [`UserSessionHandle::predict`]).
    pub async fn infer(&self, x: &[u64]) -> Result<(BundleId, Vec<i64>)> {
        match self.predict(x).await? {
            (b, Prediction::Logits(logits)) => Ok((b, logits)),
            (_, Prediction::Label(_)) => Err(ActorError::Unsupported(
                "a label-mode session gives no logits (use predict)",
            )),
        }
    }

    /// One inference, whatever the session's output mode: the logits or the label; retried
    /// like [`UserSessionHandle::infer`].
    pub async fn predict(&self, x: &[u64]) -> Result<(BundleId, Prediction)> {
        let mut attempts = 0;
        let mut fresh = false;
        loop {
            attempts += 1;
            let owed = {
                let mut c = self.current();
                let owed = c.owed > 0;
                c.owed = c.owed.saturating_sub(1);
                owed
            };
            if fresh || owed {
                if let Err(e) = self.prepare_once().await {
                    self.recover(e, attempts).await?;
                    fresh = true;
                    continue;
                }
            }
            match self.infer_once(x).await {
                Ok(r) => return Ok(r),
                Err(e) => {
                    self.recover(e, attempts).await?;
                    fresh = true;
                }
            }
        }
    }

    /// Ends the session: `Close` to the gateway, which closes it at every server and deletes
    /// its records and unused bundles there. Returns once the gateway acknowledged it (within
    /// `Timeouts::retry` plus `Timeouts::ack`), or with the reason it could not be delivered.
    /// The handle is spent; a session that already ended closes at once.
    pub async fn close(self) -> Result<()> {
        let limit = self.limits.retry + self.limits.ack;
        let actor = self.current().actor.clone();
        session_call(&actor, SessionMsg::Close, limit).await
    }

    async fn prepare_once(&self) -> Result<BundleId> {
        let actor = self.current().actor.clone();
        let b = session_call(&actor, SessionMsg::Preprocess, self.limits.user_prep()).await?;
        self.current().ready += 1;
        Ok(b)
    }

    async fn infer_once(&self, x: &[u64]) -> Result<(BundleId, Prediction)> {
        let actor = {
            let mut c = self.current();
            // Used by this attempt unless it is refused at once (below).
            c.ready = c.ready.saturating_sub(1);
            c.actor.clone()
        };
        let x = x.to_vec();
        let limit = self.limits.user_inference();
        let r = session_call(&actor, |port| SessionMsg::Infer(x, port), limit).await;
        if let Err(ActorError::Protocol(_)) = &r {
            // Refused before a bundle was taken (bad input, no bundle ready, session ended).
            let mut c = self.current();
            if c.actor.get_id() == actor.get_id() {
                c.ready += 1;
            }
        }
        r
    }

    /// After failed attempt number `attempts`: `Ok` to try again (with a new session if the
    /// session ended), else the error to return.
    async fn recover(&self, e: ActorError, attempts: u32) -> Result<()> {
        let kind = classify(&e);
        if matches!(kind, Failure::Final) || attempts > self.retries {
            return Err(after_attempts(e, attempts, "each with a fresh bundle"));
        }
        tracing::warn!(error = %e, attempt = attempts, of = self.retries + 1, "failed: retrying with a fresh bundle");
        if matches!(kind, Failure::Bundle) {
            return Ok(());
        }
        match open_session(&self.node, self.limits, self.output).await {
            Ok((session, actor)) => {
                let mut c = self.current();
                let old = std::mem::replace(&mut c.actor, actor);
                c.session = session;
                c.owed += std::mem::take(&mut c.ready);
                old.stop(Some("replaced by a new session".into()));
                Ok(())
            }
            Err(open) => Err(
                match after_attempts(e, attempts, "each with a fresh bundle") {
                    ActorError::Aborted {
                        bundle,
                        reason,
                        kind,
                    } => ActorError::Aborted {
                        bundle,
                        reason: format!("{reason}; a new session could not be opened: {open}"),
                        kind,
                    },
                    e => e,
                },
            ),
        }
    }
}

/// A new user session, ready.
async fn open_session(
    node: &ActorRef<NodeMsg>,
    limits: Timeouts,
    output: OutputMode,
) -> Result<(SessionId, ActorRef<SessionMsg>)> {
    let open = |port| NodeMsg::OpenUserSession(output, port);
    let (session, actor) = call(node, open, None).await??;
    session_call(&actor, SessionMsg::WaitOpen, limits.open).await?;
    Ok((session, actor))
}

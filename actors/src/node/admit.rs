//! Admission of sessions at a node, session actor spawning, crash handling.
//!
//! A message of a session with no live actor here is, in this order:
//! 0. refused with `REJECT_SESSION_ENDED` if the session ended here (closed, expired, aborted:
//!    its actor stopped and its records are gone; `ended.rs`);
//! 1. resumed: the store has the session's record (the node restarted, or its actor crashed)
//!    -> `ServerSession::resume` with the stored key, then the message;
//! 2. opened: a `Hello` from a user at the gateway, or an `Open` from the gateway at a remote
//!    -> a new `ServerSession` (with the stored collective key if there is one: else this
//!    session runs key generation, and other new sessions wait until it is done);
//! 3. refused (and logged): anything else. The sender gets an application reject code; a
//!    server whose part fails the parameter check (`plan::check_part`: noise or flooding
//!    budget, plane sizes) refuses every opening with `REJECT_REFUSED` and logs the layer, the
//!    bits it reaches and the target.
//!
//! A crashed session actor is restarted from the store (at most `Limits::max_restarts` times);
//! a session that cannot be resumed (it crashed before becoming ready, or its record is gone) is
//! aborted on every peer with the reason (the user's copy names no server).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use ractor::{Actor, ActorRef};
use rand::RngCore;
use seco_protocols::seco::msg::VERSION;
use seco_protocols::seco::output::scrub;
use seco_protocols::seco::seq::seq_start;
use seco_protocols::seco::{
    AbortKind, Body, Event, KeyCounter, KeyMaterial, OutputMode, Party, Ready, SecoError, SecoMsg,
    ServerConfig, ServerSession, SessionId, SessionRecord, UserConfig, UserSession,
};
use seco_runtime::net::Reply;
use seco_runtime::PeerId;

use super::{Entry, NodeKind, NodeMsg, NodeState};
use crate::config::USER_PARAM;
use crate::context::NodeEvent;
use crate::error::{ActorError, Result};
use crate::network::{
    NetworkMsg, Outgoing, Route, REJECT_KEYGEN_RUNNING, REJECT_NO_SESSION_SLOT, REJECT_REFUSED,
    REJECT_SESSION_ENDED, REJECT_UNKNOWN_SESSION,
};
use crate::session::{MachineKind, SessionActor, SessionArgs, SessionMsg};

/// 32 bytes from the OS-seeded CSPRNG: the seed of one session's state machine.
fn fresh_seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    rand::rng().fill_bytes(&mut seed);
    seed
}

/// Why a message was not admitted.
struct Refusal {
    code: u16,
    why: String,
}

impl NodeState {
    /// See the module docs.
    pub(super) async fn on_unrouted(
        &mut self,
        myself: &ActorRef<NodeMsg>,
        from: Party,
        peer: PeerId,
        msg: SecoMsg,
        reply: Reply,
    ) {
        let sid = msg.session;
        let body = msg.body.name();
        match self.admit(myself, from, peer, &msg).await {
            Ok(None) => match self.sessions.get(&sid) {
                Some(e) => {
                    e.route.queue.fetch_add(1, Ordering::Relaxed);
                    let _ = e.route.actor.cast(SessionMsg::Inbound { from, peer, msg });
                    reply.ack();
                }
                None => reply.reject(REJECT_UNKNOWN_SESSION),
            },
            Ok(Some(r)) if r.code == REJECT_SESSION_ENDED => {
                // Late messages of a session that ended here: the sender gives up at once.
                tracing::debug!(node = %self.ctx.name, session = %sid, %peer, %body, "refused: the session has ended");
                reply.reject(r.code);
            }
            Ok(Some(r)) if from != Party::User && r.code == REJECT_UNKNOWN_SESSION => {
                // Expected now and then: a server's key-generation message overtook the
                // gateway's Open; the sender retries.
                tracing::debug!(node = %self.ctx.name, session = %sid, %peer, %body, reason = %r.why, "refused (the sender retries)");
                reply.reject(r.code);
            }
            Ok(Some(r)) => {
                tracing::warn!(node = %self.ctx.name, session = %sid, %peer, %body, reason = %r.why, "refused");
                self.ctx.stats.refused();
                reply.reject(r.code);
            }
            Err(error) => {
                tracing::warn!(node = %self.ctx.name, session = %sid, %peer, %body, %error, "cannot admit the session");
                self.ctx.stats.refused();
                reply.reject(REJECT_UNKNOWN_SESSION);
            }
        }
    }

    /// `Ok(None)`: the session has a live actor now.
    async fn admit(
        &mut self,
        myself: &ActorRef<NodeMsg>,
        from: Party,
        peer: PeerId,
        msg: &SecoMsg,
    ) -> Result<Option<Refusal>> {
        let sid = msg.session;
        if self.sessions.contains_key(&sid) {
            return Ok(None);
        }
        let NodeKind::Server { part } = &self.kind else {
            return Ok(Some(Refusal {
                code: REJECT_UNKNOWN_SESSION,
                why: "a user node has no session with this id".into(),
            }));
        };
        let gateway = part.server_index == 0;
        if self.ended.contains(&sid) {
            return Ok(Some(Refusal {
                code: REJECT_SESSION_ENDED,
                why: "the session has ended here (closed, aborted or expired)".into(),
            }));
        }
        if self.resume(myself, sid, 0).await? {
            return Ok(None);
        }
        if self.ended.contains(&sid) {
            // Dropped by the resume just now (the part or the layout changed).
            return Ok(Some(Refusal {
                code: REJECT_SESSION_ENDED,
                why: "the session was dropped here: this server's model part or role layout changed since it was stored".into(),
            }));
        }
        let opens = match (&msg.body, from) {
            (Body::Hello { .. }, Party::User) => gateway,
            (Body::Open { .. }, Party::Server(0)) => !gateway,
            _ => false,
        };
        if !opens {
            return Ok(Some(Refusal {
                code: REJECT_UNKNOWN_SESSION,
                why: "unknown session (only a user's Hello at the gateway or the gateway's Open at a remote opens one)".into(),
            }));
        }
        if let Some(f) = self.ctx.store.failure() {
            // The node is stopping on a failed store: no new session (docs/operations.md,
            // "Storage faults").
            return Ok(Some(Refusal {
                code: REJECT_REFUSED,
                why: format!("this server's store failed: {f}"),
            }));
        }
        if self.sessions.len() >= self.ctx.limits.max_sessions {
            return Ok(Some(Refusal {
                code: REJECT_NO_SESSION_SLOT,
                why: format!("{} sessions open already", self.sessions.len()),
            }));
        }
        let keys = self.load_keys()?;
        if keys.is_empty() && self.keygen_running() {
            return Ok(Some(Refusal {
                code: REJECT_KEYGEN_RUNNING,
                why: "collective key generation is running in another session".into(),
            }));
        }
        let generating = keys.is_empty();
        let cfg = self.server_config(sid)?;
        let lifetime = self.ctx.limits.key_lifetime;
        let store = self.ctx.store.clone();
        let counter: KeyCounter = Arc::new(move |id: &[u8; 32]| {
            // A store that cannot read the count starts a new key's count at 0 (it is new).
            store.key_uses(id).unwrap_or_default()
        });
        let session = match ServerSession::new(cfg, keys, fresh_seed())
            .map(|s| s.with_key_counter(counter))
            .map(|s| match lifetime {
                Some(n) => s.with_key_lifetime(n),
                None => s,
            }) {
            // This server's part does not fit the parameters (plan::budget): refused for good.
            Err(SecoError::Budget(e)) => {
                return Ok(Some(Refusal {
                    code: REJECT_REFUSED,
                    why: format!("model refused: {e}"),
                }))
            }
            r => r?,
        };
        let user_peer = (from == Party::User).then_some(peer);
        if let Some(u) = &user_peer {
            self.ctx.store.put_user_peer(sid, u)?;
        }
        let machine = MachineKind::Server(Box::new(session));
        self.spawn(myself, sid, machine, Ready::default(), user_peer, true, 0)
            .await?;
        if generating {
            self.keygen = Some((sid, Instant::now()));
        }
        tracing::info!(node = %self.ctx.name, session = %sid, generating_key = generating, "session opened");
        Ok(None)
    }

    fn keygen_running(&self) -> bool {
        self.keygen.is_some_and(|(sid, since)| {
            self.sessions.contains_key(&sid) && since.elapsed() < self.ctx.timeouts.open
        })
    }

    fn server_config(&self, session: SessionId) -> Result<ServerConfig> {
        let NodeKind::Server { part } = &self.kind else {
            return Err(ActorError::Unsupported("a user node has no server part"));
        };
        Ok(ServerConfig {
            session,
            part: part.clone(),
            param: part.param,
            user_param: USER_PARAM,
            chunk_budget: seco_protocols::seco::schedule::MAX_CHUNK_TABLE_BYTES,
        })
    }

    /// The stored collective keys, newest first, decoded for this server.
    fn load_keys(&self) -> Result<Vec<KeyMaterial>> {
        let NodeKind::Server { part } = &self.kind else {
            return Ok(Vec::new());
        };
        let index = u16::try_from(part.server_index).unwrap_or(u16::MAX);
        // Keys of another parameter set (the split moved to another set) are skipped: the
        // next session generates a key of the part's set.
        KeyMaterial::ring_of(&self.ctx.store.key_ring()?, part.param, index)?
            .into_iter()
            .map(|mut km| {
                km.uses = self.ctx.store.key_uses(&km.key_id)?;
                Ok(km)
            })
            .collect()
    }

    /// Resumes `sid` from its stored record; `Ok(false)` when there is none.
    async fn resume(
        &mut self,
        myself: &ActorRef<NodeMsg>,
        sid: SessionId,
        restarts: u32,
    ) -> Result<bool> {
        let Some(record) = self.ctx.store.record(sid)? else {
            return Ok(false);
        };
        self.dormant.remove(&sid);
        let keys = self.load_keys()?;
        if keys.is_empty() {
            tracing::warn!(node = %self.ctx.name, session = %sid, "a session record but no collective key: cannot resume");
            return Ok(false);
        }
        // The resumed machine's first outputs: its record with the next sequence-number epoch
        // (persisted before anything is sent) and a fresh OT setup with every peer.
        let (session, setup) = match ServerSession::resume(
            self.server_config(sid)?,
            keys,
            &record,
            fresh_seed(),
        ) {
            Ok(r) => r,
            Err(SecoError::PartChanged) => {
                // Restarted with another part (new weights) or a build with another role
                // layout: the session's bundles were made for the old one. Dropped durably;
                // its messages are refused as ended.
                tracing::warn!(node = %self.ctx.name, session = %sid, "stored session dropped with its bundles: this server's model part, or the build's role layout, changed since it was stored");
                self.ctx.store.forget_session(sid)?;
                self.ended.insert(sid);
                return Ok(false);
            }
            Err(e) => return Err(e.into()),
        };
        let session = match self.ctx.limits.key_lifetime {
            Some(n) => session.with_key_lifetime(n),
            None => session,
        };
        let user_peer = self.ctx.store.user_peer(sid)?;
        let bundles = self.ctx.store.bundles_of(sid)?;
        let key_id = session.key_id().unwrap_or_default();
        let machine = MachineKind::Server(Box::new(session));
        self.spawn(myself, sid, machine, setup, user_peer, true, restarts)
            .await?;
        let key: String = key_id[..6].iter().map(|b| format!("{b:02x}")).collect();
        tracing::info!(node = %self.ctx.name, session = %sid, stored_bundles = bundles, key_id = %key, restarts, "session resumed from the store");
        Ok(true)
    }

    /// Spawns a session actor under this node and routes the session to it.
    #[allow(clippy::too_many_arguments)]
    async fn spawn(
        &mut self,
        myself: &ActorRef<NodeMsg>,
        sid: SessionId,
        machine: MachineKind,
        initial: Ready,
        user_peer: Option<PeerId>,
        opening: bool,
        restarts: u32,
    ) -> Result<ActorRef<SessionMsg>> {
        let queue = Arc::new(AtomicUsize::new(0));
        let args = SessionArgs {
            ctx: self.ctx.clone(),
            session: sid,
            machine,
            initial,
            user_peer,
            queue: queue.clone(),
            opening,
        };
        let (actor, _) = Actor::spawn_linked(None, SessionActor, args, myself.get_cell())
            .await
            .map_err(|e| ActorError::Spawn {
                actor: "session",
                reason: e.to_string(),
            })?;
        let route = Route {
            actor: actor.clone(),
            queue,
        };
        let _ = self
            .ctx
            .network
            .cast(NetworkMsg::Route(sid, Some(route.clone())));
        self.by_actor.insert(actor.get_id(), sid);
        self.sessions.insert(
            sid,
            Entry {
                route,
                user_peer,
                restarts,
            },
        );
        Ok(actor)
    }

    /// User nodes: a new session; its `Hello` goes out at once.
    pub(super) async fn open_user_session(
        &mut self,
        myself: &ActorRef<NodeMsg>,
        output: OutputMode,
    ) -> Result<(SessionId, ActorRef<SessionMsg>)> {
        let NodeKind::User { part } = &self.kind else {
            return Err(ActorError::Unsupported("only a user node opens sessions"));
        };
        let sid = SessionId::random(&mut rand::rng());
        let cfg = UserConfig {
            session: sid,
            part: part.clone(),
            param: part.param,
            user_param: USER_PARAM,
            output,
        };
        let (session, hello) = UserSession::new(cfg, fresh_seed())?;
        let machine = MachineKind::User(Box::new(session));
        let actor = self
            .spawn(myself, sid, machine, hello, None, true, 0)
            .await?;
        Ok((sid, actor))
    }

    /// A session actor crashed: restart it from the store, or abort the session everywhere.
    pub(super) async fn on_session_failed(
        &mut self,
        myself: &ActorRef<NodeMsg>,
        sid: SessionId,
        err: &str,
    ) -> Result<()> {
        let Some(entry) = self.sessions.remove(&sid) else {
            return Ok(());
        };
        let _ = self.ctx.network.cast(NetworkMsg::Route(sid, None));
        tracing::error!(node = %self.ctx.name, session = %sid, error = %err, "session actor crashed");
        if matches!(self.kind, NodeKind::User { .. }) {
            return Ok(());
        }
        // A failed store refuses every write: a restart would only fail again (no loop).
        let store_failed = self.ctx.store.failure();
        if entry.restarts < self.ctx.limits.max_restarts && store_failed.is_none() {
            match self.resume(myself, sid, entry.restarts + 1).await {
                Ok(true) => {
                    self.ctx.stats.restarted();
                    return Ok(());
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(node = %self.ctx.name, session = %sid, error = %e, "cannot restart the session")
                }
            }
        }
        let reason = match store_failed {
            Some(f) => format!("{}: {f}", self.ctx.name),
            None => format!("session actor crashed: {err}"),
        };
        self.abort_everywhere(sid, &reason, entry.user_peer)
    }

    /// Sends `Abort` to every other server (and the user, at the gateway) without a state
    /// machine, and forgets the session. The messages are numbered at the start of the epoch
    /// after the stored one (the epoch the crashed machine used, 0 for a session that never
    /// became ready): a new epoch resets each receiver's duplicate window for this sender.
    fn abort_everywhere(
        &mut self,
        sid: SessionId,
        reason: &str,
        user_peer: Option<PeerId>,
    ) -> Result<()> {
        let Party::Server(me) = self.ctx.me else {
            return Ok(());
        };
        let mut targets: Vec<PeerId> = self
            .ctx
            .servers
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != usize::from(me))
            .map(|(_, p)| *p)
            .collect();
        let user = user_peer.filter(|_| me == 0);
        targets.extend(user);
        // The user's copy names no server (`output::scrub`), as the machine's aborts.
        let user_reason = scrub(reason, &self.ctx.topology.server_names());
        let epoch = match self.ctx.store.record(sid)? {
            Some(bytes) => SessionRecord::from_bytes(&bytes).map_or(0, |r| r.epoch),
            None => 0,
        };
        let seq = seq_start(epoch.saturating_add(1));
        for to in targets {
            let msg = SecoMsg {
                version: VERSION,
                session: sid,
                from: Party::Server(me),
                seq,
                body: Body::Abort {
                    bundle: None,
                    reason: if Some(to) == user {
                        user_reason.clone()
                    } else {
                        reason.to_string()
                    },
                    kind: AbortKind::Retry,
                },
            };
            let out = Outgoing {
                to,
                msg,
                notify: None,
                delivered: None,
            };
            let _ = self.ctx.network.cast(NetworkMsg::Send(out));
        }
        if let Err(e) = self.ctx.store.forget_session(sid) {
            // The store failed (and stays failed): the node stops on it (`seco node`), the
            // aborts above still go out; the records go at the next start's expiry.
            tracing::error!(node = %self.ctx.name, session = %sid, error = %e, "cannot delete the aborted session's records");
        }
        self.ended.insert(sid);
        let _ = self.ctx.network.cast(NetworkMsg::Ended(sid));
        let event = Event::Aborted {
            bundle: None,
            reason: reason.to_string(),
            kind: AbortKind::Retry,
        };
        self.ctx.stats.event(&event);
        tracing::warn!(node = %self.ctx.name, session = %sid, %reason, "session aborted on every peer");
        let _ = self.ctx.events.send(NodeEvent {
            node: self.ctx.name.clone(),
            session: sid,
            event,
        });
        Ok(())
    }
}

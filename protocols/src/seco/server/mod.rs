//! The server side of a SECO session (gateway = server 0, remotes = servers 1..n) as a sans-IO
//! state machine: [`ServerSession::handle`] takes one [`Input`] and returns a [`Ready`].
//!
//! # Layout
//! - `mod.rs`: the session struct, message checks, dispatch; `close.rs`: its end; `gateway.rs`:
//!   what only the gateway does (relaying for the user, acknowledgements, the result).
//! - `open.rs`: session open and collective key generation; `setup.rs`: the servers' pairwise
//!   OT setup (`bmr::OtSetup`: once per session, again after a restart).
//! - `prep.rs`: one [`prep::Prep`] per bundle in preparation; `garble.rs`: its chunk garblings
//!   (BMR offline, a window at a time, each chunk persisted as it finishes); `masks.rs`: words
//!   XOR-shared, then additive (`ot::B2a`); `e2s.rs`: the encryption-to-shares of each stage.
//! - `online.rs`: one [`online::Online`] per inference; `stages.rs`: its stage circuits, chunk
//!   by chunk (records taken from the store, BMR online parties).

mod close;
mod e2s;
mod garble;
mod gateway;
mod masks;
mod online;
mod open;
mod prep;
mod setup;
mod stages;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::error::{Result, SecoError};
use super::ids::{BundleId, Party, SessionId};
use super::io::{Input, Machine, Ready};
use super::keys::KeyMaterial;
use super::msg::{Body, SecoMsg, VERSION};
use super::output::OutputMode;
use super::schedule::Schedule;
use super::seq::{seq_start, SeqWindow};
use crate::bmr::OtSetup;
use crate::mhe::{CollectiveKeygen, EncodedLayer, ParamId, PublicKey};
use crate::plan::{check_part, ServerPart};

/// The source of a key's shared use counter, by key id (`ServerSession::with_key_counter`).
pub type KeyCounter = Arc<dyn Fn(&[u8; 32]) -> Arc<std::sync::atomic::AtomicU64> + Send + Sync>;

/// Most bundles in preparation (or inferences in flight) at once per session.
pub const MAX_IN_FLIGHT: usize = 64;

/// Static configuration of a server's session.
#[derive(Clone)]
pub struct ServerConfig {
    /// The session.
    pub session: SessionId,
    /// This server's part of the model (own weights + public skeleton).
    pub part: Arc<ServerPart>,
    /// Parameter set of the collective key.
    pub param: ParamId,
    /// Parameter set of the user's session key (result delivery).
    pub user_param: ParamId,
    /// Garbled-table bytes per stage-circuit chunk (`schedule::MAX_CHUNK_TABLE_BYTES`; every
    /// server of a session must use the same, it is part of the skeleton digest).
    pub chunk_budget: usize,
}

/// Where the session stands.
pub(crate) enum State {
    /// (1) Gateway: waiting for the user's `Hello`. Remote: waiting for the gateway's `Open`.
    AwaitOpen,
    /// (2) Gateway with stored keys: waiting for every remote's `OpenAck` (the keys of its
    /// list each holds).
    Opening { acks: Vec<Option<Vec<[u8; 32]>>> },
    /// (2') Remote: `OpenAck` sent, waiting for the gateway's `UseKey`.
    AwaitKeyChoice,
    /// (3) Collective key generation running.
    Keygen(Box<CollectiveKeygen>),
    /// (4) Gateway: own key persisted, waiting for every remote's `KeyReady`.
    AwaitKeyReady,
    /// (5) Keys in place; waiting for the pairwise OT setup (gateway: its own and every
    /// remote's `OtReady`; remote: its own pairs). The setup runs from the session's open.
    AwaitSetup,
    /// (6) Keys and OT setup in place: bundles are prepared and consumed.
    Ready,
    /// (7) Aborted with a reason; every further message is refused.
    Aborted(String),
    /// (8) Closed (by the user, or expired); every further message is refused.
    Closed(super::msg::CloseReason),
}

impl State {
    fn name(&self) -> String {
        match self {
            State::AwaitOpen => "await-open".into(),
            State::Opening { .. } => "opening".into(),
            State::AwaitKeyChoice => "await-key-choice".into(),
            State::Keygen(_) => "keygen".into(),
            State::AwaitKeyReady => "await-key-ready".into(),
            State::AwaitSetup => "await-ot-setup".into(),
            State::Ready => "ready".into(),
            State::Aborted(r) => format!("aborted ({r})"),
            State::Closed(r) => format!("closed ({r})"),
        }
    }
}

/// One server's session. Prints as `ServerSession([redacted])`; its offset is zeroized on drop,
/// as the key shares, masks and garbling state it holds (their own types wipe themselves).
pub struct ServerSession {
    pub(crate) cfg: ServerConfig,
    /// This server's index (0 = gateway).
    pub(crate) me: usize,
    pub(crate) sched: Arc<Schedule>,
    /// Encoded weights of the stages this server owns (index = stage).
    pub(crate) encoded: Vec<Option<EncodedLayer>>,
    /// `ServerPart::digest` of `cfg.part` (in the session record).
    part_digest: [u8; 32],
    pub(crate) rng: ChaCha20Rng,
    /// Sequence-number epoch: 0 at the session's open, +1 at every resume (`seq.rs`).
    epoch: u32,
    out_seq: u64,
    seen: HashMap<Party, SeqWindow>,
    pub(crate) state: State,
    /// The key the session runs under, once chosen (`open.rs`).
    pub(crate) keys: Option<Arc<KeyMaterial>>,
    /// The collective keys this server holds, newest first (at most `msg::MAX_KEYS`).
    pub(crate) ring: Vec<Arc<KeyMaterial>>,
    /// Bundles this server may lead under one key (`BudgetReport::owner_lifetime_bundles`).
    pub(crate) key_lifetime: u64,
    /// The first stage this server owns: its E2S counts the bundle against the key.
    pub(crate) first_owned: Option<usize>,
    /// Where a key made by this session's key generation gets its use counter (the node's
    /// shared, durable one; a private counter without it).
    pub(crate) key_counter: Option<KeyCounter>,
    pub(crate) user_pk: Option<PublicKey>,
    /// Keygen messages that arrived before this server started key generation.
    pub(crate) early_keygen: Vec<(Party, SecoMsg)>,
    /// The pairwise OT setup with the other servers (started at the session's open; kept for
    /// the session to answer restarted peers). In memory only: a restart redoes it.
    pub(crate) ot: Option<OtSetup>,
    /// This server's session offset (`OtSetup::offset`), from its setup or, on a resume, from
    /// the session record; it goes into the record and back into stored garblings.
    pub(crate) offset: Option<crate::garble::block::Block>,
    /// Setup messages that arrived before this server started its setup.
    pub(crate) early_setup: Vec<(Party, SecoMsg)>,
    /// Whether this server's setup completed (and, at a remote, `OtReady` went out).
    pub(crate) ot_done: bool,
    /// Resumed after a restart: ready again without telling the user.
    pub(crate) resumed: bool,
    pub(crate) preps: BTreeMap<BundleId, prep::Prep>,
    /// Bundles this session finished preparing (late messages for them are refused).
    pub(crate) prepared: HashSet<BundleId>,
    /// Bundles this session started to consume (a bundle is used at most once).
    pub(crate) used: HashSet<BundleId>,
    pub(crate) onlines: BTreeMap<BundleId, online::Online>,
    /// Remotes: bundles whose inference finished here before the gateway's `OnlineStart`
    /// arrived (a peer's message started it; a non-evaluator is done once it sent its keys).
    /// The late `OnlineStart` finds its bundle here and is dropped, not refused as a reuse.
    pub(crate) finished_unstarted: HashSet<BundleId>,
    pub(crate) gw: gateway::GatewayState,
}

crate::redacted_debug!(ServerSession);

impl Drop for ServerSession {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.offset);
    }
}

impl ServerSession {
    /// A server's session. `ring` is the stored collective-key material, newest first (empty:
    /// none yet); the session runs under the newest key every server holds, or generates a new
    /// one (`open.rs`). `seed` seeds
    /// the session's CSPRNG (from the OS in nodes, fixed in tests).
    ///
    /// Refuses ([`SecoError::Budget`]) a part that does not fit `cfg.param` for its number of
    /// servers: every stage's shape, and the noise and flooding budget of the stages it owns
    /// (`plan::check_part`).
    pub fn new(cfg: ServerConfig, ring: Vec<KeyMaterial>, seed: [u8; 32]) -> Result<Self> {
        cfg.part.validate()?;
        if cfg.param != cfg.part.param {
            return Err(crate::plan::PlanError::Mismatch(format!(
                "the session's parameter set {:?} is not the part's {:?}",
                cfg.param, cfg.part.param
            ))
            .into());
        }
        let report = check_part(&cfg.part, cfg.param)?;
        let owners: std::collections::BTreeSet<usize> =
            cfg.part.skeleton.iter().map(|s| s.owner).collect();
        let key_lifetime = report.owner_lifetime_bundles(owners.len());
        let first_owned = cfg.part.owned.iter().map(|(i, _)| *i).min();
        let me = cfg.part.server_index;
        let sched = Arc::new(Schedule::new(&cfg.part, cfg.param, cfg.chunk_budget)?);
        let mut encoded: Vec<Option<EncodedLayer>> = (0..sched.len()).map(|_| None).collect();
        for (stage, op) in &cfg.part.owned {
            encoded[*stage] = Some(EncodedLayer::from_op(cfg.param, op)?);
        }
        let n = sched.n;
        Ok(Self {
            me,
            encoded,
            part_digest: cfg.part.digest(),
            rng: ChaCha20Rng::from_seed(seed),
            epoch: 0,
            out_seq: 0,
            seen: HashMap::new(),
            state: State::AwaitOpen,
            keys: None,
            key_lifetime,
            first_owned,
            key_counter: None,
            ring: ring
                .into_iter()
                .take(super::msg::MAX_KEYS)
                .map(Arc::new)
                .collect(),
            user_pk: None,
            early_keygen: Vec::new(),
            ot: None,
            offset: None,
            early_setup: Vec::new(),
            ot_done: false,
            resumed: false,
            preps: BTreeMap::new(),
            prepared: HashSet::new(),
            used: HashSet::new(),
            finished_unstarted: HashSet::new(),
            onlines: BTreeMap::new(),
            gw: gateway::GatewayState::new(n),
            sched,
            cfg,
        })
    }

    /// Resumes a session after a restart from its persisted record (under the key of `ring`
    /// the record names), with the stored bundles.
    /// Bundles that were in preparation are lost. The OT setup lived in memory, so the resumed
    /// server sets up again with every other server (`setup.rs`): the returned [`Ready`]
    /// persists the record with the next sequence-number epoch (so peers take the new
    /// messages as new, `seq.rs`) and carries the setup messages; the session is ready once
    /// every peer has answered ([`Event::SessionReady`]).
    pub fn resume(
        cfg: ServerConfig,
        ring: Vec<KeyMaterial>,
        record: &[u8],
        seed: [u8; 32],
    ) -> Result<(Self, Ready)> {
        let rec = super::record::SessionRecord::from_bytes(record)?;
        if rec.session != cfg.session || rec.model != cfg.part.model {
            return Err(SecoError::Mismatch(
                "session record does not match this session or model".into(),
            ));
        }
        if rec.part != Some(cfg.part.digest()) || rec.layout != super::schedule::LAYOUT {
            return Err(SecoError::PartChanged);
        }
        let Some(keys) = ring.into_iter().find(|k| k.key_id == rec.key_id) else {
            return Err(SecoError::Mismatch(
                "session record's collective key is not held here any more".into(),
            ));
        };
        let user_pk = PublicKey::from_bytes(&rec.user_pk, cfg.user_param)?;
        let mut s = Self::new(cfg, Vec::new(), seed)?;
        let keys = Arc::new(keys);
        s.ring = vec![keys.clone()];
        s.keys = Some(keys);
        s.user_pk = Some(user_pk);
        s.set_output(rec.output)?;
        s.offset = rec.offset_block()?;
        s.epoch = rec.epoch.checked_add(1).ok_or(SecoError::Mismatch(
            "session record: sequence-number epochs exhausted".into(),
        ))?;
        s.out_seq = seq_start(s.epoch);
        s.state = State::AwaitSetup;
        s.resumed = true;
        let mut ready = Ready::default();
        // Persist the new epoch before anything of it is sent.
        ready.persist.extend(s.record());
        ready.extend(s.start_setup()?);
        Ok((s, ready))
    }

    /// The record to persist when the session becomes ready.
    pub(crate) fn record(&self) -> Option<super::io::Persist> {
        let rec = super::record::SessionRecord {
            version: super::record::RECORD_VERSION,
            session: self.cfg.session,
            model: self.cfg.part.model.clone(),
            user_pk: super::msg::Bytes::from(self.user_pk.as_ref()?.to_bytes()),
            key_id: self.keys.as_ref()?.key_id,
            epoch: self.epoch,
            output: self.sched.output.map_or(0, OutputMode::code),
            offset: self
                .offset
                .map(|r| super::msg::Bytes::from(r.to_bytes().to_vec())),
            part: Some(self.part_digest),
            layout: super::schedule::LAYOUT,
        };
        Some(super::io::Persist::Session(rec.to_bytes()))
    }

    /// Sets the bundles this server may lead under one key (tests, and operators who want a
    /// shorter lifetime than the budget gives; a longer one is not accepted).
    pub fn with_key_lifetime(mut self, bundles: u64) -> Self {
        self.key_lifetime = self.key_lifetime.min(bundles);
        self
    }

    /// Gives keys made by this session's key generation the node's shared use counter
    /// (`counter(key_id)`), so that every session under a key counts against one lifetime.
    pub fn with_key_counter(mut self, counter: KeyCounter) -> Self {
        self.key_counter = Some(counter);
        self
    }

    /// The bundles this server may lead under one key.
    pub fn key_lifetime(&self) -> u64 {
        self.key_lifetime
    }

    /// The id of the collective key the session runs under, once chosen.
    pub fn key_id(&self) -> Option<[u8; 32]> {
        self.keys.as_ref().map(|k| k.key_id)
    }

    /// Sets the session's output mode from its code (`Hello`, `Open`, the session record):
    /// builds the last stage's output circuit. An unknown code is [`SecoError::OutputMode`].
    pub(crate) fn set_output(&mut self, code: u8) -> Result<()> {
        let mode = OutputMode::from_code(code)?;
        Arc::get_mut(&mut self.sched)
            .ok_or_else(|| SecoError::NotReady("the schedule is in use".into()))?
            .set_output(mode)
    }

    /// The session's output mode (none before the session opened here).
    pub fn output_mode(&self) -> Option<OutputMode> {
        self.sched.output
    }

    /// Whether this server is the gateway.
    pub fn is_gateway(&self) -> bool {
        self.me == 0
    }

    /// The session id.
    pub fn session(&self) -> SessionId {
        self.cfg.session
    }

    /// The public schedule.
    pub fn schedule(&self) -> &Schedule {
        &self.sched
    }

    /// Whether the session is ready for preprocessing and inference.
    pub fn is_ready(&self) -> bool {
        matches!(self.state, State::Ready)
    }

    /// Bundles in preparation and inferences in flight (for timeouts in drivers).
    pub fn in_flight(&self) -> (Vec<BundleId>, Vec<BundleId>) {
        (
            self.preps.keys().copied().collect(),
            self.onlines.keys().copied().collect(),
        )
    }

    /// Chunk garblings in progress at this server, over all bundles in preparation (bounded
    /// per bundle by the window, `garble.rs`).
    pub fn garblings_running(&self) -> usize {
        self.preps.values().map(|p| p.running).sum()
    }

    /// A message from this server.
    pub(crate) fn msg(&mut self, body: Body) -> SecoMsg {
        let seq = self.out_seq;
        self.out_seq += 1;
        SecoMsg {
            version: VERSION,
            session: self.cfg.session,
            from: Party::Server(self.me as u16),
            seq,
            body,
        }
    }

    /// Queues `body` for `to`.
    pub(crate) fn send(&mut self, ready: &mut Ready, to: Party, body: Body) {
        let msg = self.msg(body);
        ready.send.push((to, msg));
    }

    /// Queues `body` for every other server.
    pub(crate) fn broadcast(&mut self, ready: &mut Ready, body: &Body) {
        for p in 0..self.sched.n {
            if p != self.me {
                self.send(ready, Party::Server(p as u16), body.clone());
            }
        }
    }

    /// Checks the envelope: session, claimed vs. authenticated sender, duplicates.
    fn check_envelope(&mut self, from: Party, msg: &SecoMsg) -> Result<()> {
        if msg.version != VERSION {
            return Err(SecoError::Version {
                expected: VERSION,
                found: msg.version,
            });
        }
        if msg.session != self.cfg.session {
            return Err(SecoError::WrongSession);
        }
        let valid_sender = match from {
            Party::User => self.is_gateway(),
            Party::Server(i) => usize::from(i) < self.sched.n && usize::from(i) != self.me,
        };
        if msg.from != from || !valid_sender {
            return Err(SecoError::WrongSender {
                body: msg.body.name(),
                claimed: msg.from,
                actual: from,
                expected: "a party of this session".into(),
            });
        }
        if !self.seen.entry(from).or_default().accept(msg.seq) {
            return Err(SecoError::Duplicate { from, seq: msg.seq });
        }
        Ok(())
    }

    /// Refuses `body` unless it came from one of `allowed`.
    pub(crate) fn expect_from(
        &self,
        from: Party,
        body: &'static str,
        allowed: &[Party],
    ) -> Result<()> {
        if allowed.contains(&from) {
            Ok(())
        } else {
            Err(SecoError::WrongSender {
                body,
                claimed: from,
                actual: from,
                expected: format!("{allowed:?}"),
            })
        }
    }

    /// The index of the server that sent `body`; refuses a message from the user.
    pub(crate) fn expect_server(from: Party, body: &'static str) -> Result<usize> {
        from.server().ok_or(SecoError::WrongSender {
            body,
            claimed: from,
            actual: from,
            expected: "a server".into(),
        })
    }

    /// A typed refusal of a message that does not fit the current state.
    pub(crate) fn wrong_phase(&self, body: &Body) -> SecoError {
        SecoError::WrongPhase {
            body: body.name(),
            phase: body.phase(),
            current: self.state.name(),
        }
    }

    fn on_message(&mut self, from: Party, msg: SecoMsg) -> Result<Ready> {
        self.check_envelope(from, &msg)?;
        match &self.state {
            State::Aborted(reason) => return Err(SecoError::Aborted(reason.clone())),
            State::Closed(reason) => return Err(SecoError::Closed(*reason)),
            _ => {}
        }
        match msg.body {
            Body::Abort {
                bundle,
                reason,
                kind,
            } => Ok(self.on_abort(from, bundle, reason, kind)),
            Body::Close { reason } => self.on_close(from, reason),
            ref b => match b.phase() {
                super::msg::Phase::Session | super::msg::Phase::Keygen => self.on_open(from, msg),
                super::msg::Phase::Setup => self.on_setup(from, msg),
                super::msg::Phase::Prep => self.on_prep(from, msg.body),
                super::msg::Phase::Online => self.on_online(from, msg.body),
                super::msg::Phase::Abort => Ok(Ready::default()),
            },
        }
    }
}

impl Machine for ServerSession {
    fn party(&self) -> Party {
        Party::Server(self.me as u16)
    }

    fn handle(&mut self, input: Input) -> Result<Ready> {
        match input {
            Input::Message { from, msg } => self.on_message(from, msg),
            Input::Loaded { bundle, bytes } => self.on_loaded(bundle, bytes),
            Input::Chunks {
                bundle,
                stage,
                chunks,
            } => self.on_chunks(bundle, stage, chunks),
            Input::Resume { bundle } => self.on_resume(bundle),
        }
    }
}

//! All parties of a deployment in one process: the user, the gateway and the remotes as
//! state machines, an in-memory router that delivers encoded messages (so every byte counted
//! is a byte that would cross the network, and every decoder runs), in-memory stores, and
//! per-party, per-phase accounting of bytes and CPU time. Deterministic from a seed.
//!
//! Used by tests, by `seco bench` and as the one-process API [`run_local`].
//!
//! **Insecure by design.** One process holds every party's secrets: the user's input and key,
//! every server's key share, weights, masks and garbling keys. Its results and byte counts are
//! those of the real protocol, but running it protects nothing. It is compiled only with the
//! feature `insecure-simulation` (tests and benches of this crate turn it on; the `seco` CLI
//! turns it on by default for `seco bench`; `seco node` never uses it).
//!
//! # Layout
//! - `mod.rs`: [`LocalDeployment`] (parties, stores, preprocessing and inference calls, fault
//!   hooks for tests) and [`run_local`].
//! - `router.rs`: the in-memory router and the driver loop of `io.rs`.
//! - `accounting.rs`: [`Usage`] and [`Accounting`], bytes and CPU per party and phase.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

mod accounting;
mod router;

pub use accounting::{Accounting, Usage};

use super::error::{Result, SecoError};
use super::ids::{BundleId, Party, SessionId};
use super::io::{Event, Input, Machine};
use super::keys::KeyMaterial;
use super::msg::{Phase, SecoMsg};
use super::server::{ServerConfig, ServerSession};
use super::user::{UserConfig, UserSession};
use crate::mhe::ParamId;
use crate::model::{Model, QuantModel};
use crate::plan::SplitPlan;

/// Options of a local deployment.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// Parameter set of the collective key: `None` for the split's (`SplitPlan::param`), or
    /// a set that replaces it.
    pub param: Option<ParamId>,
    /// Parameter set of the user's key.
    pub user_param: ParamId,
    /// Seed of every party's RNG (derived per party) and of the router.
    pub seed: u64,
    /// Deliver queued messages in a seeded random order instead of FIFO.
    pub shuffle: bool,
    /// Keep a copy of every delivered message (for tests that inspect traffic).
    pub record: bool,
    /// Garbled-table bytes per stage-circuit chunk (tests force small chunks).
    pub chunk_budget: usize,
    /// What the user learns: logits ([`LocalDeployment::infer`]) or the label
    /// ([`LocalDeployment::infer_label`]).
    pub output: super::OutputMode,
}

impl Default for LocalOptions {
    fn default() -> Self {
        Self {
            param: None,
            user_param: ParamId::Bfv2048T32V1,
            seed: 0,
            shuffle: false,
            record: false,
            chunk_budget: super::schedule::MAX_CHUNK_TABLE_BYTES,
            output: super::OutputMode::Logits,
        }
    }
}

/// A party's in-memory store.
#[derive(Default)]
struct MemStore {
    keys: Option<Vec<u8>>,
    session: Option<Vec<u8>>,
    bundles: HashMap<BundleId, Vec<u8>>,
    /// Chunk garblings: (bundle, stage, chunk) -> `bmr::Prepared` bytes.
    chunks: HashMap<(BundleId, u16, u32), Vec<u8>>,
}

/// A delivered message, as recorded for tests.
#[derive(Debug, Clone)]
pub struct Delivered {
    /// Sender.
    pub from: Party,
    /// Receiver.
    pub to: Party,
    /// The decoded message.
    pub msg: SecoMsg,
    /// Its encoded size.
    pub bytes: usize,
}

/// A whole deployment in one process.
pub struct LocalDeployment {
    user: UserSession,
    servers: Vec<ServerSession>,
    stores: BTreeMap<Party, MemStore>,
    queue: VecDeque<(Party, Party, Vec<u8>)>,
    router_rng: ChaCha20Rng,
    opts: LocalOptions,
    /// Usage so far.
    pub accounting: Accounting,
    /// Events reported so far, with the reporting party.
    pub events: Vec<(Party, Event)>,
    /// Delivered messages, when `opts.record`.
    pub trace: Vec<Delivered>,
    /// Messages refused by their receiver (a real node logs and drops them).
    pub refused: Vec<(Party, &'static str, String)>,
    /// The largest chunk-garbling record any server persisted (bytes).
    pub largest_chunk_record: usize,
    /// Per server, the most chunk garblings it had in progress at once.
    pub peak_garblings: BTreeMap<Party, usize>,
}

fn party_seed(seed: u64, p: Party) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(b"seco local party seed");
    h.update(&seed.to_le_bytes());
    h.update(format!("{p:?}").as_bytes());
    *h.finalize().as_bytes()
}

impl LocalDeployment {
    /// Opens a session (with collective key generation) among `plan.servers` and a user.
    pub fn new(model: &QuantModel, plan: &SplitPlan, opts: LocalOptions) -> Result<Self> {
        Self::with_keys(model, plan, opts, Vec::new())
    }

    /// Like [`LocalDeployment::new`], with stored key material per server (as after a restart;
    /// empty: run key generation).
    pub fn with_keys(
        model: &QuantModel,
        plan: &SplitPlan,
        opts: LocalOptions,
        keys: Vec<Vec<u8>>,
    ) -> Result<Self> {
        plan.validate(model)?;
        let plan = &SplitPlan {
            param: opts.param.or(plan.param),
            ..plan.clone()
        }
        .with_param(model);
        let param = plan.param(model);
        let mut rng = ChaCha20Rng::seed_from_u64(opts.seed);
        let session = SessionId::random(&mut rng);
        let mut stores = BTreeMap::new();
        let mut servers = Vec::with_capacity(plan.n_servers());
        for i in 0..plan.n_servers() {
            let part = std::sync::Arc::new(plan.server_part(model, i)?);
            let cfg = ServerConfig {
                session,
                part,
                param,
                user_param: opts.user_param,
                chunk_budget: opts.chunk_budget,
            };
            let p = Party::Server(i as u16);
            let km = match keys.get(i) {
                Some(b) => vec![KeyMaterial::from_bytes(b, param, i as u16)?],
                None => Vec::new(),
            };
            let store = MemStore {
                keys: keys.get(i).cloned(),
                ..MemStore::default()
            };
            stores.insert(p, store);
            servers.push(ServerSession::new(cfg, km, party_seed(opts.seed, p))?);
        }
        stores.insert(Party::User, MemStore::default());
        let ucfg = UserConfig {
            session,
            part: plan.user_part(model),
            param,
            user_param: opts.user_param,
            output: opts.output,
        };
        let start = Instant::now();
        let (user, hello) = UserSession::new(ucfg, party_seed(opts.seed, Party::User))?;
        let mut d = Self {
            user,
            servers,
            stores,
            queue: VecDeque::new(),
            router_rng: ChaCha20Rng::seed_from_u64(opts.seed ^ 0x5ec0),
            opts,
            accounting: Accounting::default(),
            events: Vec::new(),
            trace: Vec::new(),
            refused: Vec::new(),
            largest_chunk_record: 0,
            peak_garblings: BTreeMap::new(),
        };
        d.accounting.entry(Party::User, Phase::Session).cpu += start.elapsed();
        d.apply(Party::User, hello)?;
        d.run()?;
        if !d.user.is_ready() {
            return Err(SecoError::NotReady(format!(
                "session did not open: {:?}",
                d.aborts()
            )));
        }
        Ok(d)
    }

    fn aborts(&self) -> Vec<String> {
        let aborts = self.events.iter().filter_map(|(p, e)| match e {
            Event::Aborted { reason, .. } => Some(format!("{p}: {reason}")),
            _ => None,
        });
        let refused = self
            .refused
            .iter()
            .map(|(p, kind, e)| format!("{p} refused {kind}: {e}"));
        aborts.chain(refused).collect()
    }

    /// The key material each server persisted (to reopen a deployment with stored keys).
    pub fn stored_keys(&self) -> Vec<Vec<u8>> {
        (0..self.servers.len())
            .filter_map(|i| {
                self.stores
                    .get(&Party::Server(i as u16))
                    .and_then(|s| s.keys.clone())
            })
            .collect()
    }

    /// The session id.
    pub fn session(&self) -> SessionId {
        self.servers[0].session()
    }

    /// Overwrites (or adds) a stored bundle of a party (tests of corrupt stores).
    pub fn put_bundle(&mut self, p: Party, bundle: BundleId, bytes: Vec<u8>) {
        self.stores
            .entry(p)
            .or_default()
            .bundles
            .insert(bundle, bytes);
    }

    /// Server `i`'s state machine (tests).
    pub fn server_mut(&mut self, i: usize) -> &mut ServerSession {
        &mut self.servers[i]
    }

    /// Restarts server `i`: its in-memory state is lost, and it resumes from its store (keys,
    /// session record, bundles) with a fresh RNG seed; its OT setup messages are queued, not
    /// delivered. Messages still queued for the old instance go to the new one (as a transport
    /// would after a reconnect).
    pub fn resume_server(&mut self, i: usize, seed: u64) -> Result<()> {
        let p = Party::Server(i as u16);
        let old = self.servers.get(i).ok_or(SecoError::Length {
            what: "server index",
            expected: self.servers.len(),
            actual: i,
        })?;
        let cfg = old.cfg.clone();
        let store = self.stores.get(&p);
        let (keys, record) = match store.map(|s| (&s.keys, &s.session)) {
            Some((Some(k), Some(r))) => (k.clone(), r.clone()),
            _ => return Err(SecoError::NotReady(format!("{p} has no stored session"))),
        };
        let keys = KeyMaterial::from_bytes(&keys, cfg.param, i as u16)?;
        let start = Instant::now();
        let (server, ready) =
            ServerSession::resume(cfg, vec![keys], &record, party_seed(seed ^ 0x7e57a47, p))?;
        self.servers[i] = server;
        self.accounting.entry(p, Phase::Setup).cpu += start.elapsed();
        self.apply_phase(p, Phase::Setup, ready)
    }

    /// Restarts server `i` ([`LocalDeployment::resume_server`]) and delivers everything.
    pub fn restart_server(&mut self, i: usize, seed: u64) -> Result<()> {
        self.resume_server(i, seed)?;
        self.run()
    }

    /// Removes every queued message, undelivered (tests that hold messages back).
    pub fn take_queued(&mut self) -> Vec<(Party, Party, Vec<u8>)> {
        self.queue.drain(..).collect()
    }

    /// Whether server `i` is ready for preprocessing (tests).
    pub fn server_ready(&self, i: usize) -> bool {
        self.servers.get(i).is_some_and(ServerSession::is_ready)
    }

    /// Bundles stored by a party (tests).
    pub fn stored_bundles(&self, p: Party) -> usize {
        self.stores.get(&p).map_or(0, |s| s.bundles.len())
    }

    /// Overwrites (`Some`) or removes (`None`) a stored chunk garbling of a party (tests of
    /// corrupt stores).
    pub fn put_chunk(&mut self, p: Party, at: (BundleId, u16, u32), bytes: Option<Vec<u8>>) {
        let chunks = &mut self.stores.entry(p).or_default().chunks;
        match bytes {
            Some(b) => {
                chunks.insert(at, b);
            }
            None => {
                chunks.remove(&at);
            }
        }
    }

    /// Chunk-garbling records stored by a party (tests).
    pub fn stored_chunks(&self, p: Party) -> usize {
        self.stores.get(&p).map_or(0, |s| s.chunks.len())
    }

    /// The bytes of every chunk-garbling record stored by a party (tests).
    pub fn chunk_records(&self, p: Party) -> Vec<&[u8]> {
        self.stores.get(&p).map_or(Vec::new(), |s| {
            s.chunks.values().map(Vec::as_slice).collect()
        })
    }

    /// Prepares `count` bundles (one at a time) and returns their ids.
    pub fn preprocess(&mut self, count: usize) -> Result<Vec<BundleId>> {
        let mut ids = Vec::with_capacity(count);
        for _ in 0..count {
            let start = Instant::now();
            let (bundle, ready) = self.user.preprocess()?;
            self.accounting.entry(Party::User, Phase::Prep).cpu += start.elapsed();
            self.apply(Party::User, ready)?;
            self.run()?;
            if !self
                .events
                .iter()
                .any(|(p, e)| *p == Party::User && *e == Event::BundleReady(bundle))
            {
                return Err(SecoError::Bundle {
                    bundle,
                    reason: format!("not ready: {:?}", self.aborts()),
                });
            }
            ids.push(bundle);
        }
        Ok(ids)
    }

    /// One inference on an encoded input (logits mode); returns the signed logits.
    pub fn infer(&mut self, x: &[u64]) -> Result<Vec<i64>> {
        self.infer_with(x, |e| match e {
            Event::Logits { logits, .. } => Some(logits.clone()),
            _ => None,
        })
    }

    /// One inference on an encoded input (label mode); returns the class.
    pub fn infer_label(&mut self, x: &[u64]) -> Result<u32> {
        self.infer_with(x, |e| match e {
            Event::Label { class, .. } => Some(*class),
            _ => None,
        })
    }

    fn infer_with<T>(&mut self, x: &[u64], pick: impl Fn(&Event) -> Option<T>) -> Result<T> {
        let start = Instant::now();
        let (bundle, ready) = self.user.infer(x)?;
        self.accounting.entry(Party::User, Phase::Online).cpu += start.elapsed();
        self.apply(Party::User, ready)?;
        self.run()?;
        let of_bundle = |e: &Event| match e {
            Event::Logits { bundle: b, .. } | Event::Label { bundle: b, .. } => *b == bundle,
            _ => false,
        };
        self.events
            .iter()
            .rev()
            .find_map(|(p, e)| {
                (*p == Party::User && of_bundle(e))
                    .then(|| pick(e))
                    .flatten()
            })
            .ok_or_else(|| SecoError::Bundle {
                bundle,
                reason: format!("no result: {:?}", self.aborts()),
            })
    }

    /// Queues raw bytes from `from` to `to` (tests of hostile input).
    pub fn inject(&mut self, from: Party, to: Party, bytes: Vec<u8>) {
        self.queue.push_back((from, to, bytes));
    }

    /// Delivers one message directly and returns the receiver's verdict (tests).
    pub fn deliver_one(&mut self, from: Party, to: Party, bytes: &[u8]) -> Result<()> {
        let msg = SecoMsg::from_bytes(bytes)?;
        let ready = self.machine(to)?.handle(Input::Message { from, msg })?;
        self.apply(to, ready)
    }

    fn machine(&mut self, p: Party) -> Result<&mut dyn Machine> {
        match p {
            Party::User => Ok(&mut self.user),
            Party::Server(i) => self
                .servers
                .get_mut(usize::from(i))
                .map(|s| s as &mut dyn Machine)
                .ok_or(SecoError::Length {
                    what: "server index",
                    expected: 0,
                    actual: usize::from(i),
                }),
        }
    }
}

/// The result of [`run_local`].
#[derive(Debug, Clone)]
pub struct LocalRun {
    /// Signed logits of every input (scale `2^f`).
    pub logits: Vec<Vec<i64>>,
    /// Usage of the key generation and session opening.
    pub setup: Accounting,
    /// Usage of the preprocessing of every bundle.
    pub preprocessing: Accounting,
    /// Usage of the online phase of every inference.
    pub online: Accounting,
}

/// Secure inference of `inputs` (float, encoded with the model's fixed point) with the model
/// split over `servers` servers by the default balanced plan: one process, in-memory router.
pub fn run_local(
    model: &Model,
    servers: usize,
    inputs: &[Vec<f32>],
    opts: LocalOptions,
) -> Result<LocalRun> {
    let q = model.quantize()?;
    let names = crate::plan::default_server_names(servers);
    let plan = SplitPlan::balanced(&q, &names)?;
    let mut d = LocalDeployment::new(&q, &plan, opts)?;
    let setup = d.accounting.clone();
    d.preprocess(inputs.len())?;
    let preprocessing = d.accounting.since(&setup);
    let before = d.accounting.clone();
    let logits = inputs
        .iter()
        .map(|x| {
            let enc = model.encode_input(x)?;
            d.infer(&enc)
        })
        .collect::<Result<Vec<_>>>()?;
    let online = d.accounting.since(&before);
    Ok(LocalRun {
        logits,
        setup,
        preprocessing,
        online,
    })
}

//! The harness of `fault_matrix.rs`: a cluster with the fault layer on every node, one fault
//! armed per phase, every call bounded, results against the fixed-point reference.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use seco_actors::config::Timeouts;
use seco_actors::dev::{local_topology, Cluster, ClusterOptions};
use seco_actors::node::UserSessionHandle;
use seco_actors::ActorError;
use seco_protocols::model::{Model, TestSet};
use seco_runtime::fault::{FaultStats, Faults};
use seco_runtime::PeerId;
use tokio::task::JoinHandle;

/// Every node of the deployment; all of them go through the fault layer.
pub const NODES: [&str; 4] = ["gateway", "remote-1", "remote-2", "user"];
const SERVERS: [&str; 3] = ["gateway", "remote-1", "remote-2"];

/// One scenario at a time: the tests of this binary share two cores.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The seed of this run (`SECO_FAULT_SEED`, default 13).
pub fn seed() -> u64 {
    std::env::var("SECO_FAULT_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(13)
}

/// Short deadlines: digits-mlp opens a session in about a second here, prepares in a fraction.
pub fn timeouts() -> Timeouts {
    Timeouts {
        open: Duration::from_secs(15),
        prep: Some(Duration::from_secs(10)),
        inference: Some(Duration::from_secs(6)),
        ack: Duration::from_millis(1500),
        retry: Duration::from_secs(2),
        grace: Duration::from_secs(1),
        ..Timeouts::default()
    }
}

/// The most one call of the user may take: its attempts (the first and 2 retries), each of
/// which may open a new session, prepare a bundle and infer; plus scheduling slack.
fn bound() -> Duration {
    let t = timeouts();
    3 * (t.open + t.user_prep() + t.user_inference()) + Duration::from_secs(10)
}

/// The faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// The next 1 or 2 messages of one node are lost.
    Drop,
    /// Every node loses each message with a small probability (the sweep only).
    Loss,
    /// Every node sends its next few messages twice.
    Duplicate,
    /// Every node delays every message by a few ms plus a jitter of up to tens of ms.
    Delay,
    /// Every node holds its next 2 or 3 messages and sends them in another order.
    Reorder,
    /// One server is cut off from every other node (both ways) at its first message of the
    /// phase, then healed.
    Partition,
    /// One server stops at its first message of the phase (its connections close) and starts
    /// again from its store.
    Crash,
}

/// The phases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// The first session open: the collective key generation.
    Keygen,
    /// One bundle's preparation.
    Prep,
    /// One inference.
    Online,
}

impl Phase {
    fn stat(self) -> &'static str {
        match self {
            Phase::Keygen => "keygen",
            Phase::Prep => "prep",
            Phase::Online => "online",
        }
    }
}

/// One fault armed for one phase.
#[derive(Debug, Clone)]
struct Point {
    fault: Fault,
    victim: &'static str,
    n: usize,
    p: f64,
    fixed: Duration,
    jitter: Duration,
    /// Partition: until the heal. Crash: until the restart.
    hold: Duration,
    /// After the victim's first message of the phase.
    after: Duration,
}

impl Point {
    fn random(fault: Fault, phase: Phase, rng: &mut StdRng, sweep: bool) -> Self {
        let ms =
            |rng: &mut StdRng, lo: u64, hi: u64| Duration::from_millis(rng.random_range(lo..=hi));
        let victim = match fault {
            Fault::Drop => NODES[rng.random_range(0..NODES.len())],
            _ => SERVERS[rng.random_range(0..SERVERS.len())],
        };
        // A crash within the grace (1 s) of a session not yet ready ends only at the open
        // deadline: the default run restarts later, the sweep anywhere.
        let hold = match (fault, phase, sweep) {
            (Fault::Crash, Phase::Keygen, false) => ms(rng, 1200, 1600),
            (Fault::Crash, _, false) => ms(rng, 0, 600),
            (Fault::Crash, _, true) => ms(rng, 0, 2000),
            _ => ms(rng, 300, 2500),
        };
        Self {
            fault,
            victim,
            n: match fault {
                Fault::Drop => rng.random_range(1..=2),
                Fault::Duplicate => rng.random_range(2..=6),
                _ => rng.random_range(2..=3),
            },
            p: rng.random_range(0.01..0.08),
            fixed: ms(rng, 0, 5),
            jitter: ms(rng, 5, 40),
            hold,
            after: ms(rng, 0, 5),
        }
    }
}

/// What a scenario did and saw.
#[derive(Debug, Default, Clone)]
pub struct Report {
    /// Calls that returned the reference (or, for an open, a ready session).
    pub reference: u32,
    /// Calls that ended in a typed error within their bound.
    pub errors: u32,
    /// Failed calls whose repetition without the fault needed a new session.
    pub new_sessions: u32,
    /// The longest faulted call.
    pub longest: Duration,
    /// Per phase: the outcome and how long it took.
    pub outcomes: Vec<String>,
    pub dropped: u64,
    pub duplicated: u64,
    pub delayed: u64,
    pub shuffled_batches: u64,
    /// Messages not delivered because of a partition (both ways).
    pub cut: u64,
    pub crashes: u32,
    /// Partitions and crashes that began while the call was still running.
    pub mid_call: u32,
}

impl Report {
    fn add(&mut self, s: FaultStats) {
        self.dropped += s.dropped;
        self.duplicated += s.duplicated;
        self.delayed += s.delayed;
        self.shuffled_batches += s.shuffled_batches;
        self.cut += s.partitioned + s.swallowed;
    }
}

fn minus(a: FaultStats, b: FaultStats) -> FaultStats {
    FaultStats {
        dropped: a.dropped - b.dropped,
        duplicated: a.duplicated - b.duplicated,
        delayed: a.delayed - b.delayed,
        reordered: a.reordered - b.reordered,
        shuffled_batches: a.shuffled_batches - b.shuffled_batches,
        partitioned: a.partitioned - b.partitioned,
        swallowed: a.swallowed - b.swallowed,
    }
}

fn model_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/digits-mlp")
}

struct Harness {
    c: Cluster,
    tests: TestSet,
    report: Report,
}

impl Harness {
    async fn start(seed: u64) -> Self {
        // `SECO_LOG` when set (e.g. `warn`), else errors only.
        let filter = std::env::var(seco_runtime::telemetry::LOG_ENV).ok();
        let _ = seco_runtime::telemetry::init(
            Default::default(),
            Some(filter.as_deref().unwrap_or("error")),
        );
        let topology = local_topology(3, timeouts()).unwrap();
        let model = Model::load(model_dir()).unwrap();
        let tests = TestSet::load(model_dir()).unwrap();
        let opts = ClusterOptions {
            faulty: NODES.iter().map(|n| n.to_string()).collect(),
            fault_seed: seed,
            ..ClusterOptions::default()
        };
        let c = Cluster::start(topology, model, opts).await.unwrap();
        Self {
            c,
            tests,
            report: Report::default(),
        }
    }

    fn peers(&self) -> Vec<PeerId> {
        self.c.topology.nodes.iter().map(|n| n.peer_id).collect()
    }

    fn activity(&self, name: &str, phase: Phase) -> u64 {
        self.c.node(name).map_or(0, |n| {
            n.stats()
                .phases
                .get(phase.stat())
                .map_or(0, |p| p.bytes_received + p.bytes_sent)
        })
    }

    fn arm(&self, p: &Point) {
        let all = || self.c.faults.values();
        match p.fault {
            Fault::Drop => self.c.faults[p.victim].drop_next(p.n),
            Fault::Loss => all().for_each(|f| f.drop_probability(p.p)),
            Fault::Duplicate => all().for_each(|f| f.duplicate_next(p.n)),
            Fault::Delay => all().for_each(|f| f.delay(p.fixed, p.jitter)),
            Fault::Reorder => all().for_each(|f| f.reorder_next(p.n)),
            Fault::Partition | Fault::Crash => {}
        }
    }

    /// Runs `task` (a call of the user) with `point` armed for `phase`; panics if it hangs.
    async fn faulted<T: Send + 'static>(
        &mut self,
        phase: Phase,
        point: Option<&Point>,
        task: JoinHandle<T>,
    ) -> (T, Duration) {
        let start = Instant::now();
        let handles: HashMap<String, Faults> = self.c.faults.clone();
        let before: HashMap<String, FaultStats> = handles
            .iter()
            .map(|(n, f)| (n.clone(), f.stats()))
            .collect();
        let mut restarted = Vec::new();
        if let Some(p) = point {
            self.arm(p);
            if matches!(p.fault, Fault::Partition | Fault::Crash) {
                let base = self.activity(p.victim, phase);
                while self.activity(p.victim, phase) == base && !task.is_finished() {
                    assert!(
                        start.elapsed() < bound(),
                        "{phase:?} never reached {}",
                        p.victim
                    );
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                if !task.is_finished() {
                    tokio::time::sleep(p.after).await;
                    if !task.is_finished() {
                        self.report.mid_call += 1;
                    }
                    if p.fault == Fault::Partition {
                        self.c.faults[p.victim].partition(self.peers());
                        tokio::time::sleep(p.hold).await;
                        self.c.faults[p.victim].heal();
                    } else {
                        self.c.stop_node(p.victim).await.unwrap();
                        self.report.crashes += 1;
                        tokio::time::sleep(p.hold).await;
                        self.c.start_node(p.victim).await.unwrap();
                        restarted.push(p.victim);
                    }
                }
            }
        }
        let joined = tokio::time::timeout(bound(), task).await;
        let took = start.elapsed();
        let out = joined
            .unwrap_or_else(|_| panic!("{phase:?} under {point:?} hung for {:?}", bound()))
            .expect("the call panicked");
        for (name, f) in &handles {
            self.report.add(minus(f.stats(), before[name]));
            f.clear();
        }
        for name in restarted {
            self.report.add(self.c.faults[name].stats());
        }
        for f in self.c.faults.values() {
            f.clear();
        }
        (out, took)
    }

    fn note(&mut self, phase: Phase, point: Option<&Point>, took: Duration, what: String) {
        if point.is_some() {
            self.report.longest = self.report.longest.max(took);
        }
        let fault = point.map_or("none".into(), |p| match p.fault {
            Fault::Drop | Fault::Partition | Fault::Crash => format!("{:?}@{}", p.fault, p.victim),
            _ => format!("{:?}@every node", p.fault),
        });
        self.report
            .outcomes
            .push(format!("{phase:?} {fault}: {what} after {took:.2?}"));
    }

    /// A session open (the collective key generation when none is stored yet).
    async fn open(&mut self, point: Option<&Point>) -> Result<UserSessionHandle, ActorError> {
        let user = self.c.nodes.remove("user").expect("the user node");
        let task = tokio::spawn(async move {
            let r = user.open_session().await;
            (r, user)
        });
        let ((r, user), took) = self.faulted(Phase::Keygen, point, task).await;
        self.c.nodes.insert("user".into(), user);
        let what = match &r {
            Ok(_) => "ready".to_string(),
            Err(e) => format!("error: {e}"),
        };
        self.note(Phase::Keygen, point, took, what);
        r
    }

    /// One bundle's preparation (`phase` Prep) or one inference on test input `i` (Online),
    /// checked against the reference (bit-exact).
    async fn call(
        &mut self,
        phase: Phase,
        session: UserSessionHandle,
        i: usize,
        point: Option<&Point>,
    ) -> (Result<(), ActorError>, UserSessionHandle) {
        let (x, want) = self.c.reference(self.tests.input(i).unwrap()).unwrap();
        let task = tokio::spawn(async move {
            let r = match phase {
                Phase::Online => session.infer(&x).await.map(|(_, got)| {
                    assert_eq!(got, want, "a wrong result under a fault");
                }),
                _ => session.preprocess().await.map(|_| ()),
            };
            (r, session)
        });
        let ((r, session), took) = self.faulted(phase, point, task).await;
        let what = match &r {
            Ok(()) if phase == Phase::Online => "the reference".to_string(),
            Ok(()) => "bundle ready".to_string(),
            Err(e) => format!("error: {e}"),
        };
        self.note(phase, point, took, what);
        (r, session)
    }

    /// The call again without any fault: in the same session, else in a new one; it must
    /// succeed.
    async fn again(
        &mut self,
        phase: Phase,
        session: UserSessionHandle,
        i: usize,
    ) -> UserSessionHandle {
        let (r, s) = self.call(phase, session, i, None).await;
        if r.is_ok() {
            return s;
        }
        drop(s);
        self.report.new_sessions += 1;
        let s = self
            .open(None)
            .await
            .expect("no session could be opened after the fault was cleared");
        let s = if phase == Phase::Online {
            let (r, s) = self.call(Phase::Prep, s, i, None).await;
            r.expect("preparation in a new session without the fault");
            s
        } else {
            s
        };
        let (r, s) = self.call(phase, s, i, None).await;
        r.unwrap_or_else(|e| panic!("{phase:?} in a new session without the fault: {e}"));
        s
    }

    fn count(&mut self, ok: bool) {
        if ok {
            self.report.reference += 1;
        } else {
            self.report.errors += 1;
        }
    }
}

/// Key generation, preparation and an inference, each under `fault` (random strength, victim
/// and moment from `seed`), each repeated without the fault when it failed.
pub async fn scenario(fault: Fault, seed: u64) -> Report {
    scenario_with(fault, seed, false).await
}

async fn scenario_with(fault: Fault, seed: u64, sweep: bool) -> Report {
    let _serial = SERIAL.lock().await;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut h = Harness::start(seed).await;
    let p = Point::random(fault, Phase::Keygen, &mut rng, sweep);
    let r = h.open(Some(&p)).await;
    h.count(r.is_ok());
    let session = match r {
        Ok(s) => s,
        Err(_) => {
            h.report.new_sessions += 1;
            h.open(None)
                .await
                .expect("no session could be opened after the fault was cleared")
        }
    };
    let p = Point::random(fault, Phase::Prep, &mut rng, sweep);
    let (r, mut session) = h.call(Phase::Prep, session, 0, Some(&p)).await;
    h.count(r.is_ok());
    if r.is_err() {
        session = h.again(Phase::Prep, session, 0).await;
    }
    let p = Point::random(fault, Phase::Online, &mut rng, sweep);
    let (r, mut session) = h.call(Phase::Online, session, 1, Some(&p)).await;
    h.count(r.is_ok());
    if r.is_err() {
        session = h.again(Phase::Prep, session, 1).await;
        session = h.again(Phase::Online, session, 1).await;
    }
    let _ = tokio::time::timeout(bound(), session.close()).await;
    let report = h.report.clone();
    eprintln!("{fault:?} (seed {seed}): {report:#?}");
    let _ = tokio::time::timeout(Duration::from_secs(30), h.c.shutdown()).await;
    report
}

/// `n` random points from `seed`: a fault kind per point, a fresh cluster each.
pub async fn sweep(seed: u64, n: u64) {
    const KINDS: [Fault; 7] = [
        Fault::Drop,
        Fault::Loss,
        Fault::Duplicate,
        Fault::Delay,
        Fault::Reorder,
        Fault::Partition,
        Fault::Crash,
    ];
    if let Ok(point) = std::env::var("SECO_FAULT_POINT") {
        // One scenario of a sweep again: `Drop:1012` (its kind and seed, as printed).
        let (kind, seed) = point.split_once(':').expect("SECO_FAULT_POINT=Kind:seed");
        let fault = *KINDS
            .iter()
            .find(|k| format!("{k:?}") == kind)
            .expect("a fault kind");
        scenario_with(fault, seed.parse().expect("a seed"), true).await;
        return;
    }
    let started = Instant::now();
    let mut rows: BTreeMap<Fault, (u32, u32, u32, u32, Duration, u32)> = BTreeMap::new();
    let mut rng = StdRng::seed_from_u64(seed);
    for i in 0..n {
        let fault = KINDS[rng.random_range(0..KINDS.len())];
        let r = scenario_with(fault, seed.wrapping_add(1000 + i), true).await;
        let row = rows.entry(fault).or_default();
        row.0 += 1;
        row.1 += r.reference;
        row.2 += r.errors;
        row.3 += r.new_sessions;
        row.4 = row.4.max(r.longest);
        row.5 += r.mid_call;
    }
    println!("| fault | scenarios | calls: reference | calls: typed error | new sessions after | longest faulted call | partitions, crashes during a call |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for (f, (s, ok, err, new, long, mid)) in rows {
        println!("| {f:?} | {s} | {ok} | {err} | {new} | {long:.1?} | {mid} |");
    }
    println!("{n} scenarios in {:.1?} (seed {seed})", started.elapsed());
}

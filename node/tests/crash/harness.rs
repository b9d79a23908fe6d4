//! The crash harness of `crash.rs`: a deployment of `seco node` processes, seeded fault
//! points (which server, which phase, which of its messages, SIGKILL or SIGSTOP), the user's
//! run in this process, and the checks after each point (see `crash.rs`).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::{self, reference, seco, Deployment, Node};
use rand::Rng;
use seco_actors::node::{Node as ActorNode, UserSetup};
use seco_actors::topology::Topology;
use seco_protocols::model::Model;
use seco_protocols::plan::UserPart;

const MODEL: &str = "digits-mlp";
/// The deployment's deadlines: short, so that a lost message ends in a typed error soon.
/// (digits-mlp needs about 0.15 s to open a session, 0.05 s per bundle and 0.012 s per
/// inference in a debug build: these leave a margin of 50x or more.)
const TIMEOUTS: &str = "open = 10\nprep = 6\ninference = 5\nack = 3\nretry = 3\n";
/// A faulted run (open, one bundle, one inference) ends within this, result or error: the
/// phase deadlines above plus the safety margin of the user's calls.
const BOUND: Duration = Duration::from_secs(10 + 6 + 5 + 15);
/// The servers' logs: every handled message with its body (the trigger reads them).
const LOG: &str = "info,seco_actors=trace";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Keygen,
    OtSetup,
    Prep,
    Online,
}

impl Phase {
    /// The message bodies a server handles in this phase.
    fn bodies(self) -> &'static [&'static str] {
        match self {
            Phase::Keygen => &["Keygen", "KeyReady"],
            Phase::OtSetup => &["OtSetup", "OtReady"],
            Phase::Prep => &[
                "PrepStart",
                "InputMask",
                "MaskShare",
                "E2sRequest",
                "E2sShare",
                "MaskBits",
                "BmrOffline",
                "PrepDone",
            ],
            Phase::Online => &["OnlineStart", "MaskedInput", "BmrOnline", "ResultShare"],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// SIGKILL, then a restart on the same data directory.
    Kill,
    /// SIGSTOP for this long, then SIGCONT.
    Freeze(Duration),
}

/// Where and how a server is hit.
#[derive(Debug, Clone, Copy)]
pub struct Point {
    pub victim: usize,
    pub phase: Phase,
    /// The n-th message of the phase handled by the victim (1-based).
    pub nth: usize,
    pub delay: Duration,
    pub fault: Fault,
}

impl Point {
    /// A seeded point of `phase`: victim, message number (within `max_nth`), delay.
    pub fn seeded(rng: &mut rand::rngs::StdRng, phase: Phase, fault: Fault) -> Self {
        // Messages each server handles per session in the phase (digits-mlp, 3 servers: key
        // generation 6 to 8, OT setup 2 to 4, one bundle 13 to 16, one inference 2 to 4), and
        // the phase's length (debug build: tens of ms, an inference about 12 ms).
        let (max_nth, max_delay_us) = match phase {
            Phase::Keygen => (5, 5000),
            Phase::OtSetup => (2, 5000),
            Phase::Prep => (12, 5000),
            Phase::Online => (2, 1000),
        };
        Point {
            victim: rng.random_range(0..3),
            phase,
            nth: rng.random_range(1..=max_nth),
            delay: Duration::from_micros(rng.random_range(0..max_delay_us)),
            fault,
        }
    }
}

/// What one point gave.
#[derive(Debug)]
pub struct Outcome {
    pub point: Point,
    /// The fault happened before the run ended (else the phase was over first).
    pub reached: bool,
    /// `Ok`: the reference result; `Err`: the typed error's text.
    pub run: Result<(), String>,
    /// From the fault (or the start, if not reached) to the run's end.
    pub to_outcome: Duration,
    /// What the checks found wrong (empty: all good).
    pub problems: Vec<String>,
}

/// A running deployment and what the checks remember across points.
pub struct Harness {
    d: Deployment,
    nodes: Vec<Option<Node>>,
    rt: tokio::runtime::Runtime,
    /// The key id each server reported last (`ready: ... key id X`).
    key_ids: Vec<Option<String>>,
}

impl Harness {
    fn new() -> Self {
        let d = Deployment::with_timeouts(MODEL, 3, TIMEOUTS);
        let nodes = d
            .servers
            .iter()
            .map(|s| Some(d.start_logged(s, &[], LOG)))
            .collect();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        Self {
            d,
            nodes,
            rt,
            key_ids: vec![None; 3],
        }
    }

    fn node(&self, i: usize) -> &Node {
        self.nodes[i].as_ref().unwrap()
    }

    /// `seco infer` of test input 0 (a new session); the reference must come back.
    fn infer_cli(&self) -> Result<(), String> {
        let (x, want) = reference(MODEL, 0);
        let input = self.d.input_file(&x);
        let o = seco(&[
            "infer",
            "--topology",
            self.d.topology.to_str().unwrap(),
            "--model-part",
            self.d.path("parts/user.json").to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--json",
        ]);
        let err = String::from_utf8_lossy(&o.stderr).trim().to_string();
        if !o.status.success() {
            return Err(err);
        }
        if !err.is_empty() {
            return Err(format!("a successful run wrote to stderr: {err}"));
        }
        let out = common::stdout(&o);
        let line: serde_json::Value =
            serde_json::from_str(out.lines().next().unwrap_or("")).map_err(|e| e.to_string())?;
        let got: Vec<i64> = serde_json::from_value(line["fixed"].clone()).unwrap();
        if got != want {
            return Err(format!("wrong result {got:?}, want {want:?}"));
        }
        Ok(())
    }

    /// Runs `point` and checks everything but the next run (see the module docs).
    fn run(&mut self, point: Point) -> Outcome {
        let victim = self.nodes[point.victim].take().unwrap();
        let log = victim.log.clone();
        let from = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        let done = AtomicBool::new(false);
        let start = Instant::now();
        let d = &self.d;
        let (node, fault_at, run) = std::thread::scope(|sc| {
            let hit = sc.spawn(|| {
                if !wait_for(&log, from, point.phase, point.nth, &done) {
                    return (victim, None);
                }
                std::thread::sleep(point.delay);
                let at = Instant::now();
                match point.fault {
                    Fault::Kill => {
                        let name = d.servers[point.victim].clone();
                        victim.kill();
                        (d.start_logged(&name, &[], LOG), Some(at))
                    }
                    Fault::Freeze(t) => {
                        victim.signal("STOP");
                        std::thread::sleep(t);
                        victim.signal("CONT");
                        (victim, Some(at))
                    }
                }
            });
            let run = self.rt.block_on(user_run(d));
            done.store(true, Ordering::SeqCst);
            let (node, at) = hit.join().unwrap();
            (node, at, run)
        });
        let end = Instant::now();
        let mut problems = Vec::new();
        if end - start > BOUND {
            problems.push(format!("the run took {:?}", end - start));
        }
        if let Err(e) = &run {
            if e.contains("WRONG RESULT") {
                problems.push(e.clone());
            }
        }
        if point.fault == Fault::Kill && fault_at.is_some() {
            problems.extend(self.check_key(point, &node));
        }
        self.nodes[point.victim] = Some(node);
        let mut outcome = Outcome {
            point,
            reached: fault_at.is_some(),
            run,
            to_outcome: end - fault_at.unwrap_or(start),
            problems,
        };
        let next = self.check_next_run(point);
        outcome.problems.extend(next);
        eprintln!("{outcome:?}");
        outcome
    }

    /// A restarted victim that had a key reports it again, with the same id.
    fn check_key(&mut self, point: Point, restarted: &Node) -> Option<String> {
        let id = restarted
            .ready
            .rsplit("key id ")
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        let had = self.key_ids[point.victim].clone();
        if id != "none" {
            self.key_ids[point.victim] = Some(id.clone());
        }
        if point.phase == Phase::Keygen {
            return None;
        }
        if !restarted.ready.contains("collective key present") {
            return Some(format!("key share lost: {}", restarted.ready));
        }
        match had {
            Some(had) if had != id => Some(format!("key {had} became {id} after the restart")),
            _ => None,
        }
    }

    /// The next `seco infer` returns the reference; with a key before the point, the gateway
    /// opened its session without a key generation; no bundle ran twice anywhere.
    fn check_next_run(&self, point: Point) -> Vec<String> {
        let mut problems = Vec::new();
        if let Err(e) = self.infer_cli() {
            problems.push(format!("the next seco infer failed: {e}"));
        } else if point.phase != Phase::Keygen {
            let log = plain(&self.node(0).log_text());
            let last = log
                .lines()
                .rfind(|l| l.contains("session opened"))
                .unwrap_or("");
            if !last.contains("generating_key=false") {
                problems.push(format!("a new key generation ran: {last}"));
            }
        }
        for i in 0..self.d.servers.len() {
            problems.extend(bundle_used_twice(&self.node(i).log));
        }
        problems
    }

    /// The last lines of the gateway's log (for a failure message).
    fn gateway_tail(&self) -> String {
        tail(&plain(&self.node(0).log_text()), 30)
    }
}

/// The user's run, in this process: open a session, prepare one bundle, one inference of
/// test input 1; `Ok` only with the reference result.
async fn user_run(d: &Deployment) -> Result<(), String> {
    let topology = Arc::new(Topology::load(&d.topology).unwrap());
    let part: UserPart =
        serde_json::from_str(&std::fs::read_to_string(d.path("parts/user.json")).unwrap()).unwrap();
    let key = seco_runtime::identity::load(&d.path("user.key")).unwrap();
    let network = ActorNode::network(&topology, "user", key, false).unwrap();
    let user = ActorNode::start_user(UserSetup {
        name: "user".into(),
        topology,
        part,
        store: Arc::new(seco_runtime::store::MemStore::new()),
        network,
    })
    .await
    .unwrap();
    let dir = common::repo().join("models").join(MODEL);
    let model = Model::load(&dir).unwrap();
    let (x, want) = reference(MODEL, 1);
    let x = model.encode_input(&x).unwrap();
    let run = async {
        let session = user.open_session().await?;
        let r = async {
            session.preprocess().await?;
            session.infer(&x).await
        }
        .await;
        let _ = tokio::time::timeout(Duration::from_secs(10), session.close()).await;
        r
    };
    let r = match tokio::time::timeout(BOUND, run).await {
        Err(_) => Err(format!("no answer within {BOUND:?}")),
        Ok(Err(e)) => Err(format!("typed error: {e}")),
        Ok(Ok((_, got))) if got == want => Ok(()),
        Ok(Ok((_, got))) => Err(format!("WRONG RESULT {got:?}, want {want:?}")),
    };
    let _ = user.shutdown().await;
    r
}

/// Waits until the victim's log (from byte `from`) shows the `nth` handled message of
/// `phase`; false if `done` is set first. Polls every 0.5 ms: a phase lasts tens of ms.
fn wait_for(log: &Path, from: u64, phase: Phase, nth: usize, done: &AtomicBool) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(log).unwrap();
    file.seek(SeekFrom::Start(from)).unwrap();
    let mut seen = 0;
    let mut pending = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    while !done.load(Ordering::SeqCst) {
        let n = file.read(&mut buf).unwrap_or(0);
        if n == 0 {
            std::thread::sleep(Duration::from_micros(500));
            continue;
        }
        pending.extend_from_slice(&buf[..n]);
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let raw: Vec<u8> = pending.drain(..=end).collect();
            let line = plain(&String::from_utf8_lossy(&raw));
            if line.contains("handled (step")
                && body_of(&line).is_some_and(|b| phase.bodies().contains(&b))
            {
                seen += 1;
                if seen >= nth {
                    return true;
                }
            }
        }
    }
    false
}

/// `line` without its ANSI colour sequences.
fn plain(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The `body` field of a log line (`body="Keygen"` or `body=Keygen`).
fn body_of(line: &str) -> Option<&str> {
    let rest = &line[line.find("body=")? + 5..];
    let rest = rest.strip_prefix('"').unwrap_or(rest);
    let end = rest.find(|c: char| !c.is_ascii_alphanumeric())?;
    Some(&rest[..end])
}

/// A bundle id that appears in two `inference done` lines of a server's log (all its runs).
fn bundle_used_twice(log: &Path) -> Option<String> {
    let text = plain(&std::fs::read_to_string(log).unwrap_or_default());
    let mut seen = std::collections::HashSet::new();
    for line in text.lines().filter(|l| l.contains("inference done")) {
        let Some(at) = line.find("bundle=") else {
            continue;
        };
        let id: String = line[at + 7..]
            .chars()
            .take_while(char::is_ascii_hexdigit)
            .collect();
        if !seen.insert(id.clone()) {
            return Some(format!("bundle {id} used twice: {line}"));
        }
    }
    None
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Runs `points` on one deployment (after a first `seco infer` that generates the key).
pub fn run_points(points: &[Point]) -> Vec<Outcome> {
    let mut h = Harness::new();
    h.infer_cli().expect("the first run");
    let mut out = Vec::new();
    for &p in points {
        let mut o = h.run(p);
        // On a loaded machine the run can end before the trigger saw the message: try again.
        for _ in 0..2 {
            if o.reached {
                break;
            }
            o = h.run(p);
        }
        if !o.problems.is_empty() {
            eprintln!("gateway log tail:\n{}", h.gateway_tail());
        }
        out.push(o);
    }
    out
}

/// A key-generation point: a fresh deployment (no key yet), the point, the next run.
pub fn run_keygen_point(point: Point) -> Outcome {
    let mut h = Harness::new();
    let o = h.run(point);
    if !o.problems.is_empty() {
        eprintln!("gateway log tail:\n{}", h.gateway_tail());
    }
    o
}

/// Every point reached its phase and passed every check.
pub fn assert_all_good(outcomes: &[Outcome]) {
    for o in outcomes {
        assert!(o.reached, "the fault came after the run: {o:?}");
        assert!(o.problems.is_empty(), "{o:?}");
    }
}

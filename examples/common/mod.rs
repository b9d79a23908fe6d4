//! The body shared by the examples: one deployment from a topology file, every node in this
//! process (each with its own libp2p swarm on 127.0.0.1, its own store and actors), read top
//! down perspective by perspective. `tests/examples.rs` runs it for every example topology.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use seco::actors::config::Limits;
use seco::actors::dev::{example_keypair, localize};
use seco::actors::node::{Node, ServerSetup, UserSetup};
use seco::actors::topology::{Role, Topology};
use seco::protocols::model::{Model, TestSet};
use seco::protocols::plan::SplitPlan;
use seco::runtime::store::MemStore;

/// What an example run measured.
#[derive(Debug)]
pub struct Report {
    /// Servers of the topology, gateway first.
    pub servers: Vec<String>,
    /// Secure logits equal to the fixed-point reference, per input.
    pub equal: Vec<bool>,
    /// Session open (with key generation), preprocessing of all bundles, all inferences.
    pub times: [Duration; 3],
}

/// The workspace directory (examples run from anywhere).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `inputs` test inputs of `model` through the deployment of `topology_file`.
pub async fn run(topology_file: &Path, model: &str, inputs: usize) -> Result<Report> {
    // Phase 0 (discovery): the topology file names every node, its role and peer id. A local
    // run moves its fixed ports to free ones.
    let mut topology = Topology::load(topology_file)?;
    localize(&mut topology)?;
    let topology = Arc::new(topology);
    let servers = topology.server_names();

    // The model owner splits the model: one part per server (plan order = the topology's
    // server order), the user's part (input shape, fixed point, output length).
    let dir = repo().join("models").join(model);
    let model = Model::load(&dir).with_context(|| format!("model {}", dir.display()))?;
    let tests = TestSet::load(&dir)?;
    let q = model.quantize()?;
    let plan = SplitPlan::balanced(&q, &servers)?;

    // Gateway and remotes: each loads its part, opens its store, starts its swarm (listen,
    // dial its bootstrap nodes, Kademlia) and its node actor. Here every store is in memory.
    let mut nodes = Vec::new();
    for (i, name) in servers.iter().enumerate() {
        let network = Node::network(&topology, name, example_keypair(name)?, false)?;
        let setup = ServerSetup {
            name: name.clone(),
            topology: topology.clone(),
            part: Arc::new(plan.server_part(&q, i)?),
            store: Arc::new(MemStore::new()),
            network,
            stats_file: None,
            limits: Limits::default(),
        };
        nodes.push(Node::start_server(setup).await?);
    }

    // User: its part, a network that knows only the gateway's address.
    let user_name = match topology.users().first() {
        Some(u) if u.role == Role::User => u.name.clone(),
        _ => bail!("the topology has no user"),
    };
    let network = Node::network(&topology, &user_name, example_keypair(&user_name)?, false)?;
    let user = Node::start_user(UserSetup {
        name: user_name,
        topology: topology.clone(),
        part: plan.user_part(&q),
        store: Arc::new(MemStore::new()),
        network,
    })
    .await?;

    // Phases 0-1: the user's Hello opens a session at the gateway, which opens it at every
    // remote; the servers run the collective key generation (first session only).
    let t = Instant::now();
    let session = user.open_session().await?;
    let open = t.elapsed();

    // Phase 2: one bundle per future inference (input-independent): masks, encryption-to-
    // shares of W r - s at each layer's owner, multiparty garbling of each non-linear layer.
    let t = Instant::now();
    for _ in 0..inputs {
        session.preprocess().await?;
    }
    let prep = t.elapsed();

    // Phase 3: the user sends x - r1; the servers evaluate; the user decrypts the logits.
    let t = Instant::now();
    let mut equal = Vec::with_capacity(inputs);
    for i in 0..inputs {
        let x = tests.input(i).context("test input")?;
        let encoded = model.encode_input(x)?;
        let reference: Vec<i64> = q
            .infer(&encoded)?
            .iter()
            .map(|&v| model.fixed_point.to_signed(v))
            .collect();
        let (_, logits) = session.infer(&encoded).await?;
        equal.push(logits == reference);
    }
    let online = t.elapsed();

    user.shutdown().await?;
    for node in nodes {
        node.shutdown().await?;
    }
    Ok(Report {
        servers,
        equal,
        times: [open, prep, online],
    })
}

/// `[MODEL [INPUTS]]` from the command line (default: mnist-mlp, 3 inputs); logs on stderr
/// filtered by `SECO_LOG` (default `warn`).
pub fn args() -> (String, usize) {
    let filter = std::env::var("SECO_LOG").unwrap_or_else(|_| "warn".into());
    let _ = seco::runtime::telemetry::init(Default::default(), Some(&filter));
    let mut a = std::env::args().skip(1);
    let model = a.next().unwrap_or_else(|| "mnist-mlp".into());
    let inputs = a.next().and_then(|s| s.parse().ok()).unwrap_or(3);
    (model, inputs)
}

/// Prints a report; fails if a secure result differs from the reference.
pub fn print(report: &Report) -> Result<()> {
    println!("servers: {}", report.servers.join(", "));
    for (i, ok) in report.equal.iter().enumerate() {
        println!("input {i}: secure logits equal the fixed-point reference: {ok}");
    }
    let [open, prep, online] = report.times;
    println!(
        "session open (with key generation) {open:?}, preprocessing {prep:?}, online {online:?}"
    );
    if report.equal.iter().any(|ok| !ok) {
        bail!("a secure result differs from the reference");
    }
    Ok(())
}

//! `seco demo [--servers N] [--model NAME] [--inputs K]`: a whole deployment on this machine.
//!
//! 1. Splits `models/NAME` over `gateway, remote-1, ...` (balanced plan) into a work directory,
//!    creates an identity per node and writes a topology with free loopback ports.
//! 2. Starts every server as a separate OS process (`seco node`, this same executable) and
//!    waits for each to be ready.
//! 3. Runs the user in this process over libp2p: opens a session (collective key generation),
//!    prepares K bundles, runs K inferences on the model's first K test inputs.
//! 4. Prints per input the secure class, the plaintext fixed-point class and whether the logits
//!    are bit-for-bit equal to the reference, then wall times at the user and bytes / CPU per
//!    party and phase (from the nodes' `stats.json`).
//!
//! Exits non-zero if any secure result differs from the reference. The server processes are
//! killed when the demo ends, also on errors and ctrl-c.

mod procs;
mod report;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use indicatif::ProgressBar;
use seco_actors::config::Timeouts;
use seco_actors::dev::{free_port, server_names};
use seco_actors::stats::NodeStats;
use seco_actors::topology::{NodeSpec, Role, Topology};
use seco_protocols::model::{argmax, Model, TestSet, MANIFEST_FILE};
use seco_protocols::plan::{SplitPlan, UserPart};
use seco_runtime::identity;

use super::common;
use procs::{Launch, Server};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Number of servers: a gateway and N-1 remotes.
    #[arg(long, default_value_t = 3)]
    pub servers: usize,
    /// A shipped model (`models/NAME`) or a model directory.
    #[arg(long, default_value = "mnist-mlp")]
    pub model: String,
    /// Number of test inputs to run.
    #[arg(long, default_value_t = 5)]
    pub inputs: usize,
    /// Work directory (parts, identities, data, logs); default: a temporary one, removed at the end.
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Keep the temporary work directory.
    #[arg(long)]
    pub keep: bool,
}

/// The shipped model `name`, found from the current directory or the source tree.
fn resolve_model(name: &str) -> Result<PathBuf> {
    let candidates = [
        PathBuf::from(name),
        Path::new("models").join(name),
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../models")
            .join(name),
    ];
    candidates
        .into_iter()
        .find(|p| p.join(MANIFEST_FILE).is_file())
        .ok_or_else(|| {
            anyhow!("no model {name:?}: expected models/{name}/{MANIFEST_FILE} (shipped: digits-mlp, digits-cnn, mnist-mlp)")
        })
}

/// Everything written to the work directory before the processes start.
struct Prepared {
    topology_file: PathBuf,
    topology: Arc<Topology>,
    names: Vec<String>,
    user_part: UserPart,
    user_key: PathBuf,
}

/// Parts, identities, topology (step 1 of the module docs).
fn prepare(model: &Model, servers: usize, work: &Path) -> Result<Prepared> {
    let q = model.quantize()?;
    let names = server_names(servers);
    let plan = SplitPlan::balanced(&q, &names)?;
    crate::cmd::common::check_budget(&q, servers)?;
    let mut nodes = Vec::with_capacity(servers + 1);
    for (i, name) in names.iter().enumerate() {
        let part = plan.server_part(&q, i)?;
        part.save(work.join("parts").join(name))?;
        let data = work.join(name);
        std::fs::create_dir_all(&data)?;
        let key = identity::generate();
        identity::save(&data.join(super::node::IDENTITY_FILE), &key)?;
        let addr: seco_runtime::Multiaddr =
            format!("/ip4/127.0.0.1/tcp/{}", free_port()?).parse()?;
        nodes.push(NodeSpec {
            name: name.clone(),
            role: if i == 0 { Role::Gateway } else { Role::Remote },
            peer_id: identity::peer_id(&key),
            listen: vec![addr.clone()],
            advertise: vec![addr],
            bootstrap: if i == 0 {
                vec![]
            } else {
                vec!["gateway".into()]
            },
            identity: None,
        });
    }
    let user_key = work.join("user.key");
    let key = identity::generate();
    identity::save(&user_key, &key)?;
    nodes.push(NodeSpec {
        name: "user".into(),
        role: Role::User,
        peer_id: identity::peer_id(&key),
        listen: vec![],
        advertise: vec![],
        bootstrap: vec!["gateway".into()],
        identity: Some(user_key.clone()),
    });
    let topology = Topology {
        model: Some(model.name.clone()),
        timeouts: Timeouts::default(),
        nodes,
    };
    let topology_file = work.join("topology.toml");
    std::fs::write(&topology_file, topology.to_toml())?;
    let user_part = plan.user_part(&q);
    std::fs::write(
        work.join("parts").join("user.json"),
        serde_json::to_string_pretty(&user_part)?,
    )?;
    Ok(Prepared {
        topology_file,
        topology: Arc::new(topology),
        names,
        user_part,
        user_key,
    })
}

pub fn run(args: DemoArgs) -> Result<()> {
    if args.servers < 2 {
        bail!("--servers must be at least 2 (a gateway and one remote)");
    }
    let dir = resolve_model(&args.model)?;
    let model =
        Model::load(&dir).with_context(|| format!("cannot load model {}", dir.display()))?;
    let tests = TestSet::load(&dir).context("cannot load the model's test set")?;
    let k = args.inputs.min(tests.len());
    if k == 0 {
        bail!("--inputs must be at least 1");
    }
    // The temporary directory (if any) is removed when `_temp` drops, after the processes.
    let (work, _temp) = match &args.work_dir {
        Some(w) => {
            std::fs::create_dir_all(w).with_context(|| format!("cannot create {}", w.display()))?;
            (w.clone(), None)
        }
        None => {
            let t = tempfile::Builder::new().prefix("seco-demo-").tempdir()?;
            if args.keep {
                (t.keep(), None)
            } else {
                (t.path().to_path_buf(), Some(t))
            }
        }
    };
    common::init_logs("error", false)?;
    println!(
        "seco demo: model {} split over {} servers, {k} test inputs; work directory {}",
        model.name,
        args.servers,
        work.display()
    );
    let prepared = prepare(&model, args.servers, &work)?;
    let inputs: Vec<Vec<f32>> = (0..k)
        .map(|i| {
            tests
                .input(i)
                .map(<[f32]>::to_vec)
                .ok_or_else(|| anyhow!("test input {i} missing"))
        })
        .collect::<Result<_>>()?;
    let labels = tests.labels[..k].to_vec();
    common::runtime()?.block_on(async {
        tokio::select! {
            r = demo(&model, &prepared, &work, &inputs, &labels) => r,
            _ = common::shutdown_signal() => Err(anyhow!("interrupted")),
        }
    })
}

async fn demo(
    model: &Model,
    p: &Prepared,
    work: &Path,
    inputs: &[Vec<f32>],
    labels: &[i64],
) -> Result<()> {
    let spinner = ProgressBar::new_spinner()
        .with_message(format!("starting {} server processes", p.names.len()));
    spinner.enable_steady_tick(Duration::from_millis(120));
    let mut servers = Vec::with_capacity(p.names.len());
    for (i, name) in p.names.iter().enumerate() {
        servers.push(Server::spawn(Launch {
            name,
            role: if i == 0 { "gateway" } else { "remote" },
            topology: &p.topology_file,
            data_dir: &work.join(name),
            part: &work.join("parts").join(name),
            log: work.join(format!("{name}.log")),
        })?);
    }
    for s in &mut servers {
        s.ready(Duration::from_secs(60)).await?;
    }
    spinner.finish_and_clear();
    println!(
        "servers ready: {} (logs in {})",
        p.names.join(", "),
        work.display()
    );

    let encoded: Vec<Vec<u64>> = inputs
        .iter()
        .map(|x| model.encode_input(x))
        .collect::<std::result::Result<_, _>>()?;
    let user = common::start_user(
        p.topology.clone(),
        Some("user"),
        Some(&p.user_key),
        p.user_part.clone(),
    )
    .await?;
    let mut run = common::run_user(&user, &encoded, std::future::pending()).await;
    let user_stats = user.stats();
    user.shutdown().await?;
    if let Some(e) = run.error.take() {
        return Err(e);
    }

    let mismatches = print_results(model, inputs, labels, &encoded, &run.logits)?;
    for s in servers {
        s.stop(Duration::from_secs(5)).await;
    }
    report::print_times(&run);
    let mut parties: Vec<(String, Option<NodeStats>)> = p
        .names
        .iter()
        .map(|n| (n.clone(), read_stats(&work.join(n))))
        .collect();
    parties.push(("user".into(), Some(user_stats)));
    report::print_parties(&parties, inputs.len());
    if mismatches > 0 {
        bail!(
            "{mismatches} of {} secure results differ from the fixed-point reference",
            inputs.len()
        );
    }
    println!(
        "\nall {} secure results equal the fixed-point reference",
        inputs.len()
    );
    Ok(())
}

/// Prints one line per input; returns the number of inputs whose logits differ.
fn print_results(
    model: &Model,
    inputs: &[Vec<f32>],
    labels: &[i64],
    encoded: &[Vec<u64>],
    secure: &[Vec<i64>],
) -> Result<usize> {
    let q = model.quantize()?;
    let fp = model.fixed_point;
    let mut mismatches = 0;
    println!();
    for (i, ((x, enc), got)) in inputs.iter().zip(encoded).zip(secure).enumerate() {
        let want: Vec<i64> = q.infer(enc)?.iter().map(|&v| fp.to_signed(v)).collect();
        let reference_class = argmax(&model.predict_fixed(x)?);
        let secure_class = argmax(&common::decode_logits(fp, got));
        let equal = *got == want;
        mismatches += usize::from(!equal);
        println!(
            "input {i}: label {}  secure class {secure_class}  plaintext fixed-point class {reference_class}  logits equal: {}",
            labels.get(i).copied().unwrap_or(-1),
            if equal { "yes" } else { "NO" }
        );
    }
    Ok(mismatches)
}

/// A node's counters (written by the node when it stops).
fn read_stats(data_dir: &Path) -> Option<NodeStats> {
    let text = std::fs::read_to_string(data_dir.join(super::node::STATS_FILE)).ok()?;
    serde_json::from_str(&text).ok()
}

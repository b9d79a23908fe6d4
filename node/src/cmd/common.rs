//! What `seco node`, `seco infer` and `seco demo` share: the tokio runtime, logging, reading
//! topology and part files, encoding inputs, starting the user node and running the user's
//! phases with progress bars.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use seco_actors::config::PARAM;
use seco_actors::node::{Node, UserSetup};
use seco_actors::topology::Topology;
use seco_protocols::fixed::FixedPoint;
use seco_protocols::model::QuantModel;
use seco_protocols::plan::budget::SECURITY_TARGET_BITS;
use seco_protocols::plan::{check_model, BudgetReport, UserPart, USER_PART_FORMAT};
use seco_runtime::store::MemStore;
use seco_runtime::telemetry::{self, LogFormat};

/// The parameter check (`plan::budget`) of a model for `servers` servers at the deployment's
/// parameter set: a model that does not fit is refused with the layer, the bits it reaches and
/// the target (or the size and the limit) before anything is written or started.
pub fn check_budget(q: &QuantModel, servers: usize) -> Result<BudgetReport> {
    check_model(q, PARAM, servers).with_context(|| format!("model {:?} refused", q.name))
}

/// One line on the weakest layer of a passed check.
pub fn budget_line(report: &BudgetReport) -> String {
    match report.weakest() {
        Some(l) => format!(
            "noise budget ({:?}, {} servers): weakest layer {} at {:.1} bits of flooding security \
             (target {SECURITY_TARGET_BITS:.0}), decryption headroom {:.1} bits",
            report.param, report.n, l.layer, l.budget.security_bits, l.budget.headroom_bits
        ),
        None => format!(
            "noise budget ({:?}, {} servers): no layer",
            report.param, report.n
        ),
    }
}

/// Largest user part file accepted.
const MAX_USER_PART: u64 = 16 << 20;

/// A multi-threaded tokio runtime (the actors hand CPU-bound steps over with `block_in_place`).
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Logs on stderr: `SECO_LOG` if set, else `default` (e.g. `info` for nodes, `error` for the
/// user side, whose results go to stdout and whose failures end in one error line).
pub fn init_logs(default: &str, json: bool) -> Result<()> {
    let filter = std::env::var(telemetry::LOG_ENV).unwrap_or_else(|_| default.to_string());
    let format = if json {
        LogFormat::Json
    } else {
        LogFormat::Human
    };
    telemetry::init(format, Some(&filter))?;
    Ok(())
}

/// Reads and validates a topology file.
pub fn load_topology(path: &Path) -> Result<Topology> {
    Ok(Topology::load(path)?)
}

/// Reads the user's part (`user.json` of `seco model split`).
pub fn read_user_part(path: &Path) -> Result<UserPart> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("cannot read model part {}", path.display()))?;
    if meta.len() > MAX_USER_PART {
        bail!("model part {} is larger than 16 MiB", path.display());
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read model part {}", path.display()))?;
    let part: UserPart = serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{} is not a user model part (user.json of `seco model split`): {e}",
            path.display()
        )
    })?;
    if part.format != USER_PART_FORMAT {
        bail!(
            "{} has format {:?}, expected {USER_PART_FORMAT:?}",
            path.display(),
            part.format
        );
    }
    part.fixed_point
        .validate()
        .with_context(|| format!("model part {}", path.display()))?;
    Ok(part)
}

/// Encodes a float input at the part's scale (`Model::encode_input` semantics).
pub fn encode_input(part: &UserPart, x: &[f32]) -> Result<Vec<u64>> {
    let expected: usize = part.input_shape.iter().product();
    if x.len() != expected {
        bail!(
            "the input has {} values, the model expects {expected} (shape {:?})",
            x.len(),
            part.input_shape
        );
    }
    x.iter()
        .enumerate()
        .map(|(i, &v)| {
            part.fixed_point
                .encode(f64::from(v))
                .with_context(|| format!("input value {i} ({v})"))
        })
        .collect()
}

/// Signed fixed-point logits as reals (`v / 2^f`).
pub fn decode_logits(fp: FixedPoint, logits: &[i64]) -> Vec<f64> {
    let scale = (1u64 << fp.frac_bits) as f64;
    logits.iter().map(|&v| v as f64 / scale).collect()
}

/// The user node called `name` (or the topology's only user), with its key file (`identity`,
/// or the one the topology names).
pub async fn start_user(
    topology: Arc<Topology>,
    name: Option<&str>,
    identity: Option<&Path>,
    part: UserPart,
) -> Result<Node> {
    let name = match name {
        Some(n) => n.to_string(),
        None => match topology.users().as_slice() {
            [one] => one.name.clone(),
            [] => bail!("the topology has no node with role user"),
            _ => bail!("the topology has several users: pass --name"),
        },
    };
    let spec = topology.node(&name)?;
    let key_file: PathBuf = match (identity, &spec.identity) {
        (Some(p), _) => p.to_path_buf(),
        (None, Some(p)) => p.clone(),
        (None, None) => bail!(
            "no key file for user {name:?}: pass --identity FILE (see `seco identity new`) or set identity in the topology"
        ),
    };
    let key = seco_runtime::identity::load(&key_file)?;
    let network = Node::network(&topology, &name, key, false)?;
    let setup = UserSetup {
        name,
        topology,
        part,
        store: Arc::new(MemStore::new()),
        network,
    };
    Ok(Node::start_user(setup).await?)
}

/// Wall times and results of the user's phases.
#[derive(Debug, Default)]
pub struct UserRun {
    /// Session open, including the collective key generation on first use.
    pub open: Duration,
    /// Preparation of each bundle (requested one after the other).
    pub prep: Vec<Duration>,
    /// Each inference.
    pub online: Vec<Duration>,
    /// Signed logits of each inference.
    pub logits: Vec<Vec<i64>>,
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let style = ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} {elapsed}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    let b = ProgressBar::new(len)
        .with_style(style)
        .with_message(what.to_string());
    b.enable_steady_tick(Duration::from_millis(120));
    b
}

/// Opens a session, prepares one bundle per input, then runs the inferences.
pub async fn run_user(node: &Node, inputs: &[Vec<u64>]) -> Result<UserRun> {
    let mut run = UserRun::default();
    let spinner = ProgressBar::new_spinner()
        .with_message("opening the session (collective key generation on first use)");
    spinner.enable_steady_tick(Duration::from_millis(120));
    let t = Instant::now();
    let session = node.open_session().await;
    spinner.finish_and_clear();
    let session = session.context("session open failed")?;
    run.open = t.elapsed();
    let b = bar(inputs.len() as u64, "preprocessing");
    for _ in inputs {
        let t = Instant::now();
        session.preprocess().await.context("preprocessing failed")?;
        run.prep.push(t.elapsed());
        b.inc(1);
    }
    b.finish_and_clear();
    let b = bar(inputs.len() as u64, "secure inference");
    for x in inputs {
        let t = Instant::now();
        let (_, logits) = session.infer(x).await.context("inference failed")?;
        run.online.push(t.elapsed());
        run.logits.push(logits);
        b.inc(1);
    }
    b.finish_and_clear();
    Ok(run)
}

/// Waits for ctrl-c or SIGTERM.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

/// Human-readable duration.
pub fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 1.0 {
        format!("{s:.2} s")
    } else {
        format!("{:.1} ms", s * 1e3)
    }
}

/// Human-readable byte count.
pub fn fmt_bytes(b: u64) -> String {
    match b {
        b if b >= 1 << 20 => format!("{:.2} MiB", b as f64 / (1 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

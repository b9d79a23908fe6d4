//! What `seco node`, `seco infer` and `seco demo` share: the tokio runtime, logging, reading
//! topology and part files, encoding inputs, starting the user node and running the user's
//! phases with progress bars.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use seco_actors::node::{Node, UserSetup};
use seco_actors::topology::Topology;
use seco_protocols::fixed::FixedPoint;
use seco_protocols::mhe::ParamId;
use seco_protocols::model::QuantModel;
use seco_protocols::plan::budget::SECURITY_TARGET_BITS;
use seco_protocols::plan::{
    check_model, BudgetReport, UserPart, COLLECTIVE_PARAMS, USER_PART_FORMAT,
};
use seco_protocols::seco::{OutputMode, Prediction};
use seco_runtime::store::MemStore;
use seco_runtime::telemetry::{self, LogFormat};

/// The parameter check (`plan::budget`) of a model for `servers` servers at the deployment's
/// parameter set: a model that does not fit is refused with the layer, the bits it reaches and
/// the target (or the size and the limit) before anything is written or started.
pub fn check_budget(q: &QuantModel, param: ParamId, servers: usize) -> Result<BudgetReport> {
    check_model(q, param, servers).with_context(|| format!("model {:?} refused", q.name))
}

/// [`check_budget`], then every server's part of `plan` (`plan::check_part`: its share of a
/// key's lifetime must allow one bundle).
pub fn check_plan(q: &QuantModel, plan: &seco_protocols::plan::SplitPlan) -> Result<BudgetReport> {
    let report = check_budget(q, plan.param(q), plan.n_servers())?;
    for (i, name) in plan.servers.iter().enumerate() {
        let part = plan.server_part(q, i)?;
        seco_protocols::plan::check_part(&part, part.param)
            .with_context(|| format!("model {:?} refused at server {name}", q.name))?;
    }
    Ok(report)
}

/// One line on the weakest layer of a passed check.
pub fn budget_line(report: &BudgetReport) -> String {
    match report.weakest() {
        Some(l) => format!(
            "noise budget ({:?}, {} servers): weakest layer {} at {:.1} bits of flooding security \
             (target {SECURITY_TARGET_BITS:.0}), decryption headroom {:.1} bits; one bundle {:.1} \
             bits, a key's lifetime at {SECURITY_TARGET_BITS:.0} bits: {} bundles",
            report.param,
            report.n,
            l.layer,
            l.budget.security_bits,
            l.budget.headroom_bits,
            report.bundle_bits(),
            report.key_lifetime_bundles()
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
    if !COLLECTIVE_PARAMS.contains(&part.param) {
        bail!(
            "{} names parameter set {:?}, not one of {COLLECTIVE_PARAMS:?}",
            path.display(),
            part.param
        );
    }
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
    /// Each completed inference.
    pub online: Vec<Duration>,
    /// Signed logits of each completed inference, in input order (logits mode).
    pub logits: Vec<Vec<i64>>,
    /// The class of each completed inference, in input order (label mode: the user learns
    /// nothing else).
    pub labels: Vec<u32>,
    /// The failure that ended the run early, if any: `logits` still holds every inference that
    /// completed before it.
    pub error: Option<anyhow::Error>,
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

/// How long `seco infer` waits for the gateway to acknowledge its `Close` at the end.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Opens a session, prepares one bundle per input, runs the inferences and closes the session
/// (also after a failure or `interrupt`), so that the servers free its slot and delete its
/// unused bundles at once. A failure ends the run early without losing what completed: if a
/// preparation fails, the bundles prepared before it are still used; the first failed
/// inference ends the inferences. `run.error` says what failed. Logits mode.
pub async fn run_user(
    node: &Node,
    inputs: &[Vec<u64>],
    interrupt: impl std::future::Future<Output = ()>,
) -> UserRun {
    let retries = seco_actors::node::DEFAULT_RETRIES;
    run_user_with(node, inputs, OutputMode::Logits, retries, interrupt).await
}

/// [`run_user`] with an output mode (in label mode `run.labels` holds the classes) and the
/// number of retries of a failed bundle or inference.
pub async fn run_user_with(
    node: &Node,
    inputs: &[Vec<u64>],
    output: OutputMode,
    retries: u32,
    interrupt: impl std::future::Future<Output = ()>,
) -> UserRun {
    let mut run = UserRun::default();
    tokio::pin!(interrupt);
    let spinner = ProgressBar::new_spinner()
        .with_message("opening the session (collective key generation on first use)");
    spinner.enable_steady_tick(Duration::from_millis(120));
    let t = Instant::now();
    let session = tokio::select! {
        s = node.open_session_retrying(output, retries) => s.context("session open failed"),
        _ = &mut interrupt => Err(anyhow::anyhow!("interrupted")),
    };
    spinner.finish_and_clear();
    let session = match session {
        Ok(s) => s,
        Err(e) => {
            run.error = Some(e);
            return run;
        }
    };
    run.open = t.elapsed();
    let outcome = tokio::select! {
        r = phases(&session, inputs, &mut run) => r,
        _ = &mut interrupt => Err(anyhow::anyhow!("interrupted")),
    };
    match tokio::time::timeout(CLOSE_WAIT, session.close()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "the session was not closed at the gateway (it expires there)")
        }
        Err(_) => tracing::warn!(
            "no answer to the session's Close within {CLOSE_WAIT:?} (it expires at the gateway)"
        ),
    }
    run.error = outcome.err();
    run
}

/// Preprocessing, then the inferences, recording what completes in `run`.
async fn phases(
    session: &seco_actors::node::UserSessionHandle,
    inputs: &[Vec<u64>],
    run: &mut UserRun,
) -> Result<()> {
    let b = bar(inputs.len() as u64, "preprocessing");
    let mut prep_error = None;
    for i in 0..inputs.len() {
        let t = Instant::now();
        if let Err(e) = session.preprocess().await {
            prep_error = Some(anyhow::Error::new(e).context(format!(
                "preprocessing of bundle {} of {} failed",
                i + 1,
                inputs.len()
            )));
            break;
        }
        run.prep.push(t.elapsed());
        b.inc(1);
    }
    b.finish_and_clear();
    let b = bar(run.prep.len() as u64, "secure inference");
    for (i, x) in inputs.iter().take(run.prep.len()).enumerate() {
        let t = Instant::now();
        match session.predict(x).await {
            Ok((_, prediction)) => {
                run.online.push(t.elapsed());
                match prediction {
                    Prediction::Logits(logits) => run.logits.push(logits),
                    Prediction::Label(class) => run.labels.push(class),
                }
                b.inc(1);
            }
            Err(e) => {
                b.finish_and_clear();
                return Err(anyhow::Error::new(e).context(format!(
                    "inference {i} failed ({} of {} completed)",
                    run.online.len(),
                    inputs.len()
                )));
            }
        }
    }
    b.finish_and_clear();
    prep_error.map_or(Ok(()), Err)
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

#[cfg(test)]
mod tests {
    use super::*;
    use seco_actors::config::Timeouts;
    use seco_actors::dev::{local_topology, Cluster, ClusterOptions};
    use seco_protocols::model::{Model, TestSet};

    /// `seco infer --count N`: a failed inference keeps the results before it; the session is
    /// closed at the end (its unused bundle deleted at the servers).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn completed_inferences_survive_a_later_failure_and_the_session_is_closed() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/digits-mlp");
        let model = Model::load(&dir).unwrap();
        let tests = TestSet::load(&dir).unwrap();
        let topology = local_topology(3, Timeouts::default()).unwrap();
        let c = Cluster::start(topology, model, ClusterOptions::default())
            .await
            .unwrap();
        let (x0, want0) = c.reference(tests.input(0).unwrap()).unwrap();
        let (x1, want1) = c.reference(tests.input(1).unwrap()).unwrap();
        // The third input has the wrong length: its inference fails at the user.
        let inputs = [x0, x1, vec![0u64; 3]];
        let run = run_user(c.user().unwrap(), &inputs, std::future::pending()).await;
        assert_eq!(run.logits, vec![want0, want1]);
        let error = format!("{:#}", run.error.expect("the third inference must fail"));
        assert!(error.contains("inference 2 failed"), "{error}");
        let gateway = c.node("gateway").unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !gateway.sessions().await.unwrap().is_empty() || gateway.stats().sessions_closed != 1
        {
            assert!(Instant::now() < deadline, "the session was not closed");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(gateway.store().summary().unwrap().bundles, 0);
        c.shutdown().await.unwrap();
    }
}

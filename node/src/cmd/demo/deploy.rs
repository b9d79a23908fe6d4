//! A local deployment of separate processes, shared by `seco demo` and `seco bench --deploy
//! processes`: parts, identities and a topology written to a work directory (step 1 of the
//! module docs), then the server processes, the user in this process, and the counters.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use indicatif::ProgressBar;
use seco_actors::config::Timeouts;
use seco_actors::dev::{free_port, server_names};
use seco_actors::stats::NodeStats;
use seco_actors::topology::{NodeSpec, Role, Topology};
use seco_protocols::model::Model;
use seco_protocols::plan::{SplitPlan, UserPart};
use seco_runtime::identity;

use super::procs::{Launch, Server};
use crate::cmd::common::{self, UserRun};

/// Everything written to the work directory before the processes start.
pub struct Prepared {
    /// The topology file every process reads.
    pub topology_file: PathBuf,
    /// The same topology.
    pub topology: Arc<Topology>,
    /// Server names in plan order.
    pub names: Vec<String>,
    /// The user's part.
    pub user_part: UserPart,
    /// The user's key file.
    pub user_key: PathBuf,
}

/// Where others dial a server listening at `listen`: itself, or a relay in front of it.
pub type Route<'a> = &'a mut dyn FnMut(&str, SocketAddr) -> Result<SocketAddr>;

fn multiaddr(a: SocketAddr) -> Result<seco_runtime::Multiaddr> {
    Ok(format!("/ip4/{}/tcp/{}", a.ip(), a.port()).parse()?)
}

/// Parts, identities, topology. Each server listens on a free loopback port; `route` gives
/// the address the topology advertises for it (the relay of a shaped link, or the same).
pub fn prepare(model: &Model, servers: usize, work: &Path, route: Route<'_>) -> Result<Prepared> {
    let q = model.quantize()?;
    let names = server_names(servers);
    let plan = SplitPlan::balanced(&q, &names)?;
    crate::cmd::common::check_plan(&q, &plan)?;
    let mut nodes = Vec::with_capacity(servers + 1);
    for (i, name) in names.iter().enumerate() {
        let part = plan.server_part(&q, i)?;
        part.save(work.join("parts").join(name))?;
        let data = work.join(name);
        std::fs::create_dir_all(&data)?;
        let key = identity::generate();
        identity::save(&data.join(crate::cmd::node::IDENTITY_FILE), &key)?;
        let listen = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let advertise = route(name, listen)?;
        nodes.push(NodeSpec {
            name: name.clone(),
            role: if i == 0 { Role::Gateway } else { Role::Remote },
            peer_id: identity::peer_id(&key),
            listen: vec![multiaddr(listen)?],
            advertise: vec![multiaddr(advertise)?],
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

/// What a deployment run gives back.
pub struct Outcome {
    /// Wall times and logits at the user.
    pub run: UserRun,
    /// Counters of each server (plan order) then of the user; `None`: missing (see its log).
    pub parties: Vec<(String, Option<NodeStats>)>,
}

/// Starts the server processes, runs the user over libp2p (session open, one bundle per
/// input, the inferences), stops the servers and collects every party's counters.
pub async fn run(p: &Prepared, work: &Path, encoded: &[Vec<u64>]) -> Result<Outcome> {
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
    let user = common::start_user(
        p.topology.clone(),
        Some("user"),
        Some(&p.user_key),
        p.user_part.clone(),
    )
    .await?;
    let mut run = common::run_user(&user, encoded, std::future::pending()).await;
    let user_stats = user.stats();
    user.shutdown().await?;
    for s in servers {
        s.stop(Duration::from_secs(5)).await;
    }
    if let Some(e) = run.error.take() {
        return Err(e);
    }
    let mut parties: Vec<(String, Option<NodeStats>)> = p
        .names
        .iter()
        .map(|n| (n.clone(), read_stats(&work.join(n))))
        .collect();
    parties.push(("user".into(), Some(user_stats)));
    Ok(Outcome { run, parties })
}

/// A node's counters (written by the node when it stops).
fn read_stats(data_dir: &Path) -> Option<NodeStats> {
    let text = std::fs::read_to_string(data_dir.join(crate::cmd::node::STATS_FILE)).ok()?;
    serde_json::from_str(&text).ok()
}

/// The work directory: `dir` (created), or a temporary one removed when the guard drops
/// (kept with `keep`).
pub fn work_dir(
    dir: Option<&Path>,
    prefix: &str,
    keep: bool,
) -> Result<(PathBuf, Option<tempfile::TempDir>)> {
    match dir {
        Some(w) => {
            std::fs::create_dir_all(w).with_context(|| format!("cannot create {}", w.display()))?;
            Ok((w.to_path_buf(), None))
        }
        None => {
            let t = tempfile::Builder::new().prefix(prefix).tempdir()?;
            if keep {
                Ok((t.keep(), None))
            } else {
                Ok((t.path().to_path_buf(), Some(t)))
            }
        }
    }
}

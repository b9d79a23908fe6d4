//! `seco node --topology FILE --role gateway|remote --name NAME --data-dir DIR --part DIR`:
//! runs one server until ctrl-c / SIGTERM.
//!
//! Everything is checked before the node starts, each failure a one-line error: the topology,
//! the role and name, the data directory (created with mode 0700 if missing), the identity
//! (`DIR/identity.key` unless `--identity`), its peer id against the topology, the model part
//! against the topology and this node and against the parameter set (`plan::check_part`: the
//! noise and flooding budget of its layers, plane sizes), the store and a stored key.
//!
//! On start it prints one line `ready: ...` on stdout (with the listen addresses and what the
//! store holds, the collective key's id last); `seco demo` waits for it. While it runs it logs
//! a one-line status at info level every `--status-every` seconds (default 60), and it exits
//! non-zero with a one-line reason when its network task ends or its store fails
//! (`node_health.rs`): a node that can no longer hear or persist does not run on.

use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Args;
use seco_actors::config::Limits;
use seco_actors::node::{Node, ServerSetup};
use seco_actors::store::{Damaged, NodeStore};
use seco_actors::topology::Role;
use seco_protocols::plan::{ServerPart, PART_FILE};
use seco_protocols::seco::KeyMaterial;
use seco_runtime::store::{SealedStore, SledStore, Store, StoreKey};

use super::common;
use super::node_health::{self, WatchedStore};

/// File name of a node's identity inside its data directory.
pub const IDENTITY_FILE: &str = "identity.key";
/// Directory of the sled store inside the data directory.
pub const STORE_DIR: &str = "store";
/// Counters written by the node inside its data directory.
pub const STATS_FILE: &str = "stats.json";
/// Default file of the key that seals the store (`--store-key`), inside the data directory.
pub const STORE_KEY_FILE: &str = "store.key";

#[derive(Debug, Args)]
pub struct NodeArgs {
    /// The topology file (TOML, see docs/topology.md).
    #[arg(long)]
    pub topology: PathBuf,
    /// This node's role: gateway or remote.
    #[arg(long)]
    pub role: String,
    /// This node's name in the topology (and in the split plan).
    #[arg(long)]
    pub name: String,
    /// Data directory: identity.key, the sled store, stats.json (created if missing).
    #[arg(long)]
    pub data_dir: PathBuf,
    /// This server's model part: the directory written by `seco model split` (with part.cbor)
    /// or the part file itself.
    #[arg(long)]
    pub part: PathBuf,
    /// Key file (default: the `identity` the topology names for this node, else
    /// DATA_DIR/identity.key).
    #[arg(long)]
    pub identity: Option<PathBuf>,
    /// Key that encrypts the store at rest (32 bytes, mode 0600, created if missing; default
    /// DATA_DIR/store.key; `SECO_STORE_KEY` (64 hex digits) wins). Keep it outside the data
    /// directory so that a copy of that directory reveals nothing.
    #[arg(long)]
    pub store_key: Option<PathBuf>,
    /// Also discover peers on the LAN with mDNS (off by default; multicasts on the LAN).
    #[arg(long)]
    pub mdns: bool,
    /// Logs as JSON lines.
    #[arg(long)]
    pub log_json: bool,
    /// Seconds between two status lines in the log (peers, sessions, bundles, key); 0: none.
    #[arg(long, default_value_t = 60)]
    pub status_every: u64,
    /// Stop when standard input closes (`seco demo` uses it so that its children never outlive it).
    #[arg(long, hide = true)]
    pub stop_on_stdin_eof: bool,
}

/// The data directory: created (0700) if missing, else it must be a writable directory.
fn data_dir(dir: &Path) -> Result<()> {
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create data directory {}", dir.display()))?;
    }
    let meta = std::fs::metadata(dir)
        .with_context(|| format!("cannot use data directory {}", dir.display()))?;
    if !meta.is_dir() {
        bail!("data directory {} is not a directory", dir.display());
    }
    if meta.permissions().readonly() {
        bail!("data directory {} is not writable", dir.display());
    }
    std::fs::read_dir(dir)
        .with_context(|| format!("cannot read data directory {}", dir.display()))?;
    Ok(())
}

fn load_part(path: &Path) -> Result<ServerPart> {
    let file = if path.is_dir() {
        path.join(PART_FILE)
    } else {
        path.to_path_buf()
    };
    ServerPart::load(&file).with_context(|| format!("cannot load model part {}", file.display()))
}

pub fn run(args: NodeArgs) -> Result<()> {
    let topology = Arc::new(common::load_topology(&args.topology)?);
    let role = match Role::parse(&args.role) {
        Some(r @ (Role::Gateway | Role::Remote)) => r,
        _ => bail!("unknown role {:?} (expected gateway or remote)", args.role),
    };
    let spec = topology.node_with_role(&args.name, role)?;
    data_dir(&args.data_dir)?;
    let key_file = args
        .identity
        .clone()
        .or_else(|| spec.identity.clone())
        .unwrap_or_else(|| args.data_dir.join(IDENTITY_FILE));
    if !key_file.exists() {
        bail!(
            "no identity at {0}: create one with `seco identity new --file {0}` and put its peer id in the topology",
            key_file.display()
        );
    }
    let key = seco_runtime::identity::load(&key_file)?;
    let peer = seco_runtime::identity::peer_id(&key);
    if peer != spec.peer_id {
        bail!(
            "the identity {} is peer {peer}, but the topology says node {:?} is {}",
            key_file.display(),
            args.name,
            spec.peer_id
        );
    }
    let part = Arc::new(load_part(&args.part)?);
    topology.check_part(&args.name, &part)?;
    // Fail fast: every session would refuse a part that does not fit the parameters.
    seco_protocols::plan::check_part(&part, part.param)
        .with_context(|| format!("model part {} refused", args.part.display()))?;
    let store_dir = args.data_dir.join(STORE_DIR);
    let store = open_store(&store_dir, &store_key_path(&args))?;
    let damaged = drop_damaged(&store, &store_dir)?;
    check_stored_key(&store, &part)?;
    std::fs::set_permissions(&args.data_dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot restrict {}", args.data_dir.display()))?;
    common::init_logs("info", args.log_json)?;
    if damaged.count() > 0 {
        tracing::warn!(
            store = %store_dir.display(),
            dropped = %damaged.describe(),
            "damaged store records dropped (their bundles and sessions are gone; \
             docs/operations.md, \"A broken store\")"
        );
    }
    common::runtime()?.block_on(serve(args, topology, key, part, store))
}

/// The store key file of a node.
pub fn store_key_path(args: &NodeArgs) -> PathBuf {
    args.store_key
        .clone()
        .unwrap_or_else(|| args.data_dir.join(STORE_KEY_FILE))
}

/// Opens the sealed store in `dir` (sled, records sealed with the store key): a truncated,
/// changed or foreign store is refused with its path, never opened as empty.
pub fn open_store(dir: &Path, key_file: &Path) -> Result<Arc<dyn Store>> {
    let key = StoreKey::load_or_create(key_file)
        .with_context(|| format!("cannot load the store key {}", key_file.display()))?;
    let sled = SledStore::open(dir)
        .with_context(|| format!("cannot open the store in {}", dir.display()))?;
    let sealed = SealedStore::open(sled, &key, dir)
        .with_context(|| format!("cannot open the store in {}", dir.display()))?;
    Ok(Arc::new(sealed))
}

/// Reads back every record; drops the damaged ones that can be dropped (bundles, chunk
/// garblings, session records) and refuses the store, with its path, if a key share or a key's
/// use count is damaged.
pub fn drop_damaged(store: &Arc<dyn Store>, dir: &Path) -> Result<Damaged> {
    let found = NodeStore::new(store.clone())
        .drop_damaged()
        .with_context(|| format!("cannot read the store in {}", dir.display()))?;
    if !found.critical.is_empty() {
        bail!(
            "the store in {} is refused: damaged records ({}); `seco store reset` restores the \
             key shares from their copy (docs/operations.md, \"A broken store\")",
            dir.display(),
            found.describe()
        );
    }
    Ok(found)
}

/// A stored key that does not decode for this server means a corrupted or foreign store.
fn check_stored_key(store: &Arc<dyn Store>, part: &ServerPart) -> Result<()> {
    let s = NodeStore::new(store.clone());
    let index = u16::try_from(part.server_index).unwrap_or(u16::MAX);
    KeyMaterial::ring_of(&s.key_ring()?, part.param, index)
        .context("a stored collective key does not decode for this server")?;
    Ok(())
}

async fn serve(
    args: NodeArgs,
    topology: Arc<seco_actors::topology::Topology>,
    key: seco_runtime::Keypair,
    part: Arc<ServerPart>,
    store: Arc<dyn Store>,
) -> Result<()> {
    let network = Node::network(&topology, &args.name, key, args.mdns)?;
    let my_part = part.clone();
    let (store, mut store_failed) = WatchedStore::new(store, args.data_dir.join(STORE_DIR));
    let setup = ServerSetup {
        name: args.name.clone(),
        topology: topology.clone(),
        part,
        store,
        network,
        stats_file: Some(args.data_dir.join(STATS_FILE)),
        limits: Limits::default(),
    };
    let mut node = Node::start_server(setup).await?;
    let addrs = node
        .listen_addrs(std::time::Duration::from_secs(10))
        .await?;
    if addrs.is_empty() {
        bail!(
            "node {} listens on no address (are its listen ports free?)",
            args.name
        );
    }
    let s = node.store().summary()?;
    let addrs: Vec<String> = addrs.iter().map(ToString::to_string).collect();
    println!(
        "ready: {} ({}) peer {} listening on {}; store: collective key {}, {} session records, {} bundles; key id {}",
        args.name,
        args.role,
        node.peer_id(),
        addrs.join(" "),
        if s.has_key { "present" } else { "absent" },
        s.sessions,
        s.bundles,
        node_health::key_id(&node, &my_part),
    );
    let stdin_closed = async {
        if args.stop_on_stdin_eof {
            // A plain thread: a blocking read must not hold the runtime's shutdown.
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            std::thread::spawn(move || {
                let mut sink = [0u8; 64];
                let mut stdin = std::io::stdin();
                while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
                let _ = tx.send(());
            });
            let _ = rx.await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    let store_failure = async {
        loop {
            if let Some(why) = store_failed.borrow_and_update().clone() {
                return why;
            }
            if store_failed.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    };
    let store = node.store().clone();
    let every = std::time::Duration::from_secs(args.status_every.max(1));
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let signal = common::shutdown_signal();
    tokio::pin!(signal, stdin_closed, store_failure);
    loop {
        tokio::select! {
            _ = &mut signal => {
                tracing::info!("signal: stopping");
                break;
            }
            _ = &mut stdin_closed => {
                tracing::info!("standard input closed: stopping");
                break;
            }
            why = &mut store_failure => {
                // A moment for the session aborts already sent to reach the peers
                // (docs/operations.md, "Storage faults").
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                // The store's own record of the failure names its path.
                match store.failure() {
                    Some(f) => bail!("node {} stopped: {f}", args.name),
                    None => bail!("node {} stopped: {why}", args.name),
                }
            }
            f = store.failed() => {
                // The store refuses every write now: stop, after a moment for the session
                // aborts already sent to reach the peers (docs/operations.md, "Storage faults").
                tracing::error!(error = %f, "the store failed: stopping");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                bail!("node {} stopped: {f}", args.name)
            }
            _ = node.stopped() => match store.failure() {
                Some(f) => bail!("node {} stopped: {f}", args.name),
                None => bail!(
                    "node {} stopped: its network task ended (the log says why)",
                    args.name
                ),
            },
            _ = tick.tick(), if args.status_every > 0 => {
                let line = node_health::status_line(&node, &my_part).await;
                tracing::info!(node = %args.name, "status: {line}");
            }
        }
    }
    node.shutdown().await?;
    Ok(())
}

//! `seco store inspect|reset|drop-keys --data-dir DIR`: operator commands for a node's store
//! (docs/operations.md, "A broken store"). Run them with the node stopped.
//!
//! - `inspect`: opens the sealed store, reads back every record and prints what it holds, the
//!   damaged records (dropped by the node at its next start, or refusing the store if a key share
//!   is among them), or why it is refused.
//! - `reset`: moves a broken store aside (`store.broken-<unix time>`), creates a fresh one and
//!   puts back the key shares from their sealed copy (`keyshares.backup`), unless
//!   `--drop-keys`; stored bundles and session records are gone (users prepare new bundles).
//! - `drop-keys`: deletes the collective key share from a healthy store, so that the next
//!   session runs a new key generation (every server must drop its share: a key is only
//!   usable if all servers hold theirs).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use seco_actors::store::NodeStore;
use seco_runtime::store::{SealedStore, SledStore, Store, StoreKey, Tree, KEY_BACKUP_FILE};

use super::node::{open_store, STORE_DIR, STORE_KEY_FILE};

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Print what a node's store holds, or why it is refused.
    Inspect(StoreArgs),
    /// Replace a broken store by a fresh one, keeping the key shares from their sealed copy.
    Reset {
        #[command(flatten)]
        args: StoreArgs,
        /// Do not restore the key shares (the deployment then runs a new key generation).
        #[arg(long)]
        drop_keys: bool,
    },
    /// Delete the collective key share from a healthy store (re-key at the next session).
    DropKeys(StoreArgs),
}

#[derive(Debug, Args)]
pub struct StoreArgs {
    /// The node's data directory.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// The store key file (default DATA_DIR/store.key; `SECO_STORE_KEY` wins).
    #[arg(long)]
    pub store_key: Option<PathBuf>,
}

impl StoreArgs {
    fn key_file(&self) -> PathBuf {
        self.store_key
            .clone()
            .unwrap_or_else(|| self.data_dir.join(STORE_KEY_FILE))
    }
    fn store_dir(&self) -> PathBuf {
        self.data_dir.join(STORE_DIR)
    }
}

pub fn run(cmd: StoreCommand) -> Result<()> {
    match cmd {
        StoreCommand::Inspect(a) => inspect(&a),
        StoreCommand::Reset { args, drop_keys } => reset(&args, drop_keys),
        StoreCommand::DropKeys(a) => drop_keys(&a),
    }
}

fn existing(a: &StoreArgs) -> Result<()> {
    if !a.store_dir().is_dir() {
        bail!("no store in {}", a.store_dir().display());
    }
    if !a.key_file().exists() && std::env::var(seco_runtime::store::STORE_KEY_ENV).is_err() {
        bail!("no store key at {}", a.key_file().display());
    }
    Ok(())
}

fn inspect(a: &StoreArgs) -> Result<()> {
    existing(a)?;
    let store = match open_store(&a.store_dir(), &a.key_file()) {
        Ok(s) => s,
        Err(e) if in_use(&e) => bail!(
            "the store in {} is in use (stop its node first): {e:#}",
            a.store_dir().display()
        ),
        Err(e) => {
            println!("refused: {e:#}");
            let backup = a.store_dir().join(KEY_BACKUP_FILE);
            println!(
                "key share copy: {}",
                if backup.exists() {
                    "present (seco store reset restores it)"
                } else {
                    "absent"
                }
            );
            bail!("the store in {} is refused", a.store_dir().display());
        }
    };
    let s = NodeStore::new(store.clone());
    let sum = s.summary()?;
    println!("store: {}", a.store_dir().display());
    println!(
        "collective key share: {}",
        if sum.has_key { "present" } else { "absent" }
    );
    println!("session records: {}", sum.sessions);
    println!("bundles: {}", sum.bundles);
    println!(
        "chunk garblings: {}",
        store.keys(Tree::Named("seco.chunks"), &[])?.len()
    );
    let found = s.damaged_records()?;
    if found.count() == 0 {
        println!("damaged records: none ({} read back)", found.checked);
        return Ok(());
    }
    println!("damaged records: {}", found.describe());
    if found.critical.is_empty() {
        println!("the node drops them at its next start (their bundles and sessions are gone)");
        return Ok(());
    }
    println!("refused: a key share or a key's use count is damaged");
    bail!(
        "the store in {} is refused (`seco store reset` restores the key shares from their copy)",
        a.store_dir().display()
    )
}

/// Whether opening failed because another process (a running node) holds the database's lock.
fn in_use(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<seco_runtime::store::StoreError>()
            .is_some_and(|e| e.is_locked())
    })
}

fn reset(a: &StoreArgs, drop_keys: bool) -> Result<()> {
    let dir = a.store_dir();
    // Moving a running node's store aside would leave it writing to the moved copy.
    if SledStore::in_use(&dir) {
        bail!(
            "the store in {} is in use (stop its node first)",
            dir.display()
        );
    }
    let key = StoreKey::load_or_create(&a.key_file())
        .with_context(|| format!("cannot load the store key {}", a.key_file().display()))?;
    let shares = if drop_keys || !dir.join(KEY_BACKUP_FILE).exists() {
        Vec::new()
    } else {
        SealedStore::<SledStore>::read_key_backup(&dir, &key)
            .context("cannot read the key share copy")?
    };
    if dir.exists() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let aside = a.data_dir.join(format!("{STORE_DIR}.broken-{t}"));
        std::fs::rename(&dir, &aside)
            .with_context(|| format!("cannot move {} aside", dir.display()))?;
        println!("moved the old store to {}", aside.display());
    }
    let store = open_store(&dir, &a.key_file())?;
    for (k, v) in &shares {
        store.put(Tree::KeyShares, k, v)?;
    }
    store.flush()?;
    println!(
        "fresh store in {} with {} key share record(s){}",
        dir.display(),
        shares.len(),
        if shares.is_empty() {
            " (the next session runs a new key generation)"
        } else {
            ""
        }
    );
    Ok(())
}

fn drop_keys(a: &StoreArgs) -> Result<()> {
    existing(a)?;
    if SledStore::in_use(&a.store_dir()) {
        bail!(
            "the store in {} is in use (stop its node first)",
            a.store_dir().display()
        );
    }
    let store: Arc<dyn Store> = open_store(&a.store_dir(), &a.key_file())?;
    let keys = store.scan_prefix(Tree::KeyShares, &[])?;
    for (k, _) in &keys {
        store.delete(Tree::KeyShares, k)?;
    }
    store.flush()?;
    println!(
        "dropped {} key share record(s) from {}; drop them at every server, then the next session runs a new key generation",
        keys.len(),
        path(&a.store_dir())
    );
    Ok(())
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

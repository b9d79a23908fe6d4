//! Reading bench JSON documents: `seco bench --json` output (`tool` `seco-rs`, or absent in
//! older files) and `bench/crypten_bench.py` output (`tool` `crypten`), which share the fields
//! read here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

pub use crate::cmd::bench::report::{Spread, Usage};

/// One deployment of one document.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Run {
    pub deploy: String,
    pub network: String,
    pub rate_mbit_s: Option<f64>,
    pub rtt_ms: Option<f64>,
    /// CrypTen's Beaver-triple provider (`trusted-first-party`, `trusted-third-party`).
    pub provider: Option<String>,
    pub open: Spread,
    pub prep: Spread,
    pub online: Spread,
    pub parties: BTreeMap<String, BTreeMap<String, Usage>>,
    pub messages: BTreeMap<String, u64>,
    /// Communication rounds per phase, where the tool counts them (CrypTen).
    pub rounds: BTreeMap<String, f64>,
    /// The party that owns the input (`user` for seco-rs when absent).
    pub input_owner: Option<String>,
    pub bit_exact: Option<usize>,
    /// Why the run is not comparable or failed, if it did.
    pub note: Option<String>,
}

impl Run {
    pub fn owner(&self) -> &str {
        self.input_owner.as_deref().unwrap_or("user")
    }

    fn phase(&self, party: &str, phase: &str) -> Usage {
        self.parties
            .get(party)
            .and_then(|p| p.get(phase))
            .copied()
            .unwrap_or_default()
    }

    /// Bytes sent and received by the input owner for one inference: its preprocessing of one
    /// bundle plus its online phase (`None` without counters).
    pub fn owner_bytes(&self) -> Option<u64> {
        let p = self.parties.get(self.owner())?;
        Some(p.get("prep").map_or(0, Usage::bytes) + p.get("online").map_or(0, Usage::bytes))
    }

    /// Bytes sent by all parties in `phase` (per bundle / inference / once).
    pub fn sent(&self, phase: &str) -> u64 {
        self.parties
            .keys()
            .map(|p| self.phase(p, phase).bytes_sent)
            .sum()
    }

    /// `processes / loopback`, with the provider if any.
    pub fn label(&self) -> String {
        match &self.provider {
            Some(p) => format!("{} / {} / {p}", self.deploy, self.network),
            None => format!("{} / {}", self.deploy, self.network),
        }
    }
}

/// One JSON document.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Doc {
    #[serde(skip)]
    pub file: PathBuf,
    pub tool: Option<String>,
    pub version: Option<String>,
    pub machine: Option<serde_json::Value>,
    pub model: String,
    pub model_parameters: Option<u64>,
    pub model_bytes: Option<u64>,
    /// Servers (seco-rs) or computing parties (CrypTen).
    pub servers: usize,
    pub inputs: usize,
    pub input_source: Option<String>,
    pub plaintext: Option<Spread>,
    pub runs: Vec<Run>,
    /// Why the tool could not run, if it could not (the document then has no runs).
    pub error: Option<String>,
}

impl Doc {
    pub fn tool(&self) -> &str {
        self.tool.as_deref().unwrap_or("seco-rs")
    }
}

/// Every `*.json` file of the directories and the files given, in name order.
pub fn load_all(paths: &[PathBuf]) -> Result<Vec<Doc>> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("cannot read directory {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|e| e == "json"))
                .collect();
            v.sort();
            files.extend(v);
        } else {
            files.push(p.clone());
        }
    }
    if files.is_empty() {
        bail!("no bench JSON files in the given --from paths");
    }
    files.iter().map(|f| load(f)).collect()
}

fn load(f: &Path) -> Result<Doc> {
    let text =
        std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?;
    let mut d: Doc = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a bench JSON document", f.display()))?;
    if d.model.is_empty() {
        bail!("{} is not a bench JSON document (no model)", f.display());
    }
    d.file = f.to_path_buf();
    Ok(d)
}

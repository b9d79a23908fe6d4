//! `seco bench --check FILE [--tolerance PCT]`: the regression guard. Compares this run's
//! median wall time of each phase (session open, preprocessing per bundle, online per
//! inference) of each deployment with the same deployment in a stored `seco bench --json`
//! document of the same model and server count, prints one verdict line per phase, and fails
//! if any phase is slower than stored by more than the tolerance. Meant for maintainers before a
//! release, not for CI: timings on shared machines are noisy.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use super::report::{Measurement, PHASES};

/// A stored run to compare with, read and validated before the bench runs.
#[derive(Debug)]
pub struct Stored {
    path: PathBuf,
    doc: Value,
}

impl Stored {
    /// Reads `path`: a `seco bench --json` document (not a CrypTen one) with `runs`.
    pub fn load(path: &Path, tolerance: f64) -> Result<Self> {
        if !(tolerance.is_finite() && tolerance >= 0.0) {
            bail!("--tolerance {tolerance}: expected a percentage >= 0");
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("--check: cannot read {}", path.display()))?;
        let doc: Value = serde_json::from_str(&text).with_context(|| {
            format!(
                "--check: {} is not a seco bench --json document",
                path.display()
            )
        })?;
        let tool = doc["tool"].as_str().unwrap_or("seco-rs");
        if tool != "seco-rs" || !doc["runs"].is_array() || !doc["model"].is_string() {
            bail!(
                "--check: {} is not a seco bench --json document (tool {tool:?})",
                path.display()
            );
        }
        Ok(Self {
            path: path.to_path_buf(),
            doc,
        })
    }

    /// Fails unless the stored run is of `model` with `servers` servers.
    pub fn expect(&self, model: &str, servers: usize) -> Result<()> {
        let m = self.doc["model"].as_str().unwrap_or_default();
        let s = self.doc["servers"].as_u64().unwrap_or(0);
        if m != model || s != servers as u64 {
            bail!(
                "--check: {} holds {m} with {s} servers, this run is {model} with {servers}",
                self.path.display()
            );
        }
        Ok(())
    }

    fn run(&self, deploy: &str, network: &str) -> Option<&Value> {
        self.doc["runs"]
            .as_array()?
            .iter()
            .find(|r| r["deploy"] == deploy && r["network"] == network)
    }
}

/// One phase's comparison.
#[derive(Debug)]
pub struct Verdict {
    pub line: String,
    pub slower: bool,
}

/// Compares every phase of every deployment of this run present in `stored`.
pub fn compare(
    stored: &Stored,
    model: &str,
    servers: usize,
    runs: &[Measurement],
    tolerance: f64,
) -> Vec<Verdict> {
    let mut out = Vec::new();
    for m in runs {
        let Some(old) = stored.run(&m.deploy, &m.network) else {
            out.push(Verdict {
                line: format!(
                    "check {model}, {servers} servers, {}/{}: not in the stored run, skipped",
                    m.deploy, m.network
                ),
                slower: false,
            });
            continue;
        };
        for ph in PHASES {
            let now = match ph {
                "open" => m.open.median_ms,
                "prep" => m.prep.median_ms,
                _ => m.online.median_ms,
            };
            let then = old[ph]["median_ms"].as_f64();
            out.push(verdict(model, servers, m, ph, now, then, tolerance));
        }
    }
    out
}

fn verdict(
    model: &str,
    servers: usize,
    m: &Measurement,
    phase: &str,
    now: f64,
    then: Option<f64>,
    tolerance: f64,
) -> Verdict {
    let head = format!(
        "check {model}, {servers} servers, {}/{}, {phase}",
        m.deploy, m.network
    );
    match then {
        Some(then) if then > 0.0 => {
            let change = (now / then - 1.0) * 100.0;
            let slower = change > tolerance;
            Verdict {
                line: format!(
                    "{head}: {now:.3} ms now, {then:.3} ms stored ({change:+.1}%, tolerance {tolerance}%): {}",
                    if slower { "SLOWER" } else { "ok" }
                ),
                slower,
            }
        }
        _ => Verdict {
            line: format!("{head}: no stored median, skipped"),
            slower: false,
        },
    }
}

/// Prints the verdicts (to stderr when stdout carries JSON) and fails on any slowdown.
pub fn finish(verdicts: &[Verdict], stored: &Stored, tolerance: f64, json: bool) -> Result<()> {
    for v in verdicts {
        if json {
            eprintln!("{}", v.line);
        } else {
            println!("{}", v.line);
        }
    }
    let compared = verdicts
        .iter()
        .filter(|v| !v.line.ends_with("skipped"))
        .count();
    let slower = verdicts.iter().filter(|v| v.slower).count();
    if compared == 0 {
        bail!(
            "--check: no deployment of this run is in {}",
            stored.path.display()
        );
    }
    if slower > 0 {
        bail!(
            "--check: {slower} of {compared} phases slower than {} by more than {tolerance}%",
            stored.path.display()
        );
    }
    let msg = format!(
        "check passed: no phase of {compared} slower than {} by more than {tolerance}%",
        stored.path.display()
    );
    if json {
        eprintln!("{msg}");
    } else {
        println!("{msg}");
    }
    Ok(())
}

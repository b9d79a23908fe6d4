//! `seco bench`: times secure inference of a model, per phase and party, next to its
//! baselines measured in the same run.
//!
//! - `--deploy inprocess` (default): every party in this process (the in-memory router of
//!   `seco_protocols::seco::local`), plus plaintext fixed point. This holds every party's
//!   secrets in one process (a measurement, not a deployment) and needs the
//!   `insecure-simulation` feature (on by default); without it only `--deploy processes` runs,
//!   with no in-process baseline.
//! - `--deploy processes`: the servers as `seco node` processes and the user in this process,
//!   as `seco demo` runs them, over libp2p (TCP, Noise, Yamux) on 127.0.0.1; with `--network
//!   lan|wan` every link passes a shaping relay (`relay.rs`; `docs/performance.md`). The
//!   in-process protocol and plaintext fixed point run too, as baselines.
//!
//! Reported per model, servers and network: median and spread (min, max) over the inputs of
//! session open, preprocessing per bundle and online per inference; bytes, messages and CPU per
//! party and phase (`report.rs`); `--json` writes the same as one JSON document. Exits
//! non-zero if any secure result differs from the fixed-point reference.

mod check;
#[cfg(feature = "insecure-simulation")]
mod inprocess;
mod meta;
mod plaintext;
mod processes;
mod relay;
pub(crate) mod report;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use seco_protocols::model::Model;
use seco_protocols::plan::{SplitPlan, MAX_SERVERS};

use super::common;
use super::inputs::{resolve_model, InputArgs};
use relay::Shape;
use report::{Measurement, Spread};

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// A shipped model (`models/NAME`) or a model directory.
    #[arg(long, default_value = "mnist-mlp")]
    pub model: String,
    /// Number of servers (gateway + remotes).
    #[arg(long, default_value_t = 3)]
    pub servers: usize,
    #[command(flatten)]
    pub input: InputArgs,
    /// Where the parties run: all in this process, or the servers as `seco node` processes.
    #[arg(long, value_enum, default_value_t = Deploy::Inprocess)]
    pub deploy: Deploy,
    /// Links between parties (with `--deploy processes`): loopback as is, or shaped as a LAN
    /// (1 Gbit/s, 0.5 ms round trip) or a WAN (100 Mbit/s, 40 ms round trip).
    #[arg(long, value_enum, default_value_t = Network::Loopback)]
    pub network: Network,
    /// Link rate of a shaped network, overriding its default: e.g. `1gbit`, `100mbit`, `500kbit`.
    #[arg(long)]
    pub rate: Option<String>,
    /// Round trip of a shaped network, overriding its default: e.g. `0.5ms`, `40ms`, `1s`.
    #[arg(long)]
    pub rtt: Option<String>,
    /// Work directory of `--deploy processes` (default: a temporary one, removed at the end).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Print the figures as one JSON document instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Regression guard: compare each phase's median with this stored `--json` output (same
    /// model and servers) and exit non-zero on a slowdown beyond `--tolerance`.
    #[arg(long, value_name = "FILE")]
    pub check: Option<PathBuf>,
    /// Allowed slowdown of `--check` in percent.
    #[arg(long, value_name = "PCT", default_value_t = 25.0, requires = "check")]
    pub tolerance: f64,
}

/// Where the parties run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Deploy {
    /// Every party in this process, no network.
    Inprocess,
    /// Servers as separate `seco node` processes, the user here, libp2p on 127.0.0.1.
    Processes,
}

/// How the links between parties are shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Network {
    /// Unshaped loopback.
    Loopback,
    /// 1 Gbit/s, 0.5 ms round trip.
    Lan,
    /// 100 Mbit/s, 40 ms round trip.
    Wan,
}

impl Network {
    fn name(self) -> &'static str {
        match self {
            Network::Loopback => "loopback",
            Network::Lan => "lan",
            Network::Wan => "wan",
        }
    }
}

/// The shape of the links, or `None` for unshaped loopback; errors on settings that cannot be
/// applied.
fn shape(args: &BenchArgs) -> Result<Option<Shape>> {
    let (rate, rtt) = match args.network {
        Network::Loopback => {
            if args.rate.is_some() || args.rtt.is_some() {
                bail!("--rate and --rtt shape links: use them with --network lan or wan");
            }
            return Ok(None);
        }
        Network::Lan => (1e9, Duration::from_micros(500)),
        Network::Wan => (100e6, Duration::from_millis(40)),
    };
    if args.deploy == Deploy::Inprocess {
        bail!(
            "--network {} needs --deploy processes (in-process parties have no links to shape)",
            args.network.name()
        );
    }
    let bits = match &args.rate {
        Some(r) => parse_rate(r)?,
        None => rate,
    };
    let rtt = match &args.rtt {
        Some(r) => parse_rtt(r)?,
        None => rtt,
    };
    Ok(Some(Shape {
        bytes_per_sec: bits / 8.0,
        rtt,
    }))
}

/// `NUMBER[UNIT]`, split where the number ends.
fn split_unit(s: &str) -> (&str, &str) {
    let s = s.trim();
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    (&s[..end], s[end..].trim())
}

/// A link rate in bit/s: `NUMBER` followed by `kbit`, `mbit` (default) or `gbit`; 1 kbit/s to
/// 100 Gbit/s.
fn parse_rate(s: &str) -> Result<f64> {
    let (num, unit) = split_unit(s);
    let v: f64 = num
        .parse()
        .with_context(|| format!("--rate {s:?}: expected e.g. 100mbit or 1gbit"))?;
    let scale = match unit.to_ascii_lowercase().as_str() {
        "kbit" | "kbit/s" => 1e3,
        "" | "mbit" | "mbit/s" => 1e6,
        "gbit" | "gbit/s" => 1e9,
        _ => bail!("--rate {s:?}: unknown unit {unit:?} (kbit, mbit or gbit)"),
    };
    let bits = v * scale;
    if !(1e3..=100e9).contains(&bits) {
        bail!("--rate {s:?} cannot be applied: the relay shapes 1 kbit/s to 100 gbit/s");
    }
    Ok(bits)
}

/// A round trip: `NUMBER` followed by `us`, `ms` (default) or `s`; 0 to 10 s.
fn parse_rtt(s: &str) -> Result<Duration> {
    let (num, unit) = split_unit(s);
    let v: f64 = num
        .parse()
        .with_context(|| format!("--rtt {s:?}: expected e.g. 0.5ms or 40ms"))?;
    let secs = match unit.to_ascii_lowercase().as_str() {
        "us" => v / 1e6,
        "" | "ms" => v / 1e3,
        "s" => v,
        _ => bail!("--rtt {s:?}: unknown unit {unit:?} (us, ms or s)"),
    };
    if !(0.0..=10.0).contains(&secs) {
        bail!("--rtt {s:?} cannot be applied: the relay delays 0 to 10 s");
    }
    Ok(Duration::from_secs_f64(secs))
}

pub fn run(args: BenchArgs) -> Result<()> {
    if !(2..=MAX_SERVERS).contains(&args.servers) {
        bail!("--servers must be between 2 and {MAX_SERVERS} (a gateway and at least one remote)");
    }
    if !cfg!(feature = "insecure-simulation") && args.deploy == Deploy::Inprocess {
        bail!("--deploy inprocess needs a seco built with the insecure-simulation feature (on by default); use --deploy processes");
    }
    let shape = shape(&args)?;
    let stored = match &args.check {
        Some(f) => Some(check::Stored::load(f, args.tolerance)?),
        None => None,
    };
    let dir = resolve_model(&args.model)?;
    let model =
        Model::load(&dir).with_context(|| format!("cannot load model {}", dir.display()))?;
    if let Some(s) = &stored {
        s.expect(&model.name, args.servers)?;
    }
    let inputs = args.input.choose(&model, &dir)?;
    let q = model.quantize()?;
    let names = seco_protocols::plan::default_server_names(args.servers);
    let plan = SplitPlan::balanced(&q, &names)?;
    crate::cmd::common::check_plan(&q, &plan)?;
    let encoded: Vec<Vec<u64>> = inputs
        .values
        .iter()
        .map(|x| model.encode_input(x))
        .collect::<Result<_, _>>()?;
    common::init_logs("error", false)?;
    let machine = meta::Machine::now();
    if !args.json {
        println!(
            "seco bench: model {}, {} servers, {}",
            model.name, args.servers, inputs.source
        );
    }

    let (plain_times, reference) = plaintext::plaintext(&q, &encoded)?;
    let plaintext = Spread::of(&plain_times);
    let mut runs: Vec<Measurement> = Vec::new();
    if args.deploy == Deploy::Processes {
        let (work, _temp) =
            super::demo::deploy::work_dir(args.work_dir.as_deref(), "seco-bench-", false)?;
        runs.push(processes::run(
            &model,
            args.servers,
            &work,
            args.network.name(),
            shape,
            &encoded,
            &reference,
        )?);
    }
    #[cfg(feature = "insecure-simulation")]
    runs.push(inprocess::run(
        &q, &plan, &names, &encoded, &reference, !args.json,
    )?);

    let n = encoded.len();
    if args.json {
        let params = model.parameter_count();
        let out = serde_json::json!({
            "tool": "seco-rs", "version": env!("CARGO_PKG_VERSION"), "machine": machine,
            "model_parameters": params, "model_bytes": params * 4,
            "model": model.name, "servers": args.servers, "inputs": n,
            "input_source": inputs.source, "reference_labels": inputs.labels.is_some(),
            "plaintext": plaintext, "runs": runs,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        report::print(&runs, &plaintext);
        if inputs.labels.is_none() {
            println!("\nno reference labels: the inputs are not from a test set (results are checked against plaintext fixed point only)");
        }
    }
    for m in &runs {
        if m.bit_exact != n {
            bail!(
                "{} of {n} secure results ({} / {}) differ from the fixed-point reference",
                n - m.bit_exact,
                m.deploy,
                m.network
            );
        }
    }
    if let Some(s) = &stored {
        let v = check::compare(s, &model.name, args.servers, &runs, args.tolerance);
        check::finish(&v, s, args.tolerance, args.json)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_round_trips_parse_with_units_and_bounds() {
        assert_eq!(parse_rate("100mbit").unwrap(), 100e6);
        assert_eq!(parse_rate("1gbit").unwrap(), 1e9);
        assert_eq!(parse_rate("250").unwrap(), 250e6);
        assert!(parse_rate("0mbit").is_err());
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("1tbit").is_err());
        assert_eq!(parse_rtt("40ms").unwrap(), Duration::from_millis(40));
        assert_eq!(parse_rtt("0.5ms").unwrap(), Duration::from_micros(500));
        assert_eq!(parse_rtt("200us").unwrap(), Duration::from_micros(200));
        assert!(parse_rtt("11s").is_err());
        assert!(parse_rtt("-1ms").is_err());
    }
}

//! `seco infer --topology FILE --model-part user.json --input FILE [--count N]
//! [--output logits|label]`: the user side. Opens a session with the gateway, prepares N
//! bundles, runs N inferences of the input and prints the class and the logits of each (with
//! `--output label`, only the class: the argmax is computed inside the last garbled circuit and
//! the user decrypts nothing else), then the wall time of each phase; closes the session at the
//! end (also after a failure or ctrl-c), so that the servers delete it at once.
//! When one step fails, every inference completed before it is still printed, then the error
//! (exit code 1).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use seco_protocols::model::argmax;
use seco_protocols::seco::OutputMode;

use super::common::{self, fmt_duration};

#[derive(Debug, Args)]
pub struct InferArgs {
    /// The topology file (TOML, see docs/topology.md).
    #[arg(long)]
    pub topology: PathBuf,
    /// The user's model part (user.json of `seco model split`).
    #[arg(long)]
    pub model_part: PathBuf,
    /// The input: a JSON array of numbers (flat, CHW order), as for `seco model predict --input`.
    #[arg(long)]
    pub input: PathBuf,
    /// Number of inferences of this input (each consumes one preprocessed bundle).
    #[arg(long, default_value_t = 1)]
    pub count: usize,
    /// This user's name in the topology (default: its only user).
    #[arg(long)]
    pub name: Option<String>,
    /// This user's key file (default: the `identity` the topology names for it).
    #[arg(long)]
    pub identity: Option<PathBuf>,
    /// Logs as JSON lines.
    #[arg(long)]
    pub log_json: bool,
    /// Results as JSON lines: `{"inference", "class", "logits", "fixed"}` (`fixed`: the signed
    /// fixed-point logits, scale 2^f); with `--output label`, `{"inference", "class"}`.
    #[arg(long)]
    pub json: bool,
    /// What the user learns: `logits` (the truncated logits, as the fixed-point reference
    /// outputs them) or `label` (only the predicted class, computed inside the last garbled
    /// circuit).
    #[arg(long, default_value = "logits", value_parser = parse_output)]
    pub output: OutputMode,
    /// How many times a failed bundle or inference is tried again with a fresh bundle (in a new
    /// session if the session itself was aborted) before the error is reported.
    #[arg(long, default_value_t = seco_actors::node::DEFAULT_RETRIES)]
    pub retries: u32,
}

fn parse_output(s: &str) -> std::result::Result<OutputMode, String> {
    OutputMode::parse(s).ok_or_else(|| format!("{s:?} is not an output mode (logits or label)"))
}

pub fn run(args: InferArgs) -> Result<()> {
    let topology = Arc::new(common::load_topology(&args.topology)?);
    let part = common::read_user_part(&args.model_part)?;
    let x = super::model::read_input(&args.input)?;
    let encoded = common::encode_input(&part, &x)
        .with_context(|| format!("input {}", args.input.display()))?;
    if args.count == 0 {
        anyhow::bail!("--count must be at least 1");
    }
    common::init_logs("error", args.log_json)?;
    let fp = part.fixed_point;
    common::runtime()?.block_on(async move {
        let node = common::start_user(
            topology,
            args.name.as_deref(),
            args.identity.as_deref(),
            part,
        )
        .await?;
        let inputs = vec![encoded; args.count];
        let run = common::run_user_with(
            &node,
            &inputs,
            args.output,
            args.retries,
            common::shutdown_signal(),
        )
        .await;
        node.shutdown().await?;
        print_results(&run, fp, args.json);
        match run.error {
            // The completed inferences are printed above; the failure ends the command.
            Some(e) => Err(e),
            None => Ok(()),
        }
    })
}

/// Every completed inference (also when a later one failed), then the mean times.
fn print_results(run: &common::UserRun, fp: seco_protocols::fixed::FixedPoint, json: bool) {
    for (i, class) in run.labels.iter().enumerate() {
        if json {
            println!("{}", serde_json::json!({ "inference": i, "class": class }));
        } else {
            println!("inference {i}: class {class}");
        }
    }
    for (i, logits) in run.logits.iter().enumerate() {
        let real = common::decode_logits(fp, logits);
        if json {
            let line = serde_json::json!({
                "inference": i,
                "class": argmax(&real),
                "logits": real,
                "fixed": logits,
            });
            println!("{line}");
            continue;
        }
        let shown: Vec<String> = real.iter().map(|v| format!("{v:.3}")).collect();
        println!(
            "inference {i}: class {} logits [{}]",
            argmax(&real),
            shown.join(", ")
        );
    }
    if run.online.is_empty() {
        return;
    }
    let mean = |v: &[std::time::Duration]| {
        v.iter().sum::<std::time::Duration>() / u32::try_from(v.len().max(1)).unwrap_or(1)
    };
    println!(
        "time: session open {} (incl. key generation on first use), preprocessing {} per bundle, online {} per inference",
        fmt_duration(run.open),
        fmt_duration(mean(&run.prep)),
        fmt_duration(mean(&run.online))
    );
}

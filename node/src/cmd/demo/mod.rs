//! `seco demo [--servers N] [--model NAME|DIR] [--inputs K] [--input FILE]`: a whole
//! deployment on this machine.
//!
//! 1. Splits the model over `gateway, remote-1, ...` (balanced plan) into a work directory,
//!    creates an identity per node and writes a topology with free loopback ports.
//! 2. Starts every server as a separate OS process (`seco node`, this same executable) and
//!    waits for each to be ready.
//! 3. Runs the user in this process over libp2p: opens a session (collective key generation),
//!    prepares K bundles, runs K inferences on the model's first K test inputs (or `--input
//!    FILE`, or, for a model without a test set, inputs drawn uniformly in `--input-range`:
//!    then no reference labels exist and the output says so).
//! 4. Prints per input the secure class, the plaintext fixed-point class and whether the logits
//!    are bit-for-bit equal to the reference, then wall times at the user and bytes / CPU per
//!    party and phase (from the nodes' `stats.json`).
//!
//! Exits non-zero if any secure result differs from the reference. The server processes are
//! killed when the demo ends, also on errors and ctrl-c. `deploy.rs` (work directory, processes,
//! user run) is shared with `seco bench --deploy processes`.

pub mod deploy;
pub mod procs;
pub mod report;

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use seco_protocols::model::{argmax, Model};

use super::common;
use super::inputs::{resolve_model, InputArgs};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Number of servers: a gateway and N-1 remotes.
    #[arg(long, default_value_t = 3)]
    pub servers: usize,
    /// A shipped model (`models/NAME`) or a model directory.
    #[arg(long, default_value = "mnist-mlp")]
    pub model: String,
    #[command(flatten)]
    pub input: InputArgs,
    /// Work directory (parts, identities, data, logs); default: a temporary one, removed at the end.
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Keep the temporary work directory.
    #[arg(long)]
    pub keep: bool,
}

pub fn run(args: DemoArgs) -> Result<()> {
    if args.servers < 2 {
        bail!("--servers must be at least 2 (a gateway and one remote)");
    }
    let dir = resolve_model(&args.model)?;
    let model =
        Model::load(&dir).with_context(|| format!("cannot load model {}", dir.display()))?;
    let inputs = args.input.choose(&model, &dir)?;
    // The temporary directory (if any) is removed when `_temp` drops, after the processes.
    let (work, _temp) = deploy::work_dir(args.work_dir.as_deref(), "seco-demo-", args.keep)?;
    common::init_logs("error", false)?;
    println!(
        "seco demo: model {} split over {} servers, {}; work directory {}",
        model.name,
        args.servers,
        inputs.source,
        work.display()
    );
    let prepared = deploy::prepare(&model, args.servers, &work, &mut |_, a| Ok(a))?;
    let encoded: Vec<Vec<u64>> = inputs
        .values
        .iter()
        .map(|x| model.encode_input(x))
        .collect::<std::result::Result<_, _>>()?;
    let outcome = common::runtime()?.block_on(async {
        tokio::select! {
            r = deploy::run(&prepared, &work, &encoded) => r,
            _ = common::shutdown_signal() => Err(anyhow!("interrupted")),
        }
    })?;
    let labels = inputs.labels.as_deref();
    let mismatches = print_results(
        &model,
        &inputs.values,
        labels,
        &encoded,
        &outcome.run.logits,
    )?;
    report::print_times(&outcome.run);
    report::print_parties(&outcome.parties, inputs.values.len());
    let n = inputs.values.len();
    if mismatches > 0 {
        bail!("{mismatches} of {n} secure results differ from the fixed-point reference");
    }
    println!("\nall {n} secure results equal the fixed-point reference");
    Ok(())
}

/// Prints one line per input; returns the number of inputs whose logits differ.
fn print_results(
    model: &Model,
    inputs: &[Vec<f32>],
    labels: Option<&[i64]>,
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
            labels
                .and_then(|l| l.get(i))
                .map_or_else(|| "none".to_string(), ToString::to_string),
            if equal { "yes" } else { "NO" }
        );
    }
    Ok(mismatches)
}

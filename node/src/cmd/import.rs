//! `seco model import FILE.onnx --out DIR [--name NAME] [--frac-bits F]`: converts an ONNX
//! export (PyTorch, Keras via tf2onnx) into a seco model directory. The conversion and its
//! refusals are in `seco_protocols::onnx`, the parameter check (noise and flooding budget,
//! plane sizes) in `seco_protocols::plan::budget`; this is argument handling and output.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use seco_protocols::fixed::FixedPoint;
use seco_protocols::model::{Model, MANIFEST_FILE};
use seco_protocols::onnx::{import_file, ImportOptions};
use seco_protocols::plan::{supported_servers, BudgetError, BudgetReport, COLLECTIVE_PARAMS};

/// Arguments of `seco model import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The ONNX file (default-domain opset 7 to 25, float32 weights stored in the file).
    pub file: PathBuf,
    /// Output model directory (created), receives model.json and model.safetensors.
    #[arg(long)]
    pub out: PathBuf,
    /// Model name (default: the name of the output directory).
    #[arg(long)]
    pub name: Option<String>,
    /// Fractional bits f of the fixed-point encoding (ring Z_2^32; 2f < 32).
    #[arg(long, default_value_t = FixedPoint::default().frac_bits)]
    pub frac_bits: u32,
    /// Overwrite a model already in the output directory.
    #[arg(long)]
    pub force: bool,
}

/// Runs `seco model import`.
pub fn run(args: ImportArgs) -> anyhow::Result<()> {
    let fixed_point =
        FixedPoint::new(FixedPoint::default().ring_bits, args.frac_bits).context("--frac-bits")?;
    let name = args.name.clone().unwrap_or_else(|| default_name(&args));
    let manifest = args.out.join(MANIFEST_FILE);
    if manifest.exists() && !args.force {
        anyhow::bail!(
            "{} already exists (use --force to overwrite)",
            manifest.display()
        );
    }
    let options = ImportOptions { name, fixed_point };
    let model = import_file(&args.file, &options)
        .with_context(|| format!("cannot import {}", args.file.display()))?;
    // Refused before anything is written when no deployment could run it: the budget only
    // shrinks with more servers, so the check with 2 is the model's own; `seco model split`
    // checks again for the actual number of servers.
    let q = model
        .quantize()
        .with_context(|| format!("cannot import {}", args.file.display()))?;
    // The set that supports the most servers (the cheapest among equals); refused, the error
    // of the set with the most room (the last). `seco model split` chooses the set for the
    // actual number of servers (plan::param).
    let mut budget: Option<Result<BudgetReport, BudgetError>> = None;
    for param in COLLECTIVE_PARAMS {
        let r = supported_servers(&q, param);
        budget = match (budget, r) {
            (Some(Ok(b)), Ok(r)) if r.n <= b.n => Some(Ok(b)),
            (Some(Ok(b)), Err(_)) => Some(Ok(b)),
            (_, r) => Some(r),
        };
    }
    let budget = budget.unwrap_or_else(|| supported_servers(&q, COLLECTIVE_PARAMS[0]));
    let budget = budget.with_context(|| {
        format!(
            "cannot import {}: model {:?} refused",
            args.file.display(),
            q.name
        )
    })?;
    model
        .save(&args.out)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    print_summary(&args, &model);
    println!(
        "fits 2 to {} servers; at {}",
        budget.n,
        crate::cmd::common::budget_line(&budget)
    );
    Ok(())
}

/// The output directory's name, else the file's stem.
fn default_name(args: &ImportArgs) -> String {
    args.out
        .file_name()
        .or_else(|| args.file.file_stem())
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "imported".into())
}

fn print_summary(args: &ImportArgs, model: &Model) {
    println!(
        "imported {} -> {}: model {:?}, input {:?}, output {:?}, {} parameters, fixed point k = {}, f = {}",
        args.file.display(),
        args.out.display(),
        model.name,
        model.input_shape,
        model.output_shape(),
        model.parameter_count(),
        model.fixed_point.ring_bits,
        model.fixed_point.frac_bits
    );
    for (i, layer) in model.layers.iter().enumerate() {
        let shape = model.layer_output_shape(i).unwrap_or(&[]);
        println!("  {i:>3}  {:<40} -> {shape:?}", layer.describe());
    }
}

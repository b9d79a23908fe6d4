//! `seco model inspect|split|predict`: plaintext model tools.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use seco_protocols::model::{argmax, Model, TestSet};
use seco_protocols::plan::{PlanFile, SplitPlan};

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Print a model's layers, shapes, parameter and multiply-accumulate counts, and the
    /// stages the secure protocol evaluates.
    Inspect {
        /// Model directory (with model.json) or manifest file.
        model: PathBuf,
    },
    /// Split a model across servers: write each server's part, the user's part and the plan.
    Split(SplitArgs),
    /// Plaintext prediction, float and/or fixed point, on one input or on the test set.
    Predict(PredictArgs),
    /// Import an ONNX model (PyTorch/Keras export) into seco's model format.
    Import(crate::cmd::import::ImportArgs),
}

#[derive(Debug, Args)]
pub struct SplitArgs {
    /// Model directory.
    pub model: PathBuf,
    /// Server names, gateway first (comma separated).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "gateway,remote-1,remote-2"
    )]
    pub servers: Vec<String>,
    /// A hand-written plan (TOML); default: contiguous segments balanced by MAC count.
    #[arg(long)]
    pub plan: Option<PathBuf>,
    /// Output directory: `plan.toml`, `user.json`, and `<server>/part.cbor` per server.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Mode {
    /// Float inference only.
    Float,
    /// Fixed-point reference only.
    Fixed,
    /// Both, side by side.
    Both,
}

#[derive(Debug, Args)]
pub struct PredictArgs {
    /// Model directory.
    pub model: PathBuf,
    /// Input file: a JSON array of numbers (flat, CHW order). Without it, the model's test set.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// With the test set: only the first N inputs.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Which evaluation to run.
    #[arg(long, value_enum, default_value = "both")]
    pub mode: Mode,
    /// Override the model's fractional bits (fixed point).
    #[arg(long)]
    pub frac_bits: Option<u32>,
}

pub fn run(cmd: ModelCommand) -> Result<()> {
    match cmd {
        ModelCommand::Inspect { model } => inspect(&model),
        ModelCommand::Split(args) => split(&args),
        ModelCommand::Predict(args) => predict(&args),
        ModelCommand::Import(args) => crate::cmd::import::run(args),
    }
}

pub fn load_model(path: &Path) -> Result<Model> {
    Model::load(path).with_context(|| format!("cannot load model {}", path.display()))
}

fn inspect(path: &Path) -> Result<()> {
    let model = load_model(path)?;
    let fp = model.fixed_point;
    println!("model {} ({})", model.name, model.description);
    println!(
        "input shape {:?}, output shape {:?}",
        model.input_shape,
        model.output_shape()
    );
    println!(
        "fixed point: ring Z_2^{}, scale 2^{}",
        fp.ring_bits, fp.frac_bits
    );
    println!("parameters: {}", model.parameter_count());
    println!(
        "{:>3}  {:<40} {:>16} {:>10}",
        "#", "layer", "output", "MACs"
    );
    let mut total = 0;
    for (i, layer) in model.layers.iter().enumerate() {
        let input = model.layer_input_shape(i).unwrap_or_default();
        let macs = layer.macs(input);
        total += macs;
        let out = format!("{:?}", model.layer_output_shape(i).unwrap_or_default());
        println!("{i:>3}  {:<40} {out:>16} {macs:>10}", layer.describe());
    }
    println!("total MACs: {total}");
    let q = model.quantize()?;
    println!(
        "secure stages (linear layer, then truncation and non-linear ops in a garbled circuit):"
    );
    for (i, s) in q.stages.iter().enumerate() {
        let post: Vec<String> = s.post.iter().map(ToString::to_string).collect();
        println!(
            "  stage {i}: {} -> trunc{}{}",
            s.name,
            if post.is_empty() { "" } else { " -> " },
            post.join(" -> ")
        );
    }
    Ok(())
}

fn split(args: &SplitArgs) -> Result<()> {
    let model = load_model(&args.model)?;
    let q = model.quantize()?;
    let plan = match &args.plan {
        Some(file) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read plan {}", file.display()))?;
            PlanFile::from_toml(&text)?.resolve(&q)?
        }
        None => SplitPlan::balanced(&q, &args.servers)?,
    };
    let budget = crate::cmd::common::check_plan(&q, &plan)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let plan_file = PlanFile::from_plan(&plan, &q);
    std::fs::write(args.out.join("plan.toml"), plan_file.to_toml())?;
    let user = serde_json::to_string_pretty(&plan.user_part(&q))?;
    std::fs::write(args.out.join("user.json"), user)?;
    for (i, name) in plan.servers.iter().enumerate() {
        let part = plan.server_part(&q, i)?;
        part.save(args.out.join(name))?;
        let owned: Vec<&str> = part
            .owned
            .iter()
            .map(|(s, _)| q.stages[*s].name.as_str())
            .collect();
        let macs: u64 = part.owned.iter().map(|(_, op)| op.macs()).sum();
        println!(
            "{name}: owns {owned:?} ({macs} MACs) -> {}",
            args.out.join(name).display()
        );
    }
    println!("{}", crate::cmd::common::budget_line(&budget));
    println!("plan -> {}", args.out.join("plan.toml").display());
    Ok(())
}

fn predict(args: &PredictArgs) -> Result<()> {
    let mut model = load_model(&args.model)?;
    if let Some(f) = args.frac_bits {
        let fp = seco_protocols::fixed::FixedPoint::new(model.fixed_point.ring_bits, f)?;
        model = model.with_fixed_point(fp)?;
    }
    if let Some(file) = &args.input {
        let x = read_input(file)?;
        print_one(&model, args.mode, &x, None)?;
        return Ok(());
    }
    let tests = TestSet::load(&args.model).context("cannot load the model's test set")?;
    if tests.input_shape != model.input_shape {
        bail!(
            "test set input shape {:?} differs from the model's {:?}",
            tests.input_shape,
            model.input_shape
        );
    }
    let n = args.limit.unwrap_or(tests.len()).min(tests.len());
    let (mut float_ok, mut fixed_ok) = (0, 0);
    for i in 0..n {
        let x = tests
            .input(i)
            .context("test set is shorter than its labels")?;
        let (fl, fx) = print_one(&model, args.mode, x, Some(tests.labels[i]))?;
        float_ok += usize::from(fl == Some(tests.labels[i] as usize));
        fixed_ok += usize::from(fx == Some(tests.labels[i] as usize));
    }
    let pct = |k: usize| 100.0 * k as f64 / n.max(1) as f64;
    match args.mode {
        Mode::Float => println!("accuracy float {:.2}% ({float_ok}/{n})", pct(float_ok)),
        Mode::Fixed => println!("accuracy fixed {:.2}% ({fixed_ok}/{n})", pct(fixed_ok)),
        Mode::Both => println!(
            "accuracy float {:.2}% ({float_ok}/{n}), fixed point {:.2}% ({fixed_ok}/{n})",
            pct(float_ok),
            pct(fixed_ok)
        ),
    }
    Ok(())
}

/// Prints one prediction line; returns the float and fixed-point classes that were computed.
fn print_one(
    model: &Model,
    mode: Mode,
    x: &[f32],
    label: Option<i64>,
) -> Result<(Option<usize>, Option<usize>)> {
    let float = matches!(mode, Mode::Float | Mode::Both)
        .then(|| model.predict_float(x))
        .transpose()?;
    let fixed = matches!(mode, Mode::Fixed | Mode::Both)
        .then(|| model.predict_fixed(x))
        .transpose()?;
    let fc = float.as_deref().map(argmax);
    let xc = fixed.as_deref().map(argmax);
    let mut line = String::new();
    if let Some(l) = label {
        line.push_str(&format!("label {l} "));
    }
    if let (Some(c), Some(v)) = (fc, &float) {
        line.push_str(&format!("float class {c} logits {} ", fmt_logits(v)));
    }
    if let (Some(c), Some(v)) = (xc, &fixed) {
        line.push_str(&format!("fixed class {c} logits {}", fmt_logits(v)));
    }
    println!("{}", line.trim_end());
    Ok((fc, xc))
}

fn fmt_logits(v: &[f64]) -> String {
    let parts: Vec<String> = v.iter().map(|x| format!("{x:.3}")).collect();
    format!("[{}]", parts.join(", "))
}

/// Reads a JSON array of numbers.
pub fn read_input(file: &Path) -> Result<Vec<f32>> {
    let meta =
        std::fs::metadata(file).with_context(|| format!("cannot read input {}", file.display()))?;
    if meta.len() > 64 << 20 {
        bail!("input file {} is larger than 64 MiB", file.display());
    }
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read input {}", file.display()))?;
    let values: Vec<f32> = serde_json::from_str(&text)
        .with_context(|| format!("input {} is not a JSON array of numbers", file.display()))?;
    Ok(values)
}

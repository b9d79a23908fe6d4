//! The inputs of `seco demo` and `seco bench`: a shipped model's test set, one `--input FILE`
//! (run `--inputs` times), or, for a model directory without a test set (e.g. an imported
//! ONNX model), values drawn uniformly in `--input-range` (the manifest declares no range; the
//! shipped models take [0, 1]). Only the test set has reference labels.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use rand::Rng;
use seco_protocols::model::{Model, TestSet, MANIFEST_FILE, TEST_SET_FILE};

/// Where the inputs come from (flattened into `seco demo` and `seco bench`).
#[derive(Debug, Clone, Args)]
pub struct InputArgs {
    /// Number of inferences (each consumes one preprocessed bundle).
    #[arg(long, default_value_t = 5)]
    pub inputs: usize,
    /// One input (a JSON array of numbers, flat, CHW order) used for every inference, instead
    /// of the model's test set.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Range of the random inputs drawn when the model has no test set, as `LO,HI`.
    #[arg(long, default_value = "0,1", value_parser = parse_range)]
    pub input_range: (f32, f32),
}

/// The chosen inputs.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// Float inputs, one per inference.
    pub values: Vec<Vec<f32>>,
    /// Reference labels, when they come from the test set.
    pub labels: Option<Vec<i64>>,
    /// Where they come from, for the output.
    pub source: String,
}

/// `LO,HI` with finite `LO < HI`.
fn parse_range(s: &str) -> Result<(f32, f32), String> {
    let (lo, hi) = s
        .split_once(',')
        .ok_or_else(|| format!("expected LO,HI, got {s:?}"))?;
    let p = |v: &str| {
        v.trim()
            .parse::<f32>()
            .map_err(|_| format!("{v:?} is not a number"))
    };
    let (lo, hi) = (p(lo)?, p(hi)?);
    if !(lo.is_finite() && hi.is_finite() && lo < hi) {
        return Err(format!("need finite LO < HI, got {s:?}"));
    }
    Ok((lo, hi))
}

/// The model directory for `name`: a directory with a manifest, or a shipped model found from
/// the current directory or the source tree.
pub fn resolve_model(name: &str) -> Result<PathBuf> {
    let candidates = [
        PathBuf::from(name),
        Path::new("models").join(name),
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../models")
            .join(name),
    ];
    candidates
        .into_iter()
        .find(|p| p.join(MANIFEST_FILE).is_file())
        .ok_or_else(|| {
            anyhow!("no model {name:?}: expected a model directory or models/{name}/{MANIFEST_FILE} (shipped: digits-mlp, digits-cnn, mnist-mlp, cifar-cnn)")
        })
}

impl InputArgs {
    /// The inputs for `model` (loaded from `dir`).
    pub fn choose(&self, model: &Model, dir: &Path) -> Result<Inputs> {
        if self.inputs == 0 {
            bail!("--inputs must be at least 1");
        }
        if let Some(file) = &self.input {
            let x = super::model::read_input(file)?;
            model
                .encode_input(&x)
                .with_context(|| format!("input {}", file.display()))?;
            return Ok(Inputs {
                values: vec![x; self.inputs],
                labels: None,
                source: format!("input file {} (no reference label)", file.display()),
            });
        }
        if dir.join(TEST_SET_FILE).is_file() {
            let tests = TestSet::load(dir).context("cannot load the model's test set")?;
            let k = self.inputs.min(tests.len());
            let values = (0..k)
                .map(|i| {
                    tests
                        .input(i)
                        .map(<[f32]>::to_vec)
                        .ok_or_else(|| anyhow!("test input {i} missing"))
                })
                .collect::<Result<Vec<_>>>()?;
            if values.is_empty() {
                bail!("the model's test set is empty");
            }
            return Ok(Inputs {
                values,
                labels: Some(tests.labels[..k].to_vec()),
                source: format!("the first {k} inputs of the model's test set"),
            });
        }
        let (lo, hi) = self.input_range;
        let mut rng = rand::rng();
        let values = (0..self.inputs)
            .map(|_| {
                (0..model.input_len())
                    .map(|_| rng.random_range(lo..hi))
                    .collect()
            })
            .collect();
        Ok(Inputs {
            values,
            labels: None,
            source: format!(
                "{} inputs drawn uniformly in [{lo}, {hi}] (the model has no {TEST_SET_FILE}: no reference labels)",
                self.inputs
            ),
        })
    }
}

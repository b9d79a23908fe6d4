//! `seco bench`: secure inference of a shipped model with all parties in this process (the
//! in-memory router of `seco_protocols::seco::local`), reporting per phase and per party the
//! bytes (exact) and CPU time, and the ratio to plaintext fixed-point inference measured in the
//! same run.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use seco_protocols::model::{Model, TestSet};
use seco_protocols::plan::SplitPlan;
use seco_protocols::seco::local::{Accounting, LocalDeployment, LocalOptions};
use seco_protocols::seco::{Party, Phase};

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Shipped model name (a directory under --models) or a model directory.
    #[arg(long, default_value = "mnist-mlp")]
    pub model: String,
    /// Directory of shipped models.
    #[arg(long, default_value = "models")]
    pub models: PathBuf,
    /// Number of servers (gateway + remotes).
    #[arg(long, default_value_t = 3)]
    pub servers: usize,
    /// Number of inferences (each consumes one bundle).
    #[arg(long, default_value_t = 5)]
    pub inputs: usize,
    /// Print the accounting as JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: BenchArgs) -> Result<()> {
    let dir = if PathBuf::from(&args.model).is_dir() {
        PathBuf::from(&args.model)
    } else {
        args.models.join(&args.model)
    };
    let model =
        Model::load(&dir).with_context(|| format!("cannot load model {}", dir.display()))?;
    let tests = TestSet::load(&dir).context("cannot load the model's test set")?;
    if args.inputs == 0 || args.inputs > tests.len() {
        bail!("--inputs must be between 1 and {}", tests.len());
    }
    let q = model.quantize()?;
    let names = seco_protocols::plan::default_server_names(args.servers);
    let plan = SplitPlan::balanced(&q, &names)?;
    crate::cmd::common::check_budget(&q, args.servers)?;
    let inputs: Vec<Vec<u64>> = (0..args.inputs)
        .map(|i| model.encode_input(tests.input(i).unwrap_or_default()))
        .collect::<Result<_, _>>()?;

    // Plaintext fixed-point reference, timed in the same run.
    let start = Instant::now();
    let reference: Vec<Vec<u64>> = inputs
        .iter()
        .map(|x| q.infer(x))
        .collect::<Result<_, _>>()?;
    let plain = start.elapsed() / args.inputs as u32;

    let t0 = Instant::now();
    let mut d = LocalDeployment::new(
        &q,
        &plan,
        LocalOptions {
            seed: rand::random(),
            ..LocalOptions::default()
        },
    )?;
    let setup_wall = t0.elapsed();
    let setup = d.accounting.clone();

    let bar = progress(args.inputs as u64, "preprocessing");
    let t1 = Instant::now();
    for _ in 0..args.inputs {
        d.preprocess(1)?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    let prep_wall = t1.elapsed() / args.inputs as u32;
    let prep = d.accounting.since(&setup);

    let before = d.accounting.clone();
    let bar = progress(args.inputs as u64, "online");
    let t2 = Instant::now();
    let mut correct = 0;
    for (x, want) in inputs.iter().zip(&reference) {
        let got = d.infer(x)?;
        let want: Vec<i64> = want
            .iter()
            .map(|&v| model.fixed_point.to_signed(v))
            .collect();
        correct += usize::from(got == want);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let online_wall = t2.elapsed() / args.inputs as u32;
    let online = d.accounting.since(&before);

    if args.json {
        let out = serde_json::json!({
            "model": model.name, "servers": args.servers, "inputs": args.inputs,
            "bit_exact": correct, "plaintext_us": plain.as_secs_f64() * 1e6,
            "setup_wall_ms": ms(setup_wall), "prep_wall_ms": ms(prep_wall), "online_wall_ms": ms(online_wall),
            "setup": rows(&setup, args.servers, 1), "preprocessing": rows(&prep, args.servers, args.inputs),
            "online": rows(&online, args.servers, args.inputs),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("model {}, {} servers, {} inferences; secure logits equal the fixed-point reference: {correct}/{}", model.name, args.servers, args.inputs, args.inputs);
        println!("wall time (one thread runs every party): session+keygen+OT setup {:.1} ms, preprocessing {:.1} ms/inference, online {:.1} ms/inference; plaintext fixed point {:.1} us/inference (online/plaintext = {:.0}x)",
            ms(setup_wall), ms(prep_wall), ms(online_wall), plain.as_secs_f64() * 1e6, online_wall.as_secs_f64() / plain.as_secs_f64().max(1e-9));
        table(
            "session + key generation + OT setup (once)",
            &setup,
            args.servers,
            1,
        );
        table(
            "preprocessing (per inference)",
            &prep,
            args.servers,
            args.inputs,
        );
        table("online (per inference)", &online, args.servers, args.inputs);
    }
    if correct != args.inputs {
        bail!(
            "{} of {} secure results differ from the fixed-point reference",
            args.inputs - correct,
            args.inputs
        );
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn progress(n: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(n);
    bar.set_style(
        ProgressStyle::with_template("{msg:>14} [{bar:30}] {pos}/{len} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(what.to_string());
    bar
}

fn parties(servers: usize) -> Vec<Party> {
    std::iter::once(Party::User)
        .chain((0..servers).map(|i| Party::Server(i as u16)))
        .collect()
}

fn rows(acc: &Accounting, servers: usize, per: usize) -> serde_json::Value {
    let per = per.max(1) as u64;
    parties(servers)
        .into_iter()
        .map(|p| {
            let u = acc.party(p);
            serde_json::json!({"party": p.to_string(), "bytes_sent": u.bytes_sent / per, "bytes_received": u.bytes_received / per,
                "messages": u.messages / per, "cpu_ms": ms(u.cpu) / per as f64})
        })
        .collect()
}

fn table(title: &str, acc: &Accounting, servers: usize, per: usize) {
    let per = per.max(1) as u64;
    println!("\n{title}");
    println!(
        "{:<10} {:>14} {:>14} {:>9} {:>10}",
        "party", "bytes sent", "bytes recv", "messages", "cpu ms"
    );
    for p in parties(servers) {
        let u = acc.party(p);
        println!(
            "{:<10} {:>14} {:>14} {:>9} {:>10.2}",
            p.to_string(),
            u.bytes_sent / per,
            u.bytes_received / per,
            u.messages / per,
            ms(u.cpu) / per as f64
        );
    }
    let phases: Vec<String> = [
        Phase::Session,
        Phase::Keygen,
        Phase::Setup,
        Phase::Prep,
        Phase::Online,
    ]
    .iter()
    .filter_map(|ph| {
        let total: u64 = acc
            .usage
            .iter()
            .filter(|((_, q), _)| q == ph)
            .map(|(_, u)| u.bytes_sent)
            .sum();
        (total > 0).then(|| format!("{ph:?} {}", total / per))
    })
    .collect();
    println!("bytes by phase: {}", phases.join(", "));
}

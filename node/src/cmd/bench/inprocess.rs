//! The in-process protocol: every party in this process on one thread (the in-memory router of
//! `seco_protocols::seco::local`), no network. Bytes are exact (encoded messages); CPU is the
//! time inside each party's state machine.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use seco_protocols::model::QuantModel;
use seco_protocols::plan::SplitPlan;
use seco_protocols::seco::local::{Accounting, LocalDeployment, LocalOptions};
use seco_protocols::seco::{Party, Phase};

use super::report::{phase_group, Measurement, Usage};

/// Runs session setup, one bundle per input, then the inferences; `reference` holds the
/// plaintext fixed-point logits (signed) of each input.
pub fn run(
    q: &QuantModel,
    plan: &SplitPlan,
    names: &[String],
    inputs: &[Vec<u64>],
    reference: &[Vec<i64>],
    progress: bool,
) -> Result<Measurement> {
    let t0 = Instant::now();
    let mut d = LocalDeployment::new(
        q,
        plan,
        LocalOptions {
            seed: rand::random(),
            ..LocalOptions::default()
        },
    )?;
    let open = t0.elapsed();

    let bar = bar(progress, inputs.len() as u64, "in-process prep");
    let mut prep = Vec::with_capacity(inputs.len());
    for _ in inputs {
        let t = Instant::now();
        d.preprocess(1)?;
        prep.push(t.elapsed());
        bar.inc(1);
    }
    bar.finish_and_clear();

    let bar = bar_online(progress, inputs.len() as u64);
    let mut online = Vec::with_capacity(inputs.len());
    let mut bit_exact = 0;
    for (x, want) in inputs.iter().zip(reference) {
        let t = Instant::now();
        let got = d.infer(x)?;
        online.push(t.elapsed());
        bit_exact += usize::from(got == *want);
        bar.inc(1);
    }
    bar.finish_and_clear();

    Ok(Measurement::new(
        "inprocess",
        "none",
        None,
        open,
        &prep,
        &online,
        totals(&d.accounting, names),
        bit_exact,
    ))
}

/// Usage per party name (the plan's server names, `user`) and reported phase.
fn totals(acc: &Accounting, names: &[String]) -> BTreeMap<String, BTreeMap<String, Usage>> {
    let mut out: BTreeMap<String, BTreeMap<String, Usage>> = BTreeMap::new();
    for ((party, phase), u) in &acc.usage {
        let name = match party {
            Party::User => "user".to_string(),
            Party::Server(i) => names
                .get(usize::from(*i))
                .cloned()
                .unwrap_or_else(|| format!("server-{i}")),
        };
        let Some(group) = phase_group(phase_name(*phase)) else {
            continue;
        };
        out.entry(name)
            .or_default()
            .entry(group.into())
            .or_default()
            .add(u.bytes_sent, u.bytes_received, u.messages, u.cpu);
    }
    out
}

fn phase_name(p: Phase) -> &'static str {
    match p {
        Phase::Session => "session",
        Phase::Keygen => "keygen",
        Phase::Setup => "setup",
        Phase::Prep => "prep",
        Phase::Online => "online",
        Phase::Abort => "abort",
    }
}

fn bar(show: bool, n: u64, what: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(n);
    bar.set_style(
        ProgressStyle::with_template("{msg:>18} [{bar:30}] {pos}/{len} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(what.to_string());
    bar
}

fn bar_online(show: bool, n: u64) -> ProgressBar {
    bar(show, n, "in-process online")
}

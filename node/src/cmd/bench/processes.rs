//! The servers as separate `seco node` processes on 127.0.0.1 and the user in this process, as
//! `seco demo` runs them (`demo::deploy`), optionally behind one shaping relay per server so
//! that every link between parties is delayed and rate-limited (`relay.rs`).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, Result};
use seco_protocols::model::Model;

use super::relay::{Relay, Shape};
use super::report::{phase_group, Measurement, Usage};
use crate::cmd::common;
use crate::cmd::demo::deploy;

/// Runs one deployment in `work` (which must be fresh) and measures it.
pub fn run(
    model: &Model,
    servers: usize,
    work: &Path,
    network: &str,
    shape: Option<Shape>,
    inputs: &[Vec<u64>],
    reference: &[Vec<i64>],
) -> Result<Measurement> {
    // The relays live until the deployment ends (dropping one closes its connections).
    let mut relays: Vec<Relay> = Vec::new();
    let prepared = deploy::prepare(model, servers, work, &mut |_, listen| match shape {
        None => Ok(listen),
        Some(s) => {
            let r = Relay::start(listen, s)?;
            let addr = r.addr;
            relays.push(r);
            Ok(addr)
        }
    })?;
    let outcome = common::runtime()?.block_on(async {
        tokio::select! {
            r = deploy::run(&prepared, work, inputs) => r,
            _ = common::shutdown_signal() => Err(anyhow!("interrupted")),
        }
    })?;
    let shaped_connections = relays.iter().map(Relay::connections).sum();
    drop(relays);
    let bit_exact = outcome
        .run
        .logits
        .iter()
        .zip(reference)
        .filter(|(got, want)| got == want)
        .count();
    let mut totals: BTreeMap<String, BTreeMap<String, Usage>> = BTreeMap::new();
    let mut missing = Vec::new();
    let mut peak_rss_mib = BTreeMap::new();
    for (name, stats) in &outcome.parties {
        let Some(stats) = stats else {
            missing.push(name.clone());
            continue;
        };
        if let Some(kib) = stats.peak_rss_kib.filter(|_| name != "user") {
            peak_rss_mib.insert(name.clone(), kib as f64 / 1024.0);
        }
        let party = totals.entry(name.clone()).or_default();
        for (phase, u) in &stats.phases {
            if let Some(group) = phase_group(phase) {
                party.entry(group.into()).or_default().add(
                    u.bytes_sent,
                    u.bytes_received,
                    u.messages_sent,
                    Duration::from_micros(u.cpu_us),
                );
            }
        }
    }
    let mut m = Measurement::new(
        "processes",
        network,
        shape,
        outcome.run.open,
        &outcome.run.prep,
        &outcome.run.online,
        totals,
        bit_exact,
    );
    m.missing_counters = missing;
    m.peak_rss_mib = peak_rss_mib;
    m.shaped_connections = shape.map(|_| shaped_connections);
    Ok(m)
}

//! The demo's summary: wall time per phase at the user, then bytes and CPU time per party and
//! phase from each node's counters (`seco_actors::stats`: SECO payload bytes as handed to and
//! received from the network, without envelope, Noise and Yamux framing; CPU = time inside the
//! state machine).

use std::time::Duration;

use seco_actors::stats::{NodeStats, PhaseUsage};

use crate::cmd::common::{fmt_bytes, fmt_duration, UserRun};

fn mean(v: &[Duration]) -> Duration {
    v.iter().sum::<Duration>() / u32::try_from(v.len().max(1)).unwrap_or(1)
}

/// Prints the wall times measured at the user.
pub fn print_times(run: &UserRun) {
    let total = |v: &[Duration]| v.iter().sum::<Duration>();
    println!();
    println!("wall time at the user:");
    println!(
        "  {:<40} {:>10}",
        "session open (incl. key generation)",
        fmt_duration(run.open)
    );
    println!(
        "  {:<40} {:>10}   (total {} for {})",
        "preprocessing, per bundle",
        fmt_duration(mean(&run.prep)),
        fmt_duration(total(&run.prep)),
        run.prep.len()
    );
    println!(
        "  {:<40} {:>10}   (total {} for {})",
        "online, per inference",
        fmt_duration(mean(&run.online)),
        fmt_duration(total(&run.online)),
        run.online.len()
    );
}

fn sum(s: &NodeStats, phases: &[&str]) -> PhaseUsage {
    let mut u = PhaseUsage::default();
    for p in phases {
        if let Some(v) = s.phases.get(*p) {
            u.bytes_sent += v.bytes_sent;
            u.bytes_received += v.bytes_received;
            u.messages_sent += v.messages_sent;
            u.messages_received += v.messages_received;
            u.cpu_us += v.cpu_us;
        }
    }
    u
}

fn cell(u: &PhaseUsage) -> String {
    format!(
        "{} / {}, {}",
        fmt_bytes(u.bytes_sent),
        fmt_bytes(u.bytes_received),
        fmt_duration(Duration::from_micros(u.cpu_us))
    )
}

/// Prints bytes sent / received and CPU per party and phase (`None`: counters missing).
pub fn print_parties(parties: &[(String, Option<NodeStats>)], inputs: usize) {
    println!();
    println!(
        "per party and phase: bytes sent / received, CPU in the state machine ({inputs} bundles, {inputs} inferences):"
    );
    println!(
        "  {:<10} | {:<34} | {:<34} | {:<34}",
        "party", "session open + key generation", "preprocessing", "online"
    );
    for (name, stats) in parties {
        match stats {
            Some(s) => println!(
                "  {:<10} | {:<34} | {:<34} | {:<34}",
                name,
                cell(&sum(s, &["session", "keygen"])),
                cell(&sum(s, &["prep"])),
                cell(&sum(s, &["online"]))
            ),
            None => println!("  {name:<10} | (no counters: see its log)"),
        }
    }
}

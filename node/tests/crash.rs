//! Issue 13, item 6: a server process crashes (SIGKILL) or freezes (SIGSTOP, then SIGCONT) in
//! the middle of a phase — key generation, OT setup, preprocessing, the online phase — of a
//! deployment of `seco node` processes (digits-mlp, 3 servers), and is restarted with the same
//! data directory. The point is seeded: the n-th protocol message of that phase the victim
//! handles (its trace log on stderr), then a seeded delay.
//!
//! Each point asserts: the user's run (open, one bundle, one inference; the user in this
//! process) returns the reference result or a typed error within the bound; the next
//! `seco infer` after the restart returns the reference with no manual step; no bundle was
//! used twice (the servers' `inference done` lines); the victim's key share survived (its
//! `ready:` line reports the key, with the same id, and the next session runs no key
//! generation).
//!
//! `cargo test -p seco-node --test crash` runs a few points; the soak is opt-in:
//! `SECO_CRASH_SOAK=40 SECO_CRASH_SEED=1 cargo test -p seco-node --test crash -- --ignored
//! --nocapture` (figures in `docs/reliability.md`).

mod common;
#[path = "crash/harness.rs"]
mod harness;

use std::time::Duration;

use harness::{assert_all_good, run_keygen_point, run_points, Fault, Outcome, Phase, Point};
use rand::{Rng, SeedableRng};

fn rng(default_seed: u64) -> rand::rngs::StdRng {
    let seed = std::env::var("SECO_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default_seed);
    eprintln!("seed {seed}");
    rand::rngs::StdRng::seed_from_u64(seed)
}

#[test]
fn a_server_killed_in_ot_setup_preprocessing_and_online_recovers() {
    let mut r = rng(13);
    let points = [
        Point::seeded(&mut r, Phase::OtSetup, Fault::Kill),
        Point::seeded(&mut r, Phase::Prep, Fault::Kill),
        Point::seeded(&mut r, Phase::Prep, Fault::Kill),
        Point::seeded(&mut r, Phase::Online, Fault::Kill),
        Point::seeded(&mut r, Phase::Online, Fault::Kill),
    ];
    assert_all_good(&run_points(&points));
}

#[test]
fn a_server_frozen_in_preprocessing_and_online_recovers() {
    let mut r = rng(17);
    let points = [
        Point::seeded(&mut r, Phase::Prep, Fault::Freeze(Duration::from_secs(3))),
        Point::seeded(&mut r, Phase::Online, Fault::Freeze(Duration::from_secs(3))),
    ];
    assert_all_good(&run_points(&points));
}

/// Issue 13, item 3 ("key lockout"): remote-2 killed in key generation at its 5th
/// key-generation message, after the gateway and remote-1 stored the new key, comes back
/// without it. Before key versions every later session was refused for ever ("servers hold
/// different collective keys: delete the keys and rerun key generation"; the soak hit it in 6 of
/// 10 key-generation kills). Now the servers keep their previous keys and a session runs under
/// the newest key all hold, or generates a fresh one (`seco/server/open.rs`): the next
/// `seco infer` succeeds with no manual step.
#[test]
fn a_server_killed_in_key_generation_recovers() {
    let mut r = rng(19);
    let o = run_keygen_point(Point::seeded(&mut r, Phase::Keygen, Fault::Kill));
    // The figure for docs/reliability.md (`--nocapture`): since restart detection the run no
    // longer waits for the open deadline.
    eprintln!("outcome: {:?} after {:?}", o.run, o.to_outcome);
    assert_all_good(&[o]);
}

/// The soak: `SECO_CRASH_SOAK` points (default 24), seeded by `SECO_CRASH_SEED`, over every
/// phase, victim and fault; prints the figures per phase.
#[test]
#[ignore = "soak: minutes; run with --ignored (SECO_CRASH_SOAK=N, SECO_CRASH_SEED=S)"]
fn soak() {
    let n: usize = std::env::var("SECO_CRASH_SOAK")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(24);
    let mut r = rng(1);
    let phases = [Phase::Keygen, Phase::OtSetup, Phase::Prep, Phase::Online];
    let mut outcomes = Vec::new();
    let mut batch = Vec::new();
    for i in 0..n {
        let phase = phases[i % phases.len()];
        let fault = if phase != Phase::Keygen && r.random_bool(0.25) {
            Fault::Freeze(Duration::from_millis(r.random_range(500..6000)))
        } else {
            Fault::Kill
        };
        let p = Point::seeded(&mut r, phase, fault);
        if phase == Phase::Keygen {
            outcomes.push(run_keygen_point(p));
        } else {
            batch.push(p);
        }
    }
    outcomes.extend(run_points(&batch));
    report(&outcomes);
    assert_all_good(&outcomes);
}

/// Per phase and fault: points, reached, reference results, typed errors, longest time from
/// the fault to the outcome.
fn report(outcomes: &[Outcome]) {
    eprintln!(
        "| phase | fault | points | reached | reference | typed error | max fault->outcome | failed checks |"
    );
    eprintln!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for phase in [Phase::Keygen, Phase::OtSetup, Phase::Prep, Phase::Online] {
        for kill in [true, false] {
            let of: Vec<&Outcome> = outcomes
                .iter()
                .filter(|o| o.point.phase == phase && (o.point.fault == Fault::Kill) == kill)
                .collect();
            if of.is_empty() {
                continue;
            }
            let reached = of.iter().filter(|o| o.reached).count();
            let ok = of.iter().filter(|o| o.run.is_ok()).count();
            let max = of.iter().map(|o| o.to_outcome).max().unwrap_or_default();
            let failed = of.iter().filter(|o| !o.problems.is_empty()).count();
            eprintln!(
                "| {phase:?} | {} | {} | {reached} | {ok} | {} | {:.1} s | {failed} |",
                if kill { "SIGKILL" } else { "SIGSTOP" },
                of.len(),
                of.len() - ok,
                max.as_secs_f64()
            );
        }
    }
}

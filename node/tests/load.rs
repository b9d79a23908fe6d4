//! Many users at once (issue 13, item 9): one deployment of `seco node` processes (digits-mlp,
//! gateway + 2 remotes on loopback) and several users, each its own identity in the topology,
//! each running `seco infer` processes one after another on an input of its own, all users at
//! once. Every result must equal the fixed-point reference of that user's input (no cross-talk),
//! every run ends within its bound, and the gateway counts every session closed.
//!
//! Recorded and printed (`--nocapture`): throughput (inferences per second over the whole
//! load), the latency of each `seco infer` run (end to end: process start, session open,
//! preprocessing, online phase, close; median and p95), the online phase alone (as `seco infer`
//! reports it; median and p95), and each server's peak RSS (`VmHWM` from `/proc`).
//!
//! The default run is short (3 users x 3 inferences); the soak (8 users x 20 inferences, its
//! figures in `docs/operations.md`, "Load") is opt-in:
//! `cargo test --release -p seco-node --test load -- --ignored --nocapture`.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{new_identity, reference, Deployment};

/// Longest a single `seco infer` run may take before the test kills it and fails.
const RUN_BOUND: Duration = Duration::from_secs(120);

/// What one `seco infer` run gave.
struct Run {
    user: usize,
    wall: Duration,
    online: Option<Duration>,
    fixed: Vec<i64>,
}

/// Adds users `user-1` .. `user-n` (identities of their own) to the deployment's topology.
fn add_users(d: &Deployment, n: usize) -> Vec<String> {
    let mut toml = std::fs::read_to_string(&d.topology).unwrap();
    let names: Vec<String> = (1..=n).map(|i| format!("user-{i}")).collect();
    for name in &names {
        let key = d.path(&format!("{name}.key"));
        let peer = new_identity(&key);
        toml.push_str(&format!(
            "\n[[node]]\nname = \"{name}\"\nrole = \"user\"\npeer_id = \"{peer}\"\nbootstrap = [\"gateway\"]\nidentity = \"{name}.key\"\n"
        ));
    }
    std::fs::write(&d.topology, toml).unwrap();
    names
}

/// `seco infer` as user `name` on `input`, killed if it runs longer than [`RUN_BOUND`].
fn infer(d: &Deployment, name: &str, input: &PathBuf, tag: &str) -> (bool, String, String) {
    let out = d.path(&format!("{tag}.out"));
    let err = d.path(&format!("{tag}.err"));
    let mut child = d
        .seco_command()
        .args(["infer", "--name", name, "--json", "--topology"])
        .arg(&d.topology)
        .arg("--model-part")
        .arg(d.path("parts/user.json"))
        .arg("--input")
        .arg(input)
        .env_remove("SECO_LOG")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + RUN_BOUND;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{tag}: seco infer did not end within {RUN_BOUND:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = |p: &PathBuf| std::fs::read_to_string(p).unwrap_or_default();
    (status.success(), read(&out), read(&err))
}

/// A duration as `seco infer` prints it (`fmt_duration`: "1.23 s" or "45.6 ms").
fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if let Some(ms) = s.strip_suffix(" ms") {
        return ms
            .parse::<f64>()
            .ok()
            .map(|v| Duration::from_secs_f64(v / 1e3));
    }
    let secs = s.strip_suffix(" s")?;
    secs.parse::<f64>().ok().map(Duration::from_secs_f64)
}

/// The online time of the `time: ...` line (`online X per inference`).
fn online_time(stdout: &str) -> Option<Duration> {
    let line = stdout.lines().find(|l| l.starts_with("time: "))?;
    let rest = line.split(", online ").nth(1)?;
    parse_duration(rest.strip_suffix(" per inference")?)
}

/// The signed fixed-point logits of the first JSON result line.
fn fixed_logits(stdout: &str) -> Option<Vec<i64>> {
    let line = stdout.lines().find(|l| l.starts_with('{'))?;
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    serde_json::from_value(v["fixed"].clone()).ok()
}

/// The `q`-quantile (nearest rank) of sorted durations.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Peak resident set size of a process (kB), from `/proc/PID/status`.
fn peak_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A counter of the gateway's `stats.json` once it reaches `want` (written every 0.5 s), or
/// its last value after 10 s.
fn gateway_counter(d: &Deployment, name: &str, want: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(d.path("gateway/stats.json")).unwrap_or_default();
        let stats: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let v = stats[name].as_u64().unwrap_or(0);
        if v >= want || Instant::now() > deadline {
            return v;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1e3)
}

/// `users` users at once, `rounds` `seco infer` runs each, one after another.
fn load(users: usize, rounds: usize) {
    let d = Deployment::new("digits-mlp", 3);
    let names = add_users(&d, users);
    let nodes: Vec<_> = d.servers.iter().map(|s| d.start(s)).collect();

    // Each user's input (a different test input per user) and its reference.
    let cases: Vec<(PathBuf, Vec<i64>)> = (0..users)
        .map(|u| {
            let (x, want) = reference("digits-mlp", u);
            let p = d.path(&format!("input-{u}.json"));
            std::fs::write(&p, serde_json::to_string(&x).unwrap()).unwrap();
            (p, want)
        })
        .collect();
    // Distinct inputs must give distinct references, or cross-talk could go unseen.
    for (a, (_, wa)) in cases.iter().enumerate() {
        for (_, wb) in &cases[a + 1..] {
            assert_ne!(wa, wb, "two users' inputs have the same reference");
        }
    }

    // The collective key generation runs once, before the load (a warm-up run).
    let (ok, out, err) = infer(&d, &names[0], &cases[0].0, "warmup");
    assert!(ok, "warm-up failed: {err}");
    assert_eq!(fixed_logits(&out).as_ref(), Some(&cases[0].1), "{out}");

    let t = Instant::now();
    let runs: Vec<Run> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..users)
            .map(|u| {
                let (d, name, input) = (&d, &names[u], &cases[u].0);
                s.spawn(move || {
                    (0..rounds)
                        .map(|r| {
                            let start = Instant::now();
                            let tag = format!("{name}-{r}");
                            let (ok, out, err) = infer(d, name, input, &tag);
                            assert!(ok, "{tag} failed: {err}");
                            Run {
                                user: u,
                                wall: start.elapsed(),
                                online: online_time(&out),
                                fixed: fixed_logits(&out)
                                    .unwrap_or_else(|| panic!("{tag}: no result in {out:?}")),
                            }
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a user thread failed"))
            .collect()
    });
    let elapsed = t.elapsed();

    assert_eq!(runs.len(), users * rounds);
    for r in &runs {
        assert_eq!(
            r.fixed, cases[r.user].1,
            "user {} got another result",
            r.user
        );
    }
    let total = (users * rounds) as u64;
    let rss: Vec<(String, Option<u64>)> = d
        .servers
        .iter()
        .zip(&nodes)
        .map(|(s, n)| (s.clone(), peak_rss_kb(n.child.id())))
        .collect();
    // Every session (the warm-up's too) was closed at the gateway, none aborted.
    let closed = gateway_counter(&d, "sessions_closed", total + 1);
    let inferences = gateway_counter(&d, "inferences", total + 1);
    let aborts = gateway_counter(&d, "aborts", 0);

    let mut walls: Vec<Duration> = runs.iter().map(|r| r.wall).collect();
    walls.sort();
    let mut onlines: Vec<Duration> = runs.iter().filter_map(|r| r.online).collect();
    onlines.sort();
    println!(
        "load: {users} users x {rounds} inferences (digits-mlp, 3 servers, one seco infer per inference): {total} inferences in {:.2} s, {:.2} inferences/s",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
    println!(
        "load: latency per seco infer run (open, prep, online, close): median {}, p95 {}, max {}",
        ms(quantile(&walls, 0.5)),
        ms(quantile(&walls, 0.95)),
        ms(quantile(&walls, 1.0))
    );
    println!(
        "load: online phase: median {}, p95 {}",
        ms(quantile(&onlines, 0.5)),
        ms(quantile(&onlines, 0.95))
    );
    for (s, kb) in &rss {
        match kb {
            Some(kb) => println!("load: {s} peak RSS {:.1} MiB", *kb as f64 / 1024.0),
            None => println!("load: {s} peak RSS unknown (no /proc)"),
        }
    }
    println!(
        "load: gateway counted {inferences} inferences, {closed} sessions closed, {aborts} aborts"
    );
    assert_eq!(inferences, total + 1);
    assert_eq!(closed, total + 1);
    assert_eq!(aborts, 0);
    drop(nodes);
}

#[test]
fn three_users_at_once_get_their_own_results() {
    load(3, 3);
}

#[test]
#[ignore = "soak: 8 users x 20 inferences; run with --ignored --nocapture (release)"]
fn soak_eight_users_twenty_inferences_each() {
    load(8, 20);
}

//! Issue 13, item 1: a frozen peer is detected by the heartbeat. A SIGSTOPped `seco node`
//! keeps its TCP connections open (its kernel still acknowledges), so before the heartbeat
//! only failed acks (`[timeouts] ack`, then `retry`) or a phase deadline ended the user's run.
//! Here ack, retry and the deadlines are 60 s and the heartbeat 2 s: the user's run must fail
//! with the loss of a remote server (its connection closed by the heartbeat, then not reached
//! again within the grace), not with a missing ack or a timeout; and once the remote is
//! thawed (SIGCONT) the next run gives the reference.

mod common;

use std::time::Instant;

use common::{reference, stdout, Deployment};

#[test]
fn a_frozen_remote_is_lost_through_the_heartbeat() {
    let d = Deployment::with_timeouts(
        "digits-mlp",
        3,
        "open = 60\nprep = 60\ninference = 60\nack = 60\nretry = 60\ngrace = 1\nheartbeat = 2\n",
    );
    let nodes: Vec<_> = d.servers.iter().map(|s| d.start(s)).collect();
    let (x, want) = reference("digits-mlp", 0);
    let input = d.input_file(&x);
    let infer = || d.infer(&input, &["--retries", "0", "--json"]);
    let logits = |o: &std::process::Output| -> Vec<i64> {
        let line = stdout(o)
            .lines()
            .find(|l| l.starts_with('{'))
            .map(str::to_string)
            .unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&line).expect("one JSON result line");
        serde_json::from_value(v["fixed"].clone()).unwrap()
    };
    let o = infer();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(logits(&o), want);

    nodes[1].signal("STOP");
    let started = Instant::now();
    let o = infer();
    let took = started.elapsed();
    nodes[1].signal("CONT");
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    println!("frozen remote: {took:?}: {}", err.trim());
    assert!(
        !o.status.success(),
        "the run succeeded with a frozen remote"
    );
    assert!(
        err.contains("lost a remote server") && !err.contains("no ack"),
        "not the heartbeat's loss: {err}"
    );
    let gateway = nodes[0].log_text();
    assert!(
        gateway.contains("no answer to the heartbeat"),
        "the gateway's log does not show the heartbeat"
    );

    // Thawed: the next run gives the reference.
    let o = infer();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(logits(&o), want);
}

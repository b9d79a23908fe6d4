//! Gateway, remotes and user as separate OS processes of the built `seco` on loopback: the
//! secure result equals the fixed-point reference (logits, and the label with `--output
//! label`); a node refuses peers outside its topology.

mod common;

use std::time::Duration;

use common::{reference, seco, Deployment};

#[test]
fn gateway_two_remotes_and_user_as_processes_match_the_reference() {
    let d = Deployment::new("digits-mlp", 3);
    let nodes: Vec<_> = d.servers.iter().map(|s| d.start(s)).collect();
    assert!(
        nodes[0].ready.contains("collective key absent"),
        "{}",
        nodes[0].ready
    );
    let (x, want) = reference("digits-mlp", 0);
    let input = d.input_file(&x);
    let o = d.infer(&input, &["--count", "2", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines: Vec<serde_json::Value> = common::stdout(&o)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    for l in &lines {
        let got: Vec<i64> = serde_json::from_value(l["fixed"].clone()).unwrap();
        assert_eq!(got, want);
    }
    // The gateway's counters reached its data directory.
    // (written every 0.5 s when they change).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let stats = loop {
        let text = std::fs::read_to_string(d.path("gateway/stats.json")).unwrap_or_default();
        let stats: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        if stats["inferences"] == 2 || std::time::Instant::now() > deadline {
            break stats;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(stats["inferences"], 2, "{stats}");
    assert_eq!(stats["sessions_ready"], 1);
    // `--output label`: the class only (the argmax of the reference's logits), nothing else.
    let o = d.infer(&input, &["--output", "label", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let line: serde_json::Value = common::stdout(&o)
        .lines()
        .find(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .unwrap();
    let class = seco_protocols::model::argmax(&want);
    assert_eq!(line, serde_json::json!({ "inference": 0, "class": class }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_process_refuses_peers_outside_its_topology() {
    let d = Deployment::new("digits-mlp", 2);
    let gateway = d.start("gateway");
    let topology = seco_actors::topology::Topology::load(&d.topology).unwrap();
    let gw = topology.gateway().unwrap().clone();
    let outsider = seco_runtime::identity::generate();
    let mut cfg = seco_runtime::net::NetConfig::loopback([gw.peer_id]);
    cfg.ack_timeout = Duration::from_secs(3);
    let (client, _events, _task) = seco_runtime::net::spawn(outsider, cfg).unwrap();
    let _ = client.dial(gw.dial_addresses()[0].clone()).await;
    let env = seco_runtime::net::Envelope::new(
        seco_runtime::net::SessionId([1; 16]),
        seco_actors::wire::SECO_KIND,
        0,
        b"hello".to_vec(),
    );
    assert!(client.send(gw.peer_id, env).await.is_err());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !gateway.log_text().contains("outside the allowlist") {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            gateway.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    client.shutdown().await;
}

/// Issue 13, items 2 and 11: a `user.json` whose fixed point differs from the deployment's is
/// refused at the session's open with the reason (it used to give wrong logits with exit code
/// 0); a proper run closes its session at the end, which the gateway counts at once.
#[test]
fn a_mismatched_user_part_is_refused_and_a_finished_run_closes_its_session() {
    let d = Deployment::new("digits-mlp", 3);
    let _nodes: Vec<_> = d.servers.iter().map(|s| d.start(s)).collect();
    let (x, want) = reference("digits-mlp", 0);
    let input = d.input_file(&x);
    let user = d.path("parts/user.json");
    let mut part: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&user).unwrap()).unwrap();
    part["fixed_point"]["frac_bits"] = serde_json::json!(12);
    let other = d.path("other-user.json");
    std::fs::write(&other, serde_json::to_string(&part).unwrap()).unwrap();
    let infer = |part: &std::path::Path| {
        seco(&[
            "infer",
            "--topology",
            d.topology.to_str().unwrap(),
            "--model-part",
            part.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--json",
        ])
    };
    let o = infer(&other);
    common::assert_one_line_error(&o, "does not match the deployment");
    assert!(common::stdout(&o).is_empty(), "{}", common::stdout(&o));
    let o = infer(&user);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let line: serde_json::Value =
        serde_json::from_str(common::stdout(&o).lines().next().unwrap()).unwrap();
    let got: Vec<i64> = serde_json::from_value(line["fixed"].clone()).unwrap();
    assert_eq!(got, want);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let stats = loop {
        let text = std::fs::read_to_string(d.path("gateway/stats.json")).unwrap_or_default();
        let stats: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        if stats["sessions_closed"] == 1 || std::time::Instant::now() > deadline {
            break stats;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(stats["sessions_closed"], 1, "{stats}");
    assert_eq!(stats["aborts"], 1, "the refused session: {stats}");
}

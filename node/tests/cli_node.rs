//! Bad input to `seco identity|node|infer|demo`: each ends with exit code != 0 and a one-line
//! `error: ...` naming what is wrong (missing topology, unknown role, unreadable data dir, wrong
//! model part for this node, bad input file, ...).

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{assert_one_line_error, seco, Deployment};
use seco_protocols::model::LinearOp;
use seco_protocols::plan::ServerPart;

/// `seco node` with these arguments fails with a one-line error containing `needle`.
fn node_refuses(topo: &str, role: &str, name: &str, data: &str, part: &str, needle: &str) {
    let o = seco(&[
        "node",
        "--topology",
        topo,
        "--role",
        role,
        "--name",
        name,
        "--data-dir",
        data,
        "--part",
        part,
    ]);
    assert_one_line_error(&o, needle);
}

/// `seco infer` with this topology, user model part and input file.
fn infer(topo: &str, part: &str, input: &str) -> std::process::Output {
    seco(&[
        "infer",
        "--topology",
        topo,
        "--model-part",
        part,
        "--input",
        input,
    ])
}

#[test]
fn identity_new_show_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("a.key");
    let k = key.to_str().unwrap();
    let peer = common::new_identity(&key);
    assert!(peer.starts_with("12D3KooW"), "{peer}");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let o = seco(&["identity", "show", "--file", k]);
    assert!(o.status.success());
    assert_eq!(common::stdout(&o).trim(), peer);
    assert_one_line_error(&seco(&["identity", "new", "--file", k]), "exists already");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_one_line_error(&seco(&["identity", "show", "--file", k]), "expected 600");
    let missing = dir.path().join("nope/b.key");
    assert_one_line_error(
        &seco(&["identity", "show", "--file", missing.to_str().unwrap()]),
        "No such file",
    );
}

#[test]
fn node_refuses_bad_input_with_one_line() {
    let d = Deployment::new("digits-mlp", 3);
    let topo = d.topology.to_str().unwrap().to_string();
    let data = |n: &str| d.path(n).to_str().unwrap().to_string();
    let part = |n: &str| d.path(&format!("parts/{n}")).to_str().unwrap().to_string();
    let (data1, data2) = (data("remote-1"), data("remote-2"));
    let (part1, part2) = (part("remote-1"), part("remote-2"));
    // A topology with an unknown role in the file.
    let bad_role = d.path("bad-role.toml");
    let text = std::fs::read_to_string(&d.topology).unwrap().replacen(
        "role = \"remote\"",
        "role = \"relay\"",
        1,
    );
    std::fs::write(&bad_role, text).unwrap();
    // A data directory that is a file; one without an identity.
    let file = d.path("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let empty = d.path("empty");
    // remote-1's part of another split of the same model.
    let other = d.path("other");
    let o = seco(&[
        "model",
        "split",
        "models/mnist-mlp",
        "--out",
        other.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    let other_part = other.join("remote-1");
    let missing_part = part("nope");

    let (topo, remote) = (topo.as_str(), "remote");
    #[rustfmt::skip]
    let cases: [(&str, &str, &str, &str, &str, &str); 11] = [
        // Missing topology.
        ("/nonexistent/topology.toml", remote, "remote-1", &data1, &part1, "cannot read topology"),
        // Unknown role on the command line, and in the file.
        (topo, "relay", "remote-1", &data1, &part1, "unknown role \"relay\""),
        (bad_role.to_str().unwrap(), remote, "remote-1", &data1, &part1, "unknown role \"relay\""),
        // A role or name the topology does not have.
        (topo, "gateway", "remote-1", &data1, &part1, "is a remote in the topology"),
        (topo, remote, "remote-9", &data1, &part1, "no node called \"remote-9\""),
        // Unreadable data directory (a file).
        (topo, remote, "remote-1", file.to_str().unwrap(), &part1, "is not a directory"),
        // No identity in the data directory; an identity of another peer.
        (topo, remote, "remote-1", empty.to_str().unwrap(), &part1, "no identity at"),
        (topo, remote, "remote-1", &data2, &part1, "but the topology says"),
        // The model part of another node, of another split, missing.
        (topo, remote, "remote-1", &data1, &part2, "wrong model part for node \"remote-1\""),
        (topo, remote, "remote-1", &data1, other_part.to_str().unwrap(), "wrong model part"),
        (topo, remote, "remote-1", &data1, &missing_part, "cannot load model part"),
    ];
    for (topo, role, name, data, part, needle) in cases {
        node_refuses(topo, role, name, data, part, needle);
    }
}

#[test]
fn node_refuses_an_identity_that_is_not_the_topologys() {
    let d = Deployment::new("digits-mlp", 2);
    let topo = d.topology.to_str().unwrap().to_string();
    // remote-1's data directory with the gateway's key.
    std::fs::copy(
        d.path("gateway/identity.key"),
        d.path("remote-1/identity.key"),
    )
    .unwrap();
    node_refuses(
        &topo,
        "remote",
        "remote-1",
        d.path("remote-1").to_str().unwrap(),
        d.path("parts/remote-1").to_str().unwrap(),
        "but the topology says",
    );
}

/// A part whose weights miss the noise budget (remote-1's digits-mlp layer scaled by 2^20):
/// `seco node` refuses to start, naming the layer, the bits it reaches and the target.
#[test]
fn node_refuses_a_part_over_the_noise_budget() {
    let d = Deployment::new("digits-mlp", 2);
    let topo = d.topology.to_str().unwrap().to_string();
    let dir = d.path("parts/remote-1");
    let mut part = ServerPart::load(&dir).unwrap();
    for (_, op) in &mut part.owned {
        if let LinearOp::Dense(dense) = op {
            dense.weight.iter_mut().for_each(|w| *w <<= 20);
        }
    }
    part.save(&dir).unwrap();
    node_refuses(
        &topo,
        "remote",
        "remote-1",
        d.path("remote-1").to_str().unwrap(),
        dir.to_str().unwrap(),
        "layer \"fc2\": flooding statistical security reaches",
    );
}

#[test]
fn infer_and_demo_refuse_bad_input_with_one_line() {
    let d = Deployment::new("digits-mlp", 2);
    let topo = d.topology.to_str().unwrap();
    let user = d.path("parts/user.json");
    let user = user.to_str().unwrap();
    let input = d.input_file(&[0.5; 64]);
    let input = input.to_str().unwrap();
    assert_one_line_error(
        &infer("/nonexistent.toml", user, input),
        "cannot read topology",
    );
    assert_one_line_error(
        &infer(topo, "/nonexistent.json", input),
        "cannot read model part",
    );
    let gw_part = d.path("parts/gateway/part.cbor");
    assert_one_line_error(
        &infer(topo, gw_part.to_str().unwrap(), input),
        "cannot read model part",
    );
    assert_one_line_error(&infer(topo, topo, input), "not a user model part");
    let bad = d.path("bad.json");
    std::fs::write(&bad, "[1, 2, \"three\"]").unwrap();
    assert_one_line_error(
        &infer(topo, user, bad.to_str().unwrap()),
        "is not a JSON array",
    );
    std::fs::write(&bad, "[1, 2, 3]").unwrap();
    assert_one_line_error(
        &infer(topo, user, bad.to_str().unwrap()),
        "the input has 3 values",
    );
    assert_one_line_error(
        &infer(topo, user, "/nonexistent-input.json"),
        "cannot read input",
    );
    assert_one_line_error(&seco(&["demo", "--servers", "1"]), "at least 2");
    assert_one_line_error(
        &seco(&["demo", "--model", "no-such-model"]),
        "no model \"no-such-model\"",
    );
}

#[test]
fn infer_without_a_running_gateway_fails_with_one_line() {
    let d = Deployment::new("digits-mlp", 2);
    let fast = std::fs::read_to_string(&d.topology)
        .unwrap()
        .replace("ack = 5\n", "ack = 1\nretry = 1\nopen = 5\n");
    std::fs::write(&d.topology, fast).unwrap();
    let input = d.input_file(&[0.5; 64]);
    let started = std::time::Instant::now();
    let o = infer(
        d.topology.to_str().unwrap(),
        d.path("parts/user.json").to_str().unwrap(),
        input.to_str().unwrap(),
    );
    assert_one_line_error(&o, "lost the gateway");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

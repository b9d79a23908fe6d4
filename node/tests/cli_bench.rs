//! `seco bench` and `seco demo` from the command line: bad input ends with exit code != 0 and a
//! one-line `error: ...`; a model directory without a test set runs on drawn inputs and says
//! there are no reference labels; `--deploy processes --network lan` passes every link through
//! the shaping relays (loopback only) and matches the reference.

mod common;

use common::{assert_one_line_error, repo, seco, stdout};

#[test]
fn bench_refuses_bad_input_with_one_line() {
    assert_one_line_error(
        &seco(&["bench", "--model", "no-such-model"]),
        "no model \"no-such-model\"",
    );
    assert_one_line_error(&seco(&["bench", "--servers", "1"]), "between 2 and");
    assert_one_line_error(&seco(&["bench", "--servers", "65"]), "between 2 and");
    assert_one_line_error(
        &seco(&["bench", "--network", "wan"]),
        "needs --deploy processes",
    );
    assert_one_line_error(
        &seco(&["bench", "--deploy", "processes", "--rtt", "40ms"]),
        "use them with --network lan or wan",
    );
    let shaped = ["bench", "--deploy", "processes", "--network", "wan"];
    let with = |flag: &str, v: &str| {
        let mut a = shaped.to_vec();
        a.extend([flag, v]);
        seco(&a)
    };
    assert_one_line_error(&with("--rate", "0mbit"), "cannot be applied");
    assert_one_line_error(&with("--rate", "fast"), "--rate \"fast\"");
    assert_one_line_error(&with("--rtt", "20s"), "cannot be applied");
    assert_one_line_error(&with("--rtt", "5 parsecs"), "unknown unit");
    assert_one_line_error(&seco(&["bench", "--inputs", "0"]), "at least 1");
    assert_one_line_error(
        &seco(&["demo", "--input", "/nonexistent-input.json"]),
        "cannot read input",
    );
}

/// digits-mlp without its test set, as an imported model would be.
fn model_without_test_set() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in ["model.json", "model.safetensors"] {
        std::fs::copy(repo().join("models/digits-mlp").join(f), dir.path().join(f)).unwrap();
    }
    dir
}

#[test]
fn bench_and_demo_run_a_model_directory_without_a_test_set() {
    let dir = model_without_test_set();
    let model = dir.path().to_str().unwrap();
    let o = seco(&[
        "bench",
        "--model",
        model,
        "--servers",
        "2",
        "--inputs",
        "2",
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["reference_labels"], false);
    assert!(v["input_source"].as_str().unwrap().contains("uniformly"));
    assert_eq!(v["runs"][0]["deploy"], "inprocess");
    assert_eq!(v["runs"][0]["bit_exact"], 2);

    let o = seco(&["demo", "--model", model, "--servers", "2", "--inputs", "1"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = stdout(&o);
    assert!(out.contains("no reference labels"), "{out}");
    assert!(out.contains("label none"), "{out}");
    assert!(out.contains("logits equal: yes"), "{out}");
}

#[test]
fn bench_processes_over_shaped_lan_links_match_the_reference() {
    let o = seco(&[
        "bench",
        "--deploy",
        "processes",
        "--network",
        "lan",
        "--model",
        "digits-mlp",
        "--servers",
        "2",
        "--inputs",
        "2",
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["reference_labels"], true);
    let shaped = &v["runs"][0];
    assert_eq!(shaped["deploy"], "processes");
    assert_eq!(shaped["network"], "lan");
    assert_eq!(shaped["rtt_ms"], 0.5);
    assert_eq!(shaped["bit_exact"], 2);
    // At least user-gateway and gateway-remote went through a relay.
    assert!(
        shaped["shaped_connections"].as_u64().unwrap() >= 2,
        "{shaped}"
    );
    assert_eq!(shaped["online"]["n"], 2);
    for party in ["gateway", "remote-1", "user"] {
        assert!(
            shaped["parties"][party]["online"]["bytes_sent"]
                .as_u64()
                .unwrap()
                > 0,
            "{party}: {shaped}"
        );
    }
    assert_eq!(v["runs"][1]["deploy"], "inprocess");
    assert_eq!(v["runs"][1]["bit_exact"], 2);
}

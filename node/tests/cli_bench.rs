//! `seco bench` and `seco demo` from the command line: bad input ends with exit code != 0 and a
//! one-line `error: ...`; a model directory without a test set runs on drawn inputs and says
//! there are no reference labels; `--deploy processes --network lan` passes every link through
//! the shaping relays (loopback only) and matches the reference.

mod common;

use std::path::Path;

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

/// A stored `seco bench --json` document of digits-mlp with 2 servers, in-process, whose
/// medians are all `ms`.
fn stored_bench(dir: &std::path::Path, name: &str, model: &str, ms: f64) -> String {
    let spread = serde_json::json!({"n": 1, "median_ms": ms, "min_ms": ms, "max_ms": ms});
    let doc = serde_json::json!({
        "tool": "seco-rs", "model": model, "servers": 2, "inputs": 1,
        "runs": [{"deploy": "inprocess", "network": "none",
                  "open": spread, "prep": spread, "online": spread}],
    });
    let path = dir.join(name);
    std::fs::write(&path, doc.to_string()).unwrap();
    path.to_str().unwrap().to_string()
}

fn check(file: &str, extra: &[&str]) -> std::process::Output {
    let mut a = vec![
        "bench",
        "--model",
        "digits-mlp",
        "--servers",
        "2",
        "--inputs",
        "1",
        "--check",
        file,
    ];
    a.extend(extra);
    seco(&a)
}

#[test]
fn bench_check_fails_on_a_slowdown_and_passes_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    // Stored figures no run can beat: every phase is a slowdown.
    let fast = stored_bench(dir.path(), "fast.json", "digits-mlp", 1e-9);
    let o = check(&fast, &["--tolerance", "10"]);
    let (out, err) = (stdout(&o), String::from_utf8_lossy(&o.stderr).to_string());
    assert!(!o.status.success(), "{out}");
    let verdicts: Vec<&str> = out.lines().filter(|l| l.starts_with("check ")).collect();
    assert_eq!(verdicts.len(), 3, "{out}");
    for (v, phase) in verdicts.iter().zip(["open", "prep", "online"]) {
        assert!(v.contains(&format!("inprocess/none, {phase}:")), "{v}");
        assert!(v.ends_with("SLOWER"), "{v}");
    }
    assert!(err.contains("3 of 3 phases slower"), "{err}");
    assert!(err.contains("more than 10%"), "{err}");

    // Stored figures no run is slower than: passes, one `ok` per phase.
    let slow = stored_bench(dir.path(), "slow.json", "digits-mlp", 1e9);
    let o = check(&slow, &[]);
    let out = stdout(&o);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        out.lines().filter(|l| l.ends_with(": ok")).count(),
        3,
        "{out}"
    );
    assert!(out.contains("check passed"), "{out}");
    assert!(out.contains("tolerance 25%"), "{out}");

    // With --json the verdicts go to stderr and stdout stays one JSON document.
    let o = check(&slow, &["--json"]);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["tool"], "seco-rs");
    assert!(v["machine"]["cores"].as_u64().unwrap() >= 1);
    assert!(String::from_utf8_lossy(&o.stderr).contains("check passed"));
}

#[test]
fn bench_check_and_report_refuse_bad_input_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let other = stored_bench(dir.path(), "other.json", "mnist-mlp", 1.0);
    assert_one_line_error(&check(&other, &[]), "holds mnist-mlp with 2 servers");
    assert_one_line_error(&check("/nonexistent.json", &[]), "cannot read");
    let ok = stored_bench(dir.path(), "ok.json", "digits-mlp", 1.0);
    assert_one_line_error(&check(&ok, &["--tolerance=-5"]), "--tolerance");
    let crypten = dir.path().join("crypten.json");
    std::fs::write(
        &crypten,
        r#"{"tool": "crypten", "model": "digits-mlp", "runs": []}"#,
    )
    .unwrap();
    assert_one_line_error(
        &check(crypten.to_str().unwrap(), &[]),
        "not a seco bench --json document",
    );
    assert_one_line_error(
        &seco(&["bench", "--model", "digits-mlp", "--servers", "20"]),
        "supports 2 to 16",
    );
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{bad").unwrap();
    let report = |from: &std::path::Path, out: &str| {
        seco(&["report", "--from", from.to_str().unwrap(), "--out", out])
    };
    assert_one_line_error(&report(&bad, "x.md"), "is not a bench JSON document");
    let missing = dir.path().join("no-such-dir/perf.md");
    assert_one_line_error(
        &report(Path::new(&ok), missing.to_str().unwrap()),
        "no directory",
    );
    assert!(!dir.path().join("no-such-dir").exists());
    let empty = tempfile::tempdir().unwrap();
    assert_one_line_error(
        &seco(&["report", "--from", empty.path().to_str().unwrap()]),
        "no bench JSON files",
    );
}

#[test]
fn report_writes_tables_ratios_and_plots_between_its_markers() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    std::fs::create_dir(&results).unwrap();
    let usage = |b: u64| serde_json::json!({"bytes_sent": b, "bytes_received": b, "messages": 4, "cpu_ms": 1.0});
    let spread = |ms: f64| serde_json::json!({"n": 5, "median_ms": ms, "min_ms": ms, "max_ms": ms});
    let machine = serde_json::json!({"cores": 2, "cpu_model": "Test CPU", "date": "2026-12-05T12:00:00Z", "load_1m": 0.5});
    let seco_doc = serde_json::json!({
        "tool": "seco-rs", "machine": machine, "model": "mnist-mlp", "servers": 3, "inputs": 5,
        "model_parameters": 1000, "model_bytes": 4000, "plaintext": spread(0.05),
        "runs": [{"deploy": "processes", "network": "loopback", "open": spread(100.0),
                  "prep": spread(200.0), "online": spread(20.0),
                  "parties": {"user": {"prep": usage(1000), "online": usage(1000)},
                              "gateway": {"online": usage(5000)}},
                  "messages": {"online": 16}}],
    });
    let crypten_doc = serde_json::json!({
        "tool": "crypten", "version": "0.4.1", "machine": machine, "model": "mnist-mlp",
        "servers": 3, "inputs": 5,
        "runs": [{"deploy": "processes", "network": "loopback", "provider": "trusted-first-party",
                  "open": spread(300.0), "online": spread(200.0), "input_owner": "party-0",
                  "parties": {"party-0": {"online": usage(40000)}}}],
    });
    std::fs::write(results.join("seco.json"), seco_doc.to_string()).unwrap();
    std::fs::write(results.join("crypten.json"), crypten_doc.to_string()).unwrap();
    let out = dir.path().join("perf.md");
    std::fs::write(&out, "# Hand-written\n\nkept text\n").unwrap();
    for _ in 0..2 {
        let o = seco(&[
            "report",
            "--from",
            results.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(stdout(&o).contains("online 10.0x faster"), "{}", stdout(&o));
    }
    let md = std::fs::read_to_string(&out).unwrap();
    assert!(md.starts_with("# Hand-written\n\nkept text\n"), "{md}");
    assert_eq!(md.matches("<!-- BEGIN seco report").count(), 1, "{md}");
    assert!(md.contains("Test CPU"), "{md}");
    // 200 ms / 20 ms online; 80000 B / 4000 B at the input owner.
    assert!(md.contains("| 10.0x |"), "{md}");
    assert!(md.contains("| 20.0x |"), "{md}");
    assert!(
        md.contains("![Online time per inference](performance/online.svg)"),
        "{md}"
    );
    let svg = std::fs::read_to_string(dir.path().join("performance/online.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("crypten"), "{svg}");
}

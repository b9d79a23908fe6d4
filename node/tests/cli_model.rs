//! `seco model ...` as a user runs it: success paths print what they should, bad input ends
//! with exit code != 0 and a one-line `error: ...`.

mod common;

use common::{assert_one_line_error, repo, seco, stdout};

#[test]
fn inspect_predict_and_split_work() {
    let o = seco(&["model", "inspect", "models/digits-cnn"]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("conv2d conv1 1->4"));
    let o = seco(&["model", "predict", "models/digits-mlp", "--limit", "20"]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("accuracy float"));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let o = seco(&["model", "split", "models/mnist-mlp", "--out", out]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for f in [
        "plan.toml",
        "user.json",
        "gateway/part.cbor",
        "remote-2/part.cbor",
    ] {
        assert!(dir.path().join(f).exists(), "{f}");
    }
    // The written plan can be read back as a hand-written plan.
    let plan = dir.path().join("plan.toml");
    let o = seco(&[
        "model",
        "split",
        "models/mnist-mlp",
        "--plan",
        plan.to_str().unwrap(),
        "--out",
        out,
    ]);
    assert!(o.status.success());
}

#[test]
fn predict_one_input_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("x.json");
    let predict = || {
        seco(&[
            "model",
            "predict",
            "models/digits-mlp",
            "--input",
            input.to_str().unwrap(),
        ])
    };
    std::fs::write(&input, serde_json::to_string(&vec![0.5f32; 64]).unwrap()).unwrap();
    let o = predict();
    assert!(o.status.success());
    assert!(stdout(&o).contains("fixed class"));
    std::fs::write(&input, "[1, 2, 3]").unwrap();
    let o = predict();
    assert_one_line_error(&o, "expects 64");
    std::fs::write(&input, "{not json").unwrap();
    let o = predict();
    assert_one_line_error(&o, "not a JSON array");
}

#[test]
fn bad_input_gives_one_line_errors() {
    assert_one_line_error(
        &seco(&["model", "inspect", "no/such/model"]),
        "cannot load model",
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo().join("models/digits-mlp/model.json"),
        dir.path().join("model.json"),
    )
    .unwrap();
    std::fs::write(dir.path().join("model.safetensors"), b"garbage").unwrap();
    let o = seco(&["model", "inspect", dir.path().to_str().unwrap()]);
    assert_one_line_error(&o, "weights");
    let plan = dir.path().join("plan.toml");
    std::fs::write(&plan, "model = \"digits-mlp\"\nservers = [\"g\", \"r\"]\n[owners]\nfc1 = \"g\"\nfc2 = \"nobody\"\n").unwrap();
    let o = seco(&[
        "model",
        "split",
        "models/digits-mlp",
        "--plan",
        plan.to_str().unwrap(),
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert_one_line_error(&o, "unknown server \"nobody\"");
    let o = seco(&[
        "model",
        "split",
        "models/digits-mlp",
        "--servers",
        "only",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert_one_line_error(&o, "need 2 to");
}

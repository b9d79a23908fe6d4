//! `seco model ...` as a user runs it: success paths print what they should, bad input ends
//! with exit code != 0 and a one-line `error: ...`.

mod common;

use common::{assert_one_line_error, repo, seco, stdout};
use seco_protocols::fixed::FixedPoint;
use seco_protocols::model::{Conv2d, Dense, Layer, Model};

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

/// The parameter check (`plan::budget`) at split: a model whose layer misses the noise or
/// flooding budget, or whose input plane exceeds N, is refused with the layer's name and the
/// figures, and nothing is written.
#[test]
fn split_refuses_models_that_do_not_fit_the_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let split = |model: &str, servers: &str, out: &std::path::Path| {
        seco(&[
            "model",
            "split",
            model,
            "--servers",
            servers,
            "--out",
            out.to_str().unwrap(),
        ])
    };
    // A dense layer with weights of 2^20: its output noise is too large for the flooding to
    // hide at 40 bits, at N = 4096 and at N = 8192.
    let loud = dir.path().join("loud");
    loud_model().save(&loud).unwrap();
    let out = dir.path().join("loud3");
    let o = split(loud.to_str().unwrap(), "gateway,remote-1,remote-2", &out);
    assert_one_line_error(&o, "layer \"fc1\": flooding statistical security reaches");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("with 3 servers, target 40.0 bits"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!out.exists(), "parts written for a refused model");
    // cifar-cnn's conv1 reveals 16384 coefficients and passes with 3 servers.
    let o = split(
        "models/cifar-cnn",
        "gateway,remote-1,remote-2",
        &dir.path().join("cifar3"),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout(&o).contains("weakest layer"), "{}", stdout(&o));

    // A convolution on a 100x100 plane (102x102 = 10404 padded coefficients > N = 8192).
    let big = dir.path().join("big");
    let conv = Conv2d {
        name: "wide".into(),
        in_channels: 1,
        out_channels: 1,
        kernel: [3, 3],
        stride: [2, 2],
        padding: [1, 1],
        weight: vec![0.1; 9],
        bias: vec![0.0],
    };
    let dense = Dense {
        name: "out".into(),
        in_features: 50 * 50,
        out_features: 2,
        weight: vec![0.01; 2 * 50 * 50],
        bias: vec![0.0; 2],
    };
    let layers = vec![
        Layer::Conv2d(conv),
        Layer::Relu,
        Layer::Flatten,
        Layer::Dense(dense),
    ];
    Model::new(
        "wide".into(),
        "a plane larger than N".into(),
        vec![1, 100, 100],
        FixedPoint::default(),
        layers,
    )
    .unwrap()
    .save(&big)
    .unwrap();
    let out = dir.path().join("wide");
    let o = split(big.to_str().unwrap(), "gateway,remote-1", &out);
    assert_one_line_error(
        &o,
        "layer \"wide\": padded input plane (coefficients) of 10404 exceeds the limit of 8192",
    );
    assert!(!out.exists(), "parts written for a refused model");
}

/// A model whose first layer's weights (4096.0) put its output noise beyond the flooding budget.
fn loud_model() -> Model {
    let fc1 = Dense {
        name: "fc1".into(),
        in_features: 64,
        out_features: 32,
        weight: vec![1_048_576.0; 64 * 32],
        bias: vec![0.0; 32],
    };
    let fc2 = Dense {
        name: "fc2".into(),
        in_features: 32,
        out_features: 10,
        weight: vec![0.5; 32 * 10],
        bias: vec![0.0; 10],
    };
    Model::new(
        "loud".into(),
        "weights too large for the flooding".into(),
        vec![64],
        FixedPoint::default(),
        vec![Layer::Dense(fc1), Layer::Relu, Layer::Dense(fc2)],
    )
    .unwrap()
}

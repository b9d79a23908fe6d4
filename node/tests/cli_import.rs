//! `seco model import`: shipped ONNX exports import to the shipped models; every bad case
//! exits with a one-line error and a non-zero code.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use prost::Message;

use seco_protocols::model::Model;
use seco_protocols::onnx::proto::ModelProto;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn seco(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_seco"))
        .args(args)
        .output()
        .expect("run seco")
}

fn import(file: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "model",
        "import",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(extra);
    seco(&args)
}

#[test]
fn shipped_cnn_imports_to_the_shipped_model() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("digits-cnn");
    let onnx = root().join("models/digits-cnn/model.onnx");
    let run = import(&onnx, &out, &["--frac-bits", "10"]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("conv2d conv1 1->4"), "{stdout}");
    let imported = Model::load(&out).unwrap();
    let shipped = Model::load(root().join("models/digits-cnn")).unwrap();
    assert_eq!(imported.name, "digits-cnn");
    assert_eq!(imported.layers, shipped.layers);
    assert_eq!(imported.fixed_point, shipped.fixed_point);
    // An existing model is not overwritten without --force.
    let again = import(&onnx, &out, &[]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    let forced = import(
        &onnx,
        &out,
        &["--force", "--name", "renamed", "--frac-bits", "8"],
    );
    assert!(forced.status.success());
    let m = Model::load(&out).unwrap();
    assert_eq!((m.name.as_str(), m.fixed_point.frac_bits), ("renamed", 8));
}

#[test]
fn bad_files_exit_nonzero_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str)] = &[
        (
            "bad_sigmoid",
            "Sigmoid is not supported: only ReLU non-linearities",
        ),
        ("bad_softmax", "without the final Softmax"),
        ("bad_opset3", "unsupported opset"),
        ("bad_opset_future", "unsupported opset"),
        ("bad_dynamic_dim", "is dynamic"),
        ("bad_external_data", "external data"),
        ("bad_truncated", "not a valid ONNX model"),
        ("bad_float64", "DOUBLE"),
        ("bad_depthwise", "group = 4"),
        ("bad_asymmetric_pads", "asymmetric"),
        ("bad_residual", "linear chains"),
        ("does_not_exist", "cannot read"),
    ];
    for (case, needle) in cases {
        let file = root().join(format!("protocols/testdata/onnx/{case}.onnx"));
        let out = dir.path().join(case);
        let run = import(&file, &out, &[]);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(!run.status.success(), "{case}: exit code 0");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{case}: {stderr}");
        assert!(stderr.starts_with("error: "), "{case}: {stderr}");
        assert!(stderr.contains(needle), "{case}: {stderr}");
        assert!(!out.join("model.json").exists(), "{case}: wrote a model");
    }
    let run = import(
        &root().join("models/digits-mlp/model.onnx"),
        &dir.path().join("f"),
        &["--frac-bits", "16"],
    );
    assert!(!run.status.success());
}

/// The parameter check at import: with f = 15 cifar-cnn's conv1 misses the 40-bit flooding
/// target even with 2 servers (38.9 bits), so no deployment could run it: refused, nothing
/// written. At f = 10 the import says how many servers digits-cnn fits.
/// An export whose first matrix has weights of 2^20: no BFV set (4096 or 8192) reaches the
/// 40-bit flooding target for that layer, so import refuses it with the layer's figures and
/// writes nothing. Models that fit report the servers they fit.
#[test]
fn import_refuses_a_model_over_the_noise_budget() {
    let dir = tempfile::tempdir().unwrap();
    let onnx = dir.path().join("loud.onnx");
    std::fs::write(&onnx, loud_export()).unwrap();
    let out = dir.path().join("loud");
    let run = import(&onnx, &out, &[]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success());
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: ")
            && stderr.contains("flooding statistical security reaches")
            && stderr.contains("with 2 servers, target 40.0 bits"),
        "{stderr}"
    );
    assert!(!out.join("model.json").exists(), "wrote a refused model");
    // cifar-cnn at f = 15 misses the target at N = 4096 and is imported for N = 8192.
    let run = import(
        &root().join("models/cifar-cnn/model.onnx"),
        &dir.path().join("f15"),
        &["--frac-bits", "15"],
    );
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let onnx = root().join("models/digits-cnn/model.onnx");
    let run = import(&onnx, &dir.path().join("f10"), &["--frac-bits", "10"]);
    assert!(run.status.success());
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("fits 2 to"), "{stdout}");
}

/// digits-mlp's ONNX export with every weight of its first matrix set to 2^20.
fn loud_export() -> Vec<u8> {
    let bytes = std::fs::read(root().join("models/digits-mlp/model.onnx")).unwrap();
    let mut model = ModelProto::decode(bytes.as_slice()).unwrap();
    let graph = model.graph.as_mut().unwrap();
    let first = graph
        .initializer
        .iter_mut()
        .find(|t| t.dims.len() == 2)
        .expect("a weight matrix");
    let count: i64 = first.dims.iter().product();
    first.float_data.clear();
    first.raw_data = (0..count)
        .flat_map(|_| 1_048_576f32.to_le_bytes())
        .collect();
    model.encode_to_vec()
}

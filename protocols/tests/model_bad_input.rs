//! Bad model files, test sets, plans and parts: typed errors, never a panic.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use seco_protocols::model::{Manifest, Model, ModelError, TestSet};
use seco_protocols::plan::{PlanError, PlanFile, ServerPart, SplitPlan};

fn shipped(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../models")
        .join(name)
}

/// A copy of digits-mlp in a temporary directory, to be damaged.
fn copy_model(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in ["model.json", "model.safetensors", "test.safetensors"] {
        std::fs::copy(shipped(name).join(f), dir.path().join(f)).unwrap();
    }
    dir
}

fn edit_manifest(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("model.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(path, v.to_string()).unwrap();
}

#[test]
fn truncated_weight_file() {
    let dir = copy_model("digits-mlp");
    let w = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&w).unwrap();
    std::fs::write(&w, &bytes[..bytes.len() / 2]).unwrap();
    assert!(matches!(
        Model::load(dir.path()),
        Err(ModelError::Weights(_))
    ));
    std::fs::write(&w, &bytes[..5]).unwrap();
    assert!(matches!(
        Model::load(dir.path()),
        Err(ModelError::Weights(_))
    ));
}

#[test]
fn corrupt_weight_file() {
    let dir = copy_model("digits-mlp");
    let w = dir.path().join("model.safetensors");
    let mut bytes = std::fs::read(&w).unwrap();
    // Claim a gigantic header length.
    bytes[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    std::fs::write(&w, &bytes).unwrap();
    assert!(matches!(
        Model::load(dir.path()),
        Err(ModelError::Weights(_))
    ));
    std::fs::write(&w, b"not a safetensors file at all").unwrap();
    assert!(matches!(
        Model::load(dir.path()),
        Err(ModelError::Weights(_))
    ));
}

#[test]
fn shape_mismatch_between_manifest_and_weights() {
    let dir = copy_model("digits-mlp");
    edit_manifest(dir.path(), |v| v["layers"][0]["in_features"] = 65.into());
    let err = Model::load(dir.path()).unwrap_err();
    assert!(matches!(err, ModelError::ShapeMismatch { .. }), "{err}");
}

#[test]
fn layer_shapes_that_do_not_chain() {
    let dir = copy_model("digits-mlp");
    edit_manifest(dir.path(), |v| v["input_shape"] = serde_json::json!([63]));
    let err = Model::load(dir.path()).unwrap_err();
    assert!(matches!(err, ModelError::Structure { .. }), "{err}");
}

#[test]
fn nan_and_inf_weights() {
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let dir = tempfile::tempdir().unwrap();
        let mut model = Model::load(shipped("digits-mlp")).unwrap();
        if let seco_protocols::model::Layer::Dense(d) = &mut model.layers[0] {
            d.weight[7] = bad;
        }
        // Written through the raw parts, since `Model::new` would refuse it.
        let (manifest, tensors) = model.to_parts();
        std::fs::write(dir.path().join("model.json"), manifest.to_json()).unwrap();
        let st = tensors
            .iter()
            .map(|(n, t)| {
                let view = safetensors::tensor::TensorView::new(t.dtype, t.shape.clone(), &t.data)
                    .unwrap();
                (n.clone(), view)
            })
            .collect::<Vec<_>>();
        let bytes = safetensors::serialize(st, &None).unwrap();
        std::fs::write(dir.path().join("model.safetensors"), bytes).unwrap();
        let err = Model::load(dir.path()).unwrap_err();
        assert!(
            matches!(err, ModelError::NotFinite { index: 7, .. }),
            "{err}"
        );
    }
}

#[test]
fn weights_too_large_for_the_ring() {
    let mut model = Model::load(shipped("digits-mlp")).unwrap();
    if let seco_protocols::model::Layer::Dense(d) = &mut model.layers[0] {
        d.weight[0] = 1e9;
    }
    let err = model.with_fixed_point(model.fixed_point).unwrap_err();
    assert!(matches!(err, ModelError::Quantize { .. }), "{err}");
}

#[test]
fn absurd_dimensions_are_refused_before_allocation() {
    let dir = copy_model("digits-mlp");
    edit_manifest(dir.path(), |v| {
        v["layers"][0]["in_features"] = (1u64 << 20).into();
        v["layers"][0]["out_features"] = (1u64 << 20).into();
    });
    let err = Model::load(dir.path()).unwrap_err();
    assert!(matches!(err, ModelError::BadDimensions { .. }), "{err}");
    let dir = copy_model("digits-mlp");
    edit_manifest(dir.path(), |v| {
        v["input_shape"] = serde_json::json!([1u64 << 40])
    });
    let err = Model::load(dir.path()).unwrap_err();
    assert!(matches!(err, ModelError::BadDimensions { .. }), "{err}");
}

#[test]
fn unknown_layer_type() {
    let dir = copy_model("digits-mlp");
    edit_manifest(dir.path(), |v| v["layers"][1]["type"] = "sigmoid".into());
    let err = Model::load(dir.path()).unwrap_err();
    assert!(
        matches!(err, ModelError::UnknownLayer { index: 1, .. }),
        "{err}"
    );
}

#[test]
fn unsupported_format_and_missing_files() {
    let dir = copy_model("digits-mlp");
    edit_manifest(dir.path(), |v| v["format"] = "seco-model/99".into());
    assert!(matches!(
        Model::load(dir.path()),
        Err(ModelError::UnsupportedFormat { .. })
    ));
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        Model::load(empty.path()),
        Err(ModelError::Io { .. })
    ));
}

#[test]
fn structure_rules() {
    let dir = copy_model("digits-mlp");
    // Ends with a ReLU: the logits must come from a linear layer.
    edit_manifest(dir.path(), |v| {
        v["layers"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"type": "relu"}))
    });
    assert!(matches!(
        Model::load(dir.path()),
        Err(ModelError::Structure { .. })
    ));
}

#[test]
fn bad_test_set_and_inputs() {
    let model = Model::load(shipped("digits-mlp")).unwrap();
    assert!(matches!(
        model.predict_fixed(&[0.0; 3]),
        Err(ModelError::InputLength {
            expected: 64,
            found: 3
        })
    ));
    let mut x = vec![0.0f32; 64];
    x[3] = f32::NAN;
    assert!(matches!(
        model.predict_float(&x),
        Err(ModelError::NotFinite { index: 3, .. })
    ));
    assert!(matches!(
        model.predict_fixed(&x),
        Err(ModelError::NotFinite { index: 3, .. })
    ));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("test.safetensors"), b"garbage").unwrap();
    assert!(TestSet::load(dir.path()).is_err());
}

#[test]
fn plan_naming_unknown_servers_or_layers() {
    let q = Model::load(shipped("mnist-mlp"))
        .unwrap()
        .quantize()
        .unwrap();
    let text = r#"
        model = "mnist-mlp"
        servers = ["gateway", "r1"]
        [owners]
        fc1 = "gateway"
        fc2 = "r1"
        fc3 = "r7"
    "#;
    let err = PlanFile::from_toml(text).unwrap().resolve(&q).unwrap_err();
    assert!(
        matches!(err, PlanError::UnknownServer { ref name, .. } if name == "r7"),
        "{err}"
    );
    let text = text.replace("fc3 = \"r7\"", "fc9 = \"r1\"");
    let err = PlanFile::from_toml(&text).unwrap().resolve(&q).unwrap_err();
    assert!(matches!(err, PlanError::UnknownLayer { .. }), "{err}");
    let text = text.replace("fc9 = \"r1\"", "");
    let err = PlanFile::from_toml(&text).unwrap().resolve(&q).unwrap_err();
    assert!(matches!(err, PlanError::Unassigned { .. }), "{err}");
    assert!(PlanFile::from_toml("servers = 3").is_err());
    let one = SplitPlan::balanced(&q, &["only".to_string()]).unwrap_err();
    assert!(matches!(one, PlanError::BadServers { .. }));
    let dup = SplitPlan::balanced(&q, &["a".to_string(), "a".to_string()]).unwrap_err();
    assert!(matches!(dup, PlanError::BadServers { .. }));
}

#[test]
fn plan_file_round_trip_and_wrong_model() {
    let q = Model::load(shipped("mnist-mlp"))
        .unwrap()
        .quantize()
        .unwrap();
    let servers: Vec<String> = ["g", "r1", "r2"].iter().map(|s| s.to_string()).collect();
    let plan = SplitPlan::balanced(&q, &servers).unwrap();
    let file = PlanFile::from_plan(&plan, &q);
    let again = PlanFile::from_toml(&file.to_toml())
        .unwrap()
        .resolve(&q)
        .unwrap();
    assert_eq!(plan, again);
    let other = Model::load(shipped("digits-mlp"))
        .unwrap()
        .quantize()
        .unwrap();
    assert!(matches!(
        plan.validate(&other),
        Err(PlanError::WrongModel { .. })
    ));
}

#[test]
fn tampered_server_part_is_refused() {
    let q = Model::load(shipped("digits-mlp"))
        .unwrap()
        .quantize()
        .unwrap();
    let servers: Vec<String> = ["g", "r1"].iter().map(|s| s.to_string()).collect();
    let plan = SplitPlan::balanced(&q, &servers).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut part = plan.server_part(&q, 0).unwrap();
    part.save(dir.path()).unwrap();
    assert_eq!(ServerPart::load(dir.path()).unwrap(), part);
    // Claim to own a stage of another server.
    part.owned.push((1, part.owned[0].1.clone()));
    part.save(dir.path()).unwrap();
    assert!(matches!(
        ServerPart::load(dir.path()),
        Err(PlanError::Mismatch(_))
    ));
    std::fs::write(dir.path().join("part.cbor"), b"\xff\x00garbage").unwrap();
    assert!(matches!(
        ServerPart::load(dir.path()),
        Err(PlanError::Parse(_))
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_manifests_never_panic(text in ".{0,200}") {
        let _ = Manifest::from_json(&text);
    }

    #[test]
    fn mutated_weight_files_never_panic(pos in 0usize..10_000, byte in any::<u8>(), cut in 0usize..10_200) {
        let manifest = Manifest::from_json(
            &std::fs::read_to_string(shipped("digits-mlp").join("model.json")).unwrap()).unwrap();
        let mut bytes = std::fs::read(shipped("digits-mlp").join("model.safetensors")).unwrap();
        let n = bytes.len();
        bytes[pos % n] = byte;
        bytes.truncate(cut.min(n));
        let _ = Model::from_parts(&manifest, &bytes);
    }

    #[test]
    fn random_part_files_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("part.cbor"), &bytes).unwrap();
        prop_assert!(ServerPart::load(dir.path()).is_err());
    }
}

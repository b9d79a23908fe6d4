//! Importing each shipped `models/<name>/model.onnx` reproduces the shipped model: same layers
//! and weights, float outputs equal and fixed-point outputs identical on the whole test set.

use std::path::PathBuf;

use seco_protocols::fixed::FixedPoint;
use seco_protocols::model::{Model, TestSet};
use seco_protocols::onnx::{import_file, ImportOptions};

const MODELS: [&str; 4] = ["digits-mlp", "mnist-mlp", "digits-cnn", "cifar-cnn"];

fn model_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../models")
        .join(name)
}

fn import(name: &str, fixed_point: FixedPoint) -> Model {
    let options = ImportOptions {
        name: name.to_string(),
        fixed_point,
    };
    import_file(model_dir(name).join("model.onnx"), &options)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn shipped_models_import_identically() {
    for name in MODELS {
        let shipped = Model::load(model_dir(name)).unwrap();
        let imported = import(name, shipped.fixed_point);
        assert_eq!(imported.input_shape, shipped.input_shape, "{name}");
        assert_eq!(imported.output_shape(), shipped.output_shape(), "{name}");
        // Same layers, names and f32 weights bit for bit (Gemm transB = 1 is PyTorch's layout).
        assert_eq!(imported.layers, shipped.layers, "{name}");
        assert_eq!(
            imported.quantize().unwrap(),
            shipped.quantize().unwrap(),
            "{name}"
        );
    }
}

#[test]
fn shipped_models_predict_identically_on_the_test_set() {
    for name in MODELS {
        let shipped = Model::load(model_dir(name)).unwrap();
        let imported = import(name, shipped.fixed_point);
        let test = TestSet::load(model_dir(name)).unwrap();
        assert!(!test.is_empty());
        for i in 0..test.len() {
            let x = test.input(i).unwrap();
            let (a, b) = (
                shipped.predict_float(x).unwrap(),
                imported.predict_float(x).unwrap(),
            );
            for (u, v) in a.iter().zip(&b) {
                assert!(
                    (u - v).abs() <= 1e-4 * u.abs().max(1.0),
                    "{name} #{i}: {u} vs {v}"
                );
            }
            let (a, b) = (
                shipped.predict_fixed(x).unwrap(),
                imported.predict_fixed(x).unwrap(),
            );
            assert_eq!(a, b, "{name} #{i}: fixed-point logits differ");
        }
    }
}

#[test]
fn frac_bits_override_and_save_round_trip() {
    let shipped = Model::load(model_dir("mnist-mlp")).unwrap();
    assert_eq!(shipped.fixed_point.frac_bits, 8);
    let imported = import("mnist-mlp", FixedPoint::default());
    assert_eq!(imported.fixed_point, FixedPoint::default());
    let expected = shipped.with_fixed_point(FixedPoint::default()).unwrap();
    let test = TestSet::load(model_dir("mnist-mlp")).unwrap();
    for i in 0..20 {
        let x = test.input(i).unwrap();
        assert_eq!(
            imported.predict_fixed(x).unwrap(),
            expected.predict_fixed(x).unwrap()
        );
    }
    let dir = tempfile::tempdir().unwrap();
    imported.save(dir.path()).unwrap();
    assert_eq!(Model::load(dir.path()).unwrap(), imported);
}

//! The importer on `protocols/testdata/onnx/` (written by `models/make_onnx_testdata.py`):
//! every supported pattern matches onnx's reference evaluator, every bad case is refused with
//! a clear error.

use std::path::PathBuf;

use seco_protocols::model::{Layer, Model};
use seco_protocols::onnx::{import_bytes, import_file, ImportOptions, OnnxError};

fn testdata(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/onnx")
        .join(file)
}

fn import(case: &str) -> Result<Model, OnnxError> {
    import_file(testdata(&format!("{case}.onnx")), &ImportOptions::default())
}

struct Expected {
    input_shape: Vec<usize>,
    input: Vec<f32>,
    output: Vec<f64>,
}

fn expected(case: &str) -> Expected {
    let text = std::fs::read_to_string(testdata(&format!("{case}.json"))).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let floats = |key: &str| -> Vec<f64> {
        v[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    let dims: Vec<usize> = v["input_shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect();
    Expected {
        input_shape: dims[1..].to_vec(),
        input: floats("input").into_iter().map(|x| x as f32).collect(),
        output: floats("output"),
    }
}

/// Layer kinds of each supported case after import (BatchNormalization and bias Add folded,
/// Identity and Dropout removed, Flatten omitted on vectors).
const GOOD: &[(&str, &[&str])] = &[
    ("matmul_add", &["dense", "relu", "dense", "relu", "dense"]),
    (
        "conv_bn",
        &["conv2d", "relu", "conv2d", "relu", "flatten", "dense"],
    ),
    ("gemm_bn", &["dense", "relu", "dense"]),
    (
        "avgpool",
        &[
            "conv2d",
            "relu",
            "avgpool2d",
            "conv2d",
            "relu",
            "maxpool2d",
            "flatten",
            "dense",
        ],
    ),
    (
        "global_avgpool",
        &["conv2d", "relu", "avgpool2d", "flatten", "dense"],
    ),
    (
        "global_maxpool",
        &["conv2d", "relu", "maxpool2d", "flatten", "dense"],
    ),
    (
        "reshape",
        &[
            "conv2d",
            "relu",
            "maxpool2d",
            "flatten",
            "dense",
            "relu",
            "dense",
        ],
    ),
    ("identity_dropout", &["dense", "relu", "dense"]),
    (
        "opset7",
        &["conv2d", "relu", "maxpool2d", "flatten", "dense"],
    ),
    (
        "opset25",
        &["conv2d", "relu", "maxpool2d", "flatten", "dense"],
    ),
];

#[test]
fn supported_patterns_match_the_reference_evaluator() {
    for (case, kinds) in GOOD {
        let model = import(case).unwrap_or_else(|e| panic!("{case}: {e}"));
        let kinds_found: Vec<&str> = model.layers.iter().map(Layer::kind).collect();
        assert_eq!(&kinds_found, kinds, "{case}");
        let exp = expected(case);
        assert_eq!(model.input_shape, exp.input_shape, "{case}");
        let y = model.predict_float(&exp.input).unwrap();
        assert_eq!(y.len(), exp.output.len(), "{case}");
        for (i, (a, b)) in y.iter().zip(&exp.output).enumerate() {
            assert!(
                (a - b).abs() <= 1e-4 * b.abs().max(1e-1),
                "{case}[{i}]: imported {a} vs reference {b}"
            );
        }
        // The fixed-point reference (f = 10) stays close to the float model on these small
        // graphs: it quantizes and runs.
        let yq = model.predict_fixed(&exp.input).unwrap();
        for (a, b) in yq.iter().zip(&exp.output) {
            assert!((a - b).abs() < 0.05, "{case}: fixed {a} vs reference {b}");
        }
    }
}

#[test]
fn folded_and_named_layers() {
    // Gemm transB = 1 keeps PyTorch names; MatMul weights named `*.weight_t` get generic names.
    let m = import("gemm_bn").unwrap();
    let names: Vec<String> = m
        .layers
        .iter()
        .filter_map(|l| match l {
            Layer::Dense(d) => Some(d.name.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(names, ["fc1", "fc2"]);
    let m = import("global_avgpool").unwrap();
    assert!(matches!(&m.layers[2], Layer::AvgPool2d(p) if p.kernel == [4, 4]));
    let m = import("matmul_add").unwrap();
    let Layer::Dense(d) = &m.layers[0] else {
        panic!("dense expected")
    };
    assert_eq!(
        (d.name.as_str(), d.in_features, d.out_features),
        ("dense1", 12, 8)
    );
}

/// `(case, expected substrings of the error message)`.
const BAD: &[(&str, &[&str])] = &[
    (
        "bad_sigmoid",
        &[
            "node 1 (Sigmoid",
            "Sigmoid is not supported: only ReLU non-linearities",
            "retrain with ReLU",
        ],
    ),
    (
        "bad_softmax",
        &["node 3 (Softmax", "export it without the final Softmax"],
    ),
    (
        "bad_opset3",
        &["unsupported opset", "opset 3", "opset 7 to 25"],
    ),
    ("bad_opset_future", &["unsupported opset", "opset 99"]),
    (
        "bad_dynamic_dim",
        &["input \"input\"", "dimension 2 is dynamic (height)"],
    ),
    (
        "bad_external_data",
        &["external data", "bad_external_data.onnx.data"],
    ),
    ("bad_truncated", &["not a valid ONNX model"]),
    ("bad_float64", &["fc1.weight", "DOUBLE", "float32"]),
    ("bad_depthwise", &["node 0 (Conv", "group = 4"]),
    ("bad_asymmetric_pads", &["node 0 (Conv", "asymmetric"]),
    ("bad_residual", &["node 3 (Add", "linear chains"]),
];

#[test]
fn bad_cases_are_refused_clearly() {
    for (case, needles) in BAD {
        let err = match import(case) {
            Ok(_) => panic!("{case}: imported"),
            Err(e) => e,
        };
        let msg = err.to_string();
        for needle in *needles {
            assert!(msg.contains(needle), "{case}: {msg:?} lacks {needle:?}");
        }
    }
    assert!(matches!(
        import("bad_sigmoid"),
        Err(OnnxError::UnsupportedOp { index: 1, .. })
    ));
    assert!(matches!(
        import("bad_opset3"),
        Err(OnnxError::UnsupportedOpset { .. })
    ));
    assert!(matches!(
        import("bad_dynamic_dim"),
        Err(OnnxError::DynamicShape { axis: 2, .. })
    ));
    assert!(matches!(
        import("bad_external_data"),
        Err(OnnxError::ExternalData { .. })
    ));
    assert!(matches!(
        import("bad_truncated"),
        Err(OnnxError::Corrupt { .. })
    ));
    assert!(matches!(
        import("bad_float64"),
        Err(OnnxError::DataType { .. })
    ));
    assert!(matches!(import("missing"), Err(OnnxError::Io { .. })));
}

#[test]
fn every_prefix_of_a_valid_file_is_refused_without_panic() {
    let bytes = std::fs::read(testdata("conv_bn.onnx")).unwrap();
    for len in 0..bytes.len() {
        assert!(
            import_bytes(&bytes[..len], &ImportOptions::default()).is_err(),
            "prefix {len}"
        );
    }
    assert!(import_bytes(&bytes, &ImportOptions::default()).is_ok());
}

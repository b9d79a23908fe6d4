//! Untrusted ONNX bytes: garbage, mutations, and small encodings that would expand into huge
//! allocations are refused with typed errors, never a panic.

use proptest::prelude::*;
use prost::Message;

use seco_protocols::onnx::proto::{
    AttributeProto, Dimension, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, TypeProtoTensor, ValueInfoProto,
};
use seco_protocols::onnx::{import_bytes, ImportOptions, OnnxError};

fn import(bytes: &[u8]) -> Result<seco_protocols::model::Model, OnnxError> {
    import_bytes(bytes, &ImportOptions::default())
}

fn valid_file() -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/onnx/avgpool.onnx");
    std::fs::read(path).unwrap()
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A length-delimited field.
fn field(tag: u32, payload: &[u8], out: &mut Vec<u8>) {
    varint(u64::from(tag << 3 | 2), out);
    varint(payload.len() as u64, out);
    out.extend_from_slice(payload);
}

/// `ModelProto { ir_version: 7, graph: <graph bytes> }`.
fn model_with_graph(graph: &[u8]) -> Vec<u8> {
    let mut out = vec![0x08, 0x07];
    field(7, graph, &mut out);
    out
}

fn tensor_input(dims: &[i64]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|&d| Dimension {
            dim_value: Some(d),
            dim_param: None,
        })
        .collect();
    ValueInfoProto {
        name: "x".into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type: 1,
                shape: Some(TensorShapeProto { dim }),
            }),
        }),
    }
}

/// `x [1, 4] -> Gemm(w) -> y` with a weight tensor supplied by the caller.
fn gemm_model(weight: TensorProto) -> Vec<u8> {
    let node = NodeProto {
        input: vec!["x".into(), weight.name.clone()],
        output: vec!["y".into()],
        op_type: "Gemm".into(),
        attribute: vec![AttributeProto {
            name: "transB".into(),
            r#type: 2,
            i: 1,
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut output = tensor_input(&[1, 2]);
    output.name = "y".into();
    ModelProto {
        ir_version: 7,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        graph: Some(GraphProto {
            node: vec![node],
            initializer: vec![weight],
            input: vec![tensor_input(&[1, 4])],
            output: vec![output],
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

fn weight(dims: Vec<i64>, float_data: Vec<f32>) -> TensorProto {
    TensorProto {
        name: "w".into(),
        dims,
        data_type: 1,
        float_data,
        ..Default::default()
    }
}

#[test]
fn a_hand_built_model_imports() {
    let model = import(&gemm_model(weight(vec![2, 4], vec![0.5; 8]))).unwrap();
    assert_eq!(model.input_shape, [4]);
    assert_eq!(model.predict_float(&[1.0; 4]).unwrap(), [2.0, 2.0]);
}

#[test]
fn garbage_is_refused() {
    for bytes in [
        &b""[..],
        b"\x00",
        b"not an onnx file at all",
        &[0xff; 64],
        b"\x08",
    ] {
        assert!(import(bytes).is_err(), "{bytes:?}");
    }
    assert!(matches!(import(b""), Err(OnnxError::Corrupt { .. })));
    // A deprecated group wire type.
    assert!(matches!(
        import(&[0x0b, 0x0c]),
        Err(OnnxError::Corrupt { .. })
    ));
}

#[test]
fn bad_tensor_data_is_refused() {
    // 2^40 elements claimed with no data: refused by the element limit, nothing allocated.
    let err = import(&gemm_model(weight(vec![1 << 20, 1 << 20], vec![]))).unwrap_err();
    assert!(matches!(err, OnnxError::BadTensor { .. }), "{err}");
    // Data shorter than the dimensions.
    let err = import(&gemm_model(weight(vec![2, 4], vec![1.0; 7]))).unwrap_err();
    assert!(matches!(err, OnnxError::BadTensor { .. }), "{err}");
    // Negative dimension.
    let err = import(&gemm_model(weight(vec![-2, 4], vec![1.0; 8]))).unwrap_err();
    assert!(matches!(err, OnnxError::BadTensor { .. }), "{err}");
    // Non-finite weight.
    let err = import(&gemm_model(weight(vec![2, 4], vec![f32::NAN; 8]))).unwrap_err();
    assert!(err.to_string().contains("not finite"), "{err}");
    // Wrong shape for the input.
    let err = import(&gemm_model(weight(vec![2, 5], vec![1.0; 10]))).unwrap_err();
    assert!(
        matches!(err, OnnxError::UnsupportedNode { index: 0, .. }),
        "{err}"
    );
}

#[test]
fn too_many_nodes_are_refused_before_decoding() {
    let mut graph = Vec::new();
    for _ in 0..9000 {
        field(1, &[], &mut graph); // an empty NodeProto
    }
    let err = import(&model_with_graph(&graph)).unwrap_err();
    assert!(
        matches!(err, OnnxError::LimitExceeded { ref what, .. } if what == "nodes"),
        "{err}"
    );
}

#[test]
fn attribute_bombs_exceed_the_decoded_size_budget() {
    // 8000 nodes of 64 empty attributes: ~1 MB on the wire, tens of MB decoded.
    let mut node = Vec::new();
    for _ in 0..64 {
        field(5, &[], &mut node);
    }
    let mut graph = Vec::new();
    for _ in 0..8000 {
        field(1, &node, &mut graph);
    }
    let err = import(&model_with_graph(&graph)).unwrap_err();
    assert!(
        matches!(err, OnnxError::LimitExceeded { ref what, .. } if what.contains("decoded size")),
        "{err}"
    );
    // 65 attributes on one node exceed the per-node limit.
    let mut node = Vec::new();
    for _ in 0..65 {
        field(5, &[], &mut node);
    }
    let mut graph = Vec::new();
    field(1, &node, &mut graph);
    assert!(matches!(
        import(&model_with_graph(&graph)),
        Err(OnnxError::LimitExceeded { .. })
    ));
}

#[test]
fn packed_dims_are_counted() {
    // A tensor of rank 17 (packed dims), inside an initializer.
    let mut tensor = Vec::new();
    field(1, &[1; 17], &mut tensor);
    let mut graph = Vec::new();
    field(5, &tensor, &mut graph);
    let err = import(&model_with_graph(&graph)).unwrap_err();
    assert!(
        matches!(err, OnnxError::LimitExceeded { ref what, .. } if what == "tensor rank"),
        "{err}"
    );
    // A truncated packed varint.
    let mut tensor = Vec::new();
    field(1, &[0x80], &mut tensor);
    let mut graph = Vec::new();
    field(5, &tensor, &mut graph);
    assert!(matches!(
        import(&model_with_graph(&graph)),
        Err(OnnxError::Corrupt { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = import(&bytes);
    }

    #[test]
    fn mutated_files_never_panic(edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let mut bytes = valid_file();
        let len = bytes.len();
        for (pos, value) in edits {
            bytes[pos % len] = value;
        }
        let _ = import(&bytes);
    }
}

//! Operator edge cases on small graphs built in Rust (with the `prost` messages): what is
//! accepted exactly and what is refused, with which error.

use prost::Message;

use seco_protocols::model::{Layer, Model};
use seco_protocols::onnx::proto::{
    AttributeProto, Dimension, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, TypeProtoTensor, ValueInfoProto,
};
use seco_protocols::onnx::{import_bytes, ImportOptions, OnnxError};

fn value(name: &str, dims: &[i64]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|&d| Dimension {
            dim_value: Some(d),
            dim_param: None,
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type: 1,
                shape: Some(TensorShapeProto { dim }),
            }),
        }),
    }
}

fn int(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: 2,
        i,
        ..Default::default()
    }
}

fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: 7,
        ints: v.to_vec(),
        ..Default::default()
    }
}

fn string(name: &str, s: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: 3,
        s: s.as_bytes().to_vec(),
        ..Default::default()
    }
}

fn floats(name: &str, dims: &[i64], v: &[f32]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: 1,
        float_data: v.to_vec(),
        ..Default::default()
    }
}

/// A chain of `(op, extra constant inputs, attributes)` from `x` to `y`.
struct Chain {
    input: Vec<i64>,
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    opset: i64,
}

impl Chain {
    fn new(input: &[i64]) -> Self {
        Self {
            input: input.to_vec(),
            nodes: Vec::new(),
            inits: Vec::new(),
            opset: 13,
        }
    }

    fn op(mut self, op: &str, consts: Vec<TensorProto>, attrs: Vec<AttributeProto>) -> Self {
        let i = self.nodes.len();
        let prev = if i == 0 {
            "x".to_string()
        } else {
            format!("v{i}")
        };
        let mut input = vec![prev];
        input.extend(consts.iter().map(|t| t.name.clone()));
        self.inits.extend(consts);
        self.nodes.push(NodeProto {
            input,
            output: vec![format!("v{}", i + 1)],
            op_type: op.into(),
            attribute: attrs,
            ..Default::default()
        });
        self
    }

    fn bytes(&self) -> Vec<u8> {
        let out = format!("v{}", self.nodes.len());
        ModelProto {
            ir_version: 7,
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: self.opset,
            }],
            graph: Some(GraphProto {
                node: self.nodes.clone(),
                initializer: self.inits.clone(),
                input: vec![value("x", &self.input)],
                output: vec![value(&out, &[1])],
                ..Default::default()
            }),
            ..Default::default()
        }
        .encode_to_vec()
    }

    fn import(&self) -> Result<Model, OnnxError> {
        import_bytes(&self.bytes(), &ImportOptions::default())
    }
}

fn gemm(name: &str, n: i64, k: i64) -> Chain {
    let w: Vec<f32> = (0..n * k).map(|i| (i as f32) * 0.1 - 0.3).collect();
    Chain::new(&[1, k]).op(
        "Gemm",
        vec![floats(name, &[n, k], &w)],
        vec![int("transB", 1)],
    )
}

fn conv_chain() -> Chain {
    let w = vec![0.1; 2 * 9];
    Chain::new(&[1, 1, 5, 5]).op("Conv", vec![floats("c.weight", &[2, 1, 3, 3], &w)], vec![])
}

fn err_text(chain: &Chain) -> String {
    match chain.import() {
        Ok(_) => panic!("imported"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn gemm_variants() {
    // transB = 0 with a [K, N] weight, alpha/beta folded, scalar C broadcast.
    let b = floats("b", &[2, 2], &[1.0, 2.0, 3.0, 4.0]);
    let c = floats("c", &[], &[0.5]);
    let attrs = vec![
        int("transB", 0),
        AttributeProto {
            name: "alpha".into(),
            r#type: 1,
            f: 2.0,
            ..Default::default()
        },
        AttributeProto {
            name: "beta".into(),
            r#type: 1,
            f: 3.0,
            ..Default::default()
        },
    ];
    let m = Chain::new(&[1, 2])
        .op("Gemm", vec![b, c], attrs)
        .import()
        .unwrap();
    // y = 2 * x B + 3 * 0.5 with x = [1, 1]: [2*(1+3)+1.5, 2*(2+4)+1.5].
    assert_eq!(m.predict_float(&[1.0, 1.0]).unwrap(), [9.5, 13.5]);
    let e = err_text(&gemm("w", 2, 3).op(
        "Gemm",
        vec![floats("w2", &[1, 2], &[1.0, 1.0])],
        vec![int("transA", 1)],
    ));
    assert!(e.contains("node 1 (Gemm): transA = 1"), "{e}");
}

#[test]
fn folding_needs_a_preceding_linear_layer() {
    let bn: Vec<TensorProto> = ["s", "b", "m", "v"]
        .iter()
        .map(|n| floats(n, &[3], &[1.0; 3]))
        .collect();
    let e = err_text(&gemm("w", 3, 2).op("Relu", vec![], vec![]).op(
        "BatchNormalization",
        bn,
        vec![],
    ));
    assert!(
        e.contains(
            "node 2 (BatchNormalization): BatchNormalization is only supported directly after"
        ),
        "{e}"
    );
    let e = err_text(&gemm("w", 3, 2).op("Relu", vec![], vec![]).op(
        "Add",
        vec![floats("a", &[3], &[1.0; 3])],
        vec![],
    ));
    assert!(
        e.contains("Add (a bias addition) is only supported directly after"),
        "{e}"
    );
    // An addend that is not per-channel ([2] on a [1, 3] activation) is refused.
    let e = err_text(&gemm("w", 3, 2).op("Add", vec![floats("a", &[2], &[1.0; 2])], vec![]));
    assert!(e.contains("not a per-channel bias"), "{e}");
}

#[test]
fn conv_and_pool_attributes() {
    let e = err_text(&Chain::new(&[1, 1, 5, 5]).op(
        "Conv",
        vec![floats("c.weight", &[2, 1, 3, 3], &[0.1; 18])],
        vec![string("auto_pad", "SAME_UPPER")],
    ));
    assert!(e.contains("auto_pad = SAME_UPPER"), "{e}");
    let e = err_text(&Chain::new(&[1, 1, 5, 5]).op(
        "Conv",
        vec![floats("c.weight", &[2, 1, 3, 3], &[0.1; 18])],
        vec![ints("dilations", &[2, 2])],
    ));
    assert!(e.contains("dilations"), "{e}");
    let e = err_text(&conv_chain().op("Relu", vec![], vec![int("alpha", 1)]));
    assert!(e.contains("attribute \"alpha\" is not supported"), "{e}");
    // ceil_mode = 1 is accepted where it does not change the output (3 - 1) % 2 == 0 ...
    // (A final 1x1 AveragePool keeps the last layer linear.)
    let pool = |ceil: i64, k: i64| {
        conv_chain()
            .op(
                "MaxPool",
                vec![],
                vec![
                    ints("kernel_shape", &[k, k]),
                    ints("strides", &[2, 2]),
                    int("ceil_mode", ceil),
                ],
            )
            .op("AveragePool", vec![], vec![ints("kernel_shape", &[1, 1])])
    };
    assert!(pool(1, 1).import().is_ok());
    // ... and refused where the last window would be partial ((3 - 2) % 2 != 0).
    assert!(err_text(&pool(1, 2)).contains("ceil_mode = 1"));
    assert!(pool(0, 2).import().is_ok());
    let e = err_text(&conv_chain().op(
        "AveragePool",
        vec![],
        vec![ints("kernel_shape", &[2, 2]), ints("pads", &[1, 1, 1, 1])],
    ));
    assert!(e.contains("padded pooling"), "{e}");
    // MaxPool's default stride is 1, not the kernel.
    let m = conv_chain()
        .op("MaxPool", vec![], vec![ints("kernel_shape", &[2, 2])])
        .op("AveragePool", vec![], vec![ints("kernel_shape", &[2, 2])])
        .import()
        .unwrap();
    assert_eq!(m.output_shape(), [2, 1, 1]);
}

#[test]
fn flatten_reshape_and_chain_rules() {
    let e = err_text(&conv_chain().op("Flatten", vec![], vec![int("axis", 2)]));
    assert!(e.contains("axis = 2"), "{e}");
    let e = err_text(&conv_chain().op(
        "Gemm",
        vec![floats("w", &[2, 18], &[0.1; 36])],
        vec![int("transB", 1)],
    ));
    assert!(e.contains("flatten the activation first"), "{e}");
    let shape = TensorProto {
        name: "shape".into(),
        dims: vec![4],
        data_type: 7,
        int64_data: vec![1, 2, 9, 1],
        ..Default::default()
    };
    let e = err_text(&conv_chain().op("Reshape", vec![shape], vec![]));
    assert!(e.contains("only reshapes to a vector"), "{e}");
    // A custom domain.
    let mut chain = gemm("w", 3, 2);
    chain.nodes[0].domain = "com.microsoft".into();
    assert!(err_text(&chain).contains("domain \"com.microsoft\""));
    // Ending with ReLU: the model format wants the logits from a linear layer.
    let e = err_text(&gemm("w", 3, 2).op("Relu", vec![], vec![]));
    assert!(e.contains("the last layer must be linear"), "{e}");
    // A graph output that is not the end of the chain.
    let mut chain = gemm("w", 3, 2).op("Relu", vec![], vec![]);
    chain.nodes.pop();
    chain.nodes.push(NodeProto {
        input: vec!["x".into()],
        output: vec!["v2".into()],
        op_type: "Relu".into(),
        ..Default::default()
    });
    assert!(err_text(&chain).contains("linear chains"));
}

#[test]
fn constant_nodes_and_layer_names() {
    let mut chain = Chain::new(&[1, 2]);
    chain.nodes.push(NodeProto {
        output: vec!["w".into()],
        op_type: "Constant".into(),
        attribute: vec![AttributeProto {
            name: "value".into(),
            r#type: 4,
            t: Some(Box::new(floats("", &[2, 1], &[2.0, 3.0]))),
            ..Default::default()
        }],
        ..Default::default()
    });
    chain.nodes.push(NodeProto {
        input: vec!["x".into(), "w".into()],
        output: vec!["v2".into()],
        op_type: "MatMul".into(),
        ..Default::default()
    });
    chain.nodes.push(NodeProto {
        output: vec!["b".into()],
        op_type: "Constant".into(),
        attribute: vec![AttributeProto {
            name: "value_floats".into(),
            r#type: 6,
            floats: vec![0.25],
            ..Default::default()
        }],
        ..Default::default()
    });
    chain.nodes.push(NodeProto {
        input: vec!["b".into(), "v2".into()],
        output: vec!["v4".into()],
        op_type: "Add".into(),
        ..Default::default()
    });
    let m = chain.import().unwrap();
    assert_eq!(m.predict_float(&[1.0, 1.0]).unwrap(), [5.25]);
    assert!(matches!(&m.layers[..], [Layer::Dense(d)] if d.name == "dense1"));
    // Two layers whose weights share a PyTorch module name get unique names.
    let m = gemm("fc.weight", 3, 2)
        .op("Relu", vec![], vec![])
        .op(
            "Gemm",
            vec![floats("fc.weight_2", &[1, 3], &[1.0; 3])],
            vec![int("transB", 1)],
        )
        .import()
        .unwrap();
    let names: Vec<&str> = m
        .layers
        .iter()
        .filter_map(|l| match l {
            Layer::Dense(d) => Some(d.name.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(names, ["fc", "dense2"]);
}

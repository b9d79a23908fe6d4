#!/usr/bin/env python3
"""Write the ONNX test data of seco's importer into protocols/testdata/onnx/.

Run from the repository root with the models venv (see models/README.md):

    models/.venv/bin/python models/make_onnx_testdata.py

Each supported operator pattern that the shipped models (models/*/model.onnx) do not cover gets
a small graph with seeded random weights, `<case>.onnx`, and `<case>.json` holding one fixed
input and the float32 output of onnx's reference evaluator (onnx.reference.ReferenceEvaluator)
on it. The bad cases (`bad_*.onnx`) are graphs the importer must refuse; their expected errors
are asserted by protocols/tests/onnx_testdata.rs. The files are committed: CI does not run
Python. Two runs give byte-identical files (fixed seeds, fixed producer fields).
"""

import json
import os
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "protocols" / "testdata" / "onnx"

# IR version that goes with each opset (onnx.helper.VERSION_TABLE), pinned so that files do not
# depend on the onnx package's defaults.
IR_FOR_OPSET = {7: 3, 9: 4, 11: 6, 13: 7, 14: 7, 15: 8, 17: 8, 21: 10, 22: 10, 25: 11}


class Graph:
    """A linear chain under construction: nodes, initializers, the current value name."""

    def __init__(self, rng, name):
        self.rng = rng
        self.name = name
        self.nodes = []
        self.inits = []
        self.cur = "input"
        self.n = 0

    def init(self, name, array):
        self.inits.append(numpy_helper.from_array(np.asarray(array, dtype=np.float32), name))
        return name

    def weight(self, name, shape, fan_in):
        w = self.rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape)
        return self.init(name, w)

    def bias(self, name, n):
        return self.init(name, self.rng.normal(0.0, 0.1, size=n))

    def op(self, op_type, extra_inputs=(), out=None, data_slot=0, **attrs):
        self.n += 1
        out = out or f"/{self.n}/{op_type}_output_0"
        inputs = list(extra_inputs)
        inputs.insert(data_slot, self.cur)
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=f"/{self.n}/{op_type}",
                                           **attrs))
        self.cur = out
        return out

    def const(self, name, array, dtype=np.float32):
        """A Constant node (weights not stored as initializers)."""
        tensor = numpy_helper.from_array(np.asarray(array, dtype=dtype), name + "_value")
        self.nodes.append(helper.make_node("Constant", [], [name], name=f"/{name}/Constant",
                                           value=tensor))
        return name

    def batch_norm(self, prefix, c, eps=1e-5, **attrs):
        r = self.rng
        ins = [self.init(f"{prefix}.weight", r.uniform(0.5, 1.5, c)),
               self.init(f"{prefix}.bias", r.normal(0.0, 0.1, c)),
               self.init(f"{prefix}.running_mean", r.normal(0.0, 0.1, c)),
               self.init(f"{prefix}.running_var", r.uniform(0.5, 2.0, c))]
        return self.op("BatchNormalization", ins, epsilon=eps, **attrs)

    def model(self, input_dims, opset, out_dims, inits_as_inputs=False, check=True):
        last = self.nodes[-1]
        last.output[0] = "logits"
        inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, input_dims)]
        if inits_as_inputs:  # IR version 3 style: initializers also listed as graph inputs
            inputs += [helper.make_tensor_value_info(t.name, t.data_type, list(t.dims))
                       for t in self.inits]
        graph = helper.make_graph(
            self.nodes, self.name, inputs,
            [helper.make_tensor_value_info("logits", TensorProto.FLOAT, out_dims)],
            initializer=self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                                  producer_name="seco-rs models/make_onnx_testdata.py",
                                  producer_version="1")
        model.ir_version = IR_FOR_OPSET.get(opset, 3)
        if check:
            onnx.checker.check_model(model, full_check=True)
        return model


def rng_for(case):
    return np.random.default_rng(sum(map(ord, case)))


# ---------------------------------------------------------------------------------------------
# Supported patterns
# ---------------------------------------------------------------------------------------------


def case_matmul_add():
    """MatMul + Add (bias [N] and [1, N]), a bias-less MatMul, a Constant-node weight and a
    symbolic batch dimension."""
    g = Graph(rng_for("matmul_add"), "matmul_add")
    g.op("MatMul", [g.weight("fc1.weight_t", (12, 8), 12)])
    g.op("Add", [g.bias("fc1.bias", 8)])
    g.op("Relu")
    w2 = g.const("fc2_w", g.rng.normal(0.0, 0.5, (8, 6)))
    g.op("MatMul", [w2])
    # Bias as the first operand of Add, shape [1, N].
    g.op("Add", [g.init("fc2.bias", g.rng.normal(0.0, 0.1, (1, 6)))], data_slot=1)
    g.op("Relu")
    g.op("MatMul", [g.weight("fc3.weight_t", (6, 4), 6)])
    return g.model(["batch", 12], 13, ["batch", 4]), (1, 12)


def case_conv_bn():
    """Conv without bias + BatchNormalization, Conv with bias + BatchNormalization, Flatten,
    Gemm with transB = 0 (opset 15)."""
    g = Graph(rng_for("conv_bn"), "conv_bn")
    g.op("Conv", [g.weight("conv1.weight", (4, 2, 3, 3), 18)], kernel_shape=[3, 3],
         pads=[1, 1, 1, 1], strides=[1, 1])
    g.batch_norm("bn1", 4, eps=1e-3)
    g.op("Relu")
    g.op("Conv", [g.weight("conv2.weight", (3, 4, 3, 3), 36), g.bias("conv2.bias", 3)],
         strides=[2, 2])
    g.batch_norm("bn2", 3)
    g.op("Relu")
    g.op("Flatten", axis=1)
    g.op("Gemm", [g.weight("fc.weight_t", (48, 5), 48), g.bias("fc.bias", 5)], transB=0)
    return g.model([1, 2, 9, 9], 15, [1, 5]), (1, 2, 9, 9)


def case_gemm_bn():
    """Gemm + BatchNormalization (BatchNorm1d), Gemm with alpha/beta, opset 9."""
    g = Graph(rng_for("gemm_bn"), "gemm_bn")
    g.op("Gemm", [g.weight("fc1.weight", (16, 10), 10), g.bias("fc1.bias", 16)], transB=1)
    g.batch_norm("bn1", 16)
    g.op("Relu")
    g.op("Gemm", [g.weight("fc2.weight", (3, 16), 16), g.bias("fc2.bias", 3)], transB=1,
         alpha=0.5, beta=2.0)
    return g.model([1, 10], 9, [1, 3]), (1, 10)


def case_avgpool():
    """AveragePool 2x2/2, Conv + constant Add [1, C, 1, 1], MaxPool with stride != kernel."""
    g = Graph(rng_for("avgpool"), "avgpool")
    g.op("Conv", [g.weight("conv1.weight", (3, 1, 3, 3), 9), g.bias("conv1.bias", 3)],
         kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    g.op("Relu")
    g.op("AveragePool", kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 0, 0])
    g.op("Conv", [g.weight("conv2.weight", (4, 3, 3, 3), 27)], kernel_shape=[3, 3])
    g.op("Add", [g.init("conv2.bias", g.rng.normal(0.0, 0.1, (1, 4, 1, 1)))])
    g.op("Relu")
    g.op("MaxPool", kernel_shape=[2, 2], strides=[1, 1])
    g.op("Flatten", axis=1)
    g.op("Gemm", [g.weight("fc.weight", (5, 36), 36), g.bias("fc.bias", 5)], transB=1)
    return g.model([1, 1, 12, 12], 11, [1, 5]), (1, 1, 12, 12)


def case_global_avgpool():
    """GlobalAveragePool then Flatten and Gemm (opset 22)."""
    g = Graph(rng_for("global_avgpool"), "global_avgpool")
    g.op("Conv", [g.weight("conv1.weight", (6, 3, 3, 3), 27), g.bias("conv1.bias", 6)],
         kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2])
    g.op("Relu")
    g.op("GlobalAveragePool")
    g.op("Flatten", axis=1)
    g.op("Gemm", [g.weight("fc.weight", (4, 6), 6), g.bias("fc.bias", 4)], transB=1)
    return g.model([1, 3, 8, 8], 22, [1, 4]), (1, 3, 8, 8)


def case_all_conv():
    """An all-convolutional head: 1x1 Conv, GlobalAveragePool and a final Flatten (dropped:
    the logits are the pooled values, in the same order)."""
    g = Graph(rng_for("all_conv"), "all_conv")
    g.op("Conv", [g.weight("conv1.weight", (4, 1, 3, 3), 9), g.bias("conv1.bias", 4)],
         kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    g.op("Relu")
    g.op("Conv", [g.weight("conv2.weight", (3, 4, 1, 1), 4), g.bias("conv2.bias", 3)],
         kernel_shape=[1, 1])
    g.op("GlobalAveragePool")
    g.op("Flatten", axis=1)
    return g.model([1, 1, 5, 5], 13, [1, 3]), (1, 1, 5, 5)


def case_global_maxpool():
    """GlobalMaxPool then Flatten and Gemm."""
    g = Graph(rng_for("global_maxpool"), "global_maxpool")
    g.op("Conv", [g.weight("conv1.weight", (5, 2, 3, 3), 18), g.bias("conv1.bias", 5)],
         kernel_shape=[3, 3])
    g.op("Relu")
    g.op("GlobalMaxPool")
    g.op("Flatten", axis=1)
    g.op("Gemm", [g.weight("fc.weight", (3, 5), 5), g.bias("fc.bias", 3)], transB=1)
    return g.model([1, 2, 6, 6], 13, [1, 3]), (1, 2, 6, 6)


def case_reshape():
    """Reshape with a constant [0, -1] (flatten) and [1, N] on a vector (no-op), opset 14."""
    g = Graph(rng_for("reshape"), "reshape")
    g.op("Conv", [g.weight("conv1.weight", (4, 2, 3, 3), 18), g.bias("conv1.bias", 4)],
         kernel_shape=[3, 3])
    g.op("Relu")
    g.op("MaxPool", kernel_shape=[2, 2], strides=[2, 2])
    g.inits.append(numpy_helper.from_array(np.array([0, -1], dtype=np.int64), "shape1"))
    g.op("Reshape", ["shape1"], allowzero=0)
    g.op("Gemm", [g.weight("fc1.weight", (8, 16), 16), g.bias("fc1.bias", 8)], transB=1)
    g.op("Relu")
    g.op("Reshape", [g.const("shape2", [1, 8], dtype=np.int64)])
    g.op("Gemm", [g.weight("fc2.weight", (3, 8), 8), g.bias("fc2.bias", 3)], transB=1)
    return g.model([1, 2, 6, 6], 14, [1, 3]), (1, 2, 6, 6)


def case_identity_dropout():
    """Identity and Dropout removed (ratio input, training_mode = false), a weight passed
    through Identity (PyTorch's shared-weight pattern), opset 21."""
    g = Graph(rng_for("identity_dropout"), "identity_dropout")
    g.op("Identity")
    w = g.weight("fc1.weight", (10, 16), 16)
    g.nodes.append(helper.make_node("Identity", [w], ["fc1.weight_shared"], name="/w/Identity"))
    g.op("Gemm", ["fc1.weight_shared", g.bias("fc1.bias", 10)], transB=1)
    g.op("Dropout", [g.init("ratio", np.float32(0.5))])
    g.op("Relu")
    g.inits.append(numpy_helper.from_array(np.array(False), "training_mode"))
    g.op("Dropout", [g.init("ratio2", np.float32(0.25)), "training_mode"])
    g.op("Gemm", [g.weight("fc2.weight", (4, 10), 10), g.bias("fc2.bias", 4)], transB=1)
    g.op("Identity")
    return g.model([1, 16], 21, [1, 4]), (1, 16)


def case_opset7():
    """Opset 7 / IR 3: initializers also listed as graph inputs, BatchNormalization with the
    spatial attribute, Dropout with the ratio attribute, Gemm with a required C."""
    g = Graph(rng_for("opset7"), "opset7")
    g.op("Conv", [g.weight("conv1.weight", (3, 1, 3, 3), 9), g.bias("conv1.bias", 3)],
         kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    g.batch_norm("bn1", 3, spatial=1)
    g.op("Relu")
    g.op("MaxPool", kernel_shape=[2, 2], strides=[2, 2])
    g.op("Flatten", axis=1)
    g.op("Dropout", ratio=0.3)
    g.op("Gemm", [g.weight("fc.weight", (4, 27), 27), g.bias("fc.bias", 4)], transB=1)
    return g.model([1, 1, 6, 6], 7, [1, 4], inits_as_inputs=True), (1, 1, 6, 6)


def case_opset25():
    """The newest supported opset (25): Conv, Relu, MaxPool, Flatten, Gemm."""
    g = Graph(rng_for("opset25"), "opset25")
    g.op("Conv", [g.weight("conv1.weight", (2, 1, 3, 3), 9), g.bias("conv1.bias", 2)],
         kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    g.op("Relu")
    g.op("MaxPool", kernel_shape=[2, 2], strides=[2, 2])
    g.op("Flatten", axis=1)
    g.op("Gemm", [g.weight("fc.weight", (3, 18), 18), g.bias("fc.bias", 3)], transB=1)
    return g.model([1, 1, 6, 6], 25, [1, 3]), (1, 1, 6, 6)


GOOD = [case_matmul_add, case_conv_bn, case_gemm_bn, case_avgpool, case_global_avgpool,
        case_all_conv, case_global_maxpool, case_reshape, case_identity_dropout, case_opset7, case_opset25]


# ---------------------------------------------------------------------------------------------
# Bad cases (refused by the importer)
# ---------------------------------------------------------------------------------------------


def mlp(name, activation="Relu", opset=13, input_dims=(1, 8), check=True, final=None):
    g = Graph(rng_for(name), name)
    g.op("Gemm", [g.weight("fc1.weight", (6, 8), 8), g.bias("fc1.bias", 6)], transB=1)
    g.op(activation)
    g.op("Gemm", [g.weight("fc2.weight", (3, 6), 6), g.bias("fc2.bias", 3)], transB=1)
    if final:
        g.op(final)
    return g.model(list(input_dims), opset, [1, 3], check=check), g


def small_cnn(name, check=True, **conv_attrs):
    g = Graph(rng_for(name), name)
    groups = conv_attrs.get("group", 1)
    g.op("Conv", [g.weight("conv1.weight", (4, 4 // groups, 3, 3), 9)], kernel_shape=[3, 3],
         **conv_attrs)
    g.op("Relu")
    g.op("GlobalAveragePool")
    g.op("Flatten", axis=1)
    g.op("Gemm", [g.weight("fc.weight", (3, 4), 4)], transB=1)
    return g.model([1, 4, 6, 6], 13, [1, 3], check=check)


def bad_cases():
    cases = {}
    cases["bad_sigmoid"] = mlp("bad_sigmoid", activation="Sigmoid")[0]
    cases["bad_softmax"] = mlp("bad_softmax", final="Softmax")[0]
    model, _ = mlp("bad_opset3", check=False)
    model.opset_import[0].version = 3
    model.ir_version = 3
    cases["bad_opset3"] = model
    model, _ = mlp("bad_opset_future", check=False)
    model.opset_import[0].version = 99
    cases["bad_opset_future"] = model
    cases["bad_dynamic_dim"] = small_cnn_dynamic()
    cases["bad_depthwise"] = small_cnn("bad_depthwise", group=4)
    cases["bad_asymmetric_pads"] = small_cnn("bad_asymmetric_pads", pads=[0, 0, 1, 1])
    cases["bad_float64"] = float64_weights()
    cases["bad_residual"] = residual()
    return cases


def small_cnn_dynamic():
    model = small_cnn("bad_dynamic_dim")
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[0].dim_param = "batch"
    dims[2].dim_param = "height"
    return model


def float64_weights():
    model, _ = mlp("bad_float64", check=False)
    init = model.graph.initializer[0]
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float64),
                                          init.name))
    return model


def residual():
    """y = fc2(relu(fc1(x))) + relu(fc1(x)): not a linear chain."""
    g = Graph(rng_for("bad_residual"), "bad_residual")
    g.op("Gemm", [g.weight("fc1.weight", (8, 8), 8), g.bias("fc1.bias", 8)], transB=1)
    skip = g.op("Relu")
    g.op("Gemm", [g.weight("fc2.weight", (8, 8), 8), g.bias("fc2.bias", 8)], transB=1)
    g.op("Add", [skip])
    g.op("Gemm", [g.weight("fc3.weight", (3, 8), 8)], transB=1)
    return g.model([1, 8], 13, [1, 3])


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------


def eval_model(model):
    """The model to run the reference evaluator on.

    onnx 1.23's reference BatchNormalization is not the inference formula before opset 14: its
    opset-9 version mixes the batch statistics into the running ones whenever `momentum` is set
    (and the schema default sets it), and its opset-6 version returns a tuple. Graphs with
    BatchNormalization below opset 14 are therefore evaluated as opset 15, where
    BatchNormalization with training_mode = 0 is exactly
    `scale * (x - mean) / sqrt(var + epsilon) + B`, the semantics of every version in inference.
    The attributes that opset 15 no longer has (`spatial`, only 1 is used; Dropout's `ratio`,
    which has no effect at inference) are dropped from the copy."""
    version = model.opset_import[0].version
    if version >= 14 or all(n.op_type != "BatchNormalization" for n in model.graph.node):
        return model
    clone = onnx.ModelProto()
    clone.CopyFrom(model)
    clone.opset_import[0].version = 15
    clone.ir_version = 8
    for node in clone.graph.node:
        if node.op_type in ("BatchNormalization", "Dropout"):
            assert [a.i for a in node.attribute if a.name == "spatial"] in ([], [1])
            kept = [a for a in node.attribute if a.name not in ("spatial", "ratio")]
            del node.attribute[:]
            node.attribute.extend(kept)
    onnx.checker.check_model(clone, full_check=True)
    return clone


def write_good(case_fn):
    name = case_fn.__name__.removeprefix("case_")
    model, shape = case_fn()
    x = rng_for(name + "/input").uniform(0.0, 1.0, size=shape).astype(np.float32)
    (y,) = ReferenceEvaluator(eval_model(model)).run(None, {"input": x})
    y = np.asarray(y, dtype=np.float32)
    assert np.all(np.isfinite(y)) and y.shape[0] == 1
    onnx.save(model, OUT / f"{name}.onnx")
    doc = {
        "description": " ".join(case_fn.__doc__.split()),
        "opset": model.opset_import[0].version,
        "input_shape": list(shape),
        "input": [float(v) for v in x.ravel()],
        "output_shape": list(y.shape),
        "output": [float(v) for v in y.ravel()],
    }
    (OUT / f"{name}.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(f"{name}: opset {doc['opset']}, output {y.ravel()}")


def write_bad():
    for name, model in bad_cases().items():
        onnx.save(model, OUT / f"{name}.onnx")
    # Weights in an external file (data_location = EXTERNAL).
    model, _ = mlp("bad_external_data")
    for f in OUT.glob("bad_external_data.onnx*"):
        f.unlink()
    onnx.save(model, OUT / "bad_external_data.onnx", save_as_external_data=True,
              all_tensors_to_one_file=True, location="bad_external_data.onnx.data",
              size_threshold=0)
    # A truncated file: the first half of a valid one.
    data = (OUT / "conv_bn.onnx").read_bytes()
    (OUT / "bad_truncated.onnx").write_bytes(data[: len(data) // 2])
    print("bad cases written")


def main():
    os.environ.setdefault("PYTHONHASHSEED", "0")
    OUT.mkdir(parents=True, exist_ok=True)
    for case_fn in GOOD:
        write_good(case_fn)
    write_bad()
    return 0


if __name__ == "__main__":
    sys.exit(main())

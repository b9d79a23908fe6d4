#!/usr/bin/env python3
"""Regenerate the shipped seco-rs models (models/<name>/...) deterministically.

Trains three tiny classifiers on scikit-learn's bundled `digits` data set (numpy only, fixed
seeds), evaluates them in float and in the seco fixed-point semantics
(/work/shared FIXED_POINT contract: ring Z_{2^k}, k = 32, scale 2^f, truncation after every
linear layer), picks the default f, and writes for each model:

  model.json, model.safetensors   the seco model format ("seco-model/1")
  test.safetensors                held-out test set (inputs F32 [n, *input_shape], labels I64 [n])
  model.onnx                      the same float model as an ONNX graph (opset 13, PyTorch-like)
  reference.json                  exact fixed-point logits (signed ints) for the first 20 test
                                  inputs, computed by an independent pure-Python evaluator

and rewrites the generated section of models/README.md.

Usage: models/.venv/bin/python models/train.py
"""

import os

# Single-threaded BLAS so that float results do not depend on the number of cores (with 2
# threads the float64 test logits differ in the last bits).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import json  # noqa: E402
import math  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import onnx  # noqa: E402
from onnx import helper, numpy_helper, TensorProto  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402
from numpy.lib.stride_tricks import sliding_window_view  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402
from scipy.ndimage import zoom  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

ROOT = Path(__file__).resolve().parent
RING_BITS = 32
FRAC_CANDIDATES = [8, 9, 10, 11, 12]
PREFERRED_F = 10
MIN_HEADROOM_BITS = 4.0  # required gap between max |untruncated output| and 2^31
N_REFERENCE = 20
SPLIT_SEED = 0
ONNX_TOL = 1e-5

# ---------------------------------------------------------------------------------------------
# Model definitions (layer lists in model.json form) and training hyper-parameters.
# ---------------------------------------------------------------------------------------------


def dense(name, n_in, n_out):
    return {"type": "dense", "name": name, "in_features": n_in, "out_features": n_out,
            "weight": f"{name}.weight", "bias": f"{name}.bias"}


MODELS = [
    {
        "name": "digits-mlp",
        "description": "MLP 64-32-10 on scikit-learn digits (8x8, pixels/16)",
        "input_shape": [64], "resize": False, "seed": 1, "epochs": 150, "lr": 2e-3,
        "layers": [dense("fc1", 64, 32), {"type": "relu"}, dense("fc2", 32, 10)],
    },
    {
        "name": "mnist-mlp",
        "description": "MLP 784-128-128-10 on scikit-learn digits resized to 28x28 (bilinear)",
        "input_shape": [784], "resize": True, "seed": 2, "epochs": 60, "lr": 1e-3,
        "layers": [dense("fc1", 784, 128), {"type": "relu"}, dense("fc2", 128, 128),
                   {"type": "relu"}, dense("fc3", 128, 10)],
    },
    {
        "name": "digits-cnn",
        "description": "CNN conv5x5/2(1->4)-relu-maxpool2-fc196-32-10 on digits resized to 28x28",
        "input_shape": [1, 28, 28], "resize": True, "seed": 3, "epochs": 60, "lr": 2e-3,
        "layers": [
            {"type": "conv2d", "name": "conv1", "in_channels": 1, "out_channels": 4,
             "kernel": [5, 5], "stride": [2, 2], "padding": [2, 2],
             "weight": "conv1.weight", "bias": "conv1.bias"},
            {"type": "relu"},
            {"type": "maxpool2d", "kernel": [2, 2], "stride": [2, 2]},
            {"type": "flatten"},
            dense("fc1", 196, 32), {"type": "relu"}, dense("fc2", 32, 10),
        ],
    },
]
BATCH = 32
WEIGHT_DECAY = 1e-4

# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


def load_data():
    """Digits, pixels in [0,1], fixed stratified 80/20 split. Returns 8x8 and 28x28 variants."""
    digits = load_digits()
    x8 = (digits.images.astype(np.float64) / 16.0).astype(np.float32)  # [1797, 8, 8]
    y = digits.target.astype(np.int64)
    # Bilinear (order=1) resize 8x8 -> 28x28; a convex combination, so values stay in [0,1].
    x28 = np.stack([zoom(img.astype(np.float64), 3.5, order=1) for img in x8])
    assert x28.shape[1:] == (28, 28)
    x28 = np.clip(x28, 0.0, 1.0).astype(np.float32)
    idx_train, idx_test = train_test_split(np.arange(len(y)), test_size=0.2, stratify=y,
                                           random_state=SPLIT_SEED)
    return x8, x28, y, idx_train, idx_test


def model_inputs(spec, x8, x28):
    x = x28 if spec["resize"] else x8
    return x.reshape((x.shape[0], *spec["input_shape"]))


# ---------------------------------------------------------------------------------------------
# Float model (numpy): forward with caches, backward, Adam training
# ---------------------------------------------------------------------------------------------


def conv_patches(x, kernel, stride, padding):
    """im2col: x [B,C,H,W] -> patches [B, OH*OW, C*kh*kw] (C,kh,kw order), plus (OH, OW)."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    win = sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]  # B,C,OH,OW,kh,kw
    b, c, oh, ow = win.shape[:4]
    cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(b, oh * ow, c * kh * kw)
    return cols, oh, ow


def pool_windows(x, kernel, stride):
    """x [B,C,H,W] -> windows [B,C,OH,OW,kh*kw] (floor mode, no padding)."""
    win = sliding_window_view(x, tuple(kernel), axis=(2, 3))[:, :, ::stride[0], ::stride[1]]
    return win.reshape(*win.shape[:4], -1)


def float_forward(layers, params, x, cache=None):
    """Float forward pass on a batch x [B, *input_shape]; fills `cache` for backprop if given."""
    for i, layer in enumerate(layers):
        t = layer["type"]
        if t == "dense":
            w, b = params[layer["weight"]], params[layer["bias"]]
            if cache is not None:
                cache[i] = x
            x = x @ w.T + b
        elif t == "conv2d":
            w, b = params[layer["weight"]], params[layer["bias"]]
            cols, oh, ow = conv_patches(x, layer["kernel"], layer["stride"], layer["padding"])
            if cache is not None:
                cache[i] = (cols, x.shape)
            y = cols @ w.reshape(w.shape[0], -1).T + b  # B, P, O
            x = y.transpose(0, 2, 1).reshape(x.shape[0], w.shape[0], oh, ow)
        elif t == "relu":
            if cache is not None:
                cache[i] = x > 0
            x = np.maximum(x, 0)
        elif t == "maxpool2d":
            win = pool_windows(x, layer["kernel"], layer["stride"])
            if cache is not None:
                cache[i] = (x.shape, np.argmax(win, axis=-1))
            x = win.max(axis=-1)
        elif t == "flatten":
            if cache is not None:
                cache[i] = x.shape
            x = x.reshape(x.shape[0], -1)
        else:
            raise ValueError(t)
    return x


def maxpool_backward(layer, in_shape, arg, g):
    """Route the gradient to the (first) maximal element of each window."""
    (kh, kw), (sh, sw) = layer["kernel"], layer["stride"]
    dx = np.zeros(in_shape)
    b, c, oh, ow = g.shape
    bi, ci, yi, xi = np.indices((b, c, oh, ow))
    rows = yi * sh + arg // kw
    cols = xi * sw + arg % kw
    np.add.at(dx, (bi, ci, rows, cols), g)
    return dx


def conv_input_grad(layer, dcols, in_shape, out_hw):
    """col2im: dcols [B, OH*OW, C*kh*kw] (gradient w.r.t. the im2col patches) -> dx [B,C,H,W]."""
    (kh, kw), (sh, sw), (ph, pw) = layer["kernel"], layer["stride"], layer["padding"]
    b, c, h, w = in_shape
    oh, ow = out_hw
    d = dcols.reshape(b, oh, ow, c, kh, kw)
    dxp = np.zeros((b, c, h + 2 * ph, w + 2 * pw))
    for ky in range(kh):
        for kx in range(kw):
            dxp[:, :, ky:ky + sh * (oh - 1) + 1:sh, kx:kx + sw * (ow - 1) + 1:sw] += \
                d[:, :, :, :, ky, kx].transpose(0, 3, 1, 2)
    return dxp[:, :, ph:ph + h, pw:pw + w]


def float_backward(layers, params, cache, g):
    """Backprop of dL/dlogits `g`; returns gradients keyed like params."""
    grads = {}
    for i in range(len(layers) - 1, -1, -1):
        layer, t = layers[i], layers[i]["type"]
        if t == "dense":
            x = cache[i]
            grads[layer["weight"]] = g.T @ x
            grads[layer["bias"]] = g.sum(axis=0)
            g = g @ params[layer["weight"]] if i > 0 else None
        elif t == "conv2d":
            (cols, in_shape), w = cache[i], params[layer["weight"]]
            gy = g.reshape(g.shape[0], g.shape[1], -1).transpose(0, 2, 1)  # B, P, O
            grads[layer["weight"]] = np.einsum("bpo,bpk->ok", gy, cols).reshape(w.shape)
            grads[layer["bias"]] = gy.sum(axis=(0, 1))
            # Input gradient only for a conv that is not the first layer (col2im).
            g = conv_input_grad(layer, gy @ w.reshape(w.shape[0], -1), in_shape, g.shape[2:]) \
                if i > 0 else None
        elif t == "relu":
            g = g * cache[i]
        elif t == "maxpool2d":
            in_shape, arg = cache[i]
            g = maxpool_backward(layer, in_shape, arg, g)
        elif t == "flatten":
            g = g.reshape(cache[i])
    return grads


def init_params(layers, rng):
    """He-normal weights, zero biases (float64 during training)."""
    params = {}
    for layer in layers:
        if layer["type"] == "dense":
            shape = (layer["out_features"], layer["in_features"])
        elif layer["type"] == "conv2d":
            shape = (layer["out_channels"], layer["in_channels"], *layer["kernel"])
        else:
            continue
        fan_in = int(np.prod(shape[1:]))
        params[layer["weight"]] = rng.normal(0.0, math.sqrt(2.0 / fan_in), size=shape)
        params[layer["bias"]] = np.zeros(shape[0])
    return params


def train(spec, x, y):
    """Mini-batch Adam on softmax cross-entropy with L2 weight decay on the weights."""
    rng = np.random.default_rng(spec["seed"])
    layers = spec["layers"]
    params = init_params(layers, rng)
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v = {k: np.zeros_like(p) for k, p in params.items()}
    beta1, beta2, eps, step = 0.9, 0.999, 1e-8, 0
    x = x.astype(np.float64)
    n = len(y)
    for _ in range(spec["epochs"]):
        order = rng.permutation(n)
        for start in range(0, n, BATCH):
            bidx = order[start:start + BATCH]
            cache = {}
            logits = float_forward(layers, params, x[bidx], cache)
            p = np.exp(logits - logits.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            p[np.arange(len(bidx)), y[bidx]] -= 1.0
            grads = float_backward(layers, params, cache, p / len(bidx))
            step += 1
            lr = spec["lr"]
            for k in params:
                gk = grads[k] + (WEIGHT_DECAY * params[k] if k.endswith(".weight") else 0.0)
                m[k] = beta1 * m[k] + (1 - beta1) * gk
                v[k] = beta2 * v[k] + (1 - beta2) * gk * gk
                mhat = m[k] / (1 - beta1 ** step)
                vhat = v[k] / (1 - beta2 ** step)
                params[k] -= lr * mhat / (np.sqrt(vhat) + eps)
    return {k: val.astype(np.float32) for k, val in params.items()}


def float_logits(layers, params32, x32):
    """The float model: float32 weights/inputs evaluated in float64."""
    p64 = {k: v.astype(np.float64) for k, v in params32.items()}
    return float_forward(layers, p64, x32.astype(np.float64))


# ---------------------------------------------------------------------------------------------
# Fixed point (FIXED_POINT.md): vectorised int64 evaluator
# ---------------------------------------------------------------------------------------------


def round_half_away(a):
    """round_half_away_from_zero on float64, exactly (a - floor(a) is exact)."""
    a = np.asarray(a, dtype=np.float64)
    mag = np.abs(a)
    q = np.floor(mag)
    q = q + ((mag - q) >= 0.5)
    return (np.sign(a) * q).astype(np.int64)


def to_fixed(values, scale_bits):
    q = round_half_away(np.asarray(values, dtype=np.float64) * float(2 ** scale_bits))
    lim = 2 ** (RING_BITS - 1)
    assert q.min(initial=0) >= -lim and q.max(initial=0) < lim, "value does not fit the ring"
    return q


def wrap(a):
    """Reduce int64 values mod 2^k into signed k-bit two's complement."""
    half = np.int64(2 ** (RING_BITS - 1))
    return ((a + half) & np.int64(2 ** RING_BITS - 1)) - half


def quantize_params(layers, params32, f):
    q = {}
    for layer in layers:
        if layer["type"] in ("dense", "conv2d"):
            q[layer["weight"]] = to_fixed(params32[layer["weight"]], f)
            q[layer["bias"]] = to_fixed(params32[layer["bias"]], 2 * f)
    return q


def fixed_forward(layers, qparams, xq, f, maxabs):
    """Batch fixed-point forward. xq int64 [B, *shape] (scale f). Records, per linear layer
    name, the max |untruncated output| (true integer, before reduction) in `maxabs`."""
    x = xq
    for layer in layers:
        t = layer["type"]
        if t in ("dense", "conv2d"):
            wq, bq = qparams[layer["weight"]], qparams[layer["bias"]]
            if t == "dense":
                xin, wmat = x, wq
            else:
                xin, oh, ow = conv_patches(x, layer["kernel"], layer["stride"], layer["padding"])
                wmat = wq.reshape(wq.shape[0], -1)
            # The int64 sum is exact when this bound is < 2^63 (checked, in float64).
            bound = np.abs(xin).astype(np.float64) @ np.abs(wmat).T.astype(np.float64)
            assert bound.max() + np.abs(bq).max() < 2.0 ** 62, "int64 overflow risk"
            y = xin @ wmat.T + bq
            name = layer["name"]
            maxabs[name] = max(maxabs.get(name, 0), int(np.abs(y).max()))
            # Reduce mod 2^k, then truncate: arithmetic shift = floor division by 2^f.
            x = wrap(wrap(y) >> f)
            if t == "conv2d":
                x = x.transpose(0, 2, 1).reshape(x.shape[0], wq.shape[0], oh, ow)
        elif t == "relu":
            x = np.maximum(x, 0)
        elif t == "maxpool2d":
            x = pool_windows(x, layer["kernel"], layer["stride"]).max(axis=-1)
        elif t == "flatten":
            x = x.reshape(x.shape[0], -1)
    return x


# ---------------------------------------------------------------------------------------------
# Fixed point: independent pure-Python (arbitrary-precision int) evaluator, single input
# ---------------------------------------------------------------------------------------------


def py_round_half_away(v):
    mag = abs(v)
    q = math.floor(mag)
    if mag - q >= 0.5:
        q += 1
    return q if v >= 0 else -q


def py_wrap(v):
    m = 1 << RING_BITS
    v %= m
    return v - m if v >= m >> 1 else v


def py_linear(layer, params32, x, shape, f):
    """Dense or conv2d on a flat CHW list of ints; returns (untruncated outputs, new shape)."""
    w = params32[layer["weight"]]
    wq = [py_round_half_away(float(a) * 2 ** f) for a in w.reshape(-1).tolist()]
    bq = [py_round_half_away(float(a) * 2 ** (2 * f)) for a in params32[layer["bias"]].tolist()]
    if layer["type"] == "dense":
        n_in, n_out = layer["in_features"], layer["out_features"]
        out = [bq[i] + sum(wq[i * n_in + j] * x[j] for j in range(n_in)) for i in range(n_out)]
        return out, [n_out]
    c_in, h, wd = shape
    (kh, kw), (sh, sw), (ph, pw) = layer["kernel"], layer["stride"], layer["padding"]
    c_out = layer["out_channels"]
    oh, ow = (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1
    out = []
    for o in range(c_out):
        for oy in range(oh):
            for ox in range(ow):
                acc = bq[o]
                for c in range(c_in):
                    for ky in range(kh):
                        iy = oy * sh + ky - ph
                        if not 0 <= iy < h:
                            continue
                        for kx in range(kw):
                            ix = ox * sw + kx - pw
                            if 0 <= ix < wd:
                                acc += wq[((o * c_in + c) * kh + ky) * kw + kx] * \
                                    x[(c * h + iy) * wd + ix]
                out.append(acc)
    return out, [c_out, oh, ow]


def py_maxpool(layer, x, shape):
    c, h, w = shape
    (kh, kw), (sh, sw) = layer["kernel"], layer["stride"]
    oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    out = [max(x[(ci * h + oy * sh + ky) * w + ox * sw + kx] for ky in range(kh)
               for kx in range(kw))
           for ci in range(c) for oy in range(oh) for ox in range(ow)]
    return out, [c, oh, ow]


def py_fixed_logits(spec, params32, x32, f):
    shape = list(spec["input_shape"])
    x = [py_round_half_away(float(v) * 2 ** f) for v in x32.reshape(-1).tolist()]
    for layer in spec["layers"]:
        t = layer["type"]
        if t in ("dense", "conv2d"):
            y, shape = py_linear(layer, params32, x, shape, f)
            x = [py_wrap(py_wrap(v) >> f) for v in y]  # Python >> on ints is floor division
        elif t == "relu":
            x = [max(0, v) for v in x]
        elif t == "maxpool2d":
            x, shape = py_maxpool(layer, x, shape)
        elif t == "flatten":
            shape = [len(x)]
    return x


# ---------------------------------------------------------------------------------------------
# ONNX export and check
# ---------------------------------------------------------------------------------------------


def build_onnx(spec, params32):
    nodes, inits = [], []
    cur = "input"
    layers = spec["layers"]
    for i, layer in enumerate(layers):
        t = layer["type"]
        out = "logits" if i == len(layers) - 1 else f"/{i}/{t}_output_0"
        if t in ("dense", "conv2d"):
            for key in ("weight", "bias"):
                inits.append(numpy_helper.from_array(params32[layer[key]], layer[key]))
            ins = [cur, layer["weight"], layer["bias"]]
            if t == "dense":
                nodes.append(helper.make_node("Gemm", ins, [out], name=f"/{layer['name']}/Gemm",
                                              alpha=1.0, beta=1.0, transB=1))
            else:
                ph, pw = layer["padding"]
                nodes.append(helper.make_node(
                    "Conv", ins, [out], name=f"/{layer['name']}/Conv", dilations=[1, 1],
                    group=1, kernel_shape=layer["kernel"], pads=[ph, pw, ph, pw],
                    strides=layer["stride"]))
        elif t == "relu":
            nodes.append(helper.make_node("Relu", [cur], [out], name=f"/{i}/Relu"))
        elif t == "maxpool2d":
            nodes.append(helper.make_node(
                "MaxPool", [cur], [out], name=f"/{i}/MaxPool", ceil_mode=0,
                kernel_shape=layer["kernel"], pads=[0, 0, 0, 0], strides=layer["stride"]))
        elif t == "flatten":
            nodes.append(helper.make_node("Flatten", [cur], [out], name=f"/{i}/Flatten", axis=1))
        cur = out
    graph = helper.make_graph(
        nodes, "main_graph",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, *spec["input_shape"]])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="seco-rs models/train.py", producer_version="1")
    model.ir_version = 7  # the IR version that goes with opset 13 (onnx 1.8)
    onnx.checker.check_model(model, full_check=True)
    return model


def check_onnx(model, x_test, ref_logits):
    """Run the ONNX graph with onnx's reference evaluator, compare to the float model."""
    sess = ReferenceEvaluator(model)
    worst = 0.0
    for xi, ri in zip(x_test, ref_logits):
        (out,) = sess.run(None, {"input": xi[None].astype(np.float32)})
        assert out.shape == (1, 10)
        worst = max(worst, float(np.abs(out[0].astype(np.float64) - ri).max()))
    assert worst <= ONNX_TOL, f"ONNX differs from the float model by {worst}"
    return worst


# ---------------------------------------------------------------------------------------------
# Per-model pipeline and outputs
# ---------------------------------------------------------------------------------------------


def choose_f(results):
    """Best fixed-point accuracy among f with enough headroom; ties: 10, then nearest 10."""
    ok = [r for r in results if r["headroom_bits"] >= MIN_HEADROOM_BITS]
    assert ok, "no frac_bits candidate has enough headroom"
    return max(ok, key=lambda r: (r["correct"], -abs(r["f"] - PREFERRED_F), -r["f"]))["f"]


def headroom_bits(maxabs):
    return 31.0 - math.log2(max(maxabs, 1))


def linear_stats(spec):
    """Parameter count and multiply-accumulate count per linear layer."""
    shape, rows = list(spec["input_shape"]), []
    for layer in spec["layers"]:
        t = layer["type"]
        if t == "dense":
            n_in, n_out = layer["in_features"], layer["out_features"]
            assert int(np.prod(shape)) == n_in and len(shape) == 1
            rows.append((layer["name"], n_in * n_out + n_out, n_in * n_out))
            shape = [n_out]
        elif t == "conv2d":
            c, h, w = shape
            (kh, kw), (sh, sw), (ph, pw) = layer["kernel"], layer["stride"], layer["padding"]
            o = layer["out_channels"]
            oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
            rows.append((layer["name"], o * c * kh * kw + o, o * oh * ow * c * kh * kw))
            shape = [o, oh, ow]
        elif t == "maxpool2d":
            c, h, w = shape
            (kh, kw), (sh, sw) = layer["kernel"], layer["stride"]
            shape = [c, (h - kh) // sh + 1, (w - kw) // sw + 1]
        elif t == "flatten":
            shape = [int(np.prod(shape))]
    return rows


def write_json(path, obj):
    """Indented JSON with every list of scalars on one line."""
    text = json.dumps(obj, indent=2)
    text = re.sub(r"\[\s+([^\[\]{}]*?)\s+\]",
                  lambda m: "[" + ", ".join(v.strip() for v in m.group(1).split(",")) + "]", text)
    path.write_text(text + "\n")


def run_model(spec, x8, x28, y, idx_train, idx_test):
    t0 = time.time()
    x_all = model_inputs(spec, x8, x28)
    x_train, y_train = x_all[idx_train], y[idx_train]
    x_test, y_test = np.ascontiguousarray(x_all[idx_test]), y[idx_test]
    params32 = train(spec, x_train, y_train)
    train_secs = time.time() - t0
    layers = spec["layers"]
    logits = float_logits(layers, params32, x_test)
    float_correct = int((np.argmax(logits, axis=1) == y_test).sum())

    results = []
    for f in FRAC_CANDIDATES:
        maxabs = {}
        out = fixed_forward(layers, quantize_params(layers, params32, f), to_fixed(x_test, f),
                            f, maxabs)
        pred = np.argmax(out, axis=1)
        correct = int((pred == y_test).sum())
        agree = int((pred == np.argmax(logits, axis=1)).sum())
        head = {k: headroom_bits(v) for k, v in maxabs.items()}
        results.append({"f": f, "correct": correct, "agree": agree, "maxabs": maxabs,
                        "headroom": head, "headroom_bits": min(head.values()), "logits": out})
    f = choose_f(results)
    chosen = next(r for r in results if r["f"] == f)
    n = len(y_test)
    assert (float_correct - chosen["correct"]) / n <= 0.01, "fixed point loses > 1 point"

    # Independent check: pure-Python evaluator on the first N_REFERENCE inputs.
    ref = []
    for i in range(N_REFERENCE):
        fx = py_fixed_logits(spec, params32, x_test[i], f)
        assert fx == chosen["logits"][i].tolist(), "int64 and pure-Python evaluators differ"
        ref.append({"index": i, "label": int(y_test[i]), "fixed_logits": fx,
                    "fixed_pred": int(np.argmax(fx)), "float_logits": logits[i].tolist(),
                    "float_pred": int(np.argmax(logits[i]))})

    model = build_onnx(spec, params32)
    onnx_diff = check_onnx(model, x_test, logits)

    out_dir = ROOT / spec["name"]
    out_dir.mkdir(exist_ok=True)
    manifest = {"format": "seco-model/1", "name": spec["name"],
                "description": spec["description"], "input_shape": spec["input_shape"],
                "fixed_point": {"ring_bits": RING_BITS, "frac_bits": f},
                "weights": "model.safetensors", "layers": layers}
    write_json(out_dir / "model.json", manifest)
    save_file({k: np.ascontiguousarray(v) for k, v in params32.items()},
              out_dir / "model.safetensors")
    save_file({"inputs": x_test.astype(np.float32), "labels": y_test.astype(np.int64)},
              out_dir / "test.safetensors")
    onnx.save(model, out_dir / "model.onnx")
    write_json(out_dir / "reference.json",
               {"model": spec["name"], "ring_bits": RING_BITS, "frac_bits": f,
                "note": "first test inputs of test.safetensors; fixed_logits are signed "
                        "integers at scale 2^frac_bits; float_logits from the float model",
                "cases": ref})
    return {"spec": spec, "n_test": n, "float_correct": float_correct, "results": results,
            "f": f, "onnx_diff": onnx_diff, "train_secs": train_secs,
            "stats": linear_stats(spec),
            "sizes": {p.name: p.stat().st_size for p in sorted(out_dir.iterdir())}}


# ---------------------------------------------------------------------------------------------
# Report (generated section of models/README.md)
# ---------------------------------------------------------------------------------------------


def pct(c, n):
    return f"{100.0 * c / n:.2f}%"


def model_report(r):
    spec, n = r["spec"], r["n_test"]
    lines = [f"### `{spec['name']}`", "", spec["description"] + ".", "",
             "Layers: " + ", ".join(
                 (f"{x['type']} {x['name']}" if "name" in x else x["type"])
                 for x in spec["layers"]) + ".", "",
             "| linear layer | parameters | MACs |", "| --- | ---: | ---: |"]
    for name, npar, macs in r["stats"]:
        lines.append(f"| {name} | {npar} | {macs} |")
    lines.append(f"| **total** | {sum(s[1] for s in r['stats'])} | "
                 f"{sum(s[2] for s in r['stats'])} |")
    lines += ["", f"Test set: {n} images. Float accuracy: {pct(r['float_correct'], n)}.", "",
              "| frac_bits f | fixed-point accuracy | same class as float | min headroom (bits) |",
              "| ---: | ---: | ---: | ---: |"]
    for res in r["results"]:
        mark = " (chosen)" if res["f"] == r["f"] else ""
        lines.append(f"| {res['f']}{mark} | {pct(res['correct'], n)} | {res['agree']}/{n} | "
                     f"{res['headroom_bits']:.1f} |")
    chosen = next(x for x in r["results"] if x["f"] == r["f"])
    lines += ["", f"Chosen f = {r['f']}. Max |untruncated output| (scale 2f) per linear layer "
              "on the test set:", "", "| layer | max abs | log2 | headroom to 2^31 (bits) |",
              "| --- | ---: | ---: | ---: |"]
    for name, v in chosen["maxabs"].items():
        lines.append(f"| {name} | {v} | {math.log2(max(v, 1)):.1f} | "
                     f"{chosen['headroom'][name]:.1f} |")
    lines += ["", f"ONNX (onnx reference evaluator, float32) vs float model: max abs difference "
              f"{r['onnx_diff']:.2e} on the test set.", "",
              "Files: " + ", ".join(f"`{k}` {v} B" for k, v in r["sizes"].items()) + ".", ""]
    return lines


def write_readme(reports):
    path = ROOT / "README.md"
    begin, end = "<!-- BEGIN GENERATED (models/train.py) -->", "<!-- END GENERATED -->"
    body = [begin, "", "| model | parameters | MACs | float acc | default f | fixed acc at f "
            "| min headroom at f (bits) |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in reports:
        c = next(x for x in r["results"] if x["f"] == r["f"])
        body.append(f"| `{r['spec']['name']}` | {sum(s[1] for s in r['stats'])} | "
                    f"{sum(s[2] for s in r['stats'])} | {pct(r['float_correct'], r['n_test'])} | "
                    f"{r['f']} | {pct(c['correct'], r['n_test'])} | {c['headroom_bits']:.1f} |")
    body.append("")
    for r in reports:
        body += model_report(r)
    body.append(end)
    text = path.read_text() if path.exists() else f"# Models\n\n{begin}\n{end}\n"
    head, rest = text.split(begin, 1)
    tail = rest.split(end, 1)[1]
    path.write_text(head + "\n".join(body) + tail)


def main():
    x8, x28, y, idx_train, idx_test = load_data()
    reports = []
    for spec in MODELS:
        r = run_model(spec, x8, x28, y, idx_train, idx_test)
        res = {x["f"]: pct(x["correct"], r["n_test"]) for x in r["results"]}
        print(f"{spec['name']}: trained in {r['train_secs']:.1f}s, float "
              f"{pct(r['float_correct'], r['n_test'])}, fixed {res}, chosen f={r['f']}, "
              f"onnx diff {r['onnx_diff']:.2e}", flush=True)
        reports.append(r)
    write_readme(reports)
    return 0


if __name__ == "__main__":
    sys.exit(main())

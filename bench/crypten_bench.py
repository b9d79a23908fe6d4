#!/usr/bin/env python3
"""CrypTen 0.4.1 on the architectures of seco-rs' shipped models, as a peer for `seco report`.

Runs each model with 2 and 3 computing parties as separate processes on 127.0.0.1 (gloo over
TCP on the loopback interface), once with CrypTen's default Beaver-triple provider (a trusted
first party: party 0 derives every triple locally, free but not secure against party 0) and
once with its trusted-third-party provider (a separate TTP process that deals the triples'
correction shares to party 0 over the network). Party 0 owns the input (the "user"), party 1
owns the model (the other parties hold zero weights until the model is encrypted from party 1).

Writes one JSON document per model and party count (`crypten-MODEL-Np.json`) with the fields
that `seco report` reads, shaped like `seco bench --json`: `tool`, `machine`, `model`,
`servers` (here: computing parties), `inputs`, `runs` (one per provider) with `open`, `online`
(median/min/max ms at party 0), `parties` (bytes sent/received per phase from the kernel's
TCP counters of each party's sockets, `ss -tinp`; CrypTen's own count in
`crypten_counted_bytes`), `rounds` (CrypTen's communication rounds per inference at party 0) and
`input_owner`. Preprocessing is not a separate phase in CrypTen (triples are made during the
forward pass), so `prep` is empty and `online` includes it.

Usage (see bench/README.md):
  /work/venv-crypten/bin/python bench/crypten_bench.py --models mnist-mlp --parties 2 3 \
      --inputs 5 --out-dir bench/results
"""

import argparse
import datetime
import json
import multiprocessing as mp
import os
import re
import socket
import statistics
import struct
import subprocess
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OWNER, MODEL_SRC = 0, 1
PROVIDERS = {"TFP": "trusted-first-party", "TTP": "trusted-third-party"}


def read_safetensors(path):
    """name -> numpy array (F32 and I64 only; all that the shipped models use)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    dtypes = {"F32": np.float32, "I64": np.int64}
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype=dtypes[t["dtype"]]).reshape(t["shape"])
    return out


def build_model(model_dir, real_weights):
    """The manifest's layers as a torch Sequential (weights zero unless `real_weights`)."""
    import torch

    manifest = json.load(open(os.path.join(model_dir, "model.json")))
    w = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    layers = []
    for l in manifest["layers"]:
        t = l["type"]
        if t == "dense":
            m = torch.nn.Linear(l["in_features"], l["out_features"])
        elif t == "conv2d":
            m = torch.nn.Conv2d(
                l["in_channels"], l["out_channels"], tuple(l["kernel"]),
                stride=tuple(l["stride"]), padding=tuple(l["padding"]))
        elif t == "relu":
            m = torch.nn.ReLU()
        elif t == "maxpool2d":
            m = torch.nn.MaxPool2d(tuple(l["kernel"]), stride=tuple(l["stride"]))
        elif t == "flatten":
            m = torch.nn.Flatten()
        else:
            raise ValueError(f"layer type {t} not supported here")
        if t in ("dense", "conv2d"):
            with torch.no_grad():
                for p, key in ((m.weight, "weight"), (m.bias, "bias")):
                    v = torch.from_numpy(w[l[key]].copy()) if real_weights else 0
                    p.copy_(v) if real_weights else p.zero_()
        layers.append(m)
    return torch.nn.Sequential(*layers).eval(), manifest


def to_crypten(net):
    """The torch Sequential as the same crypten.nn modules with the same (plaintext) weights.

    Built directly: `crypten.nn.from_pytorch` goes through an ONNX export, and with torch 2.3.1
    the exported graph has an `Identity` op that CrypTen 0.4.1 rejects.
    """
    import crypten.nn as cnn
    import torch

    mods = []
    for m in net:
        if isinstance(m, torch.nn.Linear):
            c = cnn.Linear(m.in_features, m.out_features)
        elif isinstance(m, torch.nn.Conv2d):
            c = cnn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, stride=m.stride,
                           padding=m.padding)
        elif isinstance(m, torch.nn.ReLU):
            c = cnn.ReLU()
        elif isinstance(m, torch.nn.MaxPool2d):
            c = cnn.MaxPool2d(m.kernel_size, stride=m.stride)
        elif isinstance(m, torch.nn.Flatten):
            c = cnn.Flatten()
        else:
            raise ValueError(f"no crypten module for {m}")
        if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
            with torch.no_grad():
                c.weight.copy_(m.weight)
                c.bias.copy_(m.bias)
        mods.append(c)
    return cnn.Sequential(*mods)


def machine():
    model = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = float(open("/proc/loadavg").read().split()[0])
    except (OSError, ValueError):
        load = None
    return {
        "cores": os.cpu_count(),
        "cpu_model": model,
        "load_1m": load,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def spread(ms):
    if not ms:
        return {"n": 0, "median_ms": 0.0, "min_ms": 0.0, "max_ms": 0.0}
    return {"n": len(ms), "median_ms": statistics.median(ms), "min_ms": min(ms), "max_ms": max(ms)}


def wire_bytes(pid):
    """(sent, received) TCP payload bytes of every TCP socket of process `pid` (`ss -tinp`)."""
    out = subprocess.run(["ss", "-tinpH"], capture_output=True, text=True, check=True).stdout
    sent = received = 0
    mine = False
    for line in out.splitlines():
        if "users:" in line:
            mine = f"pid={pid}," in line
            continue
        if mine:
            s = re.search(r"\bbytes_sent:(\d+)", line)
            r = re.search(r"\bbytes_received:(\d+)", line)
            sent += int(s.group(1)) if s else 0
            received += int(r.group(1)) if r else 0
            mine = False
    return sent, received


def party(rank, world, provider, model_dir, inputs, port, queue):
    os.environ.update({
        "RENDEZVOUS": f"tcp://127.0.0.1:{port}", "WORLD_SIZE": str(world), "RANK": str(rank),
        "DISTRIBUTED_BACKEND": "gloo", "GLOO_SOCKET_IFNAME": "lo", "MASTER_ADDR": "127.0.0.1",
    })
    import torch

    torch.set_num_threads(1)
    import crypten
    import crypten.communicator as comm

    crypten.cfg.mpc.provider = provider
    crypten.cfg.communicator.verbose = True
    if rank == world:  # the trusted third party: serves until party 0 says terminate
        crypten.mpc.provider.TTPServer()
        return
    try:
        pid = os.getpid()
        w0, c0, t0 = wire_bytes(pid), time.process_time(), time.perf_counter()
        crypten.init()
        c = comm.get()
        net, manifest = build_model(model_dir, real_weights=(rank == MODEL_SRC))
        shape = [1] + manifest["input_shape"]
        enc = to_crypten(net)
        enc.encrypt(src=MODEL_SRC)
        enc.eval()
        c.barrier()
        open_ms = (time.perf_counter() - t0) * 1e3
        w1 = wire_bytes(pid)
        res = {"rank": rank, "open_ms": open_ms, "online_ms": [], "logits": [],
               "open": {"bytes_sent": w1[0] - w0[0], "bytes_received": w1[1] - w0[1],
                        "cpu_ms": (time.process_time() - c0) * 1e3},
               "online": []}
        for x in inputs:
            c.barrier()
            c.reset_communication_stats()
            wa, ca = wire_bytes(pid), time.process_time()
            t = time.perf_counter()
            xt = torch.tensor(x).reshape(shape) if rank == OWNER else torch.zeros(shape)
            y = enc(crypten.cryptensor(xt, src=OWNER)).get_plain_text(dst=OWNER)
            dt = (time.perf_counter() - t) * 1e3
            cpu = (time.process_time() - ca) * 1e3
            stats = c.get_communication_stats()
            wb = wire_bytes(pid)
            res["online_ms"].append(dt)
            res["online"].append({"bytes_sent": wb[0] - wa[0], "bytes_received": wb[1] - wa[1],
                                  "messages": stats["rounds"], "cpu_ms": cpu,
                                  "crypten_counted_bytes": stats["bytes"]})
            if rank == OWNER:
                res["logits"].append([float(v) for v in y.flatten()])
        c.barrier()
        crypten.uninit()
        queue.put(res)
    except Exception as e:  # noqa: BLE001 -- reported in the JSON
        queue.put({"rank": rank, "error": f"{type(e).__name__}: {e}"})
        raise


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mean_usage(rows):
    keys = ["bytes_sent", "bytes_received", "messages", "crypten_counted_bytes"]
    u = {k: int(round(sum(r[k] for r in rows) / len(rows))) for k in keys}
    u["cpu_ms"] = sum(r["cpu_ms"] for r in rows) / len(rows)
    return u


def run_one(model, world, provider, inputs, timeout):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    port = free_port()
    model_dir = os.path.join(REPO, "models", model)
    ranks = list(range(world + (1 if provider == "TTP" else 0)))
    procs = [ctx.Process(target=party, args=(r, world, provider, model_dir, inputs, port, queue))
             for r in ranks]
    for p in procs:
        p.start()
    results, deadline = {}, time.time() + timeout
    while len(results) < world and time.time() < deadline:
        try:
            r = queue.get(timeout=5)
            results[r["rank"]] = r
        except Exception:  # noqa: BLE001 -- queue.Empty: check the processes
            if any(p.exitcode not in (None, 0) for p in procs):
                break
    for p in procs:
        p.join(timeout=30)
        if p.is_alive():
            p.kill()
    errors = [r["error"] for r in results.values() if "error" in r]
    if errors or len(results) < world:
        raise RuntimeError(errors[0] if errors else f"parties ended early or timed out "
                           f"(exit codes {[p.exitcode for p in procs]})")
    return results


def reference(model, inputs):
    import torch

    net, _ = build_model(os.path.join(REPO, "models", model), real_weights=True)
    with torch.no_grad():
        return [net(torch.tensor(x).unsqueeze(0)).flatten().tolist() for x in inputs]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=["mnist-mlp"])
    ap.add_argument("--parties", nargs="+", type=int, default=[2, 3])
    ap.add_argument("--providers", nargs="+", default=["TFP", "TTP"], choices=list(PROVIDERS))
    ap.add_argument("--inputs", type=int, default=5)
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per run")
    ap.add_argument("--out-dir", default=os.path.join(REPO, "bench", "results"))
    args = ap.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    try:
        import crypten  # noqa: F401
        import torch
        version = f"0.4.1 (torch {torch.__version__})"
    except ImportError as e:
        version, import_error = None, f"CrypTen cannot be imported: {e}"
    else:
        import_error = None
    for model in args.models:
        test = read_safetensors(os.path.join(REPO, "models", model, "test.safetensors"))
        inputs = [x.astype(np.float32).tolist() for x in test["inputs"][: args.inputs]]
        labels = test["labels"][: args.inputs].tolist()
        manifest = json.load(open(os.path.join(REPO, "models", model, "model.json")))
        w = read_safetensors(os.path.join(REPO, "models", model, "model.safetensors"))
        params = int(sum(v.size for v in w.values()))
        for world in args.parties:
            doc = {"tool": "crypten", "version": version, "machine": machine(), "model": model,
                   "model_parameters": params, "model_bytes": 4 * params, "servers": world,
                   "inputs": len(inputs), "input_source": f"first {len(inputs)} of the test set",
                   "input_shape": manifest["input_shape"], "runs": []}
            if import_error:
                doc["error"] = import_error
            else:
                ref = reference(model, inputs)
            for provider in [] if import_error else args.providers:
                print(f"crypten: {model}, {world} parties, {PROVIDERS[provider]} ...", flush=True)
                try:
                    res = run_one(model, world, provider, inputs, args.timeout)
                except Exception as e:  # noqa: BLE001 -- recorded, the other runs go on
                    msg = f"{PROVIDERS[provider]}: {e}"
                    print(f"crypten: failed: {msg}", file=sys.stderr)
                    doc["error"] = (doc.get("error", "") + "; " + msg).lstrip("; ")
                    continue
                own = res[OWNER]
                agree = sum(int(np.argmax(a) == np.argmax(b)) for a, b in zip(own["logits"], ref))
                err = max(abs(a - b) for la, lb in zip(own["logits"], ref) for a, b in zip(la, lb))
                parties = {f"party-{r}": {"open": {**res[r]["open"], "messages": 0},
                                          "online": mean_usage(res[r]["online"])}
                           for r in sorted(res)}
                run = {"deploy": "processes", "network": "loopback",
                       "provider": PROVIDERS[provider], "open": spread([own["open_ms"]]),
                       "prep": spread([]), "online": spread(own["online_ms"]),
                       "parties": parties, "input_owner": f"party-{OWNER}",
                       "messages": {"online": sum(p["online"]["messages"] for p in parties.values())},
                       "rounds": {"online": parties[f"party-{OWNER}"]["online"]["messages"]},
                       "argmax_agrees_with_float": agree,
                       "label_matches": sum(int(np.argmax(a) == l) for a, l in zip(own["logits"], labels)),
                       "max_abs_logit_error": err}
                doc["runs"].append(run)
                print(f"crypten: online median {run['online']['median_ms']:.1f} ms, party 0 "
                      f"{parties['party-0']['online']['bytes_sent']} B sent / "
                      f"{parties['party-0']['online']['bytes_received']} B received per inference, "
                      f"argmax agrees {agree}/{len(inputs)}", flush=True)
            path = os.path.join(args.out_dir, f"crypten-{model}-{world}p.json")
            with open(path, "w") as f:
                json.dump(doc, f, indent=2)
                f.write("\n")
            print(f"crypten: wrote {path}", flush=True)


if __name__ == "__main__":
    main()

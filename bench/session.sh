#!/usr/bin/env bash
# One measurement session for docs/performance.md: seco-rs (servers as processes on 127.0.0.1,
# loopback, shaped LAN and WAN, 2 to 6 servers) and CrypTen (2 and 3 parties, both providers)
# one after the other, then the report. Opt-in and slow (minutes); not part of .ci/run.
#   SECO=target/release/seco CRYPTEN_PY=/work/venv-crypten/bin/python bench/session.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
SECO=${SECO:-target/release/seco}
PY=${CRYPTEN_PY:-/work/venv-crypten/bin/python}
OUT=${1:-bench/results}
K=${INPUTS:-5}
mkdir -p "$OUT"
bench() { # NAME ARGS...
  local name=$1; shift
  echo "seco bench $* -> $OUT/$name.json"
  if ! "$SECO" bench --deploy processes --inputs "$K" --json "$@" > "$OUT/$name.json"; then
    echo "failed: seco bench $* (not in the report)" >&2
    rm -f "$OUT/$name.json"
  fi
}
bench seco-mnist-mlp-3s-loopback --model mnist-mlp --servers 3
bench seco-mnist-mlp-3s-lan --model mnist-mlp --servers 3 --network lan
bench seco-mnist-mlp-3s-wan --model mnist-mlp --servers 3 --network wan
for n in 2 4 5 6; do
  bench "seco-mnist-mlp-${n}s-loopback" --model mnist-mlp --servers "$n"
done
bench seco-cifar-cnn-3s-loopback --model cifar-cnn --servers 3
bench seco-cifar-cnn-2s-loopback --model cifar-cnn --servers 2
if [ -x "$PY" ]; then
  "$PY" bench/crypten_bench.py --models mnist-mlp cifar-cnn --parties 2 3 --inputs "$K" --out-dir "$OUT"
else
  echo "no CrypTen venv at $PY: CrypTen not measured (see bench/README.md)" >&2
fi
"$SECO" report --from "$OUT" --out docs/performance.md

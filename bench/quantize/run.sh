#!/usr/bin/env bash
# Quantization benchmark, side by side in one run (see bench/quantize/README.md):
#   1. wall time + peak RSS of the whole quantizing process: ipuflow (examples/quantize.rs) vs ONNX Runtime's
#      quantize_static, same settings (per-channel S8 weights, U8 activations, MinMax, the 31 calib images);
#   2. accuracy of every ipuflow preset on the anchor protocol, with the anchors beside it;
#   3. CPU-preset latency vs float on ORT's CPU EP, 1 thread (median of 60 after 5 warm-ups, same process).
#
#   bench/quantize/run.sh [MODEL.onnx] [REPEATS]
# Needs the ONNX Runtime of scripts/fetch_ort.sh and the venv of scripts/common.sh (created if missing).
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/common.sh"
ensure_venv
cd "$IPUFLOW_ROOT"
# ONNX Runtime's quant_pre_process needs sympy: the venv of bench/corpus/setup_ortq.sh has it (the main venv is
# pinned exactly by tests/python_lock.rs and never gets a pip install).
ORTQ_PY="$(bash bench/corpus/setup_ortq.sh)"
MODEL="${1:-$IPUFLOW_ROOT/../shared/models/efficientnet-lite0.onnx}"
REPEATS="${2:-3}"
IMAGES="$IPUFLOW_ROOT/../shared/data/images"
export IPUFLOW_ORT_LIBRARY="${IPUFLOW_ORT_LIBRARY:-$IPUFLOW_CACHE/onnxruntime-1.32.0/linux-x64/libonnxruntime.so.1.32.0}"
cargo build --release --example quantize >&2
BIN="${CARGO_TARGET_DIR:-$IPUFLOW_ROOT/target}/release/examples/quantize"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/ipuflow-bench.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
python "$IPUFLOW_ROOT/bench/quantize/bench.py" --bin "$BIN" --model "$MODEL" --images "$IMAGES" --work "$WORK" \
    --repeats "$REPEATS" --ort-python "$ORTQ_PY"

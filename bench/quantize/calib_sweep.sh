#!/usr/bin/env bash
# Calibration-method sweep (issue 12), one command, one table (see bench/quantize/README.md):
#   bench/quantize/calib_sweep.sh [extra options of calib_sweep.py, e.g. --presets XINT8 --methods minmse --no-ort]
# Every preset x method on the three models of ../shared/models (anchor protocol), ONNX Runtime's quantize_static
# MinMax/Percentile/Entropy rows beside EfficientNet-Lite0's, ipuflow's peak RSS at 31 and 310 calibration inputs.
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/common.sh"
ensure_venv
cd "$IPUFLOW_ROOT"
# ONNX Runtime's quantizer needs sympy, which the main venv (pinned exactly by tests/python_lock.rs) lacks: its rows
# run in the venv of bench/corpus/setup_ortq.sh, never a pip install into the main one.
ORTQ_PY="$(bash bench/corpus/setup_ortq.sh)"
export IPUFLOW_ORT_LIBRARY="${IPUFLOW_ORT_LIBRARY:-$IPUFLOW_CACHE/onnxruntime-1.32.0/linux-x64/libonnxruntime.so.1.32.0}"
cargo build --release --example quantize >&2
BIN="${CARGO_TARGET_DIR:-$IPUFLOW_ROOT/target}/release/examples/quantize"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/ipuflow-sweep.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
python "$IPUFLOW_ROOT/bench/quantize/calib_sweep.py" --bin "$BIN" --models "$IPUFLOW_ROOT/../shared/models" \
    --images "$IPUFLOW_ROOT/../shared/data/images" --work "$WORK" --ort-python "$ORTQ_PY" "$@"

#!/usr/bin/env bash
# CPU-plan latency table (issue 14), one command:
#   bench/cpu_plan/run.sh [MODEL.onnx ...]      (default: the three ../shared models)
# For each model: the float model, each preset as written (XINT8, A8W8, A16W8, CPU), each preset through the CPU
# plan (fast, the default, as a CPU session gets it: `ipuflow run --device cpu --cache-dir` writes the planned model
# under the cache directory), and ONNX Runtime's own quantizer's model (quantize_static, QDQ, per-channel S8 weights,
# U8 activations, MinMax, same calibration photos). ONNX Runtime's CPU EP, 1 and 2 intra-op threads, median of 60
# runs after 5 warm-ups, every variant timed in turn run by run (interleaved); ratio = float median / model median.
# Also: the plan's preparation time against ONNX Runtime's own session creation time.
# Needs the ONNX Runtime of scripts/fetch_ort.sh and the venv of scripts/common.sh (created if missing).
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/common.sh"
ensure_venv
cd "$IPUFLOW_ROOT"
export IPUFLOW_ORT_LIBRARY="${IPUFLOW_ORT_LIBRARY:-$IPUFLOW_CACHE/onnxruntime-1.32.0/linux-x64/libonnxruntime.so.1.32.0}"
# The dev profile is optimized (Cargo.toml); ipuflow only quantizes and plans here, ONNX Runtime does the timed work.
PROFILE="${IPUFLOW_BENCH_PROFILE:-debug}"
if [ "$PROFILE" = release ]; then cargo build --release --bin ipuflow >&2; else cargo build --bin ipuflow >&2; fi
BIN="${CARGO_TARGET_DIR:-$IPUFLOW_ROOT/target}/$PROFILE/ipuflow"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/ipuflow-cpu-plan-bench.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
if [ $# -eq 0 ]; then
    set -- "$IPUFLOW_ROOT/../shared/models/efficientnet-lite0.onnx" "$IPUFLOW_ROOT/../shared/models/blazeface-short-range.onnx" \
        "$IPUFLOW_ROOT/../shared/models/hand-landmark-lite.onnx"
fi
python "$IPUFLOW_ROOT/bench/cpu_plan/bench.py" --bin "$BIN" --images "$IPUFLOW_ROOT/../shared/data/images" \
    --work "$WORK" "$@"

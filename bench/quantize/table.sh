#!/usr/bin/env bash
# The accuracy table of issue 12 from one command: ipuflow's presets (XINT8, A8W8, A16W8, CPU) beside ONNX Runtime
# 1.32's quantize_static and AMD Quark's equivalents on the anchor protocol (../shared/docs/quantization-anchors.md),
# whole-process quantize time and peak RSS of each, written to bench/results/accuracy.{md,json,png}.
#
#   bash bench/quantize/table.sh [--debug] [--no-quark] [table.py options, e.g. --models efficientnet-lite0]
#
# --debug: ipuflow's quantize example in the debug profile (no release build; its times are labelled debug).
# --no-quark: skip setup_peers.sh (6 GiB); Quark's rows then say why they did not run, and the plot is drawn only
# where matplotlib is installed. A Quark that fails to install or to run gives rows saying so; the others still come
# out. About 15 minutes on 2 busy cores (Quark's runs are most of it).
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/common.sh"
ensure_venv
cd "$IPUFLOW_ROOT"
# ONNX Runtime's quantizer needs sympy (quant_pre_process), which the main venv (pinned exactly by
# tests/python_lock.rs) lacks: its rows run in the venv of bench/corpus/setup_ortq.sh, never a pip install into the
# main one.
ORTQ_PY="$(bash bench/corpus/setup_ortq.sh)"
export IPUFLOW_ORT_LIBRARY="${IPUFLOW_ORT_LIBRARY:-$IPUFLOW_CACHE/onnxruntime-1.32.0/linux-x64/libonnxruntime.so.1.32.0}"
profile=release quark=1 args=()
for a in "$@"; do
    case "$a" in
        --debug) profile=debug ;;
        --no-quark) quark=0 ;;
        *) args+=("$a") ;;
    esac
done
if [ "$profile" = release ]; then
    cargo build --release --example quantize >&2
else
    cargo build --example quantize >&2
fi
BIN="${CARGO_TARGET_DIR:-$IPUFLOW_ROOT/target}/$profile/examples/quantize"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/ipuflow-table.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
if [ "$quark" = 0 ]; then
    peers=(--quark-missing "skipped (table.sh --no-quark)")
elif py="$(bash "$IPUFLOW_ROOT/bench/quantize/setup_peers.sh" 2>"$WORK/setup_peers.log")"; then
    cat "$WORK/setup_peers.log" >&2
    peers=(--quark-python "$py")
else
    cat "$WORK/setup_peers.log" >&2
    peers=(--quark-missing "Quark could not be installed here: bench/quantize/setup_peers.sh failed: $(grep -v '^ *$' \
        "$WORK/setup_peers.log" | tail -n1 | cut -c1-300)")
fi
RESULTS="$IPUFLOW_ROOT/bench/results"
python "$IPUFLOW_ROOT/bench/quantize/table.py" --bin "$BIN" --profile "$profile" --ort-python "$ORTQ_PY" \
    "${peers[@]}" --work "$WORK" --out-json "$RESULTS/accuracy.json" "${args[@]}"
# The plot needs matplotlib, which only the peers venv has; report.py says in the table when it cannot draw.
plotter=python
if "$IPUFLOW_CACHE/peers-venv/bin/python" -c 'import matplotlib' 2>/dev/null; then
    plotter="$IPUFLOW_CACHE/peers-venv/bin/python"
fi
"$plotter" "$IPUFLOW_ROOT/bench/quantize/report.py" "$RESULTS/accuracy.json" "$RESULTS/accuracy.md" \
    "$RESULTS/accuracy.png"
echo "wrote $RESULTS/accuracy.md, accuracy.json, accuracy.png" >&2

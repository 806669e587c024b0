#!/usr/bin/env bash
# Writes the reference list of tests/conformance.rs: which ONNX backend *node* test cases ONNX Runtime's own Python
# API passes (scripts/conformance_reference.py, in the pinned venv of scripts/common.sh).
#
#   scripts/conformance_reference.sh [--force]
#
# Output: $IPUFLOW_CACHE/conformance/reference-onnx<onnx version>-ort<onnxruntime version>.json (cached per version
# pair; --force rebuilds). Needs the test data of scripts/fetch_onnx_testdata.sh (run first if missing). Takes about
# ten seconds on 2 cores. Prints the JSON's path last.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
ensure_venv

bash "$IPUFLOW_ROOT/scripts/fetch_onnx_testdata.sh" >&2
VERSIONS="$(python -c 'import onnx, onnxruntime as o; print(f"onnx{onnx.__version__}-ort{o.__version__}")')"
OUT_DIR="$IPUFLOW_CACHE/conformance"
OUT="$OUT_DIR/reference-$VERSIONS.json"
if [ "${1:-}" = "--force" ] || [ ! -s "$OUT" ]; then
    mkdir -p "$OUT_DIR"
    # Some cases print numpy RuntimeWarnings (what they test); keep the output short.
    python -W ignore "$IPUFLOW_ROOT/scripts/conformance_reference.py" "$IPUFLOW_CACHE/onnx-testdata/node" "$OUT" >&2
fi
echo "$OUT"

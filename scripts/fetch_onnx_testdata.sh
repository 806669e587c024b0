#!/usr/bin/env bash
# Fills $IPUFLOW_CACHE/onnx-testdata/ with the ONNX backend test data of the pinned onnx wheel (offline once the
# venv exists):
#   pytorch-converted/ pytorch-operator/ simple/ light/   copied from onnx/backend/test/data/ in the wheel
#   node/                                                 generated from onnx.backend.test.case.node (1,884 cases
#                                                         for onnx 1.23.2), laid out like onnx's generate-data tool
#   manifest.json                                         per suite: how many .onnx models and .pb files it holds
# tests/onnx_roundtrip.rs reads manifest.json and fails if it checked fewer files than a suite holds.
# Idempotent: a marker file records the onnx version and Python lock it was built from; rerun with --force to rebuild.
. "$(dirname "$0")/common.sh"
ensure_venv

DEST="$IPUFLOW_CACHE/onnx-testdata"
ONNX_VERSION="$(python -c 'import onnx; print(onnx.__version__)')"
MARKER="$DEST/.complete"
# Keyed on the whole Python lock, not only onnx's version: the generated outputs also depend on onnx's dependencies.
STAMP="onnx $ONNX_VERSION, lock $(cat "$IPUFLOW_VENV/.lock-sha256")"
if [ "${1:-}" != "--force" ] && [ -f "$MARKER" ] && [ "$(cat "$MARKER")" = "$STAMP" ]; then
    echo "onnx test data already in $DEST (onnx $ONNX_VERSION)"
    exit 0
fi

WHEEL_DATA="$(python -c 'import os, onnx.backend.test as t; print(os.path.join(os.path.dirname(t.__file__), "data"))')"
TMP="$(mktemp -d "$IPUFLOW_CACHE/onnx-testdata.tmp.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

for suite in pytorch-converted pytorch-operator simple light; do
    cp -r "$WHEEL_DATA/$suite" "$TMP/$suite"
done
mkdir "$TMP/node"
# Some node cases print numpy RuntimeWarnings (divide by zero is what they test); keep the output short.
n_node="$(python -W ignore "$IPUFLOW_ROOT/scripts/gen_onnx_node_testdata.py" "$TMP/node")"
echo "generated $n_node node test cases"

python - "$TMP" "$ONNX_VERSION" <<'PY'
import json, os, sys
root, version = sys.argv[1], sys.argv[2]
suites = {}
for suite in sorted(os.listdir(root)):
    models = pbs = 0
    for dirpath, _, files in os.walk(os.path.join(root, suite)):
        models += sum(f.endswith(".onnx") for f in files)
        pbs += sum(f.endswith(".pb") for f in files)
    suites[suite] = {"models": models, "pb": pbs}
with open(os.path.join(root, "manifest.json"), "w") as f:
    json.dump({"onnx_version": version, "suites": suites}, f, indent=2, sort_keys=True)
    f.write("\n")
print(json.dumps(suites))
PY

rm -rf "$DEST"
mv "$TMP" "$DEST"
trap - EXIT
echo "$STAMP" > "$MARKER"
# The Python ONNX Runtime references (scripts/conformance_reference.sh) were made from the old data.
rm -rf "$IPUFLOW_CACHE/conformance"
echo "onnx test data ready in $DEST"

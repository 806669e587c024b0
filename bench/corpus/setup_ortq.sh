#!/usr/bin/env bash
# ONNX Runtime's quantizer for bench/corpus/run.sh in a venv of its own, $IPUFLOW_CACHE/ortq-venv (never the main
# venv: tests/python_lock.rs pins that one). Installs exactly ortq-requirements.txt with --no-deps; rebuilt when the
# lock changes (keyed on its sha256, written last, so an interrupted install is redone). Prints the venv's python.
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/common.sh"
LOCK="$IPUFLOW_ROOT/bench/corpus/ortq-requirements.txt"
VENV="$IPUFLOW_CACHE/ortq-venv"
key="$(sha256sum "$LOCK" | cut -d' ' -f1)"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$VENV/.lock-sha256" 2>/dev/null)" != "$key" ]; then
    echo "setup_ortq: installing $LOCK into $VENV" >&2
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$LOCK" >&2
    "$VENV/bin/python" -c 'import onnxruntime.quantization, onnx, sympy' >&2
    echo "$key" >"$VENV/.lock-sha256"
fi
echo "$VENV/bin/python"

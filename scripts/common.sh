# Shared settings for the scripts: where downloads are cached, and the pinned tool versions.
# Source it: `. "$(dirname "$0")/common.sh"`.
set -euo pipefail
IPUFLOW_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export IPUFLOW_ROOT
# Everything fetched from the package registries lives here, never in the repository.
export IPUFLOW_CACHE="${IPUFLOW_CACHE:-$HOME/.cache/ipuflow}"
# A private Python environment for test-data generation and reference runs (never the system Python).
export IPUFLOW_VENV="$IPUFLOW_CACHE/venv"
PY_PINS=(onnx==1.23.2 onnxruntime==1.32.0 numpy==2.4.6 cmake==3.31.10 pillow==13.0.0)

ensure_venv() {
    if [ ! -x "$IPUFLOW_VENV/bin/python" ] || [ "$(cat "$IPUFLOW_VENV/.pins" 2>/dev/null)" != "${PY_PINS[*]}" ]; then
        mkdir -p "$IPUFLOW_CACHE"
        python3 -m venv "$IPUFLOW_VENV"
        "$IPUFLOW_VENV/bin/pip" install --quiet --disable-pip-version-check "${PY_PINS[@]}"
        echo "${PY_PINS[*]}" > "$IPUFLOW_VENV/.pins"
    fi
    export PATH="$IPUFLOW_VENV/bin:$PATH"
}

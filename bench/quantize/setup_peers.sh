#!/usr/bin/env bash
# The peers' quantizers for bench/quantize/table.sh, in a venv of their own: $IPUFLOW_CACHE/peers-venv. Bench only,
# never CI: it is about 6 GiB, because torch's PyPI wheel brings the CUDA libraries (only PyPI is reachable, so no
# CPU-only wheel), and AMD Quark's ONNX quantizer imports torch to build its custom operators (with ninja).
#
#   bash bench/quantize/setup_peers.sh        # prints the venv's python on stdout; exits non-zero when it fails
#
# Installs exactly peers-requirements.txt: every package, transitive ones included, at an exact version, with
# --no-deps (no dependency resolution). peers-requirements.in holds the direct pins; the lock's header says how it was
# made and why it has no hashes. The venv is rebuilt when the lock changes (keyed on its sha256, written last, so an
# interrupted install is redone).
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/common.sh"
LOCK="$IPUFLOW_ROOT/bench/quantize/peers-requirements.txt"
PEERS_VENV="$IPUFLOW_CACHE/peers-venv"
key="$(sha256sum "$LOCK" | cut -d' ' -f1)"
if [ ! -x "$PEERS_VENV/bin/python" ] || [ "$(cat "$PEERS_VENV/.lock-sha256" 2>/dev/null)" != "$key" ]; then
    echo "setup_peers: installing $LOCK into $PEERS_VENV (about 6 GiB; 8.5 minutes on 2 busy cores)" >&2
    mkdir -p "$IPUFLOW_CACHE"
    rm -rf "$PEERS_VENV"
    python3 -m venv "$PEERS_VENV"
    "$PEERS_VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$LOCK" >&2
    # Quark compiles its custom operators on first import (about a minute); do it here so no timed run pays for it.
    # It finds ninja on PATH.
    (cd "$PEERS_VENV" && PATH="$PEERS_VENV/bin:$PATH" "$PEERS_VENV/bin/python" -c 'import quark.onnx.quantization.config.custom_config
import quark; print("setup_peers: amd-quark", quark.__version__)' >&2)
    echo "$key" > "$PEERS_VENV/.lock-sha256"
fi
echo "$PEERS_VENV/bin/python"

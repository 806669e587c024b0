#!/usr/bin/env bash
# Fetches the ONNX Runtime shared library ipuflow loads at run time, from the official PyPI wheels.
#
#   scripts/fetch_ort.sh [--version V] [--linux-only|--windows-only]
#
# Downloads onnxruntime==1.32.0 (no dependencies, nothing installed into any Python), checks each wheel against the
# sha256 pinned below, and extracts the runtime into
#   $IPUFLOW_CACHE/onnxruntime-1.32.0/linux-x64/libonnxruntime.so.1.32.0 (+ libonnxruntime.so.1, libonnxruntime.so)
#   $IPUFLOW_CACHE/onnxruntime-1.32.0/win-x64/onnxruntime.dll
# Idempotent: a second run with everything in place downloads nothing. Prints the Linux library path last (the
# value for IPUFLOW_ORT_LIBRARY); `--windows-only` prints the DLL path instead.
#
# `--version 1.19.0` fetches the oldest runtime ipuflow supports (Linux only), for test.sh's `ort-oldest` section.
# 1.19.0 is the oldest PyPI wheel that ships libonnxruntime.so at all: up to 1.18 the wheels link the runtime into
# the Python module only, so older versions cannot be fetched (or tested) this way.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ORT_VERSION=1.32.0
want_linux=1 want_win=1
while [ $# -gt 0 ]; do
    case "$1" in
        --version) ORT_VERSION="${2:?--version needs a value}"; shift ;;
        --linux-only) want_win=0 ;;
        --windows-only) want_linux=0 ;;
        *) echo "usage: $0 [--version V] [--linux-only|--windows-only]" >&2; exit 2 ;;
    esac
    shift
done
case "$ORT_VERSION" in
    1.32.0)
        LINUX_WHEEL="onnxruntime-${ORT_VERSION}-cp311-cp311-manylinux_2_28_x86_64.whl"
        LINUX_PLATFORM=manylinux_2_28_x86_64
        LINUX_SHA256=5a34fc4dfeb5a7b4a74c95dcba1e773d722abda720b474edf1b0c419dc6d163d
        WIN_WHEEL="onnxruntime-${ORT_VERSION}-cp311-cp311-win_amd64.whl"
        WIN_SHA256=d7e0c45cc5f456ad7805e6dd256a7662736cda9c2fd17becae194eb3c2f6df72
        ;;
    1.19.0)
        LINUX_WHEEL="onnxruntime-${ORT_VERSION}-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl"
        LINUX_PLATFORM=manylinux_2_28_x86_64
        LINUX_SHA256=6f379d1f050cfb55ce015d53727b78ee362febc065c38eed81512b22b757da73
        WIN_WHEEL=""
        ;;
    *) echo "fetch_ort: no pinned wheel for onnxruntime $ORT_VERSION (pinned: 1.32.0, 1.19.0)" >&2; exit 2 ;;
esac
if [ "$want_win" = 1 ] && [ -z "$WIN_WHEEL" ]; then
    [ "$want_linux" = 1 ] || { echo "fetch_ort: no Windows wheel pinned for $ORT_VERSION" >&2; exit 2; }
    want_win=0 # the old runtime is a Linux test target only
fi

DEST="$IPUFLOW_CACHE/onnxruntime-${ORT_VERSION}"
WHEELS="$IPUFLOW_CACHE/wheels"

PIP=(python3 -m pip)
if ! python3 -m pip --version >/dev/null 2>&1; then
    ensure_venv
    PIP=("$IPUFLOW_VENV/bin/python" -m pip)
fi

# fetch_wheel FILE SHA256 PLATFORM: downloads FILE into $WHEELS unless a copy with the pinned hash is there.
fetch_wheel() {
    local file="$1" sha="$2" platform="$3"
    mkdir -p "$WHEELS"
    if [ -f "$WHEELS/$file" ] && echo "$sha  $WHEELS/$file" | sha256sum --check --status; then
        return 0
    fi
    rm -f "$WHEELS/$file"
    local tmp
    tmp="$(mktemp -d "$WHEELS/.dl.XXXXXX")"
    "${PIP[@]}" download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
        --platform "$platform" --python-version 3.11 --implementation cp \
        -d "$tmp" "onnxruntime==${ORT_VERSION}" >&2
    if [ ! -f "$tmp/$file" ]; then
        echo "fetch_ort: pip did not produce $file (got: $(ls "$tmp"))" >&2
        rm -rf "$tmp"
        exit 1
    fi
    if ! echo "$sha  $tmp/$file" | sha256sum --check --status; then
        echo "fetch_ort: sha256 mismatch for $file: expected $sha, got $(sha256sum "$tmp/$file" | cut -d' ' -f1)" >&2
        rm -rf "$tmp"
        exit 1
    fi
    mv "$tmp/$file" "$WHEELS/$file"
    rm -rf "$tmp"
}

# extract WHEEL MEMBER OUTDIR: extracts one member of a wheel into OUTDIR atomically (temp file + rename).
extract() {
    local wheel="$1" member="$2" outdir="$3" name
    name="$(basename "$member")"
    mkdir -p "$outdir"
    [ -s "$outdir/$name" ] && return 0
    python3 - "$wheel" "$member" "$outdir/.$name.tmp" <<'EOF'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst)
EOF
    mv "$outdir/.$name.tmp" "$outdir/$name"
}

if [ "$want_win" = 1 ]; then
    fetch_wheel "$WIN_WHEEL" "$WIN_SHA256" win_amd64
    extract "$WHEELS/$WIN_WHEEL" onnxruntime/capi/onnxruntime.dll "$DEST/win-x64"
    extract "$WHEELS/$WIN_WHEEL" onnxruntime/capi/onnxruntime_providers_shared.dll "$DEST/win-x64"
fi
if [ "$want_linux" = 1 ]; then
    fetch_wheel "$LINUX_WHEEL" "$LINUX_SHA256" "$LINUX_PLATFORM"
    extract "$WHEELS/$LINUX_WHEEL" "onnxruntime/capi/libonnxruntime.so.${ORT_VERSION}" "$DEST/linux-x64"
    extract "$WHEELS/$LINUX_WHEEL" onnxruntime/capi/libonnxruntime_providers_shared.so "$DEST/linux-x64"
    # The names a loader looks for (SONAME and development name).
    ln -sfn "libonnxruntime.so.${ORT_VERSION}" "$DEST/linux-x64/libonnxruntime.so.1"
    ln -sfn "libonnxruntime.so.${ORT_VERSION}" "$DEST/linux-x64/libonnxruntime.so"
    echo "$DEST/linux-x64/libonnxruntime.so.${ORT_VERSION}"
else
    echo "$DEST/win-x64/onnxruntime.dll"
fi

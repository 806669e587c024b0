#!/usr/bin/env bash
# Builds ipuflow and installs it as a package that C and C++ hosts find with CMake or pkg-config:
#
#   scripts/install.sh [--prefix DIR] [--profile release|debug] [--from DIR] [--ort LIBRARY]
#
#   --prefix DIR     where to install (default: $HOME/.local)
#   --profile P      cargo profile to build and install (default: release)
#   --from DIR       install the libraries already built in DIR (a cargo output folder such as target/debug)
#                    instead of building
#   --ort LIBRARY    also copy this ONNX Runtime library (and its providers_shared library, if beside it) next to
#                    libipuflow, where ipuflow finds it with no IPUFLOW_ORT_LIBRARY
#
# Installs:
#   PREFIX/include/ipuflow.h, ipuflow.hpp
#   PREFIX/lib/libipuflow.so (+ libipuflow.a)          Windows: bin/ipuflow.dll, lib/ipuflow.dll.lib
#   PREFIX/bin/ipuflow                                  the command line, when it was built
#   PREFIX/lib/cmake/ipuflow/ipuflowConfig.cmake, ipuflowConfigVersion.cmake   (from cmake/*.in)
#   PREFIX/lib/pkgconfig/ipuflow.pc                                            (from cmake/ipuflow.pc.in)
# Then: find_package(ipuflow) + target_link_libraries(app PRIVATE ipuflow::ipuflow) with
# -DCMAKE_PREFIX_PATH=PREFIX, or PKG_CONFIG_PATH=PREFIX/lib/pkgconfig pkg-config --cflags --libs ipuflow.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$IPUFLOW_ROOT"

PREFIX="$HOME/.local"
PROFILE=release
FROM=""
ORT=""
usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit "${1:-2}"; }
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) PREFIX="${2:?--prefix needs a directory}"; shift 2 ;;
        --prefix=*) PREFIX="${1#*=}"; shift ;;
        --profile) PROFILE="${2:?--profile needs release or debug}"; shift 2 ;;
        --profile=*) PROFILE="${1#*=}"; shift ;;
        --from) FROM="${2:?--from needs a directory}"; shift 2 ;;
        --ort) ORT="${2:?--ort needs a library path}"; shift 2 ;;
        -h|--help) usage 0 ;;
        *) echo "install.sh: unknown argument '$1'" >&2; usage ;;
    esac
done
case "$PROFILE" in release|debug) ;; *) echo "install.sh: --profile must be release or debug" >&2; exit 2 ;; esac

VERSION="$(sed -n 's/^version *= *"\([^"]*\)".*/\1/p' Cargo.toml | head -n 1)"
[ -n "$VERSION" ] || { echo "install.sh: no version in Cargo.toml" >&2; exit 1; }

if [ -z "$FROM" ]; then
    ensure_rust_toolchain
    if [ "$PROFILE" = release ]; then
        cargo build --release --lib --bin ipuflow
    else
        cargo build --lib --bin ipuflow
    fi
    FROM="${CARGO_TARGET_DIR:-$IPUFLOW_ROOT/target}/$PROFILE"
fi

case "$(uname -s)" in
    MINGW*|MSYS*|CYGWIN*) SHARED=ipuflow.dll; IMPLIB=ipuflow.dll.lib; EXE=ipuflow.exe ;;
    Darwin) SHARED=libipuflow.dylib; IMPLIB=""; EXE=ipuflow ;;
    *) SHARED=libipuflow.so; IMPLIB=""; EXE=ipuflow ;;
esac
[ -f "$FROM/$SHARED" ] || { echo "install.sh: $FROM/$SHARED does not exist: build first (cargo build)" >&2; exit 1; }

mkdir -p "$PREFIX"
PREFIX="$(cd "$PREFIX" && pwd)"
mkdir -p "$PREFIX/include" "$PREFIX/lib/cmake/ipuflow" "$PREFIX/lib/pkgconfig" "$PREFIX/bin"

# install_file SRC DEST_DIR [MODE]: copies through a temp file and a rename, so a running host never sees half a file.
install_file() {
    local src="$1" dir="$2" mode="${3:-644}" name
    name="$(basename "$src")"
    cp "$src" "$dir/.$name.tmp.$$"
    chmod "$mode" "$dir/.$name.tmp.$$"
    mv -f "$dir/.$name.tmp.$$" "$dir/$name"
}

# configure TEMPLATE OUT: substitutes @IPUFLOW_VERSION@ and @IPUFLOW_PREFIX@.
configure() {
    sed -e "s|@IPUFLOW_VERSION@|$VERSION|g" -e "s|@IPUFLOW_PREFIX@|$PREFIX|g" "$1" > "$2.tmp.$$"
    mv -f "$2.tmp.$$" "$2"
}

install_file include/ipuflow.h "$PREFIX/include"
install_file include/ipuflow.hpp "$PREFIX/include"
if [ "$SHARED" = ipuflow.dll ]; then
    install_file "$FROM/$SHARED" "$PREFIX/bin" 755
    [ -f "$FROM/$IMPLIB" ] && install_file "$FROM/$IMPLIB" "$PREFIX/lib"
else
    install_file "$FROM/$SHARED" "$PREFIX/lib" 755
fi
[ -f "$FROM/libipuflow.a" ] && install_file "$FROM/libipuflow.a" "$PREFIX/lib"
[ -f "$FROM/$EXE" ] && install_file "$FROM/$EXE" "$PREFIX/bin" 755
configure cmake/ipuflowConfig.cmake.in "$PREFIX/lib/cmake/ipuflow/ipuflowConfig.cmake"
configure cmake/ipuflowConfigVersion.cmake.in "$PREFIX/lib/cmake/ipuflow/ipuflowConfigVersion.cmake"
configure cmake/ipuflow.pc.in "$PREFIX/lib/pkgconfig/ipuflow.pc"

if [ -n "$ORT" ]; then
    [ -f "$ORT" ] || { echo "install.sh: --ort $ORT does not exist (scripts/fetch_ort.sh fetches one)" >&2; exit 1; }
    ortdir="$(dirname "$ORT")"
    libdir="$PREFIX/lib"
    [ "$SHARED" = ipuflow.dll ] && libdir="$PREFIX/bin"
    case "$SHARED" in
        libipuflow.so)
            install_file "$ORT" "$libdir" 755
            ln -sfn "$(basename "$ORT")" "$libdir/libonnxruntime.so"
            # The command is linked statically and looks next to itself.
            ln -sfn "../lib/$(basename "$ORT")" "$PREFIX/bin/libonnxruntime.so" ;;
        *) install_file "$ORT" "$libdir" 755 ;;
    esac
    for p in "$ortdir"/libonnxruntime_providers_shared.so "$ortdir"/onnxruntime_providers_shared.dll; do
        [ -f "$p" ] && install_file "$p" "$libdir" 755
    done
fi

echo "installed ipuflow $VERSION ($PROFILE) into $PREFIX"
echo "  CMake:      -DCMAKE_PREFIX_PATH=$PREFIX, then find_package(ipuflow) and ipuflow::ipuflow"
echo "  pkg-config: PKG_CONFIG_PATH=$PREFIX/lib/pkgconfig pkg-config --cflags --libs ipuflow"

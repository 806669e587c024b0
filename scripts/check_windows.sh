#!/usr/bin/env bash
# Windows checks from Linux (called by scripts/test.sh).
#
#   scripts/check_windows.sh                 IPUFLOW_WINDOWS=auto (default): "full" when x86_64-w64-mingw32-gcc and
#                                            wine64 are installed (.ci/run installs them), else "check"
#   IPUFLOW_WINDOWS=check                    cargo check of the library, the command line and the tests for
#                                            x86_64-pc-windows-gnu
#   IPUFLOW_WINDOWS=full
#                                            also: cross-builds ipuflow.dll with mingw-w64, builds the C ABI tests
#                                            (tests/c) with x86_64-w64-mingw32-gcc -Wall -Wextra -Werror -pedantic
#                                            and the C++ wrapper tests with x86_64-w64-mingw32-g++ (with and without
#                                            exceptions), and runs them under wine64: test_version, test_status,
#                                            test_last_error, test_model (model load/save/inspect with Windows
#                                            paths), test_cpp_model, test_cpp_wrapper(_noexcept), and with
#                                            ONNX Runtime's Windows DLL (scripts/fetch_ort.sh) test_runtime and
#                                            test_session (sessions and runs on the real onnxruntime.dll), and
#                                            test_abi_names (the 1.0 names and the UTF-16 _w path twins)
#   IPUFLOW_WINDOWS=off                      nothing
#
# "full" installs what it lacks when run as root with apt (mingw-w64, wine64), and needs the rustup target, which
# it adds. Wine 8.0 (Debian 12) has no bcryptprimitives.dll, whose ProcessPrng every Rust-built DLL imports, so a
# shim DLL built from tests/windows/bcryptprimitives.c is put beside the test programs (see that file).
# Outputs: build/windows/ (programs, DLLs), the wine prefix in $IPUFLOW_CACHE/wine.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$IPUFLOW_ROOT"

MODE="${IPUFLOW_WINDOWS:-auto}"
TRIPLE=x86_64-pc-windows-gnu
MINGW_CC=x86_64-w64-mingw32-gcc
TARGET_DIR="${CARGO_TARGET_DIR:-$IPUFLOW_ROOT/target}"
OUT="$IPUFLOW_ROOT/build/windows"

find_wine() { command -v wine64 || { [ -x /usr/lib/wine/wine64 ] && echo /usr/lib/wine/wine64; } || true; }
case "$MODE" in
    off) echo "IPUFLOW_WINDOWS=off: no Windows checks"; exit 0 ;;
    auto)
        if command -v "$MINGW_CC" >/dev/null 2>&1 && command -v "${MINGW_CC%gcc}g++" >/dev/null 2>&1 &&
            [ -n "$(find_wine)" ]; then
            MODE=full
        else
            MODE=check
            echo "note: mingw-w64 or wine64 is not installed: only cargo check (IPUFLOW_WINDOWS=full installs them)"
        fi ;;
    check | full) ;;
    *) echo "IPUFLOW_WINDOWS must be auto, check, full or off (got '$MODE')" >&2; exit 2 ;;
esac

apt_install() {
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "error: missing $*; install them (apt: $*)" >&2
        return 1
    fi
    echo "installing $*"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

ensure_rust_toolchain
if ! rustup target list --installed 2>/dev/null | grep -qx "$TRIPLE"; then
    echo "adding the rust target $TRIPLE"
    rustup target add "$TRIPLE"
fi

echo "== cargo check --target $TRIPLE (lib, bins, tests)"
cargo check --locked --target "$TRIPLE" --lib --bins --tests

[ "$MODE" = full ] || { echo "windows: cargo check passed (IPUFLOW_WINDOWS=full also runs the C tests under wine)"; exit 0; }

command -v "$MINGW_CC" >/dev/null 2>&1 && command -v "${MINGW_CC%gcc}g++" >/dev/null 2>&1 ||
    apt_install gcc-mingw-w64-x86-64 g++-mingw-w64-x86-64 mingw-w64-x86-64-dev
WINE="$(find_wine)"
if [ -z "$WINE" ]; then
    apt_install wine64
    WINE="$(find_wine)"
fi

echo "== cargo build --target $TRIPLE (ipuflow.dll)"
cargo build --locked --target "$TRIPLE" --lib
DLL_DIR="$TARGET_DIR/$TRIPLE/debug"
[ -f "$DLL_DIR/ipuflow.dll" ] && [ -f "$DLL_DIR/libipuflow.dll.a" ] || { echo "error: no ipuflow.dll in $DLL_DIR" >&2; exit 1; }

echo "== mingw: shim DLL and C tests"
mkdir -p "$OUT"
"$MINGW_CC" -shared -O2 -Wall -Wextra -Werror -o "$OUT/bcryptprimitives.dll" \
    tests/windows/bcryptprimitives.c tests/windows/bcryptprimitives.def -ladvapi32
cp "$DLL_DIR/ipuflow.dll" "$OUT/"
C_TESTS=(test_version test_status test_last_error test_model test_runtime test_session test_abi_names)
for t in "${C_TESTS[@]}"; do
    # The import library by name: -lipuflow would pick the staticlib libipuflow.a.
    "$MINGW_CC" -std=c11 -Wall -Wextra -Werror -pedantic -g -Iinclude -Itests/c -o "$OUT/$t.exe" "tests/c/$t.c" \
        "$DLL_DIR/libipuflow.dll.a" -static-libgcc
done
MINGW_CXX=("${MINGW_CC%gcc}g++" -std=c++17 -Wall -Wextra -Werror -pedantic -g -Iinclude -Itests/c)
"${MINGW_CXX[@]}" -o "$OUT/test_cpp_model.exe" tests/cpp/test_cpp_model.cpp "$DLL_DIR/libipuflow.dll.a" -static
# The C++ wrapper in both modes (one source), and the no-exceptions quickstart (built only: it needs the shared
# model and images in its working directory).
"${MINGW_CXX[@]}" -o "$OUT/test_cpp_wrapper.exe" tests/cpp/test_cpp_wrapper.cpp "$DLL_DIR/libipuflow.dll.a" -static
"${MINGW_CXX[@]}" -fno-exceptions -DIPUFLOW_NO_EXCEPTIONS -o "$OUT/test_cpp_wrapper_noexcept.exe" \
    tests/cpp/test_cpp_wrapper.cpp "$DLL_DIR/libipuflow.dll.a" -static
"${MINGW_CXX[@]}" -fno-exceptions -o "$OUT/readme_quickstart_noexcept.exe" tests/cpp/readme_quickstart_noexcept.cpp \
    "$DLL_DIR/libipuflow.dll.a" -static
TESTS=("${C_TESTS[@]}" test_cpp_model test_cpp_wrapper test_cpp_wrapper_noexcept)
# What the DLL imports (a missing import is the usual reason a Rust DLL does not load under wine).
x86_64-w64-mingw32-objdump -p "$OUT/ipuflow.dll" | awk '/DLL Name/ {print "  ipuflow.dll imports " $3}'

echo "== wine: run the C tests ($WINE)"
export WINEPREFIX="$IPUFLOW_CACHE/wine" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml=" WINEARCH=win64
mkdir -p "$WINEPREFIX"
# The scratch directory and ../shared, as Windows paths (wine maps Z: to /).
winpath() { printf 'Z:%s' "$(echo "$1" | tr / '\\')"; }
mkdir -p "$OUT/tmp"
export IPUFLOW_TEST_TMPDIR
IPUFLOW_TEST_TMPDIR="$(winpath "$OUT/tmp")"
ORT_DLL="$(ls "$IPUFLOW_CACHE"/onnxruntime-*/win-x64/onnxruntime.dll 2>/dev/null | tail -n 1 || true)"
if [ -n "$ORT_DLL" ]; then
    export IPUFLOW_TEST_ORT_LIBRARY
    IPUFLOW_TEST_ORT_LIBRARY="$(winpath "$ORT_DLL")"
else
    echo "note: no onnxruntime.dll in $IPUFLOW_CACHE (scripts/fetch_ort.sh): the session tests will skip"
fi
if [ -d "$IPUFLOW_ROOT/../shared/models" ]; then
    export IPUFLOW_TEST_SHARED_DIR
    IPUFLOW_TEST_SHARED_DIR="$(winpath "$(cd "$IPUFLOW_ROOT/../shared" && pwd)")"
fi
failed=0
for t in "${TESTS[@]}"; do
    echo "-- $t.exe"
    if ! (cd "$OUT" && timeout 600 "$WINE" "./$t.exe"); then
        echo "FAILED under wine: $t.exe"
        failed=$((failed + 1))
    fi
done
"${WINE%64}server" -k 2>/dev/null || wineserver -k 2>/dev/null || true
if [ "$failed" != 0 ]; then
    echo "windows: $failed of ${#TESTS[@]} C/C++ test programs failed under wine"
    exit 1
fi
echo "windows: cargo check, cross-build and ${#TESTS[@]} C/C++ test programs under wine passed"

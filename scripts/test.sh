#!/usr/bin/env bash
# The full test suite of ipuflow, from a fresh machine:
#
#   scripts/test.sh
#
# 1. tools       checks cargo, a C/C++ compiler and valgrind (apt-installs a missing one when run as root with
#                apt), creates the pinned Python venv (cmake comes from it)
# 2. fetch       scripts/fetch_ort.sh (ONNX Runtime), scripts/fetch_onnx_testdata.sh (ONNX backend test data), the
#                demo data and the real-model corpus (scripts/fetch_demo_data.sh, scripts/fetch_corpus.sh)
# 3. build       cargo build (debug profile: the one `cargo test` also uses, so nothing is compiled twice)
# 4. cargo test  every Rust test, the header drift test included
# 5. abi tests   the C/C++ programs of tests/ (CMake + ctest) in three flavours: plain, ASan+UBSan, valgrind
# 6. windows     scripts/check_windows.sh: cargo check for x86_64-pc-windows-gnu, and where mingw-w64 and wine64
#                are installed the cross-built DLL with the C tests run under wine
# 7. lint        cargo fmt --check, cargo clippy --locked --all-targets -- -D warnings (the toolchain of
#                rust-toolchain.toml, so a new Rust release changes nothing until the pin is bumped), and
#                scripts/gen_proto.sh --check (src/onnx/proto/onnx.rs matches its generator and onnx's schema)
# 8. fuzz        scripts/fuzz.sh: three libFuzzer targets on stable Rust, about 3 minutes (IPUFLOW_FUZZ_SECONDS)
# 9. corpus      scripts/corpus.sh: inspect, quantize (every preset), eval, check and run on the real models of
#                tests/corpus/manifest.json (fetched by scripts/fetch_corpus.sh), about 5 minutes
# 10. ort-oldest the oldest ONNX Runtime the README claims (scripts/fetch_ort.sh --version 1.19.0): the C/C++ tests'
#                plain flavour, and every shared model quantized with every preset and run once
#
#   scripts/test.sh --ci   CI mode (same as CI=true): a test that lacks its data (../shared, the demo cache, the venv,
#                          ONNX Runtime) FAILS instead of skipping.
#
# Every section runs even when an earlier one failed (unless it needs the earlier one's output); a summary with
# each section's result and time is printed last, and the exit status is non-zero if any section failed.
#
# Environment:
#   IPUFLOW_TEST_SECTIONS   space-separated subset to run, e.g. "build abi" (default: all)
#   IPUFLOW_CTEST_LABELS    ctest label regex, e.g. "plain|asan" (default: all three flavours)
#   IPUFLOW_WINDOWS         auto (default) | check | full | off, passed to scripts/check_windows.sh
#   CARGO_TARGET_DIR        honoured (the C tests link $CARGO_TARGET_DIR/debug/libipuflow.so)
#   IPUFLOW_CACHE           where downloads live (scripts/common.sh)
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
set +e # sections record their own failures
cd "$IPUFLOW_ROOT"

TARGET_DIR="${CARGO_TARGET_DIR:-$IPUFLOW_ROOT/target}"
LIB="$TARGET_DIR/debug/libipuflow.so"
BUILD_DIR="${IPUFLOW_TEST_BUILD_DIR:-$IPUFLOW_ROOT/build/abi-tests}"
SECTIONS="${IPUFLOW_TEST_SECTIONS:-tools fetch build cargo-test abi windows lint fuzz corpus ort-oldest}"
JOBS="$(nproc 2>/dev/null || echo 2)"
T0=$SECONDS
RESULTS=()
FAILED=0

want() { [[ " $SECTIONS " == *" $1 "* ]]; }

# section NAME FUNCTION: runs FUNCTION, records PASS/FAIL and its time.
section() {
    local name="$1" fn="$2" t=$SECONDS rc
    printf '\n\033[1m==== %s ====\033[0m\n' "$name"
    "$fn"
    rc=$?
    local dt=$((SECONDS - t))
    if [ "$rc" = 0 ]; then
        RESULTS+=("PASS  $name (${dt}s)")
    elif [ "$rc" = 77 ]; then
        RESULTS+=("SKIP  $name (${dt}s)")
    else
        RESULTS+=("FAIL  $name (${dt}s, exit $rc)")
        FAILED=$((FAILED + 1))
    fi
    return "$rc"
}

skip_section() {
    printf '\n\033[1m==== %s ====\033[0m\nskipped: %s\n' "$1" "$2"
    RESULTS+=("SKIP  $1 ($2)")
}

# need COMMAND APT_PACKAGE: the command exists, or is apt-installed when possible, or the section fails.
APT_UPDATED=0
need() {
    command -v "$1" >/dev/null 2>&1 && return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing $2 (for $1)"
        if [ "$APT_UPDATED" = 0 ]; then
            apt-get update -qq || return 1
            APT_UPDATED=1
        fi
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null || return 1
        command -v "$1" >/dev/null 2>&1 && return 0
    fi
    echo "error: '$1' is missing; install the package '$2'" >&2
    return 1
}

do_tools() {
    local ok=0
    need cargo cargo || ok=1
    need cc gcc || ok=1
    need c++ g++ || ok=1
    need valgrind valgrind || ok=1
    need python3 python3 || ok=1
    python3 -c 'import venv, ensurepip' 2>/dev/null || need_pkg_venv || ok=1
    ensure_venv || ok=1
    echo "cargo:    $(cargo --version 2>/dev/null)"
    echo "rustc:    $(rustc --version 2>/dev/null)"
    echo "cc:       $(cc --version 2>/dev/null | head -1)"
    echo "valgrind: $(valgrind --version 2>/dev/null)"
    echo "cmake:    $(cmake --version 2>/dev/null | head -1) ($(command -v cmake))"
    return $ok
}

# Debian's python3 lacks venv/ensurepip until python3-venv is installed.
need_pkg_venv() {
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        [ "$APT_UPDATED" = 1 ] || { apt-get update -qq && APT_UPDATED=1; }
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    else
        echo "error: python3 cannot create a venv; install python3-venv" >&2
        return 1
    fi
}

do_fetch() {
    local ok=0 out
    if [ -x scripts/fetch_ort.sh ] || [ -f scripts/fetch_ort.sh ]; then
        out="$(bash scripts/fetch_ort.sh)" || ok=1
        echo "$out"
        # Its last line is the Linux runtime library, the value for IPUFLOW_ORT_LIBRARY.
        local lib
        lib="$(printf '%s\n' "$out" | tail -n 1)"
        if [ "$ok" = 0 ] && [ -f "$lib" ]; then
            export IPUFLOW_ORT_LIBRARY="${IPUFLOW_ORT_LIBRARY:-$lib}"
            echo "IPUFLOW_ORT_LIBRARY=$IPUFLOW_ORT_LIBRARY"
        fi
    else
        echo "scripts/fetch_ort.sh not present: nothing to fetch"
    fi
    if [ -f scripts/fetch_onnx_testdata.sh ]; then
        bash scripts/fetch_onnx_testdata.sh || ok=1
    else
        echo "scripts/fetch_onnx_testdata.sh not present: nothing to fetch"
    fi
    # The demo's model and photos (tests/cli.rs runs `ipuflow demo` on them).
    if [ -f scripts/fetch_demo_data.sh ]; then
        bash scripts/fetch_demo_data.sh || ok=1
    fi
    # The real-model corpus (tests/corpus_npu_format.rs and tests/cpu_plan.rs read it in cargo test, scripts/corpus.sh
    # in the corpus section).
    if [ -f scripts/fetch_corpus.sh ]; then
        bash scripts/fetch_corpus.sh || ok=1
    fi
    # The oldest ONNX Runtime the README claims (tests/session_cancel.rs in cargo test, the ort-oldest section).
    bash scripts/fetch_ort.sh --version 1.19.0 >/dev/null || ok=1
    return $ok
}

do_build() {
    cargo build --locked 2>&1 || return 1
    [ -f "$LIB" ] || { echo "error: cargo build did not produce $LIB" >&2; return 1; }
    echo "built $LIB"
}

do_cargo_test() {
    # --no-fail-fast: one failing test binary must not hide the results of the others.
    cargo test --locked --no-fail-fast 2>&1
}

do_abi() {
    [ -f "$LIB" ] || { echo "error: $LIB is missing (the build section failed)" >&2; return 1; }
    ensure_venv || return 1 # cmake and ctest (a no-op when the tools section made it)
    local args=(-S tests -B "$BUILD_DIR" -DIPUFLOW_LIBRARY="$LIB" -DCMAKE_BUILD_TYPE=Debug)
    [ -n "${IPUFLOW_ORT_LIBRARY:-}" ] && args+=(-DIPUFLOW_ORT_LIBRARY="$IPUFLOW_ORT_LIBRARY")
    command -v ninja >/dev/null 2>&1 && [ ! -f "$BUILD_DIR/CMakeCache.txt" ] && args+=(-G Ninja)
    cmake "${args[@]}" || return 1
    cmake --build "$BUILD_DIR" -j "$JOBS" || return 1
    local labels=()
    [ -n "${IPUFLOW_CTEST_LABELS:-}" ] && labels=(-L "$IPUFLOW_CTEST_LABELS")
    ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$JOBS" "${labels[@]}"
}

do_windows() {
    bash scripts/check_windows.sh
}

do_lint() {
    local ok=0
    cargo fmt --check || { echo "error: cargo fmt --check: run cargo fmt" >&2; ok=1; }
    cargo clippy --locked --all-targets -- -D warnings 2>&1 || ok=1
    # Names the fix itself (run scripts/gen_proto.sh) when the generated protobuf types are stale.
    bash scripts/gen_proto.sh --check || ok=1
    return $ok
}

# Prints each target's executions; a crash fails the section and its reproducer stays in fuzz/artifacts/.
do_fuzz() {
    bash scripts/fuzz.sh
}

do_corpus() {
    IPUFLOW_BIN="$TARGET_DIR/debug/ipuflow" bash scripts/corpus.sh
}

# The README's "ONNX Runtime 1.19 or newer" is what this runs: the C/C++ tests (plain) and, for every shared model and
# every preset, `ipuflow quantize` (prepare, calibration and QDQ sessions on that runtime) and one `ipuflow run`.
ORT_OLDEST=1.19.0
do_ort_oldest() {
    [ -f "$LIB" ] || { echo "error: $LIB is missing (the build section failed)" >&2; return 1; }
    local ort ok=0 dir="$BUILD_DIR-ort-$ORT_OLDEST"
    ort="$(bash scripts/fetch_ort.sh --version "$ORT_OLDEST" --linux-only | tail -n 1)" || return 1
    ensure_venv || return 1
    cmake -S tests -B "$dir" -DIPUFLOW_LIBRARY="$LIB" -DIPUFLOW_ORT_LIBRARY="$ort" \
        -DIPUFLOW_ORT_PLACEMENT=OFF -DCMAKE_BUILD_TYPE=Debug >/dev/null &&
        cmake --build "$dir" -j "$JOBS" >/dev/null &&
        ctest --test-dir "$dir" --output-on-failure -j "$JOBS" -L plain || ok=1
    local models="$IPUFLOW_ROOT/../shared/models" calib="$IPUFLOW_ROOT/../shared/data/images/calib"
    if [ ! -d "$models" ] || [ ! -d "$calib" ]; then
        echo "ort-oldest: ../shared (models, calibration photos) is missing: quantize runs skipped" >&2
        [ "${CI:-}" = true ] && return 1
        [ "$ok" = 0 ] && return 77
        return $ok
    fi
    local cli="$TARGET_DIR/debug/ipuflow" out m p n=0
    out="$(mktemp -d)"
    for m in "$models"/*.onnx; do
        # run never invents a dynamic size: the one shared model with a dynamic batch is given it.
        local shape=()
        [ "$(basename "$m")" = efficientnet-lite0.onnx ] && shape=(--input-shape input=1,3,224,224)
        for p in xint8 a8w8 a16w8 cpu; do
            if "$cli" quantize "$m" -o "$out/q.onnx" --preset "$p" --calib "$calib" --max-samples 2 --ort "$ort" \
                >"$out/log" 2>&1 &&
                "$cli" run "$out/q.onnx" "${shape[@]}" --repeat 1 --warmup 0 --ort "$ort" >>"$out/log" 2>&1; then
                n=$((n + 1))
            else
                ok=1
                echo "ort-oldest: FAILED $(basename "$m") --preset $p on ONNX Runtime $ORT_OLDEST:" >&2
                tail -n 5 "$out/log" >&2
            fi
        done
    done
    rm -rf "$out"
    echo "ort-oldest: $n quantize+run of $(ls "$models"/*.onnx | wc -l) shared models x 4 presets passed on $ort"
    return $ok
}

# The driver is one function called on the last line, so bash has parsed all of it before running any of it: a
# checkout or an edit of this file during a run (the run takes minutes) cannot make bash read a changed file mid-way.
main() {
    [ "${1:-}" = "--ci" ] && export CI=true
    echo "ipuflow test suite: $(git -C "$IPUFLOW_ROOT" rev-parse --short HEAD 2>/dev/null || echo 'no commit') on $(uname -srm), $JOBS cores, CI=${CI:-}"
    # Before any cargo call: the pinned toolchain (registered without a download where possible).
    ensure_rust_toolchain || { RESULTS+=("FAIL  rust toolchain (rust-toolchain.toml)"); FAILED=$((FAILED + 1)); }
    want tools && section "tools" do_tools
    want fetch && section "fetch" do_fetch
    BUILD_OK=1
    if want build; then
        section "build (cargo build)" do_build || BUILD_OK=0
    fi
    want cargo-test && section "cargo test" do_cargo_test
    if want abi; then
        if [ "$BUILD_OK" = 1 ]; then
            section "abi tests (cmake + ctest: plain, asan, valgrind)" do_abi
        else
            skip_section "abi tests" "the build failed"
            FAILED=$((FAILED + 1))
        fi
    fi
    want windows && section "windows (scripts/check_windows.sh)" do_windows
    want lint && section "lint (cargo fmt --check, cargo clippy -D warnings, gen_proto --check)" do_lint
    want fuzz && section "fuzz (scripts/fuzz.sh)" do_fuzz
    want corpus && section "corpus (scripts/corpus.sh: real models, every preset)" do_corpus
    want ort-oldest && section "ort-oldest (ONNX Runtime $ORT_OLDEST: C tests, quantize)" do_ort_oldest

    printf '\n\033[1m==== summary ====\033[0m\n'
    printf '%s\n' "${RESULTS[@]}"
    if [ "$FAILED" = 0 ]; then
        echo "test.sh: ALL PASSED in $((SECONDS - T0))s"
        exit 0
    fi
    echo "test.sh: $FAILED SECTION(S) FAILED in $((SECONDS - T0))s"
    exit 1
}

main "$@"; exit $?

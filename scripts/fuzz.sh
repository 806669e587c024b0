#!/usr/bin/env bash
# Bounded fuzzing of ipuflow's untrusted-input paths on stable Rust (no nightly, no cargo-fuzz binary needed):
#
#   scripts/fuzz.sh                      the three targets, about 3 minutes in all (IPUFLOW_FUZZ_SECONDS=180)
#   scripts/fuzz.sh model_decode 60      one target for 60 s
#
# Targets (fuzz/fuzz_targets): model_decode (ONNX decoder/encoder, must reach 10^6 executions), calib_data (.npy
# and image calibration readers), capi_model_bytes (ipuflow_model_load_bytes and the model getters, as a C host
# calls them). Seeds are generated at run time by fuzz/seeds.py from the ONNX backend test models and a real photo.
# For each target it prints the executions, the coverage and the peak memory; a crash, a leak past the memory limit
# or an input slower than 20 s fails the run and the reproducer stays in fuzz/artifacts/TARGET/ (rerun it with the
# printed command).
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$IPUFLOW_ROOT"

TOTAL="${IPUFLOW_FUZZ_SECONDS:-180}"
MIN_DECODE_RUNS=1000000
HOST="$(rustc -vV | sed -n 's/^host: //p')"
# What `cargo fuzz build` gives rustc, minus the nightly-only -Zsanitizer: SanitizerCoverage's inline 8-bit
# counters and PC table (libFuzzer's coverage feedback), comparison tracing (it learns magic numbers and tags) and
# stack-depth tracking, plus `--cfg fuzzing`. The explicit --target keeps these flags off build scripts and proc
# macros, which run on the host and are not linked with libFuzzer. Debug assertions and overflow checks are on
# (fuzz/Cargo.toml's release profile).
export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cllvm-args=-sanitizer-coverage-stack-depth \
-Cforce-frame-pointers=yes"
export CARGO_TARGET_DIR="$IPUFLOW_ROOT/fuzz/target"
BIN="$CARGO_TARGET_DIR/$HOST/release"
WORK="$IPUFLOW_ROOT/fuzz/corpus"

if [ $# -gt 0 ]; then
    PLAN=("$1:${2:-60}")
else
    # The decoder gets the largest share: it is the first thing every model file meets.
    PLAN=("model_decode:$((TOTAL * 4 / 9))" "calib_data:$((TOTAL * 5 / 18))" "capi_model_bytes:$((TOTAL * 5 / 18))")
fi

echo "fuzz: building the targets (stable $(rustc --version | cut -d' ' -f2), coverage flags of cargo-fuzz)"
(cd fuzz && cargo build --locked --release --target "$HOST" --bins) || exit 1

ensure_venv
[ -d "$IPUFLOW_CACHE/onnx-testdata/node" ] || bash scripts/fetch_onnx_testdata.sh || exit 1
photos=()
for d in "$IPUFLOW_ROOT/../shared/data/images/calib" "$IPUFLOW_CACHE/demo/images"; do
    [ -d "$d" ] && photos+=(--images "$d")
done
rm -rf "$WORK"
"$IPUFLOW_VENV/bin/python" fuzz/seeds.py "$WORK/seeds" --models "$IPUFLOW_CACHE/onnx-testdata" "${photos[@]}" || exit 1

failed=0
for item in "${PLAN[@]}"; do
    target="${item%%:*}" secs="${item##*:}"
    case "$target" in
        calib_data) seeds="$WORK/seeds/calib" ;;
        model_decode | capi_model_bytes) seeds="$WORK/seeds/models" ;;
        *) echo "fuzz: unknown target '$target' (model_decode, calib_data, capi_model_bytes)" >&2; exit 2 ;;
    esac
    mkdir -p "$WORK/$target" "fuzz/artifacts/$target"
    log="$WORK/$target.log"
    touch "$log.start" # artifacts newer than this are this run's
    t0=$SECONDS
    # -rss_limit_mb / -malloc_limit_mb: a single input may not make the process hold more than 2 GiB (an
    # allocation sized from the input without a bound shows up here); -timeout: no input may take 20 s (a 2.6 KB
    # JPEG declaring 9000x6912 CMYK pixels takes ~4 s of CPU to decode and resize today, within the image crate's
    # 512 MB decoding limit: 20 s leaves room for a loaded machine).
    fuzz_once() {
        "$BIN/$target" "$WORK/$target" "$seeds" -max_len=65536 -timeout=20 -rss_limit_mb=2048 \
            -malloc_limit_mb=2048 -print_final_stats=1 -artifact_prefix="fuzz/artifacts/$target/" "$@" >>"$log" 2>&1
    }
    # libFuzzer exits 77 (-error_exitcode) on a crash: caught here (common.sh sets -e), never passed on (77 is
    # test.sh's "skipped").
    rc=0
    : >"$log"
    fuzz_once -max_total_time="$secs" || rc=$?
    # The decoder's floor: a slow (shared, loaded) machine tops the first run up to 10^6 executions on the corpus it
    # grew, within 120 s more; a fast one never needs this (about 30 000 executions/s on one free core).
    if [ "$target" = model_decode ] && [ "$rc" = 0 ]; then
        done_runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
        if [ "${done_runs:-0}" -lt "$MIN_DECODE_RUNS" ]; then
            echo "fuzz: model_decode: ${done_runs:-0} executions in $secs s, topping up to $MIN_DECODE_RUNS"
            fuzz_once -runs="$((MIN_DECODE_RUNS - ${done_runs:-0}))" -max_total_time=120 || rc=$?
        fi
    fi
    # A crash while loading the seeds leaves no coverage line: `|| true`, or -e and pipefail would end the script.
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | awk '{n += $1} END {print n + 0}')"
    rss="$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | sort -n | tail -1)"
    cov="$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 || true)"
    secs=$((SECONDS - t0))
    printf 'fuzz: %-17s %10s executions in %4s s (%s, peak %s MB, %s seeds)\n' \
        "$target" "${runs:-?}" "$secs" "${cov:-no coverage line}" "${rss:-?}" "$(find "$seeds" -type f | wc -l)"
    if [ "$rc" != 0 ]; then
        failed=1
        echo "fuzz: $target FAILED (exit $rc); the end of its log:" >&2
        grep -vE '^(#[0-9]+|INFO:|"|###)' "$log" | grep -vE '^ +([0-9]+:|at )' | tail -n 25 >&2
        for a in "fuzz/artifacts/$target"/*; do
            [ -f "$a" ] && [ "$a" -nt "$log.start" ] && echo "fuzz: reproducer kept: $a (rerun: $BIN/$target $a)" >&2
        done
    elif [ "$target" = model_decode ] && [ "${runs:-0}" -lt "$MIN_DECODE_RUNS" ]; then
        failed=1
        echo "fuzz: model_decode ran ${runs:-0} inputs in $secs s, below the required $MIN_DECODE_RUNS" >&2
    fi
done
exit $failed

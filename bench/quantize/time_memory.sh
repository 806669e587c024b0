#!/usr/bin/env bash
# Whole-process quantize time and peak RSS (issue 12's time and memory targets), alternating runs of
#   a: MinMax only (no equalization, bias correction, learned rounding or weight-range search, --method minmax)
#   b: part 1's recipe (the preset's defaults, learned rounding off)
#   c: one histogram method alone (switches as in a)
# Usage: bench/quantize/time_memory.sh [BIN] [MODEL] [CALIB_DIR] [REPS] [PRESETS] [METHODS]
# Prints one line per run: preset case method wall_s user_s sys_s user+sys_s peak_rss_kb, then the load average.
set -euo pipefail
bin=${1:-target/debug/examples/quantize}
model=${2:-../shared/models/efficientnet-lite0.onnx}
calib=${3:-../shared/data/images/calib}
reps=${4:-3}
presets=${5:-XINT8 A8W8}
methods=${6:-percentile entropy minmse}
out=$(mktemp -d)
off="IPUFLOW_CLE=0 IPUFLOW_BIAS_CORRECTION=0 IPUFLOW_LEARNED_ROUNDING=0 IPUFLOW_WEIGHT_MSE=0"
run() { # preset case method env...
    local p=$1 c=$2 m=$3; shift 3
    local args=()
    [ "$m" != default ] && args=(--method "$m")
    env "$@" /usr/bin/time -f "%e %U %S %M" -o "$out/t" "$bin" "$model" "$p" "$calib" "$out/q.onnx" "${args[@]}" \
        2>"$out/log" || { cat "$out/log" >&2; exit 1; }
    read -r w u s m_kb <"$out/t"
    printf '%s %s %s %s %s %s %.2f %s\n' "$p" "$c" "$m" "$w" "$u" "$s" "$(echo "$u + $s" | bc)" "$m_kb"
}
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$reps"); do
    for p in $presets; do
        run "$p" a minmax $off
        run "$p" b default IPUFLOW_LEARNED_ROUNDING=0
        for m in $methods; do run "$p" c "$m" $off; done
    done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
rm -rf "$out"

#!/usr/bin/env bash
# ipuflow's presets beside ONNX Runtime's quantize_static on the real-model corpus (issue 13's last target), from one
# command, written to bench/results/corpus_peers.{md,json}:
#
#   bash bench/corpus/run.sh [-j JOBS] [MODEL...]     (default: every manifest model that ipuflow quantizes; -j 1)
#
# A subset of models redoes those; the table keeps the other models' results of earlier runs (from the work files).
#
# IPUFLOW_PEERS_CONFIGS (space-separated, default all eight below) redoes only those configurations of each model,
# keeping the others' files: for a rerun after one quantizer changed.
#
# IPUFLOW_PEERS_QUANTIZE_ARGS (e.g. "--method minmax") adds options to every `ipuflow quantize`: a sweep away from the
# presets' defaults. Its work files go to $IPUFLOW_CACHE/corpus-peers@<options>/ and the table is not rewritten (it
# shows the defaults); read the eval.<cfg>.json files there (bench/results/calib_sweep.md does).
#
# Per model, on the corpus's own data (scripts/corpus_data.py: 4 calibration, 4 evaluation samples): `ipuflow
# quantize` with XINT8, A8W8, A16W8 and CPU, ONNX Runtime 1.32's quantize_static (QDQ, MinMax, S8 weights) per-tensor
# and per-channel with U8 and with U16 activations (bench/corpus/ort_quantize.py, in the venv of setup_ortq.sh), then
# every result evaluated the same way, `ipuflow eval --json` against the float model (worst-output SQNR, cosine, task
# metric); bench/corpus/table.py pairs them. A step that fails is a cell saying why, not a stop.
# Environment: IPUFLOW_BIN (default target/debug/ipuflow, built if missing), IPUFLOW_ORT_LIBRARY (default: the
# cache's 1.32.0). Work files: $IPUFLOW_CACHE/corpus-peers/<model>/. About 30 minutes with -j 2 on 2 busy cores.
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/common.sh"
cd "$IPUFLOW_ROOT"
ensure_venv
jobs=1 names=()
while [ $# -gt 0 ]; do
    case "$1" in
        -j) jobs="$2"; shift 2 ;;
        *) names+=("$1"); shift ;;
    esac
done
BIN="${IPUFLOW_BIN:-${CARGO_TARGET_DIR:-$IPUFLOW_ROOT/target}/debug/ipuflow}"
[ -x "$BIN" ] || cargo build --locked --bin ipuflow
export IPUFLOW_ORT_LIBRARY="${IPUFLOW_ORT_LIBRARY:-$IPUFLOW_CACHE/onnxruntime-1.32.0/linux-x64/libonnxruntime.so.1.32.0}"
ORTQ_PY="$(bash bench/corpus/setup_ortq.sh)"
CORPUS="$(bash scripts/fetch_corpus.sh | tail -n 1)"
MANIFEST=tests/corpus/manifest.json
WORK="$IPUFLOW_CACHE/corpus-peers"
read -r -a QARGS <<<"${IPUFLOW_PEERS_QUANTIZE_ARGS:-}"
if [ "${#QARGS[@]}" -gt 0 ]; then WORK="$WORK@$(printf '%s' "${QARGS[*]}" | tr -c 'A-Za-z0-9.=-' '_')"; fi
# Every model the table can hold; a subset run redoes its models and the table keeps the others' earlier results.
mapfile -t all_names < <(python -c 'import json,sys
for m in json.load(open(sys.argv[1]))["models"]:
    if not m.get("expect_quantize_error"): print(m["name"])' "$MANIFEST")
[ "${#names[@]}" -gt 0 ] || names=("${all_names[@]}")
ALL_CONFIGS="xint8 a8w8 a16w8 cpu ort_pt_u8s8 ort_pc_u8s8 ort_pt_u16s8 ort_pc_u16s8"
CONFIGS="${IPUFLOW_PEERS_CONFIGS:-$ALL_CONFIGS}"
export BIN ORTQ_PY CORPUS MANIFEST WORK CONFIGS ALL_CONFIGS IPUFLOW_PEERS_QUANTIZE_ARGS

# one_model NAME: every quantization of NAME and its eval, into $WORK/NAME/ (NAME.log holds the progress).
one_model() {
    local name="$1" D="$CORPUS/$1" O="$WORK/$1" t=$SECONDS cfg kinds=() qargs=()
    read -r -a qargs <<<"${IPUFLOW_PEERS_QUANTIZE_ARGS:-}"
    if [ "$CONFIGS" = "$ALL_CONFIGS" ]; then rm -rf "$O"; fi
    mkdir -p "$O"
    [ -f "$D/model.onnx" ] || { echo "$name: not fetched" >"$O/missing"; return 0; }
    mapfile -t kinds < <(python -c 'import json,sys; m={m["name"]: m for m in json.load(open(sys.argv[1]))["models"]}[sys.argv[2]]
for n, k in m.get("output_kinds", {}).items(): print("--output-kind"); print(f"{n}={k}")' "$MANIFEST" "$name")
    for cfg in $CONFIGS; do
        rm -f "$O"/*."$cfg".json "$O"/*."$cfg".log
        if [ "${cfg#ort_}" != "$cfg" ]; then
            "$ORTQ_PY" bench/corpus/ort_quantize.py "${cfg#ort_}" "$D/model.onnx" "$D/calib" "$O/$cfg.onnx" \
                >"$O/quantize.$cfg.json" 2>"$O/quantize.$cfg.log" || continue
        else
            "$BIN" --json quantize "$D/model.onnx" -o "$O/$cfg.onnx" --preset "$cfg" --calib "$D/calib" "${qargs[@]}" \
                --report "$O/report.$cfg.json" >"$O/quantize.$cfg.json" 2>"$O/quantize.$cfg.log" || continue
        fi
        "$BIN" --json eval "$D/model.onnx" "$O/$cfg.onnx" --data "$D/eval" --threads 2 "${kinds[@]}" \
            >"$O/eval.$cfg.json" 2>"$O/eval.$cfg.log" || true
        rm -f "$O/$cfg.onnx"
    done
    echo "== $name done in $((SECONDS - t))s"
}
export -f one_model
T0=$SECONDS
printf '%s\n' "${names[@]}" | xargs -P "$jobs" -I{} bash -c 'one_model "$@"' _ {}
if [ "${#QARGS[@]}" -gt 0 ]; then
    echo "wrote $WORK/*/eval.<cfg>.json (options: ${QARGS[*]}; table not rewritten) ($((SECONDS - T0))s)" >&2
    exit 0
fi
python bench/corpus/table.py "$WORK" "$MANIFEST" bench/results/corpus_peers.md bench/results/corpus_peers.json \
    "${all_names[@]}"
echo "wrote bench/results/corpus_peers.md, corpus_peers.json ($((SECONDS - T0))s, -j $jobs)" >&2

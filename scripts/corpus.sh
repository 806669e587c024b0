#!/usr/bin/env bash
# The real-model corpus test (tests/corpus/manifest.json): on each model, `ipuflow inspect`, `quantize` with every
# preset (xint8, a8w8, a16w8, cpu), `eval` of each result against the float model, `check` and `run` of the XINT8
# model. Any error fails the test (exit 1), naming the model and the step; a per-model results table (SQNR in dB per
# preset, and top-1 agreement where the output is class scores) is printed last, in Markdown, and written to
# $IPUFLOW_CACHE/corpus/results.md. Regenerate the README's table with:
#
#   scripts/corpus.sh
#
# Environment: IPUFLOW_BIN (default: target/debug/ipuflow, built if missing), IPUFLOW_ORT_LIBRARY (default: the one
# scripts/fetch_ort.sh fetches), IPUFLOW_CORPUS_MODELS (space-separated subset of model names).
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$IPUFLOW_ROOT"
ensure_venv
BIN="${IPUFLOW_BIN:-${CARGO_TARGET_DIR:-$IPUFLOW_ROOT/target}/debug/ipuflow}"
[ -x "$BIN" ] || cargo build --locked --bin ipuflow
export IPUFLOW_ORT_LIBRARY="${IPUFLOW_ORT_LIBRARY:-$(bash scripts/fetch_ort.sh | tail -n 1)}"
CORPUS="$(bash scripts/fetch_corpus.sh | tail -n 1)"
MANIFEST=tests/corpus/manifest.json
PRESETS="xint8 a8w8 a16w8 cpu"
NAMES="${IPUFLOW_CORPUS_MODELS:-$(python -c 'import json,sys; print(" ".join(m["name"] for m in json.load(open(sys.argv[1]))["models"]))' "$MANIFEST")}"
FAILURES=()
T0=$SECONDS

# step MODEL WHAT ARGS...: runs `ipuflow --json ARGS`, stdout to $OUT/WHAT.json, stderr to $OUT/WHAT.log.
step() {
    local name="$1" what="$2"
    shift 2
    if ! "$BIN" --json "$@" >"$OUT/$what.json" 2>"$OUT/$what.log"; then
        FAILURES+=("$name: $what: $(tail -n 3 "$OUT/$what.log" | tr '\n' ' ')")
        echo "  FAIL $what: $(tail -n 3 "$OUT/$what.log")"
        return 1
    fi
}

# The --input options of `run`: the first evaluation sample (one file, or a folder of <input>.npy).
run_inputs() {
    local first
    first="$(find "$1/eval" -mindepth 1 -maxdepth 1 | sort | head -n 1)"
    if [ -d "$first" ]; then
        for f in "$first"/*.npy; do
            local n="${f##*/}"
            printf '%s\n' --input "${n%.npy}=$f"
        done
    else
        printf '%s\n' --input "$first"
    fi
}

for name in $NAMES; do
    D="$CORPUS/$name"
    if [ ! -f "$D/model.onnx" ]; then
        # Only a model of ../shared can be missing after a successful fetch; CI always has ../shared.
        echo "== $name: skipped (not fetched: see scripts/fetch_corpus.sh's output)"
        [ "${CI:-}" = true ] && FAILURES+=("$name: missing under CI")
        continue
    fi
    OUT="$D/out"
    rm -rf "$OUT" && mkdir -p "$OUT"
    t=$SECONDS
    echo "== $name"
    step "$name" inspect inspect "$D/model.onnx" || continue
    # A model ipuflow must refuse to quantize (the manifest says with which error kind): the refusal is the test.
    expect="$(python -c 'import json,sys; m={m["name"]: m for m in json.load(open(sys.argv[1]))["models"]}[sys.argv[2]]; print(m.get("expect_quantize_error", ""))' "$MANIFEST" "$name")"
    if [ -n "$expect" ]; then
        for p in $PRESETS; do
            if "$BIN" --json quantize "$D/model.onnx" -o "$OUT/$p.onnx" --preset "$p" --calib "$D/calib" \
                >"$OUT/quantize.$p.json" 2>"$OUT/quantize.$p.log"; then
                FAILURES+=("$name: quantize.$p: succeeded, expected the error $expect")
            elif ! python -c 'import json,sys; sys.exit(json.load(open(sys.argv[1]))["error"]["kind"] != sys.argv[2])' \
                "$OUT/quantize.$p.json" "$expect" 2>/dev/null; then
                FAILURES+=("$name: quantize.$p: failed, but not with $expect: $(tail -n 2 "$OUT/quantize.$p.log" | tr '\n' ' ')")
            elif [ -e "$OUT/$p.onnx" ]; then
                FAILURES+=("$name: quantize.$p: refused but left $OUT/$p.onnx")
            else
                echo "  quantize.$p refused as expected ($expect)"
            fi
        done
        echo "  done in $((SECONDS - t))s"
        continue
    fi
    for p in $PRESETS; do
        step "$name" "quantize.$p" quantize "$D/model.onnx" -o "$OUT/$p.onnx" --preset "$p" --calib "$D/calib" \
            --report "$OUT/report.$p.json" || continue
        step "$name" "eval.$p" eval "$D/model.onnx" "$OUT/$p.onnx" --data "$D/eval" --threads 2 || true
    done
    if [ -f "$OUT/xint8.onnx" ]; then
        step "$name" check check "$OUT/xint8.onnx" || true
        mapfile -t inputs < <(run_inputs "$D")
        step "$name" run run "$OUT/xint8.onnx" "${inputs[@]}" --repeat 2 --warmup 1 --threads 2 || true
    fi
    echo "  done in $((SECONDS - t))s"
done

python - "$CORPUS" "$MANIFEST" "$PRESETS" $NAMES >"$CORPUS/results.md" <<'PY'
import json, os, sys
corpus, manifest, presets, names = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4:]
models = {m["name"]: m for m in json.load(open(manifest))["models"]}
def load(n, f):
    try:
        return json.load(open(os.path.join(corpus, n, "out", f)))
    except (OSError, ValueError):
        return None
print("| model | task | nodes quantized (XINT8) | " + " | ".join(p.upper() for p in presets) + " |")
print("|---|---|---|" + "---|" * len(presets))
for n in names:
    if not os.path.isdir(os.path.join(corpus, n)):
        print(f"| {n} | not fetched |" + " |" * (len(presets) + 1))
        continue
    if models[n].get("expect_quantize_error"):
        cell = f"refused as expected ({models[n]['expect_quantize_error']})"
        print(f"| {n} | {models[n]['task'].split(' (')[0]} | 0 (all compute inside If) | " + " | ".join([cell] * len(presets)) + " |")
        continue
    r = load(n, "report.xint8.json")
    q = f"{sum(x['quantized'] for x in r['nodes'])} of {len(r['nodes'])}" if r else "fails"
    cells = []
    for p in presets:
        e = load(n, f"eval.{p}.json")
        if e is None:
            cells.append("fails")
            continue
        c = e["comparison"]
        per = [v for _, v in c.get("sqnr_per_output_db", []) if v is not None]
        if c.get("sqnr_db") is not None:
            cell = f"{c['sqnr_db']:.1f} dB"
        elif per:  # some outputs are not float (token ids, argmax): the worst float output
            cell = f"{min(per):.1f} dB (worst float output)"
        else:
            cell = "identical outputs"
        if models[n]["metric"].startswith("top-1") and c.get("top1_agreement") is not None:
            cell += f", top-1 {c['top1_agreement']:.2f}"
        cells.append(cell)
    print(f"| {n} | {models[n]['task'].split(' (')[0]} | {q} | " + " | ".join(cells) + " |")
PY
echo
echo "SQNR of the quantized model's outputs against the float model's on the evaluation samples (all float outputs)."
cat "$CORPUS/results.md"
echo "(written to $CORPUS/results.md; $((SECONDS - T0))s)"
if [ "${#FAILURES[@]}" -gt 0 ]; then
    printf '\ncorpus: %d step(s) failed:\n' "${#FAILURES[@]}"
    printf '  %s\n' "${FAILURES[@]}"
    exit 1
fi
echo "corpus: every step passed"

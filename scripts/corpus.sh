#!/usr/bin/env bash
# The real-model corpus test (tests/corpus/manifest.json): on each model, `ipuflow inspect`, `quantize` with every
# preset (xint8, a8w8, a16w8, cpu), `eval` of each result against the float model, `check` and `run` of the XINT8
# model. Any error fails the test (exit 1), naming the model and the step; a per-model results table (per preset: the
# worst output's SQNR, the lowest cosine, and each output kind's task metric: top-1 agreement, sequence agreement, box
# recall and precision) is printed last, in Markdown, and written to $IPUFLOW_CACHE/corpus/results.md. The README's
# table is that file, regenerated with:
#
#   IPUFLOW_BIN=target/debug/ipuflow bash scripts/corpus.sh
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
    # The manifest's output_kinds: outputs whose shape misleads the inference (landmarks look like class scores).
    mapfile -t kinds < <(python -c 'import json,sys; m={m["name"]: m for m in json.load(open(sys.argv[1]))["models"]}[sys.argv[2]]
for n, k in m.get("output_kinds", {}).items(): print("--output-kind"); print(f"{n}={k}")' "$MANIFEST" "$name")
    for p in $PRESETS; do
        step "$name" "quantize.$p" quantize "$D/model.onnx" -o "$OUT/$p.onnx" --preset "$p" --calib "$D/calib" \
            --report "$OUT/report.$p.json" || continue
        step "$name" "eval.$p" eval "$D/model.onnx" "$OUT/$p.onnx" --data "$D/eval" --threads 2 "${kinds[@]}" || true
    done
    if [ -f "$OUT/xint8.onnx" ]; then
        step "$name" check check "$OUT/xint8.onnx" || true
        mapfile -t inputs < <(run_inputs "$D")
        step "$name" run run "$OUT/xint8.onnx" "${inputs[@]}" --repeat 2 --warmup 1 --threads 2 || true
    fi
    echo "  done in $((SECONDS - t))s"
done

python - "$CORPUS" "$MANIFEST" "$PRESETS" $NAMES >"$CORPUS/results.md" <<'PY'
import json, math, os, sys
corpus, manifest, presets, names = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4:]
models = {m["name"]: m for m in json.load(open(manifest))["models"]}
def load(n, f):
    try:
        return json.load(open(os.path.join(corpus, n, "out", f)))
    except (OSError, ValueError):
        return None
# The task metric of each output kind (`ipuflow eval --json`'s outputs[].metrics), as printed in a cell.
TASK = [("top1_agreement", "top-1 {:.2f}"), ("sequence_agreement", "sequence {:.2f}"),
        ("step_agreement", "steps {:.2f}"), ("box_recall", "box recall {:.2f}"),
        ("box_precision", "precision {:.2f}")]
def cell(e):
    outs = e.get("outputs") or []
    if not outs:
        return "no comparable output"
    m = [{x["name"]: x["value"] for x in o["metrics"]} for o in outs]
    sqnr = [math.inf if x.get("sqnr_db") is None else x["sqnr_db"] for x in m]
    worst = min(sqnr)
    parts = ["identical" if worst == math.inf else f"{worst:.1f} dB"]
    parts.append(f"cos {min(x['cosine'] for x in m if x.get('cosine') is not None):.3f}")
    if len(outs) > 1:
        parts[0] += f" (worst of {len(outs)})"
    for key, fmt in TASK:
        # The worst output where several have the metric; a detection with no float box above the threshold says so.
        have = [x[key] for x in m if key in x]
        vals = [v for v in have if v is not None]
        if vals:
            parts.append(fmt.format(min(vals)))
        elif have and key == "box_recall":
            parts.append("no float detections")
    return ", ".join(parts)
print("| model | task | nodes quantized (XINT8) | " + " | ".join(p.upper() for p in presets) + " |")
print("|---|---|---|" + "---|" * len(presets))
for n in names:
    if not os.path.isdir(os.path.join(corpus, n)):
        print(f"| {n} | not fetched |" + " |" * (len(presets) + 1))
        continue
    if models[n].get("expect_quantize_error"):
        c = f"refused as expected ({models[n]['expect_quantize_error']})"
        print(f"| {n} | {models[n]['task'].split(' (')[0]} | 0 (all compute inside If) | " + " | ".join([c] * len(presets)) + " |")
        continue
    r = load(n, "report.xint8.json")
    q = f"{sum(x['quantized'] for x in r['nodes'])} of {len(r['nodes'])}" if r else "fails"
    cells = []
    for p in presets:
        e = load(n, f"eval.{p}.json")
        cells.append("fails" if e is None else cell(e))
    print(f"| {n} | {models[n]['task'].split(' (')[0]} | {q} | " + " | ".join(cells) + " |")
PY
echo
echo "Per model and preset, from \`ipuflow eval --json\`'s outputs (by kind): the worst output's SQNR against the float"
echo "model and the lowest cosine, then each output kind's task metric (top-1 agreement for class scores, sequence"
echo "and step agreement for recognizers, box recall and precision for detection heads), the worst output's where"
echo "several have it."
cat "$CORPUS/results.md"
echo "(written to $CORPUS/results.md; $((SECONDS - T0))s)"
if [ "${#FAILURES[@]}" -gt 0 ]; then
    printf '\ncorpus: %d step(s) failed:\n' "${#FAILURES[@]}"
    printf '  %s\n' "${FAILURES[@]}"
    exit 1
fi
echo "corpus: every step passed"

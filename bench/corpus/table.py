"""Pairs ipuflow's presets with ONNX Runtime's quantize_static configurations from run.sh's work files and writes the
side-by-side table:

  python table.py WORK_DIR MANIFEST OUT.md OUT.json MODEL...

WORK_DIR/<model>/ holds quantize.<cfg>.{json,log} and eval.<cfg>.{json,log} for cfg in xint8, a8w8, a16w8, cpu and
ort_{pt,pc}_{u8,u16}s8. Per configuration: the worst output's SQNR, the lowest cosine and each task metric's worst
output (as scripts/corpus.sh reports them). "At least as good" means: ipuflow's worst SQNR is not below ORT's by
more than the table's rounding (0.05 dB) and no task metric is below ORT's; where a model's outputs have no task
metric (segmentation maps, embeddings, VAD probabilities), the lowest cosine stands in for it.
"""
import json
import math
import os
import subprocess
import sys
import time

PAIRS = [  # (ipuflow preset, ORT configuration it corresponds to, why)
    ("xint8", "ort_pt_u8s8", "per-tensor; XINT8 also forces power-of-two scales"),
    ("a8w8", "ort_pt_u8s8", "per-tensor U8 activations, S8 weights"),
    ("cpu", "ort_pc_u8s8", "per-channel S8 weights, U8 activations"),
    ("a16w8", "ort_pt_u16s8", "16-bit activations, per-tensor S8 weights"),
    ("a16w8", "ort_pc_u16s8", "16-bit activations; ORT's weights per-channel, A16W8's per-tensor"),
]
LABEL = {"xint8": "XINT8", "a8w8": "A8W8", "a16w8": "A16W8", "cpu": "CPU", "ort_pt_u8s8": "ORT per-tensor U8S8",
         "ort_pc_u8s8": "ORT per-channel U8S8", "ort_pt_u16s8": "ORT per-tensor U16S8",
         "ort_pc_u16s8": "ORT per-channel U16S8"}
TASK = [("top1_agreement", "top-1 {:.2f}"), ("sequence_agreement", "sequence {:.2f}"),
        ("step_agreement", "steps {:.2f}"), ("box_recall", "box recall {:.2f}"), ("box_precision", "precision {:.2f}")]
SQNR_TOLERANCE_DB = 0.05
AXIS_BUG = "Unrecognized attribute: axis for operator DequantizeLinear"


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def failure(work, cfg):
    """Why cfg has no evaluation: the quantizer's or the evaluation's error, shortened for a table cell."""
    for step in ("eval", "quantize"):
        j = read_json(os.path.join(work, f"{step}.{cfg}.json"))
        if j and "error" in j:
            msg = j["error"].get("message", "")
            if AXIS_BUG in msg:
                return ("ORT's model does not load: its per-channel DequantizeLinear of a bias has an axis at "
                        "opset < 13 (ONNX Runtime 1.32 quantizer bug)")
            return f"{step} fails: {msg[:200]}"
        try:
            with open(os.path.join(work, f"{step}.{cfg}.log")) as f:
                lines = [x for x in f.read().splitlines() if x.strip()]
        except OSError:
            continue
        if lines and step == "quantize" and (j is None or not j):
            return f"quantize fails: {lines[-1][:200]}"
    return "did not run"


def summarize(e):
    """The worst output's SQNR (inf: identical), the lowest cosine and each task metric's worst output."""
    outs = e.get("outputs") or []
    metrics = [{x["name"]: x["value"] for x in o["metrics"]} for o in outs]
    if not metrics:
        return None
    sqnr = min(math.inf if m.get("sqnr_db") is None else m["sqnr_db"] for m in metrics)
    cos = [m["cosine"] for m in metrics if m.get("cosine") is not None]
    task = {}
    for key, _ in TASK:
        vals = [m[key] for m in metrics if m.get(key) is not None]
        if vals:
            task[key] = min(vals)
    per_output = {o["name"]: None if m.get("sqnr_db") is None else round(m["sqnr_db"], 3)
                  for o, m in zip(outs, metrics)}
    return {"sqnr_db": None if sqnr == math.inf else round(sqnr, 3), "cosine": round(min(cos), 5) if cos else None,
            "task": task, "outputs": len(metrics), "sqnr_per_output_db": per_output}


def cell(s):
    if "error" in s:
        return s["error"]
    parts = ["identical" if s["sqnr_db"] is None else f"{s['sqnr_db']:.1f} dB"]
    if s["outputs"] > 1:
        parts[0] += f" (worst of {s['outputs']})"
    if s["cosine"] is not None:
        parts.append(f"cos {s['cosine']:.3f}")
    parts += [fmt.format(s["task"][k]) for k, fmt in TASK if k in s["task"]]
    return ", ".join(parts)


def verdict(ipu, ort):
    """(yes/no/None, reason): whether ipuflow is at least as good as ORT on SQNR and the task metric."""
    if "error" in ort:
        return None, "no ORT number"
    if "error" in ipu:
        return False, "ipuflow fails"
    inf = math.inf
    a, b = ipu["sqnr_db"] or inf, ort["sqnr_db"] or inf
    worse = []
    if a + SQNR_TOLERANCE_DB < b:
        worse.append(f"SQNR {a - b:+.1f} dB")
    task = [k for k, _ in TASK if k in ort["task"]]
    if not task and ipu["cosine"] is not None and ort["cosine"] is not None and ipu["cosine"] < ort["cosine"] - 5e-4:
        worse.append(f"cos {ipu['cosine']:.3f} < {ort['cosine']:.3f}")
    for k in task:
        a, b = ipu["task"].get(k, -inf), ort["task"][k]
        if a < b - 1e-9:
            digits = 3 if f"{a:.2f}" == f"{b:.2f}" else 2
            worse.append(f"{dict(TASK)[k].split(' {')[0]} {a:.{digits}f} < {b:.{digits}f}")
    return (not worse), ("; ".join(worse) if worse else "")


def model_rows(work, name):
    configs = {}
    for cfg in LABEL:
        e = read_json(os.path.join(work, f"eval.{cfg}.json"))
        s = summarize(e) if e and "error" not in e else None
        configs[cfg] = s if s else {"error": failure(work, cfg)}
        q = read_json(os.path.join(work, f"quantize.{cfg}.json"))
        if cfg.startswith("ort_") and q:
            for key in ("pre_process", "weights_quantized", "nodes_quantized"):
                if key in q:
                    configs[cfg][key] = q[key]
        r = read_json(os.path.join(work, f"report.{cfg}.json"))
        if r and r.get("nodes"):
            configs[cfg]["nodes_quantized"] = f"{sum(1 for x in r['nodes'] if x['quantized'])} of {len(r['nodes'])}"
    pairs = []
    for ipu, ort, why in PAIRS:
        ok, reason = verdict(configs[ipu], configs[ort])
        pairs.append({"ipuflow": ipu, "ort": ort, "why": why, "at_least_as_good": ok, "worse_by": reason})
    return configs, pairs


def header():
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
    except OSError:
        commit = "unknown"
    return ["# ipuflow's presets beside ONNX Runtime's quantize_static on the real-model corpus", "",
            f"`bash bench/corpus/run.sh -j 2` at commit {commit}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
            "(bench/corpus/README.md; issue 13's last target). Each model on the corpus's own data",
            "(scripts/corpus_data.py: 4 calibration and 4 evaluation samples, so a ratio moves in steps of 0.25 for",
            "one-decision outputs), every quantized model evaluated the same way: `ipuflow eval --json` against the",
            "float model; the worst output's SQNR, the lowest cosine, then each task metric's worst output.",
            "ONNX Runtime 1.32.0's quantize_static: QDQ, MinMax, S8 weights, quant_pre_process first.",
            "\"At least as good\": SQNR not below ORT's by more than 0.05 dB and no task metric below ORT's; where the",
            "outputs have no task metric (probability maps, embeddings, VAD probabilities), the cosine stands in.",
            "n/a: ORT's model has no number (the cell below says why). With 4 calibration samples ipuflow's learned",
            "rounding is skipped on the image models (it needs 16; each quantize report's notes say so).", ""]


def summary(models, manifest):
    """One line per model: yes/no/n/a per pairing."""
    heads = [f"{LABEL[i]} vs {LABEL[o].replace('ORT ', '')}" for i, o, _ in PAIRS]
    lines = ["| model | kind | " + " | ".join(heads) + " |", "|---|---|" + "---|" * len(PAIRS)]
    for name, m in models.items():
        marks = ["n/a" if p["at_least_as_good"] is None else ("yes" if p["at_least_as_good"] else "**no**")
                 for p in m["pairs"]]
        lines.append(f"| {name} | {manifest[name]['covers'][0]} | " + " | ".join(marks) + " |")
    return lines


def details(models, manifest):
    lines = ["| model | task | ipuflow | ipuflow result | ORT | ORT result | ipuflow at least as good? |",
             "|---|---|---|---|---|---|---|"]
    for name, m in models.items():
        task = manifest[name]["task"].split(" (")[0]
        for p in m["pairs"]:
            ok = p["at_least_as_good"]
            mark = "n/a" if ok is None else ("yes" if ok else f"**no** ({p['worse_by']})")
            lines.append(f"| {name} | {task} | {LABEL[p['ipuflow']]} | {cell(m['configs'][p['ipuflow']])} | "
                         f"{LABEL[p['ort']]} | {cell(m['configs'][p['ort']])} | {mark} |")
    return lines


def notes(models):
    worse, pre, coverage = [], [], []
    for name, m in models.items():
        for p in m["pairs"]:
            if p["at_least_as_good"] is False:
                worse.append(f"- {name}, {LABEL[p['ipuflow']]} vs {LABEL[p['ort']]}: {p['worse_by']}")
        # One line per model and distinct note: the four ORT configurations usually share it.
        seen = {}
        for cfg, s in m["configs"].items():
            if s.get("pre_process", "ok") != "ok":
                seen.setdefault(s["pre_process"], []).append(LABEL[cfg].replace("ORT ", ""))
        pre += [f"- {name} ({', '.join(cfgs)}): {note}" for note, cfgs in seen.items()]
        c, o = m["configs"], m["configs"]["ort_pt_u8s8"]
        coverage.append(f"- {name}: ipuflow {c['xint8'].get('nodes_quantized', '?')} nodes (XINT8), "
                        f"{c['cpu'].get('nodes_quantized', '?')} (CPU); ORT per-tensor U8S8: "
                        f"{o.get('nodes_quantized', '?')} nodes read a DequantizeLinear, "
                        f"{o.get('weights_quantized', '?')} Conv/Gemm/MatMul weights quantized")
    n = sum(1 for m in models.values() for p in m["pairs"] if p["at_least_as_good"] is not None)
    lines = [f"ipuflow worse than ORT in {len(worse)} of {n} comparable pairs:", ""] + (worse or ["- none"])
    if pre:
        lines += ["", "ORT's quant_pre_process where it did not run whole (the model was still quantized):", ""] + pre
    return lines + ["", "What each quantizer quantized (a node or weight left float flatters SQNR):", ""] + coverage


def write_md(out, models, manifest):
    lines = header() + summary(models, manifest) + ["", "## Per model and pairing", ""] + details(models, manifest)
    lines += ["", "## Notes", ""] + notes(models)
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    if len(sys.argv) < 6:
        sys.exit(__doc__)
    work, manifest_path, out_md, out_json, names = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
    with open(manifest_path) as f:
        manifest = {m["name"]: m for m in json.load(f)["models"]}
    models = {}
    for name in names:
        if not os.path.isdir(os.path.join(work, name)) or os.path.exists(os.path.join(work, name, "missing")):
            continue
        configs, pairs = model_rows(os.path.join(work, name), name)
        models[name] = {"task": manifest[name]["task"], "configs": configs, "pairs": pairs}
    with open(out_json, "w") as f:
        json.dump({"calibration_samples": 4, "evaluation_samples": 4, "ort": "onnxruntime 1.32.0 quantize_static",
                   "sqnr_tolerance_db": SQNR_TOLERANCE_DB, "models": models}, f, indent=1)
        f.write("\n")
    write_md(out_md, models, manifest)


if __name__ == "__main__":
    main()

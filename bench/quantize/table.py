"""ipuflow's presets and the peers' equivalents on the anchor protocol, side by side in one run (issue 12). Run it
through table.sh, which builds the quantize example, sets up the venvs and draws the plot:

  python table.py --bin QUANTIZE --profile release|debug --ort-python PY [--quark-python PY | --quark-missing WHY]
                  --out-json accuracy.json

Every quantizer runs as its own process under /usr/bin/time -v (whole-process wall time and peak RSS): ipuflow's
quantize example, ONNX Runtime's quantize_static and AMD Quark through peer_quantize.py. Then each model is
evaluated here on ONNX Runtime's CPU EP against the float model: EfficientNet-Lite0 top-1 agreement and logits SQNR
over the 74 eval inputs (eval/ + labelled/, as is and flipped) and labelled top-1 on the 20 labelled images;
BlazeFace and hand-landmark the SQNR of every output over the same 74 inputs. A run that fails or times out becomes
a row saying why; the other rows still come out."""
import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import time

import numpy as np
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import protocol  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = ("efficientnet-lite0", "blazeface-short-range", "hand-landmark-lite")
# (tool, config, the ipuflow preset it stands beside, settings in words)
RUNS = [
    ("ipuflow", "XINT8", "XINT8", "power-of-two scales, U8 act (zp 128), S8 W per-tensor, int8 bias, MinMSE"),
    # Issue 13's rows: what learned rounding adds (part 1's recipe without it), and accuracy-aware mixed precision.
    ("ipuflow", "XINT8 part 1", "XINT8", "XINT8 without learned rounding (equalization, bias correction, MinMSE)"),
    ("ipuflow", "XINT8 mixed", "XINT8", "XINT8, --target-sqnr 20 --min-npu-coverage 0.9: the most sensitive layers "
     "raised (16-bit activations, then float on the CPU) while the pre-flight keeps >= 90 % of nodes on the NPU"),
    ("ipuflow", "A8W8", "A8W8", "S8 act, S8 W per-tensor, MinMax"),
    ("ipuflow", "A16W8", "A16W8", "S16 act, S8 W per-tensor, MinMax"),
    ("ipuflow", "CPU", "CPU", "U8 act, S8 W per-channel, MinMax"),
    ("ort", "pt_u8s8", "A8W8", "U8 act, S8 W per-tensor, MinMax"),
    ("ort", "pt_u16s8", "A16W8", "U16 act, S8 W per-tensor, MinMax"),
    ("ort", "pc_u16s8", "A16W8", "U16 act, S8 W per-channel, MinMax"),
    ("ort", "pc_u8s8", "CPU", "U8 act, S8 W per-channel, MinMax"),
    ("quark", "XINT8", "XINT8", "get_default_config('XINT8'): power-of-two, NPU recipe"),
    ("quark", "A8W8", "A8W8", "get_default_config('A8W8')"),
    ("quark", "A16W8", "A16W8", "get_default_config('A16W8')"),
    # Issue 13: Quark's learned rounding (AdaRound through PyTorch), capped by --adaround-timeout.
    ("quark", "XINT8_ADAROUND", "XINT8", "get_default_config('XINT8_ADAROUND'): XINT8 + AdaRound (1000 iterations "
     "per layer)"),
    ("quark", "A8W8_ADAROUND", "A8W8", "get_default_config('A8W8_ADAROUND')"),
    ("quark", "A16W8_ADAROUND", "A16W8", "get_default_config('A16W8_ADAROUND')"),
]
TOOL_NAMES = {"ipuflow": "ipuflow", "ort": "ONNX Runtime 1.32 quantize_static", "quark": "AMD Quark"}


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="ipuflow's quantize example (examples/quantize.rs)")
    ap.add_argument("--profile", required=True, choices=("release", "debug"))
    ap.add_argument("--ort-python", required=True, help="a python with onnxruntime 1.32.0 and sympy")
    ap.add_argument("--quark-python", help="the peers venv's python (amd-quark, torch, ninja beside it)")
    ap.add_argument("--quark-missing", default="", help="why Quark cannot run here (written into its rows)")
    ap.add_argument("--shared", default=os.path.join(HERE, "../../../shared"))
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--tools", default="ipuflow,ort,quark")
    ap.add_argument("--timeout", type=int, default=900, help="seconds one quantize process may take")
    ap.add_argument("--configs", default="", help="run only these configurations (comma-separated, e.g. "
                    "XINT8_ADAROUND); default: all")
    ap.add_argument("--keep-from", default="", help="a previous accuracy.json whose rows this run does not redo are "
                    "copied, marked with their own date (the ADAROUND rows take 30 minutes each)")
    ap.add_argument("--adaround-timeout", type=int, default=1800,
                    help="seconds one of Quark's ADAROUND runs may take (issue 13 caps them at 30 minutes)")
    ap.add_argument("--adaround-models", default="efficientnet-lite0",
                    help="the models Quark's ADAROUND configs run on (comma-separated; empty: none)")
    ap.add_argument("--work", required=True)
    ap.add_argument("--out-json", required=True)
    return ap.parse_args()


def timed(cmd, env, timeout, cwd):
    """Runs cmd under /usr/bin/time -v in cwd (Quark leaves files where it runs): dict(ok, wall_s, rss_mb, stdout,
    error)."""
    # A session of its own, so that a timeout kills the tool too, not only /usr/bin/time.
    proc = subprocess.Popen(["/usr/bin/time", "-v"] + cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=cwd, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        return dict(ok=False, error=f"did not finish in {timeout} s" + layer_progress(out + err))
    r = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", r.stderr)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr)
    if r.returncode != 0 or not wall or not rss:
        # /usr/bin/time's own lines come last; the tool's error is the text before them.
        text = r.stderr.split("\tCommand being timed")[0].strip().splitlines()
        tail = [ln.strip() for ln in text if ln.strip() and not ln.startswith("Command exited")][-2:]
        return dict(ok=False, error=f"exit {r.returncode}: " + " / ".join(tail)[-400:])
    h, m, s = wall.groups()
    return dict(ok=True, wall_s=int(h or 0) * 3600 + int(m) * 60 + float(s), rss_mb=int(rss.group(1)) / 1024,
                stdout=r.stdout)


# ipuflow's variant rows: (preset, extra arguments of the quantize example, environment switches).
IPUFLOW_VARIANTS = {
    "XINT8 part 1": ("XINT8", [], {"IPUFLOW_LEARNED_ROUNDING": "0"}),
    "XINT8 mixed": ("XINT8", ["--target-sqnr", "20", "--min-npu-coverage", "0.9"], {}),
}


def layer_progress(log):
    """What a learned-rounding run that was stopped had done, from Quark's per-layer profiler lines and tqdm's
    counter: ': k of N layers, T s per layer (training t s + inference i s)', or '' when the log has none."""
    train = [float(x) for x in re.findall(r"finetuning layer \d+, torch training time consumed ([\d.]+)s", log)]
    infer = [float(x) for x in re.findall(r"finetuning layer \d+, onnx inference .*?time consumed ([\d.]+)s", log)]
    if not train:
        return ""
    totals = re.findall(r"\|\s*\d+/(\d+) \[", log)
    of = f" of {totals[-1]}" if totals else ""
    k = len(train)
    t, i = sum(train) / k, sum(infer[:k]) / k if infer else 0.0
    return f": {k}{of} layers fine-tuned, {t + i:.0f} s per layer (training {t:.0f} s + inference {i:.0f} s)"


def quantize_cmd(a, tool, config, model_path, out):
    images = os.path.join(a.shared, "data/images")
    if tool == "ipuflow":
        preset, extra, _ = IPUFLOW_VARIANTS.get(config, (config, [], {}))
        return [a.bin, model_path, preset, os.path.join(images, "calib"), out] + extra
    py = a.ort_python if tool == "ort" else a.quark_python
    return [py, os.path.join(HERE, "peer_quantize.py"), tool, config, model_path, images, out]


def quantize(a, tool, config, model, env):
    """Runs one quantizer; the result row without accuracy yet."""
    row = dict(tool=tool, config=config, model=model)
    if tool == "quark" and not a.quark_python:
        return dict(row, ok=False, error="not run: " + a.quark_missing)
    out = os.path.join(a.work, f"{model}_{tool}_{config.replace(' ', '_')}.onnx")
    cmd = quantize_cmd(a, tool, config, os.path.join(a.shared, "models", model + ".onnx"), out)
    if tool == "ipuflow":
        env = dict(env, **IPUFLOW_VARIANTS.get(config, (None, None, {}))[2])
    res = timed(cmd, env, a.adaround_timeout if config.endswith("_ADAROUND") else a.timeout, a.work)
    row.update(ok=res["ok"], path=out)
    if not res["ok"]:
        return dict(row, error=res["error"])
    row.update(wall_s=round(res["wall_s"], 2), rss_mb=round(res["rss_mb"]))
    if tool != "ipuflow":
        info = json.loads(res["stdout"].strip().splitlines()[-1])
        row.update(call_s=info["call_s"], version=info["version"])
    return row


class Evaluator:
    """The float model's outputs on the eval inputs, computed once per model, and the metrics of a quantized one."""

    def __init__(self, shared, model):
        root = os.path.join(shared, "data/images")
        self.model = model
        self.path = os.path.join(shared, "models", model + ".onnx")
        size = protocol.input_size(self.session(self.path))
        files = protocol.images(root, "eval") + protocol.images(root, "labelled")
        self.inputs = [protocol.prep(f, size, flip) for flip in (False, True) for f in files]
        labelled = protocol.images(root, "labelled")
        self.labelled = [protocol.prep(f, size) for f in labelled]
        self.classes = protocol.labelled_classes(labelled)
        self.ref = self.run(self.path, self.inputs)
        self.outputs = [o.name for o in self.session(self.path).get_outputs()]

    @staticmethod
    def session(path):
        so = ort.SessionOptions()
        so.log_severity_level = 3
        return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])

    def run(self, path, inputs):
        s = self.session(path)
        name = s.get_inputs()[0].name
        outs = [s.run(None, {name: x}) for x in inputs]
        return [np.concatenate([o[k] for o in outs]) for k in range(len(outs[0]))]

    def float_row(self):
        if self.model != "efficientnet-lite0":
            return {}
        top1 = int((self.run(self.path, self.labelled)[0].argmax(1) == self.classes).sum())
        return dict(agreement=1.0, sqnr_db=float("inf"), labelled=top1, labelled_of=len(self.classes))

    def metrics(self, path):
        q = self.run(path, self.inputs)
        out = dict(output_sqnr_db={n: round(protocol.sqnr(r, x), 2) for n, r, x in zip(self.outputs, self.ref, q)})
        if self.model == "efficientnet-lite0":
            lab = self.run(path, self.labelled)[0]
            out.update(agreement=round(float((self.ref[0].argmax(1) == q[0].argmax(1)).mean()), 3),
                       sqnr_db=round(protocol.sqnr(self.ref[0], q[0]), 2),
                       labelled=int((lab.argmax(1) == self.classes).sum()), labelled_of=len(self.classes))
        return out


def machine():
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    mem = next((int(ln.split()[1]) for ln in open("/proc/meminfo") if ln.startswith("MemTotal")), 0)
    return f"{platform.system()} {platform.release()} {platform.machine()}, {cpu}, {os.cpu_count()} logical CPUs, " \
           f"{mem / 2**20:.0f} GiB"


def commit():
    """The worktree's commit, marked when bench/ or src/ has uncommitted changes."""
    git = ["git", "-C", HERE]
    head = subprocess.run(git + ["rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(git + ["status", "--porcelain", "--", "../../src", "../../examples", "."],
                           capture_output=True, text=True).stdout.strip()
    return (head or "unknown") + (" + uncommitted changes" if dirty else "")


def main():
    a = parse_args()
    a.work, a.bin, a.shared = (os.path.abspath(p) for p in (a.work, a.bin, a.shared))
    os.makedirs(a.work, exist_ok=True)
    env = dict(os.environ)
    if a.quark_python:
        # Quark builds its custom operators with ninja, which it looks for on PATH.
        env["PATH"] = os.path.dirname(a.quark_python) + os.pathsep + env.get("PATH", "")
    tools = a.tools.split(",")
    result = dict(date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), machine=machine(),
                  load_start=os.getloadavg(), profile=a.profile, commit=commit(), eval_onnxruntime=ort.__version__,
                  tool_names=TOOL_NAMES, rows=[], floats={})
    kept_rows = {}
    if a.keep_from:
        old = json.load(open(a.keep_from))
        kept_rows = {(r["tool"], r["config"], r["model"]): dict(r, kept_from=r.get("kept_from", old["date"]))
                     for r in old["rows"]}
    for model in a.models.split(","):
        ev = Evaluator(a.shared, model)
        result["floats"][model] = ev.float_row()
        for tool, config, preset, settings in RUNS:
            if tool not in tools:
                continue
            if config.endswith("_ADAROUND") and model not in a.adaround_models.split(","):
                continue
            if a.configs and config not in a.configs.split(","):
                kept = kept_rows.get((tool, config, model))
                if kept:
                    result["rows"].append(kept)
                continue
            row = dict(quantize(a, tool, config, model, env), preset=preset, settings=settings)
            if row["ok"]:
                try:
                    row.update(ev.metrics(row["path"]))
                except Exception as e:  # a peer's model that ONNX Runtime cannot load or run is a result too
                    row.update(ok=False, error=f"{tool} wrote {os.path.basename(row['path'])}, which ONNX Runtime "
                               f"cannot run: {str(e)[-300:]}")
            row.pop("path", None)
            result["rows"].append(row)
            print(json.dumps(row), flush=True)
    result["load_end"] = os.getloadavg()
    with open(a.out_json, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()

"""Accuracy sweep of ipuflow's presets on the three shared models (anchor protocol of
../shared/docs/quantization-anchors.md), one table per run:

  python bench/quantize/accuracy.py --bin target/release/examples/quantize [--presets XINT8,A8W8] [--env K=V ...]

EfficientNet-Lite0: top-1 agreement with float and logits SQNR over the 74 eval inputs (eval/ + labelled/, as is and
flipped), labelled top-1 on the 20 labelled images. BlazeFace and hand-landmark: SQNR of every output against the
float model over the same 74 inputs (resized to the model's input, same preprocessing). Quantize time is the whole
process (load, prepare, calibrate on calib/, write), wall clock. `--env` passes switches to the quantize example
(e.g. IPUFLOW_CLE=0) so one script sweeps them."""
import argparse, glob, os, subprocess, sys, time
import numpy as np
import onnxruntime as ort

# The anchor protocol's preprocessing and metrics, shared with table.py.
from protocol import labelled_classes, prep, sqnr

ap = argparse.ArgumentParser()
ap.add_argument("--bin", required=True)
ap.add_argument("--shared", default=os.path.join(os.path.dirname(__file__), "../../../shared"))
ap.add_argument("--presets", default="XINT8,A8W8,A16W8,CPU")
ap.add_argument("--models", default="efficientnet-lite0,blazeface-short-range,hand-landmark-lite")
ap.add_argument("--work", default="/tmp/ipuflow-acc-%d" % os.getpid())
ap.add_argument("--env", action="append", default=[])
# Extra arguments for the quantize example, e.g. --arg=--method --arg=minmse.
ap.add_argument("--arg", action="append", default=[])
ap.add_argument("--label", default="")
# Quantize this file instead of the shared model (e.g. a float model transformed by a prototype); accuracy is still
# measured against the shared float model. Only with a single --models entry.
ap.add_argument("--source-model", default=None)
a = ap.parse_args()
os.makedirs(a.work, exist_ok=True)
IM = os.path.join(a.shared, "data/images")


def session(path):
    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def run(path, inputs):
    s = session(path)
    n = s.get_inputs()[0].name
    outs = [s.run(None, {n: x}) for x in inputs]
    return [np.concatenate([o[k] for o in outs]) for k in range(len(outs[0]))]


env = dict(os.environ)
for kv in a.env:
    k, v = kv.split("=", 1)
    env[k] = v
files = sorted(glob.glob(IM + "/eval/*")) + sorted(glob.glob(IM + "/labelled/*"))
labelled = sorted(glob.glob(IM + "/labelled/*"))
labels = labelled_classes(labelled)
print(f"# {a.label} env={a.env} {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load {os.getloadavg()[0]:.1f}")
for model in a.models.split(","):
    mpath = os.path.join(a.shared, "models", model + ".onnx")
    size = session(mpath).get_inputs()[0].shape[2]
    inputs = [prep(f, size, fl) for fl in (False, True) for f in files]
    ref = run(mpath, inputs)
    for p in a.presets.split(","):
        out = os.path.join(a.work, f"{model}_{p}.onnx")
        t0 = time.time()
        r = subprocess.run([a.bin, a.source_model or mpath, p, IM + "/calib", out] + a.arg, capture_output=True, text=True, env=env)
        secs = time.time() - t0
        if r.returncode != 0:
            print(f"| {model} | {p} | FAILED: {r.stderr[-500:]}")
            continue
        q = run(out, inputs)
        if model == "efficientnet-lite0":
            lab = np.concatenate(run(out, [prep(f, size) for f in labelled])[:1])
            agree = float((ref[0].argmax(1) == q[0].argmax(1)).mean())
            print(f"| {model} | {p} | {secs:.2f} s | agreement {agree:.3f} | SQNR {sqnr(ref[0], q[0]):.1f} dB | "
                  f"labelled {int((lab.argmax(1) == labels).sum())}/20 |")
        else:
            per = " / ".join(f"{sqnr(r_, q_):.1f}" for r_, q_ in zip(ref, q))
            print(f"| {model} | {p} | {secs:.2f} s | per-output SQNR dB: {per} |")
        sys.stdout.flush()

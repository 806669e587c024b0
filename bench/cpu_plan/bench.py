"""CPU-plan latency table (issue 14); run through bench/cpu_plan/run.sh, which builds the ipuflow binary."""
import argparse, glob, json, os, subprocess, sys, time
import numpy as np
import onnxruntime as ort

ap = argparse.ArgumentParser()
ap.add_argument("--bin", required=True)
ap.add_argument("--images", required=True)
ap.add_argument("--work", required=True)
ap.add_argument("--runs", type=int, default=60)
ap.add_argument("--warmup", type=int, default=5)
ap.add_argument("--calib", type=int, default=8, help="calibration photos per model")
ap.add_argument("models", nargs="+")
a = ap.parse_args()
PRESETS = ["XINT8", "A8W8", "A16W8", "CPU"]

def sh(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}")
    return r.stdout

def session(path, threads):
    so = ort.SessionOptions(); so.intra_op_num_threads = threads; so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])

def feed(s):
    """Deterministic input: one calibration-like tensor per input, uniform in [-1, 1) (dynamic dims 1)."""
    rng = np.random.default_rng(0)
    out = {}
    for i in s.get_inputs():
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in i.shape]
        out[i.name] = rng.uniform(-1, 1, shape).astype(np.float32)
    return out

ORT_QUANT = r'''
import sys, numpy as np, onnxruntime as ort
from onnxruntime.quantization import quantize_static, QuantFormat, QuantType, CalibrationMethod
model, out, n, per_channel = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
s = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
rng = np.random.default_rng(1)
def sample():
    return {i.name: rng.uniform(-1, 1, [d if isinstance(d, int) and d > 0 else 1 for d in i.shape]).astype(np.float32)
            for i in s.get_inputs()}
class Reader:
    def __init__(self): self.items = [sample() for _ in range(n)]; self.i = 0
    def get_next(self):
        if self.i >= len(self.items): return None
        self.i += 1; return self.items[self.i - 1]
quantize_static(model, out, Reader(), quant_format=QuantFormat.QDQ, per_channel=per_channel,
                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax)
'''
ort_script = os.path.join(a.work, "ort_quant.py"); open(ort_script, "w").write(ORT_QUANT)

print(f"# CPU plan latency, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
print(f"ONNX Runtime {ort.__version__} CPU EP; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start; "
      f"median of {a.runs} interleaved runs after {a.warmup} warm-ups; ratio = float / model (> 1: faster than float)\n")
for model in a.models:
    name = os.path.splitext(os.path.basename(model))[0]
    variants = [("float", model, "")]
    # `ipuflow run` does not invent sizes for dynamic dimensions: give them as 1, as feed() does.
    shapes = []
    for i in session(model, 1).get_inputs():
        if any(not (isinstance(d, int) and d > 0) for d in i.shape):
            dims = ",".join(str(d) if isinstance(d, int) and d > 0 else "1" for d in i.shape)
            shapes += ["--input-shape", f"{i.name}={dims}"]
    for p in PRESETS:
        q = os.path.join(a.work, f"{name}.{p}.onnx")
        sh([a.bin, "quantize", model, "-o", q, "--preset", p.lower(), "--calib", a.images + "/calib",
            "--max-samples", str(a.calib)])
        variants.append((f"{p} as written", q, ""))
        cache = os.path.join(a.work, f"cache-{name}-{p}")
        run = json.loads(sh([a.bin, "run", q, "--device", "cpu", "--threads", "1", "--repeat", "1", "--warmup", "0",
                             "--cache-dir", cache, "--json"] + shapes))
        plan = run["session"]["cpu_plan"]
        planned = plan["cacheFile"] or q
        variants.append((f"{p} CPU plan ({plan['plan']})", planned, f"prepare {plan['prepareUs'] / 1000:.1f} ms"))
    oq = os.path.join(a.work, f"{name}.ort.onnx")
    sh([sys.executable, ort_script, model, oq, str(a.calib), "1"])
    ort_label = "ORT quantize_static (U8/S8 per-channel)"
    try:
        session(oq, 1)
    except Exception as e:  # opset < 13: ORT's per-channel bias DQ has an axis the opset does not allow
        print(f"(ORT's per-channel model does not load: {str(e)[:160]}...; per-tensor instead)\n")
        sh([sys.executable, ort_script, model, oq, str(a.calib), "0"])
        ort_label = "ORT quantize_static (U8/S8 per-tensor)"
    variants.append((ort_label, oq, ""))
    print(f"## {name}\n")
    print("| model | 1 thread ms | × float | 2 threads ms | × float | note |\n|---|---|---|---|---|---|")
    res = {}
    for threads in (1, 2):
        sessions = [session(p, threads) for _, p, _ in variants]
        feeds = [feed(s) for s in sessions]
        for s, f in zip(sessions, feeds):
            for _ in range(a.warmup): s.run(None, f)
        times = [[] for _ in variants]
        for r in range(a.runs):
            order = list(range(len(variants)))
            order = order[r % len(order):] + order[:r % len(order)]  # rotate who goes first
            for i in order:
                t0 = time.perf_counter(); sessions[i].run(None, feeds[i]); times[i].append(time.perf_counter() - t0)
        res[threads] = [float(np.median(t)) * 1000 for t in times]
    for i, (label, _, note) in enumerate(variants):
        r1, r2 = res[1][i], res[2][i]
        print(f"| {label} | {r1:.2f} | {res[1][0] / r1:.2f}× | {r2:.2f} | {res[2][0] / r2:.2f}× | {note} |")
    # Creation overhead: the plan's preparation (decode, rewrite, encode; from the session report) against ONNX
    # Runtime's own creation of the planned model, median of 5.
    xint8 = [v for v in variants if v[0].startswith("XINT8 CPU plan")][0]
    creates = []
    for _ in range(5):
        t0 = time.perf_counter(); session(xint8[1], 1); creates.append(time.perf_counter() - t0)
    print(f"\nXINT8 session creation: ONNX Runtime {np.median(creates) * 1000:.1f} ms (median of 5); plan {xint8[2]}\n")

"""Side-by-side quantization benchmark; run through bench/quantize/run.sh (which builds the ipuflow binary)."""
import argparse, glob, json, os, re, subprocess, sys, time
import numpy as np
from PIL import Image

ap = argparse.ArgumentParser()
ap.add_argument("--bin", required=True)
ap.add_argument("--model", required=True)
ap.add_argument("--images", required=True)
ap.add_argument("--work", required=True)
ap.add_argument("--repeats", type=int, default=3)
ap.add_argument("--ort-python", default=sys.executable, help="a python with onnxruntime 1.32.0 and sympy")
a = ap.parse_args()
SIZE = 224
PRESETS = ["XINT8", "A8W8", "A16W8", "CPU"]
# ../shared/docs/quantization-anchors.md (measured 2026-11-30 on this machine class)
ANCHORS = [
    ("ORT per-tensor W8, U8 act, MinMax", 3.9, 324, 0.757, 5.0, "18/20"),
    ("ORT per-channel W8, U8 act, MinMax", 5.1, 324, 0.838, 7.5, "17/20"),
    ("ORT per-channel W8, U16 act, MinMax", 6.0, 333, 0.946, 18.1, "17/20"),
    ("Quark XINT8", 22.7, 921, 0.595, 1.9, "16/20"),
    ("Quark A8W8", 11.2, 933, 0.757, 5.2, "18/20"),
    ("Quark A16W8", 9.6, 913, 0.757, 5.4, "18/20"),
]

def timed(cmd):
    """Runs cmd under /usr/bin/time -v: (wall s, peak RSS MB, stderr)."""
    r = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{r.stderr[-3000:]}")
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", r.stderr)
    h, m, s = wall.groups()
    secs = int(h or 0) * 3600 + int(m) * 60 + float(s)
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr).group(1)) / 1024
    return secs, rss, r.stderr

ORT_QUANT = r'''
import glob, sys, numpy as np
from PIL import Image
from onnxruntime.quantization import quantize_static, QuantFormat, QuantType, CalibrationMethod
from onnxruntime.quantization.shape_inference import quant_pre_process
import onnxruntime as ort
model, images, out = sys.argv[1:4]; size = 224
def prep(path):
    im = Image.open(path).convert("RGB")
    w, h = im.size; s = (size * 256 / 224) / min(w, h)
    im = im.resize((max(size, round(w * s)), max(size, round(h * s))), Image.BILINEAR)
    w, h = im.size; l, t = (w - size) // 2, (h - size) // 2
    x = np.asarray(im.crop((l, t, l + size, t + size)), dtype=np.float32)
    return ((x - 127.0) / 128.0).transpose(2, 0, 1)[None].astype(np.float32)
name = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).get_inputs()[0].name
class Reader:
    def __init__(self): self.items = [{name: prep(f)} for f in sorted(glob.glob(images + "/calib/*"))]; self.i = 0
    def get_next(self):
        if self.i >= len(self.items): return None
        self.i += 1; return self.items[self.i - 1]
pre = out + ".pre.onnx"; quant_pre_process(model, pre)
quantize_static(pre, out, Reader(), quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax)
'''

def prep(path, flip=False):
    im = Image.open(path).convert("RGB")
    w, h = im.size; s = (SIZE * 256 / 224) / min(w, h)
    im = im.resize((max(SIZE, round(w * s)), max(SIZE, round(h * s))), Image.BILINEAR)
    w, h = im.size; l, t = (w - SIZE) // 2, (h - SIZE) // 2
    x = np.asarray(im.crop((l, t, l + SIZE, t + SIZE)), dtype=np.float32)
    if flip: x = x[:, ::-1]
    return ((x - 127.0) / 128.0).transpose(2, 0, 1)[None].astype(np.float32)

import onnxruntime as ort
def session(path, threads=1):
    so = ort.SessionOptions(); so.intra_op_num_threads = threads; so.log_severity_level = 3
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])

print(f"# ipuflow quantization benchmark: {os.path.basename(a.model)}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
print(f"machine: {os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f} at start\n")

# 1. quantize time + peak RSS, alternating runs.
ort_script = os.path.join(a.work, "ort_quant.py")
open(ort_script, "w").write(ORT_QUANT)
ipf, ortr = [], []
for i in range(a.repeats):
    ipf.append(timed([a.bin, a.model, "CPU", a.images + "/calib", os.path.join(a.work, "ipuflow_cpu.onnx")])[:2])
    ortr.append(timed([a.ort_python, ort_script, a.model, a.images, os.path.join(a.work, "ort_pc_u8.onnx")])[:2])
med = lambda v: float(np.median(v))
it, ir = med([x[0] for x in ipf]), med([x[1] for x in ipf])
ot, orr = med([x[0] for x in ortr]), med([x[1] for x in ortr])
print("## Quantize: whole process (load, prepare, calibrate 31 images, write), median of", a.repeats)
print("| tool | wall s | peak RSS MB |\n|---|---|---|")
print(f"| ipuflow CPU preset (per-channel S8 W, U8 act, MinMax) | {it:.2f} | {ir:.0f} |")
print(f"| ORT 1.32 quantize_static (+quant_pre_process), same settings | {ot:.2f} | {orr:.0f} |")
print(f"\nipuflow is {ot / it:.2f}x faster, uses {ir / orr:.2f}x the memory (goal: >= 3x faster, <= 1x memory)\n")

# 2. accuracy per preset.
calib_eval = sorted(glob.glob(a.images + "/eval/*")) + sorted(glob.glob(a.images + "/labelled/*"))
labelled = sorted(glob.glob(a.images + "/labelled/*"))
labels = np.array([int(os.path.basename(f).split("_")[2].split(".")[0]) for f in labelled])
inputs = [prep(f, fl) for fl in (False, True) for f in calib_eval]
lab_inputs = [prep(f) for f in labelled]
def evaluate(path):
    s = session(path, threads=os.cpu_count()); n = s.get_inputs()[0].name
    out = np.concatenate([s.run(None, {n: x})[0] for x in inputs])
    lab = np.concatenate([s.run(None, {n: x})[0] for x in lab_inputs])
    return out, int((lab.argmax(1) == labels).sum())
ref, ref_top1 = evaluate(a.model)
print("## Accuracy (anchor protocol: 74 eval inputs, 20 labelled)")
print("| tool / config | quantize s | peak RSS MB | top-1 agreement | logits SQNR dB | labelled top-1 |\n|---|---|---|---|---|---|")
print(f"| float reference | – | – | 1.000 | ∞ | {ref_top1}/20 |")
rows = {}
for p in PRESETS:
    out = os.path.join(a.work, f"ipuflow_{p}.onnx")
    secs, rss, _ = timed([a.bin, a.model, p, a.images + "/calib", out])
    q, top1 = evaluate(out)
    agree = float((ref.argmax(1) == q.argmax(1)).mean())
    sqnr = float(10 * np.log10((ref ** 2).sum() / max(((ref - q) ** 2).sum(), 1e-30)))
    rows[p] = dict(quantize_s=secs, rss=rss, agree=agree, sqnr=sqnr, top1=top1)
    print(f"| **ipuflow {p}** | {secs:.2f} | {rss:.0f} | {agree:.3f} | {sqnr:.1f} | {top1}/20 |")
ortq, ortq_top1 = evaluate(os.path.join(a.work, "ort_pc_u8.onnx"))
print(f"| ORT per-channel W8 U8 (this run) | {ot:.2f} | {orr:.0f} | {float((ref.argmax(1) == ortq.argmax(1)).mean()):.3f} | "
      f"{float(10 * np.log10((ref ** 2).sum() / ((ref - ortq) ** 2).sum())):.1f} | {ortq_top1}/20 |")
for name, s_, m_, ag, db, t1 in ANCHORS:
    print(f"| anchor: {name} | {s_} | {m_} | {ag:.3f} | {db} | {t1} |")

# 3. latency, one thread, same process.
def latency(path):
    s = session(path); n = s.get_inputs()[0].name; x = inputs[0]
    for _ in range(5): s.run(None, {n: x})
    t = []
    for _ in range(60):
        t0 = time.perf_counter(); s.run(None, {n: x}); t.append(time.perf_counter() - t0)
    return float(np.median(t)) * 1000
print("\n## CPU latency, ORT CPU EP, 1 thread, median of 60 after 5 warm-ups (ratio: float / model)")
lf = latency(a.model)
print("| model | ms | speed vs float |\n|---|---|---|")
print(f"| float | {lf:.2f} | 1.00x |")
for p in PRESETS:
    lq = latency(os.path.join(a.work, f"ipuflow_{p}.onnx"))
    print(f"| ipuflow {p} | {lq:.2f} | {lf / lq:.2f}x |")
lo = latency(os.path.join(a.work, "ort_pc_u8.onnx"))
print(f"| ORT per-channel U8S8 (this run) | {lo:.2f} | {lf / lo:.2f}x |")
print(f"\n(goal: CPU preset >= 1.4x faster than float; anchor ORT per-channel U8S8: 1.49x)")

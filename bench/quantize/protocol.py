"""The anchor protocol of ../shared/docs/quantization-anchors.md, shared by table.py (evaluation) and
peer_quantize.py (the peers' calibration data), so every tool sees the same pixels as ipuflow's quantize example."""
import glob
import os

import numpy as np
from PIL import Image


def prep(path, size, flip=False):
    """RGB; shorter side to size*256/224 (bilinear); centre crop size; (x - 127) / 128; NCHW with a batch of 1."""
    im = Image.open(path).convert("RGB")
    w, h = im.size
    s = (size * 256 / 224) / min(w, h)
    im = im.resize((max(size, round(w * s)), max(size, round(h * s))), Image.BILINEAR)
    w, h = im.size
    left, top = (w - size) // 2, (h - size) // 2
    x = np.asarray(im.crop((left, top, left + size, top + size)), dtype=np.float32)
    if flip:
        x = x[:, ::-1]
    return ((x - 127.0) / 128.0).transpose(2, 0, 1)[None].astype(np.float32)


def images(root, split):
    return sorted(glob.glob(os.path.join(root, split, "*")))


def input_size(session):
    """Spatial size of the model's (square, NCHW) image input."""
    return int(session.get_inputs()[0].shape[2])


def sqnr(ref, q):
    """10 log10(sum ref^2 / sum (ref - q)^2), in float64 over every element."""
    ref = ref.astype(np.float64)
    err = ((ref - q.astype(np.float64)) ** 2).sum()
    return float(10 * np.log10((ref**2).sum() / max(err, 1e-30)))


def labelled_classes(files):
    """ImageNet class index from labelled/ names: imagenet_<i>_<label>.<ext>."""
    return np.array([int(os.path.basename(f).split("_")[2].split(".")[0]) for f in files])

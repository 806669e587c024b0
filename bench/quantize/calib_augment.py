"""Writes a larger calibration folder from calib/: each image as is, flipped (horizontal, vertical, both) and cropped
(four corners at 80 %, centre at 80 % and 60 %, the centre crop flipped), 10 images per source, 310 from the 31 of
calib/. Used to show that quantization's peak memory does not grow with the number of samples:

  python bench/quantize/calib_augment.py ../shared/data/images/calib /tmp/calib310
"""
import os, sys
from PIL import Image, ImageOps

src, dst = sys.argv[1], sys.argv[2]
os.makedirs(dst, exist_ok=True)


def crop(im, f, where):
    w, h = im.size
    cw, ch = int(w * f), int(h * f)
    x = {"l": 0, "c": (w - cw) // 2, "r": w - cw}[where[1]]
    y = {"t": 0, "c": (h - ch) // 2, "b": h - ch}[where[0]]
    return im.crop((x, y, x + cw, y + ch))


variants = {
    "orig": lambda im: im,
    "hflip": ImageOps.mirror,
    "vflip": ImageOps.flip,
    "hvflip": lambda im: ImageOps.flip(ImageOps.mirror(im)),
    "tl80": lambda im: crop(im, 0.8, "tl"),
    "tr80": lambda im: crop(im, 0.8, "tr"),
    "bl80": lambda im: crop(im, 0.8, "bl"),
    "br80": lambda im: crop(im, 0.8, "br"),
    "cc60": lambda im: crop(im, 0.6, "cc"),
    "cc80h": lambda im: ImageOps.mirror(crop(im, 0.8, "cc")),
}
n = 0
for f in sorted(os.listdir(src)):
    im = Image.open(os.path.join(src, f)).convert("RGB")
    stem = os.path.splitext(f)[0]
    for name, fn in variants.items():
        fn(im).save(os.path.join(dst, f"{stem}_{name}.png"))
        n += 1
print(f"{n} images in {dst}")

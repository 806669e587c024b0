# Reference helpers for tests/quant_qdq.rs (Python onnxruntime in scripts/common.sh's venv).
#
# TEMPORARY: `calib` stands in for ipuflow's own calibration run (being written in Rust); it only exists so the
# QDQ emission can be tested end to end on real models now.
#
#   prepare IN.onnx OUT.onnx                       ORT basic-level optimized model (BN folded, constants folded)
#   calib MODEL.onnx IMAGES_DIR NORM OUT.json      per-tensor min/max of every float tensor over IMAGES_DIR/calib
#   eval FLOAT.onnx QUANT.onnx IMAGES_DIR NORM OUT.json [fusion] [unfused]
#        top-1 agreement, SQNR over all outputs, labelled top-1 (1000-class outputs), and with `fusion`: op counts
#        of ORT's optimized model (level ALL) to check CPU QDQ fusion.
#   check FLOAT.onnx QUANT.onnx                    both load and run in ORT on random inputs; prints the SQNR
# NORM: eff = (x-127)/128 (efficientnet-lite0, the anchor protocol), pm1 = (x-127.5)/127.5, unit = x/255.
import collections, glob, json, os, sys, tempfile
import numpy as np
import onnx
import onnxruntime as ort
from PIL import Image


def prep(path, h, w, norm, flip=False):
    im = Image.open(path).convert("RGB")
    iw, ih = im.size
    s = (min(h, w) * 256 / 224) / min(iw, ih)
    im = im.resize((max(w, round(iw * s)), max(h, round(ih * s))), Image.BILINEAR)
    iw, ih = im.size
    l, t = (iw - w) // 2, (ih - h) // 2
    x = np.asarray(im.crop((l, t, l + w, t + h)), dtype=np.float32)
    if flip:
        x = x[:, ::-1]
    x = {"eff": (x - 127.0) / 128.0, "pm1": (x - 127.5) / 127.5, "unit": x / 255.0}[norm]
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None].astype(np.float32))


def session(path, level=ort.GraphOptimizationLevel.ORT_ENABLE_ALL, optimized=None):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.graph_optimization_level = level
    if optimized:
        so.optimized_model_filepath = optimized
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def input_hw(s):
    shp = s.get_inputs()[0].shape
    return int(shp[2]), int(shp[3])


def cmd_prepare(src, dst):
    session(src, ort.GraphOptimizationLevel.ORT_ENABLE_BASIC, dst)


def cmd_calib(model, images, norm, out):
    m = onnx.load(model)
    inferred = onnx.shape_inference.infer_shapes(m)
    types = {v.name: v.type.tensor_type.elem_type for v in list(inferred.graph.value_info) + list(inferred.graph.output) + list(inferred.graph.input)}
    existing = {o.name for o in m.graph.output}
    for n in m.graph.node:
        for o in n.output:
            if o and o not in existing and types.get(o) == 1:
                m.graph.output.append(onnx.helper.make_tensor_value_info(o, 1, None))
                existing.add(o)
    tmp = os.path.join(tempfile.mkdtemp(), "all_outputs.onnx")
    onnx.save(m, tmp)
    s = session(tmp, ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    h, w = input_hw(s)
    iname = s.get_inputs()[0].name
    names = [o.name for o in s.get_outputs()]
    stats = {}
    files = sorted(glob.glob(f"{images}/calib/*"))
    for f in files:
        x = prep(f, h, w, norm)
        feeds = {iname: x}
        outs = s.run(None, feeds)
        for n, v in list(zip(names, outs)) + [(iname, x)]:
            if v.dtype != np.float32:
                continue
            lo, hi = float(v.min()), float(v.max())
            if n in stats:
                stats[n]["min"] = min(stats[n]["min"], lo)
                stats[n]["max"] = max(stats[n]["max"], hi)
            else:
                stats[n] = {"min": lo, "max": hi, "elem_type": 1, "shape": list(v.shape)}
    json.dump(stats, open(out, "w"))
    print(f"calibrated {len(stats)} tensors on {len(files)} images")


def cmd_eval(fmodel, qmodel, images, norm, out, fusion=False, unfused=False):
    res = {}
    sf = session(fmodel)
    # unfused: the model's own arithmetic (no QDQ group fused into an integer kernel), for CPUs where ONNX Runtime's
    # fused U8S8 kernels saturate (x86 without VNNI).
    sq = session(qmodel, ort.GraphOptimizationLevel.ORT_ENABLE_BASIC) if unfused else session(qmodel)
    h, w = input_hw(sf)
    iname = sf.get_inputs()[0].name
    evalf = sorted(glob.glob(f"{images}/eval/*")) + sorted(glob.glob(f"{images}/labelled/*"))
    ref, q = [], []
    for f in evalf:
        for fl in (False, True):
            x = prep(f, h, w, norm, fl)
            ref.append([o.ravel() for o in sf.run(None, {iname: x})])
            q.append([o.ravel() for o in sq.run(None, {iname: x})])
    r0 = np.stack([r[0] for r in ref])
    q0 = np.stack([r[0] for r in q])
    rall = np.concatenate([np.concatenate(r) for r in ref])
    qall = np.concatenate([np.concatenate(r) for r in q])
    res["eval_inputs"] = len(ref)
    res["sqnr_db"] = round(float(10 * np.log10((rall**2).sum() / max(((rall - qall) ** 2).sum(), 1e-30))), 2)
    res["sqnr_first_output_db"] = round(float(10 * np.log10((r0**2).sum() / max(((r0 - q0) ** 2).sum(), 1e-30))), 2)
    if r0.shape[1] == 1000:
        res["top1_agreement"] = round(float((r0.argmax(1) == q0.argmax(1)).mean()), 3)
        labelled = sorted(glob.glob(f"{images}/labelled/*"))
        lab = np.array([int(os.path.basename(f).split("_")[2].split(".")[0]) for f in labelled])
        pred = np.array([sq.run(None, {iname: prep(f, h, w, norm)})[0].argmax() for f in labelled])
        res["labelled_top1"] = f"{int((pred == lab).sum())}/{len(lab)}"
    if fusion:
        opt = os.path.join(tempfile.mkdtemp(), "optimized.onnx")
        session(qmodel, ort.GraphOptimizationLevel.ORT_ENABLE_ALL, opt)
        m = onnx.load(opt)
        res["optimized_ops"] = dict(collections.Counter(n.op_type for n in m.graph.node))
    json.dump(res, open(out, "w"))
    print(json.dumps(res))


def cmd_check(fmodel, qmodel):
    """Loads both models in ORT (all optimizations), runs them on the same random inputs in [-1, 1]: same output
    names, shapes and types; prints the SQNR."""
    sf, sq = session(fmodel), session(qmodel)
    rng = np.random.default_rng(0)
    feeds = {}
    for i in sf.get_inputs():
        shape = [d if isinstance(d, int) else 1 for d in i.shape]
        feeds[i.name] = rng.uniform(-1, 1, shape).astype(np.float32)
    rf, rq = sf.run(None, feeds), sq.run(None, feeds)
    assert [o.name for o in sf.get_outputs()] == [o.name for o in sq.get_outputs()]
    for a, b in zip(rf, rq):
        assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype, b.dtype)
    ref = np.concatenate([a.ravel() for a in rf]); q = np.concatenate([b.ravel() for b in rq])
    print(json.dumps({"sqnr_db": float(10 * np.log10((ref**2).sum() / max(((ref - q) ** 2).sum(), 1e-30)))}))


if __name__ == "__main__":
    c, a = sys.argv[1], sys.argv[2:]
    if c == "prepare":
        cmd_prepare(*a)
    elif c == "calib":
        cmd_calib(*a)
    elif c == "check":
        cmd_check(*a)
    elif c == "eval":
        cmd_eval(a[0], a[1], a[2], a[3], a[4], "fusion" in a[5:], "unfused" in a[5:])
    else:
        sys.exit(f"unknown command {c}")

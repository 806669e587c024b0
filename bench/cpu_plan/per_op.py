"""Per op type on ONNX Runtime's CPU provider: what a quantized op's QDQ becomes, and whether its integer kernel beats
dequantize -> float op -> quantize. The evidence for the CPU preset's rules (src/quant/qdq/rules.rs CPU_FLOAT_OPS,
cpu_fuse_hardswish). One thread, uint8 [1, 64, 56, 56] in and out, median of --runs interleaved runs:
  float op          float in, float out (what a float model runs)
  integer kernel    u8 -> DQ -> op -> Q -> u8 as ONNX Runtime fuses it (QLinear*, or the Q/DQ dropped)
  DQ-op(float)-Q    the same graph with session.disable_quant_qdq=1 (the op in float between DQ and Q)
The gate rows compare x * act(x) quantized as the NPU presets write it (act -> Q -> DQ -> Mul) with act and Mul float
on one DQ. Caveat: in isolation MaxPool/Resize run NCHW; next to integer convolutions ONNX Runtime's NHWC transformer
turns them into NhwcMaxPool and friends, so measure whole models (bench/cpu_plan/run.sh) before acting on those rows.
Usage: $IPUFLOW_CACHE/venv/bin/python bench/cpu_plan/per_op.py [--runs N] [OP ...]"""
import argparse, os, tempfile, time
import numpy as np, onnx, onnxruntime as ort
from onnx import helper as h, TensorProto as T

S = [1, 64, 56, 56]
OPS = {  # label: (op, inputs, attributes, extra constant inputs)
    "HardSwish": ("HardSwish", 1, {}, []), "HardSigmoid": ("HardSigmoid", 1, {}, []),
    "Sigmoid": ("Sigmoid", 1, {}, []), "Tanh": ("Tanh", 1, {}, []), "Erf": ("Erf", 1, {}, []),
    "Relu": ("Relu", 1, {}, []), "LeakyRelu": ("LeakyRelu", 1, {}, []),
    "Softmax axis 1": ("Softmax", 1, {"axis": 1}, []), "Softmax last axis": ("Softmax", 1, {"axis": -1}, []),
    "GlobalAveragePool": ("GlobalAveragePool", 1, {}, []),
    "MaxPool 3x3": ("MaxPool", 1, {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}, []),
    "MaxPool 2x2/2": ("MaxPool", 1, {"kernel_shape": [2, 2], "strides": [2, 2]}, []),
    "AveragePool 3x3": ("AveragePool", 1, {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}, []),
    "Add": ("Add", 2, {}, []), "Mul": ("Mul", 2, {}, []), "Div": ("Div", 2, {}, []),
    "Concat": ("Concat", 2, {"axis": 1}, []), "Transpose": ("Transpose", 1, {"perm": [0, 2, 3, 1]}, []),
    "ReduceMean": ("ReduceMean", 1, {"axes": [1]}, []),
    "Resize nearest": ("Resize", 1, {"mode": "nearest"}, [("roi", []), ("scales", [1, 1, 2, 2])]),
    "Resize linear": ("Resize", 1, {"mode": "linear"}, [("roi", []), ("scales", [1, 1, 2, 2])]),
}


def build(op, n_in, attrs, extra, quantized):
    inits = [h.make_tensor("s", T.FLOAT, [], [0.05]), h.make_tensor("z", T.UINT8, [], [128])]
    inits += [h.make_tensor(k, T.FLOAT, [len(v)], v) for k, v in extra]
    nodes, ins = [], []
    for i in range(n_in):
        if quantized:
            nodes.append(h.make_node("DequantizeLinear", [f"x{i}", "s", "z"], [f"d{i}"]))
        ins.append(f"d{i}" if quantized else f"x{i}")
    nodes.append(h.make_node(op, ins + [k for k, _ in extra], ["y"], **attrs))
    nodes.append(h.make_node("QuantizeLinear", ["y", "s", "z"], ["out"]) if quantized
                 else h.make_node("Identity", ["y"], ["out"]))
    t = T.UINT8 if quantized else T.FLOAT
    g = h.make_graph(nodes, op, [h.make_tensor_value_info(f"x{i}", t, S) for i in range(n_in)],
                     [h.make_tensor_value_info("out", t, None)], inits)
    return h.make_model(g, opset_imports=[h.make_opsetid("", 17)])


def gate(act, quantized_gate):
    """u8 x -> DQ -> x * act(x) -> Q: act and Mul quantized (QDQ between) or float on one DQ."""
    inits = [h.make_tensor("s", T.FLOAT, [], [0.05]), h.make_tensor("z", T.UINT8, [], [128]),
             h.make_tensor("s2", T.FLOAT, [], [1 / 255]), h.make_tensor("z2", T.UINT8, [], [0])]
    n = [h.make_node("DequantizeLinear", ["x", "s", "z"], ["xd"]), h.make_node(act, ["xd"], ["a"])]
    if quantized_gate:
        n += [h.make_node("QuantizeLinear", ["a", "s2", "z2"], ["aq"]), h.make_node("DequantizeLinear", ["aq", "s2", "z2"], ["ad"]),
              h.make_node("DequantizeLinear", ["x", "s", "z"], ["xd2"]), h.make_node("Mul", ["xd2", "ad"], ["y"])]
    else:
        n.append(h.make_node("Mul", ["xd", "a"], ["y"]))
    n.append(h.make_node("QuantizeLinear", ["y", "s", "z"], ["out"]))
    g = h.make_graph(n, "gate", [h.make_tensor_value_info("x", T.UINT8, S)], [h.make_tensor_value_info("out", T.UINT8, None)], inits)
    return h.make_model(g, opset_imports=[h.make_opsetid("", 17)])


def session(model, work, name, fuse=True):
    path = os.path.join(work, name + ".onnx")
    onnx.save(model, path)
    so = ort.SessionOptions(); so.intra_op_num_threads = 1; so.inter_op_num_threads = 1
    so.optimized_model_filepath = path + ".opt.onnx"
    if not fuse:
        so.add_session_config_entry("session.disable_quant_qdq", "1")
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return s, [n.op_type for n in onnx.load(path + ".opt.onnx").graph.node]


def medians(sessions, feeds, runs):
    for s, f in zip(sessions, feeds):
        for _ in range(3): s.run(None, f)
    t = [[] for _ in sessions]
    for r in range(runs):
        for k in [(r + j) % len(sessions) for j in range(len(sessions))]:  # rotate who goes first
            t0 = time.perf_counter(); sessions[k].run(None, feeds[k]); t[k].append(time.perf_counter() - t0)
    return [float(np.median(x)) * 1e3 for x in t]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("ops", nargs="*")
    a = ap.parse_args()
    ort.set_default_logger_severity(3)
    rng = np.random.default_rng(0)
    work = tempfile.mkdtemp(prefix="ipuflow-per-op.")
    print(f"ONNX Runtime {ort.__version__} CPU provider, 1 thread, load average {os.getloadavg()[0]:.1f}, "
          f"median of {a.runs} interleaved runs\n")
    print("| op | u8 DQ -> op -> Q becomes | float op ms | integer kernel ms | DQ-op(float)-Q ms | integer / DQ-op-Q |")
    print("|---|---|---|---|---|---|")
    for label in a.ops or OPS:
        op, n, attrs, extra = OPS[label]
        f, _ = session(build(op, n, attrs, extra, False), work, "f")
        q, qops = session(build(op, n, attrs, extra, True), work, "q")
        u, _ = session(build(op, n, attrs, extra, True), work, "u", fuse=False)
        ff = {f"x{i}": rng.uniform(-3, 3, S).astype(np.float32) for i in range(n)}
        fq = {f"x{i}": rng.integers(0, 256, S).astype(np.uint8) for i in range(n)}
        tf, tq, tu = medians([f, q, u], [ff, fq, fq], a.runs)
        print(f"| {label} | {' '.join(qops)} | {tf:.3f} | {tq:.3f} | {tu:.3f} | {tq / tu:.2f} |")
    print("\n| gate | quantized as written | ms | float on one DQ | ms | quantized / float |\n|---|---|---|---|---|---|")
    x = {"x": rng.integers(0, 256, S).astype(np.uint8)}
    for act in ("HardSigmoid", "Sigmoid"):
        (sa, ga), (sb, gb) = session(gate(act, True), work, "ga"), session(gate(act, False), work, "gb")
        ta, tb = medians([sa, sb], [x, x], a.runs)
        print(f"| x * {act}(x) | {' '.join(ga)} | {ta:.3f} | {' '.join(gb)} | {tb:.3f} | {ta / tb:.2f} |")


if __name__ == "__main__":
    main()

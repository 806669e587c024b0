"""Quantizes one corpus model with ONNX Runtime's quantize_static, on the corpus's own calibration samples:

  python ort_quantize.py CONFIG MODEL.onnx CALIB_DIR OUT.onnx     (the venv of setup_ortq.sh)

CONFIG: pt_u8s8, pc_u8s8, pt_u16s8, pc_u16s8 (pt/pc: per-tensor/per-channel S8 weights; u8/u16: unsigned
activations), QDQ format, MinMax calibration, as bench/quantize/peer_quantize.py runs it for the Lite0 table.
CALIB_DIR holds the samples as `ipuflow quantize --calib` reads them: one .npy per sample for a one-input model, one
folder per sample holding <input>.npy otherwise. quant_pre_process (symbolic shape inference, optimization) runs
first; where it fails, it is retried without symbolic shape inference, then skipped; the printed JSON says which.
Prints one JSON line: seconds, version, pre_process, and how many weights and nodes ORT quantized.
"""
import json
import os
import sys
import tempfile
import time
import traceback

import numpy as np
import onnx
import onnxruntime
from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

CONFIGS = {
    "pt_u8s8": (False, QuantType.QUInt8),
    "pc_u8s8": (True, QuantType.QUInt8),
    "pt_u16s8": (False, QuantType.QUInt16),
    "pc_u16s8": (True, QuantType.QUInt16),
}


class Reader:
    """ONNX Runtime's CalibrationDataReader protocol over the corpus's .npy samples."""

    def __init__(self, model, calib):
        names = [i.name for i in onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"]).get_inputs()]
        self.items = []
        for entry in sorted(os.listdir(calib)):
            path = os.path.join(calib, entry)
            if os.path.isdir(path):
                self.items.append({n: np.load(os.path.join(path, n + ".npy")) for n in names})
            elif entry.endswith(".npy"):
                if len(names) != 1:
                    sys.exit(f"ort_quantize.py: {path} is one file but the model has inputs {names}")
                self.items.append({names[0]: np.load(path)})
        if not self.items:
            sys.exit(f"ort_quantize.py: no .npy samples in {calib}")
        self.i = 0

    def get_next(self):
        if self.i >= len(self.items):
            return None
        self.i += 1
        return self.items[self.i - 1]

    def rewind(self):
        self.i = 0


def coverage(path):
    """What ORT quantized: how many Conv/ConvTranspose/Gemm/MatMul nodes read their weight (input 1) through a
    DequantizeLinear of a constant (ORT quantizes only initializer weights; a float weight flatters its SQNR), and
    how many of the other nodes read any input through a DequantizeLinear."""
    g = onnx.load(path, load_external_data=False).graph
    consts = {i.name for i in g.initializer} | {o for n in g.node if n.op_type == "Constant" for o in n.output}
    dq_nodes = [n for n in g.node if n.op_type == "DequantizeLinear"]
    dq_const = {n.output[0] for n in dq_nodes if n.input[0] in consts}
    dq_any = {n.output[0] for n in dq_nodes}
    # A weight is input 1 that is a constant, read directly (float) or through a DequantizeLinear (quantized);
    # attention's activation x activation MatMuls have none.
    ops = [n for n in g.node if n.op_type in ("Conv", "ConvTranspose", "Gemm", "MatMul") and len(n.input) > 1]
    quantized = sum(1 for n in ops if n.input[1] in dq_const)
    weights = quantized + sum(1 for n in ops if n.input[1] in consts)
    rest = [n for n in g.node if n.op_type not in ("QuantizeLinear", "DequantizeLinear", "Constant")]
    return {"weights_quantized": f"{quantized} of {weights}",
            "nodes_quantized": f"{sum(1 for n in rest if any(i in dq_any for i in n.input))} of {len(rest)}"}


def main():
    if len(sys.argv) != 5 or sys.argv[1] not in CONFIGS:
        sys.exit(__doc__)
    config, model, calib, out = (os.path.abspath(a) if i else a for i, a in enumerate(sys.argv[1:]))
    # ORT's shape inference and calibration write temporary files (uuid-named .data, sym_shape_infer_temp.onnx)
    # into the working directory and leave some behind: give them one that goes away.
    with tempfile.TemporaryDirectory(prefix="ort_quantize.") as scratch:
        os.chdir(scratch)
        run(config, model, calib, out)


def run(config, model, calib, out):
    per_channel, activation = CONFIGS[config]
    reader = Reader(model, calib)
    pre = out + ".pre.onnx"
    t0 = time.perf_counter()
    source, note = model, ""
    # Symbolic shape inference asserts on some exports (a Concat off axis 0 among shape ops in PaddlePaddle's):
    # then the pre-processing runs without it, and only where that fails too is the model quantized as it is.
    for skip_symbolic in (False, True):
        try:
            quant_pre_process(model, pre, skip_symbolic_shape=skip_symbolic)
            source, note = pre, "ok" if not skip_symbolic else f"without symbolic shape inference ({note})"
            break
        except Exception as e:  # noqa: BLE001 - the optional step failed: try the next, say why
            note = f"{type(e).__name__} in {traceback.extract_tb(e.__traceback__)[-1].name}"
    else:
        note = f"failed, skipped: {note}"
    quantize_static(source, out, reader, quant_format=QuantFormat.QDQ, per_channel=per_channel,
                    activation_type=activation, weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax)
    secs = time.perf_counter() - t0
    if os.path.exists(pre):
        os.remove(pre)
    if not os.path.isfile(out):
        sys.exit(f"ort_quantize.py: quantize_static returned without writing {out}")
    print(json.dumps({"call_s": round(secs, 3), "version": "onnxruntime " + onnxruntime.__version__,
                      "pre_process": note, **coverage(out)}))


if __name__ == "__main__":
    main()

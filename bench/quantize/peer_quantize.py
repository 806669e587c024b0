"""Quantizes one model with a peer's quantizer, as one process that table.py times whole (/usr/bin/time -v):

  python peer_quantize.py ort CONFIG MODEL.onnx IMAGES_DIR OUT.onnx     (the main venv: onnxruntime 1.32.0, sympy)
  python peer_quantize.py quark CONFIG MODEL.onnx IMAGES_DIR OUT.onnx   (the peers venv of setup_peers.sh)

Calibration: the images of IMAGES_DIR/calib, one sample each, preprocessed as protocol.py says (the same pixels
ipuflow's quantize example computes). ONNX Runtime configs (QDQ, S8 weights, MinMax, quant_pre_process first, as the
anchors ran it): pt_u8s8, pc_u8s8, pt_u16s8, pc_u16s8 (pt/pc: per-tensor/per-channel weights; u8/u16: unsigned
activations). Quark configs: XINT8, A8W8, A16W8 and their learned-rounding recipes XINT8_ADAROUND, A8W8_ADAROUND,
A16W8_ADAROUND (get_default_config; table.py runs those under a time cap and reads Quark's per-layer log when they
do not finish). Prints one JSON line: the seconds inside the quantizer's calls
(without interpreter start, imports and image decoding) and the tool's version."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import protocol  # noqa: E402

ORT_CONFIGS = ("pt_u8s8", "pc_u8s8", "pt_u16s8", "pc_u16s8")
QUARK_CONFIGS = ("XINT8", "A8W8", "A16W8", "XINT8_ADAROUND", "A8W8_ADAROUND", "A16W8_ADAROUND")


class Reader:
    """ONNX Runtime's CalibrationDataReader protocol, which Quark takes too."""

    def __init__(self, name, samples):
        self.items = [{name: x} for x in samples]
        self.i = 0

    def get_next(self):
        if self.i >= len(self.items):
            return None
        self.i += 1
        return self.items[self.i - 1]

    def rewind(self):
        self.i = 0

    def __len__(self):
        return len(self.items)


def ort_quantize(config, model, reader, out):
    import onnxruntime
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    pre = out + ".pre.onnx"
    t0 = time.perf_counter()
    quant_pre_process(model, pre)
    quantize_static(pre, out, reader, quant_format=QuantFormat.QDQ, per_channel=config.startswith("pc"),
                    activation_type=QuantType.QUInt16 if "u16" in config else QuantType.QUInt8,
                    weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax)
    secs = time.perf_counter() - t0
    os.remove(pre)
    return secs, "onnxruntime " + onnxruntime.__version__


def quark_quantize(config, model, reader, out):
    import quark
    import torch
    from quark.onnx import ModelQuantizer
    from quark.onnx.quantization.config.config import Config
    from quark.onnx.quantization.config.custom_config import get_default_config

    t0 = time.perf_counter()
    ModelQuantizer(Config(global_quant_config=get_default_config(config))).quantize_model(model, out, reader)
    return time.perf_counter() - t0, f"amd-quark {quark.__version__} (torch {torch.__version__})"


def main():
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    tool, config, model, images, out = sys.argv[1:]
    known = {"ort": ORT_CONFIGS, "quark": QUARK_CONFIGS}
    if config not in known.get(tool, ()):
        sys.exit(f"peer_quantize.py: unknown tool/config {tool} {config}; known: {known}")
    import onnxruntime as ort

    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    size = protocol.input_size(session)
    samples = [protocol.prep(f, size) for f in protocol.images(images, "calib")]
    reader = Reader(session.get_inputs()[0].name, samples)
    del session
    secs, version = (ort_quantize if tool == "ort" else quark_quantize)(config, model, reader, out)
    if not os.path.isfile(out):
        sys.exit(f"peer_quantize.py: {tool} {config} returned without writing {out}")
    print(json.dumps({"call_s": round(secs, 3), "version": version}))


if __name__ == "__main__":
    main()

"""Writes the ONNX backend *node* test cases to disk, offline.

Mirrors `onnx/backend/test/cmd_tools.py generate-data` (the tool onnx itself uses to produce
onnx/backend/test/data/node): each case becomes DIR/<name>/model.onnx plus
DIR/<name>/test_data_set_N/{input,output}_K.pb, serialized exactly as that tool does.
The wheel's own cmd_tools only generates the *model* cases, so the node loop is reproduced here.

Usage: python gen_onnx_node_testdata.py OUT_DIR   (prints the number of cases written)
"""

from __future__ import annotations

import os
import shutil
import sys

import onnx
import onnx.backend.test.case.node as node_test
from onnx import TensorProto, numpy_helper


def _serialize_value(value, value_info) -> bytes:
    t = value_info.type
    if t.HasField("map_type"):
        return numpy_helper.from_dict(value, value_info.name).SerializeToString()
    if t.HasField("sequence_type"):
        return numpy_helper.from_list(value, value_info.name).SerializeToString()
    if t.HasField("optional_type"):
        return numpy_helper.from_optional(value, value_info.name).SerializeToString()
    assert t.HasField("tensor_type"), value_info
    if isinstance(value, TensorProto):
        return value.SerializeToString()
    return numpy_helper.from_array(value, value_info.name).SerializeToString()


def main() -> int:
    out = sys.argv[1]
    cases = node_test.collect_testcases(None)
    names = set()
    for case in cases:
        assert case.model is not None and case.data_sets, case.name
        assert case.name not in names, f"duplicate case {case.name}"
        names.add(case.name)
        case_dir = os.path.join(out, case.name)
        if os.path.exists(case_dir):
            shutil.rmtree(case_dir)
        os.makedirs(case_dir)
        with open(os.path.join(case_dir, "model.onnx"), "wb") as f:
            f.write(case.model.SerializeToString())
        graph = case.model.graph
        for i, (inputs, outputs) in enumerate(case.data_sets):
            ds = os.path.join(case_dir, f"test_data_set_{i}")
            os.makedirs(ds)
            for j, value in enumerate(inputs):
                with open(os.path.join(ds, f"input_{j}.pb"), "wb") as f:
                    f.write(_serialize_value(value, graph.input[j]))
            for j, value in enumerate(outputs):
                with open(os.path.join(ds, f"output_{j}.pb"), "wb") as f:
                    f.write(_serialize_value(value, graph.output[j]))
    print(len(cases))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Writes the ONNX node tests (onnx/backend/test/case/node, 1,884 in onnx 1.23.2) as test folders:
<out>/<test_name>/model.onnx and test_data_set_N/input_I.pb / output_I.pb, as onnx's own
`backend-test-tools generate-data` used to write them (it now writes only the model tests). Inputs
and outputs that are not plain tensors (sequences, maps, optionals) are written as `<kind>_I.skip`
markers: zoo runs tensors only, and the runner reports such a test as excluded for that reason.

Run by scripts/conformance-data inside its small pinned venv (onnx and numpy only).
  python generate_node_tests.py OUT
"""
import os
import shutil
import sys
import warnings

import onnx
from onnx import TensorProto, numpy_helper
from onnx.backend.test.case import node


def write_value(path_stem, value, type_proto, name):
    if not type_proto.HasField("tensor_type"):
        kind = type_proto.WhichOneof("value") or "unknown"
        open(f"{path_stem}.{kind}.skip", "w").close()
        return
    proto = value if isinstance(value, TensorProto) else numpy_helper.from_array(value, name)
    with open(f"{path_stem}.pb", "wb") as f:
        f.write(proto.SerializeToString())


def main(out):
    warnings.simplefilter("ignore")   # the generators overflow casts on purpose
    cases = node.collect_testcases(None)
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)
    for case in cases:
        folder = os.path.join(out, case.name)
        os.makedirs(folder)
        with open(os.path.join(folder, "model.onnx"), "wb") as f:
            f.write(case.model.SerializeToString())
        graph = case.model.graph
        for i, (inputs, outputs) in enumerate(case.data_sets or []):
            data = os.path.join(folder, f"test_data_set_{i}")
            os.makedirs(data)
            for j, value in enumerate(inputs):
                write_value(os.path.join(data, f"input_{j}"), value, graph.input[j].type, graph.input[j].name)
            for j, value in enumerate(outputs):
                write_value(os.path.join(data, f"output_{j}"), value, graph.output[j].type, graph.output[j].name)
    print(f"{len(cases)} node tests from onnx {onnx.__version__} in {out}")


if __name__ == "__main__":
    main(sys.argv[1])

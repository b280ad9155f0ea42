"""Well-formed ONNX files zoo cannot run, for `zoo inspect` and `ONNX.describe`
(Tests/ZooCLITests/InspectONNXTests.swift, Tests/ONNXFormatTests/DescriptionTests.swift).

Run with the oracle python (onnx 1.23.2, onnxruntime 1.32, ml_dtypes 0.7.0):
    /root/.cache/zoo-oracle/bin/python Fixtures/make_onnx_inspect_cases.py

Writes Fixtures/onnx/inspect/:
  unrunnable.onnx (+ unrunnable.data)   ops outside a CNN toolkit's scope (Shrink, Hardmax, a com.example
                                        op) next to ops it has; two graph inputs with dim_params, an
                                        output with an unknown dim; a weight in external data, an
                                        f16 one, one initializer also listed as a graph input;
                                        producer, graph name, doc_string; onnx.checker accepts it
  unsupported_attribute.onnx            every op has a builder, but MaxPool's storage_order=1 is a
                                        value zoo refuses; onnx.checker and onnxruntime accept it
  int4_weights.onnx                     a weight zoo cannot hold (INT4, packed two to a byte in
                                        raw_data) through DequantizeLinear into a MatMul; onnx.checker
                                        and onnxruntime accept it
  <name>.expected.json                  onnx's own view of each file, read back with onnx.load: the
                                        header, inputs and outputs (non-initializer inputs; a dim as
                                        its dim_value, its dim_param or null; shape null when absent),
                                        nodes, op counts in first-seen order, initializers (element
                                        count; bytes as stored: the external data's length, else
                                        raw_data's, else numpy_helper.to_array(t).nbytes) and their
                                        totals. `zoo_cannot_run` names the op types the file was
                                        built to hold for zoo to lack (the script's design, not a
                                        measurement); their counts are onnx's.
Deterministic (fixed seed): re-running rewrites the files byte for byte.
"""
import os

import oracle_env  # Fixtures/oracle_env.py

oracle_env.deterministic()

import ml_dtypes
import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, external_data_helper, helper, numpy_helper

oracle_env.require(onnx="1.23.2", onnxruntime="1.32.0", ml_dtypes="0.7.0")  # ml_dtypes: installed with onnx

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "onnx", "inspect")
os.makedirs(OUT, exist_ok=True)
rng = np.random.default_rng(20260501)


def randn(*shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def vi(name, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


def describe(path, zoo_cannot_run):
    """onnx's view of the file at `path` (external data left on disk, read for the byte counts)."""
    m = onnx.load(path, load_external_data=False)
    g = m.graph

    def value(v):
        t = v.type.tensor_type
        shape = None
        if t.HasField("shape"):
            shape = [d.dim_value if d.HasField("dim_value") else d.dim_param if d.HasField("dim_param") else None
                     for d in t.shape.dim]
        return {"name": v.name, "elem_type": TensorProto.DataType.Name(t.elem_type), "shape": shape}

    counts = {}  # (domain, op) -> count, in first-seen order (dicts keep insertion order)
    for n in g.node:
        key = ("" if n.domain == "ai.onnx" else n.domain, n.op_type)
        counts[key] = counts.get(key, 0) + 1
    def stored_bytes(t):
        if external_data_helper.uses_external_data(t):
            return external_data_helper.ExternalDataInfo(t).length
        if t.HasField("raw_data"):
            return len(t.raw_data)
        return int(numpy_helper.to_array(t).nbytes)

    initializers = [{"name": t.name, "data_type": TensorProto.DataType.Name(t.data_type), "dims": list(t.dims),
                     "elements": int(np.prod(t.dims, dtype=np.int64)), "bytes": stored_bytes(t),
                     "external": external_data_helper.uses_external_data(t)} for t in g.initializer]
    names = {t.name for t in g.initializer}
    return {
        "ir_version": m.ir_version,
        "opset_imports": [{"domain": o.domain, "version": o.version} for o in m.opset_import],
        "producer_name": m.producer_name, "producer_version": m.producer_version,
        "graph_name": g.name, "doc_string": m.doc_string,
        "inputs": [value(v) for v in g.input if v.name not in names],
        "outputs": [value(v) for v in g.output],
        "nodes": [{"name": n.name, "op": n.op_type, "domain": n.domain} for n in g.node],
        "op_counts": [{"domain": d, "op": op, "count": c} for (d, op), c in counts.items()],
        "initializers": initializers,
        "initializer_count": len(initializers),
        "parameter_count": sum(t["elements"] for t in initializers),
        "initializer_bytes": sum(t["bytes"] for t in initializers),
        "external_initializers": sum(t["external"] for t in initializers),
        "zoo_cannot_run": [{"domain": d, "op": op, "count": c} for (d, op), c in counts.items()
                           if (d, op) in zoo_cannot_run],
    }


def save(m, name, zoo_cannot_run=()):
    path = os.path.join(OUT, name + ".onnx")
    onnx.save(m, path)
    onnx.checker.check_model(path)
    with open(os.path.join(OUT, name + ".expected.json"), "w") as f:
        f.write(oracle_env.format_json(describe(path, set(zoo_cannot_run))))
    return path


# --- unrunnable: x -> Shrink -> Conv (w external, bias f16 through a Cast) -> Hardmax (unnamed) ->
# Relu -> Shrink -> com.example.FancyOp -> y; mask -> Hardmax -> Add(scale) -> Hardmax (unnamed) -> m.
# Shrink and Hardmax are standard ops no classic CNN uses, so zoo has no importer for them.
w = numpy_helper.from_array(randn(4, 3, 3, 3), "w")
with open(os.path.join(OUT, "unrunnable.data"), "wb") as f:
    f.write(w.raw_data)
external_data_helper.set_external_data(w, "unrunnable.data", offset=0, length=len(w.raw_data))
w.ClearField("raw_data")
w.data_location = TensorProto.EXTERNAL
nodes = [
    helper.make_node("Shrink", ["x"], ["t1"], name="shrink_in"),
    helper.make_node("Cast", ["b16"], ["b"], name="b16.f32", to=TensorProto.FLOAT),
    helper.make_node("Conv", ["t1", "w", "b"], ["c"], name="conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
    helper.make_node("Hardmax", ["c"], ["s"]),
    helper.make_node("Relu", ["s"], ["r"], name="relu"),
    helper.make_node("Shrink", ["r"], ["t2"], name="shrink_out"),
    helper.make_node("FancyOp", ["t2"], ["y"], name="fancy", domain="com.example"),
    helper.make_node("Hardmax", ["mask"], ["ms"], name="mask_hardmax"),
    helper.make_node("Add", ["ms", "scale"], ["ma"], name="add"),
    helper.make_node("Hardmax", ["ma"], ["m"]),
]
graph = helper.make_graph(
    nodes, "unrunnable",
    [vi("x", ["N", 3, 8, 8]), vi("mask", ["N", "seq"]), vi("scale", [1])],
    [vi("y", ["N", 4, 8, 8]), vi("m", ["N", None])],
    [w, numpy_helper.from_array(randn(4, dtype=np.float16), "b16"), numpy_helper.from_array(randn(1), "scale")])
m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)],
                      producer_name="zoo-inspect-cases", producer_version="1.0",
                      doc_string="Shrink, Hardmax and a custom op: zoo cannot run it.")
m.ir_version = 8
save(m, "unrunnable", zoo_cannot_run={("", "Shrink"), ("", "Hardmax"), ("com.example", "FancyOp")})

# --- unsupported_attribute: MaxPool with storage_order=1 (column-major indices), then Relu.
graph = helper.make_graph(
    [helper.make_node("MaxPool", ["x"], ["p"], name="pool", kernel_shape=[2, 2], storage_order=1),
     helper.make_node("Relu", ["p"], ["y"], name="relu")],
    "storage_order", [vi("x", ["N", 3, 4, 4])], [vi("y", ["N", 3, 3, 3])])
m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="zoo-inspect-cases")
m.ir_version = 7
path = save(m, "unsupported_attribute")
ort.InferenceSession(path, providers=["CPUExecutionProvider"])

# --- int4_weights: y = x @ DequantizeLinear(w_int4, scale) (INT4 needs opset 21).
w4 = numpy_helper.from_array(np.array([[1, -2, 3], [-4, 5, -6]], dtype=ml_dtypes.int4), "w_int4")
graph = helper.make_graph(
    [helper.make_node("DequantizeLinear", ["w_int4", "scale"], ["w"], name="dequantize"),
     helper.make_node("MatMul", ["x", "w"], ["y"], name="matmul")],
    "int4_weights", [vi("x", ["N", 2])], [vi("y", ["N", 3])],
    [w4, numpy_helper.from_array(np.array(0.5, dtype=np.float32), "scale")])
m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], producer_name="zoo-inspect-cases")
m.ir_version = 10
path = save(m, "int4_weights", zoo_cannot_run={("", "DequantizeLinear")})
ort.InferenceSession(path, providers=["CPUExecutionProvider"])
print(f"wrote the inspect cases to {OUT}")

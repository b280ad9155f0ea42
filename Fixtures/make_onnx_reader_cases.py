"""Small ONNX files for the reader's tests (Tests/ONNXFormatTests/ReaderTests.swift).

Run with the oracle python (onnx 1.23.2, onnxruntime 1.32):
    /root/.cache/zoo-oracle/bin/python Fixtures/make_onnx_reader_cases.py

Writes Fixtures/onnx/reader/:
  <case>.onnx, <case>.input.npy, <case>.output.npy   op cases: onnxruntime's output for the input
  typed_fields.onnx + typed_fields.json              initializers in every typed field, f16/bf16
  ext_*.onnx (+ ext_valid.data)                      external data: valid, missing, out of range, '..', absolute
  unsupported.onnx, opset6.onnx, opset23.onnx, symbolic_height.onnx   refusals (two_inputs.onnx: now imported)
  two_in_two_out.onnx + .x/.z/.sum/.relu.npy          two graph inputs and outputs, onnxruntime's outputs
  cast_*.onnx                                        Cast of stored weights: imported (an op case, and
                                                     Cast-1's STRING 'to') and refused
cases.json lists the op cases (name → output name). Everything is deterministic (fixed seeds).
"""
import json
import os

import oracle_env  # Fixtures/oracle_env.py

oracle_env.deterministic()

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

oracle_env.require(onnx="1.23.2", onnxruntime="1.32.0")

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "onnx", "reader")
os.makedirs(OUT, exist_ok=True)
rng = np.random.default_rng(20240601)


def randn(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def init(name, array, typed=False):
    """An initializer as raw_data (default) or in its typed field (float_data for f32)."""
    if not typed:
        return numpy_helper.from_array(array, name)
    return helper.make_tensor(name, helper.np_dtype_to_tensor_dtype(array.dtype), array.shape, array.flatten().tolist())


def model(nodes, inputs, outputs, inits, opset, ir=None, name="case", check=False):
    graph = helper.make_graph(nodes, name, inputs, outputs, inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="zoo-reader-cases")
    m.ir_version = ir if ir is not None else {7: 3, 8: 3, 9: 4, 10: 5, 11: 6, 12: 7, 13: 7, 14: 7, 15: 8, 16: 8,
                                              17: 8, 18: 8, 19: 9, 20: 9, 21: 10, 22: 10}.get(opset, 10)
    if check:  # onnxruntime (which loads every op case) validates the rest
        onnx.checker.check_model(m)
    return m


def vi(name, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


cases = {}


def case(name, m, x):
    path = os.path.join(OUT, name + ".onnx")
    onnx.save(m, path)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    y = session.run(None, {session.get_inputs()[0].name: x})[0]
    np.save(os.path.join(OUT, name + ".input.npy"), x)
    np.save(os.path.join(OUT, name + ".output.npy"), y.astype(np.float32))
    cases[name] = {"output": m.graph.output[0].name, "opset": m.opset_import[0].version}


# --- Conv: explicit asymmetric pads, strides, dilations, groups, bias; IR 3 with initializers listed
# as graph inputs and the weight in float_data.
w = randn(4, 2, 3, 3)
b = randn(4)
m = model([helper.make_node("Conv", ["x", "w", "b"], ["y"], name="conv", kernel_shape=[3, 3], strides=[2, 1],
                            dilations=[1, 2], pads=[1, 0, 2, 1], group=2)],
          [vi("x", ["N", 4, 9, 10]), vi("w", [4, 2, 3, 3]), vi("b", [4])], [vi("y", None)],
          [init("w", w, typed=True), init("b", b)], opset=7, ir=3)
case("conv_pads_ir3", m, randn(2, 4, 9, 10))

for auto_pad in ["SAME_UPPER", "SAME_LOWER", "VALID"]:
    w = randn(3, 2, 4, 3)
    m = model([helper.make_node("Conv", ["x", "w"], ["y"], name="conv", strides=[2, 3], auto_pad=auto_pad)],
              [vi("x", [1, 2, 9, 11])], [vi("y", None)], [init("w", w)], opset=11)
    case("conv_" + auto_pad.lower(), m, randn(1, 2, 9, 11))

# --- Pooling.
m = model([helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[0, 0, 1, 1])],
          [vi("x", [1, 3, 12, 12])], [vi("y", None)], [], opset=8)
case("maxpool_pads_opset8", m, randn(1, 3, 12, 12))
m = model([helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)],
          [vi("x", ["batch", 3, 12, 12])], [vi("y", None)], [], opset=10)
case("maxpool_ceil_opset10", m, randn(2, 3, 12, 12))
m = model([helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 3], strides=[2, 2], auto_pad="SAME_UPPER")],
          [vi("x", [1, 3, 7, 8])], [vi("y", None)], [], opset=12)
case("maxpool_same_upper", m, randn(1, 3, 7, 8))
m = model([helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                            count_include_pad=1)],
          [vi("x", [1, 2, 9, 9])], [vi("y", None)], [], opset=11)
case("avgpool_count_include_pad", m, randn(1, 2, 9, 9))
m = model([helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                            ceil_mode=1)],
          [vi("x", [1, 2, 10, 10])], [vi("y", None)], [], opset=19)
case("avgpool_ceil_exclude_pad", m, randn(1, 2, 10, 10))
m = model([helper.make_node("GlobalAveragePool", ["x"], ["g"]), helper.make_node("Flatten", ["g"], ["y"], axis=1)],
          [vi("x", ["N", 5, 6, 7])], [vi("y", None)], [], opset=9)
case("globalavgpool_flatten", m, randn(3, 5, 6, 7))

# --- LRN (odd sizes: onnxruntime refuses even ones, so the even-size window has no oracle here).
for size in [5, 3]:
    m = model([helper.make_node("LRN", ["x"], ["y"], size=size, alpha=2e-3, beta=0.75, bias=1.5)],
              [vi("x", [1, 7, 4, 4])], [vi("y", None)], [], opset=9)
    case(f"lrn_size{size}", m, randn(1, 7, 4, 4))

# --- Reshape: shape from an initializer (opset 7), a Constant (opset 13), allowzero (opset 14).
m = model([helper.make_node("Reshape", ["x", "shape"], ["y"])], [vi("x", [2, 3, 4, 4])], [vi("y", None)],
          [init("shape", np.array([2, 48], dtype=np.int64))], opset=7)
case("reshape_initializer_opset7", m, randn(2, 3, 4, 4))
m = model([helper.make_node("Constant", [], ["shape"], value=numpy_helper.from_array(np.array([0, -1], dtype=np.int64))),
           helper.make_node("Reshape", ["x", "shape"], ["y"])],
          [vi("x", ["N", 3, 4, 4])], [vi("y", None)], [], opset=13)
case("reshape_constant_opset13", m, randn(3, 3, 4, 4))
m = model([helper.make_node("Reshape", ["x", "shape"], ["y"], allowzero=1)], [vi("x", ["N", 3, 2, 2])], [vi("y", None)],
          [init("shape", np.array([-1, 12], dtype=np.int64))], opset=14)
case("reshape_allowzero_opset14", m, randn(2, 3, 2, 2))

# --- Gemm: alpha, beta, transB with C broadcast; transA without C (opset 11).
wb = randn(5, 6)
c = randn(1, 5)
m = model([helper.make_node("Gemm", ["x", "w", "c"], ["y"], alpha=0.5, beta=2.0, transB=1)],
          [vi("x", ["N", 6])], [vi("y", None)], [init("w", wb), init("c", c)], opset=9)
case("gemm_alpha_beta_transB", m, randn(3, 6))
m = model([helper.make_node("Gemm", ["x", "w"], ["y"], transA=1)],
          [vi("x", [6, 3])], [vi("y", None)], [init("w", randn(6, 4))], opset=11)
case("gemm_transA_noC_opset11", m, randn(6, 3))

m = model([helper.make_node("MatMul", ["x", "w"], ["mm"]), helper.make_node("Add", ["mm", "bias"], ["y"])],
          [vi("x", ["N", 6])], [vi("y", None)], [init("w", randn(6, 5)), init("bias", randn(5))], opset=13)
case("matmul_add", m, randn(3, 6))

# --- Dropout: ratio attribute with an unused mask output (opset 10), ratio input (opset 13).
m = model([helper.make_node("Dropout", ["x"], ["d", "mask"], ratio=0.3), helper.make_node("Relu", ["d"], ["y"])],
          [vi("x", ["N", 8])], [vi("y", None)], [], opset=10)
case("dropout_attribute_opset10", m, randn(2, 8))
m = model([helper.make_node("Dropout", ["x", "ratio"], ["d"]), helper.make_node("Relu", ["d"], ["y"])],
          [vi("x", ["N", 8])], [vi("y", None)], [init("ratio", np.array(0.25, dtype=np.float32))], opset=13)
case("dropout_input_opset13", m, randn(2, 8))

# --- Softmax: pre-13 coerce-to-2-D semantics on 4-D input, 2-D input, and opset 13 per-axis.
m = model([helper.make_node("Softmax", ["x"], ["y"], axis=1)], [vi("x", ["N", 3, 2, 2])], [vi("y", None)], [], opset=9)
case("softmax_4d_axis1_opset9", m, randn(2, 3, 2, 2))
m = model([helper.make_node("Softmax", ["x"], ["y"])], [vi("x", ["N", 10])], [vi("y", None)], [], opset=11)
case("softmax_2d_opset11", m, randn(3, 10))
m = model([helper.make_node("Softmax", ["x"], ["y"], axis=1)], [vi("x", ["N", 3, 2, 2])], [vi("y", None)], [], opset=13)
case("softmax_4d_axis1_opset13", m, randn(2, 3, 2, 2))

# --- Add (broadcast), BatchNormalization (opset 7 spatial, opset 15), Concat.
m = model([helper.make_node("Add", ["x", "bias"], ["y"])], [vi("x", ["N", 3, 4, 4])], [vi("y", None)],
          [init("bias", randn(3, 1, 1))], opset=7)
case("add_broadcast", m, randn(2, 3, 4, 4))
var = np.abs(randn(3)) + 0.5
m = model([helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], epsilon=1e-3, spatial=1)],
          [vi("x", ["N", 3, 4, 4])], [vi("y", None)],
          [init("s", randn(3)), init("b", randn(3)), init("m", randn(3)), init("v", var)], opset=7)
case("batchnorm_opset7", m, randn(2, 3, 4, 4))
m = model([helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], epsilon=1e-5, momentum=0.8)],
          [vi("x", ["N", 3, 4, 4])], [vi("y", None)],
          [init("s", randn(3)), init("b", randn(3)), init("m", randn(3)), init("v", var)], opset=15)
case("batchnorm_opset15", m, randn(2, 3, 4, 4))
m = model([helper.make_node("Relu", ["x"], ["r"]),
           helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[1, 1]),
           helper.make_node("Concat", ["r", "c"], ["y"], axis=1)],
          [vi("x", ["N", 2, 3, 3])], [vi("y", None)], [init("w", randn(4, 2, 1, 1))], opset=11)
case("concat_branches", m, randn(2, 2, 3, 3))

# --- Identity dropped; Constant and ConstantOfShape folded into initializers; unnamed nodes.
m = model([helper.make_node("Identity", ["x"], ["i"]),
           helper.make_node("Constant", [], ["shape"], value=numpy_helper.from_array(np.array([4], dtype=np.int64))),
           helper.make_node("ConstantOfShape", ["shape"], ["bias"],
                            value=numpy_helper.from_array(np.array([0.75], dtype=np.float32))),
           helper.make_node("Add", ["i", "bias"], ["a"]),
           helper.make_node("Relu", ["a"], ["y"])],
          [vi("x", ["N", 4])], [vi("y", None)], [], opset=12)
case("identity_constants", m, randn(3, 4))
m = model([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Identity", ["r"], ["y"])],
          [vi("x", ["N", 4])], [vi("y", None)], [], opset=13)
case("identity_output", m, randn(3, 4))

# --- The 2012-paper AlexNet head as the model zoo has it, at tiny size (LRN, grouped conv,
# Caffe-ceil MaxPool pads, Reshape with an initializer listed as input, Dropout with 2 outputs,
# pre-13 Softmax), IR 3 / opset 9.
m = model([helper.make_node("Conv", ["data", "c1w", "c1b"], ["c1"], kernel_shape=[3, 3], strides=[2, 2], pads=[0, 0, 0, 0]),
           helper.make_node("Relu", ["c1"], ["r1"]),
           helper.make_node("LRN", ["r1"], ["n1"], size=5, alpha=1e-4, beta=0.75, bias=1.0),
           helper.make_node("MaxPool", ["n1"], ["p1"], kernel_shape=[3, 3], strides=[2, 2], pads=[0, 0, 1, 1]),
           helper.make_node("Conv", ["p1", "c2w", "c2b"], ["c2"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=2),
           helper.make_node("Relu", ["c2"], ["r2"]),
           helper.make_node("Reshape", ["r2", "shape"], ["flat"]),
           helper.make_node("Gemm", ["flat", "fw", "fb"], ["f"], transB=1),
           helper.make_node("Relu", ["f"], ["rf"]),
           helper.make_node("Dropout", ["rf"], ["d", "dmask"], ratio=0.5),
           helper.make_node("Gemm", ["d", "ow", "ob"], ["o"], transB=1),
           helper.make_node("Softmax", ["o"], ["prob"])],
          [vi("data", [1, 3, 15, 15]), vi("c1w", [8, 3, 3, 3]), vi("c1b", [8]), vi("c2w", [8, 4, 3, 3]), vi("c2b", [8]),
           vi("shape", [2], TensorProto.INT64), vi("fw", [10, 72]), vi("fb", [10]), vi("ow", [6, 10]), vi("ob", [6])],
          [vi("prob", [1, 6])],
          [init("c1w", randn(8, 3, 3, 3)), init("c1b", randn(8)), init("c2w", randn(8, 4, 3, 3)), init("c2b", randn(8)),
           init("shape", np.array([1, 72], dtype=np.int64)), init("fw", randn(10, 72)), init("fb", randn(10)),
           init("ow", randn(6, 10)), init("ob", randn(6))], opset=9, ir=3)
case("paper_alexnet_tiny_ir3", m, randn(1, 3, 15, 15))

# --- Initializers in every typed field (a Relu graph carries them; they are checked by value).
typed = {
    "f32_float_data": (TensorProto.FLOAT, [1.5, -2.25, 3.0], [1.5, -2.25, 3.0]),
    "f64_double_data": (TensorProto.DOUBLE, [0.1, -1e10], [0.1, -1e10]),
    "i64_int64_data": (TensorProto.INT64, [-(2**40), 7], [-(2**40), 7]),
    "i32_int32_data": (TensorProto.INT32, [-100000, 5], [-100000, 5]),
    "i16_int32_data": (TensorProto.INT16, [-32768, 32767], [-32768, 32767]),
    "i8_int32_data": (TensorProto.INT8, [-128, 127], [-128, 127]),
    "u8_int32_data": (TensorProto.UINT8, [0, 255], [0, 255]),
    "bool_int32_data": (TensorProto.BOOL, [1, 0, 1], [1, 0, 1]),
}
inits = []
expected = {}
for name, (dtype, values, want) in typed.items():
    inits.append(helper.make_tensor(name, dtype, [len(values)], values))
    expected[name] = want
half = np.array([1.0, -0.5, 65504.0, 2.0**-24], dtype=np.float16)
bf = np.array([1.0, -3.140625, 1e30], dtype=np.float32)
bf_bits = (bf.view(np.uint32) >> 16).astype(np.uint16)  # truncated to bf16; expected values are those bits
# f16 / bf16 as bit patterns in int32_data, and as raw_data.
t = TensorProto(name="f16_int32_data", data_type=TensorProto.FLOAT16, dims=[4])
t.int32_data.extend(half.view(np.uint16).astype(np.int32).tolist())
inits.append(t)
t = TensorProto(name="bf16_int32_data", data_type=TensorProto.BFLOAT16, dims=[3])
t.int32_data.extend(bf_bits.astype(np.int32).tolist())
inits.append(t)
inits.append(TensorProto(name="f16_raw_data", data_type=TensorProto.FLOAT16, dims=[4], raw_data=half.tobytes()))
inits.append(TensorProto(name="bf16_raw_data", data_type=TensorProto.BFLOAT16, dims=[3], raw_data=bf_bits.tobytes()))
inits.append(TensorProto(name="f32_raw_2x2", data_type=TensorProto.FLOAT, dims=[2, 2],
                         raw_data=np.array([[1, 2], [3, 4]], dtype=np.float32).tobytes()))
for name in ["f16_int32_data", "f16_raw_data"]:
    expected[name] = half.astype(np.float64).tolist()
for name in ["bf16_int32_data", "bf16_raw_data"]:
    expected[name] = (bf_bits.astype(np.uint32) << 16).view(np.float32).astype(np.float64).tolist()
expected["f32_raw_2x2"] = [1, 2, 3, 4]
dtypes = {n: d for n, d in [("f32_float_data", "f32"), ("f64_double_data", "f64"), ("i64_int64_data", "i64"),
                            ("i32_int32_data", "i32"), ("i16_int32_data", "i16"), ("i8_int32_data", "i8"),
                            ("u8_int32_data", "u8"), ("bool_int32_data", "bool"), ("f16_int32_data", "f16"),
                            ("f16_raw_data", "f16"), ("bf16_int32_data", "bf16"), ("bf16_raw_data", "bf16"),
                            ("f32_raw_2x2", "f32")]}
m = model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", ["N", 3])], [vi("y", None)], inits, opset=13)
onnx.save(m, os.path.join(OUT, "typed_fields.onnx"))
with open(os.path.join(OUT, "typed_fields.json"), "w") as f:
    json.dump({"values": expected, "dtypes": dtypes}, f, indent=1, sort_keys=True)


# --- External data. ext_valid: Conv weight at an aligned offset, bias at an odd offset (copied, not
# mapped), Gemm-free; the other files point at bad places.
def external(t, location, offset, length):
    t.data_location = TensorProto.EXTERNAL
    t.ClearField("raw_data")
    for k, v in [("location", location), ("offset", str(offset)), ("length", str(length))]:
        e = t.external_data.add()
        e.key, e.value = k, v
    return t


w = randn(4, 3, 3, 3)
b = randn(4)
blob = bytearray(b"\x00" * 16) + w.tobytes() + b"\x00\x00\x00" + b.tobytes()
with open(os.path.join(OUT, "ext_valid.data"), "wb") as f:
    f.write(blob)
woff, boff = 16, 16 + w.nbytes + 3


def ext_model(wloc, woffset, wlength, bloc=None):
    wt = external(numpy_helper.from_array(w, "w"), wloc, woffset, wlength)
    bt = external(numpy_helper.from_array(b, "b"), bloc or wloc, boff, b.nbytes)
    return model([helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=[1, 1, 1, 1])],
                 [vi("x", ["N", 3, 5, 5])], [vi("y", None)], [wt, bt], opset=13, check=False)


m = ext_model("ext_valid.data", woff, w.nbytes)
path = os.path.join(OUT, "ext_valid.onnx")
onnx.save(m, path)
x = randn(2, 3, 5, 5)
s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
np.save(os.path.join(OUT, "ext_valid.input.npy"), x)
np.save(os.path.join(OUT, "ext_valid.output.npy"), s.run(None, {"x": x})[0])
onnx.save(ext_model("missing.data", woff, w.nbytes), os.path.join(OUT, "ext_missing.onnx"))
onnx.save(ext_model("ext_valid.data", len(blob) - 8, w.nbytes), os.path.join(OUT, "ext_out_of_range.onnx"))
onnx.save(ext_model("../reader/ext_valid.data", woff, w.nbytes), os.path.join(OUT, "ext_escape.onnx"))
onnx.save(ext_model(os.path.join(OUT, "ext_valid.data"), woff, w.nbytes), os.path.join(OUT, "ext_absolute.onnx"))

# --- Refusals.
m = model([helper.make_node("Hardmax", ["x"], ["a"], name="hard"),
           helper.make_node("Relu", ["a"], ["b"], name="fine"),
           helper.make_node("Shrink", ["b"], ["c"]),
           helper.make_node("FancyOp", ["c"], ["y"], name="custom", domain="com.example")],
          [vi("x", ["N", 4])], [vi("y", None)], [], opset=13, check=False)
m.opset_import.append(helper.make_opsetid("com.example", 1))
onnx.save(m, os.path.join(OUT, "unsupported.onnx"))
for opset in [6, 23]:
    m = model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", ["N", 4])], [vi("y", None)], [], opset=opset,
              ir=3 if opset == 6 else 11, check=False)
    onnx.save(m, os.path.join(OUT, f"opset{opset}.onnx"))
m = model([helper.make_node("Add", ["x", "z"], ["y"])], [vi("x", ["N", 4]), vi("z", ["N", 4])], [vi("y", None)], [],
          opset=13)
onnx.save(m, os.path.join(OUT, "two_inputs.onnx"))
m = model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", ["N", 3, "H", 8])], [vi("y", None)], [], opset=13)
onnx.save(m, os.path.join(OUT, "symbolic_height.onnx"))

m = model([helper.make_node("MaxPool", ["x"], ["y"], name="pool", kernel_shape=[2, 2], storage_order=1)],
          [vi("x", ["N", 3, 4, 4])], [vi("y", None)], [], opset=12)
onnx.save(m, os.path.join(OUT, "maxpool_storage_order.onnx"))
m = model([helper.make_node("Dropout", ["x"], ["d", "mask"], name="drop", ratio=0.5),
           helper.make_node("Cast", ["mask"], ["m"], to=TensorProto.FLOAT), helper.make_node("Add", ["d", "m"], ["y"])],
          [vi("x", ["N", 4])], [vi("y", None)], [], opset=10)
onnx.save(m, os.path.join(OUT, "dropout_mask_used_unsupported.onnx"))
m = model([helper.make_node("Dropout", ["x"], ["d", "mask"], name="drop", ratio=0.5), helper.make_node("Relu", ["d"], ["y"])],
          [vi("x", ["N", 4])], [vi("y", None), vi("mask", None, TensorProto.BOOL)], [], opset=10)
onnx.save(m, os.path.join(OUT, "dropout_mask_output.onnx"))
m = model([helper.make_node("Conv", ["x", "w"], ["y"], name="conv", kernel_shape=[1, 1], auto_pad="SAME_SIDEWAYS", foo=3)],
          [vi("x", ["N", 2, 4, 4])], [vi("y", None)], [init("w", randn(2, 2, 1, 1))], opset=13)
onnx.save(m, os.path.join(OUT, "conv_bad_attributes.onnx"))

# --- Cast of a weight stored in another precision (as zoo's writer stores f16/bf16/f64 weights): the
# reader aliases it to the initializer. Conv weight and bias f16, Gemm weight bf16 and bias f64, each
# Cast to FLOAT (bf16 Cast needs opset 13); an f32 Cast to FLOAT too (a no-op).
m = model([helper.make_node("Cast", ["w16"], ["w"], name="w16.f32", to=TensorProto.FLOAT),
           helper.make_node("Cast", ["b16"], ["b"], name="b16.f32", to=TensorProto.FLOAT),
           helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
           helper.make_node("Relu", ["c"], ["r"], name="relu"),
           helper.make_node("Flatten", ["r"], ["f"], name="flatten", axis=1),
           helper.make_node("Cast", ["fc_bf16"], ["fc_w"], name="fc_bf16.f32", to=TensorProto.FLOAT),
           helper.make_node("Cast", ["fc_f64"], ["fc_b"], name="fc_f64.f32", to=TensorProto.FLOAT),
           helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["g"], name="fc", transB=1),
           helper.make_node("Cast", ["shift"], ["shift_f32"], name="shift.f32", to=TensorProto.FLOAT),
           helper.make_node("Add", ["g", "shift_f32"], ["y"], name="add")],
          [vi("x", ["N", 2, 4, 4])], [vi("y", None)],
          [init("w16", randn(3, 2, 3, 3).astype(np.float16)), init("b16", randn(3).astype(np.float16)),
           helper.make_tensor("fc_bf16", TensorProto.BFLOAT16, [5, 48], randn(5, 48).flatten().tolist()),
           init("fc_f64", rng.standard_normal(5)), init("shift", randn(5))], opset=13)
case("cast_stored_precisions", m, randn(2, 2, 4, 4))

# Cast-1 (opsets 1…5) names the type in a STRING attribute; onnxruntime runs opset 7 and later only, so
# this one is checked for structure, not values.
m = model([helper.make_node("Cast", ["w16"], ["w"], name="cast", to="FLOAT"),
           helper.make_node("Add", ["x", "w"], ["y"], name="add", broadcast=1)],
          [vi("x", ["N", 4])], [vi("y", None)], [init("w16", randn(4).astype(np.float16))], opset=5, ir=3)
onnx.save(m, os.path.join(OUT, "cast_string_to_opset5.onnx"))

# Casts the reader refuses: of a value computed at run time, to another type than FLOAT, of an
# integer initializer, without 'to', and Cast-1 with a STRING 'to' other than FLOAT.
m = model([helper.make_node("Cast", ["x"], ["c"], name="cast", to=TensorProto.FLOAT),
           helper.make_node("Relu", ["c"], ["y"], name="relu")],
          [vi("x", ["N", 4])], [vi("y", None)], [], opset=13)
onnx.save(m, os.path.join(OUT, "cast_runtime_value.onnx"))
m = model([helper.make_node("Cast", ["w"], ["w16"], name="cast", to=TensorProto.FLOAT16),
           helper.make_node("Cast", ["w16"], ["w32"], name="back", to=TensorProto.FLOAT),
           helper.make_node("Add", ["x", "w32"], ["y"], name="add")],
          [vi("x", ["N", 4])], [vi("y", None)], [init("w", randn(4))], opset=13)
onnx.save(m, os.path.join(OUT, "cast_to_float16.onnx"))
m = model([helper.make_node("Cast", ["k"], ["kf"], name="cast", to=TensorProto.FLOAT),
           helper.make_node("Add", ["x", "kf"], ["y"], name="add")],
          [vi("x", ["N", 4])], [vi("y", None)], [init("k", np.array([1, 2, 3, 4], dtype=np.int64))], opset=13)
onnx.save(m, os.path.join(OUT, "cast_int_initializer.onnx"))
m = model([helper.make_node("Cast", ["w16"], ["w"], name="cast"), helper.make_node("Add", ["x", "w"], ["y"], name="add")],
          [vi("x", ["N", 4])], [vi("y", None)], [init("w16", randn(4).astype(np.float16))], opset=13)
onnx.save(m, os.path.join(OUT, "cast_without_to.onnx"))
m = model([helper.make_node("Cast", ["w"], ["w16"], name="cast", to="FLOAT16"),
           helper.make_node("Add", ["x", "w16"], ["y"], name="add", broadcast=1)],
          [vi("x", ["N", 4])], [vi("y", None)], [init("w", randn(4))], opset=5, ir=3)
onnx.save(m, os.path.join(OUT, "cast_string_to_float16_opset5.onnx"))

# A widening Cast seen through an Identity; BatchNormalization-15 whose scale, bias, mean and var are
# f16 (its T1/T2 may differ from X's type: no Cast needed); and, refused, a Conv that reads an f16
# weight directly (an ill-typed model: onnxruntime refuses it too, "Type parameter (T) of Optype (Conv)
# bound to different types").
m = model([helper.make_node("Cast", ["w16"], ["w"], name="cast", to=TensorProto.FLOAT),
           helper.make_node("Identity", ["w"], ["wi"], name="identity"),
           helper.make_node("Add", ["x", "wi"], ["y"], name="add")],
          [vi("x", ["N", 4])], [vi("y", None)], [init("w16", randn(4).astype(np.float16))], opset=13)
case("cast_identity", m, randn(3, 4))
m = model([helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], name="bn", epsilon=1e-3)],
          [vi("x", ["N", 3, 4, 4])], [vi("y", None)],
          [init("s", randn(3).astype(np.float16)), init("b", randn(3).astype(np.float16)),
           init("m", randn(3).astype(np.float16)), init("v", (np.abs(randn(3)) + 0.5).astype(np.float16))], opset=15)
case("batchnorm_opset15_f16_parameters", m, randn(2, 3, 4, 4))
m = model([helper.make_node("Conv", ["x", "w16"], ["y"], name="conv", kernel_shape=[1, 1])],
          [vi("x", ["N", 2, 3, 3])], [vi("y", None)], [init("w16", randn(4, 2, 1, 1).astype(np.float16))], opset=13)
onnx.save(m, os.path.join(OUT, "f16_weight_without_cast.onnx"))

# Several graph inputs and outputs (zoo run --input NAME=FILE / --output NAME=FILE, parity over every
# output): x and z in, sum = x + z and relu = Relu(x) out, with onnxruntime's outputs.
m = model([helper.make_node("Add", ["x", "z"], ["sum"], name="add"), helper.make_node("Relu", ["x"], ["relu"], name="relu")],
          [vi("x", ["N", 4]), vi("z", ["N", 4])], [vi("sum", ["N", 4]), vi("relu", ["N", 4])], [], opset=13, check=True)
path = os.path.join(OUT, "two_in_two_out.onnx")
onnx.save(m, path)
feeds = {"x": randn(3, 4), "z": randn(3, 4)}
session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
for name, value in feeds.items():
    np.save(os.path.join(OUT, f"two_in_two_out.{name}.npy"), value)
for output, value in zip(["sum", "relu"], session.run(["sum", "relu"], feeds)):
    np.save(os.path.join(OUT, f"two_in_two_out.{output}.npy"), value.astype(np.float32))

# ReduceMean over height and width: how the dynamo exporter writes AdaptiveAvgPool2d(1) — axes as an
# attribute (opset 13, keepdims) and as a constant input (opset 18, negative axes, keepdims=0).
m = model([helper.make_node("ReduceMean", ["x"], ["y"], axes=[2, 3], keepdims=1)],
          [vi("x", ["N", 3, 5, 4])], [vi("y", None)], [], opset=13)
case("reducemean_spatial_keepdims_opset13", m, randn(2, 3, 5, 4))
m = model([helper.make_node("ReduceMean", ["x", "axes"], ["y"], keepdims=0)],
          [vi("x", ["N", 3, 5, 4])], [vi("y", None)], [init("axes", np.array([-1, -2], dtype=np.int64))], opset=18)
case("reducemean_spatial_opset18", m, randn(2, 3, 5, 4))

with open(os.path.join(OUT, "cases.json"), "w") as f:
    json.dump(cases, f, indent=1, sort_keys=True)
print(f"wrote {len(cases)} op cases and the refusal/typed/external files to {OUT}")

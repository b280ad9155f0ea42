"""Legacy-opset (1…6) ONNX files and onnxruntime's outputs for Tests/ONNXFormatTests/LegacyOpsetTests.swift.

Run with the oracle python (onnx 1.23.2, onnxruntime 1.32):
    /root/.cache/zoo-oracle/bin/python Fixtures/make_onnx_legacy_cases.py

onnxruntime only guarantees opsets ≥ 7 and has no kernels for Relu-1, Dropout-6, Add-6, Gemm-6,
BatchNormalization-6 or Concat-1 (it does still run Reshape-1). So each case is a pair:

  legacy   the model the test loads: the old op with its old attributes (is_test, spatial, broadcast,
           axis, consumed_inputs, Reshape's `shape` attribute, Concat's default axis), checked by
           onnx.checker against that opset's schemas (full_check, i.e. with shape inference);
  modern   the same computation at opset 13 written with today's semantics, run by onnxruntime.

Why each pair is equivalent is written next to it, quoting the schema docs
(onnx.defs.get_schema(op, version).doc / attribute descriptions). As an independent check of those
translations, the legacy model is also upgraded by onnx's own version converter
(onnx.version_converter.convert_version(legacy, 13)) and, where that succeeds, onnxruntime's output of
the converted model must equal the hand-written modern model's output exactly; where onnxruntime
accepts the legacy model itself (Reshape-1), its output must match too. The script stops on any
disagreement.

Writes Fixtures/onnx/legacy/:
  <case>.onnx          the legacy model (what zoo loads)
  <case>.input.npy     its input
  <case>.output.npy    onnxruntime's output of the modern equivalent
  manifest.json        case → opset, op, output name, modern translation, which cross-checks ran
Everything is deterministic (fixed inputs and seed).
"""
import json
import os

import oracle_env  # Fixtures/oracle_env.py

oracle_env.deterministic()

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, defs, helper, numpy_helper, version_converter

oracle_env.require(onnx="1.23.2", onnxruntime="1.32.0")

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "onnx", "legacy")
os.makedirs(OUT, exist_ok=True)
ort.set_default_logger_severity(3)  # the "only guarantees opset ≥ 7" warning is expected here
rng = np.random.default_rng(20241123)

# IR version per opset as onnx.helper.VERSION_TABLE pairs them (IR 3 covers opsets 1…8).
IR = {1: 3, 2: 3, 3: 3, 4: 3, 5: 3, 6: 3, 13: 7, 18: 8}


def f32(values, shape):
    return np.asarray(values, dtype=np.float32).reshape(shape)


def init(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def vi(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def model(nodes, x_shape, y_shape, inits, opset):
    """IR 3 (opsets ≤ 8) requires every initializer to be listed as a graph input too, as old exporters did."""
    inputs = [vi("x", x_shape)]
    if IR[opset] < 4:
        inputs += [helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in inits]
    graph = helper.make_graph(nodes, "legacy", inputs, [vi("y", y_shape)], inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="zoo-legacy-cases")
    m.ir_version = IR[opset]
    onnx.checker.check_model(m, full_check=True)
    return m


def run(m, x):
    session = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(["y"], {"x": x})[0]


def schema_doc(op, version):
    """The schema text the equivalence argument rests on (asserted to contain the quoted phrases)."""
    s = defs.get_schema(op, version)
    return s.doc + "\n".join(f"{a.name}: {a.description}" for a in s.attributes.values())


def quote(op, version, *phrases):
    doc = " ".join(schema_doc(op, version).split())
    for phrase in phrases:
        assert phrase in doc, f"{op}-{version} doc lacks {phrase!r}"


manifest = {}


def case(name, legacy, modern, x, why):
    """Saves the legacy model, runs onnxruntime on the modern one and cross-checks where possible."""
    assert legacy.opset_import[0].version <= 6 or legacy is modern, name
    y = run(modern, x)
    checks = ["onnxruntime(modern)"]
    if legacy is not modern:
        # The converter's broadcast adapters need concrete dims: convert a copy with x's shape pinned.
        pinned = onnx.ModelProto()
        pinned.CopyFrom(legacy)
        for dim, size in zip(pinned.graph.input[0].type.tensor_type.shape.dim, x.shape):
            dim.dim_value = size
        try:
            converted = version_converter.convert_version(pinned, 13)
            converted_y = run(converted, x)
        except Exception as error:  # noqa: BLE001 - recorded in the manifest
            checks.append(f"onnx.version_converter: fails ({str(error).splitlines()[0][-120:]})")
        else:
            assert converted_y.shape == y.shape and np.array_equal(converted_y, y), \
                f"{name}: version_converter's model gives {converted_y}, modern gives {y}"
            checks.append("onnx.version_converter → onnxruntime: identical")
        try:
            legacy_y = run(legacy, x)
        except Exception as error:  # noqa: BLE001
            checks.append(f"onnxruntime(legacy): refused ({type(error).__name__})")
        else:
            assert legacy_y.shape == y.shape and np.array_equal(legacy_y, y), f"{name}: legacy {legacy_y} vs modern {y}"
            checks.append("onnxruntime(legacy): identical")
    onnx.save(legacy, os.path.join(OUT, name + ".onnx"))
    np.save(os.path.join(OUT, name + ".input.npy"), x)
    np.save(os.path.join(OUT, name + ".output.npy"), y.astype(np.float32))
    node = legacy.graph.node[-1]
    manifest[name] = {"opset": legacy.opset_import[0].version, "op": node.op_type, "output": "y",
                      "output_shape": list(y.shape), "modern": why, "checks": checks}
    print(f"{name:44s} opset {manifest[name]['opset']:2d} {list(y.shape)}  {'; '.join(checks)}")


# --- Relu-1 with consumed_inputs (opset 5) ↔ Relu-13.
# Relu-1 documents consumed_inputs as a "legacy optimization attribute" (an in-place hint); Relu-6
# drops it and keeps y = max(0, x) word for word.
quote("Relu", 1, "y = max(0, x)", "consumed_inputs: legacy optimization attribute")
quote("Relu", 6, "y = max(0, x)")
x = f32([-1, 2, -3, 4, 5, -6, 7, -8], [2, 4])
case("relu_consumed_inputs_opset5",
     model([helper.make_node("Relu", ["x"], ["y"], consumed_inputs=[0])], ["N", 4], ["N", 4], [], 5),
     model([helper.make_node("Relu", ["x"], ["y"])], ["N", 4], ["N", 4], [], 13), x,
     "Relu-13: consumed_inputs is Relu-1's 'legacy optimization attribute', dropped in Relu-6 with the same y = max(0, x)")

# --- BatchNormalization-6 / -1 with is_test=1 ↔ BatchNormalization-13 (BN-9, inference).
# BN-1/6: "is_test: If set to nonzero, run spatial batch normalization in test mode" (output case #2:
# Y only, from the given mean and var); spatial defaults to 1 ("mean and variance across all spatial
# elements", i.e. per channel); momentum only updates running statistics in training. BN-7 removes
# is_test (the mode follows the number of outputs: one output is test mode); BN-9 removes spatial,
# keeping the per-channel case ("For previous (depreciated) non-spatial cases, implementors are
# suggested to flatten ..."). consumed_inputs (BN-1) is the same legacy in-place hint as in Relu-1.
quote("BatchNormalization", 6, "is_test: If set to nonzero, run spatial batch normalization in test mode",
      "Output case #2: Y (test mode)", "spatial: If true, compute the mean and variance across all spatial elements")
quote("BatchNormalization", 1, "consumed_inputs: legacy optimization attribute")
quote("BatchNormalization", 9, "Output case #2: Y (test mode)", "previous (depreciated) non-spatial cases")
assert "is_test" not in defs.get_schema("BatchNormalization", 7).attributes
assert "spatial" not in defs.get_schema("BatchNormalization", 9).attributes
bn_inits = [init("scale", f32([2, 0.5], [2])), init("bias", f32([1, -1], [2])),
            init("mean", f32([0.5, 1], [2])), init("var", f32([4, 0.25], [2]))]
bn_in = ["x", "scale", "bias", "mean", "var"]
x = f32([1, 2, 3, 4], [1, 2, 1, 2])
modern_bn = model([helper.make_node("BatchNormalization", bn_in, ["y"], epsilon=0.0)], ["N", 2, 1, 2], ["N", 2, 1, 2],
                  bn_inits, 13)
for name, opset, attributes in [
        ("batchnorm_is_test_opset6", 6, dict(is_test=1, epsilon=0.0)),
        ("batchnorm_is_test_spatial_momentum_opset6", 6, dict(is_test=1, spatial=1, epsilon=0.0, momentum=0.9)),
        ("batchnorm_is_test_consumed_inputs_opset5", 5, dict(is_test=1, consumed_inputs=[0, 0, 0, 1, 1], epsilon=0.0))]:
    case(name, model([helper.make_node("BatchNormalization", bn_in, ["y"], name="bn", **attributes)],
                     ["N", 2, 1, 2], ["N", 2, 1, 2], bn_inits, opset), modern_bn, x,
         "BatchNormalization-13 (one output = test mode), same epsilon; is_test/spatial=1/momentum/consumed_inputs "
         "only select inference, per-channel statistics, training updates, in-place hints")
# A second, random input through the first variant (several batch rows, non-trivial values).
x = rng.standard_normal((3, 2, 1, 2)).astype(np.float32)
case("batchnorm_is_test_random_opset6",
     model([helper.make_node("BatchNormalization", bn_in, ["y"], name="bn", is_test=1, epsilon=1e-3)],
           ["N", 2, 1, 2], ["N", 2, 1, 2], bn_inits, 6),
     model([helper.make_node("BatchNormalization", bn_in, ["y"], epsilon=1e-3)], ["N", 2, 1, 2], ["N", 2, 1, 2],
           bn_inits, 13), x,
     "BatchNormalization-13 with the same epsilon (1e-3)")

# --- Dropout-6 with is_test=1 ↔ Dropout-13 in inference (no training_mode): Y = X.
quote("Dropout", 6, "is_test: (int, default 0) if nonzero, run dropout in test mode where the output is simply Y = X")
x = f32([1, 2, 3, 4], [1, 4])
case("dropout_is_test_opset6",
     model([helper.make_node("Dropout", ["x"], ["y"], name="drop", is_test=1, ratio=0.3)], ["N", 4], ["N", 4], [], 6),
     model([helper.make_node("Dropout", ["x"], ["y"])], ["N", 4], ["N", 4], [], 13), x,
     "Dropout-13 without training_mode (inference: output = input); Dropout-6 is_test=1 is 'simply Y = X'")

# --- Add-6 (and Add-1 with consumed_inputs) with broadcast=1 ↔ Add-13 with B reshaped.
# Add-6: with broadcast=1, B is "of element size 1 ... or having its shape as a contiguous subset of
# the first tensor's shape. The starting of the mutually equal shape is specified by the argument
# 'axis', and if it is not set, suffix matching is assumed." So B of rank r placed at axis k of A
# (rank R) lines up with A's dims k…k+r-1: that is numpy broadcasting of B reshaped to
# B.shape + [1]·(R-k-r). Add-7 switches to numpy (multidirectional) broadcasting, so the modern model
# is Add(A, reshape(B)). (Add-6 also says "1-dim expansion doesn't work yet": the B [2, 1] case below
# goes beyond the spec's literal examples; zoo accepts it with the numpy meaning of the same
# alignment, which is what the modern model computes.) Without broadcast, shapes must be equal.
quote("Add", 6, "the second tensor can either be of element size 1", "having its shape as a contiguous subset of the first tensor's shape",
      "The starting of the mutually equal shape is specified by the argument \"axis\", and if it is not set, suffix matching is assumed",
      "Attribute `broadcast=1` needs to be passed to enable broadcasting")
quote("Add", 7, "multidirectional (i.e., Numpy-style) broadcasting")
x = np.arange(12, dtype=np.float32).reshape(1, 2, 3, 2)
b23 = [100, 200, 300, 400, 500, 600]
for name, opset, b, dims, attributes, aligned in [
        ("add_broadcast_axis1_opset6", 6, b23, [2, 3], dict(broadcast=1, axis=1), [2, 3, 1]),
        ("add_broadcast_axis1_consumed_inputs_opset5", 5, b23, [2, 3], dict(broadcast=1, axis=1, consumed_inputs=[0, 0]), [2, 3, 1]),
        ("add_broadcast_suffix_opset6", 6, b23, [3, 2], dict(broadcast=1), [3, 2]),
        ("add_broadcast_axis2_opset6", 6, b23, [3, 2], dict(broadcast=1, axis=2), [3, 2]),
        ("add_broadcast_channel_opset6", 6, [10, 20], [2], dict(broadcast=1, axis=1), [2, 1, 1]),
        ("add_broadcast_one_element_opset6", 6, [7], [1, 1], dict(broadcast=1, axis=0), [1, 1, 1, 1]),
        ("add_broadcast_expand_opset6", 6, [10, 20], [2, 1], dict(broadcast=1, axis=1), [2, 1, 1])]:
    case(name,
         model([helper.make_node("Add", ["x", "b"], ["y"], name="add", **attributes)], ["N", 2, 3, 2], ["N", 2, 3, 2],
               [init("b", f32(b, dims))], opset),
         model([helper.make_node("Add", ["x", "b"], ["y"])], ["N", 2, 3, 2], ["N", 2, 3, 2],
               [init("b", f32(b, aligned))], 13), x,
         f"Add-13 with B {dims} reshaped to {aligned} (placed at axis {attributes.get('axis', 'suffix')})")
case("add_same_shape_opset6",
     model([helper.make_node("Add", ["x", "x"], ["y"])], ["N", 2, 3, 2], ["N", 2, 3, 2], [], 6),
     model([helper.make_node("Add", ["x", "x"], ["y"])], ["N", 2, 3, 2], ["N", 2, 3, 2], [], 13), x,
     "Add-13: equal shapes need no broadcast in either version")
# B computed at run time: A = Reshape(x) [1, 3, 2, 1], B = x [1, 3, 2] at axis 0 → B as [1, 3, 2, 1].
x = f32([1, 2, 3, 4, 5, 6], [1, 3, 2])
shape = init("shape", np.array([1, 3, 2, 1], dtype=np.int64))
case("add_broadcast_computed_opset6",
     model([helper.make_node("Reshape", ["x", "shape"], ["a"]),
            helper.make_node("Add", ["a", "x"], ["y"], name="add", broadcast=1, axis=0)], [1, 3, 2], [1, 3, 2, 1], [shape], 6),
     model([helper.make_node("Reshape", ["x", "shape"], ["a"]), helper.make_node("Reshape", ["x", "shape"], ["b"]),
            helper.make_node("Add", ["a", "b"], ["y"])], [1, 3, 2], [1, 3, 2, 1], [shape], 13), x,
     "Reshape-13 then Add-13 of both operands as [1, 3, 2, 1] (B [1, 3, 2] at axis 0 of a rank-4 A)")

# --- Gemm-6 ↔ Gemm-13. Gemm-6: "If attribute broadcast is non-zero, input tensor C will be broadcasted
# to match the dimension requirement" (M × N), otherwise C is M × N. Gemm-7 removes `broadcast`: "input
# tensor C is broadcastable to shape (M, N)" with unidirectional (numpy) broadcasting, which covers
# every C here ([N], [1, 1], [M, 1], [M, N]); alpha, beta, transA/transB are unchanged.
quote("Gemm", 6, "If attribute broadcast is non-zero, input tensor C will be broadcasted to match the dimension requirement",
      "input tensor C and output tensor Y have dimension (M X N)")
quote("Gemm", 7, "input tensor C is broadcastable to shape (M, N)", "unidirectional broadcasting")
assert "broadcast" not in defs.get_schema("Gemm", 7).attributes
w = f32([1, 0, 0, 1, 1, 1], [2, 3])
x = f32([1, 2, 3, 4, 5, 6], [2, 3])
for name, c, dims, attributes, batch in [
        ("gemm_broadcast_row_opset6", [10, 20], [2], dict(broadcast=1), "N"),
        ("gemm_broadcast_one_element_opset6", [10], [1, 1], dict(broadcast=1), "N"),
        ("gemm_broadcast_column_opset6", [10, 20], [2, 1], dict(broadcast=1), 2),
        ("gemm_full_c_opset6", [10, 20, 30, 40], [2, 2], {}, 2),
        ("gemm_alpha_beta_opset6", [10, 20, 30, 40], [2, 2], dict(broadcast=0, alpha=2.0, beta=0.5), 2)]:
    modern_attributes = {k: v for k, v in attributes.items() if k != "broadcast"}
    inits = [init("w", w), init("c", f32(c, dims))]
    case(name,
         model([helper.make_node("Gemm", ["x", "w", "c"], ["y"], name="fc", transB=1, **attributes)], [batch, 3], [batch, 2],
               inits, 6),
         model([helper.make_node("Gemm", ["x", "w", "c"], ["y"], transB=1, **modern_attributes)], [batch, 3], [batch, 2],
               inits, 13), x,
         f"Gemm-13 with the same C {dims} (unidirectional broadcasting), alpha, beta, transB")

# --- Reshape-1 (opset 4, `shape` attribute) ↔ Reshape-13 (shape as an input). Reshape-5 moves the
# shape from the attribute to a second input with the same 0 / -1 rules ("A dimension could also be
# 0, in which case the actual dimension value is unchanged"); consumed_inputs is the legacy hint.
quote("Reshape", 1, "It takes a tensor as input and an argument `shape`", "could also be 0, in which case the actual dimension value is unchanged")
quote("Reshape", 5, "second input is a shape tensor", "could also be 0, in which case the actual dimension value is unchanged")
x = f32([1, 2, 3, 4, 5, 6, 7, 8], [2, 4])
case("reshape_attribute_opset4",
     model([helper.make_node("Reshape", ["x"], ["y"], shape=[0, 2, 2], consumed_inputs=[0])], ["N", 4], ["N", 2, 2], [], 4),
     model([helper.make_node("Reshape", ["x", "shape"], ["y"])], ["N", 4], ["N", 2, 2],
           [init("shape", np.array([0, 2, 2], dtype=np.int64))], 13), x,
     "Reshape-13 with shape [0, 2, 2] as an initializer input")

# --- Concat-1 (opset 3, no axis) ↔ Concat-13 axis=1. Concat-1: "axis: Which axis to concat on.
# Default value is 1."; Concat-4 makes axis required.
quote("Concat", 1, "Which axis to concat on. Default value is 1.")
assert defs.get_schema("Concat", 4).attributes["axis"].required
case("concat_default_axis_opset3",
     model([helper.make_node("Concat", ["x", "x"], ["y"])], ["N", 4], ["N", 8], [], 3),
     model([helper.make_node("Concat", ["x", "x"], ["y"], axis=1)], ["N", 4], ["N", 8], [], 13), x,
     "Concat-13 with axis=1, Concat-1's default")

# --- Reshape(x, [-1, 12]) on [N, 2, 3, 2] at opsets 13 and 18 (allowzero=1): modern already, so
# onnxruntime runs the very model zoo loads.
x = np.arange(24, dtype=np.float32).reshape(2, 2, 3, 2)
for name, opset, attributes in [("reshape_minus_one_opset13", 13, {}), ("reshape_minus_one_allowzero_opset18", 18, dict(allowzero=1))]:
    m = model([helper.make_node("Reshape", ["x", "shape"], ["y"], **attributes)], ["N", 2, 3, 2], ["N", 12],
              [init("shape", np.array([-1, 12], dtype=np.int64))], opset)
    case(name, m, m, x, f"itself (opset {opset})")

with open(os.path.join(OUT, "manifest.json"), "w") as f:
    json.dump(manifest, f, indent=1, sort_keys=True)
    f.write("\n")
print(f"{len(manifest)} cases in {OUT}")

#!/usr/bin/env python3
"""Generate the ONNX model fixtures under Fixtures/onnx/ with torch's exporters, onnx.helper and
onnxruntime.

Run from the repository root:

    $(../shared/oracle/setup) Fixtures/make_onnx_fixtures.py

Pins torch==2.9.1, torchvision==0.24.1, onnx==1.23.2, onnxruntime==1.32.0. Runs single-threaded with
the environment of the other fixture scripts. The expected outputs are onnxruntime's (CPU provider,
graph optimizations off, one thread) — not torch's: torch's outputs are only checked against them
here (max |Δ| printed and bounded) — and the onnx.reference evaluator is not used at all, because its
LRN is wrong in onnx 1.23.2 (onnx#7805).

Models (Fixtures/onnx/manifest.json lists each with its input, expected output, opset, exporter):

1. alexnet_small_ts_opset13.onnx, alexnet_small_ts_opset17.onnx — the reduced torchvision AlexNet of
   Fixtures/torch/alexnet_small.pth (conv 8-16-24-16-16, classifier 576-64-64-10; the layers of
   torchvision.models.alexnet replaced at the same indices) exported by the TorchScript exporter
   (dynamo=False) at 1x3x224x224 with a dynamic batch ("batch"). At 224 the features end at 6x6, so
   AdaptiveAvgPool2d(6) exports (as a 1x1 AveragePool); other sizes do not divide and TorchScript
   refuses them.
2. alexnet_small_dynamo_opset18.onnx + alexnet_small_dynamo_opset18.onnx.data — the same model and
   weights through the dynamo exporter (dynamo=True) at opset 18 with external_data=True and a
   dynamic batch.
   All three run on alexnet_small_input.npy: float32 [2, 3, 224, 224], numpy default_rng(0)
   standard normal; expected logits in <model>.expected.npy ([2, 10]).
3. alexnet_paper_small_opset9.onnx, alexnet_paper_small_opset13.onnx — the 2012-paper / Caffe
   bvlc_alexnet layout built node by node with onnx.helper, laid out like the ONNX model zoo's
   bvlc_alexnet (onnx/backend/test/data/light/light_bvlc_alexnet.onnx) at reduced width: conv
   16-32-48-48-32 (11x11 s4 | 5x5 p2 group 2 | 3x3 p1 | 3x3 p1 group 2 | 3x3 p1 group 2), ReLU,
   LRN(size 5, alpha 1e-4, beta 0.75, bias 1) after conv1 and conv2, MaxPool 3x3 s2 (the last with
   pads [0, 0, 1, 1], the zoo model's way of writing Caffe's ceil rounding — at 227x227 it changes
   nothing, at 224x224 it makes 6x6 of 5.5), Reshape to [-1, 1152] with the shape as an int64
   initializer input, Gemm(transB) 1152-64-64-10 with ReLU and Dropout(0.5) after the first two,
   Softmax at the end (default axis: 1 at opset 9, -1 at opset 13 — the same for 2-D).
   Opset 9: ir_version 3, initializers also listed as graph inputs (as in the zoo file), Dropout with
   the ratio attribute and its mask output. Opset 13: ir_version 7, Dropout with the ratio as an
   input initializer (a scalar).
   Weights: numpy default_rng(20121203), He-normal weights (conv1 x20 so that LRN matters, fc8 x0.02
   so that the softmax is not saturated), small normal biases — identical in both files. Input: Fixtures/parity/alexnet_paper_small_input.npy ([2, 3, 227, 227], already
   committed); expected probabilities in <model>.expected.npy ([2, 10]).
4. fp16_model_logits.npy — not an ONNX model: torch's logits for Fixtures/torch/fp16_model.pth
   (alexnet_small's state dict .half()) with the weights widened back to f32 (the model .half().float()),
   on alexnet_small_input.npy (float32 input, f32 compute) — what a converted half-precision model
   must compute ([2, 10]; "fp16_reference" in the manifest, with its distance from the f32 model's
   logits: the precision the f16 weights lose).
"""

import os
import sys

import oracle_env  # noqa: E402  (Fixtures/oracle_env.py)

oracle_env.deterministic()

import json
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torchvision
from onnx import TensorProto, helper, numpy_helper

oracle_env.require(torch="2.9.1", torchvision="0.24.1", onnx="1.23.2", onnxruntime="1.32.0")

torch.set_num_threads(1)
warnings.filterwarnings("ignore")

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "onnx"
sys.path.insert(0, str(ROOT))
from make_fixtures import alexnet_small  # noqa: E402  (same env, so importing does not re-exec)

MANIFEST = []


def run_ort(path, x):
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    (name,) = [i.name for i in session.get_inputs()]
    return session.run(None, {name: x})[0]


def record(path, *, exporter, input_file, x, notes, data_file=None, torch_reference=None):
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    y = run_ort(path, x)
    # the batch is dynamic: each row alone gives the same result
    row = run_ort(path, x[1:2])
    assert np.allclose(row, y[1:2], rtol=1e-5, atol=1e-6), np.abs(row - y[1:2]).max()
    expected = path.name.replace(".onnx", ".expected.npy")
    np.save(OUT / expected, y.astype(np.float32))
    opset = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")][0]
    entry = {
        "name": path.stem, "file": path.name, "exporter": exporter, "opset": opset,
        "ir_version": model.ir_version, "input": input_file, "input_name": model.graph.input[0].name,
        "input_shape": list(x.shape), "output_name": model.graph.output[0].name,
        "expected": expected, "expected_shape": list(y.shape),
        "ops": sorted({n.op_type for n in model.graph.node}),
        "nodes": len(model.graph.node), "initializers": len(model.graph.initializer),
        "top5": np.argsort(-y, axis=1, kind="stable")[:, :5].tolist(),
        "notes": notes,
    }
    if data_file:
        entry["external_data"] = data_file
    if torch_reference is not None:
        diff = float(np.abs(torch_reference - y).max())
        entry["max_abs_diff_vs_torch"] = diff
        assert diff <= 1e-4 * float(np.abs(y).max()), diff
    MANIFEST.append(entry)
    size = path.stat().st_size + ((OUT / data_file).stat().st_size if data_file else 0)
    print(f"  {path.name}: opset {opset}, ir {model.ir_version}, {len(model.graph.node)} nodes, "
          f"{size} bytes, ops {entry['ops']}")


def torchvision_models():
    model = alexnet_small()
    model.load_state_dict(torch.load(ROOT / "torch" / "alexnet_small.pth", weights_only=True), strict=True)
    model.eval()
    x = np.random.default_rng(0).standard_normal((2, 3, 224, 224)).astype(np.float32)
    np.save(OUT / "alexnet_small_input.npy", x)
    with torch.no_grad():
        reference = model(torch.from_numpy(x)).numpy()
    example = torch.from_numpy(x[:1])
    for opset in (13, 17):
        path = OUT / f"alexnet_small_ts_opset{opset}.onnx"
        torch.onnx.export(model, (example,), str(path), dynamo=False, opset_version=opset,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
        record(path, exporter="torch.onnx.export(dynamo=False) (TorchScript), torch 2.9.1",
               input_file="alexnet_small_input.npy", x=x, torch_reference=reference,
               notes="reduced torchvision AlexNet (Fixtures/torch/alexnet_small.pth), dynamic batch")

    path = OUT / "alexnet_small_dynamo_opset18.onnx"
    data = path.name + ".data"
    for stale in (path, OUT / data):
        stale.unlink(missing_ok=True)
    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.onnx.export(model, (example,), dynamo=True, opset_version=18,
                                input_names=["input"], output_names=["logits"],
                                dynamic_shapes=({0: batch},), optimize=True, verify=False)
    program.save(str(path), external_data=True)
    assert (OUT / data).exists(), "the dynamo exporter wrote no external data file"
    record(path, exporter="torch.onnx.export(dynamo=True), torch 2.9.1, external_data=True",
           input_file="alexnet_small_input.npy", x=x, torch_reference=reference, data_file=data,
           notes="reduced torchvision AlexNet (Fixtures/torch/alexnet_small.pth), dynamic batch, "
                 "tensors in the external data file")


def paper_weights():
    rng = np.random.default_rng(20121203)
    shapes = {
        "conv1_w": (16, 3, 11, 11), "conv2_w": (32, 8, 5, 5), "conv3_w": (48, 32, 3, 3),
        "conv4_w": (48, 24, 3, 3), "conv5_w": (32, 24, 3, 3),
        "fc6_w": (64, 1152), "fc7_w": (64, 64), "fc8_w": (10, 64),
    }
    weights = {}
    for name, shape in shapes.items():
        fan_in = int(np.prod(shape[1:]))
        weights[name] = (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
        weights[name.replace("_w", "_b")] = (rng.standard_normal(shape[0]) * 0.01).astype(np.float32)
    # conv1 x20: activations of ~70 (as Caffe's 0-255 inputs give) so that LRN's alpha 1e-4 matters
    # (it changes conv1's output by ~7 %); fc8 x0.02: logits of a few units, so the softmax is not
    # saturated and every probability is checked at the tolerance.
    weights["conv1_w"] *= np.float32(20)
    weights["fc8_w"] *= np.float32(0.02)
    return weights


def paper_model(opset):
    w = paper_weights()
    nodes = []
    inits = [numpy_helper.from_array(v, name) for name, v in w.items()]
    inits.append(numpy_helper.from_array(np.array([-1, 1152], dtype=np.int64), "fc6_shape"))
    lrn = dict(size=5, alpha=1e-4, beta=0.75, bias=1.0)

    def conv(i, x, kernel, pads, stride=1, group=1):
        attrs = dict(kernel_shape=[kernel, kernel], strides=[stride, stride], pads=[pads] * 4)
        if group != 1:
            attrs["group"] = group
        nodes.append(helper.make_node("Conv", [x, f"conv{i}_w", f"conv{i}_b"], [f"conv{i}"], name=f"conv{i}", **attrs))
        nodes.append(helper.make_node("Relu", [f"conv{i}"], [f"relu{i}"], name=f"relu{i}"))
        return f"relu{i}"

    def pool(i, x, pads=(0, 0, 0, 0)):
        nodes.append(helper.make_node("MaxPool", [x], [f"pool{i}"], name=f"pool{i}", kernel_shape=[3, 3],
                                      strides=[2, 2], pads=list(pads)))
        return f"pool{i}"

    def dropout(i, x):
        if opset < 12:
            nodes.append(helper.make_node("Dropout", [x], [f"drop{i}", f"drop{i}_mask"], name=f"drop{i}", ratio=0.5))
        else:
            nodes.append(helper.make_node("Dropout", [x, "dropout_ratio"], [f"drop{i}"], name=f"drop{i}"))
        return f"drop{i}"

    def fc(i, x, relu=True):
        nodes.append(helper.make_node("Gemm", [x, f"fc{i}_w", f"fc{i}_b"], [f"fc{i}"], name=f"fc{i}", transB=1))
        if not relu:
            return f"fc{i}"
        nodes.append(helper.make_node("Relu", [f"fc{i}"], [f"relu{i}"], name=f"relu{i}"))
        return dropout(i, f"relu{i}")

    if opset >= 12:
        inits.append(numpy_helper.from_array(np.array(0.5, dtype=np.float32), "dropout_ratio"))
    x = conv(1, "data", 11, 0, stride=4)
    nodes.append(helper.make_node("LRN", [x], ["norm1"], name="norm1", **lrn))
    x = pool(1, "norm1")
    x = conv(2, x, 5, 2, group=2)
    nodes.append(helper.make_node("LRN", [x], ["norm2"], name="norm2", **lrn))
    x = pool(2, "norm2")
    x = conv(3, x, 3, 1)
    x = conv(4, x, 3, 1, group=2)
    x = conv(5, x, 3, 1, group=2)
    x = pool(5, x, pads=(0, 0, 1, 1))
    nodes.append(helper.make_node("Reshape", [x, "fc6_shape"], ["flat"], name="flatten"))
    x = fc(6, "flat")
    x = fc(7, x)
    x = fc(8, x, relu=False)
    nodes.append(helper.make_node("Softmax", [x], ["prob"], name="prob"))

    data = helper.make_tensor_value_info("data", TensorProto.FLOAT, ["N", 3, 227, 227])
    prob = helper.make_tensor_value_info("prob", TensorProto.FLOAT, ["N", 10])
    inputs = [data]
    if opset < 9 + 1:  # IR 3 style: initializers are graph inputs too
        inputs += [helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in inits]
    graph = helper.make_graph(nodes, f"alexnet_paper_small_opset{opset}", inputs, [prob], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="zoo Fixtures/make_onnx_fixtures.py",
                              ir_version=3 if opset == 9 else 7)
    path = OUT / f"alexnet_paper_small_opset{opset}.onnx"
    onnx.save(model, str(path))
    return path


def paper_models():
    x = np.load(ROOT / "parity" / "alexnet_paper_small_input.npy")
    assert x.shape == (2, 3, 227, 227) and x.dtype == np.float32
    outputs = []
    for opset in (9, 13):
        path = paper_model(opset)
        record(path, exporter="onnx.helper (hand-built)", input_file="../parity/alexnet_paper_small_input.npy", x=x,
               notes="2012-paper AlexNet in the layout of the ONNX model zoo's bvlc_alexnet at reduced width "
                     "(conv 16-32-48-48-32, fc 1152-64-64-10), LRN, groups 2, MaxPool pads [0,0,1,1], "
                     "Reshape [-1, 1152], Dropout, Softmax; numpy weights seed 20121203")
        outputs.append(np.load(OUT / path.name.replace(".onnx", ".expected.npy")))
    assert np.array_equal(outputs[0], outputs[1]), "opset 9 and 13 files must compute the same"
    probs = outputs[0]
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    # not degenerate: the probabilities differ, so top-5 is meaningful
    assert all(len(set(np.round(r, 6))) == 10 for r in probs), probs


def fp16_reference():
    sd = torch.load(ROOT / "torch" / "fp16_model.pth", weights_only=True)
    assert all(t.dtype == torch.float16 for t in sd.values())
    model = alexnet_small()
    model.load_state_dict(torch.load(ROOT / "torch" / "alexnet_small.pth", weights_only=True), strict=True)
    x = np.load(OUT / "alexnet_small_input.npy")
    with torch.no_grad():
        full = model(torch.from_numpy(x)).numpy()
        model.half().float()
        for key, value in model.state_dict().items():
            assert value.dtype == torch.float32 and torch.equal(value, sd[key].float()), key
        y = model(torch.from_numpy(x)).numpy()
    np.save(OUT / "fp16_model_logits.npy", y.astype(np.float32))
    diff = float(np.abs(y - full).max())
    print(f"  fp16_model_logits.npy: max|Δ| {diff:.3g} from the f32 weights' logits (max|ref| {np.abs(y).max():.3g})")
    return {
        "weights": "../torch/fp16_model.pth", "input": "alexnet_small_input.npy", "expected": "fp16_model_logits.npy",
        "expected_shape": list(y.shape), "computed_by": "torch 2.9.1, model.half().float() (f16 weights widened to f32), f32 input",
        "max_abs_diff_vs_f32_weights": diff,
        "top5": np.argsort(-y, axis=1, kind="stable")[:, :5].tolist(),
    }


def main():
    OUT.mkdir(exist_ok=True)
    torchvision_models()
    paper_models()
    f16 = fp16_reference()
    doc = {
        "generator": "Fixtures/make_onnx_fixtures.py (torch 2.9.1, torchvision 0.24.1, onnx 1.23.2, onnxruntime 1.32.0)",
        "expected_from": "onnxruntime 1.32.0, CPUExecutionProvider, graph optimizations off, 1 thread",
        "tolerance": "max |Δ| <= 1e-4 * max |ref| and identical top-5 per row",
        "models": MANIFEST,
        "fp16_reference": f16,
    }
    (OUT / "manifest.json").write_text(json.dumps(doc, indent=1) + "\n")
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"Fixtures/onnx: {len(list(OUT.iterdir()))} files, {total} bytes")


if __name__ == "__main__":
    main()

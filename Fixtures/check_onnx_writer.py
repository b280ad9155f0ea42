#!/usr/bin/env python3
"""Check zoo's ONNX writer against onnx, onnxruntime and PyTorch.

Run from the repository root with the oracle's python:

    $(../shared/oracle/setup) Fixtures/check_onnx_writer.py ZOO_BINARY [--keep] [--no-full]

Models: the reduced torchvision AlexNet (Fixtures/torch/alexnet_small.pth), the reduced 2012-paper
AlexNet (Fixtures/parity/alexnet_paper_small.pth, LRN and grouped convolutions) and the full-size
torchvision AlexNet made by `ZOO_BINARY init alexnet -o TMP/alexnet_full.pth` (skipped with --no-full);
and the same weights in other precisions, which the file must keep: Fixtures/torch/fp16_model.pth
(alexnet_small `.half()`), alexnet_small `.bfloat16()` and `.double()` and the full-size model
`.half()` (made by torch into TMP). Their reference is torch with the weights widened to f32 (f32
input), and each initializer must be stored in its own dtype, read only through one Cast to FLOAT.
Each is converted with

    ZOO_BINARY convert IN.pth OUT.onnx [--opset N] [--external-data]

at opsets 13, 17 and 21 and with external data (opset 17; the full-size model at 17 and external
data only), then:
  * onnx.checker.check_model(path, full_check=True) accepts the file (strict shape inference too);
  * structure: ir_version is the lowest that carries the opset (onnx.helper.OP_SET_ID_VERSION_MAP),
    opset_import, producer "zoo", a symbolic batch on the input and output, no Dropout node, every
    state-dict tensor present as an initializer under its key with bitwise-equal values; with
    external data every external tensor lies in OUT.onnx.data at a 4096-aligned offset;
  * onnxruntime (CPU, one thread) and torch (float32, one thread) run the same batch of 2 inputs;
    max|Δ| between them must be ≤ 1e-5 + 1e-4 · max|torch| with the same top-1 per row;
  * layer by layer (single-file variants): every node's output is made a graph output and compared
    with the activation of the torch module of the same name (forward hooks), same tolerance per
    layer — the logits of generated weights depend weakly on the input, the layers do not.
Prints one line per file and a table; exits 1 if any check fails.
"""

import os
import sys

_ENV = {"OMP_NUM_THREADS": "1"}
if any(os.environ.get(k) != v for k, v in _ENV.items()):
    env = dict(os.environ)
    env.update(_ENV)
    os.execve(sys.executable, [sys.executable] + sys.argv, env)

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnx.helper
import onnx.numpy_helper
import onnxruntime as ort
import torch
import torch.nn as nn
import torchvision

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parent
ATOL, RTOL = 1e-5, 1e-4


# ------------------------------------------------------------------------------------------------
# PyTorch reference models, built from the state dict's shapes
# ------------------------------------------------------------------------------------------------

def is_paper(sd):
    return "features.12.weight" in sd


def torchvision_alexnet(sd):
    """torchvision's AlexNet with the widths the state dict has."""
    m = torchvision.models.alexnet(weights=None)
    f, c = m.features, m.classifier
    convs = [(0, 11, 4, 2), (3, 5, 1, 2), (6, 3, 1, 1), (8, 3, 1, 1), (10, 3, 1, 1)]
    for index, k, s, p in convs:
        out_ch, in_ch = sd[f"features.{index}.weight"].shape[:2]
        f[index] = nn.Conv2d(in_ch, out_ch, kernel_size=k, stride=s, padding=p)
    for index in (1, 4, 6):
        out_f, in_f = sd[f"classifier.{index}.weight"].shape
        c[index] = nn.Linear(in_f, out_f)
    m.load_state_dict(sd, strict=True)
    return m.eval()


class PaperAlexNet(nn.Module):
    """The 2012 paper / Caffe layout (as Fixtures/make_parity_fixtures.py builds it)."""

    def __init__(self, widths, hidden, classes):
        super().__init__()
        c1, c2, c3, c4, c5 = widths
        self.features = nn.Sequential(
            nn.Conv2d(3, c1, kernel_size=11, stride=4), nn.ReLU(inplace=True),
            nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            nn.Conv2d(c1, c2, kernel_size=5, padding=2, groups=2), nn.ReLU(inplace=True),
            nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            nn.Conv2d(c2, c3, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c3, c4, kernel_size=3, padding=1, groups=2), nn.ReLU(inplace=True),
            nn.Conv2d(c4, c5, kernel_size=3, padding=1, groups=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
        )
        self.classifier = nn.Sequential(
            nn.Dropout(p=0.5), nn.Linear(c5 * 6 * 6, hidden), nn.ReLU(inplace=True),
            nn.Dropout(p=0.5), nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, classes),
        )

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def paper_alexnet(sd):
    widths = [sd[f"features.{i}.weight"].shape[0] for i in (0, 4, 8, 10, 12)]
    hidden = sd["classifier.1.weight"].shape[0]
    classes = sd["classifier.6.weight"].shape[0]
    m = PaperAlexNet(widths, hidden, classes)
    m.load_state_dict(sd, strict=True)
    return m.eval()


# ------------------------------------------------------------------------------------------------
# Checks
# ------------------------------------------------------------------------------------------------

def tensor_bytes(t):
    return t.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


ONNX_TYPE = {torch.float32: onnx.TensorProto.FLOAT, torch.float16: onnx.TensorProto.FLOAT16,
             torch.bfloat16: onnx.TensorProto.BFLOAT16, torch.float64: onnx.TensorProto.DOUBLE}


def check_structure(path, opset, external, sd):
    """Returns a list of problems (empty when the file is as the writer promises)."""
    problems = []
    model = onnx.load(str(path), load_external_data=False)
    want_ir = onnx.helper.OP_SET_ID_VERSION_MAP[("ai.onnx", opset)]
    if model.ir_version != want_ir:
        problems.append(f"ir_version {model.ir_version}, expected {want_ir}")
    opsets = [(o.domain, o.version) for o in model.opset_import]
    if opsets != [("", opset)]:
        problems.append(f"opset_import {opsets}")
    if model.producer_name != "zoo" or not model.producer_version:
        problems.append(f"producer {model.producer_name!r} {model.producer_version!r}")
    g = model.graph
    for vi in list(g.input) + list(g.output):
        dims = vi.type.tensor_type.shape.dim
        if not dims or dims[0].dim_param != "N":
            problems.append(f"{vi.name}: batch dimension is not symbolic 'N'")
    if any(n.op_type == "Dropout" for n in g.node):
        problems.append("a Dropout node was written")
    unnamed = [n.op_type for n in g.node if not n.name]
    if unnamed:
        problems.append(f"unnamed nodes: {unnamed}")
    inits = {t.name: t for t in g.initializer}
    missing = [k for k in sd if k not in inits]
    if missing:
        problems.append(f"state-dict keys missing as initializers: {missing}")
    data = (path.parent / (path.name + ".data")).read_bytes() if external else b""
    n_external = 0
    for key, value in sd.items():
        t = inits.get(key)
        if t is None:
            continue
        if t.data_location == onnx.TensorProto.EXTERNAL:
            n_external += 1
            info = {e.key: e.value for e in t.external_data}
            if info.get("location") != path.name + ".data":
                problems.append(f"{key}: external location {info.get('location')!r}")
                continue
            offset, length = int(info.get("offset", 0)), int(info["length"])
            if offset % 4096:
                problems.append(f"{key}: external offset {offset} is not 4096-aligned")
            if offset + length > len(data):
                problems.append(f"{key}: external data [{offset}, {offset + length}) past the end ({len(data)})")
            raw = data[offset:offset + length]
        else:
            raw = t.raw_data
        if raw != tensor_bytes(value):
            problems.append(f"{key}: bytes differ from the state dict")
        if list(t.dims) != list(value.shape):
            problems.append(f"{key}: dims {list(t.dims)} vs {list(value.shape)}")
        if t.data_type != ONNX_TYPE[value.dtype]:
            problems.append(f"{key}: stored as {onnx.TensorProto.DataType.Name(t.data_type)}, the state dict has {value.dtype}")
        readers = [n for n in g.node if key in n.input]
        if value.dtype != torch.float32:
            to = [a.i for n in readers for a in n.attribute if a.name == "to"]
            if [n.op_type for n in readers] != ["Cast"] or to != [onnx.TensorProto.FLOAT]:
                problems.append(f"{key}: {value.dtype} must be read by one Cast to FLOAT, is read by {[n.op_type for n in readers]}")
        elif any(n.op_type == "Cast" for n in readers):
            problems.append(f"{key}: an f32 initializer is Cast")
    if external and n_external == 0:
        problems.append("external data requested but no tensor is external")
    if not external and n_external:
        problems.append(f"{n_external} tensors external without --external-data")
    return problems


def run_onnxruntime(path, x):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return sess.run(None, {name: x})[0]


def run_onnxruntime_every_node(path, x):
    """Every node's output by node name (nodes are named after torch module paths)."""
    model = onnx.load(str(path))
    known = {o.name for o in model.graph.output}
    infos = {vi.name: vi for vi in model.graph.value_info}
    for node in model.graph.node:
        if node.output[0] not in known:
            model.graph.output.append(infos[node.output[0]])
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    values = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {sess.get_inputs()[0].name: x})))
    return {node.name: values[node.output[0]] for node in model.graph.node if node.op_type != "Cast"}


def torch_every_module(model, x):
    """Activations of every named module (cloned: ReLU works in place), plus 'flatten'."""
    acts, hooks = {}, []
    for name, module in model.named_modules():
        if name and not list(module.children()):
            hooks.append(module.register_forward_hook(
                lambda m, i, o, name=name: acts.__setitem__(name, o.detach().clone().numpy())))
    with torch.no_grad():
        model(torch.from_numpy(x))
    for h in hooks:
        h.remove()
    before = acts["avgpool"] if "avgpool" in acts else acts["features.14"]
    acts["flatten"] = before.reshape(before.shape[0], -1)
    return acts


def input_shape(path):
    model = onnx.load(str(path), load_external_data=False)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    return [d.dim_value for d in dims[1:]]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("zoo", help="the zoo binary")
    ap.add_argument("--keep", action="store_true", help="keep the output directory")
    ap.add_argument("--no-full", action="store_true", help="skip the full-size AlexNet")
    args = ap.parse_args()
    zoo = str(Path(args.zoo).resolve())
    print(f"onnx {onnx.__version__}, onnxruntime {ort.__version__}, torch {torch.__version__}")

    out = Path(tempfile.mkdtemp(prefix="zoo-onnx-writer-"))
    models = [("alexnet_small", ROOT / "torch" / "alexnet_small.pth", [(13, False), (17, False), (21, False), (17, True)]),
              ("alexnet_paper_small", ROOT / "parity" / "alexnet_paper_small.pth",
               [(13, False), (17, False), (21, False), (17, True)])]
    if not args.no_full:
        full = out / "alexnet_full.pth"
        r = subprocess.run([zoo, "init", "alexnet", "-o", str(full)], capture_output=True, text=True)
        if r.returncode != 0:
            print(f"FAIL zoo init alexnet: {r.stderr.strip()}")
            return 1
        models.append(("alexnet_full", full, [(17, False), (17, True)]))
    # Other precisions (the reference widens them to f32).
    small = torch.load(ROOT / "torch" / "alexnet_small.pth", weights_only=True)
    models.append(("alexnet_small_f16", ROOT / "torch" / "fp16_model.pth", [(13, False), (17, False), (21, False), (17, True)]))
    for name, dtype in [("alexnet_small_bf16", torch.bfloat16), ("alexnet_small_f64", torch.float64)]:
        torch.save({k: v.to(dtype) for k, v in small.items()}, out / f"{name}.pth")
        models.append((name, out / f"{name}.pth", [(13, False), (21, False)]))
    if not args.no_full:
        torch.save({k: v.half() for k, v in torch.load(full, weights_only=True).items()}, out / "alexnet_full_f16.pth")
        models.append(("alexnet_full_f16", out / "alexnet_full_f16.pth", [(17, False), (17, True)]))

    rows, failed = [], False
    rng = np.random.RandomState(0)
    for name, pth, variants in models:
        sd = torch.load(pth, weights_only=True)
        widened = {k: v.float() for k, v in sd.items()}
        reference = paper_alexnet(widened) if is_paper(widened) else torchvision_alexnet(widened)
        inputs = {}
        for opset, external in variants:
            tag = f"{name}_op{opset}" + ("_ext" if external else "")
            onnx_path = out / f"{tag}.onnx"
            cmd = [zoo, "convert", str(pth), str(onnx_path), "--opset", str(opset)] + (["--external-data"] if external else [])
            start = time.perf_counter()
            r = subprocess.run(cmd, capture_output=True, text=True)
            seconds = time.perf_counter() - start
            row = {"file": tag, "opset": opset, "ext": "yes" if external else "no", "convert_s": seconds,
                   "bytes": 0, "checker": "-", "structure": "-", "max_diff": float("nan"), "rel": float("nan"),
                   "top1": "-", "worst_layer": "-", "ok": False}
            rows.append(row)
            if r.returncode != 0:
                print(f"FAIL {tag}: convert exited {r.returncode}: {r.stderr.strip()}")
                failed = True
                continue
            row["bytes"] = onnx_path.stat().st_size + (
                (out / (onnx_path.name + ".data")).stat().st_size if external else 0)
            try:
                onnx.checker.check_model(str(onnx_path), full_check=True)
                row["checker"] = "ok"
            except Exception as e:  # noqa: BLE001 - report any checker failure
                row["checker"] = "FAIL"
                print(f"FAIL {tag}: onnx.checker: {e}")
            problems = check_structure(onnx_path, opset, external, sd)
            row["structure"] = "ok" if not problems else "FAIL"
            for p in problems:
                print(f"FAIL {tag}: {p}")
            shape = tuple(input_shape(onnx_path))
            if shape not in inputs:
                x = rng.uniform(-1, 1, size=(2,) + shape).astype(np.float32)
                with torch.no_grad():
                    inputs[shape] = (x, reference(torch.from_numpy(x)).numpy())
            x, want = inputs[shape]
            try:
                got = run_onnxruntime(onnx_path, x)
            except Exception as e:  # noqa: BLE001
                print(f"FAIL {tag}: onnxruntime: {e}")
                failed = True
                continue
            worst_layer = "-"
            if not external:
                layers = run_onnxruntime_every_node(onnx_path, x)
                acts = torch_every_module(reference, x)
                worst = 0.0
                for node, value in layers.items():
                    if node not in acts:
                        print(f"FAIL {tag}: node {node} has no torch module of that name")
                        failed = True
                        continue
                    ref = acts[node]
                    d = float(np.max(np.abs(value.astype(np.float64) - ref))) if value.shape == ref.shape else float("inf")
                    m = float(np.max(np.abs(ref)))
                    if not d <= ATOL + RTOL * m:
                        print(f"FAIL {tag}: layer {node}: max|Δ| {d:.3g} (max|ref| {m:.3g})")
                        failed = True
                    if m and d / m >= worst:
                        worst, worst_layer = d / m, f"{node} {d / m:.2g}"
            row["worst_layer"] = worst_layer
            diff = float(np.max(np.abs(got.astype(np.float64) - want)))
            ref = float(np.max(np.abs(want)))
            row["max_diff"], row["rel"] = diff, diff / ref if ref else float("nan")
            top1 = bool((got.argmax(1) == want.argmax(1)).all())
            row["top1"] = "same" if top1 else "DIFF"
            numeric = got.shape == want.shape and diff <= ATOL + RTOL * ref and top1
            row["ok"] = row["checker"] == "ok" and row["structure"] == "ok" and numeric
            failed |= not row["ok"]
            print(f"{'ok  ' if row['ok'] else 'FAIL'} {tag}: {row['bytes']} bytes, convert {seconds:.2f} s, "
                  f"max|Δ| {diff:.3g} (max|ref| {ref:.3g})")

    print()
    header = f"{'file':28} {'opset':>5} {'ext':>4} {'bytes':>11} {'convert s':>9} {'checker':>7} {'struct':>6} " \
             f"{'max|Δ| ort-torch':>16} {'Δ/max|ref|':>10} {'top-1':>5} {'worst layer Δ/max|ref|':>24}  result"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['file']:28} {r['opset']:>5} {r['ext']:>4} {r['bytes']:>11} {r['convert_s']:>9.2f} {r['checker']:>7} "
              f"{r['structure']:>6} {r['max_diff']:>16.3g} {r['rel']:>10.3g} {r['top1']:>5} {r['worst_layer']:>24}  "
              f"{'ok' if r['ok'] else 'FAIL'}")
    print(f"\ntolerance: max|Δ| ≤ {ATOL} + {RTOL}·max|ref| and the same top-1 per row; batch 2, random input")
    if args.keep:
        print(f"files kept in {out}")
    else:
        for p in out.iterdir():
            p.unlink()
        out.rmdir()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Checks `zoo convert` of every family's state dict to ONNX against onnx, onnxruntime and torch, and
compares zoo's .pth → .onnx conversion with torch.onnx.export in time and peak memory:

    $(../shared/oracle/setup) Fixtures/check_architecture_onnx.py .build/release/zoo [--opsets 13 21] [--only V ...]
        [--compare resnet50 efficientnet_b0 vit_b_16]

Checks. For each case of Fixtures/architectures/manifest.json (made by make_architecture_parity.py): `zoo
init VARIANT -o X.pth` (the weights torch's reference logits were computed with), `zoo convert X.pth
Y.onnx --opset N` for each opset, then onnx.checker.check_model(Y, full_check=True), the graph's input
batch dimension must be symbolic, and onnxruntime on Y against torchvision's model holding the same weights
(the case's constructor arguments), both on zoo's generator input (make_parity_fixtures.generate_input,
batch 2) at the size the ONNX graph declares: max |Δ| / max |torch| and whether every row's top-5 is
identical. One line per file, then a summary; exits 1 if any
file fails the checker, differs by more than 1e-4 × max |torch| or changes a top-5.

Comparison (--compare): for each named variant, the wall time and peak resident memory of `zoo convert
X.pth Y.onnx` (verification included, as a user runs it) and of a fresh Python process that imports torch
and torchvision, builds the model, loads X.pth and runs torch.onnx.export (TorchScript exporter, opset 17,
dynamic batch) — each measured by GNU time (/usr/bin/time -f "%e %M"), best of --repeat runs.
Pins torch==2.9.1, torchvision==0.24.1, onnx==1.23.2, onnxruntime==1.32.0.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import oracle_env  # noqa: E402

oracle_env.deterministic()

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402

import make_parity_fixtures as parity  # noqa: E402
from make_architecture_parity import versioned  # noqa: E402

oracle_env.require(torch="2.9.1", torchvision="0.24.1", onnx="1.23.2", onnxruntime="1.32.0")

HERE = os.path.dirname(os.path.abspath(__file__))
ARCH = os.path.join(HERE, "architectures")

TORCH_EXPORT = """
import sys, torch, torchvision
torch.set_num_threads(2)
name, pth, out = sys.argv[1:4]
m = torchvision.models.get_model(name, weights=None).eval()
sd = torch.load(pth, weights_only=True)
if name.startswith("mnasnet"):
    sd._metadata = {"": {"version": 2}}
m.load_state_dict(sd, strict=True)
x = torch.zeros(1, 3, 224, 224)
torch.onnx.export(m, x, out, dynamo=False, opset_version=17, input_names=["input"], output_names=["output"],
                  dynamic_axes={"input": {0: "N"}, "output": {0: "N"}})
"""


def top5(a):
    return [list(np.argsort(-row, kind="stable")[:5]) for row in a]


def measured(argv):
    """(seconds, peak RSS in MiB) of one child process, as GNU time reports them (/usr/bin/time -f: a
    small parent, so the peak is the child's own and not this Python process's, which a forked child
    inherits as its starting high-water mark)."""
    with tempfile.NamedTemporaryFile("r") as report:
        process = subprocess.run(["/usr/bin/time", "-f", "%e %M", "-o", report.name] + argv,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if process.returncode != 0:
            raise RuntimeError(f"{argv[:3]} failed: {process.stderr.decode()[-500:]}")
        seconds, kilobytes = report.read().split()[-2:]
    return float(seconds), int(kilobytes) / 1024


def check(zoo, case, opsets, tmp):
    variant = case["variant"]
    pth = os.path.join(tmp, variant + ".pth")
    subprocess.run([zoo, "init", variant, "-o", pth, "--seed", str(case["seed"]), "--quiet"], check=True)
    flags = [] if case["options"].get("transform_input", True) else ["--no-transform-input"]
    torch_model = torchvision.models.get_model(variant, weights=None, **case["kwargs"]).eval()
    torch_model.load_state_dict(versioned(variant, torch.load(pth, weights_only=True)), strict=True)
    ok = True
    for opset in opsets:
        out = os.path.join(tmp, f"{variant}.{opset}.onnx")
        subprocess.run([zoo, "convert", pth, out, "--opset", str(opset), "--quiet"] + flags, check=True)
        model = onnx.load(out)
        onnx.checker.check_model(model, full_check=True)
        dims = model.graph.input[0].type.tensor_type.shape.dim
        symbolic = dims[0].HasField("dim_param")
        x = parity.generate_input(case["seed"], 2, dims[2].dim_value, dims[3].dim_value)
        with torch.no_grad():
            ref = torch_model(torch.from_numpy(x)).numpy()
        session = ort.InferenceSession(out, providers=["CPUExecutionProvider"])
        y = session.run(None, {session.get_inputs()[0].name: x})[0]
        rel = float(np.abs(y - ref).max() / np.abs(ref).max())
        same = top5(y) == top5(ref)
        good = rel <= 1e-4 and same and symbolic
        ok &= good
        print(f"{variant:20s} opset {opset}  checker ok  input [{'N' if symbolic else dims[0].dim_value}, 3, "
              f"{dims[2].dim_value}, {dims[3].dim_value}]  ort vs torch {rel:.1e}  top-5 {'same' if same else 'DIFFERENT'}  "
              f"{'ok' if good else 'FAIL'}  {os.path.getsize(out) / 2**20:.1f} MiB")
        os.remove(out)
    os.remove(pth)
    return ok


def compare(zoo, variants, repeat, tmp):
    print("\n| model | zoo convert .pth → .onnx | torch.onnx.export | zoo peak RSS | torch peak RSS |")
    print("|---|---|---|---|---|")
    for variant in variants:
        pth = os.path.join(tmp, variant + ".pth")
        subprocess.run([zoo, "init", variant, "-o", pth, "--quiet"], check=True)
        out = os.path.join(tmp, variant + ".onnx")
        zoo_runs, torch_runs = [], []
        for _ in range(repeat):
            for runs, argv in ((zoo_runs, [zoo, "convert", pth, out, "--quiet"]),
                               (torch_runs, [sys.executable, "-c", TORCH_EXPORT, variant, pth, out])):
                if os.path.exists(out):
                    os.remove(out)
                runs.append(measured(argv))
        (zt, zm), (tt, tm) = min(zoo_runs), min(torch_runs)
        print(f"| {variant} | {zt:.2f} s | {tt:.2f} s | {zm:.0f} MiB | {tm:.0f} MiB |")
        os.remove(pth)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("zoo")
    ap.add_argument("--opsets", nargs="*", type=int, default=[13, 21])
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--compare", nargs="*", default=[])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    zoo = os.path.abspath(args.zoo)
    cases = json.load(open(os.path.join(ARCH, "manifest.json")))["cases"]
    failed = []
    with tempfile.TemporaryDirectory() as tmp:
        for case in cases:
            if args.only is not None and case["variant"] not in args.only:
                continue
            if not check(zoo, case, args.opsets, tmp):
                failed.append(case["variant"])
        if args.compare:
            compare(zoo, args.compare, args.repeat, tmp)
    print(f"\n{len(failed)} of the checked variants failed" + (f": {', '.join(failed)}" if failed else ""))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

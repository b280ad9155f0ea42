#!/usr/bin/env python3
"""Checks zoo's ONNX re-export of every family export (Fixtures/families/, made by
make_family_exports.py) against onnx and onnxruntime:

    $(../shared/oracle/setup) Fixtures/check_family_reexports.py .build/release/zoo [--opsets 13 21]

For each export and opset: `zoo convert X.onnx Y.onnx --opset N` into a temporary folder, then
onnx.checker.check_model(Y, full_check=True), and onnxruntime on Y with the family's input against
torch's output (Fixtures/families/<family>.output.npy): max |Δ| / max |torch| and whether the
ordered top-5 of every row is identical. Prints one line per file and a summary; exits 1 if any
file fails the checker, differs by more than 1e-4 × max |torch| or changes a top-5.
Pins onnx==1.23.2, onnxruntime==1.32.0 (oracle_env.require).
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

oracle_env.require(onnx="1.23.2", onnxruntime="1.32.0")

HERE = os.path.dirname(os.path.abspath(__file__))
FAMILIES = os.path.join(HERE, "families")


def top5(a):
    return [list(np.argsort(-row, kind="stable")[:5]) for row in a]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("zoo")
    parser.add_argument("--opsets", type=int, nargs="+", default=[13, 21])
    args = parser.parse_args()
    with open(os.path.join(FAMILIES, "manifest.json")) as f:
        manifest = json.load(f)
    exports = manifest if isinstance(manifest, list) else manifest["exports"]
    failures, worst = 0, 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for e in exports:
            x = np.load(os.path.join(FAMILIES, e["input"]))
            ref = np.load(os.path.join(FAMILIES, e["output"]))
            for opset in args.opsets:
                out = os.path.join(tmp, f"{e['family']}.{e['exporter']}.{opset}.onnx")
                run = subprocess.run([args.zoo, "convert", os.path.join(FAMILIES, e["file"]), out, "--opset", str(opset), "-q"],
                                     capture_output=True, text=True)
                label = f"{e['family']} ({e['exporter']}) opset {opset}"
                if run.returncode != 0:
                    print(f"{label}: zoo convert failed: {run.stderr.strip()}")
                    failures += 1
                    continue
                try:
                    onnx.checker.check_model(out, full_check=True)
                except Exception as error:  # noqa: BLE001
                    print(f"{label}: onnx.checker: {str(error).splitlines()[0]}")
                    failures += 1
                    continue
                session = ort.InferenceSession(out, providers=["CPUExecutionProvider"])
                y = session.run(None, {session.get_inputs()[0].name: x})[0]
                rel = float(np.abs(y - ref).max() / np.abs(ref).max())
                same = top5(y) == top5(ref)
                worst = max(worst, rel)
                ok = rel <= 1e-4 and same
                failures += 0 if ok else 1
                print(f"{label}: checker OK, onnxruntime vs torch {rel:.1e} of max|ref|, top-5 {'identical' if same else 'DIFFERENT'}"
                      + ("" if ok else "  FAIL"))
    print(f"{len(exports) * len(args.opsets)} re-exports, {failures} failing, worst {worst:.1e} of max|ref|")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""ONNX conversion benchmark: `zoo convert` full-size AlexNet .pth → .onnx next to torch.onnx.export of
the same model and `cp` of the file, in one run; then loading the .onnx into a runnable model next to
onnxruntime's session creation. Peak memory is each process's VmHWM.

Run from the repository root with the oracle venv, after `swift build -c release --product zoo`:
    $(../shared/oracle/setup) Benchmarks/onnx_convert.py [--runs 5]
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

from machine import describe

TORCH_EXPORT = r"""
import sys, time, torch, torchvision
model = torchvision.models.alexnet(weights=None).eval()
model.load_state_dict(torch.load(sys.argv[1], weights_only=True))
t = time.perf_counter()
torch.onnx.export(model, torch.zeros(1, 3, 224, 224), sys.argv[2], opset_version=17, dynamo=False,
                  input_names=["input"], output_names=["logits"], dynamic_axes={"input": {0: "N"}})
print(time.perf_counter() - t)
print(next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:")))
"""

ORT_SESSION = r"""
import sys, time, onnxruntime as ort
options = ort.SessionOptions(); options.intra_op_num_threads = 2
t = time.perf_counter()
ort.InferenceSession(sys.argv[1], options, providers=["CPUExecutionProvider"])
print(time.perf_counter() - t)
"""


def wall(command):
    """Wall seconds and peak RSS in bytes of `command`, run as a direct child (wait4's ru_maxrss; the
    parent is a small Python process, so the inherited part of that figure is ~20 MiB)."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    process.stdout.close()
    process.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{command} failed")
    return elapsed, usage.ru_maxrss * 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--zoo", default=".build/release/zoo")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "zoo-onnx-bench"))
    args = parser.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    pth = os.path.join(args.workdir, "alexnet.pth")
    subprocess.run([args.zoo, "init", "alexnet", "-o", pth, "--seed", "0"], check=True, capture_output=True)
    size = os.path.getsize(pth)
    with open(pth, "rb") as f:  # warm the page cache for everyone
        while f.read(1 << 24):
            pass

    zoo_onnx, torch_onnx, copy = (os.path.join(args.workdir, n) for n in ("zoo.onnx", "torch.onnx", "copy.pth"))
    # zoo's own process is spawned directly (exec from a small parent), so wait4's maxrss is its own.
    zoo = [wall([args.zoo, "convert", pth, zoo_onnx, "--no-verify"]) for _ in range(args.runs)]
    zoo_verified = wall([args.zoo, "convert", pth, zoo_onnx])
    cp = [wall(["cp", pth, copy]) for _ in range(args.runs)]
    torch_runs = []
    for _ in range(max(1, args.runs // 2)):
        out = subprocess.run([sys.executable, "-c", TORCH_EXPORT, pth, torch_onnx], check=True, capture_output=True,
                             text=True).stdout.split()
        torch_runs.append((float(out[0]), int(out[1])))
    ort = [float(subprocess.run([sys.executable, "-c", ORT_SESSION, zoo_onnx], check=True, capture_output=True,
                                text=True).stdout) for _ in range(args.runs)]
    load = []
    for _ in range(args.runs):
        out = subprocess.run([args.zoo, "bench", zoo_onnx, "--batch", "1", "--runs", "1"], check=True,
                             capture_output=True, text=True).stdout
        load.append(float(re.search(r"load ([\d.]+) ms", out).group(1)) / 1e3)

    def row(name, times, peak=None):
        print(f"| {name:44} | {statistics.median(times):8.3f} s | {min(times):8.3f} s | "
              f"{(f'{peak / 2**20:.0f} MiB ({peak / size:.2f}× model)') if peak else '':>22} |")

    print(f"ONNX conversion, torchvision AlexNet ({size / 1e6:.1f} MB), warm page cache, {args.runs} runs — {describe()}")
    print()
    print(f"| {'operation':44} | {'median':>10} | {'min':>10} | {'peak RSS':>22} |")
    print(f"|{'-' * 46}|{'-' * 12}|{'-' * 12}|{'-' * 24}|")
    row("zoo convert .pth → .onnx (--no-verify)", [t for t, _ in zoo], max(p for _, p in zoo))
    row("zoo convert .pth → .onnx (with verification)", [zoo_verified[0]], zoo_verified[1])
    row("torch.onnx.export (TorchScript, opset 17)", [t for t, _ in torch_runs], max(p for _, p in torch_runs))
    row("cp of the .pth", [t for t, _ in cp], max(p for _, p in cp))
    row("zoo: load .onnx into a runnable model", load)
    row("onnxruntime InferenceSession creation", ort)
    print()
    print("zoo's peak RSS counts the mapped input's page-cache pages; torch's export time excludes its import and load.")


if __name__ == "__main__":
    main()

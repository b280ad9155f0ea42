#!/usr/bin/env python3
"""Checkpoint I/O benchmark: zoo next to PyTorch, in one run, on a full-size torchvision AlexNet.

Makes a 244 MB torchvision AlexNet state dict (random init, torch.save), then times, each in its own
process so peak memory is per tool:
  - torch.load(weights_only=True) and torch.save  (PyTorch, the oracle venv)
  - zoo bench-io: open with every tensor ready to read (no CRC / with CRC-32), and save
Prints median and minimum seconds over --runs and each process's peak resident memory.

Run from the repository root with the oracle venv (../shared/oracle/setup prints its python):
    $(../shared/oracle/setup) Benchmarks/checkpoint_io.py [--runs 10] [--zoo .build/release/zoo]
Build zoo first: swift build -c release --product zoo
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

from machine import describe

TORCH_TIMER = r"""
import json, sys, time, torch
path, out, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
torch.set_num_threads(2)
loads, saves = [], []
for _ in range(runs):
    t = time.perf_counter(); sd = torch.load(path, weights_only=True); loads.append(time.perf_counter() - t)
for _ in range(runs):
    t = time.perf_counter(); torch.save(sd, out); saves.append(time.perf_counter() - t)
peak = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"load": loads, "save": saves, "tensors": len(sd), "peak_rss_bytes": peak}))
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--zoo", default=".build/release/zoo")
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "zoo-bench"))
    args = parser.parse_args()

    import torch
    import torchvision

    os.makedirs(args.workdir, exist_ok=True)
    path = os.path.join(args.workdir, "alexnet-owt.pth")
    if not os.path.exists(path):
        torch.manual_seed(0)
        torch.save(torchvision.models.alexnet(weights=None).state_dict(), path)
    size = os.path.getsize(path)

    torch_out = os.path.join(args.workdir, "torch-out", "alexnet-owt.pth")
    zoo_out = os.path.join(args.workdir, "zoo-out", "alexnet-owt.pth")
    os.makedirs(os.path.dirname(torch_out), exist_ok=True)
    os.makedirs(os.path.dirname(zoo_out), exist_ok=True)

    # Warm the page cache for both readers alike.
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass

    torch_result = json.loads(subprocess.run([sys.executable, "-c", TORCH_TIMER, path, torch_out, str(args.runs)],
                                             check=True, capture_output=True, text=True).stdout)
    zoo_result = json.loads(subprocess.run([args.zoo, "bench-io", path, "--write", zoo_out, "--runs", str(args.runs),
                                            "--json"], check=True, capture_output=True, text=True).stdout)

    # The file zoo wrote must be the file torch wrote.
    identical = open(torch_out, "rb").read() == open(zoo_out, "rb").read()

    def row(name, times_or_stats, peak):
        if isinstance(times_or_stats, list):
            median, best = statistics.median(times_or_stats), min(times_or_stats)
        else:
            median, best = times_or_stats["median_s"], times_or_stats["min_s"]
        return name, median, best, peak

    load_median = statistics.median(torch_result["load"])
    save_median = statistics.median(torch_result["save"])
    rows = [
        row("torch.load(weights_only=True)", torch_result["load"], None),
        row("zoo open (mmap, no CRC check)", zoo_result["open"], zoo_result["open"]["peak_rss_bytes"]),
        row("zoo open (mmap, CRC-32 checked)", zoo_result["open_crc"], zoo_result["open_crc"]["peak_rss_bytes"]),
        row("torch.save", torch_result["save"], torch_result["peak_rss_bytes"]),
        row("zoo save", zoo_result["save"], zoo_result["save"]["peak_rss_bytes"]),
    ]
    print(f"Checkpoint I/O: torchvision AlexNet state dict, {size / 1e6:.1f} MB, {torch_result['tensors']} tensors; "
          f"{args.runs} runs each, warm page cache")
    print(f"machine: {describe()}; torch {torch.__version__}")
    print()
    print(f"| {'operation':34} | {'median':>9} | {'min':>9} | {'vs torch':>9} | {'peak RSS':>9} |")
    print(f"|{'-' * 36}|{'-' * 11}|{'-' * 11}|{'-' * 11}|{'-' * 11}|")
    for name, median, best, peak in rows:
        reference = load_median if "open" in name or "load" in name else save_median
        speed = f"{reference / median:.1f}x" if "zoo" in name else "1.0x"
        peak_text = f"{peak / 2**20:.0f} MiB" if peak else ""
        print(f"| {name:34} | {median * 1e3:7.2f}ms | {best * 1e3:7.2f}ms | {speed:>9} | {peak_text:>9} |")
    print()
    print("peak RSS: torch's figure is its process after loading and saving; zoo's are read after each phase"
          " (open, then CRC, then save) in one process, and count the mapped file's page-cache pages once touched.")
    print(f"zoo's saved file byte-identical to torch.save's: {'yes' if identical else 'NO'}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Peer benchmark: torchvision AlexNet on zoo, onnxruntime, PyTorch (and OpenVINO / tract when
installed), same weights, same input, one run, same thread count.

Weights: `zoo init alexnet --seed 0` (the deterministic generator), loaded into torchvision's AlexNet
with torch.load(weights_only=True) and exported to ONNX (opset 17) for the other engines. Input: a
fixed random batch. For each engine and batch size: median and min ms per batch over --runs after
warm-up, ms per image, images/s, the ratio to onnxruntime (ms/image), and max |Δ| of its logits
against PyTorch's. The timed runs are split into --rounds rounds that visit the engines in turn,
so a slow spell of a shared machine falls on all of them rather than on one, and each engine
starts after a second's pause so the previous one's spinning worker threads are idle.

Run from the repository root with the oracle venv, after `swift build -c release --product zoo`:
    $(../shared/oracle/setup) Benchmarks/peers.py [--threads 2] [--runs 30] [--rounds 5] [--batches 1 16]
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile

from machine import describe
import time

import numpy as np


def timed(fn, runs, warmup=3):
    """Seconds of each of `runs` calls after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--zoo", default=".build/release/zoo")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "zoo-peers"))
    args = parser.parse_args()
    os.makedirs(args.workdir, exist_ok=True)

    import torch
    import torchvision
    import onnxruntime as ort
    torch.set_num_threads(args.threads)

    weights = os.path.join(args.workdir, "alexnet-zoo-seed0.pth")
    subprocess.run([args.zoo, "init", "alexnet", "-o", weights, "--seed", "0"], check=True, capture_output=True)
    model = torchvision.models.alexnet(weights=None).eval()
    model.load_state_dict(torch.load(weights, weights_only=True))
    onnx_path = os.path.join(args.workdir, "alexnet.onnx")
    if not os.path.exists(onnx_path):
        torch.onnx.export(model, torch.zeros(1, 3, 224, 224), onnx_path, opset_version=17, dynamo=False,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}})

    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])

    engines = {}
    try:
        import openvino as ov
        core = ov.Core()
        # f32 like the others (on CPUs with bf16 support it would otherwise pick bf16).
        compiled = core.compile_model(onnx_path, "CPU", {"INFERENCE_NUM_THREADS": args.threads,
                                                          "INFERENCE_PRECISION_HINT": "f32"})
        engines["OpenVINO"] = lambda x: compiled(x)[0]
    except Exception as error:  # optional peer
        print(f"(OpenVINO not run: {error})", file=sys.stderr)
    tract_models = {}
    try:
        import tract

        def tract_run(x):
            batch = x.shape[0]
            if batch not in tract_models:  # tract is single-threaded and wants concrete shapes
                inference = tract.onnx().load(onnx_path)
                inference.set_input_fact(0, f"{batch},3,224,224,f32")
                tract_models[batch] = inference.into_model().into_runnable()
            return tract_models[batch].run([x])[0].to_numpy()
        engines["tract (1 thr)"] = tract_run
    except Exception as error:  # optional peer
        print(f"(tract not run: {error})", file=sys.stderr)

    rows = []
    for batch in args.batches:
        rng = np.random.default_rng(batch)
        x = rng.standard_normal((batch, 3, 224, 224)).astype(np.float32)
        input_path = os.path.join(args.workdir, f"input{batch}.npy")
        output_path = os.path.join(args.workdir, f"zoo{batch}.npy")
        np.save(input_path, x)
        with torch.no_grad():
            reference = model(torch.from_numpy(x)).numpy()
        subprocess.run([args.zoo, "run", weights, "--input", input_path, "--output", output_path,
                        "--threads", str(args.threads)], check=True, capture_output=True)
        outputs = {"PyTorch": reference, "onnxruntime": session.run(None, {"input": x})[0],
                   "zoo": np.load(output_path)}
        for name, run in engines.items():
            outputs[name] = np.asarray(run(x))

        def zoo_times(runs):
            # zoo times itself in-process (after its own warm-up) and prints every run with --all-times.
            bench = subprocess.run([args.zoo, "bench", weights, "--batch", str(batch), "--runs", str(runs),
                                    "--threads", str(args.threads), "--all-times"],
                                   check=True, capture_output=True, text=True).stdout
            return [float(t) / 1e3 for t in re.search(r"times ms: ([\d. ]+)", bench).group(1).split()]

        def torch_run():
            with torch.no_grad():
                model(torch.from_numpy(x))
        timers = {"onnxruntime": lambda n: timed(lambda: session.run(None, {"input": x}), n),
                  "zoo": zoo_times,
                  "PyTorch": lambda n: timed(torch_run, n)}
        for name, run in engines.items():
            timers[name] = lambda n, run=run: timed(lambda: run(x), n)
        samples = {name: [] for name in timers}
        for round_index in range(args.rounds):
            # Spread --runs over the rounds exactly (earlier rounds take the remainder).
            per_round = args.runs // args.rounds + (1 if round_index < args.runs % args.rounds else 0)
            if per_round == 0:
                continue
            for name, timer in timers.items():
                # Let the previous engine's worker threads stop spinning (ORT, OpenMP and TBB spin
                # after a call) so they don't take cores from the next one — zoo runs in a
                # separate process while this one's threads may still spin.
                time.sleep(1.0)
                samples[name] += timer(per_round)
        results = {name: ((statistics.median(samples[name]), min(samples[name])), outputs[name])
                   for name in ["PyTorch", "onnxruntime"] + list(engines) + ["zoo"]}
        ort_per_image = results["onnxruntime"][0][0] / batch
        for name, ((median_s, best_s), out) in results.items():
            rows.append((batch, name, median_s * 1e3, best_s * 1e3, median_s * 1e3 / batch, batch / median_s,
                         (median_s / batch) / ort_per_image, float(np.abs(out - reference).max())))

    kernels = re.search(r"(\w+) kernels", subprocess.run(
        [args.zoo, "bench", weights, "--runs", "1"], check=True, capture_output=True, text=True).stdout).group(1)
    print(f"AlexNet (torchvision, fp32) — {describe()}, {args.threads} threads, "
          f"{args.runs} runs in {args.rounds} interleaved rounds; torch {torch.__version__}, "
          f"onnxruntime {ort.__version__}, zoo {kernels} kernels")
    print()
    print("| batch | engine        | median ms | min ms | ms/image | images/s | vs onnxruntime | max abs diff vs PyTorch |")
    print("|------:|---------------|----------:|-------:|---------:|---------:|---------------:|------------------------:|")
    for batch, name, median, best, per_image, ips, ratio, diff in rows:
        print(f"| {batch:5} | {name:13} | {median:9.2f} | {best:6.2f} | {per_image:8.2f} | {ips:8.1f} | "
              f"{ratio:13.2f}x | {diff:23.2e} |")
    print()
    # Peak memory of a whole zoo process (load, plan, runs). Measured by GNU time, whose child is
    # forked from a small process: a child forked from this Python process would count its pages.
    size = os.path.getsize(weights)
    for batch in args.batches:
        if not os.path.exists("/usr/bin/time"):
            print("(peak memory not measured: /usr/bin/time missing)")
            break
        timed_run = subprocess.run(["/usr/bin/time", "-f", "%M", args.zoo, "bench", weights, "--batch", str(batch),
                                    "--runs", "5", "--threads", str(args.threads)],
                                   check=True, capture_output=True, text=True)
        peak = int(timed_run.stderr.strip().splitlines()[-1]) * 1024
        print(f"zoo peak memory, batch {batch}: {peak / 1e6:.1f} MB = {peak / size:.2f}x the weights' "
              f"{size / 1e6:.1f} MB (max RSS of `zoo bench`: load, plan, runs)")


if __name__ == "__main__":
    main()

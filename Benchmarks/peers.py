#!/usr/bin/env python3
"""Peer benchmark: torchvision models on zoo, onnxruntime, PyTorch, OpenVINO and tract, same weights,
same input, one run, same thread count.

For each model of --models (default: alexnet): weights from `zoo init MODEL --seed 0` (the
deterministic generator), loaded into torchvision's model (get_model(MODEL, weights=None),
load_state_dict(strict=True); GoogLeNet / Inception v3 with zoo's default transform_input) and
exported once to ONNX (opset 17, dynamic batch; cached in --workdir) for onnxruntime, OpenVINO and
tract. Input: a fixed random batch at the model's input size (`zoo models --json`). For each engine
and batch size: median and min ms per batch over --runs after warm-up, ms per image, images/s, the
ratio to onnxruntime (ms/image), and max |Δ| of its logits against PyTorch's. The timed runs are
split into --rounds rounds that visit the engines in turn, so a slow spell of a shared machine falls
on all of them rather than on one, and each engine starts after a second's pause so the previous
one's spinning worker threads are idle. A peer that fails to load or run is left out with a line
"(X not run: reason)"; the run goes on.

Below each table: zoo's peak memory (max RSS of `zoo bench`, GNU time) against the issue's bound,
1.3x the weights (the .pth file) plus the two largest activations (node outputs of zoo's graph,
`zoo inspect --graph --json`, at the batch size).

Run from the repository root with the oracle venv, after `swift build -c release --product zoo`:
    $(../shared/oracle/setup) Benchmarks/peers.py [--models alexnet resnet50 ...] [--threads 2]
        [--runs N] [--rounds 5] [--batches 1 16] [--markdown FILE]
"""
import argparse
import importlib.metadata
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from machine import describe

# Timed runs when --runs is not given: a batch of 16 costs up to seconds on the large models, so it
# gets fewer. Untimed warm-up calls before each round's runs: 3, except 1 in the later rounds of a
# batch above 1 (the engine is warm by then: the call only brings its buffers back into cache).
DEFAULT_RUNS = {1: 30}
DEFAULT_RUNS_LARGE_BATCH = 10


def timed(fn, runs, warmup):
    """Seconds of each of `runs` calls after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def one_line(error):
    """An exception as one short line."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def zoo_json(zoo, *arguments):
    """The parsed --json output of a zoo command."""
    result = subprocess.run([zoo, *arguments, "--json"], check=True, capture_output=True, text=True)
    return json.loads(result.stdout)


def zoo_variants(zoo):
    """zoo's variants by name (`zoo models --json`): input_size, summary, parameters, ..."""
    return {v["name"]: v for family in zoo_json(zoo, "models")["families"] for v in family["variants"]}


def largest_activations(zoo, weights):
    """The two largest node outputs of zoo's graph per image, as (node, shape, float32 bytes), largest
    first. Shapes come from `zoo inspect --graph --json`, whose dimensions are numbers or products
    of the batch 'N' and numbers ('N*3136': a transformer's tokens of every image); N counts 1."""
    graph = zoo_json(zoo, "inspect", weights, "--graph")["graph"]
    values = [(v["name"], v["shape"]) for v in graph["inputs"]] + \
             [(n["name"], n["output"]["shape"]) for n in graph["nodes"]]
    sized = []
    for name, shape in values:
        count = 1
        for dim in shape:
            for factor in str(dim).split("*"):
                count *= 1 if factor.strip() == "N" else int(factor)
        sized.append((name, shape, 4 * count))
    return sorted(sized, key=lambda item: -item[2])[:2]


def torch_kwargs(variant):
    """torchvision constructor arguments that make its model accept zoo's file and compute what zoo
    does: GoogLeNet / Inception v3 take transform_input as zoo's default (its summary says 'on' or
    'off'), and skip their random init (the weights are loaded over it)."""
    summary = variant.get("summary", "")
    kwargs = {}
    for state in ("on", "off"):
        if f"transform_input {state}" in summary:
            kwargs = {"transform_input": state == "on", "init_weights": False}
    return kwargs


def zoo_init(zoo, name, workdir):
    """The path of `zoo init NAME --seed 0`'s weights, written into the workdir."""
    weights = os.path.join(workdir, f"{name}-zoo-seed0.pth")
    subprocess.run([zoo, "init", name, "-o", weights, "--seed", "0"], check=True, capture_output=True, text=True)
    return weights


class Model:
    """One model's weights, torchvision module and ONNX export, made once in the workdir."""

    def __init__(self, name, variant, zoo, workdir):
        import torch
        import torchvision
        self.name = name
        self.size = int(variant["input_size"])
        self.weights = zoo_init(zoo, name, workdir)
        self.module = torchvision.models.get_model(name, weights=None, **torch_kwargs(variant)).eval()
        self.module.load_state_dict(torch.load(self.weights, weights_only=True), strict=True)
        self.onnx = os.path.join(workdir, f"{name}.onnx")
        if not os.path.exists(self.onnx):
            partial = self.onnx + ".partial"
            # nn.MultiheadAttention's inference fast path (no_grad, eval) is one fused op that the
            # TorchScript exporter cannot write; the exported graph is the same attention either way.
            torch.backends.mha.set_fastpath_enabled(False)
            with torch.no_grad():
                torch.onnx.export(self.module, torch.zeros(1, 3, self.size, self.size), partial,
                                  opset_version=17, dynamo=False, input_names=["input"], output_names=["logits"],
                                  dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}})
            os.replace(partial, self.onnx)  # an interrupted export leaves no half file in the cache


def peers(model, threads, notes):
    """The ONNX engines that load `model`, by name: a function from an input batch to its logits.
    Each one that fails to load adds a note instead."""
    engines = {}
    try:
        import onnxruntime as ort
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(model.onnx, options, providers=["CPUExecutionProvider"])
        engines["onnxruntime"] = lambda x: session.run(None, {"input": x})[0]
    except Exception as error:
        notes.append(f"(onnxruntime not run: {one_line(error)})")
    try:
        import openvino as ov
        # f32 like the others (on CPUs with bf16 support it would otherwise pick bf16).
        compiled = ov.Core().compile_model(model.onnx, "CPU", {"INFERENCE_NUM_THREADS": threads,
                                                               "INFERENCE_PRECISION_HINT": "f32"})
        engines["OpenVINO"] = lambda x: compiled(x)[0]
    except Exception as error:
        notes.append(f"(OpenVINO not run: {one_line(error)})")
    try:
        import tract
        runnables = {}

        def tract_run(x):
            batch = x.shape[0]
            if batch not in runnables:  # tract is single-threaded and wants concrete shapes
                inference = tract.onnx().load(model.onnx)
                inference.set_input_fact(0, f"{batch},3,{model.size},{model.size},f32")
                runnables[batch] = inference.into_model().into_runnable()
            return runnables[batch].run([x])[0].to_numpy()
        tract_run(np.zeros((1, 3, model.size, model.size), np.float32))  # "where it loads"
        engines["tract (1 thr)"] = tract_run
    except Exception as error:
        notes.append(f"(tract not run: {one_line(error)})")
    return engines


def bench_model(model, args, kernels_seen, emit):
    """Times every engine on `model` at each batch and emits its table and memory lines."""
    import torch
    notes = []
    engines = {"PyTorch": lambda x: model.module(torch.from_numpy(x)).numpy()}
    engines.update(peers(model, args.threads, notes))
    rows = []
    for batch in args.batches:
        runs = args.runs or DEFAULT_RUNS.get(batch, DEFAULT_RUNS_LARGE_BATCH)
        rng = np.random.default_rng(batch)
        x = rng.standard_normal((batch, 3, model.size, model.size)).astype(np.float32)
        input_path = os.path.join(args.workdir, f"{model.name}-input{batch}.npy")
        output_path = os.path.join(args.workdir, f"{model.name}-zoo{batch}.npy")
        np.save(input_path, x)

        outputs, timers = {}, {}
        for name, run in engines.items():
            try:
                with torch.no_grad():
                    outputs[name] = np.asarray(run(x))
                timers[name] = lambda n, warmup, run=run: timed(lambda: run(x), n, warmup)
            except Exception as error:
                notes.append(f"({name} not run at batch {batch}: {one_line(error)})")
        try:
            subprocess.run([args.zoo, "run", model.weights, "--input", input_path, "--output", output_path,
                            "--threads", str(args.threads)], check=True, capture_output=True, text=True)
            outputs["zoo"] = np.load(output_path)

            def zoo_times(n, _):
                # zoo times itself in-process (after its own 3 warm-up runs) and lists every run.
                bench = zoo_json(args.zoo, "bench", model.weights, "--batch", str(batch), "--runs", str(n),
                                 "--threads", str(args.threads))
                kernels_seen.add(bench["kernels"])
                return [t / 1e3 for t in bench["times_ms"]]
            timers["zoo"] = zoo_times
        except subprocess.CalledProcessError as error:
            notes.append(f"(zoo not run at batch {batch}: {one_line(error.stderr or error)})")

        samples = {name: [] for name in timers}
        for round_index in range(args.rounds):
            # Spread the runs over the rounds exactly (earlier rounds take the remainder).
            per_round = runs // args.rounds + (1 if round_index < runs % args.rounds else 0)
            if per_round == 0:
                continue
            warmup = 3 if batch == 1 or round_index == 0 else 1
            for name in list(samples):
                # Let the previous engine's worker threads stop spinning (ORT, OpenMP and TBB spin
                # after a call) so they don't take cores from the next one — zoo runs in a
                # separate process while this one's threads may still spin.
                time.sleep(1.0)
                try:
                    with torch.no_grad():
                        samples[name] += timers[name](per_round, warmup)
                except Exception as error:
                    notes.append(f"({name} not run at batch {batch}: {one_line(error)})")
                    del samples[name]
        reference = outputs.get("PyTorch")
        ort_per_image = statistics.median(samples["onnxruntime"]) / batch if "onnxruntime" in samples else None
        for name in ["PyTorch", "onnxruntime", "OpenVINO", "tract (1 thr)", "zoo"]:
            if name not in samples:
                continue
            median_s, best_s = statistics.median(samples[name]), min(samples[name])
            ratio = (median_s / batch) / ort_per_image if ort_per_image else None
            diff = float(np.abs(outputs[name] - reference).max()) if reference is not None else None
            rows.append((batch, name, median_s * 1e3, best_s * 1e3, median_s * 1e3 / batch, batch / median_s,
                         ratio, diff, runs))
        if reference is not None:
            notes.append(f"(batch {batch}: PyTorch's max |logit| {float(np.abs(reference).max()):.3g}; "
                         f"{runs} runs in {args.rounds} rounds)")

    emit(f"### {model.name} (torchvision, fp32, input 3×{model.size}×{model.size})")
    emit("")
    emit("| batch | engine        | median ms | min ms | ms/image | images/s | vs onnxruntime | max abs diff vs PyTorch |")
    emit("|------:|---------------|----------:|-------:|---------:|---------:|---------------:|------------------------:|")
    for batch, name, median, best, per_image, ips, ratio, diff, _ in rows:
        ratio_text = f"{ratio:13.2f}x" if ratio is not None else f"{'n/a':>14}"
        diff_text = f"{diff:23.2e}" if diff is not None else f"{'n/a':>23}"
        emit(f"| {batch:5} | {name:13} | {median:9.2f} | {best:6.2f} | {per_image:8.2f} | {ips:8.1f} | "
             f"{ratio_text} | {diff_text} |")
    emit("")
    for note in dict.fromkeys(notes):  # each note once, in order
        emit(note)
    emit_memory(model, args, emit)
    emit("")


def emit_memory(model, args, emit):
    """zoo's peak memory per batch against 1.3x the weights plus the two largest activations."""
    if not os.path.exists("/usr/bin/time"):
        emit("(peak memory not measured: /usr/bin/time missing)")
        return
    try:
        activations = largest_activations(args.zoo, model.weights)
    except (subprocess.CalledProcessError, KeyError, ValueError) as error:
        emit(f"(activations not read: {one_line(error)})")
        activations = []
    size = os.path.getsize(model.weights)
    bare = subprocess.run(["/usr/bin/time", "-f", "%M", args.zoo, "--version"], capture_output=True, text=True)
    bare_peak = int(bare.stderr.strip().splitlines()[-1]) * 1024 if bare.returncode == 0 else None
    for batch in args.batches:
        # Peak memory of a whole zoo process (load, plan, runs). Measured by GNU time, whose child is
        # forked from a small process: a child forked from this Python process would count its pages.
        try:
            timed_run = subprocess.run(["/usr/bin/time", "-f", "%M", args.zoo, "bench", model.weights,
                                        "--batch", str(batch), "--runs", "5", "--threads", str(args.threads)],
                                       check=True, capture_output=True, text=True)
        except subprocess.CalledProcessError as error:
            emit(f"(zoo peak memory not measured at batch {batch}: {one_line(error.stderr or error)})")
            continue
        peak = int(timed_run.stderr.strip().splitlines()[-1]) * 1024
        line = (f"zoo peak memory, batch {batch}: {peak / 1e6:.1f} MB = {peak / size:.2f}x the weights' "
                f"{size / 1e6:.1f} MB (max RSS of `zoo bench`: load, plan, runs)")
        if activations:
            bound = 1.3 * size + batch * sum(a[2] for a in activations)
            parts = ", ".join(f"{name} {'×'.join(str(batch) if d == 'N' else str(d) for d in shape)} "
                              f"{batch * count / 1e6:.1f} MB" for name, shape, count in activations)
            verdict = "within" if peak <= bound else f"over by {(peak - bound) / 1e6:.1f} MB"
            line += (f"; bound 1.3x weights + two largest activations ({parts}; from zoo inspect --graph) "
                     f"= {bound / 1e6:.1f} MB: {verdict} ({peak / bound:.2f}x)")
        if bare_peak:
            line += f"; a bare zoo process (`zoo --version`) takes {bare_peak / 1e6:.1f} MB of it"
        emit(line)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--zoo", default=".build/release/zoo")
    parser.add_argument("--models", nargs="+", default=["alexnet"],
                        help="zoo / torchvision variant names (see zoo models)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=None,
                        help=f"timed runs per engine and batch (default: {DEFAULT_RUNS[1]} at batch 1, "
                             f"{DEFAULT_RUNS_LARGE_BATCH} at larger batches)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "zoo-peers"))
    parser.add_argument("--markdown", metavar="FILE", help="also write the tables to FILE")
    args = parser.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    args.zoo = os.path.abspath(args.zoo)

    import torch
    torch.set_num_threads(args.threads)
    variants = zoo_variants(args.zoo)
    unknown = [name for name in args.models if name not in variants]
    if unknown:
        sys.exit(f"peers.py: not a zoo model: {', '.join(unknown)} (see zoo models)")

    lines = []

    def emit(line):
        print(line, flush=True)
        lines.append(line)

    versions = []
    for package, label in (("torch", "torch"), ("onnxruntime", "onnxruntime"), ("openvino", "OpenVINO"),
                           ("tract", "tract")):
        try:
            versions.append(f"{label} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{label} missing")
    # zoo's kernel set does not depend on the model: read it from a one-run bench of the first one.
    try:
        kernels = zoo_json(args.zoo, "bench", zoo_init(args.zoo, args.models[0], args.workdir), "--runs", "1",
                           "--threads", str(args.threads))["kernels"]
    except subprocess.CalledProcessError as error:
        kernels = f"(unknown: {one_line(error.stderr or error)})"
    emit(f"## Peers — {describe()}; zoo {kernels} kernels; {args.threads} threads, interleaved rounds; "
         f"{', '.join(versions)}")
    emit("")
    kernels_seen = {kernels}
    for name in args.models:
        try:
            model = Model(name, variants[name], args.zoo, args.workdir)
        except Exception as error:
            emit(f"### {name}")
            emit("")
            emit(f"(not run: {one_line(getattr(error, 'stderr', None) or error)})")
            emit("")
            continue
        bench_model(model, args, kernels_seen, emit)
        if args.markdown:  # written as it goes: a long run leaves its finished tables
            with open(args.markdown, "w") as f:
                f.write("\n".join(lines) + "\n")
    if len(kernels_seen) > 1:
        emit(f"(zoo reported several kernel sets: {', '.join(sorted(kernels_seen))})")
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

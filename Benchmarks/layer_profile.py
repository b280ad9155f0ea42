#!/usr/bin/env python3
"""Per-layer profile of one torchvision model on zoo next to onnxruntime's own profiler: where the
time goes, by kind of layer, on the same weights and input, same threads.

zoo: `zoo bench MODEL.pth --layers --json` (every executed step's median ms; a step may cover
fused nodes, e.g. conv + batch norm + ReLU). onnxruntime: the session profiler
(SessionOptions.enable_profiling) over --runs runs after warm-up; each node's median kernel time.
onnxruntime runs its optimized graph (BatchNormalization folded, Conv+activation fused), so both
columns are the time of whole layers. Steps are put into kinds from their shapes: convolutions by
kernel (1×1, k×k, depthwise k×k, grouped, strided), then the other ops by name.

Weights and ONNX export come from Benchmarks/peers.py's cache in --workdir (made on first use, as
peers.py does).

Run from the repository root with the oracle venv, after `swift build -c release --product zoo`:
    $(../shared/oracle/setup) Benchmarks/layer_profile.py MODEL [--batch 1] [--threads 2] [--runs 20]
        [--top 12] [--markdown FILE]
"""
import argparse
import collections
import json
import os
import re
import statistics
import subprocess
import tempfile

import numpy as np

from machine import describe
from peers import Model, zoo_json, zoo_variants


def zoo_kind(kernel):
    """A zoo step's kind from its kernel text ("conv 96 depthwise 3×3/2 +bn +relu6 direct")."""
    if kernel.startswith("conv"):
        size = re.search(r"(\d+)×(\d+)", kernel).group(0)
        stride = re.search(r"×\d+(/\d+)", kernel)
        stride = stride.group(1) if stride else ""
        if "depthwise" in kernel:
            return f"conv depthwise {size}{stride}"
        return f"conv {size}{stride}" + (" grouped" if re.search(r" g\d+", kernel) else "")
    if kernel.startswith("linear"):
        return "linear / gemm"
    return kernel.split(" ")[0].lower()


def ort_kind(op, inputs, outputs):
    """An onnxruntime node's kind from its op and shapes (Conv weights [M, C/g, kh, kw]; the stride
    from the input and output heights)."""
    if op in ("Conv", "FusedConv") and len(inputs) > 1 and len(inputs[1]) == 4 and outputs:
        x, w, y = inputs[0], inputs[1], outputs[0]
        ratio = x[2] / y[2] if y[2] else 1
        stride = f"/{round(ratio)}" if ratio >= 1.5 else ""
        size = f"{w[2]}×{w[3]}"
        if w[1] == 1 and w[0] == x[1]:
            return f"conv depthwise {size}{stride}"
        return f"conv {size}{stride}" + (" grouped" if w[1] != x[1] else "")
    if op in ("Gemm", "FusedGemm"):
        return "linear / gemm"
    return op.lower()


def module_path(ort_name):
    """The torch module path an exported node's name carries: "/features/features.2/conv/conv.0/
    conv.0.0/Conv" → "features.2.conv.0.0" (each scope either refines the one before it or nests)."""
    scopes = [part for part in ort_name.strip("/").split("/")[:-1] if part]
    path = []
    for scope in scopes:
        if path and scope.startswith(path[-1] + "."):
            path[-1] = scope
        else:
            path.append(scope)
    return ".".join(path)


def ort_profile(model, x, threads, runs):
    """onnxruntime's per-node median ms over its last `runs` runs (after 3 warm-up runs), as a list
    of dicts (name, op, kind, ms)."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.enable_profiling = True
    options.profile_file_prefix = os.path.join(tempfile.gettempdir(), f"zoo-profile-{model.name}")
    session = ort.InferenceSession(model.onnx, options, providers=["CPUExecutionProvider"])
    for _ in range(3 + runs):
        session.run(None, {"input": x})
    trace_path = session.end_profiling()
    with open(trace_path) as f:
        events = json.load(f)
    os.remove(trace_path)
    times, kinds = collections.defaultdict(list), {}
    for event in events:
        if event.get("cat") != "Node" or not event["name"].endswith("_kernel_time"):
            continue
        name = event["name"][: -len("_kernel_time")]
        details = event.get("args", {})
        inputs = [list(s.values())[0] for s in details.get("input_type_shape", [])]
        outputs = [list(s.values())[0] for s in details.get("output_type_shape", [])]
        times[name].append(event["dur"] / 1e3)
        kinds[name] = (details.get("op_name", "?"), ort_kind(details.get("op_name", "?"), inputs, outputs))
    return [{"name": name, "op": kinds[name][0], "kind": kinds[name][1], "ms": statistics.median(samples[-runs:]),
             "module": module_path(name)} for name, samples in times.items()]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("--zoo", default=".build/release/zoo")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--top", type=int, default=12, help="also list this many slowest layers of each engine")
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "zoo-peers"))
    parser.add_argument("--markdown", metavar="FILE", help="also write the tables to FILE")
    args = parser.parse_args()
    os.makedirs(args.workdir, exist_ok=True)

    variants = zoo_variants(args.zoo)
    if args.model not in variants:
        parser.error(f"zoo has no model '{args.model}' (see zoo models)")
    model = Model(args.model, variants[args.model], args.zoo, args.workdir)
    x = np.random.default_rng(0).standard_normal((args.batch, 3, model.size, model.size)).astype(np.float32)

    bench = zoo_json(args.zoo, "bench", model.weights, "--batch", str(args.batch), "--runs", str(args.runs),
                     "--threads", str(args.threads), "--layers")
    zoo_steps = [{"name": "+".join(s["nodes"]), "kind": zoo_kind(s["kernel"]), "kernel": s["kernel"], "ms": s["median_ms"]}
                 for s in bench["layers"]]
    ort_nodes = ort_profile(model, x, args.threads, args.runs)

    kinds = collections.OrderedDict()
    for step in sorted(zoo_steps, key=lambda s: -s["ms"]):
        kinds.setdefault(step["kind"], [0.0, 0, 0.0, 0])
    for node in sorted(ort_nodes, key=lambda n: -n["ms"]):
        kinds.setdefault(node["kind"], [0.0, 0, 0.0, 0])
    for step in zoo_steps:
        kinds[step["kind"]][0] += step["ms"]
        kinds[step["kind"]][1] += 1
    for node in ort_nodes:
        kinds[node["kind"]][2] += node["ms"]
        kinds[node["kind"]][3] += 1
    zoo_total, ort_total = sum(s["ms"] for s in zoo_steps), sum(n["ms"] for n in ort_nodes)

    lines = [f"## {args.model}: zoo's steps next to onnxruntime's profiler — batch {args.batch}, {args.threads} threads, "
             f"median of {args.runs} runs", "", describe() + f"; zoo {bench['kernels']} kernels", "",
             "| kind | zoo ms | zoo steps | onnxruntime ms | onnxruntime nodes | zoo − onnxruntime ms |",
             "|---|---:|---:|---:|---:|---:|"]
    for kind, (zms, zn, oms, on) in sorted(kinds.items(), key=lambda kv: -(kv[1][0] - kv[1][2])):
        lines.append(f"| {kind} | {zms:.3f} | {zn} | {oms:.3f} | {on} | {zms - oms:+.3f} |")
    lines.append(f"| **all layers** | **{zoo_total:.3f}** | {len(zoo_steps)} | **{ort_total:.3f}** | {len(ort_nodes)} | "
                 f"**{zoo_total - ort_total:+.3f}** |")
    # onnxruntime's nodes of the same torch modules as each zoo step (its fused nodes are named after
    # their last op's module: a Conv+Clip after the Clip).
    by_module = collections.defaultdict(list)
    for node in ort_nodes:
        by_module[node["module"]].append(node)
    lines += ["", f"Slowest {args.top} zoo steps, with onnxruntime's time for the same modules:", "",
              "| step | kernel | zoo ms | onnxruntime ms |", "|---|---|---:|---:|"]
    for step in sorted(zoo_steps, key=lambda s: -s["ms"])[: args.top]:
        matched = [n for name in step["name"].split("+") for n in by_module.get(name, [])]
        ort_ms = f"{sum(n['ms'] for n in matched):.3f}" if matched else "–"
        lines.append(f"| {step['name'].split('+')[0][:50]} | {step['kernel']} | {step['ms']:.3f} | {ort_ms} |")
    lines += ["", f"Slowest {args.top} onnxruntime nodes:", "", "| node | op | kind | ms |", "|---|---|---|---:|"]
    for node in sorted(ort_nodes, key=lambda n: -n["ms"])[: args.top]:
        lines.append(f"| {node['name'][:60]} | {node['op']} | {node['kind']} | {node['ms']:.3f} |")
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        with open(args.markdown, "a") as f:
            f.write(text + "\n\n")


if __name__ == "__main__":
    main()

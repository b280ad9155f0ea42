#!/usr/bin/env python3
"""Census for issue 12 (general ONNX graphs): which ONNX ops torch's two exporters emit for one
torchvision classification model per family, and which of them zoo cannot run yet.

Run from the repository root (writes nothing under the repository; the exported files go to a
temporary folder and are deleted after each is measured):

    $(../shared/oracle/setup) Fixtures/census_torchvision_exports.py [--zoo PATH] [--only NAME ...]

Pins torch==2.9.1, torchvision==0.24.1, onnx==1.23.2. Each model is built with weights=None
(num_classes=10 where the constructor allows it), eval(), and exported one at a time by

  ts     — the TorchScript exporter: torch.onnx.export(dynamo=False, opset_version=17,
           dynamic_axes={"input": {0: "N"}, "output": {0: "N"}})
  dynamo — the dynamo exporter: torch.onnx.export(dynamo=True, opset_version=18, a dynamic batch
           through dynamic_shapes, N in [1, 1024]; if torch.export refuses it, N in [2, 1024], then
           static shapes, noted), saved with external data.

Both export with grad enabled (not under torch.no_grad()): under no_grad an eval() nn.MultiheadAttention
takes the fused fast path, which the TorchScript exporter cannot export.

For each file: the op-type histogram (onnx.load without external data; the nodes of the main graph,
of every subgraph held in a node attribute and of every model-local function; ops of a domain other
than the default one written domain.op) and what `zoo inspect FILE --json` says — its
"unsupported_ops" (with counts) or "import_error". A zoo binary older than that JSON schema exits 1 with
"unsupported ops: node 'n' (Op), ..." instead; that message is parsed into the same counts, and any
other failure is reported as the import error.

Prints a markdown table (family | exporter | ops (type×count) | zoo cannot run (type×count) | note)
and the union of all op types over all exports and the union zoo cannot run, each sorted by how many
families need the op (count in parentheses).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import oracle_env  # noqa: E402  (Fixtures/oracle_env.py)

oracle_env.deterministic()

import argparse  # noqa: E402
import collections  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import onnx  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402

oracle_env.require(torch="2.9.1", torchvision="0.24.1", onnx="1.23.2")

torch.set_num_threads(1)
warnings.filterwarnings("ignore")

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ZOO = ROOT / ".build" / "release" / "zoo"

M = torchvision.models
# (family, constructor, input size); every model with weights=None and num_classes=10
FAMILIES = [
    ("alexnet", lambda: M.alexnet(weights=None, num_classes=10), 224),
    ("vgg11_bn", lambda: M.vgg11_bn(weights=None, num_classes=10), 224),
    ("resnet18", lambda: M.resnet18(weights=None, num_classes=10), 224),
    ("resnext50_32x4d", lambda: M.resnext50_32x4d(weights=None, num_classes=10), 224),
    ("wide_resnet50_2", lambda: M.wide_resnet50_2(weights=None, num_classes=10), 224),
    ("squeezenet1_0", lambda: M.squeezenet1_0(weights=None, num_classes=10), 224),
    ("densenet121", lambda: M.densenet121(weights=None, num_classes=10), 224),
    ("googlenet", lambda: M.googlenet(weights=None, num_classes=10, transform_input=True, aux_logits=False,
                                      init_weights=False), 224),
    ("inception_v3", lambda: M.inception_v3(weights=None, num_classes=10, transform_input=True, aux_logits=False,
                                            init_weights=False), 299),
    ("mobilenet_v2", lambda: M.mobilenet_v2(weights=None, num_classes=10), 224),
    ("mobilenet_v3_small", lambda: M.mobilenet_v3_small(weights=None, num_classes=10), 224),
    ("mnasnet0_5", lambda: M.mnasnet0_5(weights=None, num_classes=10), 224),
    ("shufflenet_v2_x0_5", lambda: M.shufflenet_v2_x0_5(weights=None, num_classes=10), 224),
    ("efficientnet_b0", lambda: M.efficientnet_b0(weights=None, num_classes=10), 224),
    ("efficientnet_v2_s", lambda: M.efficientnet_v2_s(weights=None, num_classes=10), 224),
    ("regnet_x_400mf", lambda: M.regnet_x_400mf(weights=None, num_classes=10), 224),
    ("regnet_y_400mf", lambda: M.regnet_y_400mf(weights=None, num_classes=10), 224),
    ("convnext_tiny", lambda: M.convnext_tiny(weights=None, num_classes=10), 224),
    ("vit_b_16", lambda: M.vit_b_16(weights=None, num_classes=10), 224),
    ("swin_t", lambda: M.swin_t(weights=None, num_classes=10), 224),
    ("maxvit_t", lambda: M.maxvit_t(weights=None, num_classes=10), 224),
]

BATCH = 2  # the example batch (not 1, so that the dynamo exporter does not specialize the batch dimension)


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def one_line(error):
    """The innermost cause's message on one line (torch.onnx wraps torch.export's error in a long preamble)."""
    while error.__cause__ is not None:
        error = error.__cause__
    text = re.sub(r" For more information, run with TORCH_LOGS=\S+", "", ANSI.sub("", str(error)))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    line = f"{type(error).__name__}: " + " ".join(lines[:2])
    return line if len(line) <= 300 else line[:297] + "..."


def op_name(node):
    return node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"


def histogram(model):
    """Op types over the main graph, every subgraph (node attributes) and every model-local function."""
    counts = collections.Counter()

    def walk(nodes):
        for node in nodes:
            counts[op_name(node)] += 1
            for attribute in node.attribute:
                if attribute.type == onnx.AttributeProto.GRAPH:
                    walk(attribute.g.node)
                elif attribute.type == onnx.AttributeProto.GRAPHS:
                    for graph in attribute.graphs:
                        walk(graph.node)

    walk(model.graph.node)
    for function in model.functions:
        walk(function.node)
    return counts


def default_opset(model):
    versions = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    return versions[0] if versions else None


UNSUPPORTED_NODE = re.compile(r"node '.*?' \(([^),]+)")


def zoo_inspect(zoo, path):
    """(unsupported Counter or None, import error or None, how it was learned)."""
    run = subprocess.run([str(zoo), "inspect", str(path), "--json"], capture_output=True, text=True, timeout=1200)
    if run.returncode == 0:
        report = json.loads(run.stdout)
        if "unsupported_ops" in report or "import_error" in report:
            unsupported = collections.Counter()
            for entry in report.get("unsupported_ops") or []:
                name = entry["op"] if entry.get("domain", "") in ("", "ai.onnx") else f"{entry['domain']}.{entry['op']}"
                unsupported[name] += entry["count"]
            return unsupported, report.get("import_error"), "json"
        # an older schema: exit 0 means the graph imported
        return collections.Counter(), None, "json (imported)"
    message = (run.stderr or run.stdout).strip()
    message = message[len("Error: "):] if message.startswith("Error: ") else message
    marker = "unsupported ops: "
    if marker in message:
        unsupported = collections.Counter(UNSUPPORTED_NODE.findall(message.split(marker, 1)[1]))
        return unsupported, None, "error message"
    return None, message.splitlines()[0] if message else f"exit {run.returncode}", "error message"


def export_ts(model, x, path):
    torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=17,
                      input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "N"}, "output": {0: "N"}})
    return ""


def export_dynamo(model, x, path):
    """A dynamic batch N in [1, 1024]; if torch.export refuses it, N in [2, 1024] (a model that guards
    N != 1), then static shapes — the note says which."""
    def export(dynamic_shapes):
        return torch.onnx.export(model, (x,), dynamo=True, opset_version=18,
                                 input_names=["input"], output_names=["output"], dynamic_shapes=dynamic_shapes,
                                 optimize=True, verify=False, fallback=False)

    attempts = [("dynamic batch N in [1, 1024]", ({0: torch.export.Dim("N", min=1, max=1024)},)),
                ("dynamic batch N in [2, 1024]", ({0: torch.export.Dim("N", min=2, max=1024)},)),
                ("static shapes", None)]
    failures = []
    for label, dynamic_shapes in attempts:
        try:
            program = export(dynamic_shapes)
        except Exception as error:  # noqa: BLE001
            failures.append(f"{label} failed ({one_line(error)})")
            if dynamic_shapes is None:
                raise
            continue
        program.save(str(path), external_data=True)
        return "; ".join(failures + [label]) if failures else ""


EXPORTERS = [("ts", export_ts), ("dynamo", export_dynamo)]


def measure(zoo, family, build, size, exporter, export, folder):
    row = {"family": family, "exporter": exporter, "ok": False, "ops": collections.Counter(),
           "unsupported": None, "import_error": None, "note": "", "opset": None}
    torch.manual_seed(0)
    model = build().eval()
    x = torch.randn(BATCH, 3, size, size)
    path = folder / f"{family}_{exporter}.onnx"
    started = time.monotonic()
    try:
        # not under torch.no_grad(): with grad enabled nn.MultiheadAttention (vit_b_16) takes its ordinary
        # path, not the fused aten::_native_multi_head_attention that the TorchScript exporter cannot export
        with contextlib.redirect_stdout(sys.stderr):  # the dynamo exporter prints its progress
            row["note"] = export(model, x, path)
    except Exception as error:  # noqa: BLE001
        row["note"] = f"export failed: {one_line(error)}"
        return row
    finally:
        del model
    seconds = time.monotonic() - started
    loaded = onnx.load(str(path), load_external_data=False)
    row["ok"] = True
    row["opset"] = default_opset(loaded)
    row["ops"] = histogram(loaded)
    nodes = sum(row["ops"].values())
    del loaded
    row["unsupported"], row["import_error"], how = zoo_inspect(zoo, path)
    notes = [row["note"]] if row["note"] else []
    notes.append(f"opset {row['opset']}, {nodes} nodes, export {seconds:.0f} s")
    # the import error is the list of unsupported nodes when there are any; note only a different one
    if row["import_error"] and not (row["unsupported"] and row["import_error"].startswith("unsupported ops:")):
        notes.append(f"zoo import error: {row['import_error']}")
    row["note"] = "; ".join(notes)
    row["zoo_how"] = how
    for item in folder.iterdir():
        item.unlink() if item.is_file() else shutil.rmtree(item)
    return row


def counted(counter):
    return ", ".join(f"{op}×{n}" for op, n in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))


def cell(text):
    return text.replace("|", "\\|").replace("\n", " ")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zoo", default=os.environ.get("ZOO", str(DEFAULT_ZOO)), help="the zoo binary")
    parser.add_argument("--only", nargs="*", help="families to measure (default: all)")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args()
    families = [f for f in FAMILIES if not args.only or f[0] in args.only]

    zoo = Path(args.zoo)
    version = subprocess.run([str(zoo), "--version"], capture_output=True, text=True).stdout.strip()
    built = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(zoo.stat().st_mtime))
    print(f"zoo: {zoo} ({version or 'no version'}, built {built} UTC); torch {torch.__version__}, "
          f"torchvision {torchvision.__version__}, onnx {onnx.__version__}")
    print()

    rows = []
    with tempfile.TemporaryDirectory(prefix="zoo-census-") as temp:
        folder = Path(temp)
        for family, build, size in families:
            for exporter, export in EXPORTERS:
                row = measure(args.zoo, family, build, size, exporter, export, folder)
                rows.append(row)
                print(f"# {family} {exporter}: {'ok' if row['ok'] else 'FAILED'}; "
                      f"zoo cannot run: {counted(row['unsupported'] or {}) or '-'}; {row['note']}",
                      file=sys.stderr, flush=True)

    print("| family | exporter | ops (type×count) | zoo cannot run (type×count) | note |")
    print("|---|---|---|---|---|")
    for row in rows:
        if not row["ok"]:
            cannot = "—"
        elif row["unsupported"] is None:
            cannot = "? (import error)"
        else:
            cannot = counted(row["unsupported"]) or "none"
        print(f"| {row['family']} | {row['exporter']} | {cell(counted(row['ops'])) or '—'} | {cell(cannot)} | "
              f"{cell(row['note'])} |")

    needed = collections.defaultdict(set)
    cannot = collections.defaultdict(set)
    for row in rows:
        for op in row["ops"]:
            needed[op].add(row["family"])
        for op in row["unsupported"] or {}:
            cannot[op].add(row["family"])

    def union(table):
        return ", ".join(f"{op} ({len(fams)})" for op, fams in sorted(table.items(), key=lambda kv: (-len(kv[1]), kv[0])))

    print()
    print(f"All op types ({len(needed)}), by families needing them: {union(needed)}")
    print(f"Zoo cannot run ({len(cannot)}), by families needing them: {union(cannot) or 'none'}")

    if args.json:
        with open(args.json, "w") as out:
            json.dump([{**r, "ops": dict(r["ops"]), "unsupported": None if r["unsupported"] is None
                        else dict(r["unsupported"])} for r in rows], out, indent=1)


if __name__ == "__main__":
    main()

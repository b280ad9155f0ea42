#!/usr/bin/env python3
"""Files whose names would attack a terminal, made by the real tools, for zoo's output-hygiene tests
(Tests/ZooCLITests/HostileNameTests.swift).

Run from the repository root:

    $(../shared/oracle/setup) Fixtures/make_hostile_name_fixtures.py

Pins torch==2.9.1, onnx==1.23.2, onnxruntime==1.32.0, safetensors==0.8.0; deterministic (no randomness). Writes
Fixtures/hostile/:
  names.pth            torch.save of a state dict whose keys hold an OSC title escape with BEL and a
                       newline, an SGR colour escape, U+202E (right-to-left override), U+2028, a C1
                       control (U+009B, the 8-bit CSI) and DEL, next to a plain key.
  nested.pth           torch.save of {"model": that state dict, KEY: VALUE}: an other entry whose key
                       and string value hold escapes and newlines.
  names.safetensors    safetensors.torch.save_file of the same tensors, with one such metadata entry.
  names.onnx           onnx.helper model x -> Gemm -> Relu -> y (onnx.checker and onnxruntime accept
                       it) whose graph name, producer, input, symbolic batch dim, node names,
                       initializer names and output name all hold escapes, newlines or bidi controls.
  unsupported_op.onnx  onnx.helper model with one node of an unknown op type, both its name and
                       op_type holding a newline and an escape: zoo refuses it, naming the node.
  global.pth           torch.save (pickle protocol 4, so STACK_GLOBAL carries the names) of a dict
                       holding an instance of a class whose __module__ is "evil\\nmodule\\x1b[2J":
                       zoo refuses the global by name.
  expected.json        per file, the names exactly as the reference library reads them back
                       (torch.load / safe_open / onnx.load; the pickle's global from pickletools):
                       state-dict keys in file order, safetensors names sorted. Plain json.dumps
                       (ASCII only, every control as \\uXXXX), so it is safe to print.
"""
import json
import os
import pickletools
import sys
import zipfile

import oracle_env  # Fixtures/oracle_env.py

oracle_env.deterministic()

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import TensorProto, helper, numpy_helper
from safetensors import safe_open
from safetensors.torch import save_file

oracle_env.require(torch="2.9.1", onnx="1.23.2", onnxruntime="1.32.0", safetensors="0.8.0")

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hostile")
os.makedirs(OUT, exist_ok=True)

NAMES = [
    "evil\x1b]0;pwned\x07\nname",      # OSC 0 (set window title) ended by BEL, then a forged line
    "\x1b[31mred",                      # SGR: red from here on
    "rtl\u202eoverride.weight",         # RIGHT-TO-LEFT OVERRIDE: the rest prints reversed
    "line\u2028separator",              # LINE SEPARATOR
    "c1\x9b2Jdel\x7f",                  # C1 CSI (8-bit form of ESC [) and DEL
    "plain.weight",
]
expected = {}


def tensors():
    return {name: torch.arange(i + 1, dtype=torch.float32) for i, name in enumerate(NAMES)}


# --- PyTorch: a state dict with hostile keys, and one nested with a hostile other entry.
torch.save(tensors(), os.path.join(OUT, "names.pth"))
expected["names.pth"] = list(torch.load(os.path.join(OUT, "names.pth"), weights_only=True).keys())

OTHER_KEY, OTHER_VALUE = "note\x1b[8m", "hidden\x1b[2J\nforged line\u202e"
torch.save({"model": tensors(), OTHER_KEY: OTHER_VALUE}, os.path.join(OUT, "nested.pth"))
nested = torch.load(os.path.join(OUT, "nested.pth"), weights_only=True)
expected["nested.pth"] = {"model": list(nested["model"].keys()), "other": [OTHER_KEY, nested[OTHER_KEY]]}

# --- safetensors: the same tensors, hostile metadata.
# One key: the library writes metadata from a Rust HashMap, in random order.
METADATA = {"title\x1b]0;x\x07": "a\nb\u2066c"}
save_file(tensors(), os.path.join(OUT, "names.safetensors"), metadata=METADATA)
with safe_open(os.path.join(OUT, "names.safetensors"), framework="pt") as f:
    expected["names.safetensors"] = {"tensors": sorted(f.keys()), "metadata": f.metadata()}

# --- ONNX: a runnable model whose every name is hostile.
X, Y, W, B = "in\x1b[31mput", "out\u2028put", "fc.weight\x07", "fc.bias\u202e"
GEMM, RELU, HIDDEN = "fc\u2067", "relu\nforged: line", "hidden\x1b[2J"
graph = helper.make_graph(
    [helper.make_node("Gemm", [X, W, B], [HIDDEN], name=GEMM, transB=1),
     helper.make_node("Relu", [HIDDEN], [Y], name=RELU)],
    "graph\x1b]0;t\x07", [helper.make_tensor_value_info(X, TensorProto.FLOAT, ["batch\nsize", 3])],
    [helper.make_tensor_value_info(Y, TensorProto.FLOAT, ["batch\nsize", 4])],
    [numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(4, 3) / 8, W),
     numpy_helper.from_array(np.arange(4, dtype=np.float32) - 2, B)])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="zoo\x1b[5m")
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save(model, os.path.join(OUT, "names.onnx"))
ort.InferenceSession(os.path.join(OUT, "names.onnx"), providers=["CPUExecutionProvider"])
loaded = onnx.load(os.path.join(OUT, "names.onnx"))
expected["names.onnx"] = {"graph": loaded.graph.name, "producer": loaded.producer_name,
                          "input": loaded.graph.input[0].name, "output": loaded.graph.output[0].name,
                          "nodes": [[n.name, n.op_type] for n in loaded.graph.node],
                          "initializers": [t.name for t in loaded.graph.initializer]}

# --- ONNX: an unsupported op whose node name and op type hold a newline and an escape.
node = helper.make_node("Evil\nOp\x1b[0m", ["x"], ["y"], name="evil\nnode\x1b]0;t\x07")
graph = helper.make_graph([node], "hostile", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="zoo-hostile\x1b[5m")
model.ir_version = 8
onnx.save(model, os.path.join(OUT, "unsupported_op.onnx"))
loaded = onnx.load(os.path.join(OUT, "unsupported_op.onnx"))
expected["unsupported_op.onnx"] = {"node": loaded.graph.node[0].name, "op_type": loaded.graph.node[0].op_type,
                                   "producer": loaded.producer_name}

# --- A global whose module name holds a newline and an escape (protocol 4: STACK_GLOBAL, whose
# strings may hold any character; GLOBAL's newline-terminated text could not).
MODULE = "evil\nmodule\x1b[2J"


class Thing:
    pass


Thing.__module__ = MODULE
Thing.__qualname__ = "Thing"
sys.modules[MODULE] = sys.modules[__name__]
setattr(sys.modules[MODULE], "Thing", Thing)
torch.save({"weight": torch.zeros(2), "thing": Thing()}, os.path.join(OUT, "global.pth"), pickle_protocol=4)
del sys.modules[MODULE]
with zipfile.ZipFile(os.path.join(OUT, "global.pth")) as z:
    pickle_bytes = z.read(next(n for n in z.namelist() if n.endswith("/data.pkl")))
strings = [arg for op, arg, _ in pickletools.genops(pickle_bytes) if op.name == "SHORT_BINUNICODE"]
assert MODULE in strings and "Thing" in strings, strings
expected["global.pth"] = {"module": MODULE, "name": "Thing"}

with open(os.path.join(OUT, "expected.json"), "w") as f:
    f.write(json.dumps(expected, indent=1) + "\n")
print("wrote", sorted(os.listdir(OUT)))

#!/usr/bin/env python3
"""Generate the op-level fixtures under Fixtures/ops/ with real PyTorch (and onnx.reference where only
ONNX defines the semantics).

Run from the repository root:

    $(../shared/oracle/setup) Fixtures/make_op_fixtures.py

(`../shared/oracle/setup` creates or reuses the oracle venv and prints its python.)

The script pins torch==2.9.1, torchvision==0.24.1 and onnx==1.23.2 and is deterministic: it
re-executes itself with PYTHONHASHSEED=0, ATEN_CPU_CAPABILITY=default and one thread, and draws every
input from numpy.random.default_rng(crc32(case name)). Running it twice gives byte-identical files.

Output: one .npy per input and output (numpy format 1.0, little-endian '<f4', C order), named
<case>.<input name>.npy and <case>.out.npy (cases comparing two semantics on one input share the input
file), and Fixtures/ops/manifest.json, a JSON list with one object per case:

    {"name": "conv_groups2",               unique case name
     "op": "Conv",                          ONNX op name, or a torch-only op: "AdaptiveAvgPool2d",
                                            "LocalResponseNorm" (torch's LRN window, see below)
     "attributes": {...},                   ONNX-style attribute names (below)
     "inputs": ["conv_groups2.x.npy", ...], in ONNX input order
     "input_names": ["X", "W", "B"],
     "output": "conv_groups2.out.npy",
     "source": "torch" | "onnx.reference",  who computed the output
     "seed": 1234,                          numpy default_rng seed of the inputs
     "shapes": {"X": [...], ..., "out": [...]},
     "torch_call": "F.conv2d(...)",         (torch cases) what was run
     "max_abs_diff_vs_f64": 1e-7,           (torch cases) the same call in float64, for tolerances
     "onnx_reference_max_abs_diff": 0.0,    (torch cases) max |torch - the same ONNX node run by
                                            onnx.reference| (NaN == NaN, -0 == +0); null if ONNX
                                            has no such op or for onnx.reference cases
     "torch_case", "torch_max_abs_diff":    (ONNX LRN cases) the torch case with the same input and
                                            parameters, and how far apart the two are
     "notes": "..."}
Every input is float32 from numpy; "seed" is null for hand-written inputs (relu_special_values).

Attributes: kernel_shape, strides, pads ([top, left, bottom, right], ONNX's [x1_begin, x2_begin,
x1_end, x2_end]), dilations, group, ceil_mode (0/1), count_include_pad (0/1), output_size ([H, W]),
size/alpha/beta/bias (LRN; bias is torch's k), axis, epsilon, transA/transB/alpha/beta (Gemm),
ratio/training_mode (Dropout). Defaults are written out.

LRN windows: torch's LocalResponseNorm sums x^2 over channels [c - size//2, c + (size-1)//2], ONNX's
LRN (and Caffe's) over [c - (size-1)//2, c + size//2]; both divide by (bias + alpha/size * sum)^beta.
They agree for odd sizes and differ for even sizes (the script asserts both).
"""

import os
import sys

import oracle_env  # noqa: E402  (Fixtures/oracle_env.py)

oracle_env.deterministic()

import json
import math
import shutil
import zlib
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn.functional as F
import torchvision
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator
from onnx.reference.ops.op_lrn import LRN as _StockLRN

oracle_env.require(torch="2.9.1", torchvision="0.24.1", onnx="1.23.2")

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "ops"
OPSET = 22
MAX_ELEMENTS = 2304

CASES = []
SAVED = {}  # file -> bytes written (shared inputs must be identical)
LOG = []


def log(msg):
    print(msg)
    LOG.append(msg)


# ------------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------------

def rng_for(name):
    seed = zlib.crc32(name.encode())
    return seed, np.random.default_rng(seed)


def normal(rng, *shape, scale=1.0, offset=0.0):
    return (rng.standard_normal(shape) * scale + offset).astype(np.float32)


def save(file, arr):
    arr = np.ascontiguousarray(arr, dtype="<f4")
    assert arr.size <= MAX_ELEMENTS, (file, arr.shape)
    path = OUT / file
    if file in SAVED:
        assert np.array_equal(np.load(path), arr, equal_nan=True), f"{file} reused with new data"
        return file
    np.save(path, arr, allow_pickle=False)
    data = path.read_bytes()
    assert data[:8] == b"\x93NUMPY\x01\x00", f"{file}: not npy format 1.0"
    SAVED[file] = data
    return file


class LRN(_StockLRN):
    """onnx.reference 1.23.2's LRN loops `for c in range(x.shape[0])` - over the batch, not the
    channels (onnx/onnx#7805, fixed upstream by onnx/onnx#8331 after 1.23.2) - so with N != C it
    leaves channels >= N unnormalised (square_sum 0). This is the stock code with that loop fixed;
    lrn_cases() checks that it equals the stock op whenever N == C."""

    def _run(self, x, alpha=None, beta=None, bias=None, size=None):
        if len(x.shape) != 4:
            raise RuntimeError(f"LRN only applies on 4D tensors but shape is {x.shape!r}.")
        square_sum = np.zeros(x.shape).astype(x.dtype)
        minc = x.shape[1]
        c1 = math.floor((size - 1) / 2)
        c2 = math.ceil((size - 1) / 2) + 1
        for c in range(x.shape[1]):
            begin = max(0, c - c1)
            end = min(minc, c + c2)
            square_sum[:, c, :, :] = np.sum(x[:, begin:end, :, :] ** 2, axis=1)
        y = x / ((bias + (alpha / size) * square_sum) ** beta)
        return (y.astype(x.dtype),)


def onnx_run(op, inputs, attributes, out_shape, stock=False):
    """Runs one ONNX node with onnx.reference; inputs are float32 arrays in ONNX order. LRN uses the
    fixed op above unless stock=True."""
    names = [f"in{i}" for i in range(len(inputs))]
    node = helper.make_node(op, names, ["out"], **attributes)
    graph = helper.make_graph(
        [node], "case",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(x.shape))
         for n, x in zip(names, inputs)],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, list(out_shape))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    onnx.checker.check_model(model)
    new_ops = None if stock else [LRN]
    out = ReferenceEvaluator(model, new_ops=new_ops).run(None, dict(zip(names, inputs)))[0]
    assert out.dtype == np.float32 and list(out.shape) == list(out_shape), (op, out.shape)
    return out


def max_diff(a, b):
    a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a64.shape != b64.shape:
        return None
    both_nan = np.isnan(a64) & np.isnan(b64)
    same = (a64 == b64) | both_nan  # also covers equal infinities
    if same.all():
        return 0.0
    return float(np.max(np.abs(a64 - b64)[~same]))


def add_case(name, op, attributes, inputs, fn, call, seed, notes="", onnx_op=None,
             onnx_attributes=None, input_files=None):
    """inputs: list of (ONNX input name, float32 array). fn(*torch tensors) computes the output;
    it is run in float32 (the fixture) and in float64 (tolerance guide). onnx_op: the ONNX node to
    cross-check with onnx.reference (None: no ONNX equivalent)."""
    arrays = [a for _, a in inputs]
    ts = [torch.from_numpy(a.copy()) for a in arrays]
    with torch.no_grad():
        out = fn(*ts).contiguous().numpy()
        out64 = fn(*[t.double() for t in ts]).numpy()
    assert out.dtype == np.float32
    files = input_files or [f"{name}.{n.lower()}.npy" for n, _ in inputs]
    for f, a in zip(files, arrays):
        save(f, a)
    case = {"name": name, "op": op, "attributes": attributes, "inputs": files,
            "input_names": [n for n, _ in inputs], "output": save(f"{name}.out.npy", out),
            "source": "torch", "seed": seed,
            "shapes": {**{n: list(a.shape) for n, a in inputs}, "out": list(out.shape)},
            "torch_call": call, "max_abs_diff_vs_f64": max_diff(out, out64),
            "onnx_reference_max_abs_diff": None}
    if onnx_op is not None:
        ref = onnx_run(onnx_op, arrays, attributes if onnx_attributes is None else onnx_attributes,
                       out.shape)
        case["onnx_reference_max_abs_diff"] = max_diff(out, ref)
        assert case["onnx_reference_max_abs_diff"] is not None, (name, ref.shape, out.shape)
    case["notes"] = notes
    CASES.append(case)
    return out


def add_onnx_case(name, op, attributes, inputs, out_shape, seed, notes="", input_files=None):
    arrays = [a for _, a in inputs]
    out = onnx_run(op, arrays, attributes, out_shape)
    files = input_files or [f"{name}.{n.lower()}.npy" for n, _ in inputs]
    for f, a in zip(files, arrays):
        save(f, a)
    CASES.append({"name": name, "op": op, "attributes": attributes, "inputs": files,
                  "input_names": [n for n, _ in inputs], "output": save(f"{name}.out.npy", out),
                  "source": "onnx.reference", "seed": seed,
                  "shapes": {**{n: list(a.shape) for n, a in inputs}, "out": list(out.shape)},
                  "onnx_reference_max_abs_diff": None, "notes": notes})
    return out


# ------------------------------------------------------------------------------------------------
# Cases
# ------------------------------------------------------------------------------------------------

def conv_cases():
    def conv(name, x_shape, w_shape, bias=True, strides=(1, 1), pads=(0, 0, 0, 0),
             dilations=(1, 1), group=1, notes=""):
        seed, rng = rng_for(name)
        x = normal(rng, *x_shape)
        w = normal(rng, *w_shape, scale=0.3)
        inputs = [("X", x), ("W", w)]
        if bias:
            inputs.append(("B", normal(rng, w_shape[0])))
        top, left, bottom, right = pads
        attrs = {"kernel_shape": list(w_shape[2:]), "strides": list(strides), "pads": list(pads),
                 "dilations": list(dilations), "group": group}
        if top == bottom and left == right:
            def fn(x, w, b=None):
                return F.conv2d(x, w, b, stride=strides, padding=(top, left), dilation=dilations,
                                groups=group)
            call = (f"F.conv2d(x, w, {'b' if bias else 'None'}, stride={tuple(strides)}, "
                    f"padding={(top, left)}, dilation={tuple(dilations)}, groups={group})")
        else:
            def fn(x, w, b=None):
                xp = F.pad(x, (left, right, top, bottom))
                return F.conv2d(xp, w, b, stride=strides, dilation=dilations, groups=group)
            call = (f"F.conv2d(F.pad(x, {(left, right, top, bottom)}), w, "
                    f"{'b' if bias else 'None'}, stride={tuple(strides)}, "
                    f"dilation={tuple(dilations)}, groups={group})")
        add_case(name, "Conv", attrs, inputs, fn, call, seed, notes, onnx_op="Conv")

    conv("conv_basic", (2, 4, 9, 9), (6, 4, 3, 3), pads=(1, 1, 1, 1))
    conv("conv_groups2", (1, 4, 8, 8), (6, 2, 3, 3), pads=(1, 1, 1, 1), group=2)
    conv("conv_depthwise", (1, 6, 7, 7), (6, 1, 3, 3), pads=(1, 1, 1, 1), group=6)
    conv("conv_depthwise_multiplier2", (1, 3, 7, 7), (6, 1, 3, 3), pads=(1, 1, 1, 1), group=3,
         notes="group = in_channels = 3, 6 output channels: output channels 2g, 2g+1 read input g")
    conv("conv_stride2", (1, 3, 11, 11), (4, 3, 3, 3), strides=(2, 2))
    conv("conv_stride2_pad1_even", (1, 3, 10, 10), (4, 3, 3, 3), strides=(2, 2),
         pads=(1, 1, 1, 1), notes="(10 + 2 - 3) / 2 + 1 = 5 (floor): the last input row/column "
                                  "(the bottom/right padding) is never read")
    conv("conv_dilation2", (1, 3, 10, 10), (4, 3, 3, 3), dilations=(2, 2), pads=(2, 2, 2, 2))
    conv("conv_1x1", (2, 8, 5, 5), (4, 8, 1, 1))
    conv("conv_asymmetric_pads", (1, 3, 7, 8), (4, 3, 3, 3), pads=(1, 2, 0, 1),
         notes="pads [top 1, left 2, bottom 0, right 1]; torch: F.pad(x, (left, right, top, bottom)) "
               "then conv2d with no padding")
    conv("conv_k11_s4_p2", (1, 3, 27, 27), (4, 3, 11, 11), strides=(4, 4), pads=(2, 2, 2, 2),
         notes="torchvision AlexNet conv1 geometry: (27 + 4 - 11) / 4 + 1 = 6")
    conv("conv_k5_p2_groups2", (1, 8, 9, 9), (8, 4, 5, 5), pads=(2, 2, 2, 2), group=2,
         notes="paper AlexNet conv2 geometry (5x5, pad 2, two groups)")
    conv("conv_nobias", (1, 3, 6, 6), (2, 3, 3, 3), bias=False, notes="no B input")
    conv("conv_rect_kernel_strides", (1, 2, 9, 11), (3, 2, 3, 5), strides=(2, 3),
         pads=(1, 2, 1, 2), notes="3x5 kernel, strides (2, 3)")


def pool_attrs(k, s, p, ceil):
    return {"kernel_shape": [k, k], "strides": [s, s], "pads": [p, p, p, p], "ceil_mode": int(ceil),
            "dilations": [1, 1]}


def maxpool_cases():
    def mp(name, shape, k, s, p, ceil, offset=0.0, notes=""):
        seed, rng = rng_for(name)
        x = normal(rng, *shape, offset=offset)
        attrs = pool_attrs(k, s, p, ceil)
        call = f"F.max_pool2d(x, {k}, {s}, {p}, ceil_mode={ceil})"
        add_case(name, "MaxPool", attrs, [("X", x)],
                 lambda x: F.max_pool2d(x, k, s, p, ceil_mode=ceil), call, seed, notes,
                 onnx_op="MaxPool")

    mp("maxpool_k3s2_odd", (1, 2, 13, 13), 3, 2, 0, False, notes="13 -> 6 (AlexNet's 13 -> 6)")
    mp("maxpool_k3s2_odd_ceil", (1, 2, 13, 13), 3, 2, 0, True,
       notes="13 -> 6: (13 - 3) / 2 is exact, ceil mode changes nothing")
    mp("maxpool_k3s2_even_floor", (1, 2, 12, 12), 3, 2, 0, False, notes="12 -> 5")
    mp("maxpool_k3s2_even_ceil", (1, 2, 12, 12), 3, 2, 0, True,
       notes="12 -> 6: the last window starts at 10 and covers rows/columns 10..11 only")
    mp("maxpool_k3s2_p1_floor", (1, 2, 8, 8), 3, 2, 1, False, notes="8 + 2 pad -> 4")
    mp("maxpool_k3s2_p1_ceil", (1, 2, 8, 8), 3, 2, 1, True,
       notes="8 + 2 pad -> 5: the last window starts at input index 7 (covers 7, the right pad, "
             "and one position beyond the padded input)")
    mp("maxpool_k3s2_p1_negative", (1, 2, 7, 7), 3, 2, 1, False, offset=-5.0,
       notes="all inputs negative (about -5): padding must act as -inf, not 0")
    mp("maxpool_ceil_window_in_padding_k3s3p1", (1, 2, 8, 8), 3, 3, 1, True,
       notes="ceil((8 + 2 - 3) / 3) + 1 = 4, but the 4th window would start at padded index 9 = "
             "input index 8, i.e. in the right padding; torch drops it ((out - 1) * stride >= "
             "in + pad_begin -> out - 1), giving 3x3, the same as floor mode")
    mp("maxpool_ceil_window_in_padding_k2s2p1", (1, 2, 5, 6), 2, 2, 1, True,
       notes="H: ceil((5 + 2 - 2) / 2) + 1 = 4 -> dropped to 3 (the 4th window starts in the "
             "padding); W: ceil((6 + 2 - 2) / 2) + 1 = 4 kept. Output 3x4")


def avgpool_cases():
    def ap(name, shape, k, s, p, ceil, include, notes=""):
        seed, rng = rng_for(name)
        x = normal(rng, *shape)
        attrs = {**pool_attrs(k, s, p, ceil), "count_include_pad": int(include)}
        call = f"F.avg_pool2d(x, {k}, {s}, {p}, ceil_mode={ceil}, count_include_pad={include})"
        add_case(name, "AveragePool", attrs, [("X", x)],
                 lambda x: F.avg_pool2d(x, k, s, p, ceil_mode=ceil, count_include_pad=include),
                 call, seed, notes, onnx_op="AveragePool")

    div_note = ("Divisor with count_include_pad=1: the window clipped to the padded input (padding "
                "counts, positions beyond the padded input from ceil mode do not); with 0: the "
                "number of real input elements in the window.")
    for ceil in (False, True):
        for include in (True, False):
            name = (f"avgpool_k3s2_p1_{'ceil' if ceil else 'floor'}_"
                    f"{'include_pad' if include else 'exclude_pad'}")
            ap(name, (1, 2, 8, 8), 3, 2, 1, ceil, include,
               notes=f"8 + 2 pad -> {5 if ceil else 4}. " + div_note)
    for include in (True, False):
        ap(f"avgpool_k3s2_ceil_nopad_{'include_pad' if include else 'exclude_pad'}",
           (1, 2, 6, 6), 3, 2, 0, True, include,
           notes="6 -> 3 in ceil mode; the last window covers 4..5 only and divides by 2 per "
                 "axis with either count_include_pad (there is no padding to count)")
    ap("avgpool_ceil_window_in_padding_k2s2p1", (1, 2, 5, 6), 2, 2, 1, True, True,
       notes="as maxpool_ceil_window_in_padding_k2s2p1: H 4 -> 3 (window starting in the padding "
             "dropped), W 4. " + div_note)


def adaptive_cases():
    def ad(name, shape, out_hw, notes=""):
        seed, rng = rng_for(name)
        x = normal(rng, *shape)
        attrs = {"output_size": list(out_hw)}
        add_case(name, "AdaptiveAvgPool2d", attrs, [("X", x)],
                 lambda x: F.adaptive_avg_pool2d(x, out_hw), f"F.adaptive_avg_pool2d(x, {out_hw})",
                 seed, "Window i along an axis: [floor(i * in / out), ceil((i + 1) * in / out)). "
                 + notes)

    ad("adaptive_avgpool_13_to_6", (1, 3, 13, 13), (6, 6), "overlapping windows of 3")
    ad("adaptive_avgpool_5_to_6", (1, 3, 5, 5), (6, 6), "upsampling: windows of 1 or 2")
    ad("adaptive_avgpool_2_to_6", (1, 3, 2, 2), (6, 6),
       "upsampling 2 -> 6 (alexnet_small at 100x100): each cell copied to a 3x3 block")
    ad("adaptive_avgpool_7x9_to_3x4", (1, 3, 7, 9), (3, 4), "non-square, non-divisible")
    ad("adaptive_avgpool_7x8_to_6x6", (1, 3, 7, 8), (6, 6),
       "alexnet_small at 256x288: windows of 2 (H) and 2-3 (W)")
    ad("adaptive_avgpool_6_to_6", (1, 3, 6, 6), (6, 6), "identity")
    ad("adaptive_avgpool_5x7_to_1x1", (2, 3, 5, 7), (1, 1), "global average")


def lrn_cases():
    strong = {"alpha": 1.0, "beta": 0.75, "bias": 1.0}
    alexnet = {"alpha": 1e-4, "beta": 0.75, "bias": 2.0}
    shape = (2, 7, 4, 4)
    seed, rng = rng_for("lrn_input")
    x = normal(rng, *shape)
    xfile = "lrn.x.npy"

    def torch_lrn(name, size, p, notes=""):
        attrs = {"size": size, **p}
        call = (f"F.local_response_norm(x, {size}, alpha={p['alpha']}, beta={p['beta']}, "
                f"k={p['bias']})")
        same_as_onnx = size % 2 == 1
        return add_case(
            name, "LocalResponseNorm", attrs, [("X", x)],
            lambda x: F.local_response_norm(x, size, alpha=p["alpha"], beta=p["beta"], k=p["bias"]),
            call, seed,
            f"torch window: channels [c - {size // 2}, c + {(size - 1) // 2}] (clipped), "
            f"y = x / (bias + alpha / size * sum x^2)^beta. "
            + ("Same as ONNX LRN for odd size. " if same_as_onnx else
               "Differs from ONNX LRN (even size): onnx_reference_max_abs_diff shows by how much. ")
            + notes, onnx_op="LRN", input_files=[xfile])

    def onnx_lrn(name, size, p, notes=""):
        attrs = {"size": size, **p}
        return add_onnx_case(
            name, "LRN", attrs, [("X", x)], x.shape, seed,
            f"ONNX window: channels [c - {(size - 1) // 2}, c + {size // 2}] (clipped; Caffe's "
            f"across-channel LRN too). Computed by onnx.reference 1.23.2 with its LRN loop fixed to "
            f"run over channels (stock loops over the batch axis: onnx/onnx#7805, fixed by "
            f"onnx/onnx#8331); the stock op agrees when N == C. " + notes, input_files=[xfile])

    # the fixed op equals the stock one when N == C (the only case the stock loop gets right) ...
    seed_sq, rng_sq = rng_for("lrn_square_check")
    xsq = normal(rng_sq, 7, 7, 2, 2)
    for size in (2, 4, 5):
        a = onnx_run("LRN", [xsq], {"size": size, **strong}, xsq.shape)
        b = onnx_run("LRN", [xsq], {"size": size, **strong}, xsq.shape, stock=True)
        assert np.array_equal(a, b), size
    # ... and differs on our N = 2, C = 7 input
    stock5 = onnx_run("LRN", [x], {"size": 5, **strong}, x.shape, stock=True)

    results = {}
    results["t5a"] = torch_lrn("lrn_torch_size5_alexnet", 5, alexnet,
                               "AlexNet parameters (alpha 1e-4, k 2): the effect is mostly the "
                               "constant factor 2^-0.75.")
    results["t5"] = torch_lrn("lrn_torch_size5", 5, strong)
    results["t4"] = torch_lrn("lrn_torch_size4", 4, strong)
    results["t2"] = torch_lrn("lrn_torch_size2", 2, strong)
    results["t4a"] = torch_lrn("lrn_torch_size4_alexnet", 4, alexnet)
    results["o5"] = onnx_lrn("lrn_onnx_size5", 5, strong)
    results["o4"] = onnx_lrn("lrn_onnx_size4", 4, strong)
    results["o2"] = onnx_lrn("lrn_onnx_size2", 2, strong)
    results["o4a"] = onnx_lrn("lrn_onnx_size4_alexnet", 4, alexnet)

    d5 = max_diff(results["t5"], results["o5"])
    d4 = max_diff(results["t4"], results["o4"])
    d2 = max_diff(results["t2"], results["o2"])
    d4a = max_diff(results["t4a"], results["o4a"])
    assert d5 < 1e-6, d5
    d_stock = max_diff(stock5, results["o5"])
    assert d_stock > 0.1, d_stock
    log(f"  onnx.reference 1.23.2 stock LRN (size 5, N=2, C=7) is off by up to {d_stock:.3g} "
        f"(channels >= 2 unnormalised); the fixed op matches torch to {d5:.3g}")
    assert d4 > 1e-3 and d2 > 1e-3, (d4, d2)
    assert d4a > 0, d4a
    by_name = {c["name"]: c for c in CASES}
    for onnx_name, torch_name, d in (("lrn_onnx_size5", "lrn_torch_size5", d5),
                                     ("lrn_onnx_size4", "lrn_torch_size4", d4),
                                     ("lrn_onnx_size2", "lrn_torch_size2", d2),
                                     ("lrn_onnx_size4_alexnet", "lrn_torch_size4_alexnet", d4a)):
        by_name[onnx_name]["torch_case"] = torch_name
        by_name[onnx_name]["torch_max_abs_diff"] = d
    # the even-size difference is exactly a window shift by one channel
    t4_shifted = F.local_response_norm(torch.from_numpy(np.flip(x, 1).copy()), 4, **{
        "alpha": 1.0, "beta": 0.75, "k": 1.0}).numpy()
    assert max_diff(np.flip(t4_shifted, 1), results["o4"]) < 1e-6
    log(f"  LRN torch vs ONNX, same input: size 5 max|diff| {d5:.3g}; size 4 {d4:.4g}; size 2 "
        f"{d2:.4g}; size 4 with AlexNet parameters {d4a:.3g} (relative "
        f"{d4a / float(np.max(np.abs(results['o4a']))):.3g})")
    return {"size5": d5, "size4": d4, "size2": d2, "size4_alexnet": d4a, "stock_bug": d_stock}


def misc_cases():
    # Softmax
    for name, shape, scale, offset, notes in (
            ("softmax_2d", (3, 10), 1.0, 0.0, "[N, C], axis 1"),
            ("softmax_4d", (2, 5, 3, 3), 1.0, 0.0, "[N, C, H, W], axis 1 (per pixel over channels; "
                                                   "ONNX opset >= 13 semantics)"),
            ("softmax_large_values", (2, 10), 50.0, 1000.0,
             "logits around 1000 +- 150: a naive exp overflows; subtract the max first")):
        seed, rng = rng_for(name)
        x = normal(rng, *shape, scale=scale, offset=offset)
        add_case(name, "Softmax", {"axis": 1}, [("X", x)], lambda x: torch.softmax(x, dim=1),
                 "torch.softmax(x, dim=1)", seed, notes, onnx_op="Softmax")

    # BatchNorm2d inference
    for name, eps, var_kind, notes in (
            ("batchnorm_eval", 1e-5, "normal", "nn.BatchNorm2d in eval mode: running statistics"),
            ("batchnorm_eval_small_var", 1e-3, "small",
             "running_var [0, 1e-4, 1e-2, 2]: epsilon (1e-3) matters; y = (x - mean) / "
             "sqrt(var + eps) * scale + B")):
        seed, rng = rng_for(name)
        x = normal(rng, 2, 4, 5, 5)
        scale = normal(rng, 4)
        b = normal(rng, 4)
        mean = normal(rng, 4, scale=0.5)
        var = (rng.uniform(0.5, 2.0, 4).astype(np.float32) if var_kind == "normal"
               else np.array([0.0, 1e-4, 1e-2, 2.0], dtype=np.float32))
        add_case(name, "BatchNormalization", {"epsilon": eps},
                 [("X", x), ("scale", scale), ("B", b), ("input_mean", mean), ("input_var", var)],
                 lambda x, s, b, m, v: F.batch_norm(x, m, v, s, b, training=False, eps=eps),
                 f"F.batch_norm(x, mean, var, scale, B, training=False, eps={eps})", seed, notes,
                 onnx_op="BatchNormalization")

    # Gemm / Linear
    gemm_attrs = {"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 1}
    for name, m, k, n, bias in (("gemm_linear_bias", 3, 16, 8, True),
                                ("gemm_linear_nobias", 3, 16, 8, False),
                                ("gemm_linear_k512", 2, 512, 4, True)):
        seed, rng = rng_for(name)
        inputs = [("A", normal(rng, m, k)), ("B", normal(rng, n, k, scale=k ** -0.5))]
        if bias:
            inputs.append(("C", normal(rng, n)))
        add_case(name, "Gemm", gemm_attrs, inputs, lambda x, w, b=None: F.linear(x, w, b),
                 f"F.linear(x, W, {'b' if bias else 'None'})", seed,
                 "nn.Linear: Y = A @ B^T (+ C), B is the [out, in] weight", onnx_op="Gemm")

    # Flatten
    seed, rng = rng_for("flatten_axis1")
    add_case("flatten_axis1", "Flatten", {"axis": 1}, [("X", normal(rng, 2, 3, 4, 5))],
             lambda x: torch.flatten(x, 1), "torch.flatten(x, 1)", seed, onnx_op="Flatten")

    # ReLU
    seed, rng = rng_for("relu")
    add_case("relu", "Relu", {}, [("X", normal(rng, 4, 50))], torch.relu, "torch.relu(x)", seed,
             onnx_op="Relu")
    special = np.array([-0.0, 0.0, -1.0, 1.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 3.4e38,
                        -3.4e38, 1.17549435e-38, -1.17549435e-38], dtype=np.float32)
    out = add_case("relu_special_values", "Relu", {}, [("X", special)], torch.relu,
                   "torch.relu(x)", None,
                   "-0, +0, -1, 1, +inf, -inf, NaN, +-smallest subnormal, +-3.4e38, +-FLT_MIN. "
                   "torch gives -0.0 for -0.0 (sign bit kept) and NaN for NaN; "
                   "onnx_reference_max_abs_diff compares with NaN == NaN and ignores the sign of zero",
                   onnx_op="Relu")
    assert out.view(np.uint32)[0] == 0x80000000 and np.isnan(out[6])
    relu_neg_zero = f"{int(out.view(np.uint32)[0]):08x}"

    # Add
    seed, rng = rng_for("add")
    add_case("add", "Add", {}, [("A", normal(rng, 2, 3, 4, 4)), ("B", normal(rng, 2, 3, 4, 4))],
             torch.add, "torch.add(a, b)", seed, onnx_op="Add")
    seed, rng = rng_for("add_broadcast")
    add_case("add_broadcast", "Add", {}, [("A", normal(rng, 2, 3, 4, 4)), ("B", normal(rng, 3, 1, 1))],
             torch.add, "torch.add(a, b)", seed,
             "B [3, 1, 1] broadcast against A [2, 3, 4, 4] (numpy rules: align trailing axes)",
             onnx_op="Add")

    # Concat
    seed, rng = rng_for("concat_axis1")
    add_case("concat_axis1", "Concat", {"axis": 1},
             [("X0", normal(rng, 2, 2, 3, 3)), ("X1", normal(rng, 2, 3, 3, 3)),
              ("X2", normal(rng, 2, 1, 3, 3))],
             lambda *xs: torch.cat(xs, dim=1), "torch.cat([x0, x1, x2], dim=1)", seed,
             "channel counts 2, 3, 1", onnx_op="Concat")

    # Dropout (eval)
    seed, rng = rng_for("dropout_eval")
    add_case("dropout_eval", "Dropout", {"ratio": 0.5, "training_mode": 0},
             [("X", normal(rng, 2, 64))], lambda x: F.dropout(x, p=0.5, training=False),
             "F.dropout(x, p=0.5, training=False)", seed,
             "identity in inference. In ONNX (opset >= 12) ratio and training_mode are optional "
             "inputs, not attributes; the cross-check runs the node with X only",
             onnx_op="Dropout", onnx_attributes={})

    # GlobalAveragePool
    seed, rng = rng_for("global_avgpool")
    add_case("global_avgpool", "GlobalAveragePool", {}, [("X", normal(rng, 2, 3, 5, 7))],
             lambda x: torch.mean(x, dim=(2, 3), keepdim=True),
             "torch.mean(x, dim=(2, 3), keepdim=True)", seed, "[N, C, H, W] -> [N, C, 1, 1]",
             onnx_op="GlobalAveragePool")
    return relu_neg_zero


# ------------------------------------------------------------------------------------------------
# Main
# ------------------------------------------------------------------------------------------------

def main():
    log(f"torch {torch.__version__}, onnx {onnx.__version__}, numpy {np.__version__}")
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)

    conv_cases()
    maxpool_cases()
    avgpool_cases()
    adaptive_cases()
    lrn_cases()
    relu_neg_zero = misc_cases()

    names = [c["name"] for c in CASES]
    assert len(names) == len(set(names)), "duplicate case names"
    # torch and onnx.reference agree on every shared case except even-size LRN
    for c in CASES:
        d = c.get("onnx_reference_max_abs_diff")
        if c["source"] == "torch" and d is not None and c["op"] != "LocalResponseNorm":
            assert d < 1e-5, (c["name"], d)
    # ceil-mode windows that start in the padding are dropped
    shapes = {c["name"]: c["shapes"]["out"] for c in CASES}
    assert shapes["maxpool_ceil_window_in_padding_k3s3p1"] == [1, 2, 3, 3]
    assert shapes["maxpool_ceil_window_in_padding_k2s2p1"] == [1, 2, 3, 4]
    assert shapes["avgpool_ceil_window_in_padding_k2s2p1"] == [1, 2, 3, 4]
    assert shapes["maxpool_k3s2_p1_ceil"] == [1, 2, 5, 5]

    text = oracle_env.format_json(CASES)
    (OUT / "manifest.json").write_text(text)
    files = sorted(p.name for p in OUT.iterdir())
    assert files == sorted(list(SAVED) + ["manifest.json"])
    worst = max((c for c in CASES if c["source"] == "torch"), key=lambda c: c["max_abs_diff_vs_f64"])
    log(f"  {len(CASES)} cases; relu(-0.0) bits {relu_neg_zero}; largest float32-vs-float64 "
        f"difference {worst['max_abs_diff_vs_f64']:.3g} ({worst['name']})")
    total = sum(p.stat().st_size for p in OUT.iterdir())
    log(f"Fixtures/ops now holds {total} bytes in {len(files)} files")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Generate the model-level parity fixtures under Fixtures/parity/ with real PyTorch.

Run from the repository root:

    $(../shared/oracle/setup) Fixtures/make_parity_fixtures.py

(`../shared/oracle/setup` creates or reuses the oracle venv and prints its python.)

The script pins torch==2.9.1 and torchvision==0.24.1 and is deterministic: it re-executes itself with
PYTHONHASHSEED=0, ATEN_CPU_CAPABILITY=default and one thread (OMP_NUM_THREADS=1,
torch.set_num_threads(1)), so running it twice on the same machine gives byte-identical files.
(Convolutions run through oneDNN, which picks its own kernels for the CPU, so another machine may
differ in the last bits; the manifest records each output's distance from a float64 forward pass of
the same model, which is the tolerance a float32 implementation should be held to.)
The only non-deterministic number, the full-size forward time, is printed, not written.

Every output is a .npy file (numpy format version 1.0, little-endian '<f4' or '<i8', C order) and
Fixtures/parity/manifest.json describes them all.

Deterministic weight generator (`zoo init` implements the same; any change here breaks parity)
-----------------------------------------------------------------------------------------------
All arithmetic is on unsigned 64-bit integers modulo 2^64.

    GOLDEN = 0x9E3779B97F4A7C15
    mix(z):                                  # splitmix64 finalizer
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB
        return z ^ (z >> 31)
    stream_base(seed, stream) = mix(seed * GOLDEN + stream + 1)
    element i (0-based, C order of the whole tensor):
        h = mix(base + (i + 1) * GOLDEN)
        k = int(h >> 41) - 2**22             # signed integer in [-2^22, 2^22)
        value = float32(k) * 2**(-shift)     # exact in float32

  * Weights: the tensor at position t (0-based) of the model's state-dict order uses stream = t and
        shift = 21 + ((fan_in - 1).bit_length() + 1) // 2          for a weight
        shift = 25 + ((fan_in - 1).bit_length() + 1) // 2          for a bias (16x smaller)
    with fan_in = in_features for a Linear weight and bias, and in_channels / groups * kH * kW for a
    Conv2d weight and bias. (So weights lie in [-2^(1-s), 2^(1-s)) with s = ceil(bit_length(fan_in-1)/2),
    roughly +-2/sqrt(fan_in): a ReLU network keeps most of its signal layer after layer, and the small
    biases leave the logits driven by the input, not by the last bias.) Weight shift examples:
    fan_in 1 -> 21, 363 -> 26, 1200 -> 27, 2304 -> 27, 3456 -> 27, 4096 -> 27, 9216 -> 28.
  * Inputs: a batch [N, 3, H, W] is one tensor with stream = 0xFFFF and shift = 22 (values in
    [-1, 1)), the element rule applied over the whole batch in C order.
  * Checks: generator_check.npy holds the first 64 values of seed 7, stream 3, shift 25; the manifest
    lists more cases (generator_check.cases: small seeds/streams/indices; cases_large: indices up to
    2^64 - 2 and seeds/streams up to 2^64 - 1, which need UInt64 parsing and random access), raw
    mix() test vectors, the shift table, and the sha256 of every full-size weight tensor and of
    every generated input (little-endian float32 bytes, C order).

Fixtures
--------
1. alexnet_small: Fixtures/torch/alexnet_small.pth (torchvision layout, widths 8-16-24-16-16,
   classifier 576-64-64-10) on generator inputs (seed 1): batch 2 at 100x100 with every
   intermediate activation (alexnet_small_act/<module path>.npy, plus flatten.npy), batch 1 at
   224x224 (logits), batch 1 at 256x288 (avgpool 7x8 -> 6x6 and logits).
2. alexnet_paper_small: the 2012 paper / Caffe AlexNet layout (LRN, grouped convolutions, ceil-mode
   pooling, no adaptive pool) at reduced width, weights from the generator (seed 2), saved as
   alexnet_paper_small.pth; inputs seed 3: batch 2 at 227x227 with all activations and softmax,
   batch 1 at 224x224 (logits).
   The 224x224 and 256x288 inputs are not committed (size budget): regenerate them and compare with
   the manifest's input_sha256 (COMMIT_224_INPUTS = True writes the 224x224 ones).
3. alexnet_full_seed0: full-size torchvision AlexNet with generator weights (seed 0) on the generator
   input seed 0, batch 2 at 224x224. Only the logits and top-5 are committed; the manifest has the
   sha256 of the input and of every weight tensor.

Caveat: with these weight scales (uniform, about +-1/sqrt(fan_in)) the signal shrinks at every layer
and the logits are dominated by the last biases: max_abs_logit_change_vs_zero_input in the manifest
says how much the logits depend on the input at all. Tolerances must be well below it.
"""

import os
import sys

import oracle_env  # noqa: E402  (Fixtures/oracle_env.py)

oracle_env.deterministic()

import copy
import hashlib
import json
import math
import shutil
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torchvision

oracle_env.require(torch="2.9.1", torchvision="0.24.1")

torch.set_num_threads(1)
torch.manual_seed(0)

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "parity"
SMALL_PTH = ROOT / "torch" / "alexnet_small.pth"
sys.path.insert(0, str(ROOT))
import make_fixtures  # noqa: E402  (same env, so importing does not re-exec)
# The 224x224 inputs (602 KB each) are regenerated by `zoo init` and checked by sha256; committing
# them would push Fixtures/parity past its ~4 MB budget. Set True to write them anyway.
COMMIT_224_INPUTS = False

# ------------------------------------------------------------------------------------------------
# The generator
# ------------------------------------------------------------------------------------------------

M64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
MIX1 = 0xBF58476D1CE4E5B9
MIX2 = 0x94D049BB133111EB
INPUT_STREAM = 0xFFFF
INPUT_SHIFT = 22


def mix_int(z):
    """splitmix64 finalizer on a Python int (reference implementation)."""
    z &= M64
    z = ((z ^ (z >> 30)) * MIX1) & M64
    z = ((z ^ (z >> 27)) * MIX2) & M64
    return z ^ (z >> 31)


def stream_base(seed, stream):
    return mix_int((seed * GOLDEN + stream + 1) & M64)


def element_int(seed, stream, shift, i):
    """(h, k, value) of element i, with Python ints only (reference implementation)."""
    h = mix_int((stream_base(seed, stream) + (i + 1) * GOLDEN) & M64)
    k = (h >> 41) - (1 << 22)
    value = np.float32(k) * np.float32(2.0 ** -shift)
    assert float(value) == k * 2.0 ** -shift
    return h, k, value


def _mix_np(z):
    z = (z ^ (z >> np.uint64(30))) * np.uint64(MIX1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(MIX2)
    return z ^ (z >> np.uint64(31))


def generate(seed, stream, shift, shape, chunk=1 << 22):
    """float32 array of the given shape (C order), vectorised over uint64 (wraps mod 2^64)."""
    n = math.prod(shape)
    base = np.uint64(stream_base(seed, stream))
    scale = np.float32(2.0 ** -shift)
    out = np.empty(n, dtype=np.float32)
    with np.errstate(over="ignore"):
        for start in range(0, n, chunk):
            end = min(n, start + chunk)
            i1 = np.arange(start + 1, end + 1, dtype=np.uint64)
            h = _mix_np(base + i1 * np.uint64(GOLDEN))
            k = (h >> np.uint64(41)).astype(np.int64) - (1 << 22)
            out[start:end] = k.astype(np.float32) * scale
    # spot-check the vectorised path against the integer reference
    for i in sorted({0, 1, n // 2, n - 1}):
        assert out[i] == element_int(seed, stream, shift, i)[2], (seed, stream, i)
    return out.reshape(shape)


def weight_shift(fan_in, bias=False):
    return (25 if bias else 21) + ((fan_in - 1).bit_length() + 1) // 2


def fan_in_of(module):
    if isinstance(module, nn.Linear):
        return module.in_features
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return module.in_channels // module.groups * kh * kw
    raise TypeError(type(module))


def generate_weights(model, seed):
    """Replace every state-dict tensor by generator values; returns per-tensor records."""
    sd = model.state_dict()
    modules = dict(model.named_modules())
    records = []
    new = {}
    for t, (name, tensor) in enumerate(sd.items()):
        mod_name, _, leaf = name.rpartition(".")
        assert leaf in ("weight", "bias"), name
        fan_in = fan_in_of(modules[mod_name])
        shift = weight_shift(fan_in, bias=(leaf == "bias"))
        arr = generate(seed, t, shift, tuple(tensor.shape))
        new[name] = torch.from_numpy(arr)
        records.append({"name": name, "stream": t, "shape": list(tensor.shape), "fan_in": fan_in,
                        "shift": shift, "sha256": sha256_f32(arr),
                        "first": [float(v) for v in arr.reshape(-1)[:4]],
                        "last": float(arr.reshape(-1)[-1])})
    model.load_state_dict(new, strict=True)
    return records


def generate_input(seed, n, h, w):
    return generate(seed, INPUT_STREAM, INPUT_SHIFT, (n, 3, h, w))


def sha256_f32(arr):
    return hashlib.sha256(np.ascontiguousarray(arr, dtype="<f4").tobytes()).hexdigest()


# ------------------------------------------------------------------------------------------------
# Output helpers
# ------------------------------------------------------------------------------------------------

FILES = []  # every file written, relative to OUT


def save_npy(rel, arr):
    arr = np.asarray(arr)
    if arr.dtype.kind == "f":
        arr = np.ascontiguousarray(arr, dtype="<f4")
    elif arr.dtype.kind in "iu":
        arr = np.ascontiguousarray(arr, dtype="<i8")
    else:
        raise TypeError(arr.dtype)
    path = OUT / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, arr, allow_pickle=False)
    assert path.read_bytes()[:8] == b"\x93NUMPY\x01\x00", f"{rel}: not npy format 1.0"
    FILES.append(rel)
    return {"file": rel, "dtype": arr.dtype.str, "shape": list(arr.shape)}


def np32(t):
    return t.detach().contiguous().numpy().astype(np.float32)


def max_abs(a):
    return float(np.max(np.abs(a)))


def diff64(out32, out64):
    """max |float32 torch - float64 torch| and the relative version (scaled by max |float64|)."""
    d = float(np.max(np.abs(out32.astype(np.float64) - out64)))
    scale = float(np.max(np.abs(out64)))
    return {"max_abs_diff_vs_f64": d, "rel_diff_vs_f64": d / scale if scale else 0.0}


def input_sensitivity(model, x, logits):
    """max |logits(x) - logits(zero input)|: how much of the logits depends on the input at all."""
    with torch.no_grad():
        l0 = model(torch.zeros((1,) + tuple(x.shape[1:])))
    return float((logits - l0).abs().max())


def record_activations(model, names):
    """Forward hooks on the named modules; returns (dict name -> float32 copy, remove fn, order).
    Copies, because torchvision AlexNet's ReLUs are inplace and overwrite the previous output."""
    acts, order, handles = {}, [], []
    modules = dict(model.named_modules())
    for name in names:
        def hook(mod, inp, out, name=name):
            assert name not in acts, f"{name} ran twice"
            acts[name] = out.detach().clone()
            order.append(name)
        handles.append(modules[name].register_forward_hook(hook))

    def remove():
        for h in handles:
            h.remove()
    return acts, order, remove


def child_paths(model, parents):
    out = []
    for p in parents:
        mod = dict(model.named_modules())[p]
        kids = list(mod.named_children())
        out += [f"{p}.{k}" for k, _ in kids] if kids else [p]
    return out


def module_desc(m):
    """A one-line constructor-like description of a leaf module."""
    return repr(m)


# ------------------------------------------------------------------------------------------------
# Models
# ------------------------------------------------------------------------------------------------

def alexnet_small():
    """Fixtures/torch/alexnet_small.pth in make_fixtures.py's layout, with its saved weights."""
    rng = torch.get_rng_state()  # make_fixtures seeds torch's generator; keep this script's sequence
    m = make_fixtures.alexnet_small()
    torch.set_rng_state(rng)
    sd = torch.load(SMALL_PTH, weights_only=True)
    m.load_state_dict(sd, strict=True)
    m.eval()
    return m


class PaperAlexNet(nn.Module):
    """AlexNet as in Krizhevsky et al. 2012 / Caffe's bvlc_alexnet (LRN after conv1 and conv2, two
    groups in conv2/4/5, overlapping 3x2 max pooling with Caffe's ceil rounding, no adaptive pool).
    Full size: widths=(96, 256, 384, 384, 256), hidden=4096, classes=1000."""

    def __init__(self, widths=(96, 256, 384, 384, 256), hidden=4096, classes=1000):
        super().__init__()
        c1, c2, c3, c4, c5 = widths
        self.features = nn.Sequential(
            nn.Conv2d(3, c1, kernel_size=11, stride=4),
            nn.ReLU(inplace=True),
            nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            nn.Conv2d(c1, c2, kernel_size=5, padding=2, groups=2),
            nn.ReLU(inplace=True),
            nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            nn.Conv2d(c2, c3, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c3, c4, kernel_size=3, padding=1, groups=2),
            nn.ReLU(inplace=True),
            nn.Conv2d(c4, c5, kernel_size=3, padding=1, groups=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
        )
        self.classifier = nn.Sequential(
            nn.Dropout(p=0.5),
            nn.Linear(c5 * 6 * 6, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(p=0.5),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, classes),
        )

    def forward(self, x):
        x = self.features(x)
        assert x.shape[2:] == (6, 6), f"paper AlexNet needs a 6x6 final map, got {tuple(x.shape)}"
        x = torch.flatten(x, 1)
        return self.classifier(x)


def forward_with_acts(model, x, parents, flatten_after):
    """Runs model on x, capturing every leaf under `parents` and the flattened classifier input.
    Returns (logits, [(path, tensor)] in execution order)."""
    names = child_paths(model, parents)
    acts, order, remove = record_activations(model, names)
    flat = {}

    def pre(mod, args):
        flat["x"] = args[0].detach().clone()
    h = model.classifier.register_forward_pre_hook(pre)
    try:
        with torch.no_grad():
            logits = model(x)
    finally:
        remove()
        h.remove()
    assert sorted(order) == sorted(names), (order, names)
    seq = [(n, acts[n]) for n in order]
    # flatten sits between `flatten_after` and the classifier
    ref = torch.flatten(acts[flatten_after], 1)
    assert torch.equal(ref, flat["x"])
    i = order.index(flatten_after) + 1
    seq.insert(i, ("flatten", flat["x"]))
    return logits, seq


def f64_reference(model, x):
    m64 = copy.deepcopy(model).double()
    with torch.no_grad():
        return m64(x.double()).numpy()


# ------------------------------------------------------------------------------------------------
# Generator checks
# ------------------------------------------------------------------------------------------------

def generator_checks():
    check = generate(7, 3, 25, (64,))
    file = save_npy("generator_check.npy", check)
    ref = np.array([element_int(7, 3, 25, i)[2] for i in range(64)], dtype=np.float32)
    assert np.array_equal(check, ref)

    def case(seed, stream, shift, index):
        h, k, v = element_int(seed, stream, shift, index)
        return {"seed": seed, "stream": stream, "shift": shift, "index": index,
                "base_hex": f"{stream_base(seed, stream):016x}", "h_hex": f"{h:016x}", "k": k,
                "value": float(v), "value_bits_hex": f"{int(np.float32(v).view(np.uint32)):08x}"}

    i64max = (1 << 63) - 1
    # Small cases: seed, stream and index fit in a signed 64-bit integer and index < 2^19, so a test
    # may simply generate index + 1 values. (seed * GOLDEN and (i + 1) * GOLDEN already wrap for
    # seed >= 2 and i >= 1.)
    cases = [
        case(7, 3, 25, 0), case(7, 3, 25, 63),
        case(0, 0, 22, 0), case(0, 0, 27, 1),
        case(0, INPUT_STREAM, INPUT_SHIFT, 0), case(0, INPUT_STREAM, INPUT_SHIFT, 301055),
        case(1, INPUT_STREAM, INPUT_SHIFT, 0), case(3, INPUT_STREAM, INPUT_SHIFT, 309173),
        case(i64max, INPUT_STREAM, INPUT_SHIFT, 5), case(9, i64max, 26, 2),
    ]
    assert all(max(c["seed"], c["stream"]) <= i64max and c["index"] < 1 << 19 for c in cases)
    # Large cases: need random access to element i and unsigned 64-bit parsing of the JSON numbers.
    cases_large = [
        case(0, 10, 29, 4096 * 9216 - 1),           # last element of full classifier.1.weight
        case(2, 5, 30, 1 << 32), case(2, 5, 30, (1 << 40) + 12345),
        case(M64, 0, 22, 0),                        # seed = 2^64 - 1
        case(12345, M64, 22, 7),                    # stream + 1 wraps to 0
        case(M64, M64, 22, M64 - 1),                # i + 1 = 2^64 - 1
    ]
    mixes = [{"z_hex": f"{z:016x}", "mix_hex": f"{mix_int(z):016x}"}
             for z in (0, 1, GOLDEN, M64, 0x0123456789ABCDEF)]
    shifts = {str(f): weight_shift(f) for f in
              (1, 2, 3, 4, 5, 8, 9, 16, 17, 64, 200, 363, 576, 1152, 1200, 1728, 2304, 2400, 3456,
               4096, 9216)}
    return {
        "file": file["file"], "seed": 7, "stream": 3, "shift": 25, "count": 64,
        "first8": [float(v) for v in check[:8]],
        "cases": cases, "cases_large": cases_large, "mix": mixes,
        "weight_shift_by_fan_in": shifts,
        "notes": "cases: seed, stream, index fit in Int64 and index < 2^19 (generating index + 1 "
                 "values is fine). cases_large: indices up to 2^64 - 2 and seeds/streams up to "
                 "2^64 - 1 (parse as UInt64; compute element i directly, do not generate index + 1 "
                 "values). h_hex/base_hex are the raw uint64 values (hex, 16 digits); value is exact "
                 "(k * 2^-shift); value_bits_hex is its float32 bit pattern. mix: splitmix64 finalizer "
                 "test vectors. weight_shift_by_fan_in: 21 + ((fan_in - 1).bit_length() + 1) // 2 (biases: +4).",
    }


# ------------------------------------------------------------------------------------------------
# Fixtures
# ------------------------------------------------------------------------------------------------

def save_acts(prefix, seq, model, x, parents, flatten_after):
    """Saves the activations; each entry also gets max |value| and the distance from the same
    activation in a float64 forward pass."""
    modules = dict(model.named_modules())
    _, seq64 = forward_with_acts(copy.deepcopy(model).double(), x.double(), parents, flatten_after)
    assert [n for n, _ in seq64] == [n for n, _ in seq]
    out = []
    for (name, t), (_, t64) in zip(seq, seq64):
        a = np32(t)
        info = save_npy(f"{prefix}/{name}.npy", a)
        info["module"] = name
        info["layer"] = ("torch.flatten(x, 1)" if name == "flatten" else module_desc(modules[name]))
        info["max_abs"] = max_abs(a)
        info["max_abs_diff_vs_f64"] = float(np.max(np.abs(a.astype(np.float64) - t64.numpy())))
        out.append(info)
    return out


def alexnet_small_fixture():
    m = alexnet_small()
    entry = {"model": "alexnet_small", "weights": "Fixtures/torch/alexnet_small.pth",
             "architecture": "torchvision.models.alexnet layout with features.0/3/6/8/10 and "
                             "classifier.1/4/6 replaced: conv widths 8-16-24-16-16, classifier "
                             "576-64-64-10",
             "modules": [f"{n}: {module_desc(mod)}" for n, mod in m.named_modules()
                         if n and not list(mod.children())],
             "runs": []}

    # batch 2 at 100x100, all activations
    x = generate_input(1, 2, 100, 100)
    xt = torch.from_numpy(x)
    logits, seq = forward_with_acts(m, xt, ["features", "avgpool", "classifier"], "avgpool")
    assert torch.equal(seq[-1][1], logits)
    lg = np32(logits)
    feat = dict(seq)["features.12"]
    assert feat.shape == (2, 16, 2, 2), feat.shape
    run = {"name": "100x100", "input": save_npy("alexnet_small_input.npy", x),
           "input_generator": {"seed": 1, "stream": INPUT_STREAM, "shift": INPUT_SHIFT},
           "input_sha256": sha256_f32(x),
           "logits": save_npy("alexnet_small_logits.npy", lg),
           "max_abs_logit": max_abs(lg), **diff64(lg, f64_reference(m, xt)),
           "max_abs_logit_change_vs_zero_input": input_sensitivity(m, xt, logits),
           "activations_dir": "alexnet_small_act",
           "activations": save_acts("alexnet_small_act", seq, m, xt,
                                    ["features", "avgpool", "classifier"], "avgpool"),
           "notes": "Activations in execution order, captured with forward hooks in eval mode "
                    "(cloned: the ReLUs are inplace). The final feature map is 2x2, so avgpool "
                    "upsamples 2x2 -> 6x6 (each input cell is copied to a 3x3 block). Dropout "
                    "(classifier.0, classifier.3) is the identity in eval mode."}
    entry["runs"].append(run)

    # batch 1 at 224x224
    x = generate_input(1, 1, 224, 224)
    xt = torch.from_numpy(x)
    with torch.no_grad():
        logits = m(xt)
    lg = np32(logits)
    entry["runs"].append({
        "name": "224x224",
        "input_generator": {"seed": 1, "stream": INPUT_STREAM, "shift": INPUT_SHIFT,
                            "shape": [1, 3, 224, 224]},
        "input_sha256": sha256_f32(x), "input_first": [float(v) for v in x.reshape(-1)[:4]],
        "input_committed": COMMIT_224_INPUTS,
        **({"input": save_npy("alexnet_small_224_input.npy", x)} if COMMIT_224_INPUTS else {}),
        "logits": save_npy("alexnet_small_224_logits.npy", lg),
        "max_abs_logit": max_abs(lg), **diff64(lg, f64_reference(m, xt)),
        "max_abs_logit_change_vs_zero_input": input_sensitivity(m, xt, logits),
        "notes": "Final feature map 6x6: avgpool is the identity."})

    # batch 1 at 256x288: avgpool 7x8 -> 6x6 (non-divisible downsampling); input not committed
    x = generate_input(1, 1, 256, 288)
    xt = torch.from_numpy(x)
    acts, order, remove = record_activations(m, ["features", "avgpool"])
    with torch.no_grad():
        logits = m(xt)
    lg = np32(logits)
    remove()
    assert acts["features"].shape == (1, 16, 7, 8), acts["features"].shape
    entry["runs"].append({
        "name": "256x288",
        "input_generator": {"seed": 1, "stream": INPUT_STREAM, "shift": INPUT_SHIFT,
                            "shape": [1, 3, 256, 288]},
        "input_sha256": sha256_f32(x), "input_first": [float(v) for v in x.reshape(-1)[:4]],
        "input_committed": False,
        "features": save_npy("alexnet_small_256x288_features.npy", np32(acts["features"])),
        "avgpool": save_npy("alexnet_small_256x288_avgpool.npy", np32(acts["avgpool"])),
        "logits": save_npy("alexnet_small_256x288_logits.npy", lg),
        "max_abs_logit": max_abs(lg), **diff64(lg, f64_reference(m, xt)),
        "max_abs_logit_change_vs_zero_input": input_sensitivity(m, xt, logits),
        "notes": "Non-square input (256 is the smallest height giving a 7-row final map); final "
                 "feature map 7x8, so avgpool downsamples 7x8 -> 6x6 with overlapping, unequal "
                 "windows (start floor(i*in/out), end ceil((i+1)*in/out)). features = output of "
                 "features.12, avgpool = output of avgpool. The input is not committed: generate it "
                 "(seed 1) and check input_sha256."})
    return entry


def alexnet_paper_small_fixture():
    m = PaperAlexNet(widths=(16, 32, 48, 48, 32), hidden=64, classes=10)
    m.eval()
    records = generate_weights(m, seed=2)
    sd = m.state_dict()
    assert [r["name"] for r in records] == list(sd)
    torch.save(sd, OUT / "alexnet_paper_small.pth")
    FILES.append("alexnet_paper_small.pth")
    # the saved file loads back to the generator values
    back = torch.load(OUT / "alexnet_paper_small.pth", weights_only=True)
    assert list(back) == list(sd) and all(torch.equal(back[k], sd[k]) for k in sd)

    entry = {"model": "alexnet_paper_small", "weights": "alexnet_paper_small.pth",
             "weights_generator": {"seed": 2, "streams": "state-dict position 0..15",
                                   "shift": "weights 21 + ((fan_in - 1).bit_length() + 1) // 2, biases 25 + (the same)"},
             "architecture": "Krizhevsky et al. 2012 / Caffe bvlc_alexnet layout at reduced width "
                             "(conv 16-32-48-48-32, classifier 1152-64-64-10; full size is "
                             "96-256-384-384-256, 9216-4096-4096-1000). No adaptive pool: the "
                             "ceil-mode pools give 6x6 for both 227x227 and 224x224 inputs.",
             "modules": [f"{n}: {module_desc(mod)}" for n, mod in m.named_modules()
                         if n and not list(mod.children())],
             "forward": "features -> torch.flatten(x, 1) -> classifier",
             "tensors": records, "runs": []}

    x = generate_input(3, 2, 227, 227)
    xt = torch.from_numpy(x)
    logits, seq = forward_with_acts(m, xt, ["features", "classifier"], "features.14")
    assert torch.equal(seq[-1][1], logits)
    shapes = {n: tuple(t.shape) for n, t in seq}
    assert shapes["features.0"] == (2, 16, 55, 55)
    assert shapes["features.3"] == (2, 16, 27, 27)
    assert shapes["features.7"] == (2, 32, 13, 13)
    assert shapes["features.14"] == (2, 32, 6, 6)
    lg = np32(logits)
    prob = np32(torch.softmax(logits, dim=1))
    l64 = f64_reference(m, xt)
    p64 = torch.softmax(torch.from_numpy(l64), dim=1).numpy()
    entry["runs"].append({
        "name": "227x227", "input": save_npy("alexnet_paper_small_input.npy", x),
        "input_generator": {"seed": 3, "stream": INPUT_STREAM, "shift": INPUT_SHIFT},
        "input_sha256": sha256_f32(x),
        "logits": save_npy("alexnet_paper_small_logits.npy", lg),
        "max_abs_logit": max_abs(lg), **diff64(lg, l64),
        "max_abs_logit_change_vs_zero_input": input_sensitivity(m, xt, logits),
        "prob": save_npy("alexnet_paper_small_prob.npy", prob),
        "prob_max_abs_diff_vs_f64": float(np.max(np.abs(prob - p64))),
        "activations_dir": "alexnet_paper_small_act",
        "activations": save_acts("alexnet_paper_small_act", seq, m, xt,
                                 ["features", "classifier"], "features.14"),
        "notes": "Spatial sizes 227 -> conv 55 -> pool 27 -> 27 -> pool 13 -> 13 -> pool 6 (ceil "
                 "mode changes nothing here: (55-3)/2, (27-3)/2, (13-3)/2 are exact). prob = "
                 "torch.softmax(logits, dim=1)."})

    x = generate_input(3, 1, 224, 224)
    xt = torch.from_numpy(x)
    acts, order, remove = record_activations(m, ["features.0", "features.3", "features.7",
                                                 "features.14"])
    with torch.no_grad():
        logits = m(xt)
    lg = np32(logits)
    remove()
    sizes = [tuple(acts[n].shape[2:]) for n in ("features.0", "features.3", "features.7",
                                                "features.14")]
    assert sizes == [(54, 54), (27, 27), (13, 13), (6, 6)], sizes
    # floor mode would give 26 after the first pool and 5x5 at the end
    assert (54 - 3) // 2 + 1 == 26 and -(-(54 - 3) // 2) + 1 == 27
    entry["runs"].append({
        "name": "224x224",
        "input_generator": {"seed": 3, "stream": INPUT_STREAM, "shift": INPUT_SHIFT,
                            "shape": [1, 3, 224, 224]},
        "input_sha256": sha256_f32(x), "input_first": [float(v) for v in x.reshape(-1)[:4]],
        "input_committed": COMMIT_224_INPUTS,
        **({"input": save_npy("alexnet_paper_small_224_input.npy", x)} if COMMIT_224_INPUTS
           else {}),
        "logits": save_npy("alexnet_paper_small_224_logits.npy", lg),
        "max_abs_logit": max_abs(lg), **diff64(lg, f64_reference(m, xt)),
        "max_abs_logit_change_vs_zero_input": input_sensitivity(m, xt, logits),
        "spatial_sizes": {"features.0": [54, 54], "features.3": [27, 27], "features.7": [13, 13],
                          "features.14": [6, 6]},
        "notes": "224 -> conv 54 -> ceil-mode pool 27 (floor mode would give 26; the last window "
                 "starts at 52 and covers 52..53 only) -> 13 -> 6."})
    return entry


def alexnet_full_fixture():
    m = torchvision.models.alexnet(weights=None)
    m.eval()
    t0 = time.perf_counter()
    records = generate_weights(m, seed=0)
    gen_time = time.perf_counter() - t0
    names = [r["name"] for r in records]
    assert names == ["features.0.weight", "features.0.bias", "features.3.weight",
                     "features.3.bias", "features.6.weight", "features.6.bias",
                     "features.8.weight", "features.8.bias", "features.10.weight",
                     "features.10.bias", "classifier.1.weight", "classifier.1.bias",
                     "classifier.4.weight", "classifier.4.bias", "classifier.6.weight",
                     "classifier.6.bias"], names
    x = generate_input(0, 2, 224, 224)
    xt = torch.from_numpy(x)
    with torch.no_grad():
        m(xt)  # warm-up
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            logits = m(xt)
            times.append(time.perf_counter() - t0)
    lg = np32(logits)
    l64 = f64_reference(m, xt)
    top = torch.topk(logits, 6, dim=1)
    top5 = top.indices[:, :5].numpy().astype(np.int64)
    vals = top.values.numpy()
    assert np.all(vals[:, :-1] > vals[:, 1:]), "ties in the top 6"
    top5_64 = np.argsort(-l64, axis=1, kind="stable")[:, :5]
    assert np.array_equal(top5, top5_64), "float32 and float64 top-5 differ"
    entry = {
        "model": "alexnet_full_seed0",
        "architecture": "torchvision.models.alexnet(weights=None), every state-dict tensor "
                        "replaced by generator values (seed 0, stream = state-dict position)",
        "weights_generator": {"seed": 0, "streams": "state-dict position 0..15",
                              "shift": "weights 21 + ((fan_in - 1).bit_length() + 1) // 2, biases 25 + (the same)"},
        "tensors": records,
        "input_generator": {"seed": 0, "stream": INPUT_STREAM, "shift": INPUT_SHIFT,
                            "shape": [2, 3, 224, 224]},
        "input_sha256": sha256_f32(x),
        "input_first": [float(v) for v in x.reshape(-1)[:4]],
        "input_committed": False,
        "logits": save_npy("alexnet_full_seed0_logits.npy", lg),
        "top5": save_npy("alexnet_full_seed0_top5.npy", top5),
        "top5_logits": [[float(v) for v in row[:5]] for row in vals],
        "top5_margin": [float(row[4] - row[5]) for row in vals],
        "max_abs_logit": max_abs(lg), **diff64(lg, l64),
        "max_abs_logit_change_vs_zero_input": input_sensitivity(m, xt, logits),
        "torch_forward_time": "printed by the script (not written: it would make the manifest "
                              "non-deterministic)",
        "notes": "sha256 is over little-endian float32 bytes in C order. top5: torch.topk indices, "
                 "descending logit; top5_margin = 5th minus 6th largest logit per row. The float64 "
                 "forward of the same weights gives the same top-5.",
    }
    print(f"  full-size AlexNet: weights generated in {gen_time:.2f} s; torch forward (batch 2, "
          f"224x224, 1 thread, ATEN_CPU_CAPABILITY=default): "
          f"{', '.join(f'{t * 1000:.1f}' for t in times)} ms; max|logit| {max_abs(lg):.6g}; "
          f"top-5 row 0 {top5[0].tolist()}, row 1 {top5[1].tolist()}")
    return entry


# ------------------------------------------------------------------------------------------------
# Main
# ------------------------------------------------------------------------------------------------

def main():
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, numpy {np.__version__}")
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)

    gen = generator_checks()
    print(f"  generator_check first 8: {gen['first8']}")
    small = alexnet_small_fixture()
    paper = alexnet_paper_small_fixture()
    full = alexnet_full_fixture()

    manifest = {
        "generated_by": "Fixtures/make_parity_fixtures.py",
        "versions": {"torch": torch.__version__.split("+")[0],
                     "torchvision": torchvision.__version__.split("+")[0]},
        "environment": {k: v for k, v in sorted(oracle_env.DETERMINISTIC_ENV.items())} | {"torch_num_threads": 1},
        "npy": "numpy .npy format 1.0, little-endian, C order; '<f4' float32 or '<i8' int64",
        "generator": {
            "golden": "0x9e3779b97f4a7c15", "mix_multipliers": ["0xbf58476d1ce4e5b9",
                                                               "0x94d049bb133111eb"],
            "mix": "z ^= z >> 30; z *= M1; z ^= z >> 27; z *= M2; z ^= z >> 31 (mod 2^64)",
            "stream_base": "mix(seed * GOLDEN + stream + 1)",
            "element": "h = mix(base + (i + 1) * GOLDEN); k = (h >> 41) - 2^22; "
                       "value = float32(k) * 2^-shift; i = 0-based C-order index",
            "weights": "stream = state-dict position t; shift = 21 (weights) or 25 (biases) + ((fan_in - 1).bit_length() "
                       "+ 1) // 2; fan_in = in_features (Linear weight and bias) or in_channels / "
                       "groups * kH * kW (Conv2d weight and bias)",
            "inputs": f"[N, 3, H, W] as one tensor, stream = {INPUT_STREAM} (0xFFFF), "
                      f"shift = {INPUT_SHIFT}",
        },
        "generator_check": gen,
        "fixtures": [small, paper, full],
        "notes": "max_abs_diff_vs_f64: max |torch float32 output - torch float64 forward of the same "
                 "weights and input|; rel_diff_vs_f64 divides it by max |float64 output|. Use them to "
                 "pick tolerances. max_abs_logit_change_vs_zero_input = max |logits(x) - "
                 "logits(zeros)|: the generator's weights shrink the signal layer by layer, so the "
                 "logits are mostly the last biases and a useful logits tolerance must be far below "
                 "this number (the intermediate activations are the stronger check). Activation "
                 "files are named by module path; 'flatten' is torch.flatten(x, 1) before the "
                 "classifier. Runs with input_committed false: regenerate the input and compare its "
                 "sha256 with input_sha256.",
    }
    text = oracle_env.format_json(manifest)
    (OUT / "manifest.json").write_text(text)
    FILES.append("manifest.json")
    on_disk = sorted(str(p.relative_to(OUT)) for p in OUT.rglob("*") if p.is_file())
    assert on_disk == sorted(FILES), set(on_disk) ^ set(FILES)
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"Fixtures/parity now holds {total} bytes in {len(on_disk)} files")


if __name__ == "__main__":
    main()

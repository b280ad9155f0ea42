#!/usr/bin/env python3
"""Generate the PyTorch checkpoint fixtures under Fixtures/torch/ with real PyTorch.

Run from the repository root:

    $(../shared/oracle/setup) Fixtures/make_fixtures.py

(`../shared/oracle/setup` creates or reuses the oracle venv and prints its python.)

The script pins torch==2.9.1 and torchvision==0.24.1 and is deterministic: it re-executes itself with
PYTHONHASHSEED=0 (set order inside pickles), ATEN_CPU_CAPABILITY=default (torch's f32->bf16 NaN
result and vectorised arithmetic differ between CPU capabilities) and one thread, seeds every random
generator, and never runs a convolution (BatchNorm statistics and Adam gradients are set by exact
arithmetic). Running it twice gives byte-identical files.

For every checkpoint NAME.pth it writes NAME.expected.json and NAME.expected.bin, describing exactly
what torch.load(NAME.pth, weights_only=False) returns:
  * expected.bin: the bytes of every tensor, in walk order, in C order, little-endian host bytes
    (t.detach().contiguous().reshape(-1).view(torch.uint8)).
  * expected.json: {"file", "format": "zip"|"legacy"|"tar", "tensors": [{path, dtype, shape, stride,
    storage_offset, storage_group, storage_numel, is_parameter, requires_grad, bin_offset, nbytes}],
    "others": {path: JSON value of every non-tensor leaf}, "notes"}.
The object is walked in iteration order (dicts in insertion order, lists/tuples by index); path parts
are joined with "."; int keys and indices are written in decimal. Non-tensor leaves: bool/int/float/str/
None as JSON, numpy scalars as plain JSON numbers, bytes as {"bytes_hex": ...}, sets as
{"set": [sorted elements]}, empty dicts as {}, empty lists/tuples as []. storage_group numbers distinct
storages (by untyped_storage().data_ptr(); zero-byte storages each get their own group) in first-seen
order; storage_numel is the storage size in elements of the tensor's dtype.

Also written: conversion tables (f16/bf16 <-> f32) and Fixtures/torch/bad/ (files a reader must refuse,
described in bad/README.md). The two bad files that would run code (os_system.pth, builtins_eval.pth)
are never loaded by this script.
"""

import os
import sys

import oracle_env  # noqa: E402  (Fixtures/oracle_env.py)

oracle_env.deterministic()

import collections
import copy
import io
import json
import math
import pickle
import pickletools
import struct
import subprocess
import tarfile
import tempfile
import zipfile
from pathlib import Path

import warnings

import numpy as np
import torch
import torch.nn as nn
import torchvision

oracle_env.require(torch="2.9.1", torchvision="0.24.1")

torch.set_num_threads(1)
warnings.filterwarnings("ignore", message="TypedStorage is deprecated")

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "torch"
BAD = OUT / "bad"

DTYPE_NAMES = {
    torch.float32: "f32", torch.float64: "f64", torch.float16: "f16", torch.bfloat16: "bf16",
    torch.int64: "i64", torch.int32: "i32", torch.int16: "i16", torch.int8: "i8",
    torch.uint8: "u8", torch.bool: "bool",
}
STORAGE_CLASS = {
    torch.float32: "FloatStorage", torch.float64: "DoubleStorage", torch.float16: "HalfStorage",
    torch.bfloat16: "BFloat16Storage", torch.int64: "LongStorage", torch.int32: "IntStorage",
    torch.int16: "ShortStorage", torch.int8: "CharStorage", torch.uint8: "ByteStorage",
    torch.bool: "BoolStorage",
}
TENSOR_CLASS = {k: v.replace("Storage", "Tensor") for k, v in STORAGE_CLASS.items()}

LOG = []


def log(msg):
    print(msg)
    LOG.append(msg)


# ------------------------------------------------------------------------------------------------
# Describing what torch.load returns
# ------------------------------------------------------------------------------------------------

def tensor_bytes(t):
    return t.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def encode_leaf(v):
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        assert math.isfinite(v), "non-finite float leaf has no JSON encoding in the contract"
        return v
    if isinstance(v, np.generic):
        return encode_leaf(v.item())
    if isinstance(v, (bytes, bytearray)):
        return {"bytes_hex": bytes(v).hex()}
    if isinstance(v, (set, frozenset)):
        items = [encode_leaf(x) for x in v]
        return {"set": sorted(items, key=lambda x: json.dumps(x, sort_keys=True))}
    raise TypeError(f"no JSON encoding for leaf of type {type(v)}")


def describe(obj):
    """(json-able description without file/format/notes, expected.bin bytes)."""
    tensors, others, blob = [], {}, bytearray()
    groups = {}

    def join(path, key):
        if isinstance(key, bool) or not isinstance(key, (str, int)):
            raise TypeError(f"unsupported key {key!r} at {path!r}")
        key = str(key)
        return key if path == "" else f"{path}.{key}"

    def walk(o, path):
        if isinstance(o, torch.Tensor):
            st = o.untyped_storage()
            gkey = st.data_ptr() if st.nbytes() > 0 else ("empty", st._cdata)
            group = groups.setdefault(gkey, len(groups))
            data = tensor_bytes(o)
            assert len(data) == o.numel() * o.element_size()
            tensors.append({
                "path": path, "dtype": DTYPE_NAMES[o.dtype], "shape": list(o.shape),
                "stride": list(o.stride()), "storage_offset": o.storage_offset(),
                "storage_group": group, "storage_numel": st.nbytes() // o.element_size(),
                "is_parameter": isinstance(o, nn.Parameter), "requires_grad": o.requires_grad,
                "bin_offset": len(blob), "nbytes": len(data),
            })
            blob.extend(data)
        elif isinstance(o, dict):
            if not o:
                others[path] = {}
            for k, v in o.items():
                walk(v, join(path, k))
        elif isinstance(o, (list, tuple)):
            if not o:
                others[path] = []
            for i, v in enumerate(o):
                walk(v, join(path, i))
        else:
            others[path] = encode_leaf(o)

    walk(obj, "")
    return {"tensors": tensors, "others": others}, bytes(blob)


def format_json(doc):
    """The expected JSON with one tensor and one leaf per line."""
    one = lambda v: json.dumps(v, separators=(", ", ": "))  # noqa: E731
    lines = ["{", f' "file": {one(doc["file"])},', f' "format": {one(doc["format"])},']
    items = [f"  {one(t)}" for t in doc["tensors"]]
    lines += [' "tensors": [', ",\n".join(items), " ],"] if items else [' "tensors": [],']
    items = [f"  {one(k)}: {one(v)}" for k, v in doc["others"].items()]
    lines += [' "others": {', ",\n".join(items), " },"] if items else [' "others": {},']
    lines += [f' "notes": {one(doc["notes"])}', "}"]
    text = "\n".join(lines) + "\n"
    assert json.loads(text) == doc
    return text


def write_expected(name, fmt, notes):
    """Load OUT/name with torch.load(weights_only=False) and write the expected files."""
    path = OUT / name
    obj = torch.load(path, weights_only=False)
    desc, blob = describe(obj)
    stem = name[: -len(".pth")]
    doc = {"file": name, "format": fmt, "tensors": desc["tensors"], "others": desc["others"],
           "notes": notes}
    (OUT / f"{stem}.expected.json").write_text(format_json(doc))
    (OUT / f"{stem}.expected.bin").write_bytes(blob)
    check_weights_only(name, desc, blob)
    return obj, desc, blob


def numpy_safe_globals():
    import numpy._core.multiarray
    return [numpy._core.multiarray.scalar, np.dtype, type(np.dtype(np.float64))]


def check_weights_only(name, desc, blob):
    """Record whether torch.load(weights_only=True) gives the same thing (it must, except tar)."""
    path = OUT / name
    try:
        obj = torch.load(path, weights_only=True)
        how = "weights_only=True: loads"
    except Exception as e:  # noqa: BLE001 - we record torch's refusal
        first = str(e).split("\n")
        msg = next((l.strip() for l in first if "WeightsUnpickler error" in l or "Cannot use" in l),
                   first[0])
        try:
            with torch.serialization.safe_globals(numpy_safe_globals()):
                obj = torch.load(path, weights_only=True)
            how = f"weights_only=True: refused ({msg}); loads with numpy safe_globals"
        except Exception:  # noqa: BLE001
            log(f"  {name}: weights_only=True refused: {msg}")
            return
    d2, b2 = describe(obj)
    same = d2 == desc and b2 == blob
    log(f"  {name}: {how}; same result as weights_only=False: {same}")
    assert same, name


# ------------------------------------------------------------------------------------------------
# Zip writing helpers (torch's own writer, records in torch.save's order)
# ------------------------------------------------------------------------------------------------

def write_torch_zip(path, data_pkl, records, byteorder="little"):
    """records: list of (key, bytes) for data/<key>, written in the given order."""
    w = torch._C.PyTorchFileWriter(str(path), True, 64)
    w.write_record("data.pkl", data_pkl, len(data_pkl))
    w.write_record(".format_version", "1", 1)
    w.write_record(".storage_alignment", "64", 2)
    w.write_record("byteorder", byteorder, len(byteorder))
    for key, data in records:
        w.write_record(f"data/{key}", data, len(data))
    w.write_end_of_file()


def read_torch_zip(path):
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        prefix = names[0].split("/")[0]
        return prefix, {n[len(prefix) + 1:]: z.read(n) for n in names}


class _StorageScan(pickle.Unpickler):
    """Unpickles OUR OWN torch.save output, recording storage ids (key -> (dtype, numel))."""

    def __init__(self, f, seen):
        super().__init__(f)
        self.seen = seen

    def persistent_load(self, pid):
        typename, cls, key, _location, numel = pid[:5]
        assert typename == "storage"
        dtype = cls.dtype
        self.seen.setdefault(key, (dtype, numel))
        return torch.storage.TypedStorage(numel, dtype=dtype, _internal=True)


def scan_storages(pickle_bytes):
    seen = {}
    _StorageScan(io.BytesIO(pickle_bytes), seen).load()
    return seen


def byteswap(data, dtype):
    size = torch.empty(0, dtype=dtype).element_size()
    if size == 1:
        return data
    return np.frombuffer(data, dtype=f"<u{size}").byteswap().tobytes()


# ------------------------------------------------------------------------------------------------
# Legacy format: torch.save(_use_new_zipfile_serialization=False), then deterministic storage keys
# ------------------------------------------------------------------------------------------------

def pickle_end(data, pos):
    for op, _arg, p in pickletools.genops(io.BytesIO(data[pos:])):
        if op.name == "STOP":
            return pos + p + 1
    raise ValueError("no STOP")


def save_legacy(obj, path):
    """torch's legacy writer names storages str(storage._cdata) (a heap address) and writes them
    sorted by that string, so two runs differ. Rename the keys to fixed 15-digit numbers in
    first-use order (so sorted order == first-use order) and reorder the data blocks to match;
    this is exactly the file torch would write if the addresses had been those numbers."""
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=False)
    data = buf.getvalue()
    ends = [0]
    for _ in range(5):
        ends.append(pickle_end(data, ends[-1]))
    head = data[: ends[3]]
    objpkl = data[ends[3]: ends[4]]
    keys = pickle.loads(data[ends[4]: ends[5]])
    storages = scan_storages(objpkl)  # first-use order
    assert sorted(storages) == sorted(keys)
    newkey = {k: str(140000000000000 + 4096 * i) for i, k in enumerate(storages)}
    # raw data blocks, in the original (sorted) order
    blocks, pos = {}, ends[5]
    for k in keys:
        dtype, numel = storages[k]
        (count,) = struct.unpack("<q", data[pos: pos + 8])
        assert count == numel
        n = 8 + count * torch.empty(0, dtype=dtype).element_size()
        blocks[k] = data[pos: pos + n]
        pos += n
    assert pos == len(data)
    # rewrite BINUNICODE storage keys in the object pickle
    out = bytearray()
    last = 0
    ops = list(pickletools.genops(io.BytesIO(objpkl)))
    for i, (op, arg, p) in enumerate(ops):
        if op.name == "BINUNICODE" and arg in newkey:
            end = ops[i + 1][2]
            out += objpkl[last:p]
            enc = newkey[arg].encode()
            out += b"X" + struct.pack("<I", len(enc)) + enc
            last = end
    out += objpkl[last:]
    order = sorted(newkey[k] for k in keys)
    inv = {v: k for k, v in newkey.items()}
    tail = pickle.dumps(order, protocol=2) + b"".join(blocks[inv[k]] for k in order)
    Path(path).write_bytes(head + bytes(out) + tail)


# ------------------------------------------------------------------------------------------------
# Tar format (torch < 0.1.10): members sys_info, pickle, tensors, storages
# ------------------------------------------------------------------------------------------------

TAR_MTIME = 1487000000  # Feb 2017, torch 0.1.9 era


def storage_bytes(us):
    return torch.empty(0, dtype=torch.uint8).set_(us, 0, (us.nbytes(),), (1,)).numpy().tobytes()


def save_tar(obj, path):
    """Write obj in the torch 0.1.x tar layout (see torch/serialization.py legacy_load):
      pickle:   the object; each tensor is a persistent id str(tensor_key)
      tensors:  pickle(count), then per tensor pickle((tensor_key, storage_key, torch.XTensor)),
                int32 ndim + 4 zero bytes, ndim int64 sizes, ndim int64 strides, int64 offset
      storages: pickle(count), then per root storage pickle((key, 'cpu', torch.XStorage)),
                int64 numel + raw bytes; then pickle([(view_key, root_key, offset, numel), ...])
      sys_info: pickle({'protocol_version': 1000, 'little_endian': True, 'type_sizes': {...}})
    Keys are ints (old torch used _cdata addresses); fixed numbers here for determinism. A tensor
    whose untyped storage lies inside another saved storage's memory becomes a storage view."""
    tensor_key = {}  # id(tensor) -> key
    tensors = []

    class TarPickler(pickle.Pickler):
        def persistent_id(self, o):
            if isinstance(o, torch.Tensor):
                if id(o) not in tensor_key:
                    tensor_key[id(o)] = 94100000000000 + 16 * len(tensors)
                    tensors.append(o)
                return str(tensor_key[id(o)])
            return None

    pbuf = io.BytesIO()
    TarPickler(pbuf, protocol=2).dump(obj)

    # distinct storages in first-use order
    stores = {}  # data_ptr -> [untyped storage, dtype, key]
    for t in tensors:
        us = t.untyped_storage()
        if us.data_ptr() not in stores:
            stores[us.data_ptr()] = [us, t.dtype, 94000000000000 + 16 * len(stores)]
        assert stores[us.data_ptr()][1] == t.dtype
    roots, views = [], []
    for ptr, (us, dtype, key) in stores.items():
        parent = None
        for p2, (us2, dt2, k2) in stores.items():
            if p2 != ptr and p2 <= ptr and ptr + us.nbytes() <= p2 + us2.nbytes() and (
                    p2 != ptr or us2.nbytes() > us.nbytes()):
                parent = (p2, us2, dt2, k2)
        if parent is None:
            roots.append((key, us, dtype))
        else:
            p2, us2, dt2, k2 = parent
            assert dt2 == dtype
            es = torch.empty(0, dtype=dtype).element_size()
            views.append((key, k2, (ptr - p2) // es, us.nbytes() // es))

    tbuf = io.BytesIO()
    pickle.dump(len(tensors), tbuf, protocol=2)
    for t in tensors:
        skey = stores[t.untyped_storage().data_ptr()][2]
        ttype = getattr(torch, TENSOR_CLASS[t.dtype])
        pickle.dump((tensor_key[id(t)], skey, ttype), tbuf, protocol=2)
        nd = t.dim()
        tbuf.write(struct.pack("<i", nd) + b"\0" * 4)
        tbuf.write(struct.pack(f"<{nd}q", *t.shape))
        tbuf.write(struct.pack(f"<{nd}q", *t.stride()))
        tbuf.write(struct.pack("<q", t.storage_offset()))

    sbuf = io.BytesIO()
    pickle.dump(len(roots), sbuf, protocol=2)
    for key, us, dtype in roots:
        stype = getattr(torch, STORAGE_CLASS[dtype])
        pickle.dump((key, "cpu", stype), sbuf, protocol=2)
        es = torch.empty(0, dtype=dtype).element_size()
        sbuf.write(struct.pack("<q", us.nbytes() // es))
        sbuf.write(storage_bytes(us))
    pickle.dump(views, sbuf, protocol=2)

    sys_info = {"protocol_version": 1000, "little_endian": True,
                "type_sizes": {"short": 2, "int": 4, "long": 4}}  # struct "=l": 4, as torch wrote
    members = [("sys_info", pickle.dumps(sys_info, protocol=2)), ("pickle", pbuf.getvalue()),
               ("tensors", tbuf.getvalue()), ("storages", sbuf.getvalue())]
    with open(path, "wb") as f, tarfile.open(fileobj=f, mode="w:", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = TAR_MTIME
            info.mode = 0o600
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))


# ------------------------------------------------------------------------------------------------
# Models
# ------------------------------------------------------------------------------------------------

class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).mean((2, 3)))


def exact_ramp(n, scale, shift=0):
    """Values exactly representable in f32: ((i*5 + shift) % 11 - 5) * scale."""
    return ((torch.arange(n) * 5 + shift) % 11 - 5).float() * scale


def tiny_net(seed):
    torch.manual_seed(seed)
    net = TinyNet()
    with torch.no_grad():  # as if trained for 2 batches; exact values, no convolution run
        net.bn.running_mean.copy_(exact_ramp(4, 0.0625 * seed))
        net.bn.running_var.copy_(1 + exact_ramp(4, 0.03125, seed).abs())
        net.bn.num_batches_tracked.fill_(2)
    return net


def alexnet_small():
    m = torchvision.models.alexnet(weights=None)
    torch.manual_seed(0)
    f, c = m.features, m.classifier
    f[0] = nn.Conv2d(3, 8, kernel_size=11, stride=4, padding=2)
    f[3] = nn.Conv2d(8, 16, kernel_size=5, padding=2)
    f[6] = nn.Conv2d(16, 24, kernel_size=3, padding=1)
    f[8] = nn.Conv2d(24, 16, kernel_size=3, padding=1)
    f[10] = nn.Conv2d(16, 16, kernel_size=3, padding=1)
    c[1] = nn.Linear(16 * 6 * 6, 64)
    c[4] = nn.Linear(64, 64)
    c[6] = nn.Linear(64, 10)
    m.eval()
    return m


# ------------------------------------------------------------------------------------------------
# Fixture contents
# ------------------------------------------------------------------------------------------------

def from_bits(bits, dtype):
    np_int = {torch.float32: np.uint32, torch.float64: np.uint64, torch.float16: np.uint16,
              torch.bfloat16: np.uint16}[dtype]
    t_int = {torch.float32: torch.int32, torch.float64: torch.int64, torch.float16: torch.int16,
             torch.bfloat16: torch.int16}[dtype]
    arr = np.array(bits, dtype=np_int).view(np_int().dtype.str.replace("u", "i"))
    return torch.from_numpy(arr.copy()).view(t_int).view(dtype)


ROUNDING = [1.0, -2.5, 0.1, 1 / 3, math.pi, -1e-3, 65504.0, 1e5, 2.0 ** -20, 123.456]


def dtypes_object():
    f32 = torch.cat([from_bits([
        0x7FC00000, 0xFFC00001, 0x7F800001, 0x7FA12345,  # qNaN, -NaN with payload, sNaN, sNaN payload
        0x7F800000, 0xFF800000, 0x80000000, 0x00000000,  # +Inf -Inf -0 +0
        0x7F7FFFFF, 0xFF7FFFFF, 0x00800000, 0x80800000,  # max, -max, min normal, -min normal
        0x00000001, 0x007FFFFF, 0x80000003], torch.float32),  # subnormals
        torch.tensor(ROUNDING[:6], dtype=torch.float32)])
    f64 = torch.cat([from_bits([
        0x7FF8000000000000, 0xFFF8000000000001, 0x7FF0000000000001, 0x7FF4000000ABCDEF,
        0x7FF0000000000000, 0xFFF0000000000000, 0x8000000000000000, 0x0000000000000000,
        0x7FEFFFFFFFFFFFFF, 0xFFEFFFFFFFFFFFFF, 0x0010000000000000, 0x8010000000000000,
        0x0000000000000001, 0x000FFFFFFFFFFFFF, 0x8000000000000003], torch.float64),
        torch.tensor(ROUNDING[:6], dtype=torch.float64)])
    f16 = torch.cat([from_bits([
        0x7E00, 0xFE01, 0x7C01, 0x7D55,
        0x7C00, 0xFC00, 0x8000, 0x0000,
        0x7BFF, 0xFBFF, 0x0400, 0x8400,
        0x0001, 0x03FF, 0x8003], torch.float16),
        torch.tensor(ROUNDING[2:5] + [65519.0, 2.0 ** -25 * 3, 1e5 * -1], dtype=torch.float16)])
    bf16 = torch.cat([from_bits([
        0x7FC0, 0xFFC1, 0x7F81, 0x7FA5,
        0x7F80, 0xFF80, 0x8000, 0x0000,
        0x7F7F, 0xFF7F, 0x0080, 0x8080,
        0x0001, 0x007F, 0x8003], torch.bfloat16),
        torch.tensor(ROUNDING[2:7] + [3.0e38], dtype=torch.bfloat16)])
    i64 = torch.tensor([-2**63, 2**63 - 1, 0, -1, 1, 2**31, -2**31 - 1, 2**32, 2**53 + 1, -2**53 - 1,
                        123456789012345, -987654321098765, 255, 256, 65535, 65536, -42, 7,
                        2**62, -2**62], dtype=torch.int64)
    i32 = torch.tensor([-2**31, 2**31 - 1, 0, -1, 1, 2**15, -2**15 - 1, 2**16, 16777217, -16777217,
                        123456789, -987654321, 255, 256, 65535, 65536, -42, 7, 2**30, -2**30],
                       dtype=torch.int32)
    i16 = torch.tensor([-2**15, 2**15 - 1, 0, -1, 1, 127, 128, -128, -129, 255, 256, 1000, -1000,
                        12345, -12345, 2**14, -2**14, 7, -7, 42], dtype=torch.int16)
    i8 = torch.tensor([-128, 127, 0, -1, 1, 2, -2, 63, 64, -64, -65, 100, -100, 7, -7, 42, -42, 126,
                       -127, 10], dtype=torch.int8)
    u8 = torch.tensor([0, 255, 1, 254, 127, 128, 129, 2, 16, 32, 64, 100, 200, 250, 7, 42, 99, 170,
                       85, 15], dtype=torch.uint8)
    bools = torch.tensor([True, False, False, True, True, True, False, True, False, False,
                          True, False, True, True, False, False, False, True, True, False])
    d = {"f32": f32, "f64": f64, "f16": f16, "bf16": bf16, "i64": i64, "i32": i32, "i16": i16,
         "i8": i8, "u8": u8, "bool": bools}
    for k, t in d.items():
        assert t.numel() in (20, 21), (k, t.numel())
    return d


def views_object():
    base = torch.arange(24).float().reshape(4, 6)
    rows = base[1:3]
    half_base = (torch.arange(10, dtype=torch.float16) * 0.5 - 1)
    d = {
        "base": base,
        "rows": rows,                              # offset 6, (2,6), (6,1)
        "transposed": base.t(),                    # (6,4), (1,6)
        "column": base[:, 2],                      # offset 2, (4,), (6,)
        "expanded": (torch.arange(4).float() * 10 + 1).expand(3, 4),  # stride (0,1)
        "channels_last": (torch.arange(24).float() - 12).reshape(2, 3, 2, 2).contiguous(
            memory_format=torch.channels_last),   # strides (12,1,6,3)
        "scalar": torch.tensor(3.5),               # 0-d
        "empty": torch.empty(0, 3),                # 0-byte storage
        "half_view": half_base[3:7],               # f16, offset 3 into a 10-element storage
        "rows_again": rows,                        # the same tensor object as "rows"
    }
    return d


def shared_object():
    a = torch.arange(20).float() * 0.25
    b = torch.arange(12, dtype=torch.int64) * 1000 - 3000
    d = {
        "a": a,
        "a_head": a[:10],
        "a_tail": a[5:],
        "a_grid": a[2:14].view(3, 4),
        "a_every3": a[1::3],
        "b_t": b.view(3, 4).t(),
        "b_row": b.view(3, 4)[1],
        "param": nn.Parameter(a[10:16]),           # _rebuild_parameter, shares a's storage
        "needs_grad": torch.tensor([1.0, -2.0, 3.0], requires_grad=True),  # requires_grad tensor
        "list": [a[0:4], b[6:], a[3:7].view(2, 2), b],
    }
    return d


def nested_object():
    net = tiny_net(1)
    opt = torch.optim.Adam(net.parameters(), lr=0.1)
    for step in (1, 2):  # two Adam steps with exact synthetic gradients
        for i, p in enumerate(net.parameters()):
            p.grad = exact_ramp(p.numel(), 0.125 * step, i).reshape(p.shape)
        opt.step()
    return {
        "model": net.state_dict(),
        "optimizer": opt.state_dict(),
        "epoch": 5,
        "best_acc": np.float64(0.91),
        "lr": 0.1,
        "arch": "tinynet",
        "tags": {"a", "b"},
        "blob": b"\x00\x01bytes",
        "history": [1.0, 2.5],
        "args": {"lr": 0.1, "nesterov": True, "name": None},
    }


def legacy_object():
    base = torch.arange(12).float().reshape(3, 4) - 5.5
    return {
        "f32": base,
        "offset_view": base[1:],            # offset 4 into base's storage
        "transposed": base.t(),             # strides (1,4)
        "f64": torch.tensor([0.1, -0.0, float("inf"), 2.0 ** -1074], dtype=torch.float64),
        "f16": torch.tensor([1.5, -65504.0, 2.0 ** -24], dtype=torch.float16),
        "bf16": torch.tensor([1.0, -3.0e38, 0.1], dtype=torch.bfloat16),
        "i64": torch.tensor([[-2**63, 2**63 - 1], [0, 42]]),
        "i32": torch.tensor([-2**31, 7], dtype=torch.int32),
        "i16": torch.tensor([-2**15, 300], dtype=torch.int16),
        "i8": torch.tensor([-128, 127], dtype=torch.int8),
        "u8": torch.tensor([0, 255, 9], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "shared_list": [base[2], base[:, 1]],
        "step": 3,
    }


def tar_object():
    w = torch.arange(12).float().reshape(3, 4) * 0.5 - 2
    flat = torch.arange(10).float() * 10
    # a tensor on a storage that is a *storage view*: bytes [12, 36) of flat's storage
    sub = flat.untyped_storage()[3 * 4: 9 * 4]
    on_view = torch.empty(0).set_(sub, 1, (2, 2), (2, 1))
    return {
        "weight": w,
        "index": torch.tensor([3, -1, 2**40], dtype=torch.int64),
        "window": w.view(-1)[5:9],          # tensor offset 5 into weight's storage
        "weight_t": w.t(),
        "flat": flat,
        "on_storage_view": on_view,          # storage view (offset 3, numel 6) of flat's storage
        "mask": torch.tensor([True, False, True, True]),
        "epoch": 7,
        "name": "tar",
    }


# ------------------------------------------------------------------------------------------------
# Bad inputs: hand-assembled protocol-2 pickles
# ------------------------------------------------------------------------------------------------

class Asm:
    """A tiny protocol-2 pickle assembler (memoises like Python's pickler: BINPUT after strings,
    globals, non-empty tuples, containers and REDUCE results)."""

    def __init__(self):
        self.b = bytearray(b"\x80\x02")  # PROTO 2
        self.n = 0

    def put(self):
        self.b += b"q" + bytes([self.n]) if self.n < 256 else b"r" + struct.pack("<I", self.n)
        self.n += 1
        return self.n - 1

    def get(self, i):
        self.b += b"h" + bytes([i]) if i < 256 else b"j" + struct.pack("<I", i)

    def op(self, code):
        self.b += code

    def str(self, s):
        e = s.encode()
        self.b += b"X" + struct.pack("<I", len(e)) + e
        return self.put()

    def int(self, v):
        if 0 <= v < 256:
            self.b += b"K" + bytes([v])
        elif 0 <= v < 65536:
            self.b += b"M" + struct.pack("<H", v)
        elif -2**31 <= v < 2**31:
            self.b += b"J" + struct.pack("<i", v)
        else:
            n = (v.bit_length() + 8) // 8
            self.b += b"\x8a" + bytes([n]) + v.to_bytes(n, "little", signed=True)

    def glob(self, mod, name):
        self.b += b"c" + mod.encode() + b"\n" + name.encode() + b"\n"
        return self.put()

    def tuple_of_ints(self, vals):
        if not vals:
            self.op(b")")
            return
        if len(vals) > 3:
            self.op(b"(")
        for v in vals:
            self.int(v)
        self.op({1: b"\x85", 2: b"\x86", 3: b"\x87"}.get(len(vals), b"t"))
        self.put()

    def tensor_v2(self, storage_cls, key, numel, offset, size, stride):
        """torch._utils._rebuild_tensor_v2(persid(('storage', torch.<cls>, key, 'cpu', numel)),
        offset, size, stride, False, OrderedDict()) exactly as torch.save writes it."""
        self.glob("torch._utils", "_rebuild_tensor_v2")
        self.op(b"(")                       # MARK (args tuple)
        self.op(b"(")                       # MARK (persistent id tuple)
        self.str("storage")
        self.glob("torch", storage_cls)
        self.str(key)
        self.str("cpu")
        self.int(numel)
        self.op(b"t")
        self.put()
        self.op(b"Q")                       # BINPERSID
        self.int(offset)
        self.tuple_of_ints(size)
        self.tuple_of_ints(stride)
        self.op(b"\x89")                    # NEWFALSE (requires_grad)
        self.glob("collections", "OrderedDict")
        self.op(b")R")                      # EMPTY_TUPLE REDUCE
        self.put()
        self.op(b"t")                       # TUPLE (MARK at args)
        self.put()
        self.op(b"R")                       # REDUCE
        self.put()

    def done(self):
        self.op(b".")
        return bytes(self.b)


def one_tensor_dict(name, build):
    a = Asm()
    a.op(b"}")
    a.put()
    a.str(name)
    build(a)
    a.op(b"s")  # SETITEM
    return a.done()


class _Reducer:
    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


def make_bad(net):
    BAD.mkdir(parents=True, exist_ok=True)
    readme = ["# Files the reader must refuse", "",
              "Generated by Fixtures/make_fixtures.py. One line per file: what is wrong with it.", ""]

    def note(name, text):
        readme.append(f"- `{name}`: {text}")

    w = torch.arange(4).float()
    torch.save({"weight": w, "payload": _Reducer(os.system, ("true",))}, BAD / "os_system.pth")
    note("os_system.pth", "zip checkpoint (torch.save) whose data.pkl has GLOBAL 'posix system' "
         "REDUCEd with ('true',) next to a normal tensor - code execution; never load it with "
         "weights_only=False.")
    torch.save({"weight": w, "payload": _Reducer(eval, ("1+1",))}, BAD / "builtins_eval.pth")
    note("builtins_eval.pth", "zip checkpoint whose data.pkl has GLOBAL '__builtin__ eval' REDUCEd "
         "with ('1+1',) - code execution.")
    torch.save(net, BAD / "module.pth")
    note("module.pth", "torch.save of a whole nn.Module (TinyNet): GLOBAL '__main__ TinyNet', "
         "torch.nn.modules.* classes, torch._utils._rebuild_parameter, BUILD of module __dict__ - "
         "not a weights-only file.")

    # SETITEMS on a list
    a = Asm()
    a.op(b"}")
    a.put()
    a.op(b"(")
    a.str("weight")
    a.tensor_v2("FloatStorage", "0", 4, 0, (4,), (1,))
    a.str("config")
    a.op(b"]")                    # EMPTY_LIST
    a.put()
    a.op(b"(")                    # MARK
    a.str("key")
    a.str("value")
    a.op(b"u")                    # SETITEMS on the list
    a.op(b"u")                    # SETITEMS on the top dict
    write_torch_zip(BAD / "setitem_list.pth", a.done(), [("0", tensor_bytes(w))])
    note("setitem_list.pth", "valid zip records, but data.pkl does EMPTY_LIST, MARK 'key' 'value' "
         "SETITEMS - SETITEMS applied to a list (CVE-2026-24747 class: SETITEM(S) must only apply to "
         "dicts, APPEND(S) only to lists).")

    # memo bomb
    a = Asm()
    a.op(b"]")
    a.put()                       # level 0: []
    for i in range(1, 31):
        a.op(b"]")                # EMPTY_LIST (torch's own list opcodes: EMPTY_LIST + APPENDS)
        a.put()
        a.op(b"(")                # MARK
        a.get(i - 1)
        a.get(i - 1)
        a.op(b"e")                # APPENDS -> level i: [level i-1, level i-1]
    write_torch_zip(BAD / "memo_bomb.pth", a.done(), [])
    note("memo_bomb.pth", "zip checkpoint whose data.pkl is 30 nested levels, each EMPTY_LIST "
         "BINPUT i MARK BINGET i-1 BINGET i-1 APPENDS: 2^30 leaves if memo entries are copied instead of shared "
         "(billion laughs). Loading it as shared references is cheap; walking/expanding it is not. "
         "It holds no tensors: a state-dict reader should reject it as not a checkpoint, and nothing "
         "may deep-copy memo entries.")

    # numel larger than the data record
    buf = io.BytesIO()
    torch.save({"weight": w}, buf)
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as z:
        pkl = z.read("archive/data.pkl")
    write_torch_zip(BAD / "numel_mismatch.pth", pkl, [("0", tensor_bytes(w)[:8])])
    note("numel_mismatch.pth", "torch.save data.pkl declaring FloatStorage '0' with numel 4 (16 "
         "bytes), but the data/0 record holds only 8 bytes - reading it would run past the record "
         "(torch 2.9.1 loads it, even with weights_only=True, filling the tensor with the 8 bytes "
         "that follow the record in the file).")

    def crafted(name, size, stride, offset, numel, text):
        pkl = one_tensor_dict("weight", lambda a: a.tensor_v2("FloatStorage", "0", numel, offset,
                                                              size, stride))
        write_torch_zip(BAD / name, pkl, [("0", tensor_bytes(torch.arange(numel).float()))])
        note(name, text)

    crafted("offset_past.pth", (4,), (1,), 100, 4,
            "_rebuild_tensor_v2 with storage_offset 100, size (4,), stride (1,) on a 4-element "
            "FloatStorage (16-byte record): the tensor's extent lies past its storage.")
    crafted("negative_stride.pth", (4,), (-1,), 3, 4,
            "_rebuild_tensor_v2 with size (4,), stride (-1,), offset 3 on a 4-element FloatStorage: "
            "negative strides are not valid in a checkpoint (torch refuses them too).")
    crafted("huge_shape.pth", (2**62, 2**62), (2**62, 1), 0, 4,
            "_rebuild_tensor_v2 with size (2**62, 2**62), stride (2**62, 1) (LONG1 ints) on a "
            "4-element FloatStorage: element count and extent overflow 64 bits.")

    a = Asm()
    a.op(b"}")
    a.put()
    a.op(b"(")
    a.str("weight")
    a.tensor_v2("FloatStorage", "0", 4, 0, (4,), (1,))
    a.str("thing")
    a.glob("mypkg.evil", "Thing")
    a.op(b")R")       # EMPTY_TUPLE REDUCE
    a.put()
    a.op(b"u")
    write_torch_zip(BAD / "global_unknown.pth", a.done(), [("0", tensor_bytes(w))])
    note("global_unknown.pth", "valid zip checkpoint whose data.pkl has GLOBAL 'mypkg.evil Thing' "
         "followed by EMPTY_TUPLE REDUCE - a global outside the allow-list.")

    (BAD / "README.md").write_text("\n".join(readme) + "\n")

    # What torch 2.9.1 does with the safe-to-try ones (never the two code-execution files).
    for name in ["module.pth", "setitem_list.pth", "memo_bomb.pth", "numel_mismatch.pth",
                 "offset_past.pth", "negative_stride.pth", "huge_shape.pth", "global_unknown.pth"]:
        code = ("import torch,sys\n"
                "try:\n"
                f"  r = torch.load({str(BAD / name)!r}, weights_only=True)\n"
                "  print('LOADED', type(r).__name__, {k: (tuple(v.shape), v.stride()) "
                "if isinstance(v, torch.Tensor) else type(v).__name__ for k, v in r.items()} "
                "if isinstance(r, dict) else '')\n"
                "except Exception as e:\n"
                "  m=[l.strip() for l in str(e).splitlines() if l.strip()]\n"
                "  print('REFUSED', type(e).__name__, next((l for l in m if 'WeightsUnpickler' in l), m[-1] if m else '')[:300])\n")
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        res = (r.stdout.strip() or f"exit {r.returncode}: {r.stderr.strip()[-300:]}")
        log(f"  bad/{name}: torch.load(weights_only=True) -> {res}")


# ------------------------------------------------------------------------------------------------
# Conversion tables
# ------------------------------------------------------------------------------------------------

def f32_samples():
    rng = np.random.Generator(np.random.PCG64(20240601))
    parts = []
    u32 = lambda v: np.asarray(v, dtype=np.uint32)  # noqa: E731
    # specials: zeros, infinities, NaNs with payloads (quiet and signalling, both signs)
    parts.append(u32([0x00000000, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00000,
                      0x7F800001, 0xFF800001, 0x7FBFFFFF, 0x7FFFFFFF, 0xFFFFFFFF, 0x7FC00001,
                      0x7FA00000, 0x7F802000, 0x7F801FFF, 0x7FC12345, 0xFFD55555, 0x7F810000,
                      0x7F80FFFF, 0x7F7FFFFF, 0xFF7FFFFF, 0x00800000, 0x80800000, 0x00000001,
                      0x80000001, 0x007FFFFF, 0x807FFFFF]))
    parts.append(u32(0x7F800000 | rng.integers(1, 1 << 23, 200)) | u32(rng.integers(0, 2, 200) << 31))
    # f16 overflow boundary and friends
    f = np.array([65504.0, 65519.99, 65520.0, 65519.998, 65536.0, 65505.0, 65535.0, 1e5, 6.1e-5,
                  2.0 ** -14, 2.0 ** -24, 2.0 ** -25, 2.0 ** -26, 3 * 2.0 ** -26, 2.0 ** -25 * 1.5,
                  5.96e-8, 2.98e-8, 0.1, 1 / 3, 1.0, 2049.0, 2051.0, 4097.0, 3.0e38, 3.3895e38,
                  3.3896e38, 3.39e38, 1.1754942e-38], dtype=np.float32)
    base = f.view(np.uint32)
    parts += [base, base | 0x80000000, base + 1, base - 1]
    # values exactly halfway between adjacent finite f16 values, and 1 ulp (f32) either side
    h = rng.integers(0, 0x7BFF, 3000).astype(np.uint16)  # positive finite f16, below max
    h = np.concatenate([h, np.arange(0, 64, dtype=np.uint16), np.array([0x7BFE, 0x03FF, 0x0400],
                                                                         dtype=np.uint16)])
    lo = h.view(np.float16).astype(np.float32)
    hi = (h + 1).view(np.float16).astype(np.float32)
    mid = ((lo.astype(np.float64) + hi.astype(np.float64)) / 2).astype(np.float32)
    assert np.all(mid.astype(np.float64) * 2 == lo.astype(np.float64) + hi.astype(np.float64))
    mb = mid.view(np.uint32)
    sign = (rng.integers(0, 2, mb.size).astype(np.uint32) << 31)
    parts += [mb | sign, (mb + 1) | sign, (mb - 1) | sign]
    # midpoint between f16 max and "next" (65520) is in f, as is the f16 subnormal/zero tie
    # values exactly halfway between adjacent bf16 values, and 1 ulp either side
    b = rng.integers(0, 0x7F80, 3000).astype(np.uint32)
    b = np.concatenate([b, np.arange(0, 64, dtype=np.uint32), np.array([0x7F7F, 0x7F7E, 0x007F],
                                                                         dtype=np.uint32)])
    bm = (b << 16) | 0x8000
    sign = (rng.integers(0, 2, bm.size).astype(np.uint32) << 31)
    parts += [bm | sign, (bm + 1) | sign, (bm - 1) | sign]
    # uniformly random bit patterns over the whole range
    parts.append(rng.integers(0, 1 << 32, 9000, dtype=np.uint64).astype(np.uint32))
    # random f32 in the f16 range (normal and subnormal) with random low bits
    e = rng.integers(127 - 26, 127 + 17, 1500).astype(np.uint32)
    m = rng.integers(0, 1 << 23, 1500).astype(np.uint32)
    parts.append((e << 23) | m | (rng.integers(0, 2, 1500).astype(np.uint32) << 31))
    out = np.concatenate(parts).astype(np.uint32)
    return out


def convert_tables(samples_u32):
    t = torch.from_numpy(samples_u32.view(np.int32).copy()).view(torch.float32)
    h = t.half().view(torch.int16).numpy().view(np.uint16)
    b = t.bfloat16().view(torch.int16).numpy().view(np.uint16)
    return h, b


_NATIVE_CHECK = """
import numpy as np, torch, sys
s = np.fromfile(sys.argv[1], dtype='<u4')
t = torch.from_numpy(s.view(np.int32).copy()).view(torch.float32)
t.half().view(torch.int16).numpy().tofile(sys.argv[2])
t.bfloat16().view(torch.int16).numpy().tofile(sys.argv[3])
print(torch.backends.cpu.get_cpu_capability())
"""


def make_tables():
    u16 = np.arange(65536, dtype=np.uint32).astype(np.uint16)
    bits = torch.from_numpy(u16.view(np.int16).copy())
    (OUT / "f16_to_f32.bin").write_bytes(bits.view(torch.float16).float().numpy().astype("<f4").tobytes())
    (OUT / "bf16_to_f32.bin").write_bytes(bits.view(torch.bfloat16).float().numpy().astype("<f4").tobytes())
    s = f32_samples()
    (OUT / "f32_samples.bin").write_bytes(s.astype("<u4").tobytes())
    h, b = convert_tables(s)
    (OUT / "f32_to_f16.bin").write_bytes(h.astype("<u2").tobytes())
    (OUT / "f32_to_bf16.bin").write_bytes(b.astype("<u2").tobytes())
    isnan = np.isnan(s.view(np.float32))
    log(f"  conversion tables: {s.size} f32 samples ({int(isnan.sum())} NaNs); computed with "
        f"ATEN_CPU_CAPABILITY={torch.backends.cpu.get_cpu_capability()}")
    # Compare with this machine's native vectorised kernels.
    with tempfile.TemporaryDirectory() as d:
        sp = Path(d) / "s.bin"
        sp.write_bytes(s.astype("<u4").tobytes())
        env = {k: v for k, v in os.environ.items() if k != "ATEN_CPU_CAPABILITY"}
        r = subprocess.run([sys.executable, "-c", _NATIVE_CHECK, str(sp), f"{d}/h", f"{d}/b"],
                           env=env, capture_output=True, text=True, check=True)
        hn = np.fromfile(f"{d}/h", dtype="<u2")
        bn = np.fromfile(f"{d}/b", dtype="<u2")
        for nm, ref, nat in (("f16", h, hn), ("bf16", b, bn)):
            diff = ref != nat
            log(f"  native capability {r.stdout.strip()}: f32->{nm} differs from the committed "
                f"table at {int(diff.sum())} samples ({int((diff & isnan).sum())} of them NaN"
                + (f"; native NaN results {sorted({hex(x) for x in nat[diff]})[:4]}"
                   if diff.any() else "") + ")")
            assert not (diff & ~isnan).any(), f"f32->{nm} differs on non-NaN input"


# ------------------------------------------------------------------------------------------------
# Main
# ------------------------------------------------------------------------------------------------

def main():
    # Only overwrite our own files: other scripts (make_zip_fixtures.py) also write into OUT.
    OUT.mkdir(parents=True, exist_ok=True)
    log(f"torch {torch.__version__}, torchvision {torchvision.__version__}, numpy {np.__version__}")

    # 1. dtypes
    torch.save(dtypes_object(), OUT / "dtypes.pth")
    write_expected("dtypes.pth", "zip",
                   "One tensor per dtype (f32 f64 f16 bf16 i64 i32 i16 i8 u8 bool), ~20 values each: "
                   "NaNs (quiet, negative with payload, signalling), +-Inf, -0.0, max, min normal, "
                   "subnormals, values rounded from f64 (0.1, 1/3, pi, 65519 -> f16 65504, 1e5 -> f16 "
                   "inf, 3e38 bf16), integer min/max. Plain torch.save: writer golden.")

    # 2. views
    torch.save(views_object(), OUT / "views.pth")
    write_expected("views.pth", "zip",
                   "Views sharing storages in one dict: base (4,6); rows=base[1:3] (offset 6); "
                   "transposed=base.t() (stride (1,6)); column=base[:,2] (offset 2, stride (6,)); "
                   "expanded (stride (0,1), 4-element storage); channels_last (2,3,2,2) strides "
                   "(12,1,6,3); 0-d scalar; empty (0,3) with a 0-byte record; f16 view at offset 3 of "
                   "a 10-element storage; rows_again is the same tensor object as rows (pickle memo "
                   "BINGET, identical result). Plain torch.save: writer golden.")

    # 3. shared
    torch.save(shared_object(), OUT / "shared.pth")
    write_expected("shared.pth", "zip",
                   "Overlapping views of two storages (f32 a: 20 elements; i64 b: 12) in a plain dict, "
                   "plus a list of views; 'param' is an nn.Parameter viewing a[10:16] "
                   "(torch._utils._rebuild_parameter, requires_grad True); 'needs_grad' is a plain "
                   "tensor with requires_grad=True (_rebuild_tensor_v2 with NEWTRUE).")

    # 4. nested
    nested = nested_object()
    torch.save(nested, OUT / "nested.pth")
    write_expected("nested.pth", "zip",
                   "Training checkpoint: model state dict (Conv2d+BatchNorm2d+Linear: running_mean, "
                   "running_var, num_batches_tracked i64 0-d), Adam state dict after 2 steps (state "
                   "keyed by int, step is a 0-d f32 tensor; param_groups with betas tuple, None, "
                   "bools), epoch int, best_acc numpy.float64 (GLOBAL numpy._core.multiarray scalar + "
                   "numpy dtype; weights_only=True refuses it without safe_globals), lr float, arch "
                   "str, tags set (GLOBAL __builtin__ set), blob bytes (_codecs encode latin1), "
                   "history list, args dict with True/None. Plain torch.save: writer golden.")

    # 5. nested_module
    dp = nn.DataParallel(tiny_net(1))
    torch.save({"state_dict": dp.state_dict(), "epoch": 3}, OUT / "nested_module.pth")
    write_expected("nested_module.pth", "zip",
                   "{'state_dict': state dict of TinyNet wrapped in nn.DataParallel (keys "
                   "'module.conv.weight' ...), 'epoch': 3}.")

    # 6. ambiguous
    torch.save({"model": tiny_net(1).state_dict(), "ema": tiny_net(2).state_dict(), "step": 10},
               OUT / "ambiguous.pth")
    write_expected("ambiguous.pth", "zip",
                   "Two state dicts with the same keys and different values ('model' and 'ema') plus "
                   "'step': 10 - a reader must not silently pick one.")

    # 7. bigendian
    be_obj = {
        "f32": torch.tensor([1.0, -2.5, float("nan"), float("inf"), 3.4e38, 1e-45]),
        "f64": torch.tensor([0.1, -0.0, 1e300], dtype=torch.float64),
        "f16": torch.tensor([1.5, -65504.0, 2.0 ** -24], dtype=torch.float16),
        "bf16": torch.tensor([1.0, -3.0e38, 0.1], dtype=torch.bfloat16),
        "i64": torch.tensor([-2**63, 2**63 - 1, 258]),
        "i32": torch.tensor([-2**31, 16909060], dtype=torch.int32),
        "i16": torch.tensor([-2**15, 258], dtype=torch.int16),
        "bool": torch.tensor([True, False, True]),
        "view": None,
    }
    be_obj["view"] = be_obj["f32"][1:4]
    torch.save(be_obj, OUT / "bigendian.pth")
    little = (OUT / "bigendian.pth").read_bytes()
    prefix, recs = read_torch_zip(OUT / "bigendian.pth")
    stor = scan_storages(recs["data.pkl"])
    keys = sorted(stor, key=int)
    # our writer reproduces torch.save byte for byte ...
    write_torch_zip(OUT / "bigendian.pth", recs["data.pkl"], [(k, recs[f"data/{k}"]) for k in keys])
    assert (OUT / "bigendian.pth").read_bytes() == little, "write_torch_zip != torch.save"
    # ... so write the big-endian variant with it
    write_torch_zip(OUT / "bigendian.pth", recs["data.pkl"],
                    [(k, byteswap(recs[f"data/{k}"], stor[k][0])) for k in keys], byteorder="big")
    obj, desc, blob = write_expected(
        "bigendian.pth", "zip",
        "torch.save output rewritten with byteorder record 'big' and every data record byte-swapped "
        "per element (f32 f64 f16 bf16 i64 i32 i16 bool; 'view' is a view of f32). torch.load swaps "
        "back; expected values are the native little-endian ones.")
    ref, ref_blob = describe(be_obj)
    assert ref == desc and ref_blob == blob, "big-endian file does not load to the original values"

    # 8. legacy
    leg = legacy_object()
    save_legacy(leg, OUT / "legacy.pth")
    obj, desc, blob = write_expected(
        "legacy.pth", "legacy",
        "torch.save(_use_new_zipfile_serialization=False): magic, protocol 1001, sys_info, object, "
        "sorted key list, then per storage int64 numel + raw bytes. All ten dtypes, a view with "
        "offset 4, a transposed view, views in a list sharing the f32 storage. Storage keys renamed "
        "to fixed numbers (torch uses heap addresses) for reproducibility.")
    ref, ref_blob = describe(leg)
    assert ref["others"] == desc["others"] and ref_blob == blob

    # 9. tar
    tobj = tar_object()
    save_tar(tobj, OUT / "tar.pth")
    obj, desc, blob = write_expected(
        "tar.pth", "tar",
        "torch < 0.1.10 tar layout (members sys_info, pickle, tensors, storages) written by "
        "make_fixtures.py: f32 weight, i64 index, bool mask, a view of weight at offset 5, a "
        "transposed view, and 'on_storage_view' whose storage is a *storage view* (storages member "
        "view list: offset 3, numel 6 of flat's storage). torch.load gives the storage view its own "
        "storage object aliasing flat's memory, so it has its own storage_group and storage_numel 6. "
        "torch.load(weights_only=True) refuses tar files.")
    ref, ref_blob = describe(tobj)
    assert ref_blob == blob and ref["others"] == desc["others"]

    # 10. AlexNet small
    m = alexnet_small()
    sd = m.state_dict()
    assert len(sd) == 16
    with torch.no_grad():
        assert m(torch.zeros(1, 3, 224, 224)).shape == (1, 10)
    torch.save(sd, OUT / "alexnet_small.pth")
    write_expected("alexnet_small.pth", "zip",
                   "torchvision AlexNet layout (features.0/3/6/8/10 conv, classifier.1/4/6 linear; "
                   "16 tensors) with conv widths 8-16-24-16-16 and classifier 576-64-64-10, seed 0; "
                   "plain model.state_dict() (OrderedDict with _metadata). Writer golden.")
    save_legacy(sd, OUT / "alexnet_small_legacy.pth")
    write_expected("alexnet_small_legacy.pth", "legacy",
                   "The alexnet_small state dict saved with _use_new_zipfile_serialization=False "
                   "(storage keys renamed to fixed numbers).")
    save_tar(collections.OrderedDict(sd.items()), OUT / "alexnet_small_tar.pth")
    write_expected("alexnet_small_tar.pth", "tar",
                   "The alexnet_small state dict in the torch 0.1.x tar layout, keys in state-dict "
                   "order; an OrderedDict without _metadata, like state dicts of that era.")

    # 11. fp16
    torch.save(copy.deepcopy(m).half().state_dict(), OUT / "fp16_model.pth")
    write_expected("fp16_model.pth", "zip", "alexnet_small state dict converted with .half().")

    # 12. conversion tables
    make_tables()

    # 13. bad inputs
    make_bad(TinyNet())

    (OUT / "README.md").write_text(README)
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    log(f"Fixtures/torch now holds {total} bytes in "
        f"{sum(1 for p in OUT.rglob('*') if p.is_file())} files")


README = """# PyTorch fixtures

Generated by `Fixtures/make_fixtures.py` with torch 2.9.1 / torchvision 0.24.1 (run
`$(../shared/oracle/setup) Fixtures/make_fixtures.py` from the repository root; the output is
reproducible byte for byte). Do not edit by hand.

- `NAME.pth` + `NAME.expected.json` + `NAME.expected.bin`: a checkpoint and exactly what
  `torch.load(NAME.pth, weights_only=False)` returns (format described at the top of the script).
  The `notes` field of each JSON says what the fixture exercises.
- `dtypes.pth`, `views.pth`, `nested.pth`, `alexnet_small.pth` are plain `torch.save(obj, path)`
  outputs: writer goldens (write the loaded object back under the same basename and compare bytes).
- `f16_to_f32.bin`, `bf16_to_f32.bin`: all 65536 bit patterns (0..65535) converted to f32 by torch
  (65536 little-endian f32 each).
- `f32_samples.bin`: little-endian u32 bit patterns of f32 samples (specials, NaN payloads, ties between
  adjacent f16/bf16 values and their neighbours, f16 overflow boundary, random patterns);
  `f32_to_f16.bin` / `f32_to_bf16.bin`: torch's `.half()` / `.bfloat16()` of each sample as
  little-endian u16 bit patterns.
  Computed with ATEN_CPU_CAPABILITY=default (torch's scalar kernels). NaN caveat: with AVX2/AVX512
  kernels torch 2.9.1 turns every NaN into 0xFFFF under `.bfloat16()`, while the scalar kernel gives
  0x7FC0 (the table); `.half()` keeps sign and the top payload bits with the quiet bit set in both.
  All non-NaN results are identical across kernels.
- `bad/`: inputs the reader must refuse; see `bad/README.md`.

Files not listed here come from the other generator scripts in `Fixtures/`.
"""


if __name__ == "__main__":
    main()

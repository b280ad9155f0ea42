#!/usr/bin/env python3
"""Generate the safetensors fixtures under Fixtures/safetensors/ with the real `safetensors` library.

Run from the repository root:

    $(../shared/oracle/setup) Fixtures/make_safetensors_fixtures.py

Pins safetensors==0.8.0 and torch==2.9.1; deterministic (no randomness; the one file with several
metadata keys is re-written until its header has them in sorted order, because the library writes
metadata from a Rust HashMap in a random order — see metadata.safetensors below).

Written (good files; every one is loaded back with safetensors.torch.load_file / safe_open):
  dtypes.safetensors       every dtype zoo supports (F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL) with
                           NaN payloads, infinities, subnormals, integer extremes (the values of
                           Fixtures/torch/dtypes.pth), a 0-d tensor, two empty tensors, a 3-D tensor;
                           metadata {"format": "pt"}.
  names.safetensors        same-dtype names whose byte order differs from other orders
                           ("B" < "_" < "a.10" < "a.9" < "b" < "é"), across dtypes, no metadata.
  metadata.safetensors     one tensor and a metadata map with escapes, unicode and an empty value.
  no_tensors.safetensors   no tensors, no metadata: the 16-byte file `{}` + 6 spaces.
  alexnet_small.safetensors  the state dict of Fixtures/torch/alexnet_small.pth, metadata format=pt.
  misaligned.safetensors   hand-written (the library never writes this layout, but reads it): U8[3]
                           first, so the F32 and I64 tensors after it are misaligned in the file.
  pretty_header.safetensors  hand-written: indented JSON with newlines, keys not in offset order,
                           escaped characters in a name; the library reads it.
For each NAME.safetensors, NAME.expected.json: {"file", "metadata", "tensors": [{"name", "dtype",
"shape", "hex"}]} in data-offset order, "hex" being the little-endian C-order bytes — except
alexnet_small, whose tensors give "bin_offset"/"nbytes" into "bin" (../torch/alexnet_small.expected.bin,
the same state dict's bytes as torch.load returned them).

Bad files under bad/ (hand-written), each described in bad/expected.json:
  {"FILE": {"why": ..., "zoo_error": substring zoo's error must contain,
            "library": "refused: <the library's error>" | "accepted"}}.
The library's verdict is recorded, not required: zoo is stricter where the spec says so (duplicate
keys, unknown fields) and refuses dtypes it does not support by name.
"""

import os
import sys

import oracle_env  # noqa: E402  (Fixtures/oracle_env.py)

oracle_env.deterministic()

import json
import struct
from pathlib import Path

import safetensors
import safetensors.torch as st
import torch

oracle_env.require(safetensors="0.8.0", torch="2.9.1")

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "safetensors"
BAD = OUT / "bad"
sys.path.insert(0, str(ROOT))
from make_fixtures import dtypes_object  # noqa: E402  (same env, so importing does not re-exec)

CODES = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
         torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
         torch.uint8: "U8", torch.bool: "BOOL"}


def raw(t):
    return t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""


def write_expected(name, path, bin_reference=None):
    """Describe what the library reads from `path`, in data-offset order. With `bin_reference`
    (a Fixtures/torch/*.expected.json), tensors point into its .expected.bin instead of carrying hex."""
    with safetensors.safe_open(str(path), framework="pt") as f:
        metadata = dict(sorted((f.metadata() or {}).items()))  # the library's dict order is random
        keys = list(f.keys())
        tensors = {k: f.get_tensor(k) for k in keys}
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    order = sorted((k for k in header if k != "__metadata__"),
                   key=lambda k: (header[k]["data_offsets"], list(header).index(k)))
    doc = {"file": path.name, "metadata": metadata}
    rows = []
    if bin_reference:
        ref = json.loads(bin_reference.read_text())
        where = {t["path"]: t for t in ref["tensors"]}
        blob = bin_reference.with_suffix(".bin").read_bytes()
        doc["bin"] = f"../torch/{bin_reference.with_suffix('.bin').name}"
    for k in order:
        t = tensors[k]
        row = {"name": k, "dtype": CODES[t.dtype], "shape": list(t.shape)}
        if bin_reference:
            w = where[k]
            assert blob[w["bin_offset"]:w["bin_offset"] + w["nbytes"]] == raw(t), k
            row.update(bin_offset=w["bin_offset"], nbytes=w["nbytes"])
        else:
            row["hex"] = raw(t).hex()
        rows.append(json.dumps(row, ensure_ascii=False))
    text = json.dumps(doc, indent=1, ensure_ascii=False)[:-2] + ',\n "tensors": [\n  ' + ",\n  ".join(rows) + "\n ]\n}\n"
    assert json.loads(text)["tensors"][0]["name"] == order[0] if order else True
    (OUT / f"{name}.expected.json").write_text(text)


def save(name, tensors, metadata=None, bin_reference=None):
    path = OUT / f"{name}.safetensors"
    st.save_file(tensors, str(path), metadata=metadata)
    loaded = st.load_file(str(path))
    for k, t in tensors.items():
        assert raw(loaded[k]) == raw(t) and loaded[k].dtype == t.dtype and loaded[k].shape == t.shape, k
    write_expected(name, path, bin_reference)
    return path


def header_file(header, buffer, pad=True):
    """A file with `header` (str or bytes) taken as is, optionally space-padded to 8 bytes."""
    h = header.encode() if isinstance(header, str) else header
    if pad:
        h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + buffer


def main():
    OUT.mkdir(exist_ok=True)
    BAD.mkdir(exist_ok=True)

    d = dtypes_object()
    d["scalar"] = torch.tensor(2.5, dtype=torch.float32)
    d["empty"] = torch.zeros(0, 3, dtype=torch.float32)
    d["empty_i64"] = torch.zeros(2, 0, dtype=torch.int64)
    d["cube"] = torch.arange(24, dtype=torch.float32).reshape(2, 3, 4) / 8
    save("dtypes", d, {"format": "pt"})

    names = {}
    for i, n in enumerate(["b", "B", "a.10", "a.9", "é", "_", "z"]):
        names[n] = torch.full((i + 1,), float(i), dtype=torch.float32)
    names["h"] = torch.arange(3, dtype=torch.float16)
    names["A"] = torch.arange(5, dtype=torch.uint8)
    names["q"] = torch.tensor([True, False])
    save("names", names)

    meta = {"format": "pt", "quote\"back\\slash": "line\nbreak\ttab\x01ctl", "unicode é ✓": "∑ 𝄞", "empty": ""}
    for _ in range(200):  # the library's metadata order is random; keep a run that happens to be sorted
        path = save("metadata", {"w": torch.ones(2, 2)}, meta)
        blob = path.read_bytes()
        n = struct.unpack("<Q", blob[:8])[0]
        keys = list(json.loads(blob[8:8 + n])["__metadata__"])
        if keys == sorted(keys, key=lambda k: k.encode()):
            break
    else:
        raise SystemExit("metadata order never came out sorted")

    save("no_tensors", {})
    assert (OUT / "no_tensors.safetensors").read_bytes() == b"\x08" + b"\0" * 7 + b"{}      "

    sd = torch.load(ROOT / "torch" / "alexnet_small.pth", weights_only=True)
    save("alexnet_small", dict(sd), {"format": "pt"}, ROOT / "torch" / "alexnet_small.expected.json")

    # Hand-written, valid per the spec and read by the library.
    u8 = torch.tensor([1, 2, 3], dtype=torch.uint8)
    f32 = torch.tensor([1.5, -2.25], dtype=torch.float32)
    i64 = torch.tensor([-3, 2**40], dtype=torch.int64)
    hdr = json.dumps({"u8": {"dtype": "U8", "shape": [3], "data_offsets": [0, 3]},
                      "f32": {"dtype": "F32", "shape": [2], "data_offsets": [3, 11]},
                      "i64": {"dtype": "I64", "shape": [2], "data_offsets": [11, 27]}}, separators=(",", ":"))
    (OUT / "misaligned.safetensors").write_bytes(header_file(hdr, raw(u8) + raw(f32) + raw(i64)))
    write_expected("misaligned", OUT / "misaligned.safetensors")

    a = torch.tensor([[1, 2], [3, 4]], dtype=torch.int32)
    b = torch.tensor([0.5], dtype=torch.float64)
    hdr = ('{\n  "na\\u00efve \\"b\\"": {"dtype": "F64", "shape": [1], "data_offsets": [16, 24]},\n'
           '  "__metadata__": {"k": "v"},\n'
           '  "a": {\n    "shape": [2, 2], "data_offsets": [0, 16], "dtype": "I32"\n  }\n}\n')
    (OUT / "pretty_header.safetensors").write_bytes(header_file(hdr, raw(a) + raw(b), pad=False))
    write_expected("pretty_header", OUT / "pretty_header.safetensors")

    make_bad()


def make_bad():
    notes = {}

    def bad(name, blob, why, zoo_error):
        path = BAD / name
        path.write_bytes(blob)
        try:
            with safetensors.safe_open(str(path), framework="pt") as f:
                for k in f.keys():
                    f.get_tensor(k)
            verdict = "accepted"
        except Exception as e:  # noqa: BLE001 - we record whatever the library says
            verdict = f"refused: {type(e).__name__}: {e}"
        notes[name] = {"why": why, "zoo_error": zoo_error, "library": verdict}

    def entry(dtype, shape, begin, end):
        return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}

    eight = struct.pack("<2f", 1.0, 2.0)
    good = header_file(json.dumps({"a": entry("F32", [2], 0, 8)}), eight)
    bad("empty_file.safetensors", b"", "zero bytes", "file holds 0 bytes")
    bad("short_size.safetensors", b"\x10\0\0\0\0", "5 bytes: not even the header size", "file holds 5 bytes")
    bad("truncated_data.safetensors", good[:-4], "a valid file missing its last 4 bytes",
        "past the end of the 4-byte buffer")
    bad("header_past_end.safetensors", struct.pack("<Q", 1000) + b"{}", "header size 1000, file of 10 bytes",
        "reaches past the end of the 10-byte file")
    bad("header_too_large.safetensors", struct.pack("<Q", 100_000_001) + b"{}      ",
        "header size over the 100 MB limit", "exceeds limit maxSafetensorsHeaderBytes")
    bad("header_size_huge.safetensors", struct.pack("<Q", 2**64 - 1) + b"{}      ",
        "header size 2^64 - 1", "exceeds limit maxSafetensorsHeaderBytes")
    bad("bad_json.safetensors", header_file('{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]', eight),
        "JSON object never closed", "bad header")
    bad("not_object.safetensors", header_file("[1, 2]", b""), "header is a JSON array",
        "does not start with '{'")
    bad("leading_space.safetensors", header_file(' {"a":' + json.dumps(entry("F32", [2], 0, 8)) + "}", eight),
        "header starts with a space (the spec: it MUST begin with '{')", "does not start with '{'")
    bad("invalid_utf8.safetensors", header_file(b'{"\xff":' + json.dumps(entry("F32", [2], 0, 8)).encode() + b"}", eight),
        "a key that is not UTF-8", "not valid UTF-8")
    bad("control_char.safetensors", header_file('{"a\nb":' + json.dumps(entry("F32", [2], 0, 8)) + "}", eight),
        "raw newline inside a key", "control character")
    bad("offsets_out_of_range.safetensors", header_file(json.dumps({"a": entry("F32", [100], 0, 400)}), eight),
        "data_offsets end at 400 in an 8-byte buffer", "past the end of the 8-byte buffer")
    bad("offsets_reversed.safetensors", header_file(json.dumps({"a": entry("F32", [0], 8, 0)}), eight),
        "data_offsets [8, 0]", "end before they begin")
    bad("overlap.safetensors", header_file(json.dumps({"a": entry("F32", [2], 0, 8), "b": entry("F32", [2], 4, 12)}),
                                           eight + eight[:4]),
        "b starts inside a", "inside tensor 'a'")
    bad("gap.safetensors", header_file(json.dumps({"a": entry("F32", [1], 0, 4), "b": entry("F32", [1], 8, 12)}),
                                       eight + eight[:4]),
        "bytes 4..<8 belong to no tensor", "belong to no tensor")
    bad("trailing_bytes.safetensors", good + b"\0" * 8, "8 bytes after the last tensor", "belongs to no tensor")
    bad("unknown_dtype.safetensors", header_file(json.dumps({"a": entry("Q4", [2], 0, 8)}), eight),
        "dtype 'Q4' exists nowhere", "unsupported dtype 'Q4'")
    bad("f8_dtype.safetensors", header_file(json.dumps({"a": entry("F8_E4M3", [8], 0, 8)}), eight),
        "F8_E4M3 is valid safetensors but not a zoo dtype", "unsupported dtype 'F8_E4M3'")
    bad("size_mismatch.safetensors", header_file(json.dumps({"a": entry("F32", [3], 0, 8)}), eight),
        "shape [3] of F32 is 12 bytes, offsets span 8", "needs 12 bytes but data_offsets span 8")
    bad("shape_overflow.safetensors", header_file(json.dumps({"a": entry("F32", [2**40, 2**40], 0, 8)}), eight),
        "shape product overflows 64 bits", "overflows 64 bits")
    bad("number_overflow.safetensors",
        header_file('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,99999999999999999999999]}}', eight),
        "an offset past 2^64", "overflows 64 bits")
    bad("negative_offset.safetensors", header_file(json.dumps({"a": entry("F32", [2], -8, 0)}), eight),
        "data_offsets [-8, 0]", "negative number")
    bad("float_offset.safetensors", header_file('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8.0]}}', eight),
        "8.0 instead of 8", "not an integer")
    bad("shape_string.safetensors", header_file('{"a":{"dtype":"F32","shape":"2","data_offsets":[0,8]}}', eight),
        "shape is a string", "'shape' must be an array")
    bad("dtype_number.safetensors", header_file('{"a":{"dtype":4,"shape":[2],"data_offsets":[0,8]}}', eight),
        "dtype is a number", "'dtype' must be a string")
    bad("three_offsets.safetensors", header_file('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4,8]}}', eight),
        "three data_offsets", "must hold 2 integers")
    bad("missing_field.safetensors", header_file('{"a":{"dtype":"F32","shape":[2]}}', eight),
        "no data_offsets", "lacks data_offsets")
    bad("unknown_field.safetensors",
        header_file('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":1}}', eight),
        "an extra field (the library ignores it; zoo refuses)", "unknown field 'extra'")
    bad("duplicate_key.safetensors",
        header_file('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', eight),
        "the same name twice (the spec disallows it)", "appears twice")
    bad("metadata_not_string.safetensors",
        header_file('{"__metadata__":{"k":1},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', eight),
        "a metadata value that is a number", "must be a string")
    bad("entry_not_object.safetensors", header_file('{"a":[1,2]}', b""), "a tensor entry that is an array",
        "must be an object")

    (BAD / "expected.json").write_text(json.dumps(notes, indent=1) + "\n")
    for name, note in notes.items():
        print(f"  bad/{name}: library {note['library'][:90]}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Check safetensors files written by zoo against the real `safetensors` library (0.8.0).

    ZOO_SAFETENSORS_OUT=/tmp/zoo-st-out swift test --filter SafetensorsWriteTests
    $(../shared/oracle/setup) Fixtures/check_safetensors_writer.py /tmp/zoo-st-out

For every DIR/NAME.safetensors:
  1. safetensors.torch.load_file and safe_open must read it (the library's own validation).
  2. When Fixtures/safetensors/NAME.safetensors exists (the test rewrote a fixture), every tensor's
     name, dtype, shape and bytes and the metadata must equal what the library reads from the fixture.
  3. Re-saving what was read with safetensors.torch.save_file must give zoo's bytes exactly (when the
     metadata has more than one key, the library's order of metadata keys is random, so only the
     parsed headers and the data are compared).
Prints one line per file and exits 1 on any difference.
"""

import json
import struct
import sys
import tempfile
from pathlib import Path

import safetensors
import safetensors.torch as st
import torch

FIXTURES = Path(__file__).resolve().parent / "safetensors"


def raw(t):
    return t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""


def read(path):
    with safetensors.safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, (f.metadata() or {})


def split(blob):
    n = struct.unpack("<Q", blob[:8])[0]
    return json.loads(blob[8:8 + n]), blob[8 + n:]


def main(directory):
    files = sorted(Path(directory).glob("*.safetensors"))
    if not files:
        raise SystemExit(f"no .safetensors files in {directory}")
    failures = 0
    for path in files:
        problems = []
        try:
            tensors, metadata = read(path)
            st.load_file(str(path))
        except Exception as e:  # noqa: BLE001
            print(f"FAIL {path.name}: the library refuses it: {e}")
            failures += 1
            continue
        fixture = FIXTURES / path.name
        note = ""
        if fixture.exists():
            want, want_meta = read(fixture)
            if metadata != want_meta:
                problems.append(f"metadata {metadata} != {want_meta}")
            if set(tensors) != set(want):
                problems.append(f"names {sorted(tensors)} != {sorted(want)}")
            for k in set(tensors) & set(want):
                a, b = tensors[k], want[k]
                if a.dtype != b.dtype or a.shape != b.shape or raw(a) != raw(b):
                    problems.append(f"tensor {k}: {a.dtype} {list(a.shape)} differs from {b.dtype} {list(b.shape)}")
            note = f", values equal to fixture's ({len(want)} tensors)" if not problems else ""
            if fixture.read_bytes() == path.read_bytes():
                note += ", byte-identical to the library's fixture"
        with tempfile.TemporaryDirectory() as tmp:
            again = Path(tmp) / path.name
            st.save_file(tensors, str(again), metadata=metadata or None)
            ours, theirs = path.read_bytes(), again.read_bytes()
            if ours == theirs:
                note += ", byte-identical to save_file's output"
            elif len(metadata) > 1 and split(ours) == split(theirs) and len(ours) == len(theirs):
                note += ", equal to save_file's output up to metadata key order"
            else:
                problems.append("differs from save_file's output for the same tensors")
        if problems:
            failures += 1
            print(f"FAIL {path.name}: " + "; ".join(problems))
        else:
            print(f"ok   {path.name}: {len(tensors)} tensors load{note}")
    print(f"{len(files) - failures} of {len(files)} files pass")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(sys.argv[1])

#!/usr/bin/env python3
"""Check zoo's PyTorch writer against real PyTorch.

Run from the repository root:

    $(../shared/oracle/setup) Fixtures/check_writer.py ZOO_BINARY [--keep]

For every checkpoint fixture in Fixtures/torch (zip, legacy and tar; not bad/) it runs

    ZOO_BINARY convert Fixtures/torch/NAME.pth OUTDIR/NAME.pth

(zoo writes a zip checkpoint of the whole object), then:
  * loads: torch.load(OUTDIR/NAME.pth, weights_only=True) succeeds. Only if torch refuses a numpy
    scalar is it retried with numpy's scalar/dtype added through torch.serialization.safe_globals,
    and the report says so.
  * values equal: the loaded object matches torch.load(NAME.pth, weights_only=False): the same
    container types, keys in the same order, the same non-tensor leaves (same Python types, floats
    bitwise), state-dict _metadata, and every tensor's dtype, shape, stride, requires_grad, Parameter-
    ness and bytes (bitwise, so NaN payloads count).
  * sharing kept (reported, not fatal): storage offsets and which tensors share a storage.
  * byte-identical: zoo's file equals torch.save(torch.load(NAME.pth, weights_only=False)) written
    under the same basename in another directory.
Prints one line per file and a summary table; exits 1 if any conversion, load or value check fails.
"""

import os
import sys

if os.environ.get("PYTHONHASHSEED") != "0":  # set iteration order inside torch.save's pickles
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable] + sys.argv)

import argparse
import struct
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

assert torch.__version__.split("+")[0] == "2.9.1", f"need torch==2.9.1, got {torch.__version__}"

FIXTURES = [
    "dtypes.pth", "views.pth", "shared.pth", "nested.pth", "nested_module.pth", "ambiguous.pth",
    "bigendian.pth", "legacy.pth", "tar.pth", "alexnet_small.pth", "alexnet_small_legacy.pth",
    "alexnet_small_tar.pth", "fp16_model.pth",
]


def numpy_safe_globals():
    import numpy._core.multiarray
    return [numpy._core.multiarray.scalar, np.dtype, type(np.dtype(np.float64))]


def tensor_bytes(t):
    return t.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def same_leaf(a, b):
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return struct.pack("<d", a) == struct.pack("<d", b)
    if isinstance(a, np.generic):
        return a.dtype == b.dtype and a.tobytes() == b.tobytes()
    if isinstance(a, (set, frozenset)):
        return len(a) == len(b) and all(any(same_leaf(x, y) for y in b) for x in a)
    return a == b


def compare(ref, got, path, errors, tensors):
    """Append human-readable differences to errors; collect (path, ref, got) tensor pairs."""
    where = path or "<root>"
    if isinstance(ref, torch.Tensor):
        if not isinstance(got, torch.Tensor):
            errors.append(f"{where}: expected a tensor, got {type(got).__name__}")
            return
        tensors.append((where, ref, got))
        for what, x, y in (("dtype", ref.dtype, got.dtype), ("shape", tuple(ref.shape), tuple(got.shape)),
                           ("stride", ref.stride(), got.stride()),
                           ("requires_grad", ref.requires_grad, got.requires_grad),
                           ("is Parameter", isinstance(ref, nn.Parameter), isinstance(got, nn.Parameter))):
            if x != y:
                errors.append(f"{where}: {what} {x} != {y}")
        if ref.dtype == got.dtype and ref.shape == got.shape and tensor_bytes(ref) != tensor_bytes(got):
            errors.append(f"{where}: values differ")
        return
    if type(ref) is not type(got):
        errors.append(f"{where}: type {type(ref).__name__} != {type(got).__name__}")
        return
    if isinstance(ref, dict):
        if list(ref.keys()) != list(got.keys()):
            errors.append(f"{where}: keys {list(ref.keys())[:8]} != {list(got.keys())[:8]}")
            return
        if getattr(ref, "_metadata", None) != getattr(got, "_metadata", None):
            errors.append(f"{where}: _metadata differs")
        for k in ref:
            compare(ref[k], got[k], f"{path}.{k}" if path else str(k), errors, tensors)
    elif isinstance(ref, (list, tuple)):
        if len(ref) != len(got):
            errors.append(f"{where}: length {len(ref)} != {len(got)}")
            return
        for i, (x, y) in enumerate(zip(ref, got)):
            compare(x, y, f"{path}.{i}" if path else str(i), errors, tensors)
    elif not same_leaf(ref, got):
        errors.append(f"{where}: {ref!r} != {got!r}")


def sharing_notes(tensors):
    """Differences in storage offsets and in which tensors share a storage."""
    notes = []
    ref_groups, got_groups = {}, {}
    pairs = set()
    for where, r, g in tensors:
        if r.storage_offset() != g.storage_offset():
            notes.append(f"{where}: storage_offset {r.storage_offset()} != {g.storage_offset()}")
        rk = r.untyped_storage().data_ptr() if r.untyped_storage().nbytes() else ("e", where)
        gk = g.untyped_storage().data_ptr() if g.untyped_storage().nbytes() else ("e", where)
        pairs.add((ref_groups.setdefault(rk, len(ref_groups)), got_groups.setdefault(gk, len(got_groups))))
    if len(ref_groups) != len(got_groups) or len(pairs) != len(ref_groups):
        notes.append(f"storages: {len(ref_groups)} in torch.load of the original, {len(got_groups)} "
                     f"in zoo's file, sharing pattern differs")
    return notes


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("zoo", help="path to the zoo binary")
    ap.add_argument("--fixtures", default=str(Path(__file__).resolve().parent / "torch"))
    ap.add_argument("--keep", action="store_true", help="keep the output directories")
    args = ap.parse_args()
    fixtures = Path(args.fixtures)
    outdir = Path(tempfile.mkdtemp(prefix="zoo-convert-"))
    refdir = Path(tempfile.mkdtemp(prefix="torch-save-"))
    rows, failed = [], False

    for name in FIXTURES:
        src, out, ref_path = fixtures / name, outdir / name, refdir / name
        row = {"name": name, "converted": "no", "loads": "no", "values": "no", "sharing": "-",
               "bytes": "no", "note": ""}
        rows.append(row)
        ref = torch.load(src, weights_only=False)
        torch.save(ref, ref_path)
        try:
            r = subprocess.run([args.zoo, "convert", str(src), str(out)], capture_output=True,
                               text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as e:
            row["note"] = f"convert failed to run: {e}"
            failed = True
            print(f"{name}: {row['note']}")
            continue
        if r.returncode != 0 or not out.exists():
            msg = (r.stderr.strip() or r.stdout.strip()).splitlines()
            row["note"] = f"convert exit {r.returncode}: {msg[-1] if msg else ''}"
            failed = True
            print(f"{name}: {row['note']}")
            continue
        row["converted"] = "yes"
        row["bytes"] = "yes" if out.read_bytes() == ref_path.read_bytes() else "no"
        try:
            got = torch.load(out, weights_only=True)
            row["loads"] = "yes"
        except Exception as e:  # noqa: BLE001 - torch's refusal is the finding
            msg = str(e)
            if "numpy" in msg:
                try:
                    with torch.serialization.safe_globals(numpy_safe_globals()):
                        got = torch.load(out, weights_only=True)
                    row["loads"] = "yes*"
                    row["note"] = "loads with numpy scalar/dtype in safe_globals (as torch.save's own file)"
                except Exception as e2:  # noqa: BLE001
                    msg = str(e2)
            if row["loads"] == "no":
                line = next((l.strip() for l in msg.splitlines() if "WeightsUnpickler" in l),
                            msg.strip().splitlines()[-1] if msg.strip() else "")
                row["note"] = f"torch.load(weights_only=True) failed: {line[:200]}"
                failed = True
                print(f"{name}: {row['note']}")
                continue
        errors, tensors = [], []
        compare(ref, got, "", errors, tensors)
        row["values"] = "yes" if not errors else "no"
        if errors:
            failed = True
            row["note"] = (row["note"] + "; " if row["note"] else "") + f"{len(errors)} differences"
        notes = sharing_notes(tensors) if not errors else []
        row["sharing"] = "yes" if not errors and not notes else ("no" if notes else "-")
        print(f"{name}: loads: {row['loads']}, values equal: {row['values']}, sharing kept: "
              f"{row['sharing']}, byte-identical to torch.save: {row['bytes']}"
              + (f" ({row['note']})" if row["note"] else ""))
        for e in errors[:20]:
            print(f"    value: {e}")
        for n in notes[:10]:
            print(f"    sharing: {n}")

    print()
    head = ("file", "converted", "loads", "values equal", "sharing kept", "byte-identical")
    keys = ("name", "converted", "loads", "values", "sharing", "bytes")
    widths = [max(len(h), *(len(r[k]) for r in rows)) for h, k in zip(head, keys)]
    print("  ".join(h.ljust(w) for h, w in zip(head, widths)))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(r[k].ljust(w) for k, w in zip(keys, widths)))
    if any(r["loads"] == "yes*" for r in rows):
        print("yes* = needed torch.serialization.safe_globals for numpy scalar/dtype "
              "(torch.save's own file needs the same)")
    if any(r["name"] == "nested.pth" and r["converted"] == "yes" and r["bytes"] == "no" for r in rows):
        print("note: nested.pth holds a set; its pickled order follows Python's string hashing "
              "(this script runs with PYTHONHASHSEED=0, as make_fixtures.py did)")
    if args.keep:
        print(f"zoo output: {outdir}\ntorch.save reference: {refdir}")
    else:
        for d in (outdir, refdir):
            for p in d.iterdir():
                p.unlink()
            d.rmdir()
    ok = sum(r["loads"] != "no" and r["values"] == "yes" for r in rows)
    print(f"{ok}/{len(rows)} files load and match"
          f"; {sum(r['bytes'] == 'yes' for r in rows)}/{len(rows)} byte-identical")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

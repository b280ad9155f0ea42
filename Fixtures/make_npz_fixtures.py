#!/usr/bin/env python3
"""Generate the .npz fixtures under Fixtures/npz/ with numpy's own savez / savez_compressed.

Run from the repository root:

    $(../shared/oracle/setup) Fixtures/make_npz_fixtures.py

Pins numpy==2.4.6; deterministic (fixed values, zipfile timestamps fixed by numpy's writer).

Written:
  arrays.npz             np.savez (stored records): x f32 [2, 3], y f64 [4], i i64 [2, 2], e f32 [0, 3],
                         s f32 [] (0-d)
  arrays_compressed.npz  np.savez_compressed (deflated records) of the same arrays
  arrays.NAME.npy        each array alone, by np.save: what every record must read as
  positional.npz         np.savez(a, b): records arr_0.npy, arr_1.npy
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import oracle_env  # noqa: E402

oracle_env.deterministic()
import numpy as np  # noqa: E402

oracle_env.require(numpy="2.4.6")

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "npz")
os.makedirs(OUT, exist_ok=True)
arrays = {
    "x": np.arange(6, dtype=np.float32).reshape(2, 3) / 7,
    "y": np.array([1.5, -2.25, np.inf, -0.0], dtype=np.float64),
    "i": np.array([[1, -2], [2**62, -(2**63)]], dtype=np.int64),
    "e": np.zeros((0, 3), dtype=np.float32),
    "s": np.array(3.25, dtype=np.float32),
}
np.savez(os.path.join(OUT, "arrays.npz"), **arrays)
np.savez_compressed(os.path.join(OUT, "arrays_compressed.npz"), **arrays)
for name, value in arrays.items():
    np.save(os.path.join(OUT, f"arrays.{name}.npy"), value)
np.savez(os.path.join(OUT, "positional.npz"), np.ones(3, dtype=np.float32), np.arange(4, dtype=np.int64))
print(f"wrote {OUT}")

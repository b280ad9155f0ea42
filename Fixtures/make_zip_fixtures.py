#!/usr/bin/env python3
"""Re-zip Fixtures/torch/alexnet_small.pth the way other tools do, for the zip reader's tests.

Run from the repository root, after Fixtures/make_fixtures.py (any Python 3.8+, standard library only):

    python3 Fixtures/make_zip_fixtures.py

Writes, with the same records in the same order:
  * Fixtures/torch/alexnet_small_deflated.pth: every record ZIP_DEFLATED (level 9), local headers
    carrying CRC and sizes, no data descriptors, no zip64 records, no alignment padding — what
    `zip`/`zipfile` produce when a checkpoint is repacked. torch loads it (without mmap).
  * Fixtures/torch/alexnet_small_renamed.pth: stored, under the top-level folder "renamed_folder"
    instead of "alexnet_small" — torch takes the folder name from the first entry and accepts any.

Dates are fixed (1980-01-01) and attributes explicit, so the output is byte-for-byte reproducible.
"""

import os
import zipfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch")
SOURCE = os.path.join(ROOT, "alexnet_small.pth")


def rezip(destination, compression, rename=None):
    with zipfile.ZipFile(SOURCE) as source, zipfile.ZipFile(destination, "w") as target:
        for info in source.infolist():
            name = info.filename
            if rename is not None:
                name = rename + name[name.index("/"):]
            out = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            out.compress_type = compression
            out.create_system = 3
            out.external_attr = 0o644 << 16
            target.writestr(out, source.read(info), compresslevel=9 if compression == zipfile.ZIP_DEFLATED else None)


if __name__ == "__main__":
    rezip(os.path.join(ROOT, "alexnet_small_deflated.pth"), zipfile.ZIP_DEFLATED)
    rezip(os.path.join(ROOT, "alexnet_small_renamed.pth"), zipfile.ZIP_STORED, rename="renamed_folder")

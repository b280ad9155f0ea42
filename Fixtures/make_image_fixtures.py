#!/usr/bin/env python3
"""Generate the image decoding fixtures under Fixtures/images/ from scikit-image's bundled photos.

Run from the repository root with the oracle venv:

    /root/.cache/zoo-oracle/bin/python Fixtures/make_image_fixtures.py

Pins pillow==13.0.0, scikit-image==0.26.0, pypng==0.20220715.0, numpy==2.4.6; deterministic (no
randomness but a seeded generator; PIL and pypng write the same bytes each run).

The files (PIL writes what it can, pypng the 16-bit, 2/4-bit gray, tRNS and Adam7 ones):
  The issue's photo set (other work uses these names):
    chelsea.jpg              the cat, 451x300, RGB 4:2:0 quality 90
    coffee_portrait.jpg      a 270x400 portrait crop of coffee, progressive 4:2:0 quality 85
    camera_gray.jpg          the cameraman downscaled to 384x384, grayscale quality 90
    rocket.jpg               skimage's rocket.jpg as shipped (640x427, 4:4:4, ICC profile)
    astronaut_portrait.png   a 160x240 portrait of the astronaut, RGB 8-bit
    camera.png               the cameraman downscaled to 256x256, 8-bit gray
    logo_rgba.png            skimage's logo downscaled to 160x160, RGBA 8-bit
  One small file (<= 96 px) per other PNG colour type / bit depth, palette and interlace case, and
  per other JPEG kind: 4:2:2, 4:4:4, odd sizes, restart markers, RGB (not YCbCr), CMYK (Adobe, as PIL writes it),
  YCCK (PIL's CMYK file with the Adobe transform byte set to 2), EXIF orientation 6 (JPEG APP1)
  and 8 (PNG eXIf).

Written besides the images:
  expected.npz    for each FILE, "FILE": PIL's Image.open(FILE).convert("RGB") pixels, uint8
                  [rows, width, 3] — every row for the small files, the rows listed in the manifest
                  for the photos (the first and last 16 and every 13th, so every phase of a JPEG's
                  8/16-row blocks is covered: whole photos would not fit the fixture budget);
                  "FILE.transposed": ImageOps.exif_transpose(Image.open(FILE)).convert("RGB") for
                  the files with an orientation; "orientation.source" (a 7x4 RGB crop) and
                  "orientation.N" for N in 2...8: exif_transpose of that crop tagged N.
  manifest.json   {"files": {FILE: {"format", "mode", "size": [w, h], "bit_depth",
                  "exif_orientation" (or null), "rows" (the rows in expected.npz, or "all"),
                  "sums" (per channel, the sum of every pixel of the whole RGB image),
                  "truncated_at" (byte counts at which PIL refuses the file cut short: a quarter,
                  half and three quarters, and for JPEG the end marker cut when PIL refuses that),
                  "truncated_ok_at" (JPEG cut in its end marker, which PIL decodes to the same pixels)}}}.
                  mode and size are PIL's, bit_depth pypng's (PNG) or PIL's SOF bits (JPEG).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import oracle_env  # noqa: E402

oracle_env.deterministic()
import io  # noqa: E402
import shutil  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import PIL  # noqa: E402
import png  # noqa: E402
import skimage  # noqa: E402
from PIL import Image, ImageOps  # noqa: E402

oracle_env.require(PIL="13.0.0", skimage="0.26.0", numpy="2.4.6")
assert png.__version__ == "0.20220715.0", png.__version__

# convert("RGB") of a palette file with a tRNS chunk suggests RGBA; the RGB conversion is what we record.
warnings.filterwarnings("ignore", "Palette images with Transparency")
DATA = os.path.join(os.path.dirname(skimage.__file__), "data")
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "images")
rng = np.random.default_rng(14)


def source(name):
    return Image.open(os.path.join(DATA, name))


def path(name):
    return os.path.join(OUT, name)


def pypng(name, rows, **kw):
    """Writes `rows` (an [h, w * channels] array) with pypng."""
    rows = np.asarray(rows)
    with open(path(name), "wb") as f:
        png.Writer(width=kw.pop("width", None) or rows.shape[1] // kw.pop("channels", 1),
                   height=rows.shape[0], **kw).write(f, rows.tolist())


def widen(a8):
    """A 16-bit version of 8-bit samples with varied low bytes (so taking the high byte and rounding differ)."""
    return a8.astype(np.uint16) * 256 + rng.integers(0, 256, a8.shape, dtype=np.uint16)


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    chelsea = source("chelsea.png").convert("RGB")
    coffee = source("coffee.png").convert("RGB")
    astronaut = source("astronaut.png").convert("RGB")
    camera = source("camera.png").convert("L")
    horse = source("horse.png").convert("RGBA")

    # The photo set.
    chelsea.save(path("chelsea.jpg"), quality=90, subsampling=2)
    coffee.crop((165, 0, 435, 400)).save(path("coffee_portrait.jpg"), quality=85, subsampling=2, progressive=True)
    camera.resize((384, 384), Image.Resampling.LANCZOS).save(path("camera_gray.jpg"), quality=90)
    shutil.copyfile(os.path.join(DATA, "rocket.jpg"), path("rocket.jpg"))
    astronaut.crop((120, 0, 400, 420)).resize((160, 240), Image.Resampling.LANCZOS).save(path("astronaut_portrait.png"))
    camera.resize((256, 256), Image.Resampling.LANCZOS).save(path("camera.png"))
    source("logo.png").convert("RGBA").resize((160, 160), Image.Resampling.LANCZOS).save(path("logo_rgba.png"))

    # Small JPEGs.
    face = chelsea.crop((170, 50, 234, 98))                       # 64x48, the cat's face
    face.save(path("jpeg_422.jpg"), quality=90, subsampling=1)
    face.save(path("jpeg_444.jpg"), quality=90, subsampling=0)
    chelsea.crop((170, 50, 231, 95)).save(path("jpeg_odd_420.jpg"), quality=80, subsampling=2)  # 61x45
    camera.crop((200, 60, 253, 127)).save(path("jpeg_gray_progressive.jpg"), quality=75, progressive=True)
    face.save(path("jpeg_restart.jpg"), quality=90, subsampling=2, restart_marker_rows=1)
    face.save(path("jpeg_rgb.jpg"), quality=90, keep_rgb=True)   # RGB components (Adobe transform 0), no YCbCr
    rgb = np.asarray(face, dtype=np.int32)
    k = 255 - rgb.max(axis=2)                                     # under-colour removal, so K varies
    cmy = np.where(k[..., None] < 255, (255 - rgb - k[..., None]) * 255 // np.maximum(255 - k[..., None], 1), 0)
    cmyk = np.concatenate([cmy, k[..., None]], axis=2).astype(np.uint8)
    Image.frombytes("CMYK", face.size, cmyk.tobytes()).save(path("jpeg_cmyk.jpg"), quality=90)
    # YCCK: the same K and, for C, M, Y, the YCbCr of (C, M, Y) taken as RGB, written by PIL as CMYK;
    # setting the Adobe transform byte to 2 makes libjpeg convert it back (YCC -> RGB, inverted).
    ycc = np.asarray(Image.frombytes("RGB", face.size, np.ascontiguousarray(cmyk[..., :3]).tobytes()).convert("YCbCr"))
    layers = np.concatenate([255 - ycc, cmyk[..., 3:]], axis=2).astype(np.uint8)
    buffer = io.BytesIO()
    Image.frombytes("CMYK", face.size, layers.tobytes()).save(buffer, "JPEG", quality=90)
    data = bytearray(buffer.getvalue())
    adobe = data.find(b"Adobe") - 4                               # FF EE, length, "Adobe", 6 bytes, transform
    assert adobe > 0 and data[adobe:adobe + 2] == b"\xff\xee" and data[adobe + 15] == 0, "PIL's CMYK JPEG has an Adobe marker with transform 0"
    data[adobe + 15] = 2
    with open(path("jpeg_ycck.jpg"), "wb") as f:
        f.write(data)
    exif = Image.Exif()
    exif[0x0112] = 6
    chelsea.crop((130, 40, 178, 72)).save(path("jpeg_exif6.jpg"), quality=90, exif=exif.tobytes())
    exif[0x0112] = 8
    astronaut.crop((180, 60, 228, 90)).save(path("png_exif8.png"), exif=exif)

    # Small PNGs, every colour type and bit depth.
    gray = np.asarray(camera.crop((180, 40, 244, 88)))             # 64x48
    horse_small = horse.crop((80, 60, 144, 108))
    colour = np.asarray(astronaut.crop((200, 80, 248, 120)))      # 48x40
    camera.crop((180, 40, 244, 88)).convert("1").save(path("png_gray1.png"))
    pypng("png_gray2.png", gray >> 6, greyscale=True, bitdepth=2)
    pypng("png_gray4.png", gray >> 4, greyscale=True, bitdepth=4)
    # 16-bit gray: the top half below 256 (PIL clips I;16 to 255 converting to RGB), the bottom half full range.
    g16 = widen(gray)
    g16[:24] = gray[:24]
    pypng("png_gray16.png", g16, greyscale=True, bitdepth=16)
    pypng("png_gray8_trns.png", gray, greyscale=True, bitdepth=8, transparent=int(gray[0, 0]))
    la = np.asarray(horse_small.convert("LA"))
    Image.fromarray(la, "LA").save(path("png_gray_alpha8.png"))
    pypng("png_gray_alpha16.png", widen(la).reshape(la.shape[0], -1), greyscale=True, alpha=True, bitdepth=16, channels=2)
    pypng("png_rgb16.png", widen(colour).reshape(40, -1), greyscale=False, bitdepth=16, channels=3)
    pypng("png_rgb8_trns.png", colour.reshape(40, -1), greyscale=False, bitdepth=8, channels=3,
          transparent=tuple(int(v) for v in colour[0, 0]))
    rgba = np.asarray(horse_small)
    pypng("png_rgba16.png", widen(rgba).reshape(48, -1), greyscale=False, alpha=True, bitdepth=16, channels=4)
    small = astronaut.crop((200, 80, 264, 128))
    for colours, name in ((200, "png_palette8.png"), (16, "png_palette4.png"), (4, "png_palette2.png"), (2, "png_palette1.png")):
        small.quantize(colours, dither=Image.Dither.NONE).save(path(name))
    quantized = small.quantize(64, dither=Image.Dither.NONE)
    quantized.save(path("png_palette8_trns.png"), transparency=bytes(range(0, 256, 4)))
    # A palette of 5 entries (with 3 alphas) while the 4-bit samples reach 15: PIL shows the rest black.
    indices = np.asarray(small.quantize(16, dither=Image.Dither.NONE))
    pypng("png_palette_short.png", indices, bitdepth=4,
          palette=[(255, 0, 0, 128), (0, 255, 0, 0), (0, 0, 255, 200), (250, 250, 250), (10, 10, 10)])
    # Adam7, at sizes that leave some passes narrow or empty.
    pypng("png_adam7_rgb8.png", colour[:29, :37].reshape(29, -1), greyscale=False, bitdepth=8, channels=3, interlace=True)
    pypng("png_adam7_gray1.png", (gray[:31, :45] > 100).astype(np.uint8), greyscale=True, bitdepth=1, interlace=True)
    pypng("png_adam7_palette4.png", indices[:19, :23], bitdepth=4, interlace=True,
          palette=[tuple(int(v) for v in rng.integers(0, 256, 3)) for _ in range(16)])
    pypng("png_adam7_rgba16.png", widen(rgba[:13, :11]).reshape(13, -1), greyscale=False, alpha=True, bitdepth=16,
          channels=4, interlace=True)
    pypng("png_adam7_gray16.png", g16[20:29, 5:12], greyscale=True, bitdepth=16, interlace=True)
    pypng("png_adam7_tiny.png", colour[:2, :3].reshape(2, -1), greyscale=False, bitdepth=8, channels=3, interlace=True)

    write_expected()


def bit_depth(name):
    if name.endswith(".png"):
        return png.Reader(filename=path(name)).read()[3]["bitdepth"]
    return Image.open(path(name)).bits


def pil_refuses(data):
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
    except (OSError, SyntaxError, ValueError):
        return True
    return False


def write_expected():
    arrays, files = {}, {}
    for name in sorted(os.listdir(OUT)):
        with Image.open(path(name)) as im:
            fmt, mode, size = im.format, im.mode, list(im.size)
            orientation = im.getexif().get(0x0112)
            rgb = np.asarray(im.convert("RGB"))
            transposed = np.asarray(ImageOps.exif_transpose(im).convert("RGB")) if orientation else None
        h = rgb.shape[0]
        rows = "all" if rgb.shape[0] * rgb.shape[1] <= 96 * 96 else sorted(set(range(16)) | set(range(h - 16, h)) | set(range(0, h, 13)))
        arrays[name] = rgb if rows == "all" else rgb[rows]
        if transposed is not None:
            arrays[name + ".transposed"] = transposed
        with open(path(name), "rb") as f:
            data = f.read()
        n = len(data)
        cuts, cuts_ok = [n // 4, n // 2, 3 * n // 4], []
        assert all(pil_refuses(data[:c]) for c in cuts), name
        # Without the end-of-image marker PIL refuses a JPEG only when the last rows needed more data.
        for c in [n - 2, n - 1] if fmt == "JPEG" else []:
            if pil_refuses(data[:c]):
                cuts.append(c)
            else:
                assert np.array_equal(np.asarray(Image.open(io.BytesIO(data[:c])).convert("RGB")), rgb), name
                cuts_ok.append(c)
        files[name] = {"format": fmt, "mode": mode, "size": size, "bit_depth": bit_depth(name),
                       "exif_orientation": orientation, "rows": rows,
                       "sums": [int(s) for s in rgb.reshape(-1, 3).sum(axis=0, dtype=np.int64)],
                       "truncated_at": cuts, "truncated_ok_at": cuts_ok}
    crop = Image.open(path("chelsea.jpg")).convert("RGB").crop((200, 100, 207, 104))
    arrays["orientation.source"] = np.asarray(crop)
    for tag in range(2, 9):
        tagged = crop.copy()
        tagged.getexif()[0x0112] = tag
        arrays[f"orientation.{tag}"] = np.asarray(ImageOps.exif_transpose(tagged))
    np.savez_compressed(path("expected.npz"), **arrays)
    with open(path("manifest.json"), "w") as f:
        f.write(oracle_env.format_json({"files": files}))
    total = sum(os.path.getsize(path(n)) for n in os.listdir(OUT))
    print(f"wrote {len(files)} images, expected.npz and manifest.json to {OUT} ({total // 1024} KiB)")


if __name__ == "__main__":
    main()

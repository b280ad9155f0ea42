#!/usr/bin/env python3
"""Generate Fixtures/preprocess/: PIL's resize and torchvision's evaluation transform on small images.

Run from the repository root with the oracle venv's python:

    /root/.cache/zoo-oracle/bin/python Fixtures/make_preprocess_fixtures.py

Pins torch==2.9.1, torchvision==0.24.1, PIL==13.0.0, skimage==0.26.0; deterministic (fixed crops, a
seeded generator, numpy's zip writer), so a re-run writes the same files.

Inputs are crops of scikit-image's bundled photos (read with PIL) and small synthetic images. Every
array is uint8 in PIL's layout, [height, width, channels] (channels 1 for "L"); the .npz files are
written with np.savez_compressed.

resize.npz / resize.json -- `Image.resize((width, height), filter)` (PIL 13, no box, no reducing_gap)
  for the six filters at several target sizes per input: downscale by non-integer factors, strong
  downscale (at least 4x on one axis), upscale, one axis only, identity. Array `INPUT` is an input,
  `INPUT.FILTER.WxH` PIL's output; resize.json lists the inputs (mode, where they come from) and the
  cases, each [input, filter, width, height, expected array]. An identity case's expected array is the
  input itself (PIL returns a copy; the script asserts it is equal).

transform.npz / transform.json -- torchvision's `ImageClassification` preset (the class behind
  `weights.transforms()`) on a photo crop and a portrait crop, for zoo's presets (256/224, 342/299,
  232/224 bicubic, 255/240, 384/384 bicubic, 236/224), a resize that leaves the image as it is, a crop
  larger than the resized image (torchvision pads with 0) on either axis, and mean/std 0.5.
  For each case, `crop` is the 8-bit picture torchvision feeds to `pil_to_tensor` (F.resize, then
  F.center_crop on the PIL image). It is kept as `CASE.row_crc32`, int64 [crop]: zlib's CRC-32 of each
  of its rows (crop * 3 bytes, RGB interleaved), because photo crops hardly compress (the eleven crops
  themselves would take about 1.5 MB). transform.json records the resized size, the crop's origin in
  the resized image (negative where torchvision pads; the script checks it against the crop) and the
  name of the case's normalization table.
  `normalize.KEY` is float32 [3, 256]: torchvision's value for byte v in channel c after
  pil_to_tensor -> convert_image_dtype(float) -> normalize(mean, std), made by running those functions
  on an image that holds every byte value in every channel. The float output of a case is therefore
      out[c, y, x] = normalize.KEY[c, crop[y, x, c]]
  and the script asserts that this reconstruction equals the preset's own float output bit for bit.
  It also asserts the arithmetic this amounts to in float32: (v / 255 - mean) / std, each step
  rounded to float32, with mean and std rounded to float32 first.
"""
import json
import os
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import oracle_env  # noqa: E402

oracle_env.deterministic()
import numpy as np  # noqa: E402
import PIL  # noqa: E402
import skimage  # noqa: E402
import skimage.data  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402
from PIL import Image  # noqa: E402
from torchvision.transforms import InterpolationMode  # noqa: E402
from torchvision.transforms import functional as F  # noqa: E402
from torchvision.transforms._presets import ImageClassification  # noqa: E402

oracle_env.require(torch="2.9.1", torchvision="0.24.1", PIL="13.0.0", skimage="0.26.0")
torch.set_num_threads(1)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "preprocess")
os.makedirs(OUT, exist_ok=True)
FILTERS = {
    "nearest": Image.Resampling.NEAREST, "box": Image.Resampling.BOX, "bilinear": Image.Resampling.BILINEAR,
    "hamming": Image.Resampling.HAMMING, "bicubic": Image.Resampling.BICUBIC, "lanczos": Image.Resampling.LANCZOS,
}
rng = np.random.default_rng(14)


def photo(name, box, mode="RGB"):
    """A crop (left, top, width, height) of skimage's bundled NAME.png, converted to `mode` by PIL."""
    left, top, width, height = box
    image = Image.open(os.path.join(skimage.data.data_dir, name + ".png"))
    return image.convert(mode).crop((left, top, left + width, top + height))


def edges(width, height, channels):
    """Sharp edges: 0/255 stripes and a checkerboard, with saturated colours, so the filters' negative
    lobes overshoot and PIL's clipping shows."""
    y, x = np.mgrid[0:height, 0:width]
    planes = [((x // 3) % 2) * 255, (((x // 5) + (y // 4)) % 2) * 255, np.where(x + 2 * y > width, 255, 0)]
    return np.stack(planes[:channels], axis=-1).astype(np.uint8)


def as_array(image):
    """PIL image -> uint8 [height, width, channels]."""
    array = np.asarray(image, dtype=np.uint8)
    return array[:, :, None] if array.ndim == 2 else array


def from_array(array):
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[array.shape[2]]
    return Image.fromarray(array[:, :, 0] if mode == "L" else array, mode)


def noise(width, height, channels):
    return rng.integers(0, 256, size=(height, width, channels), dtype=np.uint8)


def noise_rgba(width, height):
    array = noise(width, height, 4)
    array[0, :, 3] = 0    # fully transparent: PIL keeps the colour when unpremultiplying
    array[1, :, 3] = 255  # opaque
    array[2, :, 3] = rng.integers(1, 8, size=width)  # nearly transparent: large unpremultiply factors
    return array


# ---------------------------------------------------------------------------------------------------
# PIL's resize
inputs = {
    "chelsea": (as_array(photo("chelsea", (201, 71, 96, 72))), "skimage chelsea.png crop (201, 71) 96x72"),
    "coffee": (as_array(photo("coffee", (233, 117, 35, 23))), "skimage coffee.png crop (233, 117) 35x23"),
    "astronaut": (as_array(photo("astronaut", (171, 69, 23, 31))), "skimage astronaut.png crop (171, 69) 23x31"),
    "camera_l": (as_array(photo("camera", (201, 83, 45, 39), "L")), "skimage camera.png crop (201, 83) 45x39, mode L"),
    "camera_rgb": (as_array(photo("camera", (160, 40, 31, 27), "RGB")),
                   "skimage camera.png crop (160, 40) 31x27, converted to RGB"),
    "noise": (noise(23, 17, 3), "uniform random bytes"),
    "edges": (edges(40, 29, 3), "stripes and checkerboard of 0 and 255"),
    "edges_l": (edges(37, 31, 1), "stripes of 0 and 255, mode L"),
    "row": (noise(53, 1, 3), "one row of random bytes"),
    "column_l": (noise(1, 47, 1), "one column of random bytes, mode L"),
    "noise_rgba": (noise_rgba(19, 13), "random bytes; alpha 0, 255 and 1-7 on rows 0, 1, 2"),
}


def targets(width, height):
    """The sizes each input is resized to."""
    sizes = [
        (max(1, int(width / 1.37)), max(1, int(height / 1.61))),  # downscale, non-integer factors
        (max(1, width // 5), max(1, int(height / 4.3))),           # strong downscale (>= 4x)
        (width * 3 // 2 + 1, height * 7 // 4),                     # upscale
        (width, max(1, height * 2 // 3)),                          # vertical axis only
        (width * 4 // 3 + 1, height),                              # horizontal axis only
        (width, height),                                           # identity
    ]
    if height == 1:
        sizes.append((width // 2, 3))  # one row grows to three
    if width == 1:
        sizes.append((2, height // 3))
    return list(dict.fromkeys(sizes))


arrays = {}
cases = []
for name, (array, source) in inputs.items():
    arrays[name] = array
    image = from_array(array)
    height, width = array.shape[:2]
    # The larger photo only shrinks (its upscales would make the fixture big), down to 1/8.7: wide kernels.
    sizes = targets(width, height)[:2] + [(11, 9)] if name == "chelsea" else targets(width, height)
    for size in sizes:
        for filter_name, filter_id in FILTERS.items():
            result = as_array(image.resize(size, filter_id))
            assert result.shape == (size[1], size[0], array.shape[2])
            if size == (width, height):
                assert np.array_equal(result, array)
                key = name
            else:
                key = f"{name}.{filter_name}.{size[0]}x{size[1]}"
                arrays[key] = result
            cases.append([name, filter_name, size[0], size[1], key])

np.savez_compressed(os.path.join(OUT, "resize.npz"), **arrays)
manifest = {
    "pil": PIL.__version__,
    "inputs": {name: {"mode": from_array(array).mode, "source": source} for name, (array, source) in inputs.items()},
    "case_fields": ["input", "filter", "width", "height", "expected"],
    "cases": cases,
}
with open(os.path.join(OUT, "resize.json"), "w") as f:
    f.write(oracle_env.format_json(manifest))

# ---------------------------------------------------------------------------------------------------
# torchvision's evaluation transform
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
HALF = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
MODES = {"nearest": InterpolationMode.NEAREST, "bilinear": InterpolationMode.BILINEAR,
         "bicubic": InterpolationMode.BICUBIC, "lanczos": InterpolationMode.LANCZOS}
photos = {
    "landscape": (as_array(photo("chelsea", (101, 21, 300, 241))), "skimage chelsea.png crop (101, 21) 300x241"),
    "portrait": (as_array(photo("astronaut", (150, 30, 121, 173))), "skimage astronaut.png crop (150, 30) 121x173"),
}
transform_cases = [
    # name, input, resize, crop, interpolation, mean/std
    ("resnet", "landscape", 256, 224, "bilinear", IMAGENET),
    ("inception", "landscape", 342, 299, "bilinear", IMAGENET),
    ("swin_t", "landscape", 232, 224, "bicubic", IMAGENET),
    ("efficientnet_b1", "landscape", 255, 240, "bilinear", IMAGENET),
    ("efficientnet_v2_s", "landscape", 384, 384, "bicubic", IMAGENET),
    ("regnet", "landscape", 236, 224, "bilinear", IMAGENET),
    ("unresized", "landscape", 241, 224, "bilinear", IMAGENET),   # torchvision skips the resize
    ("padded_height", "landscape", 201, 224, "bicubic", HALF),    # height 201 < 224: pad 11 above, 12 below
    ("portrait", "portrait", 256, 224, "bilinear", IMAGENET),
    ("padded_width", "portrait", 200, 224, "lanczos", HALF),       # width 200 < 224: pad 12 left and right
    ("nearest", "portrait", 170, 160, "nearest", IMAGENET),
]


def normalization_table(mean, std):
    """torchvision's float for byte v in channel c, through the functions the preset calls."""
    values = np.broadcast_to(np.arange(256, dtype=np.uint8).reshape(16, 16, 1), (16, 16, 3)).copy()
    tensor = F.normalize(F.convert_image_dtype(F.pil_to_tensor(Image.fromarray(values, "RGB")), torch.float),
                         mean=list(mean), std=list(std))
    table = np.ascontiguousarray(tensor.numpy().reshape(3, 256))
    # The arithmetic this is, in float32 (documented in the Swift code).
    m, s = np.array(mean, dtype=np.float32)[:, None], np.array(std, dtype=np.float32)[:, None]
    formula = (np.arange(256, dtype=np.float32)[None, :] / np.float32(255) - m) / s
    assert formula.dtype == np.float32 and np.array_equal(formula.view(np.uint32), table.view(np.uint32))
    return table


tables = {"imagenet": IMAGENET, "half": HALF}
transform_arrays = {name: array for name, (array, _) in photos.items()}
transform_arrays.update({f"normalize.{key}": normalization_table(*value) for key, value in tables.items()})
described = []
for name, source, resize, crop, interpolation, (mean, std) in transform_cases:
    image = from_array(photos[source][0])
    preset = ImageClassification(crop_size=crop, resize_size=resize, mean=mean, std=std,
                                 interpolation=MODES[interpolation])
    expected = preset(image).numpy()
    resized = F.resize(image, [resize], interpolation=MODES[interpolation], antialias=True)
    cropped = as_array(F.center_crop(resized, [crop]))
    assert cropped.shape == (crop, crop, 3)
    table_key = [key for key, value in tables.items() if value == (mean, std)][0]
    table = transform_arrays[f"normalize.{table_key}"]
    rebuilt = table[np.arange(3)[:, None, None], cropped.transpose(2, 0, 1)]
    assert expected.dtype == np.float32 and np.array_equal(rebuilt.view(np.uint32), expected.view(np.uint32))
    # Where the crop sits in the resized image (torchvision's center_crop: zero padding first when the
    # crop is larger, then int(round((size - crop) / 2.0))); checked against the crop itself.
    width, height = resized.size
    origin = []
    for size in (width, height):
        if crop > size:
            origin.append(-((crop - size) // 2))
        else:
            origin.append(int(round((size - crop) / 2.0)))
    padded = np.zeros((max(height, crop) + crop, max(width, crop) + crop, 3), dtype=np.uint8)
    padded[crop:crop + height, crop:crop + width] = as_array(resized)
    x0, y0 = origin[0] + crop, origin[1] + crop
    assert np.array_equal(padded[y0:y0 + crop, x0:x0 + crop], cropped)
    transform_arrays[f"{name}.row_crc32"] = np.array([zlib.crc32(row.tobytes()) for row in cropped], dtype=np.int64)
    described.append({"name": name, "input": source, "resize": resize, "crop": crop, "interpolation": interpolation,
                      "mean": list(mean), "std": list(std), "normalize": f"normalize.{table_key}",
                      "resized": [width, height], "crop_origin": origin})

np.savez_compressed(os.path.join(OUT, "transform.npz"), **transform_arrays)
with open(os.path.join(OUT, "transform.json"), "w") as f:
    f.write(oracle_env.format_json({
        "torchvision": torchvision.__version__.split("+")[0], "pil": PIL.__version__,
        "inputs": {name: source for name, (_, source) in photos.items()},
        "cases": described,
    }))
for name in sorted(os.listdir(OUT)):
    print(f"{name}: {os.path.getsize(os.path.join(OUT, name))} bytes")

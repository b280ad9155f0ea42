#!/usr/bin/env python3
"""Reference outputs of real torchvision for one full-size variant of every family zoo builds from a
state dict: the fixtures under Fixtures/architectures/ with which ArchitectureParityTests checks zoo's
graphs against torch, layer by layer for one family per block type.

Run from the repository root, after building zoo:

    $(../shared/oracle/setup) Fixtures/make_architecture_parity.py .build/release/zoo [--only VARIANT ...]

Pins torch==2.9.1, torchvision==0.24.1, numpy==2.4.6; deterministic (re-executes itself with
PYTHONHASHSEED=0, ATEN_CPU_CAPABILITY=default, one thread), so a re-run on the same machine writes the
same bytes.

Weights. No weights are committed. For each case, `zoo init VARIANT -o tmp.pth --seed 0` writes the
variant's deterministic weights (zoo's WeightGenerator: fan-in-scaled convolution and Linear weights;
BatchNorm / LayerNorm weights and layer scales in [0.5, 1.5); running variances in [0.5, 1.5); running
means, biases and embeddings small; so no normalization is the identity); torchvision's model loads the
file with load_state_dict(strict=True), which also proves zoo writes torchvision's exact layout. The
Swift test regenerates the same weights in-process.

Inputs: zoo's generator input (make_parity_fixtures.generate_input: seed 0, batch 2, values in [-1, 1)),
at the size CASES gives — small where the architecture takes any size (adaptive pooling), the fixed
size otherwise.

Written, under Fixtures/architectures/:
  <variant>.npz        (numpy's savez_compressed) "logits": torch's model(input) [2, classes] float32 (eval(), no_grad);
                       for a case with layers, for every leaf module that owns parameters and ran once
                       (convolutions, BatchNorms, LayerNorms, Linears), "<module path>": up to SAMPLES of
                       its output's elements (float32) at "<module path>.index" (int64, sorted flat
                       C-order positions chosen by a generator seeded with the path's CRC-32), and
                       "<module path>.max": max |output| over all elements (float32, shape [1]).
  manifest.json        {"generated_by", "versions", "samples", "cases": [{variant, family, input_shape,
                       seed, kwargs (torchvision constructor arguments beyond the default), options (zoo's
                       matching flags), layers (count), max_abs_ref, rel_diff_vs_f64 (the float32 forward
                       against a float64 forward of the same model: the scale of rounding),
                       input_sensitivity, top5 (per row)}]}
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import oracle_env  # noqa: E402  (Fixtures/oracle_env.py)

oracle_env.deterministic()

import argparse  # noqa: E402
import copy  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import zlib  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402

import make_parity_fixtures as parity  # noqa: E402  (the generator's numpy twin; same env, no re-exec)

oracle_env.require(torch="2.9.1", torchvision="0.24.1", numpy="2.4.6")
torch.set_num_threads(1)

OUT = Path(__file__).resolve().parent / "architectures"
SEED = 0
BATCH = 2
SAMPLES = 64

# (variant, input size, layer by layer, torchvision kwargs, zoo options). One per family; the layered ones
# cover every block type: residual, inverted residual with squeeze-excite, dense, inception, channel
# shuffle, ConvNeXt, attention — and every model whose generated logits hardly depend on its input
# (manifest: input_sensitivity below 1 % of max|ref|: deep stacks without residuals, whose BatchNorm
# statistics, being generated, do not renormalize the signal), so that its layers check the input path.
CASES = [
    ("alexnet", 96, False, {}, {}),
    ("resnet18", 64, True, {}, {}),
    ("resnext50_32x4d", 64, False, {}, {}),
    ("vgg11_bn", 64, False, {}, {}),
    ("squeezenet1_1", 64, False, {}, {}),
    ("densenet121", 64, True, {}, {}),
    ("googlenet", 64, True, {"transform_input": True}, {}),
    # The logits of this deep generated network hardly depend on its input (sensitivity ~1e-4 of them):
    # only its layers, each at its own scale, check the input path.
    ("inception_v3", 107, True, {"transform_input": False}, {"transform_input": False}),
    ("mobilenet_v2", 96, True, {}, {}),
    ("mobilenet_v3_small", 96, True, {}, {}),
    ("mnasnet0_5", 96, True, {}, {}),
    ("shufflenet_v2_x0_5", 64, True, {}, {}),
    ("efficientnet_b0", 96, True, {}, {}),
    ("efficientnet_v2_s", 96, True, {}, {}),
    ("regnet_x_400mf", 64, False, {}, {}),
    ("regnet_y_400mf", 64, False, {}, {}),
    ("convnext_tiny", 64, True, {}, {}),
    ("vit_b_32", 224, True, {}, {}),
    ("swin_t", 160, False, {}, {}),  # not its default 224: the graph is rebuilt for the size (padding, masks)
    ("swin_v2_t", 256, False, {}, {}),
    ("maxvit_t", 224, False, {}, {}),
]


def versioned(variant, state_dict):
    """The state dict with the module version torch.save would record for torchvision's MNASNet, which
    refuses a state dict without one (zoo's files, like any plain dict of tensors, carry no _metadata)."""
    if variant.startswith("mnasnet"):
        state_dict._metadata = {"": {"version": 2}}
    return state_dict


def leaf_layers(model):
    """Modules with no children that own parameters, by path (convolutions, norms, Linears)."""
    return {name: m for name, m in model.named_modules()
            if name and not list(m.children()) and list(m.parameters(recurse=False))}


def run_case(zoo, variant, size, layered, kwargs, options, tmp):
    pth = Path(tmp) / f"{variant}.pth"
    subprocess.run([zoo, "init", variant, "-o", str(pth), "--seed", str(SEED), "--quiet"], check=True)
    model = torchvision.models.get_model(variant, weights=None, **kwargs).eval()
    model.load_state_dict(versioned(variant, torch.load(pth, weights_only=True)), strict=True)
    pth.unlink()
    x = torch.from_numpy(parity.generate_input(SEED, BATCH, size, size))

    captured, calls, handles = {}, {}, []
    if layered:
        for name, module in leaf_layers(model).items():
            def hook(_, __, out, name=name):
                calls[name] = calls.get(name, 0) + 1
                if isinstance(out, torch.Tensor):
                    captured[name] = out.detach().numpy().astype(np.float32).copy()
            handles.append(module.register_forward_hook(hook))
    with torch.no_grad():
        logits = model(x)
    for h in handles:
        h.remove()
    logits = logits.numpy().astype(np.float32)
    arrays = {"logits": logits}
    layers = 0
    for name, value in captured.items():
        if calls[name] != 1:
            continue
        flat = value.reshape(-1)
        rng = np.random.default_rng(zlib.crc32(name.encode()))
        index = np.sort(rng.choice(flat.size, size=min(SAMPLES, flat.size), replace=False)).astype(np.int64)
        arrays[name] = flat[index]
        arrays[name + ".index"] = index
        arrays[name + ".max"] = np.array([np.abs(flat).max()], dtype=np.float32)
        layers += 1
    np.savez_compressed(OUT / f"{variant}.npz", **arrays)

    with torch.no_grad():
        logits64 = copy.deepcopy(model).double()(x.double()).numpy()
    return {
        "variant": variant, "family": type(model).__name__, "input_shape": [BATCH, 3, size, size], "seed": SEED,
        "kwargs": kwargs, "options": options, "layers": layers, "max_abs_ref": parity.max_abs(logits),
        "rel_diff_vs_f64": parity.diff64(logits, logits64)["rel_diff_vs_f64"],
        "input_sensitivity": parity.input_sensitivity(model, x, torch.from_numpy(logits)),
        "top5": np.argsort(-logits, axis=1)[:, :5].tolist(),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("zoo", help="the zoo binary (writes the weights)")
    ap.add_argument("--only", nargs="*", help="regenerate only these variants (the manifest keeps the others)")
    args = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    manifest_path = OUT / "manifest.json"
    old = {c["variant"]: c for c in json.loads(manifest_path.read_text())["cases"]} if manifest_path.exists() else {}
    cases = []
    with tempfile.TemporaryDirectory() as tmp:
        for variant, size, layered, kwargs, options in CASES:
            if args.only and variant not in args.only:
                if variant in old:
                    cases.append(old[variant])
                continue
            case = run_case(os.path.abspath(args.zoo), variant, size, layered, kwargs, options, tmp)
            print(f"{variant:22s} {size:4d}  layers {case['layers']:4d}  max|ref| {case['max_abs_ref']:.3g}  "
                  f"f32 vs f64 {case['rel_diff_vs_f64']:.2e}  sensitivity {case['input_sensitivity']:.3g}")
            cases.append(case)
    manifest = {"generated_by": "Fixtures/make_architecture_parity.py",
                "versions": {"torch": torch.__version__, "torchvision": torchvision.__version__, "numpy": np.__version__},
                "samples": SAMPLES, "cases": cases}
    manifest_path.write_text(oracle_env.format_json(manifest))
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"{OUT}: {len(cases)} cases, {total} bytes")


if __name__ == "__main__":
    main()

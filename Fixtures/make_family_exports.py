#!/usr/bin/env python3
"""Small ONNX exports of one torchvision classification model per family, by both of torch's ONNX
exporters, with torch's reference outputs: the fixtures under Fixtures/families/ with which a Swift test
checks that zoo runs each family's graph as torch does.

Run from the repository root:

    $(../shared/oracle/setup) Fixtures/make_family_exports.py [--only FAMILY ...]

(`../shared/oracle/setup` creates or reuses the oracle venv and prints its python.) --only regenerates
the named families and updates their entries in the existing manifest.

Pins torch==2.9.1, torchvision==0.24.1, onnx==1.23.2, onnxruntime==1.32.0, numpy==2.4.6. Deterministic: the
script re-executes itself with PYTHONHASHSEED=0, ATEN_CPU_CAPABILITY=default and one thread, and every
family is built from torch.manual_seed(SEED) and its input from a generator seeded with INPUT_SEED, both
independent of which families run; running it twice on the same machine gives byte-identical files
(convolutions run through oneDNN, which picks its kernels for the CPU, so another machine may differ in the
last bits of the outputs).

Models. Each family is torchvision's own classes (the same module types, so the same ONNX ops as the
full-size model) in a reduced configuration, so that each .onnx stays under about 300 KB: constructor
arguments where the constructor has them (ResNet layers, DenseNet growth/blocks, ShuffleNetV2 stages,
MobileNetV3 / EfficientNet / RegNet / ConvNeXt / ViT / Swin / MaxViT configurations, num_classes=10);
where a width is hard-coded in torchvision's __init__ (AlexNet, VGG's classifier, SqueezeNet's Fire
widths, ResNet's 64..512 planes, MobileNetV2's and MNASNet's 1280-wide head) the affected submodules are
replaced after construction by the same torchvision / torch.nn classes at a smaller width (ResNet through
its own _make_layer, MNASNet through its own _stack); GoogLeNet and Inception3 get a conv_block (their
`blocks` / `inception_blocks` hook) that makes each BasicConv2d 1/24 (GoogLeNet) or 1/48 (Inception3) as wide,
its convolution an nn.LazyConv2d that one forward pass at the family's input size turns into a plain
nn.Conv2d. FAMILIES below says what each family is; the manifest repeats it ("model"). MaxViT is optional:
if it cannot be built or run, it is skipped with the reason printed and recorded under "failures".

Weights (randomize(), seeded, after the classes' own initialisation from the seed), chosen so that no
BatchNorm is the identity and the logits depend on the input (manifest: input_sensitivity) with activations
of order 1 throughout:
  1. every nn.Conv2d / nn.Linear weight ~ N(0, 2 / fan_in), every bias of theirs ~ N(0, 0.1);
  2. every BatchNorm's statistics measured in one pass over a calibration batch (8 inputs from
     CALIBRATION_SEED, only the BatchNorms in training mode, cumulative average), then perturbed:
     running_mean += N(0, 0.1) * sqrt(running_var), running_var *= u with u ~ U(0.5, 1.5), weight =
     sqrt(u) * U(0.8, 1.2), bias ~ N(0, 0.1);
  3. every LayerNorm's weight ~ U(0.5, 1.5) and bias ~ N(0, 0.1);
  4. every other parameter the initialisation left constant (ViT's zero class token, ConvNeXt's layer
     scale 1e-6) re-drawn: zero 1-d -> N(0, 0.1), zero n-d -> N(0, 1/fan_in), one -> U(0.5, 1.5),
     anything else -> U(0.5, 1.0).
Then eval().

Inputs: batch 2, float32, torch.randn at the family's size H = W (FAMILIES; the manifest's input_shape): the
smallest of 32, 48, 64 at which the last stage still has more than 1x1 (so the final global pool averages
something), 107 for Inception3 (2x2 before its pool; 75 is the least it takes), and 224 for AlexNet and VGG:
the TorchScript exporter only exports an adaptive average pool whose input size is a multiple of its output
(6x6 and 7x7 there), and the features reach 6x6 / 7x7 only from about 224.

Exports, each on the same model and input, with grad enabled (not under torch.no_grad(): there an eval()
nn.MultiheadAttention takes the fused fast path, which the TorchScript exporter cannot export):
  ts     — torch.onnx.export(dynamo=False, opset_version=17, input_names=["input"],
           output_names=["output"], dynamic_axes={"input": {0: "N"}, "output": {0: "N"}})
  dynamo — torch.onnx.export(dynamo=True, opset_version=18, optimize=True, dynamic_shapes: batch
           Dim N in [1, 1024]; if torch.export refuses it, N in [2, 1024]; then static shapes (noted)),
           saved with ONNXProgram.save(external_data=False): one self-contained file; then every node's
           metadata_props (namespace, class hierarchy, name scopes, Python stack traces holding the venv's
           absolute paths: informational only, and most of a small file's bytes) are removed by
           onnx.load / onnx.save. The graph, initializers and value_info are as exported.
A family that an exporter cannot export has no file for it; the manifest's "failures" says why.

Written, under Fixtures/families/:
  <family>.ts.onnx, <family>.dynamo.onnx   the two exports
  <family>.input.npy                       the shared input [2, 3, H, W] float32 (npy 1.0, '<f4', C order)
  <family>.output.npy                      torch's model(input) [2, 10] float32 (grad enabled, eval())
  manifest.json                            {"generated_by", "versions", "seeds", "ort_relative_tolerance",
      "families": [{family, torchvision_name, model, parameters, input, output, input_shape, output_shape,
      max_abs_ref, input_sensitivity}],
      "exports": [{family, exporter, file, opset, input, output, input_shape, batch_dim (the ONNX input's
      first dimension: a name when dynamic, 2 when static), ops (op type -> count, over the main graph, node
      subgraphs and model-local functions; other domains as domain.op), nodes, ort_max_abs_diff (max |ort -
      torch| on the batch-2 input), ort_batch1_max_abs_diff (on input[:1] against output[:1]; null for a
      static batch), max_abs_ref, ort_ok (ort_max_abs_diff <= 1e-4 * max_abs_ref), bytes, note}],
      "failures": [{family, exporter, error}], "op_union": {op type: number of exports using it}}
  input_sensitivity is max |output[0] - output[1]| / max |output|: how much the logits depend on the
  input rather than on the biases.

Prints a per-export line while it runs, then the per-family sizes, the total, the failures and the union of
op types over all exports (sorted by how many exports use each).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import oracle_env  # noqa: E402  (Fixtures/oracle_env.py)

oracle_env.deterministic()

import argparse  # noqa: E402
import collections  # noqa: E402
import contextlib  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import re  # noqa: E402
import warnings  # noqa: E402
from functools import partial  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torchvision  # noqa: E402
import torchvision.models as M  # noqa: E402
from torchvision.ops.misc import Conv2dNormActivation  # noqa: E402

# the modules themselves (torchvision.models.googlenet etc. are also the names of builder functions)
tv_efficientnet = importlib.import_module("torchvision.models.efficientnet")
tv_googlenet = importlib.import_module("torchvision.models.googlenet")
tv_inception = importlib.import_module("torchvision.models.inception")
tv_mnasnet = importlib.import_module("torchvision.models.mnasnet")
tv_mobilenetv3 = importlib.import_module("torchvision.models.mobilenetv3")
tv_regnet = importlib.import_module("torchvision.models.regnet")
tv_resnet = importlib.import_module("torchvision.models.resnet")
tv_squeezenet = importlib.import_module("torchvision.models.squeezenet")
tv_vgg = importlib.import_module("torchvision.models.vgg")
tv_convnext = importlib.import_module("torchvision.models.convnext")
oracle_env.require(torch="2.9.1", torchvision="0.24.1", onnx="1.23.2", onnxruntime="1.32.0", numpy="2.4.6")

torch.set_num_threads(1)
warnings.filterwarnings("ignore")

OUT = Path(__file__).resolve().parent / "families"
SEED = 0            # torch.manual_seed before building each family's model
RANDOMIZE_SEED = 1  # the generator of randomize()
INPUT_SEED = 2      # the generator of each family's input
CALIBRATION_SEED = 3  # the generator of the batch that sets the BatchNorm statistics
CALIBRATION_BATCH = 8
BATCH = 2           # the example batch (not 1, so that the dynamo exporter does not specialize the batch)
NUM_CLASSES = 10
TS_OPSET = 17
DYNAMO_OPSET = 18
ORT_RELATIVE_TOLERANCE = 1e-4


# ---------------------------------------------------------------------------------------------------
# The reduced models
# ---------------------------------------------------------------------------------------------------

def alexnet(size):
    """AlexNet with the same layer sequence at widths 4-8-12-8-8, classifier 288-16-16-10."""
    model = M.AlexNet(num_classes=NUM_CLASSES)
    model.features = nn.Sequential(
        nn.Conv2d(3, 4, kernel_size=11, stride=4, padding=2), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(4, 8, kernel_size=5, padding=2), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(8, 12, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(12, 8, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(8, 8, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
    )
    model.classifier[1] = nn.Linear(8 * 6 * 6, 16)
    model.classifier[4] = nn.Linear(16, 16)
    model.classifier[6] = nn.Linear(16, NUM_CLASSES)
    return model


def vgg11_bn(size):
    """VGG(make_layers(cfg "A" at 4-4-8-8-8 wide, batch_norm=True)), classifier 392-16-16-10."""
    cfg = [4, "M", 4, "M", 8, 8, "M", 8, 8, "M", 8, 8, "M"]
    model = M.VGG(tv_vgg.make_layers(cfg, batch_norm=True), num_classes=NUM_CLASSES)
    model.classifier[0] = nn.Linear(8 * 7 * 7, 16)
    model.classifier[3] = nn.Linear(16, 16)
    model.classifier[6] = nn.Linear(16, NUM_CLASSES)
    return model


def small_resnet(block, layers, stem, planes, **kwargs):
    """ResNet(block, layers, **kwargs) with the stem and the four stages rebuilt by its own _make_layer
    at `stem` channels and `planes` (torchvision hard-codes 64 and 64-128-256-512)."""
    model = M.ResNet(block, layers, num_classes=NUM_CLASSES, **kwargs)
    model.inplanes = stem
    model.conv1 = nn.Conv2d(3, stem, kernel_size=7, stride=2, padding=3, bias=False)
    model.bn1 = nn.BatchNorm2d(stem)
    model.layer1 = model._make_layer(block, planes[0], layers[0])
    model.layer2 = model._make_layer(block, planes[1], layers[1], stride=2)
    model.layer3 = model._make_layer(block, planes[2], layers[2], stride=2)
    model.layer4 = model._make_layer(block, planes[3], layers[3], stride=2)
    model.fc = nn.Linear(planes[3] * block.expansion, NUM_CLASSES)
    return model


def resnet18(size):
    return small_resnet(tv_resnet.BasicBlock, [1, 1, 1, 1], 4, [4, 8, 12, 16])


def resnext50_32x4d(size):
    # Bottleneck width = int(planes * width_per_group / 64) * groups = 2 * planes, grouped 3x3 (groups 4)
    return small_resnet(tv_resnet.Bottleneck, [2, 1, 1, 1], 8, [4, 8, 12, 16], groups=4, width_per_group=32)


def wide_resnet50_2(size):
    # Bottleneck width = planes * 128 / 64 = 2 * planes, groups 1 (as wide_resnet50_2)
    return small_resnet(tv_resnet.Bottleneck, [2, 1, 1, 1], 8, [4, 8, 8, 12], width_per_group=128)


def squeezenet1_1(size):
    """SqueezeNet(version "1_1") with the same features at 1/8 width (Fire squeeze/expand 2-8-8 ... 8-32-32)."""
    model = M.SqueezeNet(version="1_1", num_classes=NUM_CLASSES)
    Fire = tv_squeezenet.Fire
    model.features = nn.Sequential(
        nn.Conv2d(3, 8, kernel_size=3, stride=2), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
        Fire(8, 2, 8, 8), Fire(16, 2, 8, 8),
        nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
        Fire(16, 4, 16, 16), Fire(32, 4, 16, 16),
        nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
        Fire(32, 6, 24, 24), Fire(48, 6, 24, 24), Fire(48, 8, 32, 32), Fire(64, 8, 32, 32),
    )
    model.classifier[1] = nn.Conv2d(64, NUM_CLASSES, kernel_size=1)
    return model


def densenet121(size):
    return M.DenseNet(growth_rate=6, block_config=(2, 2, 2, 2), num_init_features=8, bn_size=2,
                      num_classes=NUM_CLASSES)


def lazy_basic_conv(basic_conv_class, divisor):
    """A conv_block for GoogLeNet / Inception3: basic_conv_class with out_channels // divisor (at least 2)
    whose convolution is an nn.LazyConv2d (it learns its input channels, the concatenated reduced branches,
    at the first forward pass and then becomes an nn.Conv2d)."""
    def conv_block(in_channels, out_channels, **kwargs):
        width = max(2, out_channels // divisor)
        block = basic_conv_class(in_channels, width, **kwargs)
        block.conv = nn.LazyConv2d(width, bias=False, **kwargs)
        return block
    return conv_block


GOOGLENET_DIVISOR = 24
INCEPTION_DIVISOR = 48


def materialize(model, size):
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    assert not any(isinstance(m, nn.modules.lazy.LazyModuleMixin) for m in model.modules())
    return model


def googlenet(size):
    conv_block = lazy_basic_conv(tv_googlenet.BasicConv2d, GOOGLENET_DIVISOR)
    model = M.GoogLeNet(num_classes=NUM_CLASSES, aux_logits=False, transform_input=True, init_weights=False,
                        blocks=[conv_block, partial(tv_googlenet.Inception, conv_block=conv_block),
                                partial(tv_googlenet.InceptionAux, conv_block=conv_block)])
    model.fc = nn.LazyLinear(NUM_CLASSES)
    return materialize(model, size)


def inception_v3(size):
    conv_block = lazy_basic_conv(tv_inception.BasicConv2d, INCEPTION_DIVISOR)
    blocks = [tv_inception.BasicConv2d, tv_inception.InceptionA, tv_inception.InceptionB, tv_inception.InceptionC,
              tv_inception.InceptionD, tv_inception.InceptionE, tv_inception.InceptionAux]
    # every block takes conv_block=; Inception3 builds its stem with inception_blocks[0] directly
    blocks = [conv_block] + [partial(block, conv_block=conv_block) for block in blocks[1:]]
    model = M.Inception3(num_classes=NUM_CLASSES, aux_logits=False, transform_input=True, init_weights=False,
                         inception_blocks=blocks)
    model.fc = nn.LazyLinear(NUM_CLASSES)
    return materialize(model, size)


def mobilenet_v2(size):
    """MobileNetV2(width_mult=0.1, one block per stage but two in the second), last conv 32->64 (the
    constructor makes it at least 1280 wide)."""
    setting = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 1, 2], [6, 64, 1, 2], [6, 96, 1, 1], [6, 160, 1, 2],
               [6, 320, 1, 1]]
    model = M.MobileNetV2(num_classes=NUM_CLASSES, width_mult=0.1, inverted_residual_setting=setting)
    last_in = model.features[-1][0].in_channels
    model.features[-1] = Conv2dNormActivation(last_in, 64, kernel_size=1, norm_layer=nn.BatchNorm2d,
                                              activation_layer=nn.ReLU6)
    model.last_channel = 64
    model.classifier[1] = nn.Linear(64, NUM_CLASSES)
    return model


def mobilenet_v3_small(size):
    setting, _ = tv_mobilenetv3._mobilenet_v3_conf("mobilenet_v3_small", width_mult=0.25, reduced_tail=True)
    return M.MobileNetV3([setting[i] for i in MOBILENET_V3_BLOCKS], 32, num_classes=NUM_CLASSES)


# mobilenet_v3_small's blocks 0 (SE, ReLU, stride 2), 1 (ReLU, stride 2), 2 (ReLU, residual), 3 (SE, Hardswish,
# 5x5, stride 2), 4 (the same, residual), 6 (40 -> 48) and 8 (stride 2)
MOBILENET_V3_BLOCKS = [0, 1, 2, 3, 4, 6, 8]


def mnasnet0_5(size):
    """MNASNet(alpha=0.1) with its six inverted-residual stacks rebuilt by its own _stack (same kernels,
    strides and expansions, fewer repeats, widths 8-8-8-16-16-24) and the final 1x1 conv and classifier 64
    wide instead of 1280."""
    model = M.MNASNet(0.1, num_classes=NUM_CLASSES)
    stack, bn = tv_mnasnet._stack, tv_mnasnet._BN_MOMENTUM
    assert model.layers[6].out_channels == 8
    for index, (in_ch, out_ch, kernel, stride, expansion, repeats) in enumerate(
            [(8, 8, 3, 2, 3, 2), (8, 8, 5, 2, 3, 1), (8, 8, 5, 2, 6, 1), (8, 16, 3, 1, 6, 2), (16, 16, 5, 2, 6, 1),
             (16, 24, 3, 1, 6, 1)]):
        model.layers[8 + index] = stack(in_ch, out_ch, kernel, stride, expansion, repeats, bn)
    model.layers[14] = nn.Conv2d(24, 64, 1, padding=0, stride=1, bias=False)
    model.layers[15] = nn.BatchNorm2d(64, momentum=1 - 0.9997)
    model.classifier[1] = nn.Linear(64, NUM_CLASSES)
    return model


def shufflenet_v2_x0_5(size):
    return M.ShuffleNetV2([2, 2, 2], [8, 16, 32, 64, 64], num_classes=NUM_CLASSES)


def efficientnet_b0(size):
    setting, last_channel = tv_efficientnet._efficientnet_conf("efficientnet_b0", width_mult=0.1, depth_mult=0.25)
    return M.EfficientNet(setting, 0.2, num_classes=NUM_CLASSES, last_channel=last_channel)


def efficientnet_v2_s(size):
    F, B = tv_efficientnet.FusedMBConvConfig, tv_efficientnet.MBConvConfig
    setting = [F(1, 3, 1, 8, 8, 2), F(4, 3, 2, 8, 8, 2), F(4, 3, 2, 8, 16, 1),
               B(4, 3, 2, 16, 16, 2), B(6, 3, 1, 16, 24, 1)]
    return M.EfficientNet(setting, 0.2, num_classes=NUM_CLASSES, last_channel=64,
                          norm_layer=partial(nn.BatchNorm2d, eps=1e-03))


def small_regnet(se_ratio):
    params = tv_regnet.BlockParams(depths=[1, 1, 2, 1], widths=[8, 16, 24, 32], group_widths=[4, 4, 8, 8],
                                   bottleneck_multipliers=[1.0] * 4, strides=[2, 2, 2, 2], se_ratio=se_ratio)
    return M.RegNet(params, num_classes=NUM_CLASSES, stem_width=8,
                    norm_layer=partial(nn.BatchNorm2d, eps=1e-05, momentum=0.1))


def regnet_x_400mf(size):
    return small_regnet(None)


def regnet_y_400mf(size):
    return small_regnet(0.25)


def convnext_tiny(size):
    C = tv_convnext.CNBlockConfig
    return M.ConvNeXt([C(8, 12, 1), C(12, 16, 2), C(16, 24, 1), C(24, None, 1)], stochastic_depth_prob=0.1,
                      num_classes=NUM_CLASSES)


def vit_b_16(size):
    return M.VisionTransformer(image_size=size, patch_size=8, num_layers=1, num_heads=2, hidden_dim=16, mlp_dim=32,
                               num_classes=NUM_CLASSES)


def swin_t(size):
    return M.SwinTransformer(patch_size=[4, 4], embed_dim=8, depths=[2, 1], num_heads=[2, 4], window_size=[4, 4],
                             stochastic_depth_prob=0.2, num_classes=NUM_CLASSES)


def maxvit_t(size):
    return M.MaxVit(input_size=(size, size), stem_channels=8, partition_size=4, block_channels=[8, 16],
                    block_layers=[1, 1], head_dim=4, stochastic_depth_prob=0.2, num_classes=NUM_CLASSES)


# (family, torchvision model it stands for, input H = W, builder, description, optional)
FAMILIES = [
    ("alexnet", "alexnet", 224, alexnet,
     "AlexNet, features rebuilt with widths 4-8-12-8-8 (same kernels/strides), classifier Linear 288-16-16-10", False),
    ("vgg", "vgg11_bn", 224, vgg11_bn,
     "VGG(make_layers([4,M,4,M,8,8,M,8,8,M,8,8,M], batch_norm=True)), classifier Linear 392-16-16-10", False),
    ("resnet", "resnet18", 48, resnet18,
     "ResNet(BasicBlock, [1,1,1,1]), stem 4, planes 4-8-12-16 (rebuilt by _make_layer)", False),
    ("resnext", "resnext50_32x4d", 48, resnext50_32x4d,
     "ResNet(Bottleneck, [2,1,1,1], groups=4, width_per_group=32), stem 8, planes 4-8-12-16 "
     "(bottleneck widths 8-16-24-32, 3x3 convolutions in 4 groups)", False),
    ("wide_resnet", "wide_resnet50_2", 48, wide_resnet50_2,
     "ResNet(Bottleneck, [2,1,1,1], width_per_group=128), stem 8, planes 4-8-8-12 "
     "(bottleneck widths 8-16-16-24)", False),
    ("squeezenet", "squeezenet1_1", 48, squeezenet1_1,
     "SqueezeNet('1_1'), features rebuilt at 1/8 width (conv 8, Fire 2/8/8 .. 8/32/32), final conv 64->10", False),
    ("densenet", "densenet121", 64, densenet121,
     "DenseNet(growth_rate=6, block_config=(2,2,2,2), num_init_features=8, bn_size=2)", False),
    ("googlenet", "googlenet", 48, googlenet,
     "GoogLeNet(transform_input=True, aux_logits=False), every BasicConv2d 1/24 as wide (at least 2) "
     "through blocks=[conv_block, Inception, InceptionAux]", False),
    ("inception_v3", "inception_v3", 107, inception_v3,
     "Inception3(transform_input=True, aux_logits=False), every BasicConv2d 1/48 as wide (at least 2) "
     "through inception_blocks (conv_block)", False),
    ("mobilenet_v2", "mobilenet_v2", 48, mobilenet_v2,
     "MobileNetV2(width_mult=0.1, setting n=1,2,1,1,1,1,1), last conv 32->64, classifier 64->10", False),
    ("mobilenet_v3", "mobilenet_v3_small", 48, mobilenet_v3_small,
     "MobileNetV3(blocks 0,1,2,3,4,6,8 of _mobilenet_v3_conf('mobilenet_v3_small', width_mult=0.25, "
     "reduced_tail=True), last_channel=32)", False),
    ("mnasnet", "mnasnet0_5", 48, mnasnet0_5,
     "MNASNet(alpha=0.1), stacks rebuilt by _stack as (in,out,k,s,exp,repeats) (8,8,3,2,3,2) (8,8,5,2,3,1) "
     "(8,8,5,2,6,1) (8,16,3,1,6,2) (16,16,5,2,6,1) (16,24,3,1,6,1), final conv 24->64 (not 1280), "
     "classifier 64->10", False),
    ("shufflenet_v2", "shufflenet_v2_x0_5", 48, shufflenet_v2_x0_5,
     "ShuffleNetV2(stages_repeats=[2,2,2], stages_out_channels=[8,16,32,64,64])", False),
    ("efficientnet", "efficientnet_b0", 48, efficientnet_b0,
     "EfficientNet(_efficientnet_conf('efficientnet_b0', width_mult=0.1, depth_mult=0.25)): one block per "
     "stage, the first 8->8 stride 1 (residual)", False),
    ("efficientnet_v2", "efficientnet_v2_s", 48, efficientnet_v2_s,
     "EfficientNet([Fused(1,3,1,8,8,2), Fused(4,3,2,8,8,2), Fused(4,3,2,8,16,1), MB(4,3,2,16,16,2), "
     "MB(6,3,1,16,24,1)], last_channel=64, BatchNorm eps 1e-3)", False),
    ("regnet_x", "regnet_x_400mf", 48, regnet_x_400mf,
     "RegNet(BlockParams(depths [1,1,2,1], widths [8,16,24,32], group widths [4,4,8,8], strides 2), stem 8)", False),
    ("regnet_y", "regnet_y_400mf", 48, regnet_y_400mf,
     "RegNet(BlockParams(depths [1,1,2,1], widths [8,16,24,32], group widths [4,4,8,8], strides 2, "
     "se_ratio 0.25), stem 8)", False),
    ("convnext", "convnext_tiny", 64, convnext_tiny,
     "ConvNeXt([CNBlockConfig(8,12,1), (12,16,2), (16,24,1), (24,None,1)])", False),
    ("vit", "vit_b_16", 32, vit_b_16,
     "VisionTransformer(image_size=32, patch_size=8, num_layers=1, num_heads=2, hidden_dim=16, mlp_dim=32)", False),
    ("swin", "swin_t", 32, swin_t,
     "SwinTransformer(patch_size=[4,4], embed_dim=8, depths=[2,1], num_heads=[2,4], window_size=[4,4]) "
     "(stage 1: 8x8 tokens, a plain then a shifted-window block; PatchMerging; stage 2: 4x4 tokens, one "
     "window, no shift)", False),
    ("maxvit", "maxvit_t", 32, maxvit_t,
     "MaxVit(input_size=(32,32), stem_channels=8, partition_size=4, block_channels=[8,16], block_layers=[1,1], "
     "head_dim=4)", True),
]


def randomize(model, calibration):
    """Seeded re-initialisation (see the module docstring); `calibration` is the batch that sets the
    BatchNorm statistics before they are perturbed. Leaves the model in eval()."""
    generator = torch.Generator().manual_seed(RANDOMIZE_SEED)

    def normal(shape, std):
        return torch.randn(shape, generator=generator) * std

    def uniform(shape, low, high):
        return torch.rand(shape, generator=generator) * (high - low) + low

    model.eval()
    done = set()
    with torch.no_grad():
        # 1. every convolution and linear weight N(0, 2 / fan_in), every bias N(0, 0.1)
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                fan_in = module.weight.numel() // module.weight.shape[0]
                module.weight.copy_(normal(module.weight.shape, math.sqrt(2 / fan_in)))
                done.add(id(module.weight))
                if module.bias is not None:
                    module.bias.copy_(normal(module.bias.shape, 0.1))
                    done.add(id(module.bias))
        # 2. BatchNorm statistics measured on the calibration batch (one pass, only the BatchNorms in
        #    training mode, cumulative average), then perturbed
        norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        momenta = [m.momentum for m in norms]
        for module in norms:
            module.reset_running_stats()
            module.momentum = None
            module.train()
        if norms:
            model(calibration)
        for module, momentum in zip(norms, momenta):
            module.momentum = momentum
            module.eval()
            module.running_mean.add_(normal(module.running_mean.shape, 0.1) * module.running_var.sqrt())
            factor = uniform(module.running_var.shape, 0.5, 1.5)
            module.running_var.mul_(factor)
            if module.weight is not None:
                # weight / sqrt(var) stays within 0.8..1.2 of the measured scale: no growth layer after layer
                module.weight.copy_(factor.sqrt() * uniform(module.weight.shape, 0.8, 1.2))
                done.add(id(module.weight))
        # 3. BatchNorm bias; LayerNorm / GroupNorm affine
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.bias is not None:
                module.bias.copy_(normal(module.bias.shape, 0.1))
                done.add(id(module.bias))
            if isinstance(module, (nn.LayerNorm, nn.GroupNorm)):
                if module.weight is not None:
                    module.weight.copy_(uniform(module.weight.shape, 0.5, 1.5))
                    done.add(id(module.weight))
                if module.bias is not None:
                    module.bias.copy_(normal(module.bias.shape, 0.1))
                    done.add(id(module.bias))
        # 4. any other parameter the initialisation left constant
        for _, parameter in model.named_parameters():
            if id(parameter) in done:
                continue
            flat = parameter.reshape(-1)
            if not bool(torch.all(flat == flat[0])):
                continue
            value = float(flat[0])
            if value == 0 and parameter.dim() == 1:
                parameter.copy_(normal(parameter.shape, 0.1))
            elif value == 0:
                parameter.copy_(normal(parameter.shape, 1 / math.sqrt(parameter.numel() // parameter.shape[0])))
            elif value == 1:
                parameter.copy_(uniform(parameter.shape, 0.5, 1.5))
            else:
                parameter.copy_(uniform(parameter.shape, 0.5, 1.0))
    return model.eval()


# ---------------------------------------------------------------------------------------------------
# Export and measurement
# ---------------------------------------------------------------------------------------------------

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def one_line(error):
    """The innermost cause's message on one line (torch.onnx wraps torch.export's error in a long preamble)."""
    while error.__cause__ is not None:
        error = error.__cause__
    text = re.sub(r" For more information, run with TORCH_LOGS=\S+", "", ANSI.sub("", str(error)))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    line = f"{type(error).__name__}: " + " ".join(lines[:2])
    return line if len(line) <= 400 else line[:397] + "..."


def export_ts(model, x, path):
    torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=TS_OPSET,
                      input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "N"}, "output": {0: "N"}})
    return ""


def export_dynamo(model, x, path):
    """A dynamic batch N in [1, 1024]; if torch.export refuses it, N in [2, 1024]; then static shapes."""
    attempts = [("dynamic batch N in [1, 1024]", ({0: torch.export.Dim("N", min=1, max=1024)},)),
                ("dynamic batch N in [2, 1024]", ({0: torch.export.Dim("N", min=2, max=1024)},)),
                ("static shapes", None)]
    failures = []
    for label, dynamic_shapes in attempts:
        try:
            program = torch.onnx.export(model, (x,), dynamo=True, opset_version=DYNAMO_OPSET,
                                        input_names=["input"], output_names=["output"],
                                        dynamic_shapes=dynamic_shapes, optimize=True, verify=False, fallback=False)
        except Exception as error:  # noqa: BLE001
            failures.append(f"{label} failed ({one_line(error)})")
            if dynamic_shapes is None:
                raise
            continue
        program.save(str(path), external_data=False)
        strip_node_metadata(path)
        return "; ".join(failures + [f"exported with {label}"]) if failures else ""


def strip_node_metadata(path):
    """Removes every node's metadata_props (namespace, pkg.torch.onnx.class_hierarchy / name_scopes /
    stack_trace / fx_node, pkg.onnxscript.rewriter.rule_name): Python stack traces with the venv's absolute
    paths would make the files depend on the machine, and the metadata is most of a small file's bytes."""
    model = onnx.load(str(path))

    def walk(nodes):
        for node in nodes:
            del node.metadata_props[:]
            for attribute in node.attribute:
                if attribute.type == onnx.AttributeProto.GRAPH:
                    walk(attribute.g.node)
                elif attribute.type == onnx.AttributeProto.GRAPHS:
                    for graph in attribute.graphs:
                        walk(graph.node)

    walk(model.graph.node)
    for function in model.functions:
        walk(function.node)
    onnx.save(model, str(path), save_as_external_data=False)


EXPORTERS = [("ts", export_ts), ("dynamo", export_dynamo)]


def op_name(node):
    return node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"


def histogram(model):
    """Op types over the main graph, every subgraph (node attributes) and every model-local function."""
    counts = collections.Counter()

    def walk(nodes):
        for node in nodes:
            counts[op_name(node)] += 1
            for attribute in node.attribute:
                if attribute.type == onnx.AttributeProto.GRAPH:
                    walk(attribute.g.node)
                elif attribute.type == onnx.AttributeProto.GRAPHS:
                    for graph in attribute.graphs:
                        walk(graph.node)

    walk(model.graph.node)
    for function in model.functions:
        walk(function.node)
    return counts


def default_opset(model):
    versions = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    return versions[0] if versions else None


def batch_dim(model):
    dim = model.graph.input[0].type.tensor_type.shape.dim[0]
    return dim.dim_param if dim.HasField("dim_param") else dim.dim_value


def run_ort(path, x):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def make_family(family, tv_name, size, build, description):
    """Builds the model, writes the input and output, exports; returns (family entry, export rows, failures)."""
    torch.manual_seed(SEED)
    calibration = torch.randn(CALIBRATION_BATCH, 3, size, size,
                              generator=torch.Generator().manual_seed(CALIBRATION_SEED))
    model = randomize(build(size), calibration)
    x = torch.randn(BATCH, 3, size, size, generator=torch.Generator().manual_seed(INPUT_SEED))
    # grad enabled, as the exporters trace it
    reference = model(x).detach()
    assert reference.shape == (BATCH, NUM_CLASSES) and reference.dtype == torch.float32
    x_np, ref_np = x.numpy(), reference.numpy()
    max_abs_ref = float(np.abs(ref_np).max())
    sensitivity = float(np.abs(ref_np[0] - ref_np[1]).max()) / max_abs_ref
    np.save(OUT / f"{family}.input.npy", x_np)
    np.save(OUT / f"{family}.output.npy", ref_np)
    entry = {"family": family, "torchvision_name": tv_name, "model": description,
             "parameters": sum(p.numel() for p in model.parameters()),
             "input": f"{family}.input.npy", "output": f"{family}.output.npy",
             "input_shape": list(x_np.shape), "output_shape": list(ref_np.shape),
             "max_abs_ref": max_abs_ref, "input_sensitivity": round(sensitivity, 4)}

    rows, failures = [], []
    for exporter, export in EXPORTERS:
        path = OUT / f"{family}.{exporter}.onnx"
        if path.exists():
            path.unlink()
        try:
            with contextlib.redirect_stdout(sys.stderr):  # the dynamo exporter prints its progress
                note = export(model, x, path)
        except Exception as error:  # noqa: BLE001
            failures.append({"family": family, "exporter": exporter, "error": one_line(error)})
            print(f"# {family} {exporter}: FAILED {one_line(error)}", file=sys.stderr, flush=True)
            continue
        loaded = onnx.load(str(path))
        external = [t.name for t in loaded.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
        assert not external, f"{path.name}: external data {external[:3]}"
        ops = histogram(loaded)
        batch = batch_dim(loaded)
        out = run_ort(path, x_np)
        diff = float(np.abs(out - ref_np).max())
        diff1 = None
        if isinstance(batch, str):
            diff1 = float(np.abs(run_ort(path, x_np[:1]) - ref_np[:1]).max())
        ok = diff <= ORT_RELATIVE_TOLERANCE * max_abs_ref and (diff1 is None or
                                                                 diff1 <= ORT_RELATIVE_TOLERANCE * max_abs_ref)
        notes = [note] if note else []
        if not isinstance(batch, str):
            notes.append(f"static batch {batch}")
        if not ok:
            notes.append(f"onnxruntime differs from torch by more than {ORT_RELATIVE_TOLERANCE} x max|torch|")
        row = {"family": family, "exporter": exporter, "file": path.name, "opset": default_opset(loaded),
               "input": entry["input"], "output": entry["output"], "input_shape": entry["input_shape"],
               "batch_dim": batch, "ops": dict(sorted(ops.items())), "nodes": sum(ops.values()),
               "ort_max_abs_diff": diff, "ort_batch1_max_abs_diff": diff1, "max_abs_ref": max_abs_ref,
               "ort_ok": ok, "bytes": path.stat().st_size, "note": "; ".join(notes)}
        rows.append(row)
        print(f"# {family} {exporter}: {row['bytes']} bytes, {row['nodes']} nodes, batch {batch}, "
              f"ort diff {diff:.3g} (batch 1: {diff1 if diff1 is None else f'{diff1:.3g}'}) "
              f"of max {max_abs_ref:.3g}{'' if ok else ' NOT OK'}{'; ' + row['note'] if row['note'] else ''}",
              file=sys.stderr, flush=True)
    return entry, rows, failures


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="families to regenerate (default: all)")
    args = parser.parse_args()
    names = [f[0] for f in FAMILIES]
    if args.only:
        unknown = set(args.only) - set(names)
        assert not unknown, f"unknown families {sorted(unknown)}; known: {names}"
    OUT.mkdir(parents=True, exist_ok=True)
    manifest_path = OUT / "manifest.json"

    entries, rows, failures = {}, {}, {}
    if args.only and manifest_path.exists():
        old = json.loads(manifest_path.read_text())
        for e in old["families"]:
            entries[e["family"]] = e
        for r in old["exports"]:
            rows.setdefault(r["family"], []).append(r)
        for f in old["failures"]:
            failures.setdefault(f["family"], []).append(f)

    for family, tv_name, size, build, description, optional in FAMILIES:
        if args.only and family not in args.only:
            continue
        try:
            entry, family_rows, family_failures = make_family(family, tv_name, size, build, description)
        except Exception as error:  # noqa: BLE001
            if not optional:
                raise
            print(f"# {family}: skipped (optional): {one_line(error)}", file=sys.stderr, flush=True)
            for suffix in ("input.npy", "output.npy", "ts.onnx", "dynamo.onnx"):
                (OUT / f"{family}.{suffix}").unlink(missing_ok=True)
            entries.pop(family, None)
            rows.pop(family, None)
            failures[family] = [{"family": family, "exporter": "-", "error": f"skipped: {one_line(error)}"}]
            continue
        if family_failures and not optional and not family_rows:
            print(f"# {family}: neither exporter succeeded", file=sys.stderr, flush=True)
        entries[family], rows[family], failures[family] = entry, family_rows, family_failures

    ordered_entries = [entries[n] for n in names if n in entries]
    ordered_rows = [r for n in names for r in rows.get(n, [])]
    ordered_failures = [f for n in names for f in failures.get(n, [])]
    union = collections.Counter()
    for row in ordered_rows:
        union.update(row["ops"].keys())
    op_union = dict(sorted(union.items(), key=lambda kv: (-kv[1], kv[0])))
    manifest = {
        "generated_by": "Fixtures/make_family_exports.py",
        "versions": {"torch": torch.__version__, "torchvision": torchvision.__version__, "onnx": onnx.__version__,
                     "onnxruntime": ort.__version__, "numpy": np.__version__},
        "seeds": {"model": SEED, "randomize": RANDOMIZE_SEED, "input": INPUT_SEED, "calibration": CALIBRATION_SEED},
        "ort_relative_tolerance": ORT_RELATIVE_TOLERANCE,
        "families": ordered_entries,
        "exports": ordered_rows,
        "failures": ordered_failures,
        "op_union": op_union,
    }
    manifest_path.write_text(oracle_env.format_json(manifest))

    # summary
    total = 0
    print("| family | input | params | ts bytes | dynamo bytes | input+output bytes | sensitivity |")
    print("|---|---|---|---|---|---|---|")
    for e in ordered_entries:
        fam = e["family"]
        sizes = {r["exporter"]: r["bytes"] for r in rows.get(fam, [])}
        npy = (OUT / e["input"]).stat().st_size + (OUT / e["output"]).stat().st_size
        total += sum(sizes.values()) + npy
        print(f"| {fam} | {'x'.join(map(str, e['input_shape']))} | {e['parameters']} | {sizes.get('ts', '-')} | "
              f"{sizes.get('dynamo', '-')} | {npy} | {e['input_sensitivity']} |")
    total += manifest_path.stat().st_size
    print(f"\nTotal under {OUT.name}/ (written files): {total} bytes ({total / 2**20:.2f} MiB)")
    print(f"Failures: {len(ordered_failures)}")
    for f in ordered_failures:
        print(f"  {f['family']} {f['exporter']}: {f['error']}")
    bad = [f"{r['family']}.{r['exporter']}" for r in ordered_rows if not r["ort_ok"]]
    print(f"onnxruntime mismatches: {', '.join(bad) or 'none'}")
    static = [f"{r['family']}.{r['exporter']}" for r in ordered_rows if not isinstance(r["batch_dim"], str)]
    print(f"Static batch: {', '.join(static) or 'none'}")
    print(f"Op types ({len(op_union)}) by number of exports using them ({len(ordered_rows)} exports): "
          + ", ".join(f"{op} ({n})" for op, n in op_union.items()))


if __name__ == "__main__":
    main()

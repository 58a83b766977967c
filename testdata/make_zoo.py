#!/usr/bin/env python3
"""Makes testdata/zoo: reduced-width torchvision classifier families as ONNX files, and PyTorch
references for importing them, one UMAP step and one UM step.

Run with Debian's PyTorch 1.13 / torchvision 0.14: /usr/bin/python3 testdata/make_zoo.py

Families (3x32x32 input, 10 classes, random seeded weights, BatchNorm running stats and affine
parameters randomised so that eval and train mode differ), each built from torchvision's own
modules at reduced width and depth so that the files stay small:

  resnet18       torchvision ResNet with BasicBlock [2,2,2,2], widths 4-8-16-32
  mobilenetv2    torchvision MobileNetV2, width 0.25, five inverted-residual stages, last conv 64
  mobilenetv3    torchvision MobileNetV3 (small), width 0.25, five bottlenecks (SE, Hardswish,
                 Hardsigmoid), last channel 64
  efficientnetb0 torchvision EfficientNet (B0 block types: MBConv, SiLU, squeeze-excitation),
                 width 0.25, one layer per stage, four stages
  densenet       torchvision DenseNet, growth 6, blocks (2,2,2), 12 initial features, bn_size 2
  densenetbc     the Unleashing Mask paper's CIFAR DenseNet-BC (DenseNet3 of the official code):
                 depth 16 (two bottleneck layers per block), growth 6, reduction 0.5,
                 non-affine BatchNorm, input normalisation inside the model, no dropout
  squeezenet     torchvision SqueezeNet 1.1 with four narrow Fire modules
  shufflenetv2   torchvision ShuffleNetV2, stages [2,2,2], channels [8,16,32,64,128]
  convnext       torchvision ConvNeXt (LayerNorm2d, depthwise 7x7, GELU as Erf, layer scale),
                 stages of one block, widths 8-16-32 (layer scale drawn in [0.5, 1])

For each NAME it writes (opset 13, dynamic batch axis "N", input "input", output "logits"):

  NAME.onnx         model.eval(), exported with training=TrainingMode.PRESERVE: BatchNormalization
                    nodes kept (inference mode), parameters under their PyTorch names
  NAME.folded.onnx  model.eval(), the exporter's default: BatchNorm folded into the convolutions
  NAME.op17.onnx    as NAME.onnx at opset 17, for mobilenetv3 (HardSwish), shufflenetv2 and
                    convnext (LayerNormalization)
  NAME.ref.json     see below

and NAME.trainbn.onnx for every family but convnext (opset 13: BatchNormalization with
running-stat outputs; the classifiers' Dropout with training_mode=True; SqueezeNet has no
BatchNorm, only that Dropout; ConvNeXt, LayerNorm and no Dropout, exports no training-mode
node at all) and
densenet.trainbn.op17.onnx (opset 17: training_mode=1): the models exported after model.train()
with TrainingMode.PRESERVE, whose BatchNormalization normalises every batch by its own statistics
(models refused for inference, which oodguard unleash takes and writes in inference mode).

Parameters that would still be constant after the randomisation (zero biases) are drawn at
random too: the exporter writes equal initializers once, shared, which a trained model never has.
Linear weights that the exporter stores transposed for a MatMul (ConvNeXt's) are referred to by
their ONNX initializer name, with their gradients transposed.

Every model reads the same batch: zoo.input.f32 (raw little-endian float32, [8,3,32,32], seeded
normal values) with the labels in each NAME.ref.json. NAME.ref.json holds:
  model, folded, input, input_shape, y, logits_eval (eval mode, [8,10]), ce_eval,
  params        every parameter (the tensors UM trains), by ONNX initializer name
  masked        every Conv and Linear weight (the tensors UMAP masks), with their sizes
  umap          keep 0.8, scores initialised to |w| (mask.Magnitude: the mask keeps each layer's
                largest weights, exactly n - int(0.2*n) of n), constraint c; for the first step
                with BatchNorm in train mode: the flooded loss |CE - c| + c and CE, the
                straight-through score gradients and the gradients of the effective weights w*m
                of a few layers (grad_layers); Dropout and StochasticDepth off (the eval-mode
                export has neither, so the trainer runs without them)
  um            constraint c; the loss, CE and the gradients of the same layers' weights and of
                one BatchNorm scale, dense weights, BatchNorm in train mode
  odin          ODIN (the official code's, batch-mean loss, on the model's own input space) at
                T=1000, eps=0.0014 and T=1, eps=0.02: scores, unperturbed scores, the smallest
                nonzero |input gradient|, how many gradient signs PyTorch's float32 gets wrong, and
                PyTorch's float32 error on the perturbation's effect on the scores
The losses and gradients are computed in float64 (the model and batch converted); each step's
torch_f32_error holds, per value, PyTorch's own float32 error against them (max |f32 - f64| over
max |f64|), which is large where a gradient is ill-conditioned (DenseNet-BC's first convolution
on this normal-noise batch: about 3e-3).
The semantics are those of testdata/unleash/make_reference.py (the official Unleashing Mask code).
"""
import copy
import json
import os
from functools import partial

import numpy as np
import onnx
from onnx import numpy_helper
import torch
import torch.autograd as autograd
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import stateless
from torchvision.models import convnext as tvconvnext
from torchvision.models import densenet as tvdensenet
from torchvision.models import efficientnet as tveff
from torchvision.models import mobilenetv2 as tvmv2
from torchvision.models import mobilenetv3 as tvmv3
from torchvision.models import resnet as tvresnet
from torchvision.models import shufflenetv2 as tvshuffle
from torchvision.models import squeezenet as tvsqueeze
from torchvision.ops import StochasticDepth
from torchvision.ops.misc import Conv2dNormActivation

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "zoo")
BATCH, CLASSES, SHAPE = 8, 10, (3, 32, 32)
KEEP = 0.8


class SmallResNet(tvresnet.ResNet):
    """torchvision's ResNet (its _make_layer and forward) with the widths divided by 16."""

    def __init__(self, layers=(2, 2, 2, 2), widths=(4, 8, 16, 32), num_classes=10):
        nn.Module.__init__(self)
        self._norm_layer = nn.BatchNorm2d
        self.inplanes, self.dilation, self.groups, self.base_width = widths[0], 1, 1, 64
        self.conv1 = nn.Conv2d(3, widths[0], kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(tvresnet.BasicBlock, widths[0], layers[0])
        self.layer2 = self._make_layer(tvresnet.BasicBlock, widths[1], layers[1], stride=2)
        self.layer3 = self._make_layer(tvresnet.BasicBlock, widths[2], layers[2], stride=2)
        self.layer4 = self._make_layer(tvresnet.BasicBlock, widths[3], layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(widths[3], num_classes)


def resnet18():
    return SmallResNet()


def mobilenetv2():
    setting = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 2, 2], [6, 64, 1, 2], [6, 96, 1, 1]]
    m = tvmv2.MobileNetV2(num_classes=CLASSES, width_mult=0.25, inverted_residual_setting=setting)
    cin = m.features[-1][0].in_channels
    m.features[-1] = Conv2dNormActivation(cin, 64, kernel_size=1, norm_layer=nn.BatchNorm2d, activation_layer=nn.ReLU6)
    m.last_channel = 64
    m.classifier[1] = nn.Linear(64, CLASSES)
    return m


def mobilenetv3():
    conf = partial(tvmv3.InvertedResidualConfig, width_mult=0.25)
    setting = [
        conf(16, 3, 16, 16, True, "RE", 2, 1),
        conf(16, 3, 72, 24, False, "RE", 2, 1),
        conf(24, 5, 96, 40, True, "HS", 2, 1),
        conf(40, 5, 240, 40, True, "HS", 1, 1),
        conf(40, 5, 144, 48, True, "HS", 2, 1),
    ]
    return tvmv3.MobileNetV3(setting, last_channel=64, num_classes=CLASSES)


def efficientnetb0():
    conf = partial(tveff.MBConvConfig, width_mult=0.25, depth_mult=1.0)
    setting = [
        conf(1, 3, 1, 32, 16, 1),
        conf(6, 3, 2, 16, 24, 1),
        conf(6, 5, 2, 24, 40, 1),
        conf(6, 3, 2, 40, 80, 1),
    ]
    return tveff.EfficientNet(setting, dropout=0.2, num_classes=CLASSES, last_channel=64)


def densenet():
    return tvdensenet.DenseNet(growth_rate=6, block_config=(2, 2, 2), num_init_features=12, bn_size=2,
                               drop_rate=0, num_classes=CLASSES)


class BottleneckBlock(nn.Module):
    """models/densenet.py BottleneckBlock of the official code (dropout rate 0 here)."""

    def __init__(self, cin, growth):
        super().__init__()
        inter = 4 * growth
        self.bn1 = nn.BatchNorm2d(cin, affine=False)
        self.conv1 = nn.Conv2d(cin, inter, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(inter, affine=False)
        self.conv2 = nn.Conv2d(inter, growth, 3, padding=1, bias=False)

    def forward(self, x):
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        return torch.cat([x, out], 1)


class TransitionBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin, affine=False)
        self.conv1 = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x):
        return F.avg_pool2d(self.conv1(F.relu(self.bn1(x))), 2)


class DenseNetBC(nn.Module):
    """The official code's DenseNet3 (bottleneck, non-affine BN, normalisation inside), small."""

    def __init__(self, depth=16, growth=6, reduction=0.5, num_classes=10):
        super().__init__()
        n = (depth - 4) // 3 // 2
        c = 2 * growth
        self.conv1 = nn.Conv2d(3, c, 3, padding=1, bias=False)
        blocks = []
        for i in range(3):
            layers = []
            for _ in range(n):
                layers.append(BottleneckBlock(c, growth))
                c += growth
            blocks.append(nn.Sequential(*layers))
            if i < 2:
                out = int(c * reduction)
                blocks.append(TransitionBlock(c, out))
                c = out
        self.blocks = nn.Sequential(*blocks)
        self.bn = nn.BatchNorm2d(c, affine=False)
        self.fc = nn.Linear(c, num_classes)
        self.register_buffer("mean", torch.tensor([125.3, 123.0, 113.9]).view(1, 3, 1, 1) / 255)
        self.register_buffer("std", torch.tensor([63.0, 62.1, 66.7]).view(1, 3, 1, 1) / 255)

    def forward(self, x):
        x = (x - self.mean) / self.std
        out = self.blocks(self.conv1(x))
        out = F.relu(self.bn(out))
        out = F.avg_pool2d(out, 8)
        return self.fc(out.flatten(1))


def squeezenet():
    m = tvsqueeze.SqueezeNet(version="1_1", num_classes=CLASSES)
    Fire = tvsqueeze.Fire
    m.features = nn.Sequential(
        nn.Conv2d(3, 16, kernel_size=3, stride=2), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
        Fire(16, 4, 8, 8), Fire(16, 4, 8, 8),
        nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
        Fire(16, 8, 16, 16),
        nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
        Fire(32, 8, 16, 16),
    )
    m.classifier[1] = nn.Conv2d(32, CLASSES, kernel_size=1)
    return m


def shufflenetv2():
    return tvshuffle.ShuffleNetV2([2, 2, 2], [8, 16, 32, 64, 128], num_classes=CLASSES)


def convnext():
    setting = [tvconvnext.CNBlockConfig(8, 16, 1), tvconvnext.CNBlockConfig(16, 32, 1), tvconvnext.CNBlockConfig(32, None, 1)]
    return tvconvnext.ConvNeXt(setting, stochastic_depth_prob=0.0, num_classes=CLASSES)


FAMILIES = [
    ("resnet18", resnet18),
    ("mobilenetv2", mobilenetv2),
    ("mobilenetv3", mobilenetv3),
    ("efficientnetb0", efficientnetb0),
    ("densenet", densenet),
    ("densenetbc", DenseNetBC),
    ("squeezenet", squeezenet),
    ("shufflenetv2", shufflenetv2),
    ("convnext", convnext),
]

# Families also exported at opset 17 (NAME.op17.onnx): HardSwish, LayerNormalization and
# BatchNormalization's training_mode attribute (densenet.trainbn.op17.onnx) are ops or attributes
# of opsets after 13.
OPSET17 = ["mobilenetv3", "shufflenetv2", "convnext"]


class GetSubnet(autograd.Function):
    """utils/conv_type.py:GetSubnet of the official code: top-k of the scores, straight-through."""

    @staticmethod
    def forward(ctx, scores, k):
        out = scores.clone()
        _, idx = scores.flatten().sort()
        j = int((1 - k) * scores.numel())
        flat_out = out.flatten()
        flat_out[idx[:j]] = 0
        flat_out[idx[j:]] = 1
        return flat_out.view_as(scores)

    @staticmethod
    def backward(ctx, g):
        return g, None


def flat(t):
    return [float(v) for v in t.detach().double().flatten().tolist()]


def randomise(model, seed):
    torch.manual_seed(seed)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.3, 0.3)
                mod.running_var.uniform_(0.5, 1.5)
                if mod.affine:
                    mod.weight.uniform_(0.7, 1.3)
                    mod.bias.uniform_(-0.2, 0.2)
            if isinstance(mod, nn.LayerNorm):
                mod.weight.uniform_(0.7, 1.3)
                mod.bias.uniform_(-0.2, 0.2)
            if isinstance(mod, tvconvnext.CNBlock):
                mod.layer_scale.uniform_(0.5, 1.0)  # 1e-6 at init would mute the blocks
        # Parameters that are still constant (zero biases) would be exported as one shared
        # initializer: make them distinct, as a trained model's are.
        for p in model.parameters():
            if p.numel() > 1 and bool((p == p.flatten()[0]).all()):
                p.uniform_(-0.1, 0.1)


def export(model, path, train=False, preserve=True, opset=13):
    model.train(train)
    kw = {"training": torch.onnx.TrainingMode.PRESERVE} if preserve else {}
    torch.onnx.export(model, torch.zeros((2 if train else 1,) + SHAPE), path, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}}, opset_version=opset,
                      do_constant_folding=True, **kw)
    model.eval()
    return onnx.load(path)


def masked_names(model):
    return [name + ".weight" for name, mod in model.named_modules() if isinstance(mod, (nn.Conv2d, nn.Linear))]


def pick_grad_layers(model, masked):
    """The first and last masked layers, and the first grouped (depthwise) convolution, if any."""
    mods = dict(model.named_modules())
    picks = [masked[0], masked[-1]]
    for name in masked:
        mod = mods[name[: -len(".weight")]]
        if isinstance(mod, nn.Conv2d) and mod.groups > 1:
            picks.insert(1, name)
            break
    out = []
    for p in picks:
        if p not in out:
            out.append(p)
    return out


def flooded(logits, y, c):
    ce = F.cross_entropy(logits, y)
    return (ce - c).abs() + c, ce


def umap_step(model, x, y, masked, grad_layers, c):
    params = dict(model.named_parameters())
    scores, weff, pruned = {}, {}, {}
    for name in masked:
        s = params[name].detach().abs().clone().requires_grad_(True)
        scores[name] = s
        m = GetSubnet.apply(s, KEEP)
        w = params[name].detach() * m
        w.retain_grad()
        weff[name] = w
        j = int((1 - KEEP) * s.numel())
        pruned[name] = j
        srt = s.detach().flatten().sort().values
        gap = (srt[j] - srt[j - 1]).item() if j > 0 else float("inf")
        if gap < 1e-6:
            print(f"  warning: {name}: kept-pruned |w| gap {gap:.3g}")
    model.train()
    logits = stateless.functional_call(model, weff, (x,))
    loss, ce = flooded(logits, y, c)
    loss.backward()
    model.eval()
    print(f"  umap: loss {loss.item():.6f} ce {ce.item():.6f} (ce-c {ce.item() - c:+.4f})")
    return {
        "keep": KEEP, "score_init": "magnitude", "constraint": c, "loss": loss.item(), "ce": ce.item(),
        "pruned": pruned,
        "score_grad": {k: flat(scores[k].grad) for k in grad_layers},
        "weff_grad": {k: flat(weff[k].grad) for k in grad_layers},
    }


def um_step(model, x, y, grad_names, c):
    model.zero_grad()
    model.train()
    logits = model(x)
    loss, ce = flooded(logits, y, c)
    loss.backward()
    model.eval()
    params = dict(model.named_parameters())
    print(f"  um: loss {loss.item():.6f} ce {ce.item():.6f} (ce-c {ce.item() - c:+.4f})")
    out = {"constraint": c, "loss": loss.item(), "ce": ce.item(), "grad": {k: flat(params[k].grad) for k in grad_names}}
    model.zero_grad()
    return out


def odin(model, x, T, eps):
    """utils/get_scores.py's ODIN (batch-mean loss) on the model's own input space (Std 1), in
    eval mode: the scores of x perturbed by eps against the sign of the input gradient."""
    model.eval()
    x = x.clone().requires_grad_(True)
    outputs = model(x)
    labels = outputs.detach().argmax(1)
    loss = nn.CrossEntropyLoss()(outputs / T, labels)
    loss.backward()
    grad = x.grad.detach()
    sign = (torch.ge(grad, 0).to(x.dtype) - 0.5) * 2
    with torch.no_grad():
        zp = model(x.detach() - eps * sign)
        z0 = outputs.detach()
    score = lambda z: torch.softmax(z.double() / T, dim=1).max(dim=1).values.tolist()
    nz = grad[grad != 0].abs()
    return {"temperature": T, "epsilon": eps, "scores": score(zp), "scores_no_perturbation": score(z0),
            "min_nonzero_abs_gradient": float(nz.min()) if nz.numel() else 0.0, "sign": sign}


def odin_cases(model, m64, x):
    """ODIN in float64 (the reference) at the official T=1000, eps=0.0014 and at T=1, eps=0.02,
    with how many input-gradient signs PyTorch's float32 gets wrong (knife edges)."""
    out = []
    for T, eps in ((1000.0, 0.0014), (1.0, 0.02)):
        r64, r32 = odin(m64, x.double(), T, eps), odin(model, x, T, eps)
        flips = int((r64.pop("sign").float() != r32.pop("sign")).sum())
        r64["f32_sign_flips"] = flips
        # The perturbation's effect on each score (score minus unperturbed score), as PyTorch's
        # float32 gets it: at T=1000 it can be near float32's resolution of the logits.
        g64 = np.array(r64["scores"]) - np.array(r64["scores_no_perturbation"])
        g32 = np.array(r32["scores"]) - np.array(r32["scores_no_perturbation"])
        r64["f32_gain_error"] = float(np.max(np.abs(g32 - g64) / np.abs(g64)))
        print(f"  odin T={T:g} eps={eps:g}: smallest nonzero |grad| {r64['min_nonzero_abs_gradient']:.3g}, "
              f"float32 sign flips {flips}, float32 gain error {r64['f32_gain_error']:.3g}")
        out.append(r64)
    return out


def rename_to_onnx(ref, params, onnx_name, transposed):
    """Keys the reference by ONNX initializer names, with the gradients of weights the file
    stores transposed (MatMul) transposed too."""
    def values(p, v):
        if p not in transposed:
            return v
        return [float(a) for a in np.array(v).reshape(tuple(params[p].shape)).T.flatten()]

    ref["params"] = sorted(onnx_name[p] for p in params)
    ref["masked"] = [onnx_name[p] for p in ref["masked"]]
    ref["masked_sizes"] = {onnx_name[p]: v for p, v in ref["masked_sizes"].items()}
    ref["grad_layers"] = [onnx_name[p] for p in ref["grad_layers"]]
    ref["umap"]["pruned"] = {onnx_name[p]: v for p, v in ref["umap"]["pruned"].items()}
    for step, fields in ((ref["umap"], ("score_grad", "weff_grad")), (ref["um"], ("grad",))):
        for f in fields:
            step[f] = {onnx_name[p]: values(p, v) for p, v in step[f].items()}
        err = {}
        for k, v in step["torch_f32_error"].items():
            f, _, p = k.partition("/")
            err[f + "/" + onnx_name[p] if p else k] = v
        step["torch_f32_error"] = err


def make(name, ctor, x, y, seed):
    torch.manual_seed(seed)
    model = ctor()
    randomise(model, seed + 1)
    model.eval()
    path = os.path.join(OUT, name + ".onnx")
    m = export(model, path)
    ops = sorted({n.op_type for n in m.graph.node})
    has_bn = any(isinstance(mod, nn.BatchNorm2d) for mod in model.modules())
    assert not has_bn or "BatchNormalization" in ops, f"{name}: BatchNormalization was folded: {ops}"
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    # The exporter writes a Linear applied to a rank-4 tensor (ConvNeXt's) as a MatMul by the
    # transposed weight, an initializer of its own name: map such weights to it.
    onnx_name, transposed = {}, set()
    for p, v in model.named_parameters():
        if p in inits:
            onnx_name[p] = p
            continue
        w = v.detach().numpy()
        for k, a in inits.items():
            if w.ndim == 2 and a.shape == w.T.shape and np.array_equal(a, w.T):
                onnx_name[p] = k
                transposed.add(p)
    masked = masked_names(model)
    missing = [p for p, _ in model.named_parameters() if p not in onnx_name]
    assert not missing, f"{name}: initializers {missing} missing"
    export(model, os.path.join(OUT, name + ".folded.onnx"), preserve=False)
    if name in OPSET17:
        export(model, os.path.join(OUT, name + ".op17.onnx"), opset=17)
    if name == "densenet":
        export(copy.deepcopy(model), os.path.join(OUT, name + ".trainbn.op17.onnx"), train=True, opset=17)
    if name not in ("densenet", "convnext"):
        # On a copy: tracing in train mode updates the BatchNorm running stats. MobileNetV2's
        # classifier Dropout(0.2) is exported with training_mode=True.
        export(copy.deepcopy(model), os.path.join(OUT, name + ".trainbn.onnx"), train=True)
    # The eval-mode export has no Dropout (nor torchvision's StochasticDepth): the train-mode
    # reference steps run without them, as the trainer runs the file.
    for mod in model.modules():
        if isinstance(mod, (nn.Dropout, StochasticDepth)):
            mod.p = 0.0
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        logits = model(x)
        ce_eval = F.cross_entropy(logits, y).item()
    c = 0.5 * ce_eval
    grad_layers = pick_grad_layers(model, masked)
    params = dict(model.named_parameters())
    sizes = {k: params[k].numel() for k in masked}
    nparams = sum(p.numel() for p in model.parameters())
    print(f"{name}: {nparams} parameters, {len(masked)} masked layers, {os.path.getsize(path)} bytes, ops {ops}")
    bn_scale = next((k for k, mod in model.named_modules() if isinstance(mod, nn.BatchNorm2d) and mod.affine), None)
    um_names = grad_layers + ([bn_scale + ".weight"] if bn_scale else [])
    ref = {
        "model": name + ".onnx",
        "folded": name + ".folded.onnx",
        "input": "zoo.input.f32",
        "input_shape": [BATCH] + list(SHAPE),
        "y": [int(v) for v in y.tolist()],
        "logits_eval": flat(logits),
        "ce_eval": ce_eval,
        "masked": masked,
        "masked_sizes": sizes,
        "grad_layers": grad_layers,
        "made_by": "testdata/make_zoo.py with PyTorch " + torch.__version__,
    }
    # The steps in float64 are the reference; PyTorch's own float32 error against them is kept,
    # so that a test can tell an ill-conditioned gradient (float32 cannot do better) from a bug.
    m64 = copy.deepcopy(model).double()
    umap32 = umap_step(model, x, y, masked, grad_layers, c)
    umap64 = umap_step(m64, x.double(), y, masked, grad_layers, c)
    model.load_state_dict(state)
    m64 = copy.deepcopy(model).double()
    um32 = um_step(model, x, y, um_names, c)
    um64 = um_step(m64, x.double(), y, um_names, c)
    model.load_state_dict(state)
    for r32, r64 in ((umap32, umap64), (um32, um64)):
        err = {"loss": abs(r32["loss"] - r64["loss"]) / abs(r64["loss"]), "ce": abs(r32["ce"] - r64["ce"]) / abs(r64["ce"])}
        for field in ("score_grad", "weff_grad", "grad"):
            for k, v in r64.get(field, {}).items():
                a, b = np.array(r32[field][k]), np.array(v)
                err[field + "/" + k] = float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))
        r64["torch_f32_error"] = err
        worst = max(err, key=err.get)
        print(f"  PyTorch float32 vs float64: largest relative error {err[worst]:.3g} ({worst})")
    ref["umap"], ref["um"] = umap64, um64
    rename_to_onnx(ref, params, onnx_name, transposed)
    ref["odin"] = odin_cases(model, copy.deepcopy(model).double(), x)
    with open(os.path.join(OUT, name + ".ref.json"), "w") as f:
        json.dump(ref, f)
        f.write("\n")


def main():
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    gen = torch.Generator().manual_seed(7)
    x = torch.randn((BATCH,) + SHAPE, generator=gen)
    y = torch.randint(0, CLASSES, (BATCH,), generator=gen)
    x.numpy().astype("<f4").tofile(os.path.join(OUT, "zoo.input.f32"))
    for i, (name, ctor) in enumerate(FAMILIES):
        make(name, ctor, x, y, seed=100 + 10 * i)


if __name__ == "__main__":
    main()

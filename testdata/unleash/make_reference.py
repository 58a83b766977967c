#!/usr/bin/env python3
"""Makes the tiny BatchNorm-kept ONNX models in testdata/unleash and the PyTorch references that
the unleash package is tested against.

Run with Debian's PyTorch 1.13: /usr/bin/python3 testdata/unleash/make_reference.py

Models (opset 13, dynamic batch axis "N", exported in eval mode with
training=TrainingMode.PRESERVE, which keeps the BatchNormalization nodes instead of folding them
into the convolutions; the script checks that they are there):

  tinybn.onnx  1x8x8 input: conv3x3(6, no bias)-BN-ReLU-maxpool2, conv3x3/2(8, bias)-BN-ReLU,
               global avgpool, flatten, fc(5). 1,088 parameters.
  opszoo.onnx  3x8x8 input: conv3x3(4, bias)-BN-ReLU-avgpool2, conv3x3/2(8)-BN(non-affine) plus a
               conv1x1/2 shortcut, Add, ReLU, reshape(-1,32), MatMul(32x5) + bias (Add).
               The ops the importer knows that tinybn lacks: AveragePool, Add, Reshape, MatMul.
  poolzoo.onnx 3x9x9 input: dilated conv-BN-ReLU, avgpool 3/2 pad 1 without the padding in the
               count, maxpool 2/2 in ceil mode, conv3x3/2, torch.flatten, fc(5).

For each model NAME it writes NAME.onnx and NAME.ref.json with:
  input_shape, x (the batch, flat, NCHW), y (labels), logits_eval (eval mode, running stats)
  umap: keep, constraint, lr, momentum, weight_decay, steps, and per masked layer (by ONNX
        initializer name) the initial scores; then the flooded loss and CE of the first step,
        the score gradients (straight-through), the gradients with respect to the effective
        weight w*m, the loss of every step, the scores after the steps, the BatchNorm running
        stats after the steps, and the masked-model eval logits after the steps.
  um:   the same for dense fine-tuning: the loss and gradients of every trainable parameter at
        the first step, the loss of every step, the parameters and running stats after the steps.

The semantics are those of the official Unleashing Mask code (tmlr-group/Unleashing-Mask at
1640ce6): GetSubnet per-layer top-k of |scores| keeping `keep` (j = int((1-k)*n) smallest are
zeroed), straight-through gradient, flooding |CE - c| + c on the batch mean, SGD momentum 0.9,
coupled weight decay on every trained tensor, no Nesterov, BatchNorm in train mode (batch
statistics, running stats updated with momentum 0.1 and the unbiased variance).
The script also prints, for each UMAP step, the smallest gap between a kept and a pruned |score|
and the distance of the batch CE from the constraint, so that a reference never sits on a knife
edge that float32 rounding could flip.
"""
import json
import os

import numpy as np
import onnx
import torch
import torch.autograd as autograd
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))


class GetSubnet(autograd.Function):
    """utils/conv_type.py:GetSubnet of the official code."""

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


class TinyBN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(6)
        self.conv2 = nn.Conv2d(6, 8, 3, stride=2, padding=1, bias=True)
        self.bn2 = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 5)

    def forward(self, x, w=None):
        w = w or {}
        g = lambda name: w.get(name, getattr(self, name.split(".")[0]).weight)
        x = F.conv2d(x, g("conv1.weight"), None, padding=1)
        x = F.max_pool2d(F.relu(self.bn1(x)), 2)
        x = F.conv2d(x, g("conv2.weight"), self.conv2.bias, stride=2, padding=1)
        x = F.relu(self.bn2(x))
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return F.linear(x, g("fc.weight"), self.fc.bias)

    masked = ["conv1.weight", "conv2.weight", "fc.weight"]


class OpsZoo(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1, bias=True)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 8, 3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(8, affine=False)
        self.short = nn.Conv2d(4, 8, 1, stride=2, bias=False)
        self.w = nn.Parameter(torch.randn(32, 5) * 0.2)
        self.b = nn.Parameter(torch.randn(5) * 0.1)

    def forward(self, x, w=None):
        w = w or {}
        g = lambda name, default: w.get(name, default)
        x = F.conv2d(x, g("conv1.weight", self.conv1.weight), self.conv1.bias, padding=1)
        x = F.avg_pool2d(F.relu(self.bn1(x)), 2)
        a = self.bn2(F.conv2d(x, g("conv2.weight", self.conv2.weight), None, stride=2, padding=1))
        s = F.conv2d(x, g("short.weight", self.short.weight), None, stride=2)
        x = F.relu(a + s)
        x = x.reshape(-1, 32)
        return x @ g("w", self.w) + self.b

    masked = ["conv1.weight", "conv2.weight", "short.weight", "w"]


class PoolZoo(nn.Module):
    """3x9x9 input: dilated conv, padded average pool without the padding in the count, ceil-mode
    max pool, a strided conv and torch.flatten: the importer's less common paths."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=2, dilation=2, bias=True)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 6, 3, stride=2, padding=1, bias=False)
        self.fc = nn.Linear(24, 5)

    def forward(self, x, w=None):
        w = w or {}
        g = lambda name: w.get(name, getattr(self, name.split(".")[0]).weight)
        x = F.relu(self.bn1(F.conv2d(x, g("conv1.weight"), self.conv1.bias, padding=2, dilation=2)))
        x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)  # 4x5x5
        x = F.max_pool2d(x, 2, stride=2, ceil_mode=True)  # 4x3x3 (floor mode would give 2x2)
        x = F.conv2d(x, g("conv2.weight"), None, stride=2, padding=1)  # 6x2x2
        return F.linear(torch.flatten(x, 1), g("fc.weight"), self.fc.bias)

    masked = ["conv1.weight", "conv2.weight", "fc.weight"]


def param(model, name):
    return dict(model.named_parameters())[name]


def fan_in(p, name):
    # kaiming fan_in of the PyTorch-shaped weight; the MatMul weight [in,out] is the transpose.
    if p.dim() == 4:
        return p.shape[1] * p.shape[2] * p.shape[3]
    if name == "w":
        return p.shape[0]
    return p.shape[1]


def export(model, shape, name):
    model.eval()
    path = os.path.join(HERE, name + ".onnx")
    torch.onnx.export(model, torch.zeros(shape), path, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}}, opset_version=13,
                      do_constant_folding=True, training=torch.onnx.TrainingMode.PRESERVE)
    m = onnx.load(path)
    ops = [n.op_type for n in m.graph.node]
    assert "BatchNormalization" in ops, f"{name}: BatchNormalization was folded: {ops}"
    inits = {i.name for i in m.graph.initializer}
    for p in model.masked:
        assert p in inits, f"{name}: initializer {p} missing, have {sorted(inits)}"
    print(f"{name}: ops {ops}")
    print(f"{name}: initializers {sorted(inits)}")
    return m


def flat(t):
    return [float(v) for v in t.detach().double().flatten().tolist()]


def bn_state(model):
    out = {}
    for mname, mod in model.named_modules():
        if isinstance(mod, nn.BatchNorm2d):
            out[mname + ".running_mean"] = flat(mod.running_mean)
            out[mname + ".running_var"] = flat(mod.running_var)
    return out


def sgd(params, momentum, wd):
    return torch.optim.SGD(params, lr=0.0, momentum=momentum, weight_decay=wd, nesterov=False)


def flooded(logits, y, c):
    ce = F.cross_entropy(logits, y)
    return (ce - c).abs() + c, ce


def run_umap(model, x, y, keep, c, lr, steps, seed):
    """UMAP: weights and biases frozen, scores trained, BN in train mode."""
    g = torch.Generator().manual_seed(seed)
    scores = {}
    for name in model.masked:
        p = param(model, name)
        b = 1.0 / np.sqrt(fan_in(p, name))
        scores[name] = ((torch.rand(p.shape, generator=g, dtype=torch.float32) * 2 - 1) * b).requires_grad_(True)
    init = {k: flat(v) for k, v in scores.items()}
    for p in model.parameters():
        p.requires_grad_(False)
    opt = sgd(list(scores.values()), 0.9, 1e-4)
    for group in opt.param_groups:
        group["lr"] = lr
    out = {"scores_init": init, "loss": [], "ce": []}
    model.train()
    for step in range(steps):
        masks, weff = {}, {}
        for name, s in scores.items():
            a = s.abs()
            m = GetSubnet.apply(a, keep)
            masks[name] = m
            w = param(model, name) * m
            w.retain_grad()
            weff[name] = w
            srt = a.detach().flatten().sort().values
            j = int((1 - keep) * a.numel())
            gap = (srt[j] - srt[j - 1]).item() if j > 0 else float("inf")
            print(f"  umap step {step} {name}: pruned {j}/{a.numel()}, smallest kept-pruned |s| gap {gap:.3g}")
        logits = model(x, weff)
        loss, ce = flooded(logits, y, c)
        print(f"  umap step {step}: loss {loss.item():.6f} ce {ce.item():.6f} (ce-c {ce.item() - c:+.4f})")
        opt.zero_grad()
        loss.backward()
        if step == 0:
            out["score_grad"] = {k: flat(v.grad) for k, v in scores.items()}
            out["weff_grad"] = {k: flat(v.grad) for k, v in weff.items()}
            out["masks0"] = {k: flat(v) for k, v in masks.items()}
        out["loss"].append(loss.item())
        out["ce"].append(ce.item())
        opt.step()
    out["scores_after"] = {k: flat(v) for k, v in scores.items()}
    out["bn_after"] = bn_state(model)
    model.eval()
    with torch.no_grad():
        w = {name: param(model, name) * GetSubnet.apply(s.abs(), keep) for name, s in scores.items()}
        out["masks_after"] = {k: flat(GetSubnet.apply(s.abs(), keep)) for k, s in scores.items()}
        out["logits_eval_after"] = flat(model(x, w))
    for p in model.parameters():
        p.requires_grad_(True)
    return out


def run_um(model, x, y, c, lr, steps):
    """UM: dense fine-tuning of every parameter, BN in train mode."""
    params = dict(model.named_parameters())
    opt = sgd(list(params.values()), 0.9, 1e-4)
    for group in opt.param_groups:
        group["lr"] = lr
    out = {"loss": [], "ce": []}
    model.train()
    for step in range(steps):
        logits = model(x)
        loss, ce = flooded(logits, y, c)
        print(f"  um step {step}: loss {loss.item():.6f} ce {ce.item():.6f} (ce-c {ce.item() - c:+.4f})")
        opt.zero_grad()
        loss.backward()
        if step == 0:
            out["grad"] = {k: flat(v.grad) for k, v in params.items()}
        out["loss"].append(loss.item())
        out["ce"].append(ce.item())
        opt.step()
    out["params_after"] = {k: flat(v) for k, v in params.items()}
    out["bn_after"] = bn_state(model)
    model.eval()
    with torch.no_grad():
        out["logits_eval_after"] = flat(model(x))
    return out


def make(name, model, shape, batch, classes, seed, umap_lr, um_lr, c_frac):
    torch.manual_seed(seed)
    # Give BatchNorm non-trivial running stats and affine parameters, so eval and train differ.
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.3, 0.3)
                mod.running_var.uniform_(0.5, 1.5)
                if mod.affine:
                    mod.weight.uniform_(0.7, 1.3)
                    mod.bias.uniform_(-0.2, 0.2)
    m = export(model, (1,) + shape, name)
    gen = torch.Generator().manual_seed(seed + 1)
    x = torch.randn((batch,) + shape, generator=gen)
    y = torch.randint(0, classes, (batch,), generator=gen)
    model.eval()
    with torch.no_grad():
        logits = model(x)
        ce_eval = F.cross_entropy(logits, y).item()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    # The initializer names as the ONNX file has them, for the BN running stats.
    bn_names = {}
    for node in m.graph.node:
        if node.op_type == "BatchNormalization":
            bn_names[node.input[3]] = node.input[3]
            bn_names[node.input[4]] = node.input[4]
    keep, steps = 0.8, 3
    c = c_frac * ce_eval
    ref = {
        "model": name + ".onnx",
        "input_shape": [batch] + list(shape),
        "x": flat(x),
        "y": [int(v) for v in y.tolist()],
        "logits_eval": flat(logits),
        "ce_eval": ce_eval,
        "masked": model.masked,
        "bn_initializers": sorted(bn_names),
        "momentum": 0.9,
        "weight_decay": 1e-4,
        "steps": steps,
        "made_by": "testdata/unleash/make_reference.py with PyTorch " + torch.__version__,
    }
    print(f"{name}: eval CE {ce_eval:.5f}, constraint {c:.5f}")
    model.load_state_dict(state)
    ref["umap"] = {"keep": keep, "constraint": c, "lr": umap_lr, **run_umap(model, x, y, keep, c, umap_lr, steps, seed + 2)}
    model.load_state_dict(state)
    ref["um"] = {"constraint": c, "lr": um_lr, **run_um(model, x, y, c, um_lr, steps)}
    with open(os.path.join(HERE, name + ".ref.json"), "w") as f:
        json.dump(ref, f)
        f.write("\n")


def main():
    torch.set_num_threads(2)
    torch.manual_seed(0)
    make("tinybn", TinyBN(), (1, 8, 8), 8, 5, seed=10, umap_lr=0.5, um_lr=0.2, c_frac=0.9)
    torch.manual_seed(0)
    make("opszoo", OpsZoo(), (3, 8, 8), 6, 5, seed=20, umap_lr=0.5, um_lr=0.2, c_frac=1.1)
    torch.manual_seed(0)
    make("poolzoo", PoolZoo(), (3, 9, 9), 6, 5, seed=30, umap_lr=0.5, um_lr=0.2, c_frac=0.8)


if __name__ == "__main__":
    main()

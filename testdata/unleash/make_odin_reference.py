#!/usr/bin/env python3
"""Makes testdata/unleash/odintiny.onnx and odintiny.ref.json: the PyTorch reference ODIN scores
that unleash/odin is tested against.

Run with Debian's PyTorch 1.13: /usr/bin/python3 testdata/unleash/make_odin_reference.py

The model (3x16x16 input, opset 13, dynamic batch axis "N", BatchNorm kept with
training=TrainingMode.PRESERVE): conv3x3/4 pad 1 (6, bias)-BN-ReLU-maxpool2, conv3x3/2(8)-BN-ReLU,
global avgpool, flatten, fc(5). The first convolution never reads rows and columns 2, 6, 10, 14,
whose gradients are therefore exactly zero: the "g >= 0 -> +1" rule is exercised, and so is the
input gradient of a strided convolution.

It also writes odineven.onnx, a model with a 2x2 convolution, which unleash/odin refuses: GoMLX
v0.28.8 computes the input gradient of a convolution with an even kernel size wrongly (the
reverse convolution is padded (0, k) instead of (k-1, k-1); graph/ops_convolve.go convVJPWrtX). The ONNX model takes *normalised* images, as oodguard's models do; the
reference wraps it in Normalize(mean, std) (the CIFAR-10 constants, three different stds) and
runs ODIN in [0,1] pixel space exactly as the Unleashing Mask code does
(utils/get_scores.py, ODIN branch):

    x.requires_grad; z = model(x); y = argmax z; loss = CrossEntropyLoss()(z / T, y) (batch mean)
    loss.backward(); s = (ge(x.grad, 0).float() - 0.5) * 2; x' = x - eps * s
    score = max softmax(model(x') / T)

so the Go side must reproduce it with the step eps/std_c in normalised space.

Written for each case (official T=1000, eps=0.0014; and T=1, eps=0.02, where the perturbation
moves the score far more, so that a wrong sign cannot hide in the tolerance):
  temperature, epsilon, scores (float64 from the float32 logits of x'), logits (clean),
  perturbed_logits, scores_no_perturbation (eps=0), and the number of input gradients that are
  exactly zero and the smallest |gradient| that is not (so that no reference sits on a sign
  knife edge).
Shared: input_shape, mean, std, x (pixels in [0,1], multiples of 1/255, flat NCHW).
"""
import json
import os

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
MEAN = [125.3 / 255, 123.0 / 255, 113.9 / 255]
STD = [63.0 / 255, 62.1 / 255, 66.7 / 255]


class OdinTiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3, stride=4, padding=1)
        self.bn1 = nn.BatchNorm2d(6)
        self.conv2 = nn.Conv2d(6, 8, 3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.relu(self.bn2(self.conv2(x)))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(x)


class Normalized(nn.Module):
    """The official models' layout: normalisation inside forward, inputs in [0,1]."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1))

    def forward(self, x):
        return self.inner((x - self.mean) / self.std)


def odin(model, x, T, eps):
    """utils/get_scores.py's ODIN, batch mean loss, in pixel space."""
    x = x.clone().requires_grad_(True)
    outputs = model(x)
    labels = torch.from_numpy(np.argmax(outputs.data.numpy(), axis=1))
    loss = nn.CrossEntropyLoss()(outputs / T, labels)
    loss.backward()
    grad = x.grad.data
    gradient = torch.ge(grad, 0)
    gradient = (gradient.float() - 0.5) * 2
    temp = torch.add(x.data, gradient, alpha=-eps)
    with torch.no_grad():
        zp = model(temp)
    z64 = zp.double() / T
    scores = torch.softmax(z64, dim=1).max(dim=1).values
    nz = grad[grad != 0].abs()
    return {
        "scores": scores.tolist(),
        "logits": outputs.detach().flatten().tolist(),
        "perturbed_logits": zp.flatten().tolist(),
        "zero_gradients": int((grad == 0).sum()),
        "min_nonzero_abs_gradient": float(nz.min()) if nz.numel() else 0.0,
    }


def main():
    torch.manual_seed(40)
    inner = OdinTiny()
    with torch.no_grad():
        for mod in inner.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.3, 0.3)
                mod.running_var.uniform_(0.5, 1.5)
                mod.weight.uniform_(0.7, 1.3)
                mod.bias.uniform_(-0.2, 0.2)
        inner.fc.weight.mul_(4)  # logits of a few units, as a trained classifier's
    inner.eval()
    path = os.path.join(HERE, "odintiny.onnx")
    torch.onnx.export(inner, torch.zeros(1, 3, 16, 16), path, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}}, opset_version=13,
                      do_constant_folding=True, training=torch.onnx.TrainingMode.PRESERVE)
    ops = {n.op_type for n in onnx.load(path).graph.node}
    assert "BatchNormalization" in ops, ops

    even = nn.Sequential(nn.Conv2d(3, 4, 2, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, 5)).eval()
    torch.onnx.export(even, torch.zeros(1, 3, 16, 16), os.path.join(HERE, "odineven.onnx"), input_names=["input"],
                      output_names=["logits"], dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}}, opset_version=13)

    model = Normalized(inner).eval()
    gen = torch.Generator().manual_seed(41)
    x = torch.randint(0, 256, (6, 3, 16, 16), generator=gen).float() / 255
    ref = {"input_shape": list(x.shape), "mean": MEAN, "std": STD, "x": x.flatten().tolist(), "cases": []}
    for T, eps in [(1000.0, 0.0014), (1.0, 0.02)]:
        case = {"temperature": T, "epsilon": eps, **odin(model, x, T, eps)}
        case["scores_no_perturbation"] = odin(model, x, T, 0.0)["scores"]
        ref["cases"].append(case)
        print(f"T={T} eps={eps}: scores {np.round(case['scores'], 6)}; zero grads {case['zero_gradients']}, "
              f"min |g| {case['min_nonzero_abs_gradient']:.3g}")
    with open(os.path.join(HERE, "odintiny.ref.json"), "w") as f:
        json.dump(ref, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()

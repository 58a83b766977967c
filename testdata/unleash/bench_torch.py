#!/usr/bin/env python3
"""PyTorch's speed on the workload of unleash.BenchmarkUMAPStep, for comparison.

Run with Debian's PyTorch: /usr/bin/python3 testdata/unleash/bench_torch.py [--threads 2]

UMAP mask learning (edge-popup scores on every conv and the fc, top-k keeping 0.8 recomputed
every forward, straight-through gradient, weights frozen, flooding loss, SGD momentum 0.9 and
weight decay 1e-4) on testdata/make_models.py's SmallCNN (the cnn28 architecture) at batch 64,
in train mode. The Go benchmark runs the exported cnn28.onnx, whose BatchNorm is folded into the
convolutions; this script keeps BatchNorm, so PyTorch does slightly more work. Prints images/s
for a few repeats.
"""
import argparse
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from make_models import SmallCNN  # noqa: E402
from make_reference import GetSubnet  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = SmallCNN()
    names = ["conv1", "conv2", "conv3", "fc"]
    for p in model.parameters():
        p.requires_grad_(False)
    scores = {n: torch.empty_like(getattr(model, n).weight).uniform_(-0.1, 0.1).requires_grad_(True) for n in names}
    opt = torch.optim.SGD(scores.values(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    x = torch.randn(64, 1, 28, 28)
    y = torch.randint(0, 10, (64,))
    c = 0.3

    def forward(x):
        w = {n: getattr(model, n).weight * GetSubnet.apply(scores[n].abs(), 0.8) for n in names}
        h = F.max_pool2d(F.relu(model.bn1(F.conv2d(x, w["conv1"], padding=1))), 2)
        h = F.max_pool2d(F.relu(model.bn2(F.conv2d(h, w["conv2"], padding=1))), 2)
        h = F.relu(model.bn3(F.conv2d(h, w["conv3"], stride=2, padding=1)))
        h = torch.flatten(F.adaptive_avg_pool2d(h, 1), 1)
        return F.linear(h, w["fc"], model.fc.bias)

    model.train()

    def step():
        ce = F.cross_entropy(forward(x), y)
        loss = (ce - c).abs() + c
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(5):
        step()
    for r in range(args.repeats):
        t0 = time.perf_counter()
        for _ in range(args.steps):
            step()
        dt = time.perf_counter() - t0
        print(f"repeat {r}: {args.steps * 64 / dt:.0f} img/s ({args.threads} threads, PyTorch {torch.__version__})")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""PyTorch's speed on the workload of unleash.BenchmarkUMAPStep, for comparison.

Run with Debian's PyTorch: /usr/bin/python3 testdata/unleash/bench_torch.py [--threads 2]

UMAP mask learning (edge-popup scores on every conv and linear weight, top-k keeping 0.8
recomputed every forward, straight-through gradient, weights frozen, flooding loss, SGD momentum
0.9 and weight decay 1e-4) at batch 64, in train mode, on testdata/make_models.py's SmallCNN (the
cnn28 architecture) or SmallResNet (--arch resnet, --width w). The Go benchmark runs cnn28.onnx,
whose BatchNorm is folded into the convolutions, and the ResNet as `oodguard train` builds it, with
BatchNorm; this script keeps BatchNorm in both, so for cnn28 PyTorch does slightly more work.
Prints images/s for a few repeats.
"""
import argparse
import os
import sys
import time

import torch
import torch.nn.functional as F
from torch.nn.utils.stateless import functional_call

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from make_models import SmallCNN, SmallResNet  # noqa: E402
from make_reference import GetSubnet  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--arch", choices=["cnn28", "resnet"], default="cnn28")
    ap.add_argument("--width", type=int, default=16)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.arch == "cnn28":
        model, shape = SmallCNN(), (1, 28, 28)
    else:
        model, shape = SmallResNet(width=args.width), (3, 32, 32)
    for p in model.parameters():
        p.requires_grad_(False)
    names = [n + ".weight" for n, m in model.named_modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    params = dict(model.named_parameters())
    scores = {n: torch.empty_like(params[n]).uniform_(-0.1, 0.1).requires_grad_(True) for n in names}
    opt = torch.optim.SGD(scores.values(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    x = torch.randn(64, *shape)
    y = torch.randint(0, 10, (64,))
    c = 0.3

    def forward(x):
        masked = {n: params[n] * GetSubnet.apply(scores[n].abs(), 0.8) for n in names}
        return functional_call(model, masked, (x,))

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
        print(f"repeat {r}: {args.steps * 64 / dt:.0f} img/s ({args.arch}, {args.threads} threads, PyTorch {torch.__version__})")


if __name__ == "__main__":
    main()

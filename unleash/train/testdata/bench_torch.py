#!/usr/bin/env python3
"""PyTorch's speed on the workload of train.BenchmarkTrainStep, for comparison.

Run with Debian's PyTorch: /usr/bin/python3 unleash/train/testdata/bench_torch.py [--threads 2]

Training from scratch: testdata/make_models.py's SmallCNN (cnn28, 1x28x28) or SmallResNet (--arch
resnet, 3x32x32, --width w) with BatchNorm in train mode, batch 64, cross-entropy, SGD momentum
0.9, weight decay 5e-4 on every parameter. Prints images/s for a few repeats.
"""
import argparse
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "testdata"))
from make_models import SmallCNN, SmallResNet  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--arch", choices=["cnn28", "resnet"], default="cnn28")
    ap.add_argument("--width", type=int, default=16)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.arch == "cnn28":
        model, shape = SmallCNN(), (1, 28, 28)
    else:
        model, shape = SmallResNet(width=args.width), (3, 32, 32)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(args.batch, *shape)
    y = torch.randint(0, 10, (args.batch,))

    def step():
        loss = F.cross_entropy(model(x), y)
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
        print(f"repeat {r}: {args.steps * args.batch / dt:.0f} img/s ({args.arch}, {args.threads} threads, batch {args.batch}, PyTorch {torch.__version__})")


if __name__ == "__main__":
    main()

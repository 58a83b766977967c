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

--arch zoo:NAME builds testdata/make_zoo.py's family NAME (resnet18, mobilenetv2, ..., convnext:
the reduced-width torchvision models of testdata/zoo, 3x32x32, 10 classes), Dropout and
StochasticDepth off as the zoo's eval-mode export has neither (unleash.BenchmarkZooStep).
--method um trains every parameter instead (UM: dense weights, the same flooded loss and SGD).
--arch vgg11bn:D builds torchvision's VGG-11-BN with every width (convolutions and the
classifier's 4096) divided by D, 10 classes, its 7x7 adaptive pool made 1x1 (PyTorch 1.13
cannot export a 7x7 adaptive pool of the 1x1 map a 32x32 input leaves). --export PATH writes the model (eval mode, BatchNorm kept, opset 13, dynamic
batch) to PATH for the Go side and exits.
--rss-steps N runs N steps and prints "peak RSS: X MB (after import: Y MB)" from
/proc/self/status's VmHWM instead of timing.
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
    ap.add_argument("--arch", default="cnn28", help="cnn28, resnet, zoo:NAME, vgg11bn:D or resnet18full")
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--method", choices=["umap", "um"], default="umap")
    ap.add_argument("--rss-steps", type=int, default=0)
    ap.add_argument("--export", default="")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.arch == "cnn28":
        model, shape = SmallCNN(), (1, 28, 28)
    elif args.arch == "resnet":
        model, shape = SmallResNet(width=args.width), (3, 32, 32)
    elif args.arch.startswith("zoo:"):
        model, shape = zoo_model(args.arch[len("zoo:"):]), (3, 32, 32)
    elif args.arch.startswith("vgg11bn:"):
        model, shape = vgg11bn(int(args.arch[len("vgg11bn:"):])), (3, 32, 32)
    elif args.arch == "resnet18full":
        import torchvision
        # torchvision's ResNet-18 at full width (11.2 M parameters), 10 classes, 32x32 input.
        model, shape = torchvision.models.resnet18(num_classes=10), (3, 32, 32)
    else:
        sys.exit(f"unknown --arch {args.arch}")
    import_rss = peak_rss_mb()
    if args.export:
        model.eval()
        torch.onnx.export(model, torch.zeros((1,) + shape), args.export, input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}}, opset_version=13,
                          training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=True)
        return
    for p in model.parameters():
        p.requires_grad_(False)
    names = [n + ".weight" for n, m in model.named_modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    params = dict(model.named_parameters())
    if args.method == "umap":
        scores = {n: torch.empty_like(params[n]).uniform_(-0.1, 0.1).requires_grad_(True) for n in names}
        opt = torch.optim.SGD(scores.values(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    else:
        for p in model.parameters():
            p.requires_grad_(True)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    x = torch.randn(64, *shape)
    y = torch.randint(0, 10, (64,))
    c = 0.3

    def forward(x):
        if args.method == "um":
            return model(x)
        masked = {n: params[n] * GetSubnet.apply(scores[n].abs(), 0.8) for n in names}
        return functional_call(model, masked, (x,))

    model.train()

    def step():
        ce = F.cross_entropy(forward(x), y)
        loss = (ce - c).abs() + c
        opt.zero_grad()
        loss.backward()
        opt.step()

    if args.rss_steps > 0:
        for _ in range(args.rss_steps):
            step()
        print(f"peak RSS: {peak_rss_mb():.1f} MB (after import: {import_rss:.1f} MB; {args.arch} {args.method}, "
              f"{args.rss_steps} steps, {args.threads} threads, PyTorch {torch.__version__})")
        return
    for _ in range(5):
        step()
    for r in range(args.repeats):
        t0 = time.perf_counter()
        for _ in range(args.steps):
            step()
        dt = time.perf_counter() - t0
        print(f"repeat {r}: {args.steps * 64 / dt:.0f} img/s ({args.arch} {args.method}, {args.threads} threads, PyTorch {torch.__version__})")


def peak_rss_mb():
    """The process's peak resident set so far (VmHWM), in MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def vgg11bn(d):
    """torchvision's vgg11_bn (its make_layers and forward) with every width divided by d, 10
    classes, Dropout off; built without VGG.__init__, whose full-width classifier (400 MB)
    would stay in the peak RSS."""
    from torchvision.models import vgg

    class SmallVGG(vgg.VGG):
        def __init__(self):
            nn.Module.__init__(self)
            cfg = [v if v == "M" else v // d for v in vgg.cfgs["A"]]
            c, h = cfg[-2], 4096 // d
            self.features = vgg.make_layers(cfg, batch_norm=True)
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.classifier = nn.Sequential(nn.Linear(c, h), nn.ReLU(True), nn.Dropout(0.0), nn.Linear(h, h),
                                            nn.ReLU(True), nn.Dropout(0.0), nn.Linear(h, 10))

    import torch.nn as nn
    return SmallVGG()


def zoo_model(name):
    """testdata/make_zoo.py's family name, as the zoo's files were made from it, with Dropout and
    StochasticDepth off (the eval-mode export the Go side trains has neither)."""
    import make_zoo
    from torchvision.ops import StochasticDepth
    ctor = dict(make_zoo.FAMILIES).get(name)
    if ctor is None:
        sys.exit(f"unknown zoo family {name}")
    model = ctor()
    make_zoo.randomise(model, 1)
    for mod in model.modules():
        if isinstance(mod, (torch.nn.Dropout, StochasticDepth)):
            mod.p = 0.0
    return model


if __name__ == "__main__":
    main()

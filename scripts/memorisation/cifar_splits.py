#!/usr/bin/python3
"""Data for the CIFAR-10 memorisation regime of issue #14 (docs/memorisation-cifar.md).

Under OUT (default /root/oodguard-runs/cifar-mem/data), next to the splits the training run
reads (cifar-val-5000, cifar-test-5000, tin-val-5000, tin-test-5000), writes:
  noise-rgb-5000/      5000 PNG images of uniform RGB noise 0..255, 32x32, numpy RandomState(14)
                       (the OOD test family "noise")
  train-subset-S/      the 5,000 CIFAR-10 training images seed S trains on, as class folders
                       (JPEG bytes copied from cifar10/train.tar), for the eval-mode training
                       accuracy; needs subset-S.txt from
                       `subset -data .../cifar10/train.tar#train -n 5000 -seed S`
MNIST test and Fashion-MNIST test (OOD test families) are read straight from the shared IDX
files; the model's preprocessing spec (cifar10 preset) makes them RGB 32x32 (gray copied into
the three channels, bilinear 28 -> 32).
"""
import os, sys, tarfile
import numpy as np
from PIL import Image

SRC = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/data"
OUT = sys.argv[2] if len(sys.argv) > 2 else "/root/oodguard-runs/cifar-mem/data"


def noise(name, n, seed):
    d = os.path.join(OUT, name)
    if os.path.exists(os.path.join(d, ".complete")):
        return
    os.makedirs(d, exist_ok=True)
    rng = np.random.RandomState(seed)
    a = rng.randint(0, 256, size=(n, 32, 32, 3)).astype(np.uint8)
    for i in range(n):
        Image.fromarray(a[i], "RGB").save(os.path.join(d, f"noise_{i:04d}.png"))
    open(os.path.join(d, ".complete"), "w").close()
    print("wrote", d, n)


def train_subset(s):
    idx_file = os.path.join(OUT, f"subset-{s}.txt")
    d = os.path.join(OUT, f"train-subset-{s}")
    if not os.path.exists(idx_file) or os.path.exists(os.path.join(d, ".complete")):
        return
    want = {}
    for line in open(idx_file):
        i, label, name = line.rstrip("\n").split("\t")
        entry = name.split(".tar:", 1)[1]  # train/<class>/NNNN.jpg
        want[entry] = int(label)
    n = 0
    with tarfile.open(os.path.join(SRC, "cifar10", "train.tar")) as t:
        for m in t:
            if m.isfile() and m.name in want:
                _, cls, base = m.name.split("/")
                os.makedirs(os.path.join(d, cls), exist_ok=True)
                with open(os.path.join(d, cls, base), "wb") as f:
                    f.write(t.extractfile(m).read())
                n += 1
    assert n == len(want), (n, len(want))
    open(os.path.join(d, ".complete"), "w").close()
    print("wrote", d, n, "class counts", np.bincount(list(want.values()), minlength=10).tolist())


os.makedirs(OUT, exist_ok=True)
noise("noise-rgb-5000", 5000, 14)
for s in [int(v) for v in os.environ.get("SEEDS", "1,2,3").replace(",", " ").split()]:
    train_subset(s)


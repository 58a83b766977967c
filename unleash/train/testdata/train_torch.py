#!/usr/bin/env python3
"""The recipe of `oodguard train` in PyTorch, for a side-by-side check of accuracy and speed.

Run with Debian's PyTorch:
  /usr/bin/python3 unleash/train/testdata/train_torch.py --data ../shared/data --epochs 3

testdata/make_models.py's SmallCNN on Fashion-MNIST: SGD lr 0.1, momentum 0.9, weight decay 5e-4,
batch 128 (last partial batch dropped), cosine learning rate set once per epoch, BatchNorm in
train mode, RandomCrop(28, padding=4) with black padding + RandomHorizontalFlip, the
FashionMNIST() preset's normalisation. Per epoch: train loss and accuracy, Fashion-MNIST test
accuracy, and energy-score (T=1) FPR95 (threshold at the ID recall closest to 95%) and AUROC
against MNIST test. Prints seconds per epoch.
"""
import argparse
import gzip
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "testdata"))
from make_models import SmallCNN  # noqa: E402

MEAN, STD = 0.2860, 0.3530


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def norm(u8):
    return (torch.from_numpy(u8.astype(np.float32) / 255) - MEAN) / STD


def fpr95_auroc(id_s, ood_s):
    order = np.sort(id_s)
    # The threshold whose ID recall is closest to 95%: accept score >= th.
    best, th = 2.0, None
    for t in np.unique(order):
        tpr = np.mean(id_s >= t)
        if abs(tpr - 0.95) < best:
            best, th = abs(tpr - 0.95), t
    fpr = float(np.mean(ood_s >= th))
    s = np.concatenate([id_s, ood_s])
    ranks = s.argsort().argsort() + 1.0
    n1, n0 = len(id_s), len(ood_s)
    auroc = (ranks[:n1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)
    return fpr, float(auroc)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    fm = os.path.join(args.data, "fashion-mnist")
    xtr = read_idx(os.path.join(fm, "train-images-idx3-ubyte.gz"))
    ytr = torch.from_numpy(read_idx(os.path.join(fm, "train-labels-idx1-ubyte.gz")).astype(np.int64))
    xte = norm(read_idx(os.path.join(fm, "t10k-images-idx3-ubyte.gz")))[:, None]
    yte = torch.from_numpy(read_idx(os.path.join(fm, "t10k-labels-idx1-ubyte.gz")).astype(np.int64))
    xood = norm(read_idx(os.path.join(args.data, "mnist", "t10k-images-idx3-ubyte.gz")))[:, None]
    padded = np.zeros((len(xtr), 36, 36), dtype=np.uint8)
    padded[:, 4:32, 4:32] = xtr
    model = SmallCNN()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    rng = np.random.default_rng(args.seed)
    batch = 128
    for ep in range(args.epochs):
        lr = 0.5 * (1 + math.cos(math.pi * ep / args.epochs)) * 0.1
        for g in opt.param_groups:
            g["lr"] = lr
        model.train()
        t0 = time.perf_counter()
        perm = rng.permutation(len(xtr))
        loss_sum, correct, seen = 0.0, 0, 0
        for s in range(len(xtr) // batch):
            idx = perm[s * batch:(s + 1) * batch]
            oy, ox = rng.integers(0, 9, size=(2, batch))
            crops = np.stack([padded[i, a:a + 28, b:b + 28] for i, a, b in zip(idx, oy, ox)])
            flip = rng.random(batch) < 0.5
            crops[flip] = crops[flip][:, :, ::-1]
            xb, yb = norm(crops)[:, None], ytr[idx]
            out = model(xb)
            loss = F.cross_entropy(out, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_sum += loss.item() * batch
            correct += (out.argmax(1) == yb).sum().item()
            seen += batch
        dt = time.perf_counter() - t0
        model.eval()
        with torch.no_grad():
            zid, zood = model(xte), model(xood)
        acc = (zid.argmax(1) == yte).float().mean().item()
        fpr, auroc = fpr95_auroc(torch.logsumexp(zid, 1).numpy(), torch.logsumexp(zood, 1).numpy())
        print(f"epoch {ep + 1}/{args.epochs} lr {lr:.4f} loss {loss_sum / seen:.4f} train {100 * correct / seen:.2f}% "
              f"val {100 * acc:.2f}% FPR95 {100 * fpr:.2f}% AUROC {100 * auroc:.2f}% ({dt:.1f}s train, {seen / dt:.0f} img/s)",
              flush=True)


if __name__ == "__main__":
    main()

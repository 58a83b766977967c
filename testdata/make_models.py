#!/usr/bin/env python3
"""Makes the small ONNX classifiers in testdata/models and the PyTorch references for them.

Run with Debian's PyTorch: /usr/bin/python3 testdata/make_models.py [--data ../shared/data]

Models (each exported with a dynamic batch axis "N", opset 13, eval mode):
  cnn28.onnx     small CNN with BatchNorm for 1x28x28 (Fashion-MNIST), input normalised outside
                 the model with device/preprocess.FashionMNIST()
  resnet32.onnx  small CIFAR-style ResNet (width 8, three stages of one basic block) for 3x32x32,
                 input normalised outside the model with device/preprocess.CIFAR10()
  mlp_flat.onnx  a classifier over flat [N,784] vectors: not an image classifier (rejected)
  two_heads.onnx a CNN with two outputs: not a single-logits classifier (rejected)

When the data folder is there, cnn28 is trained for 2 epochs on Fashion-MNIST and resnet32 for 2
epochs on CIFAR-10 so that they are real classifiers; otherwise they keep their seeded random
weights. Either way the references below are computed from the exported weights.

For each classifier NAME it writes:
  NAME.preprocess.json  the preprocessing spec (device/preprocess.Spec) of its inputs
  NAME.input.f32  the reference inputs, raw little-endian float32, shape [B,C,H,W]
  NAME.ref.json   input shape, the logits PyTorch computed, and the OOD scores computed from them
                  in float64: energy at T=1 and T=1000 (T*logsumexp(z/T)), MSP, MaxLogit.
"""
import argparse
import gzip
import io
import json
import os
import tarfile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "models")

FMNIST_MEAN, FMNIST_STD = 0.2860, 0.3530
CIFAR_MEAN = np.array([125.3, 123.0, 113.9], dtype=np.float32) / 255
CIFAR_STD = np.array([63.0, 62.1, 66.7], dtype=np.float32) / 255


class SmallCNN(nn.Module):
    """conv3x3(16)-BN-ReLU-maxpool, conv3x3(32)-BN-ReLU-maxpool, conv3x3/2(64)-BN-ReLU, avgpool, fc."""

    def __init__(self, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(32)
        self.conv3 = nn.Conv2d(32, 64, 3, stride=2, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(64)
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        x = F.relu(self.bn3(self.conv3(x)))
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.fc(x)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.short is None else self.short(x)))


class SmallResNet(nn.Module):
    """CIFAR-style ResNet: stem conv3x3(w), stages of one basic block at w, 2w/2, 4w/2, avgpool, fc."""

    def __init__(self, width=8, classes=10):
        super().__init__()
        w = width
        self.conv1 = nn.Conv2d(3, w, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        self.layer1 = BasicBlock(w, w, 1)
        self.layer2 = BasicBlock(w, 2 * w, 2)
        self.layer3 = BasicBlock(2 * w, 4 * w, 2)
        self.fc = nn.Linear(4 * w, classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.fc(x)


class FlatMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        return self.fc(x)


class TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.a = nn.Linear(4, 10)
        self.b = nn.Linear(4, 2)

    def forward(self, x):
        f = torch.flatten(F.adaptive_avg_pool2d(F.relu(self.conv(x)), 1), 1)
        return self.a(f), self.b(f)


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def read_cifar_tar(path, prefix):
    """Reads `prefix/<class>/*.jpg` from a tar into uint8 [N,32,32,3] and labels."""
    from PIL import Image

    images, labels, classes = [], [], {}
    with tarfile.open(path) as tf:
        members = sorted((m for m in tf.getmembers() if m.isfile() and m.name.startswith(prefix + "/")),
                         key=lambda m: m.name)
        names = sorted({m.name.split("/")[1] for m in members})
        classes = {n: i for i, n in enumerate(names)}
        for m in members:
            img = Image.open(io.BytesIO(tf.extractfile(m).read())).convert("RGB")
            images.append(np.asarray(img, dtype=np.uint8))
            labels.append(classes[m.name.split("/")[1]])
    return np.stack(images), np.array(labels, dtype=np.int64)


def train(model, x, y, epochs, batch=128, lr=0.05, augment_flip=False):
    """Plain SGD with momentum and cosine decay; x is the normalised float tensor."""
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    steps = epochs * ((len(x) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    g = torch.Generator().manual_seed(1)
    model.train()
    for ep in range(epochs):
        perm = torch.randperm(len(x), generator=g)
        total, correct, loss_sum = 0, 0, 0.0
        for i in range(0, len(x), batch):
            idx = perm[i:i + batch]
            xb, yb = x[idx], y[idx]
            if augment_flip:
                flip = torch.rand(len(xb), generator=g) < 0.5
                xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
            out = model(xb)
            loss = F.cross_entropy(out, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(xb)
            correct += (out.argmax(1) == yb).sum().item()
            total += len(xb)
        print(f"  epoch {ep + 1}: loss {loss_sum / total:.4f} train acc {correct / total:.4f}", flush=True)
    model.eval()


def accuracy(model, x, y):
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def export(model, shape, name, outputs=("logits",)):
    model.eval()
    path = os.path.join(OUT, name + ".onnx")
    dummy = torch.zeros(shape)
    axes = {"input": {0: "N"}}
    for o in outputs:
        axes[o] = {0: "N"}
    torch.onnx.export(model, dummy, path, input_names=["input"], output_names=list(outputs),
                      dynamic_axes=axes, opset_version=13, do_constant_folding=True)
    return path


def write_reference(model, name, inputs):
    """Writes NAME.input.f32 and NAME.ref.json from the model's outputs on inputs."""
    inputs = inputs.contiguous().float()
    with torch.no_grad():
        logits = model(inputs)
    z = logits.double()
    ref = {
        "model": name + ".onnx",
        "input_file": name + ".input.f32",
        "input_shape": list(inputs.shape),
        "logits": logits.tolist(),
        "energy_t1": torch.logsumexp(z, 1).tolist(),
        "energy_t1000": (1000 * torch.logsumexp(z / 1000, 1)).tolist(),
        "msp": torch.softmax(z, 1).max(1).values.tolist(),
        "maxlogit": z.max(1).values.tolist(),
        "made_by": "testdata/make_models.py with PyTorch " + torch.__version__,
    }
    inputs.numpy().astype("<f4").tofile(os.path.join(OUT, name + ".input.f32"))
    with open(os.path.join(OUT, name + ".ref.json"), "w") as f:
        json.dump(ref, f, indent=1)
        f.write("\n")


def write_specs():
    """Writes NAME.preprocess.json next to each classifier: the spec its inputs were made with
    (device/preprocess.FashionMNIST() and CIFAR10())."""
    f32 = lambda v: [float(np.float32(x)) for x in v]
    specs = {
        "cnn28": dict(width=28, height=28, channels=1, resize="stretch", mean=f32([FMNIST_MEAN]),
                      std=f32([FMNIST_STD]), layout="NCHW"),
        # Computed in float64 and rounded once, as the Go preset's constants are.
        "resnet32": dict(width=32, height=32, channels=3, resize="stretch", mean=f32(np.array([125.3, 123.0, 113.9]) / 255),
                         std=f32(np.array([63.0, 62.1, 66.7]) / 255), layout="NCHW"),
    }
    for name, spec in specs.items():
        with open(os.path.join(OUT, name + ".preprocess.json"), "w") as f:
            json.dump(spec, f, indent=2)
            f.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.path.join(HERE, "..", "..", "shared", "data"))
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--specs-only", action="store_true", help="only write the NAME.preprocess.json files")
    args = ap.parse_args()
    torch.set_num_threads(2)
    os.makedirs(OUT, exist_ok=True)
    write_specs()
    if args.specs_only:
        return

    # Small CNN on Fashion-MNIST.
    torch.manual_seed(0)
    cnn = SmallCNN()
    fm = os.path.join(args.data, "fashion-mnist")
    gen = torch.Generator().manual_seed(2)
    if os.path.isdir(fm):
        norm = lambda a: (torch.from_numpy(a.astype(np.float32) / 255)[:, None] - FMNIST_MEAN) / FMNIST_STD
        xtr = norm(read_idx(os.path.join(fm, "train-images-idx3-ubyte.gz")))
        ytr = torch.from_numpy(read_idx(os.path.join(fm, "train-labels-idx1-ubyte.gz")).astype(np.int64))
        xte = norm(read_idx(os.path.join(fm, "t10k-images-idx3-ubyte.gz")))
        yte = torch.from_numpy(read_idx(os.path.join(fm, "t10k-labels-idx1-ubyte.gz")).astype(np.int64))
        print("training cnn28 on Fashion-MNIST", flush=True)
        train(cnn, xtr, ytr, args.epochs)
        print(f"  cnn28 Fashion-MNIST test accuracy {accuracy(cnn, xte, yte):.4f}", flush=True)
        mn = norm(read_idx(os.path.join(args.data, "mnist", "t10k-images-idx3-ubyte.gz")))
        inputs = torch.cat([xte[:6], mn[:2]])  # six ID images, two OOD digits
    else:
        print("no data folder: cnn28 keeps random weights", flush=True)
        inputs = torch.randn(8, 1, 28, 28, generator=gen)
    inputs = torch.cat([inputs, 40 * inputs[:1]])  # a large input for large logits
    export(cnn, (1, 1, 28, 28), "cnn28")
    write_reference(cnn, "cnn28", inputs)

    # Small ResNet on CIFAR-10.
    torch.manual_seed(0)
    res = SmallResNet(width=8)
    tar = os.path.join(args.data, "cifar10", "train.tar")
    if os.path.isfile(tar):
        norm = lambda a: (torch.from_numpy(a.astype(np.float32) / 255) - torch.from_numpy(CIFAR_MEAN)) \
            .div(torch.from_numpy(CIFAR_STD)).permute(0, 3, 1, 2).contiguous()
        print("reading CIFAR-10", flush=True)
        xi, yi = read_cifar_tar(tar, "train")
        xtr, ytr = norm(xi), torch.from_numpy(yi)
        xi, yi = read_cifar_tar(os.path.join(args.data, "cifar10", "test.tar"), "test")
        xte, yte = norm(xi), torch.from_numpy(yi)
        print("training resnet32 on CIFAR-10", flush=True)
        train(res, xtr, ytr, args.epochs, augment_flip=True)
        print(f"  resnet32 CIFAR-10 test accuracy {accuracy(res, xte, yte):.4f}", flush=True)
        inputs = xte[torch.randperm(len(xte), generator=gen)[:6]]
    else:
        print("no data folder: resnet32 keeps random weights", flush=True)
        inputs = torch.randn(6, 3, 32, 32, generator=gen)
    export(res, (1, 3, 32, 32), "resnet32")
    write_reference(res, "resnet32", inputs)

    # Models that are not image classifiers, for the rejection tests.
    torch.manual_seed(0)
    export(FlatMLP(), (1, 784), "mlp_flat")
    export(TwoHeads(), (1, 1, 28, 28), "two_heads", outputs=("logits", "aux"))
    print("wrote", sorted(os.listdir(OUT)))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Makes testdata/frames: sample camera frames for `make demo` and the daemon's tests.

Run with Debian's Python 3 and Pillow: /usr/bin/python3 testdata/make_frames.py [--data ../shared/data]

  id-fashion-NNN.png        Fashion-MNIST test images (in distribution for cnn28), 28x28 gray PNG
  ood-mnist-NNN.png         MNIST test digits (out of distribution), 28x28 gray PNG
  ood-tinyimagenet-NNN.jpg  Tiny ImageNet validation photos (out of distribution), 64x64 colour
                            JPEG as stored: the daemon converts them to gray and resizes them
The frames are taken at fixed, spread-out indices so that the set is the same on every run.
"""
import argparse
import gzip
import io
import os
import tarfile

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "frames")


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.path.join(HERE, "..", "..", "shared", "data"))
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    fm = read_idx(os.path.join(args.data, "fashion-mnist", "t10k-images-idx3-ubyte.gz"))
    for i, idx in enumerate(range(0, 10000, 1000)):
        Image.fromarray(fm[idx]).save(os.path.join(OUT, f"id-fashion-{i:03d}.png"), optimize=True)
    mn = read_idx(os.path.join(args.data, "mnist", "t10k-images-idx3-ubyte.gz"))
    for i, idx in enumerate(range(0, 10000, 2000)):
        Image.fromarray(mn[idx]).save(os.path.join(OUT, f"ood-mnist-{i:03d}.png"), optimize=True)
    with tarfile.open(os.path.join(args.data, "tiny-imagenet", "val.tar")) as tf:
        names = sorted(m.name for m in tf.getmembers() if m.name.startswith("val/images/") and m.isfile())
        for i, name in enumerate(names[::2000][:5]):
            data = tf.extractfile(name).read()
            with open(os.path.join(OUT, f"ood-tinyimagenet-{i:03d}.jpg"), "wb") as f:
                f.write(data)
    print("wrote", len(os.listdir(OUT)), "frames to", OUT)


if __name__ == "__main__":
    main()

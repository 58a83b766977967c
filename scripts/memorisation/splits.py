#!/usr/bin/python3
"""Data splits for the memorisation experiment of issue #14 (docs/memorisation.md).

Writes, under OUT (default /root/oodguard-runs/fmnist-mem/data), from the shared data folder:
  fmnist-train-55000/  Fashion-MNIST train images 0..54999 (IDX, with labels); `oodguard train
                       -limit 10000 -seed S` draws the 10k training subset from it
  fmnist-val-5000/     Fashion-MNIST train images 55000..59999 (ID validation, never trained on)
  mnist-val-5000/      MNIST test images 0..4999 (OOD validation family)
  mnist-test-5000/     MNIST test images 5000..9999 (same family as validation; reported apart)
  tin-test-5000/       Tiny ImageNet val_5000..val_9999 (JPEG, as in the archive; the model's
                       preprocessing spec makes them gray 28x28)
  noise-5000/          5000 images of uniform noise 0..255, 28x28, numpy seed 14 (IDX)
CIFAR-10 test is read straight from cifar10/test.tar#test by oodguard eval.
Same index ranges as internal/reproduce/data.go.
"""
import gzip, os, struct, sys, tarfile
import numpy as np

SRC = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/data"
OUT = sys.argv[2] if len(sys.argv) > 2 else "/root/oodguard-runs/fmnist-mem/data"


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    nd = data[3]
    dims = struct.unpack(">" + "I" * nd, data[4:4 + 4 * nd])
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)
    return arr


def write_idx(path, arr):
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    hdr = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(">" + "I" * arr.ndim, *arr.shape)
    with gzip.open(path + ".tmp", "wb", compresslevel=6) as f:
        f.write(hdr)
        f.write(arr.tobytes())
    os.replace(path + ".tmp", path)


def idx_split(ds, kind, name, lo, hi):
    d = os.path.join(OUT, name)
    if os.path.exists(os.path.join(d, ".complete")):
        return
    os.makedirs(d, exist_ok=True)
    for part in ("images-idx3", "labels-idx1"):
        fn = f"{kind}-{part}-ubyte.gz"
        a = read_idx(os.path.join(SRC, ds, fn))
        write_idx(os.path.join(d, fn), a[lo:hi])
    open(os.path.join(d, ".complete"), "w").close()
    print("wrote", d, hi - lo)


def tin_split(name, lo, hi):
    d = os.path.join(OUT, name)
    if os.path.exists(os.path.join(d, ".complete")):
        return
    os.makedirs(d, exist_ok=True)
    n = 0
    with tarfile.open(os.path.join(SRC, "tiny-imagenet", "val.tar")) as t:
        for m in t:
            if not m.isfile():
                continue
            dn, base = os.path.split(m.name)
            if dn.strip("/") != "val/images" or not base.startswith("val_"):
                continue
            i = int(os.path.splitext(base)[0][4:])
            if lo <= i < hi:
                with open(os.path.join(d, base), "wb") as f:
                    f.write(t.extractfile(m).read())
                n += 1
    assert n == hi - lo, n
    open(os.path.join(d, ".complete"), "w").close()
    print("wrote", d, n)


def noise(name, n, seed):
    d = os.path.join(OUT, name)
    if os.path.exists(os.path.join(d, ".complete")):
        return
    os.makedirs(d, exist_ok=True)
    rng = np.random.RandomState(seed)
    write_idx(os.path.join(d, "noise-images-idx3-ubyte.gz"), rng.randint(0, 256, size=(n, 28, 28)))
    write_idx(os.path.join(d, "noise-labels-idx1-ubyte.gz"), np.zeros(n, dtype=np.uint8))
    open(os.path.join(d, ".complete"), "w").close()
    print("wrote", d, n)


os.makedirs(OUT, exist_ok=True)
idx_split("fashion-mnist", "train", "fmnist-train-55000", 0, 55000)
idx_split("fashion-mnist", "train", "fmnist-val-5000", 55000, 60000)
idx_split("mnist", "t10k", "mnist-val-5000", 0, 5000)
idx_split("mnist", "t10k", "mnist-test-5000", 5000, 10000)
tin_split("tin-test-5000", 5000, 10000)
noise("noise-5000", 5000, 14)

# The 10k training subsets themselves (indices from scripts/memorisation/subset, the same draw
# as `oodguard train -limit 10000 -seed S`), for eval-mode training accuracy.
for s in [int(v) for v in os.environ.get("SEEDS", "1,2,3").replace(",", " ").split()]:
    idx_file = os.path.join(OUT, f"subset-{s}.txt")

    d = os.path.join(OUT, f"train-subset-{s}")
    if not os.path.exists(idx_file) or os.path.exists(os.path.join(d, ".complete")):
        continue
    idx = np.loadtxt(idx_file, dtype=np.int64)
    os.makedirs(d, exist_ok=True)
    for part in ("images-idx3", "labels-idx1"):
        a = read_idx(os.path.join(OUT, "fmnist-train-55000", f"train-{part}-ubyte.gz"))
        write_idx(os.path.join(d, f"train-{part}-ubyte.gz"), a[idx])
    labels = read_idx(os.path.join(d, "train-labels-idx1-ubyte.gz"))
    print("wrote", d, len(idx), "min/max index", idx.min(), idx.max(), "sorted", bool((np.diff(idx) > 0).all()),
          "class counts", np.bincount(labels, minlength=10).tolist())
    open(os.path.join(d, ".complete"), "w").close()

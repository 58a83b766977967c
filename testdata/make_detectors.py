#!/usr/bin/env python3
"""Makes the PyTorch references of the post-hoc OOD detectors (package detect) in testdata/detect.

Run with Debian's PyTorch: /usr/bin/python3 testdata/make_detectors.py [--data ../shared/data]

For each test classifier NAME in testdata/models (cnn28, resnet32) the penultimate features (the
input of the final Gemm) are computed in PyTorch by a small interpreter of the model's ONNX graph
(Conv, Relu, MaxPool, GlobalAveragePool, Flatten, Add, Gemm), independent of ONNX Runtime. It
writes:

  NAME.fit.f32     the features of FIT seeded ID training images, raw little-endian float32
                   [FIT, D]: the data every detector is fitted on
  NAME.fit.labels  their class labels, one byte each
  NAME.eval.f32    the evaluation inputs, float32 [B, C, H, W] (ID test images, OOD images and
                   noise), normalised as NAME.preprocess.json says
  NAME.ref.json    the fitted statistics and, on the eval inputs' features and on the first
                   SCORED fit features, every method's scores (and DICE + ReAct's), in float64

and, for the scores of the logits alone (package score), one file:

  logits.ref.json  sets of float32 logits with energy (T = 1, 1000), MSP, MaxLogit and GEN over a
                   grid of gamma and M, computed in PyTorch float64: the eval logits of cnn28 and
                   resnet32 (above), the eval logits of every model in testdata/zoo (its
                   NAME.ref.json "logits_eval"), and a seeded synthetic 1000-class head (M < K)

It reads ../shared/data (or --data), the models in testdata/models and the zoo's references in
testdata/zoo: rerun it after testdata/make_models.py (make fixtures runs both) and after
testdata/make_zoo.py. A rerun reproduces every file byte for byte.

Semantics follow OpenOOD v1.5's post-processors (openood/postprocessors/*.py and
openood/networks/ash_net.py), with these stated differences:
  - statistics are computed in float64 from the float32 features (OpenOOD mixes float32 and
    float64);
  - ASH's top-k takes, among equal values, the lower index first (ONNX TopK's rule; torch.topk
    leaves ties unspecified), through a stable descending sort;
  - ViM's eigenvectors come from numpy.linalg.eigh (the covariance is symmetric; OpenOOD calls
    numpy.linalg.eig);
  - the precision matrix is pinvh with scipy's default cutoff (what sklearn's EmpiricalCovariance
    uses), computed here by numpy.linalg.eigh.
Every score is "higher = more in-distribution". Shaping methods (ReAct, ASH, DICE) score by the
energy (logsumexp at T = 1) of the shaped logits, as OpenOOD does.

GEN follows OpenOOD's GENPostprocessor (openood/postprocessors/gen_postprocessor.py, the GEN
paper's code likewise): softmax, sort ascending, keep the last M columns (Python slicing, so an M
of K or more keeps all K), minus the sum of p^gamma (1-p)^gamma. It is computed here in float64
from the float32 logits; OpenOOD's float32 softmax differs from it by rounding alone (the script
prints the largest difference on each set).
"""
import argparse
import gzip
import io
import json
import os
import tarfile

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.join(HERE, "models")
OUT = os.path.join(HERE, "detect")

FIT = 600      # fit images per model
SCORED = 64    # fit features also scored
REACT_P = [85, 90, 95, 99]
ASH_P = [65, 90]
DICE_P = [70, 90]
KNN_K = [1, 5, 50]


def run_graph(model, x):
    """Runs the ONNX graph in PyTorch float32 and returns (logits, features, W, b)."""
    inits = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in model.graph.initializer}
    env = dict(inits)
    env[model.graph.input[0].name] = x
    feat = None
    for n in model.graph.node:
        a = {at.name: onnx.helper.get_attribute_value(at) for at in n.attribute}
        ins = [env[i] if i else None for i in n.input]
        op = n.op_type
        if op == "Conv":
            p = a.get("pads", [0, 0, 0, 0])
            assert p[0] == p[2] and p[1] == p[3]
            y = F.conv2d(ins[0], ins[1], ins[2] if len(ins) > 2 else None, stride=a.get("strides", [1, 1]),
                         padding=(p[0], p[1]), dilation=a.get("dilations", [1, 1]), groups=a.get("group", 1))
        elif op == "Relu":
            y = F.relu(ins[0])
        elif op == "MaxPool":
            p = a.get("pads", [0, 0, 0, 0])
            y = F.max_pool2d(ins[0], a["kernel_shape"], a.get("strides"), padding=(p[0], p[1]))
        elif op == "GlobalAveragePool":
            y = ins[0].mean(dim=(2, 3), keepdim=True)
        elif op == "Flatten":
            y = torch.flatten(ins[0], a.get("axis", 1))
        elif op == "Add":
            y = ins[0] + ins[1]
        elif op == "Gemm":
            assert a.get("transB", 0) == 1 and a.get("transA", 0) == 0
            feat, W, b = ins[0], ins[1], ins[2]
            y = a.get("alpha", 1.0) * ins[0] @ ins[1].T + a.get("beta", 1.0) * ins[2]
        else:
            raise SystemExit(f"op {op} not interpreted")
        env[n.output[0]] = y
    logits = env[model.graph.output[0].name]
    return logits, feat, W, b


def pct(values, p):
    return float(np.percentile(values, p))  # numpy's default: linear interpolation


def lse(z):
    m = z.max(1, keepdims=True)
    return (m + np.log(np.exp(z - m).sum(1, keepdims=True)))[:, 0]


def ash(x, p, variant):
    """OpenOOD's ash_p / ash_b / ash_s on [B, D] features, lower index first among ties."""
    x = torch.from_numpy(x)
    n = x.shape[1]
    k = n - int(np.round(n * p / 100.0))
    s1 = x.sum(1)
    v, i = torch.sort(x, dim=1, descending=True, stable=True)
    v, i = v[:, :k], i[:, :k]
    out = torch.zeros_like(x)
    if variant == "b":
        out.scatter_(1, i, (s1 / k)[:, None].expand(v.shape).contiguous())
    else:
        out.scatter_(1, i, v)
    if variant == "s":
        s2 = out.sum(1)
        out = out * torch.exp(s1 / s2)[:, None]
    return out.numpy()


def pinvh(a):
    w, v = np.linalg.eigh(a)
    cutoff = np.abs(w).max() * max(a.shape) * np.finfo(np.float64).eps
    inv = np.where(np.abs(w) > cutoff, 1 / np.where(w == 0, 1, w), 0)
    return (v * inv) @ v.T


def references(name, fit_x, fit_y, eval_x):
    model = onnx.load(os.path.join(MODELS, name + ".onnx"))
    with torch.no_grad():
        fit_f = torch.cat([run_graph(model, fit_x[i:i + 100])[1] for i in range(0, len(fit_x), 100)]).numpy()
        eval_logits, eval_f, W, b = run_graph(model, eval_x)
        eval_f = eval_f.numpy()
    W, b = W.double().numpy(), b.double().numpy()
    X = fit_f.astype(np.float64)  # the float32 features, exactly
    N, D = X.shape
    K = W.shape[0]
    sets = {"eval": eval_f.astype(np.float64), "fit": X[:SCORED]}
    ref = {
        "model": name + ".onnx", "fit_count": N, "dim": D, "classes": K, "scored_fit": SCORED,
        "eval_input_shape": list(eval_x.shape), "eval_features": eval_f.tolist(),
        "eval_logits": eval_logits.tolist(),
        "made_by": "testdata/make_detectors.py with PyTorch " + torch.__version__,
    }

    def scores(fn):
        return {k: fn(v).tolist() for k, v in sets.items()}

    # ReAct: clip at the p-th percentile of every ID activation, then energy.
    ref["react"] = []
    for p in REACT_P:
        c = pct(X.ravel(), p)
        ref["react"].append({"p": p, "clip": c, "scores": scores(lambda f: lse(np.minimum(f, c) @ W.T + b))})
    # ASH-P, -B, -S at percentile p, then energy.
    ref["ash"] = []
    for v in "pbs":
        for p in ASH_P:
            ref["ash"].append({"variant": v, "p": p, "scores": scores(lambda f: lse(ash(f, p, v) @ W.T + b))})
    # DICE: keep the weights whose contribution w * mean feature is above its p-th percentile.
    mean = X.mean(0)
    ref["mean_feature"] = mean.tolist()
    ref["dice"] = []
    for p in DICE_P:
        contrib = mean[None, :] * W
        Wm = W * (contrib > pct(contrib, p))
        ref["dice"].append({"p": p, "kept": int((contrib > pct(contrib, p)).sum()),
                            "scores": scores(lambda f: lse(f @ Wm.T + b))})
    # DICE + ReAct (the DICE paper's combination): clip the features, then the masked weight.
    c = pct(X.ravel(), 90)
    contrib = mean[None, :] * W
    Wm = W * (contrib > pct(contrib, 90))
    ref["react_dice"] = {"react_p": 90, "dice_p": 90, "scores": scores(lambda f: lse(np.minimum(f, c) @ Wm.T + b))}
    # Mahalanobis (MDS): class means, shared covariance of the class-centred features, pinvh.
    means = np.stack([X[fit_y == c].mean(0) for c in range(K)])
    centred = X - means[fit_y]
    cov = np.cov(centred.T, bias=True)  # EmpiricalCovariance(assume_centered=False)
    prec = pinvh(cov)

    def mds(f):
        d = f[:, None, :] - means[None]
        return -np.einsum("nkd,de,nke->nk", d, prec, d).min(1)

    ref["mds"] = {"class_means": means.tolist(), "class_counts": np.bincount(fit_y, minlength=K).tolist(),
                  "scores": scores(mds)}
    # ViM: origin u = -pinv(W) b, covariance of X - u (assume_centered), residual space of the
    # D - dim smallest eigenvectors, alpha = mean max logit / mean residual norm.
    u = -np.linalg.pinv(W) @ b
    Xc = X - u
    evals, evecs = np.linalg.eigh(Xc.T @ Xc / N)
    order = np.argsort(-evals, kind="stable")
    ref["vim"] = {"u": u.tolist(), "eigenvalues": evals[order].tolist(), "max_logit_mean": float((X @ W.T + b).max(1).mean()), "dims": []}
    for dim in sorted({D // 2, D // 4}):
        NS = evecs[:, order[dim:]]
        alpha = (X @ W.T + b).max(1).mean() / np.linalg.norm(Xc @ NS, axis=1).mean()
        ref["vim"]["dims"].append({"dim": dim, "alpha": float(alpha), "scores": scores(
            lambda f: lse(f @ W.T + b) - alpha * np.linalg.norm((f - u) @ NS, axis=1))})
    # KNN: the whole fit set as the bank, L2-normalised as OpenOOD does (x / |x| + 1e-10); the
    # score is minus the k-th smallest squared distance (faiss IndexFlatL2 returns squares).
    norm = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True) + 1e-10
    bank = norm(X)
    ref["knn"] = []
    for k in KNN_K:
        def knn(f):
            d = ((norm(f)[:, None, :] - bank[None]) ** 2).sum(2)
            return -np.sort(d, axis=1)[:, k - 1]
        ref["knn"].append({"k": k, "scores": scores(knn)})

    os.makedirs(OUT, exist_ok=True)
    fit_f.astype("<f4").tofile(os.path.join(OUT, name + ".fit.f32"))
    fit_y.astype(np.uint8).tofile(os.path.join(OUT, name + ".fit.labels"))
    eval_x.numpy().astype("<f4").tofile(os.path.join(OUT, name + ".eval.f32"))
    with open(os.path.join(OUT, name + ".ref.json"), "w") as f:
        json.dump(ref, f, indent=None, separators=(",", ":"))
        f.write("\n")
    print(f"{name}: D={D} K={K} fit={N} eval={len(eval_x)}")
    return eval_logits


GEN_GAMMA = [0.01, 0.1, 0.5, 1, 2]


def gen(z, gamma, m):
    """GEN as OpenOOD's generalized_entropy on [B, K] logits (in their dtype): -sum over the M
    largest softmax probabilities of p^gamma (1-p)^gamma; an M of K or more takes all K."""
    p = torch.sort(torch.softmax(z, dim=1), dim=1)[0][:, -m:]
    return -torch.sum(p ** gamma * (1 - p) ** gamma, dim=1)


def logit_scores(name, source, z32, ms):
    """The logit scores of the float32 logits z32 [B, K], in float64."""
    z = z32.double()
    s = {"name": name, "source": source, "classes": z.shape[1], "logits": z32.tolist(),
         "energy_t1": torch.logsumexp(z, 1).tolist(),
         "energy_t1000": (1000 * torch.logsumexp(z / 1000, 1)).tolist(),
         "msp": torch.softmax(z, 1).max(1).values.tolist(),
         "maxlogit": z.max(1).values.tolist(), "gen": []}
    f32 = 0.0
    for g in GEN_GAMMA:
        for m in ms:
            v = gen(z, g, m)
            f32 = max(f32, float((gen(z32, g, m).double() - v).abs().max()))
            s["gen"].append({"gamma": g, "m": m, "scores": v.tolist()})
    print(f"{name}: K={z.shape[1]} rows={z.shape[0]} GEN float32 (OpenOOD's dtype) - float64: max {f32:.3g}")
    return s


def wide_head(rng, k=1000):
    """Seeded float32 logits of a K-class head: Gaussian at three scales, a row of ties, a row with
    one class 30 above the rest (there 1 - p of the top class is about 1e-10: 0 in float32, a few
    significant digits in float64, so OpenOOD's float32 GEN loses that class's term)."""
    rows = [rng.normal(0, sd, k) for sd in (0.5, 2, 6)]
    rows.append(np.repeat(rng.normal(0, 3, k // 10), 10))
    big = rng.normal(0, 1, k)
    big[int(rng.integers(k))] += 30
    rows.append(big)
    return torch.from_numpy(np.stack(rows).astype(np.float32))


def write_logit_refs(evals):
    sets = [logit_scores(n + ".eval", "testdata/detect/" + n + ".ref.json eval_logits", z, [1, 5, 10, 100])
            for n, z in evals]
    zoo = os.path.join(HERE, "zoo")
    for f in sorted(os.listdir(zoo)):
        if f.endswith(".ref.json"):
            with open(os.path.join(zoo, f)) as fh:
                r = json.load(fh)
            z = torch.tensor(r["logits_eval"], dtype=torch.float32).reshape(r["input_shape"][0], -1)
            sets.append(logit_scores("zoo." + f[:-len(".ref.json")], "testdata/zoo/" + f + " logits_eval", z, [1, 5, 10, 100]))
    sets.append(logit_scores("wide1000", "seeded synthetic logits (make_detectors.py wide_head)",
                             wide_head(np.random.default_rng(1000)), [1, 10, 100, 999, 1000, 5000]))
    ref = {"made_by": "testdata/make_detectors.py with PyTorch " + torch.__version__, "sets": sets}
    with open(os.path.join(OUT, "logits.ref.json"), "w") as f:
        json.dump(ref, f, indent=None, separators=(",", ":"))
        f.write("\n")


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def read_tar_images(path, names, size=None):
    from PIL import Image
    out = []
    with tarfile.open(path) as tf:
        for n in names:
            img = Image.open(io.BytesIO(tf.extractfile(n).read())).convert("RGB")
            if size and img.size != (size, size):
                img = img.resize((size, size), Image.BILINEAR)
            out.append(np.asarray(img, dtype=np.uint8))
    return np.stack(out)


def spec_norm(name):
    with open(os.path.join(MODELS, name + ".preprocess.json")) as f:
        s = json.load(f)
    mean = np.array(s["mean"], dtype=np.float32)[:, None, None]
    std = np.array(s["std"], dtype=np.float32)[:, None, None]
    return lambda a: torch.from_numpy(((a.astype(np.float32) / 255) - mean) / std)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.path.join(HERE, "..", "..", "shared", "data"))
    ap.add_argument("--out", default=None, help="output folder (default testdata/detect)")
    args = ap.parse_args()
    global OUT
    OUT = args.out or OUT
    torch.set_num_threads(1)
    rng = np.random.default_rng(17)

    # cnn28: Fashion-MNIST train (fit), 10 Fashion-MNIST test + 10 MNIST test + 4 noise (eval).
    fm = os.path.join(args.data, "fashion-mnist")
    norm = spec_norm("cnn28")
    xi = read_idx(os.path.join(fm, "train-images-idx3-ubyte.gz"))
    yi = read_idx(os.path.join(fm, "train-labels-idx1-ubyte.gz"))
    idx = np.sort(rng.choice(len(xi), FIT, replace=False))
    fit_x, fit_y = norm(xi[idx][:, None]), yi[idx].astype(np.int64)
    te = read_idx(os.path.join(fm, "t10k-images-idx3-ubyte.gz"))[:10]
    mn = read_idx(os.path.join(args.data, "mnist", "t10k-images-idx3-ubyte.gz"))[:10]
    noise = rng.integers(0, 256, size=(4, 28, 28), dtype=np.uint8)
    eval_x = norm(np.concatenate([te, mn, noise])[:, None])
    evals = [("cnn28", references("cnn28", fit_x, fit_y, eval_x))]

    # resnet32: CIFAR-10 train (fit), 8 CIFAR-10 test + 6 Tiny ImageNet (resized) + 2 noise (eval).
    norm = spec_norm("resnet32")
    chw = lambda a: a.transpose(0, 3, 1, 2)
    with tarfile.open(os.path.join(args.data, "cifar10", "train.tar")) as tf:
        names = sorted(m.name for m in tf.getmembers() if m.isfile() and m.name.endswith(".jpg"))
    classes = sorted({n.split("/")[1] for n in names})
    pick = [names[i] for i in np.sort(rng.choice(len(names), FIT, replace=False))]
    fit_x = norm(chw(read_tar_images(os.path.join(args.data, "cifar10", "train.tar"), pick)))
    fit_y = np.array([classes.index(n.split("/")[1]) for n in pick], dtype=np.int64)
    with tarfile.open(os.path.join(args.data, "cifar10", "test.tar")) as tf:
        tnames = sorted(m.name for m in tf.getmembers() if m.isfile() and m.name.endswith(".jpg"))
    te = read_tar_images(os.path.join(args.data, "cifar10", "test.tar"),
                         [tnames[i] for i in np.sort(rng.choice(len(tnames), 8, replace=False))])
    tin = read_tar_images(os.path.join(args.data, "tiny-imagenet", "val.tar"),
                          [f"val/images/val_{i}.JPEG" for i in range(6)], size=32)
    noise = rng.integers(0, 256, size=(2, 32, 32, 3), dtype=np.uint8)
    eval_x = norm(chw(np.concatenate([te, tin, noise])))
    evals.append(("resnet32", references("resnet32", fit_x, fit_y, eval_x)))
    write_logit_refs(evals)


if __name__ == "__main__":
    main()

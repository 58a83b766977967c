#!/usr/bin/python3
"""PyTorch peer of `oodguard unleash` (issue #14): UM and UMAP as the official Unleashing Mask code
does them (docs: ../shared/docs/unleashing-mask.md), run from the SAME starting weights as an
oodguard run: the initializers of the oodguard ONNX model, loaded into a PyTorch module that
executes that ONNX graph node by node.

Run with Debian's PyTorch 1.13 (no other dependencies than numpy and onnx):

  /usr/bin/python3 scripts/peer/um_peer.py -model START.onnx -data TRAIN-images-idx3-ubyte.gz \
      -mode um -constraint C -epochs 10 -lr 0.1 -batch 128 -seed S -out OUT.onnx \
      [-id-val VAL-images-idx3-ubyte.gz] [-check-ort /path/to/oodguard]

What it does, and which choice of the official code each step follows (method doc sections):

  model    every node of the ONNX graph becomes the PyTorch op of the same semantics (Conv,
           BatchNormalization, Relu, MaxPool, AveragePool, GlobalAveragePool, Flatten, Gemm,
           MatMul, Add, Sub, Mul, Div, Concat, Reshape); an op outside that list is an error.
           Weights, biases and BatchNorm affine parameters are nn.Parameters, running statistics
           buffers. BatchNorm uses the node's epsilon and momentum (ONNX momentum m is PyTorch's
           1 - m), batch statistics in train mode, the running ones in eval mode; PyTorch updates
           the running variance with the unbiased batch variance.
  data     IDX images (the file oodguard read), x/255, then (x - mean)/std of the model's
           preprocess.json (MODEL.preprocess.json, or -preprocess); or, for any other format
           (JPEG folders, tar archives), the tensors oodguard itself made of it, written by
           scripts/peer/dumpdata (PREFIX.f32 + PREFIX.json). Optional augmentation as
           oodguard's: random crop with black padding (-pad) and horizontal flip (-flip).
           Every epoch a fresh permutation (torch generator seeded by -seed and the epoch, or
           oodguard's own with -order, from scripts/peer/order);
           the last len % batch images of it are dropped, as oodguard does.
  UM       (section 4.2) dense fine-tune of every parameter but the running statistics, loss
           |CE - c| + c on the batch-mean cross-entropy, SGD momentum 0.9, coupled weight decay
           (-wd, oodguard's default 1e-4), no Nesterov, lr 0.5*(1+cos(pi*e/E))*lr set per epoch,
           BatchNorm in train mode.
  UMAP     (sections 2.2, 4.3) one score tensor per Conv/Gemm/MatMul weight, the per-layer mask
           GetSubnet(|s|, keep) of the official code (the int((1-keep)*n) smallest |s| zeroed),
           the straight-through estimator, weights, biases and BatchNorm affine parameters
           frozen, scores trained with the same loss, SGD and weight decay; BatchNorm running
           statistics still update. Score init: -score-init kaiming (the official random
           kaiming_uniform_(a=sqrt(5)) = U(-1/sqrt(fan_in), 1/sqrt(fan_in))) or magnitude (|w|).
  output   a copy of the input ONNX file with the trained initializers replaced (UM: parameters
           and running statistics; UMAP: w*mask and running statistics), OUT.preprocess.json,
           and OUT.peer.json with the recipe and per-epoch numbers (train-mode loss, CE and
           accuracy; eval-mode accuracy and CE on -id-val). `oodguard eval` then scores it with
           the same command as the oodguard model.
  check    with -check-ort BIN: the module's eval-mode logits on 64 images (of -id-val, else of
           the training data) must equal ONNX Runtime's (BIN score -json) within 1e-4, for the
           start model and for the written model; otherwise the script exits 1. ONNX Runtime
           gives every logit: for class k the check scores a copy of the model whose final
           Gemm bias has +100 on k, so that maxlogit - 100 is logit k.

It also prints the dense loss (eval-mode mean CE of the start model on the training data), the
number oodguard's grid multiplies, as a check that both sides see the same data and weights.
"""
import argparse
import gzip
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

# OpenMP threads spin while they wait; on a machine shared by more processes than cores that
# made a 2-thread step 5x slower (2.1 s against 0.41 s for a cnn28 batch of 128). Set before
# torch starts OpenMP.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper

THREADS = 2


def fail(msg):
    print("um_peer: " + msg, file=sys.stderr)
    sys.exit(1)


# ---------------------------------------------------------------------------------------------
# the ONNX graph as a PyTorch module

def attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


class GetSubnet(torch.autograd.Function):
    """utils/conv_type.py:GetSubnet of the official code: keep the top k fraction of |scores|."""

    @staticmethod
    def forward(ctx, scores, k):
        out = scores.clone()
        _, idx = scores.flatten().sort()
        j = int((1 - k) * scores.numel())
        flat_out = out.flatten()
        flat_out[idx[:j]] = 0
        flat_out[idx[j:]] = 1
        return out

    @staticmethod
    def backward(ctx, g):
        return g, None


class OnnxNet(torch.nn.Module):
    """Executes an ONNX classifier graph with PyTorch ops; initializers become parameters."""

    def __init__(self, model):
        super().__init__()
        g = model.graph
        self.nodes = list(g.node)
        self.input_name = g.input[0].name
        self.output_name = g.output[0].name
        inits = {t.name: numpy_helper.to_array(t).copy() for t in g.initializer}
        self.roles = {}  # initializer name -> weight, bias, bn-scale, bn-bias, bn-mean, bn-var
        self.fan_in = {}
        for n in self.nodes:
            a = attrs(n)
            ins = list(n.input)
            if n.op_type == "Conv":
                self._role(ins, 1, "weight", inits)
                self._role(ins, 2, "bias", inits)
                if ins[1] in inits:
                    self.fan_in[ins[1]] = int(np.prod(inits[ins[1]].shape[1:]))
            elif n.op_type == "Gemm":
                self._role(ins, 1, "weight", inits)
                self._role(ins, 2, "bias", inits)
                if ins[1] in inits:
                    w = inits[ins[1]]
                    self.fan_in[ins[1]] = w.shape[1] if a.get("transB", 0) else w.shape[0]
            elif n.op_type == "MatMul":
                self._role(ins, 1, "weight", inits)
                if ins[1] in inits:
                    self.fan_in[ins[1]] = inits[ins[1]].shape[0]
            elif n.op_type == "BatchNormalization":
                for i, r in enumerate(["bn-scale", "bn-bias", "bn-mean", "bn-var"], start=1):
                    self._role(ins, i, r, inits)
        self.pnames = []  # parameter initializer names, in file order
        self.bnames = []  # running-stat names
        self._params = torch.nn.ParameterList()
        self._index = {}
        self.consts = {}
        for name, v in inits.items():
            t = torch.from_numpy(v)
            role = self.roles.get(name)
            if role in ("bn-mean", "bn-var"):
                self.register_buffer("b%d" % len(self.bnames), t.float().clone())
                self._index[name] = ("b", len(self.bnames))
                self.bnames.append(name)
            elif role is not None and t.dtype == torch.float32:
                self._index[name] = ("p", len(self.pnames))
                self._params.append(torch.nn.Parameter(t.clone()))
                self.pnames.append(name)
            else:
                self.consts[name] = t
        self.masks = {}  # UMAP: weight name -> (scores parameter, keep)

    def _role(self, ins, i, role, inits):
        if len(ins) > i and ins[i] in inits:
            prev = self.roles.get(ins[i])
            if prev is not None and prev != role:
                fail("initializer %s is used as %s and as %s" % (ins[i], prev, role))
            self.roles[ins[i]] = role

    def tensor(self, name):
        kind, i = self._index.get(name, (None, None))
        if kind == "p":
            return self._params[i]
        if kind == "b":
            return getattr(self, "b%d" % i)
        return self.consts[name]

    def named_inits(self):
        for name in self.pnames + self.bnames:
            yield name, self.tensor(name)

    def weight(self, name):
        w = self.tensor(name)
        if name in self.masks:
            s, keep = self.masks[name]
            w = w * GetSubnet.apply(s.abs(), keep)
        return w

    def forward(self, x):
        env = {self.input_name: x}

        def get(name):
            if name in env:
                return env[name]
            if name in self.masks:
                return self.weight(name)
            return self.tensor(name)

        for n in self.nodes:
            a = attrs(n)
            ins = [get(i) if i else None for i in n.input]
            op = n.op_type
            if op == "Conv":
                pads = list(a.get("pads", [0, 0, 0, 0]))
                x0 = ins[0]
                if pads[0] != pads[2] or pads[1] != pads[3]:
                    x0 = F.pad(x0, (pads[1], pads[3], pads[0], pads[2]))
                    pads = [0, 0, 0, 0]
                if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
                    fail("Conv %s: auto_pad is not supported" % n.name)
                y = F.conv2d(x0, ins[1], ins[2] if len(ins) > 2 else None, stride=tuple(a.get("strides", [1, 1])),
                             padding=(pads[0], pads[1]), dilation=tuple(a.get("dilations", [1, 1])),
                             groups=a.get("group", 1))
            elif op == "BatchNormalization":
                if a.get("training_mode", 0):
                    fail("BatchNormalization %s is in training mode" % n.name)
                mean, var = ins[3], ins[4]
                y = F.batch_norm(ins[0], mean, var, ins[1], ins[2], training=self.training,
                                 momentum=1.0 - a.get("momentum", 0.9), eps=a.get("epsilon", 1e-5))
            elif op == "Relu":
                y = F.relu(ins[0])
            elif op == "MaxPool":
                k = a["kernel_shape"]
                p = list(a.get("pads", [0, 0, 0, 0]))
                if p[0] != p[2] or p[1] != p[3]:
                    fail("MaxPool %s: asymmetric padding" % n.name)
                y = F.max_pool2d(ins[0], k, stride=a.get("strides", k), padding=(p[0], p[1]),
                                 dilation=a.get("dilations", [1, 1]), ceil_mode=bool(a.get("ceil_mode", 0)))
            elif op == "AveragePool":
                k = a["kernel_shape"]
                p = list(a.get("pads", [0, 0, 0, 0]))
                if p[0] != p[2] or p[1] != p[3]:
                    fail("AveragePool %s: asymmetric padding" % n.name)
                y = F.avg_pool2d(ins[0], k, stride=a.get("strides", k), padding=(p[0], p[1]),
                                 ceil_mode=bool(a.get("ceil_mode", 0)),
                                 count_include_pad=bool(a.get("count_include_pad", 0)))
            elif op == "GlobalAveragePool":
                y = ins[0].mean(dim=(2, 3), keepdim=True)
            elif op == "Flatten":
                ax = a.get("axis", 1)
                y = ins[0].reshape(int(np.prod(ins[0].shape[:ax])), -1)
            elif op == "Gemm":
                A, B = ins[0], ins[1]
                if a.get("transA", 0):
                    A = A.t()
                if a.get("transB", 0):
                    B = B.t()
                y = a.get("alpha", 1.0) * (A @ B)
                if len(ins) > 2 and ins[2] is not None:
                    y = y + a.get("beta", 1.0) * ins[2]
            elif op == "MatMul":
                y = ins[0] @ ins[1]
            elif op == "Add":
                y = ins[0] + ins[1]
            elif op == "Sub":
                y = ins[0] - ins[1]
            elif op == "Mul":
                y = ins[0] * ins[1]
            elif op == "Div":
                y = ins[0] / ins[1]
            elif op == "Concat":
                y = torch.cat(ins, dim=a["axis"])
            elif op == "Reshape":
                shape = [int(v) for v in ins[1].tolist()]
                shape = [ins[0].shape[i] if v == 0 else v for i, v in enumerate(shape)]
                y = ins[0].reshape(shape)
            else:
                fail("op %s (node %s) is not supported by the peer" % (op, n.name))
            env[n.output[0]] = y
        return env[self.output_name]


# ---------------------------------------------------------------------------------------------
# data

def read_idx(path):
    op = gzip.open if path.endswith(".gz") else open
    with op(path, "rb") as f:
        buf = f.read()
    magic = int.from_bytes(buf[0:4], "big")
    nd = magic & 0xFF
    dims = [int.from_bytes(buf[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
    if (magic >> 8) != 0x08:
        fail("%s: not an unsigned-byte IDX file" % path)
    return np.frombuffer(buf, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)


def labels_path(images):
    d, b = os.path.split(images)
    cand = b.replace("images-idx3", "labels-idx1")
    p = os.path.join(d, cand)
    if cand == b or not os.path.exists(p):
        fail("%s: no labels file %s beside it" % (images, cand))
    return p


def load_idx_set(images, spec):
    x = read_idx(images)
    y = read_idx(labels_path(images)).astype(np.int64)
    if x.ndim != 3 or spec["channels"] != 1 or x.shape[1] != spec["height"] or x.shape[2] != spec["width"]:
        fail("%s: images %s do not fit the model's %dx%dx%d input" % (images, x.shape, spec["channels"], spec["height"], spec["width"]))
    xf = (x.astype(np.float32) / np.float32(255) - np.float32(spec["mean"][0])) / np.float32(spec["std"][0])
    return torch.from_numpy(xf[:, None, :, :].copy()), torch.from_numpy(y)


def load_f32_set(path, spec):
    """PREFIX.f32 and PREFIX.json as scripts/peer/dumpdata writes them (oodguard's own tensors)."""
    with open(os.path.splitext(path)[0] + ".json") as f:
        meta = json.load(f)
    shape = meta["shape"]
    if shape[1:] != [spec["channels"], spec["height"], spec["width"]]:
        fail("%s: images %s do not fit the model's %dx%dx%d input" % (path, shape, spec["channels"], spec["height"], spec["width"]))
    x = np.fromfile(path, dtype="<f4")
    if x.size != int(np.prod(shape)) or len(meta["labels"]) != shape[0]:
        fail("%s: %d values and %d labels for shape %s" % (path, x.size, len(meta["labels"]), shape))
    return torch.from_numpy(x.reshape(shape).astype(np.float32)), torch.tensor(meta["labels"], dtype=torch.int64)


def load_set(path, spec):
    if path.endswith(".f32"):
        return load_f32_set(path, spec)
    return load_idx_set(path, spec)


def augment(x, gen, pad, flip, black):
    if pad == 0 and not flip:
        return x
    n, c, h, w = x.shape
    out = x
    if pad > 0:
        big = torch.full((n, c, h + 2 * pad, w + 2 * pad), black, dtype=x.dtype)
        big[:, :, pad:pad + h, pad:pad + w] = x
        dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
        dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
        out = torch.stack([big[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])
    if flip:
        f = torch.rand(n, generator=gen) < 0.5
        out = torch.where(f[:, None, None, None], out.flip(3), out)
    return out


# ---------------------------------------------------------------------------------------------
# evaluation helpers

@torch.no_grad()
def eval_pass(net, x, y, batch=500):
    net.eval()
    ce, correct = 0.0, 0
    for i in range(0, len(x), batch):
        z = net(x[i:i + batch])
        ce += F.cross_entropy(z, y[i:i + batch], reduction="sum").item()
        correct += (z.argmax(1) == y[i:i + batch]).sum().item()
    return ce / len(x), correct / len(x)


def ort_logits(bin_path, model_path, x, tmp):
    """Every logit of model_path on x by ONNX Runtime (oodguard score -json)."""
    m = onnx.load(model_path)
    out = m.graph.output[0].name
    last = [n for n in m.graph.node if out in n.output]
    if len(last) != 1 or last[0].op_type != "Gemm" or len(last[0].input) < 3:
        fail("the logit check needs a final Gemm with a bias (%s)" % model_path)
    bias_name = last[0].input[2]
    inits = {t.name: t for t in m.graph.initializer}
    bias = numpy_helper.to_array(inits[bias_name]).copy()
    f32 = os.path.join(tmp, "batch.f32")
    x.numpy().astype("<f4").tofile(f32)
    env = dict(os.environ)
    env.setdefault("ONNXRUNTIME_LIB", os.path.join(os.path.dirname(bin_path), "libonnxruntime.so"))
    z = np.zeros((len(x), len(bias)))
    for k in range(len(bias)):
        b = bias.copy()
        b[k] += 100
        inits[bias_name].CopyFrom(numpy_helper.from_array(b, bias_name))
        p = os.path.join(tmp, "probe.onnx")
        onnx.save(m, p)
        r = subprocess.run([bin_path, "score", "-json", "-model", p, f32], capture_output=True, text=True, env=env)
        if r.returncode != 0:
            fail("%s score: %s" % (bin_path, r.stderr.strip()))
        for i, line in enumerate(r.stdout.strip().splitlines()):
            rec = json.loads(line)
            if rec["class"] != k:
                fail("logit probe for class %d: image %d's class is %d (logits beyond +-100?)" % (k, i, rec["class"]))
            z[i, k] = rec["maxlogit"] - 100
    return z


def check_logits(bin_path, net, model_path, x, what):
    net.eval()
    with torch.no_grad():
        zt = net(x).double().numpy()
    with tempfile.TemporaryDirectory() as tmp:
        zo = ort_logits(bin_path, model_path, x, tmp)
    d = float(np.abs(zt - zo).max())
    print("logit check (%s): max |torch - ONNX Runtime| = %.3g over %d images x %d classes" % (what, d, zo.shape[0], zo.shape[1]), flush=True)
    if not d <= 1e-4:
        fail("logit check (%s) failed: %.3g > 1e-4" % (what, d))
    return d


# ---------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-model", required=True, help="start ONNX model (oodguard's input)")
    ap.add_argument("-preprocess", help="preprocess.json (default MODEL.preprocess.json)")
    ap.add_argument("-data", help="training images: IDX (labels beside it) or PREFIX.f32 of scripts/peer/dumpdata; "
                    "required unless -check-only -probe-random")
    ap.add_argument("-id-val", dest="id_val", help="ID validation images (IDX or .f32): per-epoch eval-mode accuracy and CE")
    ap.add_argument("-check-limit", dest="check_limit", type=int, default=2000,
                    help="per-epoch check on the first N images of -id-val (0: all; oodguard's -check-limit is 2000, a random subset)")
    ap.add_argument("-mode", choices=["um", "umap"], default="um")
    ap.add_argument("-constraint", type=float, required=True, help="flooding level c of |CE - c| + c (0: plain CE)")
    ap.add_argument("-epochs", type=int, default=10)
    ap.add_argument("-lr", type=float, default=0.1)
    ap.add_argument("-batch", type=int, default=128)
    ap.add_argument("-momentum", type=float, default=0.9)
    ap.add_argument("-wd", type=float, default=1e-4, help="coupled weight decay (oodguard unleash's default 1e-4)")
    ap.add_argument("-keep", type=float, default=0.8, help="UMAP: fraction of each layer kept")
    ap.add_argument("-score-init", dest="score_init", choices=["kaiming", "magnitude"], default="kaiming")
    ap.add_argument("-pad", type=int, default=0, help="random-crop padding (0: none)")
    ap.add_argument("-flip", action="store_true", help="random horizontal flip")
    ap.add_argument("-seed", type=int, default=1, help="seeds shuffling, augmentation and kaiming scores")
    ap.add_argument("-order", help="data order: one permutation of the training images per epoch (scripts/peer/order: oodguard's own)")
    ap.add_argument("-check-ort", dest="check_ort", help="oodguard binary: check logits against ONNX Runtime (fails past 1e-4)")
    ap.add_argument("-check-only", dest="check_only", action="store_true", help="only load the model and check its logits")
    ap.add_argument("-probe-random", dest="probe_random", action="store_true",
                    help="with -check-only: check on 64 N(0,1) inputs of the model's input shape instead of images")
    ap.add_argument("-out", help="output ONNX model")
    args = ap.parse_args()
    torch.set_num_threads(THREADS)
    if not (args.constraint >= 0) or args.epochs < 1 or args.batch < 1 or not (0 < args.keep <= 1):
        fail("constraint must be >= 0, epochs and batch >= 1, keep in (0, 1]")
    if not args.check_only and not args.out:
        fail("-out is required")
    if args.out and os.path.exists(args.out):
        fail("%s exists" % args.out)
    pre = args.preprocess or os.path.splitext(args.model)[0] + ".preprocess.json"
    with open(pre) as f:
        spec = json.load(f)
    model = onnx.load(args.model)
    net = OnnxNet(model)
    if args.check_only and args.probe_random:
        if not args.check_ort:
            fail("-check-only needs -check-ort")
        gen = torch.Generator().manual_seed(args.seed)
        probe = torch.randn((64, spec["channels"], spec["height"], spec["width"]), generator=gen)
        check_logits(args.check_ort, net, args.model, probe, "start model, N(0,1) inputs")
        return
    if not args.data:
        fail("-data is required")
    x, y = load_set(args.data, spec)
    xv = yv = None
    if args.id_val:
        xv, yv = load_set(args.id_val, spec)
        if args.check_limit > 0:
            xv, yv = xv[:args.check_limit], yv[:args.check_limit]
    probe = (xv if xv is not None else x)[:64].contiguous()
    rec = {"tool": "scripts/peer/um_peer.py", "torch": torch.__version__, "threads": THREADS,
           "input_model": os.path.abspath(args.model), "train_data": os.path.abspath(args.data), "images": len(x),
           "mode": args.mode, "constraint": args.constraint, "epochs": args.epochs, "lr": args.lr,
           "lr_schedule": "cosine per epoch: 0.5*(1+cos(pi*e/E))*lr", "batch": args.batch,
           "momentum": args.momentum, "weight_decay": args.wd, "seed": args.seed,
           "augmentation": {"pad": args.pad, "flip": args.flip}, "batchnorm": "train",
           "check_images": 0 if xv is None else len(xv)}
    if args.mode == "umap":
        rec.update(keep=args.keep, score_init=args.score_init)
    if args.check_ort:
        rec["logit_check_start"] = check_logits(args.check_ort, net, args.model, probe, "start model")
    if args.check_only:
        return
    t0 = time.time()
    dense_ce, dense_acc = eval_pass(net, x, y)
    rec["dense_loss"], rec["dense_train_accuracy"] = dense_ce, dense_acc
    print("start model: eval-mode CE %.6g, accuracy %.4f on the %d training images" % (dense_ce, dense_acc, len(x)), flush=True)
    if xv is not None:
        vce, vacc = eval_pass(net, xv, yv)
        rec["start_id_val"] = {"ce": vce, "accuracy": vacc}
        print("start model: ID-val accuracy %.4f, CE %.4f" % (vacc, vce), flush=True)

    # what is trained
    if args.mode == "um":
        trained = [net.tensor(n) for n in net.pnames]
    else:
        for p in net.parameters():
            p.requires_grad_(False)
        gen = torch.Generator().manual_seed(args.seed)
        trained = []
        for name in net.pnames:
            if net.roles[name] != "weight":
                continue
            w = net.tensor(name)
            if args.score_init == "magnitude":
                s = w.detach().abs().clone()
            else:
                b = 1.0 / math.sqrt(net.fan_in[name])
                s = (torch.rand(w.shape, generator=gen, dtype=torch.float64) * 2 - 1).mul(b).float()
            s = torch.nn.Parameter(s)
            net.masks[name] = (s, args.keep)
            trained.append(s)
        rec["masked"] = list(net.masks)
    opt = torch.optim.SGD(trained, lr=args.lr, momentum=args.momentum, weight_decay=args.wd)
    black = float((0 - spec["mean"][0]) / spec["std"][0])
    c = args.constraint
    epochs = []
    n = len(x)
    steps_per_epoch = n // args.batch
    if steps_per_epoch == 0:
        fail("%d images cannot make a batch of %d" % (n, args.batch))
    orders = None
    if args.order:
        with open(args.order) as f:
            orders = [[int(v) for v in line.split()] for line in f if line.strip()]
        if len(orders) < args.epochs or any(sorted(o) != list(range(n)) for o in orders[:args.epochs]):
            fail("%s: want %d lines, each a permutation of 0..%d" % (args.order, args.epochs, n - 1))
        rec["order"] = os.path.abspath(args.order)
    for e in range(args.epochs):
        te = time.time()
        lr = 0.5 * (1 + math.cos(math.pi * e / args.epochs)) * args.lr
        for gr in opt.param_groups:
            gr["lr"] = lr
        gen = torch.Generator().manual_seed(args.seed * 1000003 + 100 + e)
        order = torch.randperm(n, generator=gen)
        if orders is not None:
            order = torch.tensor(orders[e], dtype=torch.int64)
        net.train()
        sl = sce = 0.0
        corr = 0
        below = 0
        for b in range(steps_per_epoch):
            idx = order[b * args.batch:(b + 1) * args.batch]
            xb = augment(x[idx], gen, args.pad, args.flip, black)
            z = net(xb)
            ce = F.cross_entropy(z, y[idx])
            loss = (ce - c).abs() + c
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            k = len(idx)
            sl += loss.item() * k
            sce += ce.item() * k
            below += int(ce.item() < c)
            corr += (z.argmax(1) == y[idx]).sum().item()
        seen = steps_per_epoch * args.batch
        er = {"epoch": e + 1, "lr": lr, "loss": sl / seen, "ce": sce / seen, "train_accuracy": corr / seen,
              "steps": steps_per_epoch, "steps_below_constraint": below, "seconds": time.time() - te}
        if xv is not None:
            er["check_ce"], er["check_accuracy"] = eval_pass(net, xv, yv)
        epochs.append(er)
        print(json.dumps(er), flush=True)
    rec["epoch_results"] = epochs
    rec["train_seconds"] = time.time() - t0
    fce, facc = eval_pass(net, x, y)
    rec["final_train_ce"], rec["final_train_accuracy"] = fce, facc

    # write into a copy of the input model
    repl = {}
    with torch.no_grad():
        if args.mode == "um":
            for name in net.pnames:
                repl[name] = net.tensor(name).detach().numpy()
        else:
            for name in net.masks:
                repl[name] = net.weight(name).detach().numpy()
            kept = {name: float((net.weight(name) != 0).float().mean()) for name in net.masks}
            rec["kept_fraction"] = kept
        for name in net.bnames:
            repl[name] = net.tensor(name).detach().numpy()
    out = onnx.load(args.model)
    for t in out.graph.initializer:
        if t.name in repl:
            v = repl[t.name].astype(np.float32)
            if list(v.shape) != list(t.dims):
                fail("shape of %s changed" % t.name)
            t.CopyFrom(numpy_helper.from_array(v, t.name))
    tmp = args.out + ".tmp"
    onnx.save(out, tmp)
    os.replace(tmp, args.out)
    shutil.copyfile(pre, os.path.splitext(args.out)[0] + ".preprocess.json")
    if args.check_ort:
        rec["logit_check_written"] = check_logits(args.check_ort, net, args.out, probe, "written model")
    rec["seconds"] = time.time() - t0
    with open(os.path.splitext(args.out)[0] + ".peer.json", "w") as f:
        json.dump(rec, f, indent=1)
    print("wrote %s (%.0f s)" % (args.out, rec["seconds"]), flush=True)


if __name__ == "__main__":
    main()

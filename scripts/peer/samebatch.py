#!/usr/bin/python3
"""The PyTorch side of scripts/peer/samebatch (docs/peer.md): UM steps of um_peer.py's module over
the training images in their stored order (batch i = images i*B..(i+1)*B), constant lr, printing
loss and CE per step and writing the model; then, given oodguard's model from samebatch, the
largest logit difference of the two written models on the first 2000 training images (eval mode).
Usage: /usr/bin/python3 scripts/peer/samebatch.py -model M.onnx -data TRAIN.gz -steps 78 -lr 0.1
       -constraint C -out OUT.onnx [-other OODGUARD_OUT.onnx]
"""
import argparse
import importlib.util
import json
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import numpy as np  # noqa: E402
import onnx  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from onnx import numpy_helper  # noqa: E402

spec_ = importlib.util.spec_from_file_location("um_peer", os.path.join(os.path.dirname(os.path.abspath(__file__)), "um_peer.py"))
P = importlib.util.module_from_spec(spec_)
spec_.loader.exec_module(P)

ap = argparse.ArgumentParser()
ap.add_argument("-model", required=True)
ap.add_argument("-data", required=True)
ap.add_argument("-steps", type=int, default=78)
ap.add_argument("-batch", type=int, default=128)
ap.add_argument("-lr", type=float, default=0.1)
ap.add_argument("-constraint", type=float, default=0)
ap.add_argument("-out", required=True)
ap.add_argument("-other")
ap.add_argument("-grads", help="oodguard's first-batch gradients (samebatch -grads) to compare")
ap.add_argument("-threads", type=int, default=2, help="torch threads (1 vs 2 changes only the float rounding order)")
ap.add_argument("-double", action="store_true", help="compute in float64 (rounding control)")
a = ap.parse_args()
torch.set_num_threads(a.threads)
with open(os.path.splitext(a.model)[0] + ".preprocess.json") as f:
    spec = json.load(f)
net = P.OnnxNet(onnx.load(a.model))
x, y = P.load_set(a.data, spec)
if a.double:
    net = net.double()
    net.consts = {k: (v.double() if v.is_floating_point() else v) for k, v in net.consts.items()}
    x = x.double()
opt = torch.optim.SGD([net.tensor(n) for n in net.pnames], lr=a.lr, momentum=0.9, weight_decay=1e-4)
net.train()
if a.grads:
    # the gradients of the first batch, before any step, against oodguard's (samebatch -grads)
    ce = F.cross_entropy(net(x[:a.batch]), y[:a.batch])
    loss = (ce - a.constraint).abs() + a.constraint
    gs = torch.autograd.grad(loss, [net.tensor(n) for n in net.pnames])
    with open(a.grads) as f:
        og = json.load(f)
    print("first batch: loss %.9g (oodguard %.9g)" % (loss.item(), og["loss"]))
    for n, g in zip(net.pnames, gs):
        o = torch.tensor(og["grads"][n], dtype=torch.float64).reshape(g.shape)
        print("  grad %s: max |oodguard - torch| / max |torch| = %.3g" % (n, ((o - g.double()).abs().max() / g.double().abs().max()).item()))
for s in range(a.steps):
    i = (s * a.batch) % (len(x) - a.batch + 1)
    ce = F.cross_entropy(net(x[i:i + a.batch]), y[i:i + a.batch])
    loss = (ce - a.constraint).abs() + a.constraint
    opt.zero_grad()
    loss.backward()
    opt.step()
    print("step %d loss %.7g ce %.7g" % (s + 1, loss.item(), ce.item()), flush=True)
m = onnx.load(a.model)
for t in m.graph.initializer:
    if t.name in net.pnames or t.name in net.bnames:
        t.CopyFrom(numpy_helper.from_array(net.tensor(t.name).detach().float().numpy().astype(np.float32), t.name))
onnx.save(m, a.out)
if a.other:
    other = P.OnnxNet(onnx.load(a.other))
    mine = P.OnnxNet(onnx.load(a.out))
    other.eval()
    mine.eval()
    with torch.no_grad():
        xs = x[:2000].float()
        za, zb = mine(xs), other(xs)
    agree = (za.argmax(1) == zb.argmax(1)).float().mean().item()
    print("written models: max |logit difference| %.4g (logits up to %.3g), same class on %.4f of 2000 images" % (
        (za - zb).abs().max().item(), zb.abs().max().item(), agree))
    for n in other.pnames:
        d = (other.tensor(n) - mine.tensor(n)).abs().max().item()
        print("  %s: max |difference| %.3g (max |value| %.3g)" % (n, d, other.tensor(n).abs().max().item()))

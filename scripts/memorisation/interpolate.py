#!/usr/bin/python3
"""Weight interpolation between two checkpoints of one training run (docs/memorisation.md).

  interpolate.py -final F.onnx -best B.onnx -alpha A -out O.onnx [-bn-data IDX.gz -bn-images N]

Writes O.onnx: F's graph with every initializer W = (1-A)*W_F + A*W_B (A = 0: the final
checkpoint, A = 1: the best one), BatchNorm running statistics interpolated the same way
("naive"). With -bn-data, the BatchNorm running statistics are then estimated again on those
images (gzipped IDX, pixels/255 normalised by F's preprocess spec): a forward pass in training
mode, batch statistics, the running mean and the unbiased variance averaged over the batches
(what torch.optim.swa_utils.update_bn does). That pass runs the ONNX graph in PyTorch and knows
the node types of oodguard's cnn28/resnet exports (Conv, BatchNormalization, Relu, MaxPool,
GlobalAveragePool, Flatten, Gemm, Add). O.preprocess.json is a copy of F's.
"""
import argparse, gzip, json, os, shutil, struct
import numpy as np
import onnx
from onnx import numpy_helper


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    nd = data[3]
    dims = struct.unpack(">" + "I" * nd, data[4:4 + 4 * nd])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)


def bn_update(model, images, batch=128):
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(int(os.environ.get("THREADS", "1")))
    init = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in model.graph.initializer}
    sums = {}
    count = 0
    with torch.no_grad():
        for s in range(0, len(images) - batch + 1, batch):
            env = {model.graph.input[0].name: images[s:s + batch]}
            for n in model.graph.node:
                a = {x.name: onnx.helper.get_attribute_value(x) for x in n.attribute}
                x = [env[i] if i in env else init[i] for i in n.input]
                t = n.op_type
                if t == "Conv":
                    p = a.get("pads", [0, 0, 0, 0])
                    assert p[0] == p[2] and p[1] == p[3]
                    y = F.conv2d(x[0], x[1], x[2] if len(x) > 2 else None, stride=a.get("strides", 1),
                                 padding=(p[0], p[1]), dilation=a.get("dilations", 1), groups=a.get("group", 1))
                elif t == "BatchNormalization":
                    eps = a.get("epsilon", 1e-5)
                    m = x[0].mean(dim=(0, 2, 3))
                    v = x[0].var(dim=(0, 2, 3), unbiased=False)
                    nel = x[0].numel() / x[0].shape[1]
                    acc = sums.setdefault(n.input[3], [0, 0])
                    acc[0] = acc[0] + m
                    acc[1] = acc[1] + v * nel / (nel - 1)
                    y = (x[0] - m[None, :, None, None]) / torch.sqrt(v[None, :, None, None] + eps)
                    y = y * x[1][None, :, None, None] + x[2][None, :, None, None]
                elif t == "Relu":
                    y = F.relu(x[0])
                elif t == "MaxPool":
                    p = a.get("pads", [0, 0, 0, 0])
                    y = F.max_pool2d(x[0], a["kernel_shape"], a.get("strides", a["kernel_shape"]), (p[0], p[1]),
                                     ceil_mode=bool(a.get("ceil_mode", 0)))
                elif t == "GlobalAveragePool":
                    y = x[0].mean(dim=(2, 3), keepdim=True)
                elif t == "Flatten":
                    y = torch.flatten(x[0], a.get("axis", 1))
                elif t == "Gemm":
                    w = x[1].t() if a.get("transB", 0) else x[1]
                    y = a.get("alpha", 1.0) * (x[0] @ w)
                    if len(x) > 2:
                        y = y + a.get("beta", 1.0) * x[2]
                elif t == "Add":
                    y = x[0] + x[1]
                else:
                    raise SystemExit(f"bn update: op {t} not supported")
                env[n.output[0]] = y
            count += 1
    # which BN input is the mean and which the var
    out = {}
    for n in model.graph.node:
        if n.op_type == "BatchNormalization":
            s = sums[n.input[3]]
            out[n.input[3]] = (s[0] / count).numpy()
            out[n.input[4]] = (s[1] / count).numpy()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-final", required=True)
    ap.add_argument("-best", required=True)
    ap.add_argument("-alpha", type=float, required=True)
    ap.add_argument("-out", required=True)
    ap.add_argument("-bn-data", default="")
    ap.add_argument("-bn-images", type=int, default=10000)
    ap.add_argument("-bn-seed", type=int, default=0)
    args = ap.parse_args()
    mf, mb = onnx.load(args.final), onnx.load(args.best)
    wb = {i.name: numpy_helper.to_array(i) for i in mb.graph.initializer}
    a = args.alpha
    for i, init in enumerate(mf.graph.initializer):
        wf = numpy_helper.to_array(init)
        if init.name not in wb or wb[init.name].shape != wf.shape:
            raise SystemExit(f"{init.name}: not in {args.best} with the same shape")
        w = ((1 - a) * wf.astype(np.float64) + a * wb[init.name].astype(np.float64)).astype(wf.dtype)
        mf.graph.initializer[i].CopyFrom(numpy_helper.from_array(w, init.name))
    spec = json.load(open(os.path.splitext(args.final)[0] + ".preprocess.json"))
    if args.bn_data:
        import torch
        imgs = read_idx(args.bn_data)
        if args.bn_images and args.bn_images < len(imgs):
            rng = np.random.RandomState(args.bn_seed)
            imgs = imgs[np.sort(rng.choice(len(imgs), args.bn_images, replace=False))]
        x = imgs.astype(np.float32)[:, None] / 255.0
        x = (x - spec["mean"][0]) / spec["std"][0]
        x = torch.from_numpy(x[np.random.RandomState(args.bn_seed + 1).permutation(len(x))])
        stats = bn_update(mf, x)
        for i, init in enumerate(mf.graph.initializer):
            if init.name in stats:
                mf.graph.initializer[i].CopyFrom(numpy_helper.from_array(stats[init.name].astype(np.float32), init.name))
    mf.metadata_props.add(key="oodguard.interpolate",
                          value=json.dumps({"final": args.final, "best": args.best, "alpha": a, "bn_data": args.bn_data}))
    onnx.save(mf, args.out)
    shutil.copy(os.path.splitext(args.final)[0] + ".preprocess.json", os.path.splitext(args.out)[0] + ".preprocess.json")


if __name__ == "__main__":
    main()

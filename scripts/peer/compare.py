#!/usr/bin/python3
"""Side-by-side table of oodguard's UM/UMAP runs and their PyTorch peers (docs/peer.md).

Reads the `oodguard eval` reports that scripts/memorisation/eval_models.sh wrote for both sides
(test sets, validation pair, accuracy on the training images), the oodguard run records
(*.run.json) and the peer records (*.peer.json), and writes:

  OUT.csv          one row per seed, pair and side: ID accuracy, train accuracy, ID-val accuracy,
                   MNIST-val FPR95, FPR95 and AUROC per test family, unseen mean (CIFAR-10 and
                   Tiny ImageNet, as docs/memorisation.md)
  OUT-epochs.csv   per epoch and side: lr, train-mode loss, CE and accuracy, check-set accuracy
  OUT.md           the tables of docs/peer.md: per seed, and mean +- sd over seeds per side with
                   the paired difference peer - oodguard, and the verdict per metric

Usage: /usr/bin/python3 scripts/peer/compare.py [-runs DIR] [-peer DIR] [-seeds 1,2,3] -out docs/peer-fmnist
"""
import argparse
import csv
import json
import math
import os

FAMS = [("mnist-test", "mnist-test-5000"), ("cifar10", "cifar10/test.tar"), ("tin", "tin-test-5000"), ("noise", "noise-5000")]
UNSEEN = ["cifar10", "tin"]
# -dataset cifar: docs/memorisation-cifar.md's sets (summarise_cifar.py): Tiny ImageNet is the
# validation family's test half; the unseen mean is over MNIST, Fashion-MNIST and noise
CIFAR_FAMS = [("tin", "data/tin-test-5000"), ("mnist", "mnist/t10k-images-idx3-ubyte.gz"),
              ("fmnist", "fashion-mnist/t10k-images-idx3-ubyte.gz"), ("noise", "data/noise-rgb-5000")]
CIFAR_UNSEEN = ["mnist", "fmnist", "noise"]
CIFAR_PAIRS = [("um", "um/um-bestloss-e10", "um/peer-um-bestloss-e10", "UM, c = best epoch's training loss"),
               ("umap", "umap/umap-bestloss-e10", "umap/peer-umap-bestloss-e10", "UMAP magnitude keep 0.8, c = best epoch's training loss"),
               ("um-same-order", "um/um-bestloss-e10", "um/peer-um-bestloss-e10-oodguardorder", "UM, c = best epoch's training loss, the peer in oodguard's data order"),
               ("um-estimate-e100", "um/um-estimate-e100", "um/peer-um-estimate-e100", "UM, the official recipe: c = the official estimate, 100 epochs")]


CIFAR_START = "train/epoch-080"
# pair name -> (oodguard model under seed-S, peer model under seed-S, label); "P:" = under the
# peer folder (oodguard's own data-order replicates live there)
PAIRS = [
    ("um", "um/um-grid-e10", "um/peer-um-e10", "UM, grid's c"),
    ("um-c0", "um/um-c0-e10", "um/peer-um-c0-e10", "UM, c = 0"),
    ("umap", "umap/umap-grid-e10", "umap/peer-umap-e10", "UMAP magnitude keep 0.8, grid's c"),
    ("um-same-order", "um/um-grid-e10", "um/peer-um-e10-oodguardorder", "UM, grid's c, the peer in oodguard's data order"),
    ("um-order101", "P:um/oodguard-um-e10-shuffle101", "um/peer-um-e10-shuffle101", "UM, grid's c, shuffling seed 101 (both sides)"),
    ("um-order102", "P:um/oodguard-um-e10-shuffle102", "um/peer-um-e10-shuffle102", "UM, grid's c, shuffling seed 102 (both sides)"),
    ("um-estimate-e100", "um/um-cestimate-e100", "um/peer-um-estimate-e100-oodguardorder",
     "UM, the official recipe: c = the official estimate, 100 epochs, the peer in oodguard's data order"),
]
ORDER = ["um", "um-order101", "um-order102"]  # the data-order replicates of seed 1
START = "train/epoch-060"
METRICS = ["id_acc", "train_acc", "val_acc", "val_fpr95"] + \
    ["%s_%s" % (f, m) for f, _ in FAMS for m in ("fpr95", "auroc")] + ["unseen_fpr95", "unseen_auroc"]


def read_report(path):
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return list(csv.DictReader(f))


def model_row(seed_dir, rel):
    d, name = os.path.split(rel)
    ev = read_report(os.path.join(seed_dir, "eval", name, "report.csv"))
    if ev is None:
        return None
    r = {"id_acc": float(ev[0]["id_accuracy"])}
    for key, pat in FAMS:
        rows = [x for x in ev if pat in x["ood_set"]]
        if len(rows) > 1:
            rows = [x for x in rows if x["ood_set"] == pat]
        if len(rows) != 1:
            return None
        r[key + "_fpr95"] = float(rows[0]["fpr95"])
        r[key + "_auroc"] = float(rows[0]["auroc"])
    r["unseen_fpr95"] = sum(r[k + "_fpr95"] for k in UNSEEN) / len(UNSEEN)
    r["unseen_auroc"] = sum(r[k + "_auroc"] for k in UNSEEN) / len(UNSEEN)
    va = read_report(os.path.join(seed_dir, "val", name, "report.csv"))
    r["val_acc"] = float(va[0]["id_accuracy"]) if va else float("nan")
    r["val_fpr95"] = float(va[0]["fpr95"]) if va else float("nan")
    ta = read_report(os.path.join(seed_dir, "trainacc", name, "report.csv"))
    r["train_acc"] = float(ta[0]["id_accuracy"]) if ta else float("nan")
    return r


def mean_sd(v):
    v = [x for x in v if not math.isnan(x)]
    if not v:
        return float("nan"), float("nan")
    m = sum(v) / len(v)
    sd = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1)) if len(v) > 1 else float("nan")
    return m, sd


def fmt(m, sd):
    if math.isnan(sd):
        return "%.2f" % m
    return "%.2f ± %.2f" % (m, sd)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-runs", default="/root/oodguard-runs/fmnist-mem")
    ap.add_argument("-peer", default="/root/oodguard-runs/peer/fmnist")
    ap.add_argument("-seeds", default="1,2,3")
    ap.add_argument("-out", required=True)
    ap.add_argument("-dataset", choices=["fmnist", "cifar"], default="fmnist")
    args = ap.parse_args()
    global FAMS, UNSEEN, PAIRS, START, METRICS
    if args.dataset == "cifar":
        FAMS, UNSEEN, PAIRS, START = CIFAR_FAMS, CIFAR_UNSEEN, CIFAR_PAIRS, CIFAR_START
        METRICS = ["id_acc", "train_acc", "val_acc", "val_fpr95"] + \
            ["%s_%s" % (f, m) for f, _ in FAMS for m in ("fpr95", "auroc")] + ["unseen_fpr95", "unseen_auroc"]
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    epochs = []
    for s in seeds:
        st = model_row(os.path.join(args.runs, "seed-%d" % s), START.replace("train/", "train/"))
        if st:
            rows.append(dict(seed=s, pair="start", side="start", model=START, **st))
        for pair, ours, theirs, _ in PAIRS:
            oroot = args.runs
            if ours.startswith("P:"):
                oroot, ours = args.peer, ours[2:]
            a = model_row(os.path.join(oroot, "seed-%d" % s), ours)
            b = model_row(os.path.join(args.peer, "seed-%d" % s), theirs)
            if a is None or b is None:
                continue
            rows.append(dict(seed=s, pair=pair, side="oodguard", model=ours, **a))
            rows.append(dict(seed=s, pair=pair, side="peer", model=theirs, **b))
            rj = os.path.join(oroot, "seed-%d" % s, ours + ".run.json")
            pj = os.path.join(args.peer, "seed-%d" % s, theirs + ".peer.json")
            for side, path, key in (("oodguard", rj, "epoch_results"), ("peer", pj, "epoch_results")):
                if not os.path.exists(path):
                    continue
                with open(path) as f:
                    rec = json.load(f)
                for e in rec.get(key, []):
                    epochs.append(dict(seed=s, pair=pair, side=side, epoch=e["epoch"], lr=e["lr"], loss=e["loss"], ce=e["ce"],
                                       train_accuracy=e["train_accuracy"], check_accuracy=e.get("check_accuracy", float("nan")),
                                       check_ce=e.get("check_ce", float("nan"))))
    with open(args.out + ".csv", "w", newline="") as f:
        w = csv.DictWriter(f, ["seed", "pair", "side", "model"] + METRICS)
        w.writeheader()
        for r in rows:
            w.writerow({k: (("%.4f" % v) if isinstance(v, float) else v) for k, v in r.items()})
    with open(args.out + "-epochs.csv", "w", newline="") as f:
        w = csv.DictWriter(f, ["seed", "pair", "side", "epoch", "lr", "loss", "ce", "train_accuracy", "check_accuracy", "check_ce"])
        w.writeheader()
        for r in epochs:
            w.writerow({k: (("%.6g" % v) if isinstance(v, float) else v) for k, v in r.items()})

    show = ["id_acc", "train_acc", "val_fpr95"] + ["%s_fpr95" % f for f, _ in FAMS] + ["unseen_fpr95", "unseen_auroc"]
    md = []
    md.append("Per seed (FPR95 and AUROC in %%, energy T = 1; unseen = mean of %s):\n" % ", ".join(UNSEEN))
    md.append("| seed | pair | side | " + " | ".join(show) + " |")
    md.append("|---" * (3 + len(show)) + "|")
    for r in rows:
        md.append("| %d | %s | %s | " % (r["seed"], r["pair"], r["side"]) + " | ".join("%.2f" % r[k] for k in show) + " |")
    md.append("\nMean ± sd over seeds per side; paired difference peer − oodguard (same seed); verdict: "
              "agree when |mean difference| ≤ the larger seed-to-seed sd of the two sides:\n")
    md.append("| pair | metric | n | oodguard | peer | peer − oodguard | seed sd (max) | verdict |")
    md.append("|---|---|---|---|---|---|---|---|")
    verdicts = {}
    for pair, _, _, label in PAIRS:
        if pair.startswith("um-order"):
            continue
        got = [r for r in rows if r["pair"] == pair]
        ss = sorted({r["seed"] for r in got})
        if not ss:
            continue
        for k in show:
            a = [next(r[k] for r in got if r["seed"] == s and r["side"] == "oodguard") for s in ss]
            b = [next(r[k] for r in got if r["seed"] == s and r["side"] == "peer") for s in ss]
            ma, sa = mean_sd(a)
            mb, sb = mean_sd(b)
            md_, sd_ = mean_sd([y - x for x, y in zip(a, b)])
            spread = max(sa, sb) if len(ss) > 1 else float("nan")
            ok = "n/a" if math.isnan(spread) else ("agree" if abs(md_) <= spread else "DIFFER")
            verdicts.setdefault(pair, []).append((k, ok))
            md.append("| %s | %s | %d | %s | %s | %s | %.2f | %s |" % (label, k, len(ss), fmt(ma, sa), fmt(mb, sb), fmt(md_, sd_), spread, ok))
    md.append("")
    for pair, v in verdicts.items():
        bad = [k for k, ok in v if ok == "DIFFER"]
        if all(ok == "n/a" for _, ok in v):
            md.append("- %s: one seed, no seed-to-seed spread to judge against" % pair)
            continue

        md.append("- %s: %s" % (pair, "agree on every metric" if not bad else "differ on " + ", ".join(bad)))
    # data-order replicates: seed 1's start model, UM at the grid's c, three shuffling seeds a side
    rep = [r for r in rows if r["seed"] == 1 and r["pair"] in ORDER]
    if len({r["pair"] for r in rep}) > 1:
        md.append("\nData order alone (seed 1's start model, UM at the grid's c; shuffling seeds 1, 101, 102 on each side; "
                  "mean ± sd over the replicates):\n")
        md.append("| metric | oodguard | peer | peer − oodguard |")
        md.append("|---|---|---|---|")
        for k in show:
            a = [r[k] for r in rep if r["side"] == "oodguard"]
            b = [r[k] for r in rep if r["side"] == "peer"]
            ma, sa = mean_sd(a)
            mb, sb = mean_sd(b)
            md.append("| %s | %s (n=%d) | %s (n=%d) | %.2f |" % (k, fmt(ma, sa), len(a), fmt(mb, sb), len(b), mb - ma))
    with open(args.out + ".md", "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()

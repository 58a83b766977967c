#!/usr/bin/python3
"""Tables, choices and the per-epoch plot of docs/memorisation.md.

  summarise.py best SEED            print the best epoch (validation only) of a seed
  summarise.py pick SEED PREFIX     print the model named PREFIX* (e.g. naive-a) chosen on validation
  summarise.py report [OUTDIR]      write epochs.csv, models.csv, tables.md and the plot

Validation = ID: Fashion-MNIST train 55000..59999; OOD: MNIST test 0..4999 (energy, T=1).
Per-epoch validation numbers come from train.json (oodguard train runs the checkpoint through ONNX
Runtime on exactly that pair); other models' from seed-S/val/NAME/report.csv. Test numbers from
seed-S/eval/NAME/report.csv (ID: Fashion-MNIST t10k).
Best epoch: the lowest validation FPR95 among the epochs whose ID validation accuracy is at least
the final epoch's minus EPOCH_FLOOR points (ties: higher validation AUROC, then the later epoch).
Interpolation weight: the lowest validation FPR95 among the candidates whose ID validation
accuracy is at least the final epoch's minus MODEL_FLOOR points (ties: smaller alpha); alpha 0
(the final weights) is always a candidate.
"""
import csv, glob, json, math, os, sys

from summ_common import corr_cell, labels_of, mean_diff_lines, per_seed_lines

RUNS = os.environ.get("RUNS", "/root/oodguard-runs/fmnist-mem")
SEEDS = [int(s) for s in os.environ.get("SEEDS", "1,2,3").replace(",", " ").split()]
EPOCH_FLOOR = 2.0
MODEL_FLOOR = 1.5
FAMS = [("mnist-test", "mnist-test-5000"), ("cifar10", "cifar10/test.tar"), ("tin", "tin-test-5000"), ("noise", "noise-5000")]
UNSEEN = ["cifar10", "tin"]  # the natural-image families no choice saw; noise reported apart


def train_log(s):
    p = f"{RUNS}/seed-{s}/train/train.json"
    if not os.path.exists(p):
        return None
    return json.load(open(p))


def finished(s):
    w = f"{RUNS}/seed-{s}/train.wall"
    return os.path.exists(w) and "rc=0" in open(w).read()


def read_report(path):
    """{family: (fpr95, auroc)}, id_acc from an eval report.csv (energy rows)."""
    if not os.path.exists(path):
        return None, None
    out, acc = {}, None
    for r in csv.DictReader(open(path)):
        if not r["score"].startswith("energy"):
            continue
        acc = float(r["id_accuracy"])
        for fam, key in FAMS + [("mnist-val", "mnist-val-5000")]:
            if key in r["ood_set"]:
                out[fam] = (float(r["fpr95"]), float(r["auroc"]))
    return out, acc


def val_of(s, name):
    """(val_acc %, val fpr95 %, val auroc %) of a model by name."""
    if name.startswith("epoch-"):
        e = int(name[6:])
        r = train_log(s)["per_epoch"][e - 1]
        return 100 * r["val_acc"], 100 * r["fpr95"], 100 * r["auroc"]
    rep, acc = read_report(f"{RUNS}/seed-{s}/val/{name}/report.csv")
    if rep is None:
        return None
    return acc, rep["mnist-val"][0], rep["mnist-val"][1]


def best_epoch(s):
    runs = train_log(s)["per_epoch"]
    final = runs[-1]
    floor = 100 * final["val_acc"] - EPOCH_FLOOR
    cands = [r for r in runs if 100 * r["val_acc"] >= floor - 1e-9]
    b = min(cands, key=lambda r: (r["fpr95"], -r["auroc"], -r["epoch"]))
    return b["epoch"], floor


def pick(s, prefix):
    fin = val_of(s, "epoch-%03d" % len(train_log(s)["per_epoch"]))
    floor = fin[0] - MODEL_FLOOR
    cands = []
    for d in sorted(glob.glob(f"{RUNS}/seed-{s}/val/{prefix}*/report.csv")):
        name = d.split("/")[-2]
        v = val_of(s, name)
        alpha = float(name[len(prefix):])
        if v[0] >= floor - 1e-9:
            cands.append((v[1], alpha, name, v))
    if not cands:
        return None, floor, []
    cands.sort()
    return cands[0][2], floor, cands


def model_row(s, name):
    rep, acc = read_report(f"{RUNS}/seed-{s}/eval/{name}/report.csv")
    if rep is None:
        return None
    v = val_of(s, name)
    tr = None
    trp = f"{RUNS}/seed-{s}/trainacc/{name}/report.csv"
    if os.path.exists(trp):
        tr = read_report(trp)[1]
    row = {"seed": s, "model": name, "id_acc": acc, "train_acc": tr,
           "val_acc": v[0] if v else None, "val_fpr95": v[1] if v else None, "val_auroc": v[2] if v else None}
    for fam, _ in FAMS:
        row[f"{fam}_fpr95"], row[f"{fam}_auroc"] = rep[fam]
    row["unseen_fpr95"] = sum(rep[f][0] for f in UNSEEN) / len(UNSEEN)
    row["unseen_auroc"] = sum(rep[f][1] for f in UNSEEN) / len(UNSEEN)
    return row


def report(outdir):
    os.makedirs(outdir, exist_ok=True)
    # per-epoch CSV
    ep_rows = []
    curves = {}
    for s in SEEDS:
        log = train_log(s)
        if not log or not finished(s):
            continue
        for r in log["per_epoch"]:
            e = r["epoch"]
            name = "epoch-%03d" % e
            ep_rows.append(dict(seed=s, epoch=e, set="train(10k subset, train mode, running)", fpr95="", auroc="", id_acc=100 * r["train_acc"]))
            ep_rows.append(dict(seed=s, epoch=e, set="val: fmnist 55000.. vs mnist-val", fpr95=100 * r["fpr95"], auroc=100 * r["auroc"], id_acc=100 * r["val_acc"]))
            rep, acc = read_report(f"{RUNS}/seed-{s}/eval/{name}/report.csv")
            c = curves.setdefault(s, {})
            c.setdefault("train_acc", []).append(100 * r["train_acc"])
            c.setdefault("val_acc", []).append(100 * r["val_acc"])
            c.setdefault("mnist-val", []).append(100 * r["fpr95"])
            c.setdefault("loss", []).append(r["loss"])
            c.setdefault("test_acc", []).append(acc)
            for fam, _ in FAMS:
                c.setdefault(fam, []).append(rep[fam][0] if rep else None)
                if rep:
                    ep_rows.append(dict(seed=s, epoch=e, set=f"test: fmnist t10k vs {fam}", fpr95=rep[fam][0], auroc=rep[fam][1], id_acc=acc))
    with open(f"{outdir}/epochs.csv", "w", newline="") as f:
        w = csv.DictWriter(f, ["seed", "epoch", "set", "fpr95", "auroc", "id_acc"])
        w.writeheader()
        w.writerows(ep_rows)
    if curves:
        plot(curves, f"{outdir}/memorisation-curve.png")
    # models
    rows = []
    lines = []
    choice = {}
    for s in sorted(curves):
        n = len(train_log(s)["per_epoch"])
        b, floor = best_epoch(s)
        choice[s] = {"final": "epoch-%03d" % n, "best": "epoch-%03d" % b, "epoch_floor": floor}
        names = [("final epoch", "epoch-%03d" % n), ("best epoch (val)", "epoch-%03d" % b)]
        for label, prefix in [("interp, naive BN", "naive-a"), ("interp, BN re-estimated", "bn-a")]:
            nm, fl, _ = pick(s, prefix)
            if nm:
                names.append((label, nm))
                choice[s][prefix] = nm
        fin_val = val_of(s, "epoch-%03d" % n)
        for p in sorted(glob.glob(f"{RUNS}/seed-{s}/eval/um*/report.csv")):
            nm = os.path.basename(os.path.dirname(p))
            if "grid" not in nm:
                what = "control: one fixed constraint" if "-c0-" in nm else "one fixed constraint"
                names.append((nm + f" ({what})", nm))
                continue

            names.append((nm + " (grid winner)", nm))
            # keep-input rule: the winner only where it beats the final epoch on validation
            # (lower MNIST-val FPR95) within the accuracy floor; else the final epoch
            v = val_of(s, nm)
            keep = v is None or not (v[1] < fin_val[1] and v[0] >= fin_val[0] - MODEL_FLOOR - 1e-9)
            names.append((nm + " or input (val rule)", "epoch-%03d" % n if keep else nm))
            choice[s][nm + " rule"] = "input kept" if keep else nm
        for label, nm in names:
            r = model_row(s, nm)
            if r:
                r["label"] = label
                rows.append(r)
    keys = ["seed", "label", "model", "id_acc", "train_acc", "val_acc", "val_fpr95", "val_auroc"] + \
           [f"{f}_{m}" for f, _ in FAMS for m in ("fpr95", "auroc")] + ["unseen_fpr95", "unseen_auroc"]
    with open(f"{outdir}/models.csv", "w", newline="") as f:
        w = csv.DictWriter(f, keys)
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k) for k in keys})
    json.dump(choice, open(f"{outdir}/choices.json", "w"), indent=1)
    # markdown
    md = []
    md.append("Per seed (test sets; FPR95 and AUROC in %, energy T=1; val = ID-val acc / MNIST-val FPR95):\n")
    md.append("| seed | model | ID acc | train acc | val acc | val FPR95 | MNIST-test FPR95 / AUROC | CIFAR-10 FPR95 / AUROC | Tiny ImageNet FPR95 / AUROC | noise FPR95 / AUROC | unseen mean FPR95 / AUROC |")
    md.append("|---|---|---|---|---|---|---|---|---|---|---|")
    md += per_seed_lines(rows, FAMS)
    labels = labels_of(rows)
    base = {r["seed"]: r for r in rows if r["label"] == "final epoch"}
    md.append("\nMean ± sd over seeds, and the paired difference against the final epoch (same seed):\n")
    cols = ["id_acc", "train_acc", "mnist-test_fpr95", "cifar10_fpr95", "tin_fpr95", "noise_fpr95", "unseen_fpr95",
            "mnist-test_auroc", "cifar10_auroc", "tin_auroc", "noise_auroc", "unseen_auroc"]
    md += mean_diff_lines(rows, labels, base, cols)
    # recovery of the best epoch's gain on unseen families
    be = {r["seed"]: r for r in rows if r["label"] == "best epoch (val)"}
    for lab in labels:
        if lab in ("final epoch", "best epoch (val)"):
            continue
        rs = {r["seed"]: r for r in rows if r["label"] == lab}
        gain_b = [base[s]["unseen_fpr95"] - be[s]["unseen_fpr95"] for s in rs if s in base and s in be]
        gain_m = [base[s]["unseen_fpr95"] - rs[s]["unseen_fpr95"] for s in rs if s in base and s in be]
        if gain_b:
            gb, gm = sum(gain_b) / len(gain_b), sum(gain_m) / len(gain_m)
            rec = f"= {100*gm/gb:.0f}% of it recovered" if gb > 0 else "(the best epoch has no gain to recover: it is worse than the final epoch)"
            md.append(f"\n{lab}: unseen-mean FPR95 lowered by {gm:.2f} points against the final epoch (negative: raised); "
                      f"the best epoch lowered it by {gb:.2f} {rec} (means over {len(gain_b)} seeds)")
    # does the validation family predict the test families across epochs?
    import numpy as np
    md.append("\nPearson correlation, across the 60 epochs of each seed, between MNIST-val FPR95 and each test family's FPR95 (per seed; epochs 1-60 and 31-60):\n")
    md.append("| seed | epochs | MNIST-test | CIFAR-10 | Tiny ImageNet | noise |")
    md.append("|---|---|---|---|---|---|")
    for s_ in sorted(curves):
        c = curves[s_]
        for lo in (0, 30):
            v = np.array(c["mnist-val"][lo:], dtype=float)
            cells = []
            for fam, _ in FAMS:
                cells.append(corr_cell(v, c[fam][lo:]))
            md.append(f"| {s_} | {lo + 1}-{len(c['mnist-val'])} | " + " | ".join(cells) + " |")
    # the interpolation path per alpha (validation and test), for the record
    md.append("\nInterpolation path (per seed and alpha: ID-val acc / MNIST-val FPR95 | ID test acc / unseen-mean FPR95 / MNIST-test FPR95):\n")
    md.append("| seed | alpha | naive BN | BN re-estimated |")
    md.append("|---|---|---|---|")
    for s_ in sorted(curves):
        for a in [f"{x/10:.2f}" for x in range(11)]:
            cells = []
            for p in ("naive-a", "bn-a"):
                v = val_of(s_, p + a) if os.path.exists(f"{RUNS}/seed-{s_}/val/{p}{a}/report.csv") else None
                r = model_row(s_, p + a) if os.path.exists(f"{RUNS}/seed-{s_}/eval/{p}{a}/report.csv") else None
                cells.append((f"{v[0]:.2f} / {v[1]:.2f}" if v else "–") + " \\| " +
                             (f"{r['id_acc']:.2f} / {r['unseen_fpr95']:.2f} / {r['mnist-test_fpr95']:.2f}" if r else "–"))
            if any(c_ != "– \\| –" for c_ in cells):
                md.append(f"| {s_} | {a} | " + " | ".join(cells) + " |")
    open(f"{outdir}/tables.md", "w").write("\n".join(md) + "\n")
    print("\n".join(md))


def plot(curves, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    seeds = sorted(curves)
    n = min(len(curves[s]["val_acc"]) for s in seeds)
    ep = list(range(1, n + 1))

    def mean(key):
        out = []
        for i in range(n):
            xs = [curves[s][key][i] for s in seeds if curves[s][key][i] is not None]
            out.append(sum(xs) / len(xs) if xs else float("nan"))
        return out
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(8, 7.5), sharex=True)
    for key, lab, st in [("mnist-val", "MNIST val half (validation family)", "-"), ("mnist-test", "MNIST test half (same family)", "--"),
                         ("cifar10", "CIFAR-10 gray (unseen)", "-"), ("tin", "Tiny ImageNet gray (unseen)", "-"), ("noise", "uniform noise (unseen)", ":")]:
        a1.plot(ep, mean(key), st, label=lab)
    a1.set_ylabel("energy FPR95 (%), lower is better")
    a1.set_title(f"cnn28 w32, 10k Fashion-MNIST images, no augmentation; mean of {len(seeds)} seed(s) ({','.join(map(str, seeds))})", fontsize=9)
    a1.legend(fontsize=8)
    a1.grid(alpha=0.3)
    a2.plot(ep, mean("train_acc"), label="train acc (10k subset, train mode, during the epoch)")
    a2.plot(ep, mean("val_acc"), label="ID validation acc (Fashion-MNIST train 55000..59999)")
    a2.plot(ep, mean("test_acc"), label="ID test acc (Fashion-MNIST t10k)")
    a2.set_ylabel("accuracy (%)")
    a2.set_xlabel("epoch")
    a2.set_ylim(80, 100.5)
    a2.legend(fontsize=8)
    a2.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "best":
        print("epoch-%03d" % best_epoch(int(sys.argv[2]))[0])
    elif cmd == "pick":
        nm, fl, cands = pick(int(sys.argv[2]), sys.argv[3])
        print(nm)
    elif cmd == "report":
        report(sys.argv[2] if len(sys.argv) > 2 else f"{RUNS}/summary")

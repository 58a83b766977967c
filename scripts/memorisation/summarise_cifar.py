#!/usr/bin/python3
"""Tables, choices and the per-epoch plot of docs/memorisation-cifar.md (CIFAR-10 regime).

  summarise_cifar.py best SEED          the best epoch (validation only) of a seed
  summarise_cifar.py bestloss SEED      that epoch's logged training loss (train mode, running)
  summarise_cifar.py report [OUTDIR]    write epochs.csv, models.csv, choices.json, tables.md, the plot

Validation = ID: CIFAR-10 test images 0000..0499 of each class (cifar-val-5000); OOD: Tiny
ImageNet val_0..4999 (tin-val-5000); energy, T=1. Per-epoch validation numbers come from
train.json (oodguard train scores every checkpoint on 2,000 of each); the unleashed models and
the final epoch they start from are compared on seed-S/val/NAME/report.csv (oodguard eval,
-limit 2000 -seed 1 of the same pair). Test numbers from seed-S/eval/NAME/report.csv (ID:
cifar-test-5000; 2,000 of every set, -seed 1).
Best epoch: as `oodguard train` picks best.onnx: the lowest validation FPR95 among the epochs
whose ID validation accuracy is at least the final epoch's minus 2 points (ties: the final
epoch, else the earliest).
UM/UMAP choice: among the candidates of a mode and the final epoch itself ("no change"), the
lowest validation FPR95 among those whose validation accuracy is at least the final epoch's
minus 1.5 points (the issue's accuracy budget).
"""
import csv, glob, json, math, os, re, sys

from summ_common import corr_cell, labels_of, mean_diff_lines, per_seed_lines

RUNS = os.environ.get("RUNS", "/root/oodguard-runs/cifar-mem")
SEEDS = [int(s) for s in os.environ.get("SEEDS", "1,2,3").replace(",", " ").split()]
EPOCH_FLOOR = 2.0
MODEL_FLOOR = 1.5
# family: the ood_set name eval writes (matched exactly: "mnist/..." is a suffix of "fashion-mnist/...")
FAMS = [("tin-test", "data/tin-test-5000"), ("mnist", "mnist/t10k-images-idx3-ubyte.gz"),
        ("fmnist", "fashion-mnist/t10k-images-idx3-ubyte.gz"), ("noise", "data/noise-rgb-5000")]
FAM_LABEL = {"tin-test": "Tiny ImageNet test half", "mnist": "MNIST (RGB)", "fmnist": "Fashion-MNIST (RGB)", "noise": "uniform noise"}
UNSEEN = ["mnist", "fmnist", "noise"]  # families no choice saw; tin-test is the validation family's twin
MODES = ["um", "umap", "umap-kaiming"]


def train_log(s):
    p = f"{RUNS}/seed-{s}/train/train.json"
    return json.load(open(p)) if os.path.exists(p) else None


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
        for fam, key in FAMS + [("tin-val", "data/tin-val-5000")]:
            if r["ood_set"] == key:
                out[fam] = (float(r["fpr95"]), float(r["auroc"]))
    return out, acc


def val_eval(s, name):
    """(val acc, TIN-val FPR95, AUROC) from oodguard eval's validation run, or None."""
    rep, acc = read_report(f"{RUNS}/seed-{s}/val/{name}/report.csv")
    return None if rep is None else (acc, rep["tin-val"][0], rep["tin-val"][1])


def val_train(s, name):
    """(val acc, TIN-val FPR95, AUROC) of an epoch from train.json."""
    r = train_log(s)["per_epoch"][int(name[6:]) - 1]
    return 100 * r["val_acc"], 100 * r["fpr95"], 100 * r["auroc"]


def best_epoch(s):
    runs = train_log(s)["per_epoch"]
    final = runs[-1]
    best = len(runs) - 1
    for i, e in enumerate(runs):
        if e["val_acc"] < final["val_acc"] - EPOCH_FLOOR / 100:
            continue
        if e["fpr95"] < runs[best]["fpr95"]:
            best = i
    return runs[best]["epoch"], 100 * final["val_acc"] - EPOCH_FLOOR


def model_row(s, name, path_name=None):
    """Test numbers of a model (name = its eval folder)."""
    rep, acc = read_report(f"{RUNS}/seed-{s}/eval/{name}/report.csv")
    if rep is None:
        return None
    v = val_eval(s, name) or (val_train(s, name) if name.startswith("epoch-") else None)
    tr = read_report(f"{RUNS}/seed-{s}/trainacc/{name}/report.csv")[1]
    row = {"seed": s, "model": name, "id_acc": acc, "train_acc": tr,
           "val_acc": v[0] if v else None, "val_fpr95": v[1] if v else None, "val_auroc": v[2] if v else None}
    for fam, _ in FAMS:
        row[f"{fam}_fpr95"], row[f"{fam}_auroc"] = rep[fam]
    row["unseen_fpr95"] = sum(rep[f][0] for f in UNSEEN) / len(UNSEEN)
    row["unseen_auroc"] = sum(rep[f][1] for f in UNSEEN) / len(UNSEEN)
    row["digits_fpr95"] = (rep["mnist"][0] + rep["fmnist"][0]) / 2  # without noise (pinned at 100)
    row["digits_auroc"] = (rep["mnist"][1] + rep["fmnist"][1]) / 2
    return row


def um_candidates(s, mode, epochs=None):
    """The evaluated unleash runs of a mode: MODE-CAND-eN (CAND: estimate, bestloss or a number),
    only those of N = epochs when given."""
    pat = re.compile("^" + re.escape(mode) + r"-(estimate|bestloss|[0-9.]+)-e" + (str(epochs) if epochs else "[0-9]+") + "$")
    return sorted(n for n in (os.path.basename(os.path.dirname(p)) for p in glob.glob(f"{RUNS}/seed-{s}/eval/{mode}-*/report.csv"))
                  if pat.match(n))


def lengths(names):
    """The run lengths N of MODE-CAND-eN names, ascending."""
    return sorted({int(n.rsplit("-e", 1)[1]) for n in names})


def choose(s, mode, final, epochs=None):
    """The model chosen on validation among final and the mode's candidates (of one length when
    epochs is given), and the table."""
    fv = val_eval(s, final)
    if fv is None:
        return None, []
    cands = [(final, fv)]
    for nm in um_candidates(s, mode, epochs):
        v = val_eval(s, nm)
        if v is not None:
            cands.append((nm, v))
    ok = [(v[1], i, nm) for i, (nm, v) in enumerate(cands) if v[0] >= fv[0] - MODEL_FLOOR - 1e-9]
    return min(ok)[2], cands


def run_info(s, mode, nm):
    """constraint, wall seconds and the last epoch's check accuracy/CE of an unleash run."""
    p = f"{RUNS}/seed-{s}/{mode}/{nm}.run.json"
    if not os.path.exists(p):
        return {}
    r = json.load(open(p))
    out = {"seconds": r.get("seconds")}
    for k in ("constraint", "constraint_value"):
        if k in r:
            out["constraint"] = r[k]
    return out


def report(outdir):
    os.makedirs(outdir, exist_ok=True)
    ep_rows, curves = [], {}
    for s in SEEDS:
        log = train_log(s)
        if not log:
            continue
        for r in log["per_epoch"]:
            e = r["epoch"]
            name = "epoch-%03d" % e
            rep, acc = read_report(f"{RUNS}/seed-{s}/eval/{name}/report.csv")
            ep_rows.append(dict(seed=s, epoch=e, set="train (5k subset, train mode, running)", fpr95="", auroc="", id_acc=100 * r["train_acc"], loss=r["loss"]))
            ep_rows.append(dict(seed=s, epoch=e, set="val: cifar-val vs tin-val (2000 each)", fpr95=100 * r["fpr95"], auroc=100 * r["auroc"], id_acc=100 * r["val_acc"], loss=""))
            c = curves.setdefault(s, {})
            c.setdefault("train_acc", []).append(100 * r["train_acc"])
            c.setdefault("val_acc", []).append(100 * r["val_acc"])
            c.setdefault("tin-val", []).append(100 * r["fpr95"])
            c.setdefault("tin-val-auroc", []).append(100 * r["auroc"])
            c.setdefault("test_acc", []).append(acc)
            for fam, _ in FAMS:
                c.setdefault(fam, []).append(rep[fam][0] if rep else None)
                c.setdefault(fam + "-auroc", []).append(rep[fam][1] if rep else None)
                if rep:
                    ep_rows.append(dict(seed=s, epoch=e, set=f"test: cifar-test vs {fam} (2000 each)", fpr95=rep[fam][0], auroc=rep[fam][1], id_acc=acc, loss=""))
            c.setdefault("unseen", []).append(sum(rep[f][0] for f in UNSEEN) / len(UNSEEN) if rep else None)
    with open(f"{outdir}/epochs.csv", "w", newline="") as f:
        w = csv.DictWriter(f, ["seed", "epoch", "set", "fpr95", "auroc", "id_acc", "loss"])
        w.writeheader()
        w.writerows(ep_rows)
    done = {s: c for s, c in curves.items() if finished(s)}  # the plot: seeds whose training ended
    if done:
        plot(done, f"{outdir}/memorisation-cifar-curve.png")
    rows, choice = [], {}
    for s in sorted(curves):
        if not finished(s):
            continue
        n = len(train_log(s)["per_epoch"])
        final = "epoch-%03d" % n
        b, floor = best_epoch(s)
        ch = choice[s] = {"final": final, "best": "epoch-%03d" % b, "epoch_floor": floor,
                          "best_loss": train_log(s)["per_epoch"][b - 1]["loss"], "final_loss": train_log(s)["per_epoch"][-1]["loss"]}
        names = [("final epoch", final), ("best epoch (val)", "epoch-%03d" % b)]
        for mode in MODES:
            cands = um_candidates(s, mode)
            for nm in cands:
                names.append((f"{mode} c={nm[len(mode)+1:]}", nm))
                ch[nm] = run_info(s, mode, nm)
            for n_ep in lengths(cands):  # one choice per run length: candidates of equal cost
                pick, table = choose(s, mode, final, n_ep)
                if pick:
                    names.append((f"{mode} (e{n_ep}): chosen on val (or no change)", pick))
                    ch[f"{mode} e{n_ep} chosen"] = pick
                    ch[f"{mode} e{n_ep} val"] = {nm: v for nm, v in table}

        for label, nm in names:
            r = model_row(s, nm)
            if r:
                r["label"] = label
                rows.append(r)
    keys = ["seed", "label", "model", "id_acc", "train_acc", "val_acc", "val_fpr95", "val_auroc"] + \
           [f"{f}_{m}" for f, _ in FAMS for m in ("fpr95", "auroc")] + ["unseen_fpr95", "unseen_auroc", "digits_fpr95", "digits_auroc"]
    with open(f"{outdir}/models.csv", "w", newline="") as f:
        w = csv.DictWriter(f, keys)
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k) for k in keys})
    json.dump(choice, open(f"{outdir}/choices.json", "w"), indent=1)
    md = ["Per seed (test sets, 2,000 images each; FPR95 / AUROC in %, energy T=1; val = ID-val acc and TIN-val FPR95):\n",
          "| seed | model | ID acc | train acc | val acc | TIN-val FPR95 | " + " | ".join(f"{FAM_LABEL[f]} FPR95 / AUROC" for f, _ in FAMS) + " | unseen mean FPR95 / AUROC |",
          "|---|---|---|---|---|---|" + "---|" * (len(FAMS) + 1)]
    md += per_seed_lines(rows, FAMS)
    labels = labels_of(rows)
    base = {r["seed"]: r for r in rows if r["label"] == "final epoch"}
    md.append("\nMean ± sd over seeds, and the paired difference against the final epoch (same seed; FPR95: negative is better, AUROC: positive is better):\n")
    cols = ["id_acc", "train_acc", "val_fpr95"] + [f"{f}_fpr95" for f, _ in FAMS] + ["unseen_fpr95", "digits_fpr95"] + [f"{f}_auroc" for f, _ in FAMS] + ["unseen_auroc", "digits_auroc"]
    md += mean_diff_lines(rows, labels, base, cols)
    be = {r["seed"]: r for r in rows if r["label"] == "best epoch (val)"}
    for lab in labels:
        if lab in ("final epoch", "best epoch (val)"):
            continue
        rs = {r["seed"]: r for r in rows if r["label"] == lab}
        ss = [s for s in rs if s in base and s in be]
        if ss:
            gb = sum(base[s]["unseen_fpr95"] - be[s]["unseen_fpr95"] for s in ss) / len(ss)
            gm = sum(base[s]["unseen_fpr95"] - rs[s]["unseen_fpr95"] for s in ss) / len(ss)
            da = sum(rs[s]["id_acc"] - base[s]["id_acc"] for s in ss) / len(ss)
            rec = (f"= {100*gm/gb:.0f}% of it recovered" if gb >= 1 else
                   "(under 1 point: no gain to speak of, the share recovered means nothing)" if gb > 0 else "(the best epoch has no gain to recover)")
            md.append(f"\n{lab}: unseen-mean FPR95 lowered by {gm:.2f} points against the final epoch (negative: raised), ID accuracy {da:+.2f}; "
                      f"the best epoch lowered it by {gb:.2f} {rec} (means over {len(ss)} seeds)")
    md.append("\nFor information only (chosen on the TEST sets, never used for any choice): per seed, the epoch with the lowest unseen-mean FPR95, "
              "among all epochs and among those whose test accuracy is within 2 points of the final epoch's; and how many epochs beat the final by more than 3 points:\n")
    md.append("| seed | final unseen FPR95 | best epoch, any accuracy (FPR95, test acc) | best epoch within 2 points (FPR95, test acc) | epochs > 3 points better (any / within 2 points) |")
    md.append("|---|---|---|---|---|")
    for s_ in sorted(curves):
        c = curves[s_]
        if c["unseen"][-1] is None:
            continue
        fin, facc = c["unseen"][-1], c["test_acc"][-1]
        eps = [(u, i + 1, a) for i, (u, a) in enumerate(zip(c["unseen"], c["test_acc"])) if u is not None]
        near = [e for e in eps if e[2] >= facc - 2]
        ba, bn = min(eps), min(near)
        md.append(f"| {s_} | {fin:.2f} | {ba[1]} ({ba[0]:.2f}, {ba[2]:.2f}) | {bn[1]} ({bn[0]:.2f}, {bn[2]:.2f}) | "
                  f"{sum(1 for e in eps if e[0] < fin - 3)} / {sum(1 for e in near if e[0] < fin - 3)} |")
    import numpy as np
    md.append("\nPearson correlation across epochs (per seed) between TIN-val FPR95 (train.json) and each test family's FPR95:\n")
    md.append("| seed | epochs | " + " | ".join(FAM_LABEL[f] for f, _ in FAMS) + " | unseen mean |")
    md.append("|---|---|" + "---|" * (len(FAMS) + 1))
    for s_ in sorted(curves):
        c = curves[s_]
        n = len(c["tin-val"])
        for lo in (0, n // 2):
            v = np.array(c["tin-val"][lo:], dtype=float)
            cells = []
            for fam in [f for f, _ in FAMS] + ["unseen"]:
                cells.append(corr_cell(v, c[fam][lo:]))
            md.append(f"| {s_} | {lo + 1}-{n} | " + " | ".join(cells) + " |")
    open(f"{outdir}/tables.md", "w").write("\n".join(md) + "\n")
    print("\n".join(md))


def plot(curves, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    seeds = sorted(curves)
    n = min(len(curves[s]["val_acc"]) for s in seeds)

    def mean(key):
        """the epochs every seed has a value of key (test sets: every EVERY-th epoch), and the mean"""
        xs, ys = [], []
        for i in range(n):
            v = [curves[s][key][i] for s in seeds]
            if all(x is not None for x in v):
                xs.append(i + 1)
                ys.append(sum(v) / len(v))
        return xs, ys
    log = train_log(seeds[0]) or {}
    what = "%s, %s CIFAR-10 images" % (log.get("arch", "?"), format(log.get("train", {}).get("count", 0), ","))
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(8, 7.5), sharex=True)
    for key, lab, st in [("tin-val", "Tiny ImageNet val half (validation family)", "-"), ("tin-test", "Tiny ImageNet test half (same family)", "--"),
                         ("mnist", "MNIST RGB (unseen)", "-"), ("fmnist", "Fashion-MNIST RGB (unseen)", "-"), ("noise", "uniform noise (unseen)", ":"),
                         ("unseen", "mean of the unseen three", "-")]:
        xs, ys = mean(key)
        a1.plot(xs, ys, st, label=lab, lw=2.2 if key == "unseen" else 1.2, color="k" if key == "unseen" else None,
                marker="." if len(xs) < n / 2 else None)
    a1.set_ylabel("energy FPR95 (%), lower is better")
    a1.set_title(f"{what}, no augmentation; mean of {len(seeds)} seed(s) ({','.join(map(str, seeds))})", fontsize=9)
    a1.legend(fontsize=8)
    a1.grid(alpha=0.3)
    for key, lab in [("train_acc", "train acc (the training subset, train mode, during the epoch)"),
                     ("val_acc", "ID validation acc (cifar-val-5000, as train scores it)"),
                     ("test_acc", "ID test acc (cifar-test-5000, the evaluated epochs)")]:
        xs, ys = mean(key)
        a2.plot(xs, ys, label=lab, marker="." if len(xs) < n / 2 else None)
    a2.set_ylabel("accuracy (%)")
    a2.set_xlabel("epoch")
    a2.legend(fontsize=8)
    a2.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "best":
        print("epoch-%03d" % best_epoch(int(sys.argv[2]))[0])
    elif cmd == "bestloss":
        s = int(sys.argv[2])
        print("%.6g" % train_log(s)["per_epoch"][best_epoch(s)[0] - 1]["loss"])
    elif cmd == "report":
        report(sys.argv[2] if len(sys.argv) > 2 else f"{RUNS}/summary")

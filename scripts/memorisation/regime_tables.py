#!/usr/bin/python3
"""The memorisation regime's summary tables for docs/reproduce.md and the README (issue #14).

Reads the committed per-model CSVs that summarise.py / summarise_cifar.py / scripts/peer/compare.py
wrote (docs/memorisation-models.csv, docs/memorisation-cifar-models.csv, docs/peer-fmnist.csv,
docs/peer-cifar.csv) and prints markdown: per dataset, mean ± sd over seeds of ID accuracy,
training accuracy, FPR95 / AUROC per OOD family and the mean over the families no choice saw,
for the final epoch, the best epoch chosen on validation, and UM / UMAP (each as chosen on
validation with "no change" a candidate, and at the official constraint estimate); then the peer
comparison side by side (oodguard vs the PyTorch peer from the same weights, data and recipe).

Usage: regime_tables.py [-docs DIR] [-write FILE...]
  prints the tables; with -write, replaces the text between the lines "<!-- regime-tables -->" and
  "<!-- /regime-tables -->" of each FILE with them (docs/reproduce.md), and between
  "<!-- regime-compact -->" and "<!-- /regime-compact -->" with the compact table (README.md).
  -docs: the folder of the CSVs (default: the docs/ folder of this checkout)
"""
import argparse
import csv
import os
import re
import statistics

DOCS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs")

# dataset: (models CSV, families [(column, label)], unseen label, rows [(label in CSV, shown as)])
SETS = {
    "Fashion-MNIST (cnn28, 10k images, 60 epochs; validation family MNIST)": (
        "memorisation-models.csv",
        [("mnist-test", "MNIST (val. twin)"), ("cifar10", "CIFAR-10"), ("tin", "Tiny ImageNet"), ("noise", "noise")],
        "unseen: CIFAR-10, Tiny ImageNet",
        [("final epoch", "final epoch"), ("best epoch (val)", "best epoch (val)"),
         ("um-grid-e10 or input (val rule)", "UM, 10 ep., chosen on val"),
         ("umap-grid-e10 or input (val rule)", "UMAP, 10 ep., chosen on val"),
         ("um-grid-e10 (grid winner)", "UM grid winner, 10 ep."),
         ("umap-grid-e10 (grid winner)", "UMAP grid winner, 10 ep."),
         ("interp, naive BN", "interpolation final↔best (val)"),
         ("um-cestimate-e100 (one fixed constraint)", "UM at the official estimate, 100 ep. (official recipe)"),
         ("umap-kaiming-cestimate-e100 (one fixed constraint)", "UMAP official init at the estimate, 100 ep. (official recipe)"),
         ("umap-cestimate-e100 (one fixed constraint)", "UMAP magnitude init at the estimate, 100 ep."),
         ("um-c0-e100 (control: one fixed constraint)", "UM at c = 0 (control: no flooding), 100 ep.")]),
    "CIFAR-10 (ResNet-8, 5k images, 80 epochs; validation family Tiny ImageNet)": (
        "memorisation-cifar-models.csv",
        [("tin-test", "Tiny ImageNet (val. twin)"), ("mnist", "MNIST"), ("fmnist", "Fashion-MNIST"), ("noise", "noise")],
        "unseen: MNIST, Fashion-MNIST, noise",
        [("final epoch", "final epoch"), ("best epoch (val)", "best epoch (val)"),
         ("um (e10): chosen on val (or no change)", "UM, 10 ep., chosen on val"),
         ("umap (e10): chosen on val (or no change)", "UMAP, 10 ep., chosen on val"),
         ("umap-kaiming (e10): chosen on val (or no change)", "UMAP official init, 10 ep., chosen on val"),
         ("um c=estimate-e10", "UM at the official estimate, 10 ep."),
         ("um c=estimate-e100", "UM at the official estimate, 100 ep. (official recipe)"),
         ("umap-kaiming c=estimate-e100", "UMAP official init at the estimate, 100 ep. (official recipe)"),
         ("umap c=estimate-e100", "UMAP magnitude init at the estimate, 100 ep."),
         ("um (e100): chosen on val (or no change)", "UM, 100 ep., chosen on val"),
         ("umap-kaiming (e100): chosen on val (or no change)", "UMAP official init, 100 ep., chosen on val")]),
}


def read(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def ms(xs, digits=1):
    if not xs:
        return "–"
    if len(xs) == 1:
        return f"{xs[0]:.{digits}f}"
    return f"{statistics.mean(xs):.{digits}f} ± {statistics.stdev(xs):.{digits}f}"


def model_tables():
    out = []
    for title, (name, fams, unseen, rows) in SETS.items():
        data = read(os.path.join(DOCS, name))
        seeds_all = sorted({r["seed"] for r in data})
        out.append(f"**{title}**, {len(seeds_all)} seeds, mean ± sd; FPR95 / AUROC in % (energy score); "
                   f"Δ = paired change of the unseen-mean FPR95 against the final epoch (negative is better):\n")
        out.append("| model | n | ID acc | train acc | " + " | ".join(f"{lab} FPR95 / AUROC" for _, lab in fams) +
                   f" | {unseen}: FPR95 / AUROC | Δ unseen FPR95 |")
        out.append("|---|---|---|---|" + "---|" * (len(fams) + 2))
        base = {r["seed"]: float(r["unseen_fpr95"]) for r in data if r["label"] == "final epoch"}
        for label, shown in rows:
            rs = [r for r in data if r["label"] == label]
            if not rs:
                continue
            col = lambda k: [float(r[k]) for r in rs if r[k] not in ("", "nan", "None")]
            cells = [ms(col(f"{f}_fpr95")) + " / " + ms(col(f"{f}_auroc")) for f, _ in fams]
            d = [float(r["unseen_fpr95"]) - base[r["seed"]] for r in rs if r["seed"] in base]
            delta = "–" if label == "final epoch" else ms(d)
            out.append(f"| {shown} | {len(rs)} | {ms(col('id_acc'))} | {ms(col('train_acc'))} | " + " | ".join(cells) +
                       f" | {ms(col('unseen_fpr95'))} / {ms(col('unseen_auroc'))} | {delta} |")
        out.append("")
    return out


def peer_table():
    out = ["**Peer check** (oodguard vs the PyTorch peer `scripts/peer/um_peer.py` from the same start weights, "
           "training images and recipe, each side with its own data order unless said; mean ± sd over seeds, unseen-mean FPR95 / AUROC):\n",
           "| dataset | recipe | seeds | ID acc oodguard / peer | unseen FPR95 oodguard / peer | unseen AUROC oodguard / peer |",
           "|---|---|---|---|---|---|"]
    for ds, name, pairs in (("Fashion-MNIST", "peer-fmnist.csv", [("um", "UM, grid's c, 10 ep."), ("umap", "UMAP magnitude, grid's c, 10 ep."), ("um-c0", "UM at c = 0, 10 ep."), ("um-same-order", "UM, grid's c, 10 ep., the peer in oodguard's data order"),
                                                            ("um-estimate-e100", "UM at the official estimate, 100 ep., the peer in oodguard's data order")]),
                            ("CIFAR-10", "peer-cifar.csv", [("um", "UM, c = best epoch's loss, 10 ep."), ("umap", "UMAP magnitude, c = best loss, 10 ep."), ("um-same-order", "UM, c = best loss, 10 ep., the peer in oodguard's data order"),
                                                            ("um-estimate-e100", "UM at the official estimate, 100 ep.")])):
        p = os.path.join(DOCS, name)
        if not os.path.exists(p):
            continue
        data = read(p)
        for pair, shown in pairs:
            o = [r for r in data if r["pair"] == pair and r["side"] == "oodguard"]
            q = [r for r in data if r["pair"] == pair and r["side"] == "peer"]
            if not o or not q:
                continue
            f = lambda rs, k: ms([float(r[k]) for r in rs], 2)
            seeds = ",".join(sorted({r["seed"] for r in o}))
            out.append(f"| {ds} | {shown} | {seeds} | {f(o, 'id_acc')} / {f(q, 'id_acc')} | {f(o, 'unseen_fpr95')} / {f(q, 'unseen_fpr95')} | "
                       f"{f(o, 'unseen_auroc')} / {f(q, 'unseen_auroc')} |")
    out.append("")
    return out


# The README's compact table: integer FPR95 / AUROC per family and the unseen mean, the rows a
# user chooses between (no method, the method as validation picks it, the official recipe).
COMPACT = {
    "Fashion-MNIST, cnn28": ["final epoch", "best epoch (val)", "um-grid-e10 or input (val rule)", "umap-grid-e10 or input (val rule)",
                             "um-cestimate-e100 (one fixed constraint)", "umap-kaiming-cestimate-e100 (one fixed constraint)"],
    "CIFAR-10, ResNet-8": ["final epoch", "best epoch (val)", "um (e10): chosen on val (or no change)", "umap (e10): chosen on val (or no change)",
                           "um c=estimate-e100", "umap-kaiming c=estimate-e100"],
}
SHORT = {"final epoch": "final epoch (no method)", "best epoch (val)": "best epoch, chosen on val",
         "um-grid-e10 or input (val rule)": "UM (10 ep.), chosen on val", "umap-grid-e10 or input (val rule)": "UMAP (10 ep.), chosen on val",
         "um (e10): chosen on val (or no change)": "UM (10 ep.), chosen on val", "umap (e10): chosen on val (or no change)": "UMAP (10 ep.), chosen on val",
         "um c=estimate-e100": "UM, official recipe (100 ep.)", "umap-kaiming c=estimate-e100": "UMAP, official recipe (100 ep.)",
         "um-cestimate-e100 (one fixed constraint)": "UM, official recipe (100 ep.)",
         "umap-kaiming-cestimate-e100 (one fixed constraint)": "UMAP, official recipe (100 ep.)"}


def compact_table():
    def mi(xs):
        return f"{statistics.mean(xs):.0f} ± {statistics.stdev(xs):.0f}" if len(xs) > 1 else f"{xs[0]:.0f}"

    def m1(xs):
        return f"{statistics.mean(xs):.1f} ± {statistics.stdev(xs):.1f}" if len(xs) > 1 else f"{xs[0]:.1f}"
    out = ["| model | ID acc | train acc | OOD 1 | OOD 2 | OOD 3 | OOD 4 | unseen mean |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for (title, (name, fams, unseen, _)), (ctitle, labels) in zip(SETS.items(), COMPACT.items()):
        data = read(os.path.join(DOCS, name))
        heads = [f"**{lab}**" + (" (val family)" if "val. twin" in lab else "") for _, lab in fams]
        heads = [h.replace(" (val. twin)**", "**") for h in heads]
        out.append(f"| **{ctitle}** | | | " + " | ".join(heads) + " | |")
        for label in labels:
            rs = [r for r in data if r["label"] == label]
            if not rs:
                continue
            col = lambda k: [float(r[k]) for r in rs]
            cells = [mi(col(f"{f}_fpr95")) + " / " + mi(col(f"{f}_auroc")) for f, _ in fams]
            n = "" if len(rs) == 3 else f" ({len(rs)} seed{'s' if len(rs) > 1 else ''})"
            out.append(f"| {SHORT[label]}{n} | {m1(col('id_acc'))} | {m1(col('train_acc'))} | " + " | ".join(cells) +
                       f" | {mi(col('unseen_fpr95'))} / {mi(col('unseen_auroc'))} |")
    return out


def replace_block(path, tag, lines):
    text = open(path).read()
    pat = re.compile(r"(<!-- " + tag + r" -->\n).*?(<!-- /" + tag + r" -->)", re.S)
    if not pat.search(text):
        return False
    text = pat.sub(lambda m: m.group(1) + "\n".join(lines) + "\n" + m.group(2), text)
    tmp = path + ".tmp"
    open(tmp, "w").write(text)
    os.replace(tmp, path)
    return True


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("-docs", default=DOCS)
    ap.add_argument("-write", nargs="*", default=[])
    a = ap.parse_args()
    DOCS = a.docs
    full, comp = model_tables() + peer_table(), compact_table()
    if not a.write:
        print("\n".join(full))
        print("\n".join(comp))
    for path in a.write:
        hit = [replace_block(path, "regime-tables", full), replace_block(path, "regime-compact", comp)]
        if not any(hit):
            raise SystemExit(f"{path}: no <!-- regime-tables --> or <!-- regime-compact --> block")
        print("wrote", path)

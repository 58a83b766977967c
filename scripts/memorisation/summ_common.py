"""Table pieces shared by summarise.py (Fashion-MNIST) and summarise_cifar.py (CIFAR-10):
mean and sd over seeds, the per-seed model rows, the mean/paired-difference table and a
correlation cell. Imported by both (they run from this folder, so it is on sys.path)."""
import math


def mean_sd(xs):
    xs = [x for x in xs if x is not None and not (isinstance(x, float) and math.isnan(x))]
    if not xs:
        return float("nan"), float("nan"), 0
    m = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else float("nan")
    return m, sd, len(xs)


def fmt(m, sd, p=1):
    if math.isnan(m):
        return "–"
    return f"{m:.{p}f}" if math.isnan(sd) else f"{m:.{p}f} ± {sd:.{p}f}"


def per_seed_lines(rows, fams):
    """The per-seed table's rows: accuracies, validation numbers and each family's FPR95 / AUROC."""
    f2 = lambda x: "–" if x is None else f"{x:.2f}"
    return [f"| {r['seed']} | {r['label']} ({r['model']}) | {f2(r['id_acc'])} | {f2(r['train_acc'])} | {f2(r['val_acc'])} | {f2(r['val_fpr95'])} | "
            + " | ".join(f"{r[f+'_fpr95']:.2f} / {r[f+'_auroc']:.2f}" for f, _ in fams)
            + f" | {r['unseen_fpr95']:.2f} / {r['unseen_auroc']:.2f} |" for r in rows]


def labels_of(rows):
    """The rows' labels in their first order."""
    labels = []
    for r in rows:
        if r["label"] not in labels:
            labels.append(r["label"])
    return labels


def mean_diff_lines(rows, labels, base, cols):
    """Mean ± sd over seeds of each column per label, and under it the paired difference against
    base (the final epoch's row of the same seed)."""
    md = ["| model | n | " + " | ".join(cols) + " |", "|---|---|" + "---|" * len(cols)]
    for lab in labels:
        rs = [r for r in rows if r["label"] == lab]
        md.append(f"| {lab} | {len(rs)} | " + " | ".join(fmt(*mean_sd([r[c] for r in rs])[:2]) for c in cols) + " |")
        if lab != "final epoch":
            ds = [(r, base[r["seed"]]) for r in rs if r["seed"] in base]
            md.append(f"| Δ {lab} − final | {len(ds)} | " + " | ".join(
                fmt(*mean_sd([(r[c] - b[c]) if r[c] is not None and b[c] is not None else None for r, b in ds])[:2]) for c in cols) + " |")
    return md


def corr_cell(v, t):
    """Pearson correlation of the array v and the list t (t's None skipped) as a cell, "–" if
    undefined."""
    import numpy as np
    t = np.array([np.nan if x is None else x for x in t], dtype=float)
    ok = ~np.isnan(t)
    return f"{np.corrcoef(v[ok], t[ok])[0, 1]:.2f}" if ok.sum() > 2 and np.std(t[ok]) > 0 else "–"

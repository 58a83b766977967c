"""The compact method x OOD family table of the README, from aggregate.py's JSON files (#17).

    python3 readme_table.py fmnist-mem.json cifar-mem.json

One block per dataset: a row per method (its best validation setting per seed) and one for the
detector oodguard's rule chose in each seed; cells FPR95 / AUROC, mean ± sd over the seeds;
the validation family's own test split first, then the families no choice saw.
"""
import json, math, sys

ROWS = ["energy", "msp", "react", "ash-s", "vim", "mds", "knn"]
NAMES = {"energy": "energy", "msp": "MSP", "react": "ReAct", "ash-s": "ASH-S", "vim": "ViM", "mds": "Mahalanobis", "knn": "KNN"}
TITLES = {"fmnist-mem": "Fashion-MNIST, cnn28", "cifar-mem": "CIFAR-10, ResNet-8"}


def ms(xs, scale=100):
    xs = [scale * x for x in xs]
    m = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0
    return m, sd


def cell(fpr, auroc):
    (f, fs), (a, as_) = ms(fpr), ms(auroc)
    return "%.0f ± %.0f / %.0f ± %.0f" % (f, fs, a, as_)


blocks = [json.load(open(p)) for p in sys.argv[1:]]
width = max(len(b["sets"]) - 1 for b in blocks)
print("| method | ID acc | " + " | ".join("OOD set %d" % (i + 1) for i in range(width)) + " |")
print("|---|---:|" + "---:|" * width)
for b in blocks:
    sets = b["sets"][1:]  # the validation split itself is left out
    n = len(b["runs"])
    print("| **%s**, %d seeds | | %s |" % (TITLES.get(b["name"], b["name"]), n,
          " | ".join("**%s**%s" % (s, "" if s in b["unseen"] else " (val family)") for s in sets)))
    meth = {m["method"]: m for m in b["methods"]}
    for r in ROWS:
        m = meth[r]
        a, asd = ms(m["id_test_accuracy"])
        print("| %s%s | %.1f ± %.1f | %s |" % (NAMES[r], "" if m["eligible_all"] else " ¹", a, asd,
              " | ".join(cell(m["sets"][s]["fpr95"], m["sets"][s]["auroc"]) for s in sets)))
    rule = b["rules"][0]
    print("| chosen (%s) | | %s |" % (", ".join(sorted(set(c.split("(")[0] for c in rule["chosen"]))),
          " | ".join(cell(rule["sets"][s]["fpr95"], rule["sets"][s]["auroc"]) for s in sets)))

"""Does the unleashed model help `oodguard choose`? Compares, per seed, the detector chosen on
the memorised Fashion-MNIST cnn28 alone (fmnist-mem-seed-S.csv) with the one chosen when the
official-recipe UM model of the same seed is added as -extra (fmnist-um-extra-seed-S.csv).
"Unseen" = the mean FPR95 over Tiny ImageNet, noise and CIFAR-10 (MNIST is the validation
family). Usage: python3 um_extra.py [DIR]   (DIR: where the CSVs are; default: this folder)."""
import csv
import os
import statistics as st
import sys

D = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
VAL = "mnist-val-5000/t10k-images-idx3-ubyte.gz"
UNSEEN = ["data/tin-test-5000", "noise-5000/noise-images-idx3-ubyte.gz", "cifar10/test.tar#test"]
UM = "um-cestimate-e100.onnx: "


def load(path):
    cands = {}
    for r in csv.DictReader(open(path)):
        c = cands.setdefault(r["candidate"], {"acc": float(r["id_accuracy"]), "eligible": r["eligible"] == "true",
                                               "chosen": r["chosen"] == "true", "test_acc": float(r["id_test_accuracy"])})
        c[r["ood_set"]] = float(r["fpr95"])
    return cands


def unseen(c):
    return st.mean(c[s] for s in UNSEEN)


def ms(xs):
    return f"{st.mean(xs):+.1f} ± {st.stdev(xs):.1f}"


print("| seed | chosen, model alone (val / unseen FPR95) | chosen with the UM model as -extra (val / unseen) | UM model's ID-val acc vs model's | UM energy (val / unseen) | UM's best-val candidate (val / unseen) |")
print("|---|---|---|---|---|---|")
diff, gap = [], []
for s in (1, 2, 3):
    a = load(f"{D}/fmnist-mem-seed-{s}.csv")
    b = load(f"{D}/fmnist-um-extra-seed-{s}.csv")
    ca = next(k for k, v in a.items() if v["chosen"])
    cb = next(k for k, v in b.items() if v["chosen"])
    um = {k: v for k, v in b.items() if k.startswith(UM)}
    e = um[UM + "energy(T=1)"]
    best = min(um, key=lambda k: um[k][VAL])
    print(f"| {s} | {ca}: {a[ca][VAL]:.1f} / {unseen(a[ca]):.1f} | {cb}: {b[cb][VAL]:.1f} / {unseen(b[cb]):.1f} | "
          f"{e['acc']:.2f} vs {b['energy(T=1)']['acc']:.2f} ({'within' if e['eligible'] else 'outside'} the bound) | "
          f"{e[VAL]:.1f} / {unseen(e):.1f} | {best[len(UM):]}: {um[best][VAL]:.1f} / {unseen(um[best]):.1f} |")
    diff.append(unseen(b[cb]) - unseen(a[ca]))
print()
print(f"unseen FPR95 of the choice with -extra minus without, paired: {ms(diff)} (per seed {', '.join(f'{d:+.1f}' for d in diff)})")

"""Multi-seed summary of `oodguard choose` runs (#17).

    python3 aggregate.py NAME RUN_DIR... > NAME.md

RUN_DIR holds one run's candidates.json (one seed each, run with -id-test, so the test families
are measured against ID test images the choice never saw). Writes NAME.json and NAME.csv next to
this script and prints Markdown tables:

- per method (energy, MSP, MaxLogit, GEN, ReAct, ASH-P/B/S, DICE, DICE + ReAct, ViM, MDS, KNN):
  the setting with the lowest validation FPR95 among those within -max-acc-drop of the model's
  accuracy (if none is, the lowest overall, marked), chosen per seed on validation only; its
  FPR95 and AUROC on every OOD set, mean +- sd over the seeds; its ID test accuracy; how often
  the run's rule chose that method;
- the chosen detector minus plain energy on each test family, paired by seed, mean +- sd;
- the selection rules below, each applied to the validation metrics only, and what each one's
  choice gives on the test families.

sd is the sample standard deviation (n - 1); with n = 3 seeds it is itself rough.
"""
import json, math, os, sys

# Names of the OOD sets (by the folder they were read from) and whether a set is a family the
# validation never showed: the MNIST test split of the Fashion-MNIST runs and the Tiny ImageNet
# test split of the CIFAR-10 runs are the validation family's own held-out images.
SETS = [
    ("mnist-val-5000", "MNIST val", False),
    ("mnist-test-5000", "MNIST test", False),
    ("tin-val-5000", "TIN val", False),
    ("tin-test-5000", "TIN test", None),  # unseen for Fashion-MNIST, same family for CIFAR-10
    ("noise", "noise", True),
    ("cifar10/test.tar", "CIFAR-10", True),
    ("fashion-mnist/t10k", "F-MNIST", True),
    ("mnist/t10k", "MNIST", True),
]


def set_label(name, val_name):
    for key, label, unseen in SETS:
        if key in name:
            if unseen is None:
                unseen = not ("tin" in val_name)
            return label, unseen
    return name, True


def method(c):
    n = c["name"].split(": ")[-1]
    if c["kind"] == "logits":
        return n.split("(")[0]
    if n.startswith("react(") and "+dice" in n:
        return "react+dice"
    return n[: n.index("(")] if "(" in n else n


def val(c, key="fpr95"):
    return c["sets"][0]["metrics"][key]


# The selection rules. Each sees the candidates' validation metrics and accuracy only; cands[0]
# is plain energy. They return the chosen candidate.
def rule_fpr(cands, n_val):
    """oodguard's rule: the lowest validation FPR95 among the eligible; earlier wins ties."""
    best = cands[0]
    for c in cands:
        if c["eligible"] and val(c) < val(best):
            best = c
    return best


def rule_auroc(cands, n_val):
    """The highest validation AUROC among the eligible; earlier wins ties."""
    best = cands[0]
    for c in cands:
        if c["eligible"] and val(c, "auroc") > val(best, "auroc"):
            best = c
    return best


def rule_feature(cands, n_val):
    """Prefer feature scores: the lowest validation FPR95 among the eligible feature scores
    (ViM, MDS, KNN) if it beats energy on validation, else oodguard's rule."""
    feats = [c for c in cands if c["kind"] == "feature" and c["eligible"]]
    if feats:
        best = min(feats, key=val)
        if val(best) < val(cands[0]):
            return best
    return rule_fpr(cands, n_val)


def noise(p, n):
    """Two standard errors of an FPR95 p measured on n OOD images."""
    return 2 * math.sqrt(max(p * (1 - p), 1 / n) / n)


def rule_tied_auroc(cands, n_val):
    """Within the validation noise of the best: among the eligible candidates whose validation
    FPR95 is within two standard errors of the lowest, the highest validation AUROC; energy
    unless the winner's FPR95 beats energy's by more than two standard errors."""
    best = rule_fpr(cands, n_val)
    b = val(best)
    tied = [c for c in cands if c["eligible"] and val(c) <= b + noise(b, n_val)]
    pick = max(tied, key=lambda c: val(c, "auroc"))  # max keeps the earliest of equals
    if val(cands[0]) - val(pick) <= noise(val(pick), n_val):
        return cands[0]
    return pick


def rule_rank(cands, n_val):
    """The lowest sum of the ranks by validation FPR95 and by validation AUROC among the
    eligible; earlier wins ties."""
    el = [c for c in cands if c["eligible"]]
    rf = {id(c): r for r, c in enumerate(sorted(el, key=val))}
    ra = {id(c): r for r, c in enumerate(sorted(el, key=lambda c: -val(c, "auroc")))}
    return min(el, key=lambda c: rf[id(c)] + ra[id(c)])


RULES = [
    ("fpr (oodguard's default)", rule_fpr),
    ("auroc", rule_auroc),
    ("feature-first", rule_feature),
    ("tied-auroc", rule_tied_auroc),
    ("rank", rule_rank),
]


def mean_sd(xs):
    m = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else float("nan")
    return m, sd


def pm(xs, scale=100, digits=1):
    m, sd = mean_sd([scale * x for x in xs])
    return ("%.*f ± %.*f" % (digits, m, digits, sd)) if len(xs) > 1 else ("%.*f" % (digits, m))


def main():
    name, dirs = sys.argv[1], sys.argv[2:]
    runs = [json.load(open(os.path.join(d, "candidates.json"))) for d in dirs]
    val_name = runs[0]["ood"][0]["name"]
    sets = [set_label(o["name"], val_name) for o in runs[0]["ood"]]
    for r in runs:
        if [set_label(o["name"], val_name) for o in r["ood"]] != sets:
            sys.exit("runs differ in their OOD sets")
    labels = [s[0] for s in sets]
    unseen = [i for i, s in enumerate(sets) if i > 0 and s[1]]

    # Per method: the best validation setting per seed.
    order, per = [], {}
    for r in runs:
        cands = r["candidates"]
        chosen = next(c for c in cands if c.get("chosen"))
        best = {}
        for c in cands:
            m = method(c)
            if m not in order:
                order.append(m)
            b = best.get(m)
            key = (not c["eligible"], val(c))
            if b is None or key < (not b["eligible"], val(b)):
                best[m] = c
        for m, c in best.items():
            per.setdefault(m, []).append((c, method(chosen) == m))
    rows = []
    for m in order:
        picks = per[m]
        row = {
            "method": m,
            "settings": [c["name"] for c, _ in picks],
            "eligible_all": all(c["eligible"] for c, _ in picks),
            "id_val_accuracy": [c["id_accuracy"] for c, _ in picks],
            "id_test_accuracy": [c.get("id_test_accuracy", float("nan")) for c, _ in picks],
            "chosen": sum(ch for _, ch in picks),
            "sets": {},
        }
        for i, lab in enumerate(labels):
            row["sets"][lab] = {
                "fpr95": [c["sets"][i]["metrics"]["fpr95"] for c, _ in picks],
                "auroc": [c["sets"][i]["metrics"]["auroc"] for c, _ in picks],
            }
        rows.append(row)

    # Each rule's choice per seed, and its paired difference from energy and from the default.
    rules = []
    for rname, f in RULES:
        res = {"rule": rname, "doc": f.__doc__.strip().replace("\n    ", " "), "chosen": [], "sets": {}}
        for r in runs:
            cands = r["candidates"]
            n_val = r["ood"][0]["count"]
            c = f(cands, n_val)
            res["chosen"].append(c["name"])
            for i, lab in enumerate(labels):
                d = res["sets"].setdefault(lab, {"fpr95": [], "auroc": [], "fpr95_minus_energy": [], "auroc_minus_energy": []})
                mt, me = c["sets"][i]["metrics"], cands[0]["sets"][i]["metrics"]
                d["fpr95"].append(mt["fpr95"])
                d["auroc"].append(mt["auroc"])
                d["fpr95_minus_energy"].append(mt["fpr95"] - me["fpr95"])
                d["auroc_minus_energy"].append(mt["auroc"] - me["auroc"])
        # the mean over the unseen families, per seed
        res["unseen_mean_fpr95"] = [sum(res["sets"][labels[i]]["fpr95"][s] for i in unseen) / len(unseen) for s in range(len(runs))]
        res["unseen_mean_auroc"] = [sum(res["sets"][labels[i]]["auroc"][s] for i in unseen) / len(unseen) for s in range(len(runs))]
        rules.append(res)
    base = rules[0]
    for res in rules:
        res["unseen_fpr95_minus_default"] = [a - b for a, b in zip(res["unseen_mean_fpr95"], base["unseen_mean_fpr95"])]
        res["unseen_auroc_minus_default"] = [a - b for a, b in zip(res["unseen_mean_auroc"], base["unseen_mean_auroc"])]

    here = os.path.dirname(os.path.abspath(__file__))
    out = {"name": name, "runs": dirs, "models": [r["model"] for r in runs], "sets": labels,
           "unseen": [labels[i] for i in unseen], "methods": rows, "rules": rules}
    with open(os.path.join(here, name + ".json"), "w") as f:
        json.dump(out, f, indent=1)
    with open(os.path.join(here, name + ".csv"), "w") as f:
        f.write("method,seed,setting,eligible,chosen,id_val_accuracy,id_test_accuracy,ood_set,fpr95,auroc\n")
        for m in order:
            for s, (c, ch) in enumerate(per[m]):
                for i, lab in enumerate(labels):
                    mt = c["sets"][i]["metrics"]
                    f.write("%s,%d,%s,%s,%s,%.4f,%.4f,%s,%.4f,%.4f\n" % (m, s + 1, c["name"].replace(",", ";"), c["eligible"], ch,
                            100 * c["id_accuracy"], 100 * c.get("id_test_accuracy", float("nan")), lab, 100 * mt["fpr95"], 100 * mt["auroc"]))

    n = len(runs)
    print("%s: %d seeds; FPR95 / AUROC in %%, mean ± sd over the seeds; each method at its best validation setting per seed.\n" % (name, n))
    print("| method | ID test acc | chosen | " + " | ".join(labels) + " |")
    print("|---|---:|---:|" + "---:|" * len(labels))
    for row in rows:
        mark = "" if row["eligible_all"] else " (acc. drop > 1 in some seed)"
        cells = ["%s / %s" % (pm(row["sets"][l]["fpr95"]), pm(row["sets"][l]["auroc"])) for l in labels]
        print("| %s%s | %s | %d/%d | %s |" % (row["method"], mark, pm(row["id_test_accuracy"], digits=2), row["chosen"], n, " | ".join(cells)))
    print("\nSettings per seed:", "; ".join("%s: %s" % (r["method"], ", ".join(r["settings"])) for r in rows if r["method"] not in ("energy", "msp", "maxlogit")))

    print("\nRules (validation only), what their choice gives: FPR95 / AUROC and, below, minus plain energy (paired by seed).\n")
    print("| rule | chosen per seed | " + " | ".join(labels[1:]) + " | unseen mean, minus default |")
    print("|---|---|" + "---:|" * len(labels))
    for res in rules:
        cells = ["%s / %s" % (pm(res["sets"][l]["fpr95"]), pm(res["sets"][l]["auroc"])) for l in labels[1:]]
        print("| %s | %s | %s | %s / %s |" % (res["rule"], ", ".join(res["chosen"]), " | ".join(cells),
              pm(res["unseen_fpr95_minus_default"]), pm(res["unseen_auroc_minus_default"])))
        cells = ["%s / %s (lower FPR95 in %d/%d)" % (pm(res["sets"][l]["fpr95_minus_energy"]), pm(res["sets"][l]["auroc_minus_energy"]),
                 sum(d < 0 for d in res["sets"][l]["fpr95_minus_energy"]), n) for l in labels[1:]]
        print("| … minus energy | | %s | |" % " | ".join(cells))


if __name__ == "__main__":
    main()

import json, sys
# Markdown table from a choose candidates.json: the logit scores, then for each method the
# setting with the lowest validation FPR95 (selection on the validation family only), and the
# chosen candidate marked.
def fam(name):
    n = name.split(": ")[-1]
    if n.startswith("react(") and "+dice" in n: return "react+dice"
    if "(" in n and not n.startswith(("energy", "gen")): return n[:n.index("(")]
    return n
s = json.load(open(sys.argv[1]))
sets = s["ood"]
fams, order = {}, []
for c in s["candidates"]:
    f = fam(c["name"])
    if c["kind"] == "logits":
        f = c["name"]
    if f not in fams:
        order.append(f); fams[f] = c
    elif c["sets"][0]["metrics"]["fpr95"] < fams[f]["sets"][0]["metrics"]["fpr95"]:
        fams[f] = c
    if c.get("chosen"):
        chosen = c
def short(n): return n.split("/")[0]
head = "| detector (best setting on validation) | ID acc | " + " | ".join(
    ("**%s** (val)" % short(o["name"])) if i == 0 else short(o["name"]) for i, o in enumerate(sets)) + " |"
print(head)
print("|---|---:|" + "---:|" * len(sets))
for f in order:
    c = fams[f]
    name = c["name"] + (" ← chosen" if c is chosen else "") + ("" if c["eligible"] else " (acc. drop > %g)" % s["max_acc_drop_points"])
    cells = ["%.1f / %.1f" % (100 * x["metrics"]["fpr95"], 100 * x["metrics"]["auroc"]) for x in c["sets"]]
    print("| %s | %.2f | %s |" % (name, 100 * c["id_accuracy"], " | ".join(cells)))
if chosen["name"] not in [fams[f]["name"] for f in order]:
    print("| %s ← chosen | %.2f | %s |" % (chosen["name"], 100 * chosen["id_accuracy"], " | ".join(
        "%.1f / %.1f" % (100 * x["metrics"]["fpr95"], 100 * x["metrics"]["auroc"]) for x in chosen["sets"])))

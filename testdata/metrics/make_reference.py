#!/usr/bin/python3
"""Write testdata/metrics/reference.json, the reference values for calibrate/metrics_test.go.

Run from anywhere with the Debian python (numpy, scikit-learn 1.2.1):

    /usr/bin/python3 testdata/metrics/make_reference.py

Conventions: ID is the positive class (label 1), OOD is 0, scores are "higher = more ID".
For every case the script records:

  auroc             sklearn roc_auc_score(labels, scores)
  aupr_in           sklearn average_precision_score(labels, scores)
  aupr_out          sklearn average_precision_score(1 - labels, -scores)
  fpr_closest       the Unleashing Mask / Hendrycks fpr_and_fdr_at_recall(labels, scores,
                    recall), copied below in numpy; also the TPR and threshold it picks
  fpr_openood       first point of sklearn roc_curve(labels, scores, drop_intermediate=False)
                    with tpr >= recall (ID positive, full tie-grouped curve); its TPR and
                    threshold too
  detection_error   min over the same full roc_curve of 0.5*(1 - tpr) + 0.5*fpr
  fpr_openood_dropped  the same "first tpr >= recall" on sklearn's default
                    roc_curve(drop_intermediate=True), as OpenOOD's fpr_recall calls it.
                    Informational: it differs from fpr_openood only when the crossing point
                    is a collinear tie point that sklearn drops (see the "dropped" case).

Scores are stored as JSON numbers (repr of float64), so Go reads back the same doubles.
"""

import json
import os
import warnings

import numpy as np
import sklearn
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference.json")


def fpr_and_fdr_at_recall(y_true, y_score, recall_level):
    """The method's FPR routine (utils/get_scores.py, from Hendrycks' OE / energy_ood).

    Returns the FPR, and also the recall and threshold of the chosen point.
    """
    y_true = y_true == 1
    desc = np.argsort(y_score, kind="mergesort")[::-1]
    y_score = y_score[desc]
    y_true = y_true[desc]
    distinct = np.where(np.diff(y_score))[0]
    th_idx = np.r_[distinct, y_true.size - 1]
    tps = np.cumsum(y_true, dtype=np.float64)[th_idx]
    fps = 1 + th_idx - tps
    thresholds = y_score[th_idx]
    recall = tps / tps[-1]
    last = tps.searchsorted(tps[-1])
    sl = slice(last, None, -1)
    recall, fps, thresholds = np.r_[recall[sl], 1], np.r_[fps[sl], 0], thresholds[sl]
    cutoff = np.argmin(np.abs(recall - recall_level))
    # The sentinel (recall 1, fps 0) ties with the first entry and never wins argmin.
    assert cutoff < len(thresholds)
    fpr = fps[cutoff] / np.sum(np.logical_not(y_true))
    return float(fpr), float(recall[cutoff]), float(thresholds[cutoff])


def first_tpr_at_least(y_true, y_score, recall_level, drop_intermediate):
    fpr, tpr, thr = roc_curve(y_true, y_score, drop_intermediate=drop_intermediate)
    i = int(np.argmax(tpr >= recall_level))
    return float(fpr[i]), float(tpr[i]), float(thr[i])


def reference(name, kind, id_scores, ood_scores, recall=0.95):
    id_scores = np.asarray(id_scores, dtype=np.float64)
    ood_scores = np.asarray(ood_scores, dtype=np.float64)
    y = np.r_[np.ones(len(id_scores)), np.zeros(len(ood_scores))].astype(int)
    s = np.r_[id_scores, ood_scores]

    auroc = roc_auc_score(y, s)
    # Sanity: trapezoidal AUROC is Mann-Whitney with ties counted 1/2.
    gt = (id_scores[:, None] > ood_scores[None, :]).sum()
    eq = (id_scores[:, None] == ood_scores[None, :]).sum()
    assert abs(auroc - (gt + 0.5 * eq) / (len(id_scores) * len(ood_scores))) < 1e-12

    fpr_c, tpr_c, thr_c = fpr_and_fdr_at_recall(y, s, recall)
    fpr_o, tpr_o, thr_o = first_tpr_at_least(y, s, recall, drop_intermediate=False)
    fpr_d, _, _ = first_tpr_at_least(y, s, recall, drop_intermediate=True)
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    det = float(np.min(0.5 * (1 - tpr) + 0.5 * fpr))

    return {
        "name": name,
        "kind": kind,
        "recall": recall,
        "id": id_scores.tolist(),
        "ood": ood_scores.tolist(),
        "auroc": float(auroc),
        "aupr_in": float(average_precision_score(y, s)),
        "aupr_out": float(average_precision_score(1 - y, -s)),
        "fpr_closest": fpr_c,
        "tpr_closest": tpr_c,
        "threshold_closest": thr_c,
        "fpr_openood": fpr_o,
        "tpr_openood": tpr_o,
        "threshold_openood": thr_o,
        "detection_error": det,
        "fpr_openood_dropped": fpr_d,
    }


def main():
    rng = np.random.default_rng(20240601)
    cases = []

    # Random: normal scores, rounded to 6 decimals to keep the file small (ties stay rare).
    for n_id, n_ood, shift, recall in [
        (1000, 1000, 1.5, 0.95),
        (400, 2500, 1.0, 0.95),
        (2500, 150, 2.0, 0.95),
        (37, 11, 0.5, 0.95),
        (100, 20, 1.0, 0.95),
        (20, 100, 1.0, 0.95),
        (300, 300, 0.0, 0.95),
        (300, 300, -1.0, 0.95),
        (500, 500, 1.0, 0.9),
        (500, 500, 1.0, 0.8),
        (200, 200, 1.0, 1.0),
    ]:
        ids = np.round(rng.normal(shift, 1.0, n_id), 6)
        ood = np.round(rng.normal(0.0, 1.0, n_ood), 6)
        cases.append(reference(f"random_{n_id}x{n_ood}_shift{shift}_r{recall}", "random", ids, ood, recall))

    # Tie-heavy: few distinct values, and float32-resolution energies.
    for n_id, n_ood, step in [(400, 400, 0.5), (120, 900, 1.0), (900, 60, 0.25), (50, 50, 2.0)]:
        ids = np.round(rng.normal(1.0, 1.0, n_id) / step) * step
        ood = np.round(rng.normal(0.0, 1.0, n_ood) / step) * step
        cases.append(reference(f"ties_{n_id}x{n_ood}_step{step}", "ties", ids, ood))
    for n_id, n_ood in [(600, 600), (200, 1000)]:
        # Energies near 10 in float32 with a coarse grid: many exact float32 ties.
        ids = np.float32(10 + np.round(rng.normal(1.0, 1.0, n_id), 2)).astype(np.float64)
        ood = np.float32(10 + np.round(rng.normal(0.0, 1.0, n_ood), 2)).astype(np.float64)
        cases.append(reference(f"float32_{n_id}x{n_ood}", "ties", ids, ood))
    # 20 ID scores in tied pairs: recall 0.90 and 1.00 are both "0.05 away" from 0.95, but in
    # float64 |0.9-0.95| < |1.0-0.95|, so the routine picks recall 0.90.
    ids = np.repeat(np.arange(10, dtype=np.float64), 2)
    ood = np.arange(-3, 7, dtype=np.float64) + 0.5
    cases.append(reference("equidistant_pairs", "ties", ids, ood))
    # Equal-recall resolution: the routine takes the lowest threshold at the chosen recall
    # (counting the OOD scores between two ID scores), OpenOOD the highest.
    ids = np.arange(20, dtype=np.float64)
    ood = np.array([0.5, 0.6, 0.7, 5.5])
    cases.append(reference("gap_below_crossing", "ties", ids, ood))
    # sklearn's default drop_intermediate removes the crossing point: three equal steps of
    # (2 ID, 1 OOD) tie groups around 95% recall.
    ids = np.r_[np.arange(100, 130, dtype=np.float64), np.repeat([3.0, 2.0, 1.0], 2), [0.0] * 4]
    ood = np.r_[[3.0, 2.0, 1.0], np.arange(-10, -4, dtype=np.float64)]
    cases.append(reference("dropped", "ties", ids, ood, recall=0.85))

    # Degenerate.
    cases.append(reference("all_equal", "degenerate", [1.0] * 10, [1.0] * 7))
    cases.append(reference("all_equal_single", "degenerate", [0.0], [0.0]))
    cases.append(reference("separated", "degenerate", np.arange(10, 30, dtype=np.float64), np.arange(0, 8, dtype=np.float64)))
    cases.append(reference("reversed", "degenerate", np.arange(0, 8, dtype=np.float64), np.arange(10, 30, dtype=np.float64)))
    cases.append(reference("single_id_single_ood", "degenerate", [2.0], [1.0]))
    cases.append(reference("single_id_single_ood_reversed", "degenerate", [1.0], [2.0]))
    cases.append(reference("single_id", "degenerate", [0.25], np.round(rng.normal(0, 1, 30), 6)))
    cases.append(reference("single_ood", "degenerate", np.round(rng.normal(0, 1, 30), 6), [0.25]))
    cases.append(reference("negative_zero", "degenerate", [0.0, -0.0, 1.0], [-0.0, 0.0, -1.0]))

    dropped = [c["name"] for c in cases if c["fpr_openood"] != c["fpr_openood_dropped"]]
    doc = {
        "generator": "testdata/metrics/make_reference.py",
        "sklearn": sklearn.__version__,
        "numpy": np.__version__,
        "conventions": "ID positive (label 1), higher score = more ID; values are fractions",
        "cases": cases,
    }
    with open(OUT, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {len(cases)} cases, {os.path.getsize(OUT)} bytes to {OUT}")
    print("cases where sklearn's default roc_curve (drop_intermediate) changes first-TPR>=r FPR:", dropped)


if __name__ == "__main__":
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        main()

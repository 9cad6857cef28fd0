#!/usr/bin/python3
"""tests/unit/metrics_reference.py: scikit-learn's values of the metrics of trainer/metrics.c.

Writes (to the path given, or stdout) the cases that tests/unit/test_metrics.c
reads: scores and labels drawn with a fixed numpy seed, and what scikit-learn
computes on them.  Run with Debian's /usr/bin/python3 (python3-sklearn).

The definitions (those of trainer/metrics.c; higher score = more anomalous,
an image is flagged when its score >= a threshold, the thresholds being the
distinct scores, so tied scores share one threshold):

  auroc            roc_auc_score(y, s): ties between an anomaly and a normal count 1/2
  aupr_out         average_precision_score(y, s): anomaly positive; the step sum
                   sum_n (R_n - R_{n-1}) P_n over distinct thresholds (sklearn >= 0.19),
                   not the trapezoidal auc(recall, precision)
  aupr_in          average_precision_score(1 - y, -s): normal positive, score negated
  fpr_at_95tpr     min of roc_curve's FPR over the thresholds where TPR >= 0.95
  best_f1          max over precision_recall_curve's points of 2PR / (P + R) (0 where P + R = 0)
  detection_error  min over roc_curve's points (the (0, 0) point included) of
                   0.5 (1 - TPR) + 0.5 FPR

roc_curve and precision_recall_curve are called with every threshold kept
(drop_intermediate=False); both group tied scores into one threshold like
metrics.c.  Scores are rounded to float32 here (metrics.c takes floats) and
written as the exact double of that float32, so both sides see the same
numbers and the same ties.

clad_threshold_at_tpr(v, n, tpr): the largest t among v such that at least
the fraction tpr of v is >= t, computed here in exact rational arithmetic
(fractions.Fraction of tpr's decimal string).

Format (whitespace-separated tokens, '#' lines are comments):
  case NAME N            then N scores, N labels (1 anomaly, 0 normal), then
  want AUROC AUPR_IN AUPR_OUT FPR95 BEST_F1 DET
  threshold NAME N TPR WANT    then N values
  end
"""
import sys
from fractions import Fraction

import numpy as np
from sklearn.metrics import (average_precision_score, precision_recall_curve,
                             roc_auc_score, roc_curve)

SEED = 20240611


def f32(a):
    return np.asarray(a, dtype=np.float64).astype(np.float32).astype(np.float64)


def reference(s, y):
    s = f32(s)
    y = np.asarray(y, dtype=np.int64)
    assert y.min() == 0 and y.max() == 1, "a case needs both classes"
    auroc = roc_auc_score(y, s)
    aupr_out = average_precision_score(y, s)
    aupr_in = average_precision_score(1 - y, -s)
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    fpr95 = fpr[tpr >= 0.95].min()
    det = (0.5 * (1 - tpr) + 0.5 * fpr).min()
    prec, rec, _ = precision_recall_curve(y, s)
    den = prec + rec
    f1 = np.where(den > 0, 2 * prec * rec / np.where(den > 0, den, 1), 0.0)
    return [auroc, aupr_in, aupr_out, fpr95, f1.max(), det]


def threshold_at_tpr(v, tpr):
    v = f32(v)
    p = Fraction(tpr)
    n = len(v)
    best = None
    for t in np.unique(v):
        if Fraction(int((v >= t).sum()), n) >= p:
            best = t  # np.unique is ascending: the last one that keeps p is the largest
    return best


def fmt(x):
    return repr(float(x))


def main():
    rng = np.random.default_rng(SEED)
    cases = []

    def add(name, s, y):
        s = f32(s)
        y = np.asarray(y, dtype=np.int64)
        cases.append((name, s, y, reference(s, y)))

    def draw(n_norm, n_anom, shift=1.0, decimals=None, scale=1.0, offset=0.0):
        s = np.concatenate([rng.normal(0, 1, n_norm), rng.normal(shift, 1, n_anom)])
        if decimals is not None:
            s = np.round(s, decimals)
        s = s * scale + offset
        y = np.concatenate([np.zeros(n_norm, int), np.ones(n_anom, int)])
        p = rng.permutation(len(s))
        return s[p], y[p]

    # small cases, worked by hand in test_metrics.c as well
    add("small_2a3n", [0.9, 0.8, 0.7, 0.6, 0.5], [1, 0, 1, 0, 0])
    add("small_tied", [0.5, 0.5, 0.2, 0.5, 0.1], [1, 0, 1, 0, 0])
    add("one_each", [0.3, 0.7], [0, 1])
    add("one_each_tied", [0.4, 0.4], [1, 0])
    add("all_tied", [0.25] * 10, [1, 0, 0, 1, 0, 1, 0, 0, 1, 0])
    add("perfect", [5, 6, 7, 1, 2, 3, 4], [1, 1, 1, 0, 0, 0, 0])
    add("inverted", [5, 6, 7, 1, 2, 3, 4], [0, 0, 0, 1, 1, 1, 1])
    add("signed_zero", [0.0, -0.0, 0.0, -0.0, 1.0, -1.0], [1, 0, 0, 1, 1, 0])
    # random scores
    add("continuous_500", *draw(400, 100))
    add("rounded1_400", *draw(320, 80, decimals=1))
    add("integers_300", *draw(240, 60, shift=0.7, decimals=0))
    s, y = draw(50, 50)
    add("two_values", (s > 0.5).astype(float), y)
    add("few_anomalies", *draw(1000, 7, shift=1.5))
    add("few_normals", *draw(6, 800, shift=1.5))
    add("few_anomalies_tied", *draw(600, 5, shift=1.0, decimals=1))
    add("large_scores", *draw(150, 50, scale=1e6, offset=-5e5))
    add("tiny_scores", *draw(150, 50, scale=1e-30))
    # TPR exactly 0.95 reachable (19/20, 38/40, 57/60, 95/100 anomalies): FPR at 95% TPR
    # must take that threshold (>= 0.95, not > 0.95)
    for na in (20, 40, 60, 100):
        add("tpr95_exact_%d" % na, *draw(3 * na, na, shift=1.5))
        add("tpr95_exact_tied_%d" % na, *draw(3 * na, na, shift=1.5, decimals=1))
    # a sweep of sizes, balances and tie levels
    for i in range(40):
        n = int(rng.integers(2, 400))
        na = int(rng.integers(1, n))
        dec = [None, 0, 1, 2][i % 4]
        add("sweep_%02d" % i, *draw(n - na, na, shift=float(rng.uniform(-1, 3)), decimals=dec))

    thresholds = []

    def add_thr(name, v, tpr):
        v = f32(v)
        thresholds.append((name, v, tpr, threshold_at_tpr(v, tpr)))

    for n in (1, 2, 5, 10, 19, 20, 37, 100, 1000):
        v = rng.normal(0, 1, n)
        for tpr in ("0.95", "0.9", "0.8", "0.7", "0.5", "0.25", "0.05", "0.999"):
            add_thr("normal_%d_%s" % (n, tpr), v, tpr)
    for tpr in ("0.95", "0.9", "0.6"):
        add_thr("tied_%s" % tpr, np.round(rng.normal(0, 1, 50), 0), tpr)
        add_thr("all_tied_%s" % tpr, np.full(10, 3.5), tpr)

    out = open(sys.argv[1], "w") if len(sys.argv) > 1 else sys.stdout
    with out:
        out.write("# written by tests/unit/metrics_reference.py (seed %d); scikit-learn's values\n" % SEED)
        for name, s, y, want in cases:
            out.write("case %s %d\n" % (name, len(s)))
            out.write(" ".join(fmt(x) for x in s) + "\n")
            out.write(" ".join(str(int(x)) for x in y) + "\n")
            out.write("want " + " ".join(fmt(x) for x in want) + "\n")
        for name, v, tpr, want in thresholds:
            out.write("threshold %s %d %s %s\n" % (name, len(v), tpr, fmt(want)))
            out.write(" ".join(fmt(x) for x in v) + "\n")
        out.write("end\n")


if __name__ == "__main__":
    main()

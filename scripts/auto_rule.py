"""scripts/auto_rule.py: which choice rule --method auto should use, measured on the
validation digits alone (`make methods` writes what it needs).

Usage: auto_rule.py RESULTS_DIR [--draws R] [--anomalies N] [--test]

For every `make methods` run, SCENARIO_sSEED.scores.csv holds each candidate's anomaly
score of every validation image (the 20% of the training digits that no candidate was
trained on), all of their anomalies included, not only the 20 that the run chose with.
That makes the choice repeatable offline: draw N (20) of the anomalies R times, let
each rule pick with every normal image and those N, and read the picked candidate's
AUROC on *all* the validation images, the nearest thing to its quality that the
validation split can tell.  A rule is good when, scenario by scenario (the mean over
seeds and draws), what it picks is within 1 point of the best single method there,
which is the form of the target on the test digits.

The rules (clad is the default method, the one kept when nothing is chosen):
  max             the highest AUROC on the labelled images (today's rule)
  singles         the same among the three single methods (never the ensemble)
  margin:M        clad unless another candidate's AUROC beats clad's by more than M
  boot:Q          clad unless, in 200 paired bootstrap resamples of the labelled images
                  (normal and anomalous images resampled separately), another candidate
                  beats clad's AUROC in at least a share Q of them; then the highest
                  AUROC among those that do

--test also applies every rule to the 20 anomalies each run really chose with (the
"chosen_with" column), and to the validation draws above, and reads the picks' test
AUROCs from the run's report (the second: how auto fares over which 20 anomalies a user
happens to hold, not only the one draw per seed): run it only after a rule is fixed on
validation, to report it.  Needs numpy.
"""
import argparse
import csv
import glob
import json
import os
import re
import statistics

import numpy as np

SCENARIOS = ["CUR", "STR", "MIX"] + [str(d) for d in range(10)]
CANDIDATES = ("clad", "deepsvdd", "ocsvm", "ensemble")
SINGLE = CANDIDATES[:3]
RULES = ["max", "singles", "margin:0.01", "margin:0.02", "margin:0.03", "margin:0.05",
         "boot:0.7", "boot:0.8", "boot:0.9", "boot:0.95"]
BOOTSTRAPS = 200


def load(path):
    """(scores: candidates x images, is_anomaly, chosen_with) of one run"""
    rows = list(csv.DictReader(open(path)))
    s = np.array([[float(r[c]) for r in rows] for c in CANDIDATES])
    return s, np.array([r["is_anomaly"] == "1" for r in rows]), np.array([r["chosen_with"] == "1" for r in rows])


def wins(s, anomaly):
    """per candidate and anomaly: the share of normal images it outranks (ties count half),
    and the pairwise matrix it comes from (candidates x anomalies x normals)"""
    a, n = s[:, anomaly], s[:, ~anomaly]
    m = (a[:, :, None] > n[:, None, :]) + 0.5 * (a[:, :, None] == n[:, None, :])
    return m.mean(axis=2), m


def bootstrap(pair, rng):
    """candidates x BOOTSTRAPS: the AUROCs of paired resamples (the anomalies and the
    normal images resampled separately, the same resample for every candidate)"""
    na, nn = pair.shape[1], pair.shape[2]
    wa = rng.multinomial(na, np.full(na, 1.0 / na), size=BOOTSTRAPS).astype(float)	# B x anomalies
    wn = rng.multinomial(nn, np.full(nn, 1.0 / nn), size=BOOTSTRAPS).astype(float)	# B x normals
    return np.stack([((wa @ pair[k]) * wn).sum(axis=1) for k in range(pair.shape[0])]) / (na * nn)


def pick(rule, auroc, boot):
    """the candidate a rule keeps: auroc (candidates), boot (candidates x resamples)"""
    if rule == "max":
        return int(np.argmax(auroc))	# first of equals: clad before the others
    if rule == "singles":
        return int(np.argmax(auroc[:len(SINGLE)]))
    kind, arg = rule.split(":")
    q = float(arg)
    if kind == "margin":
        better = [k for k in range(1, len(auroc)) if auroc[k] > auroc[0] + q]
    else:
        better = [k for k in range(1, len(auroc)) if np.mean(boot[k] > boot[0]) >= q]
    return max(better, key=lambda k: auroc[k]) if better else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--draws", type=int, default=100)
    ap.add_argument("--anomalies", type=int, default=20)
    ap.add_argument("--test", action="store_true")
    args = ap.parse_args()
    rng = np.random.default_rng(20261207)
    val = {r: {} for r in RULES}		# rule -> scenario -> picked candidates' full-validation AUROCs
    best = {}						# scenario -> best single method's mean full-validation AUROC
    test = {r: {} for r in RULES}		# the same, the anomalies each run chose with, test AUROCs
    test_draws = {r: {} for r in RULES}	# the same over the draws
    test_best = {}
    for sc in SCENARIOS:
        paths = sorted(glob.glob(os.path.join(args.dir, "%s_s*.scores.csv" % sc)))
        if not paths:
            continue
        truths, test_aurocs = [], []
        for path in paths:
            s, anomaly, chosen = load(path)
            u, _ = wins(s, anomaly)
            truth = u.mean(axis=1)		# AUROC on every validation image
            truths.append(truth)
            idx = np.flatnonzero(anomaly)
            normal = ~anomaly
            if args.test:
                report = json.load(open(re.sub(r"\.scores\.csv$", ".json", path)))["auto"]["candidates"]
                ta = np.array([report[c]["test_auroc"] for c in CANDIDATES])
                test_aurocs.append(ta)
            for _ in range(args.draws):
                sub = rng.choice(idx, size=args.anomalies, replace=False)
                mask = normal.copy()
                mask[sub] = True
                au, pair = wins(s[:, mask], anomaly[mask])
                boot = bootstrap(pair, rng)
                for r in RULES:
                    k = pick(r, au.mean(axis=1), boot)
                    val[r].setdefault(sc, []).append(truth[k])
                    if args.test:
                        test_draws[r].setdefault(sc, []).append(ta[k])
            if args.test:
                au, pair = wins(s[:, chosen], anomaly[chosen])
                boot = bootstrap(pair, rng)
                for r in RULES:
                    test[r].setdefault(sc, []).append(ta[pick(r, au.mean(axis=1), boot)])
        best[sc] = max(np.mean([t[k] for t in truths]) for k in range(len(SINGLE)))
        if args.test:
            test_best[sc] = max(np.mean([t[k] for t in test_aurocs]) for k in range(len(SINGLE)))

    def table(title, res, ref):
        print("\n%s\n" % title)
        print("| rule | scenarios within 1 point | mean AUROC of the picks | worst shortfall |")
        print("|---|---|---|---|")
        for r in RULES:
            short = {sc: ref[sc] - statistics.mean(res[r][sc]) for sc in res[r]}
            worst = max(short, key=short.get)
            print("| %s | %d of %d | %.2f | %.2f (%s) |" % (
                r, sum(v <= 0.01 for v in short.values()), len(short),
                100 * statistics.mean(statistics.mean(v) for v in res[r].values()),
                100 * short[worst], worst))

    table("Validation: %d draws of %d anomalies per run, AUROC on all validation images"
          % (args.draws, args.anomalies), val, best)
    if args.test:
        table("Test: the anomalies each run chose with, the picks' test AUROC", test, test_best)
        table("Test: the same draws as on validation, the picks' test AUROC", test_draws, test_best)


if __name__ == "__main__":
    main()

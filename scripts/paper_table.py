"""scripts/paper_table.py: the markdown table of `make paper` (scripts/paper.sh).

Usage: paper_table.py RESULTS_DIR BUDGET

Reads RESULTS_DIR/METHOD_SCENARIO_sSEED.json (clad-train --json reports: CLAD's "score"
metrics, the baselines' "metrics") and prints, per scenario, the AUROC (%) of clad's
CLAD (default recipe), CLAD as the paper trains it (--recipe paper), the one-class SVM
and Deep SVDD measured here, as the mean over the seeds found with their range, beside
the paper's (Tables 1 and 3 of the paper).  Standard library only.
"""
import glob
import json
import os
import re
import statistics
import sys

# The paper's AUROC (%): OCSVM, DeepSVDD, CLAD (Table 1: latent-class scenarios;
# Table 3: one-class MNIST).
PAPER = {
    "CUR": (69.9, 81.7, 94.0), "STR": (87.4, 82.2, 96.1), "MIX": (54.8, 69.7, 92.6),
    "0": (98.3, 98.0, 96.3), "1": (99.5, 99.7, 97.9), "2": (82.0, 91.7, 89.8),
    "3": (88.5, 91.9, 87.2), "4": (91.6, 94.9, 92.2), "5": (79.7, 88.5, 90.7),
    "6": (93.1, 98.3, 92.5), "7": (93.4, 94.6, 91.5), "8": (83.9, 93.9, 80.0),
    "9": (91.3, 96.5, 92.0),
}
SCENARIOS = ["CUR", "STR", "MIX"] + [str(d) for d in range(10)]
METHODS = (("clad", "clad (default)"), ("clad-paper", "clad --recipe paper"),
           ("ocsvm", "OCSVM"), ("deepsvdd", "Deep SVDD"))


def aurocs(d, method, sc):
    """{seed: AUROC (%)} of the reports found."""
    out = {}
    for path in glob.glob(os.path.join(d, "%s_%s_s*.json" % (method, sc))):
        seed = int(re.search(r"_s(\d+)\.json$", path).group(1))
        m = json.load(open(path))
        if method.startswith("clad"):
            v = (m.get("score") or m["odin"])["auroc"]
        else:
            v = m["metrics"]["auroc"]
        out[seed] = 100.0 * v
    return out


def cell(vals):
    if not vals:
        return "-"
    if len(vals) == 1:
        return "%.1f (1 seed)" % vals[0]
    return "%.1f (%.1f-%.1f, %d seeds)" % (statistics.mean(vals), min(vals), max(vals), len(vals))


def main():
    d, budget = sys.argv[1], sys.argv[2]
    got = {(m, sc): aurocs(d, m, sc) for m, _ in METHODS for sc in SCENARIOS}
    print("AUROC (%%) on the 2,000 real MNIST test digits (`make paper`, budget %s): mean over "
          "the seeds run, (lowest-highest, seeds); the paper's numbers (60,000 training digits, "
          "its budget) beside them." % budget)
    print()
    print("| scenario | " + " | ".join(label for _, label in METHODS)
          + " | paper: CLAD | paper: OCSVM | paper: DeepSVDD |")
    print("|---" * (len(METHODS) + 4) + "|")
    for sc in SCENARIOS:
        name = "mnist:%s" % sc if not sc.isdigit() else "digit %s alone" % sc
        vals = [sorted(got[(m, sc)].values()) for m, _ in METHODS]
        means = [statistics.mean(v) if v else None for v in vals]
        best = max((v for v in means if v is not None), default=None)
        cells = ["**%s**" % cell(v) if v and means[i] == best else cell(v) for i, v in enumerate(vals)]
        p = PAPER[sc]
        print("| %s | %s | %.1f | %.1f | %.1f |" % (name, " | ".join(cells), p[2], p[0], p[1]))
    for label, scs in (("latent-class mean", SCENARIOS[:3]), ("one-class mean", SCENARIOS[3:])):
        cells = []
        for m, _ in METHODS:
            # per seed present in every scenario: the mean over the scenarios
            seeds = set.intersection(*(set(got[(m, sc)]) for sc in scs))
            per_seed = [statistics.mean(got[(m, sc)][s] for sc in scs) for s in sorted(seeds)]
            cells.append(cell(per_seed))
        pm = [statistics.mean(PAPER[sc][k] for sc in scs) for k in (2, 0, 1)]
        print("| *%s* | %s | %.1f | %.1f | %.1f |" % (label, " | ".join(cells), pm[0], pm[1], pm[2]))


if __name__ == "__main__":
    main()

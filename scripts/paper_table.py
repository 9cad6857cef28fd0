"""scripts/paper_table.py: the markdown table of `make paper` (scripts/paper.sh).

Usage: paper_table.py RESULTS_DIR BUDGET

Reads RESULTS_DIR/METHOD_SCENARIO.json (clad-train --json reports: CLAD's "odin"
metrics, the baselines' "metrics") and prints, per scenario, the AUROC (%) of CLAD,
the one-class SVM and Deep SVDD measured here beside the paper's (Tables 1 and 3 of
the paper, ../shared/seed/).  Standard library only.
"""
import json
import os
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


def auroc(d, method, sc):
    path = os.path.join(d, "%s_%s.json" % (method, sc))
    if not os.path.exists(path):
        return None
    m = json.load(open(path))
    return 100.0 * (m["odin"]["auroc"] if method == "clad" else m["metrics"]["auroc"])


def cell(v):
    return "-" if v is None else "%.1f" % v


def main():
    d, budget = sys.argv[1], sys.argv[2]
    rows = []
    for sc in SCENARIOS:
        got = [auroc(d, m, sc) for m in ("clad", "ocsvm", "deepsvdd")]
        rows.append((sc, got, PAPER[sc]))
    print("AUROC (%%) on the 2,000 real MNIST test digits (`make paper`, budget %s, seed 1); "
          "the paper's numbers (60,000 training digits, its budget) beside them." % budget)
    print()
    print("| scenario | CLAD | OCSVM | Deep SVDD | paper: CLAD | paper: OCSVM | paper: DeepSVDD |")
    print("|---|---|---|---|---|---|---|")
    for sc, got, paper in rows:
        name = "mnist:%s" % sc if not sc.isdigit() else "digit %s alone" % sc
        best = max((v for v in got if v is not None), default=None)
        cells = ["**%s**" % cell(v) if v is not None and v == best else cell(v) for v in got]
        print("| %s | %s | %s | %s | %.1f | %.1f | %.1f |" % (
            name, cells[0], cells[1], cells[2], paper[2], paper[0], paper[1]))
    for label, idx in (("latent-class mean", slice(0, 3)), ("one-class mean", slice(3, 13))):
        part = rows[idx]
        means = []
        for k in range(3):
            vals = [r[1][k] for r in part if r[1][k] is not None]
            means.append(sum(vals) / len(vals) if len(vals) == len(part) else None)
        pm = [sum(r[2][k] for r in part) / len(part) for k in (2, 0, 1)]
        print("| *%s* | %s | %s | %s | %.1f | %.1f | %.1f |" % (
            label, cell(means[0]), cell(means[1]), cell(means[2]), pm[0], pm[1], pm[2]))


if __name__ == "__main__":
    main()

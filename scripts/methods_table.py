"""scripts/methods_table.py: the markdown tables of `make methods` (scripts/methods.sh).

Usage: methods_table.py RESULTS_DIR BUDGET

Reads RESULTS_DIR/SCENARIO_sSEED.json (clad-train --method auto --json reports) and
prints (1) per scenario the test AUROC (%) of CLAD, Deep SVDD, the one-class SVM and
their ensemble, mean over the seeds found (lowest-highest), and of the candidate that
--method auto kept; (2) the ensemble against the best single method; (3) how often the
kept candidate's test AUROC is within 1 point of the best of the three single methods.
Standard library only.
"""
import glob
import json
import os
import re
import statistics
import sys

SCENARIOS = ["CUR", "STR", "MIX"] + [str(d) for d in range(10)]
METHODS = ("clad", "deepsvdd", "ocsvm", "ensemble")
SINGLE = METHODS[:3]


def runs(d, sc):
    """{seed: the report's "auto" object}"""
    out = {}
    for path in glob.glob(os.path.join(d, "%s_s*.json" % sc)):
        seed = int(re.search(r"_s(\d+)\.json$", path).group(1))
        out[seed] = json.load(open(path))["auto"]
    return out


def cell(vals):
    if not vals:
        return "-"
    m = statistics.mean(vals)
    return "%.1f" % m if len(vals) == 1 else "%.1f (%.1f-%.1f)" % (m, min(vals), max(vals))


def main():
    d, budget = sys.argv[1], sys.argv[2]
    rows, within, total, ens_ge, sc_within = [], 0, 0, 0, 0
    per_method = {m: [] for m in METHODS + ("kept",)}
    seeds_seen = set()
    for sc in SCENARIOS:
        r = runs(d, sc)
        if not r:
            continue
        seeds_seen |= set(r)
        v = {m: [100 * r[s]["candidates"][m]["test_auroc"] for s in sorted(r)] for m in METHODS}
        v["kept"] = [100 * r[s]["candidates"][r[s]["picked"]]["test_auroc"] for s in sorted(r)]
        picks = [r[s]["picked"] for s in sorted(r)]
        for s in sorted(r):
            c = r[s]["candidates"]
            best = max(c[m]["test_auroc"] for m in SINGLE)
            total += 1
            within += c[r[s]["picked"]]["test_auroc"] >= best - 0.01
        best_single = max(SINGLE, key=lambda m: statistics.mean(v[m]))
        ens_ge += statistics.mean(v["ensemble"]) >= statistics.mean(v[best_single])
        sc_within += statistics.mean(v["kept"]) >= statistics.mean(v[best_single]) - 1.0
        for m in per_method:
            per_method[m].append(statistics.mean(v[m]))
        label = "mnist:" + sc if len(sc) == 3 else "digit %s alone" % sc
        rows.append("| %s | %s | %s | %s | %s | %s (%s) |" % (
            label, cell(v["clad"]), cell(v["deepsvdd"]), cell(v["ocsvm"]), cell(v["ensemble"]),
            cell(v["kept"]), ", ".join("%s %d" % (p, picks.count(p)) for p in METHODS if p in picks)))
    print("Test AUROC (%%) of each candidate of `clad-train --method auto` (`make methods`, budget %s; "
          "trained on the validation split's training part, chosen with 20 labelled anomalies and the "
          "normal images of its other part, tested on the 2,000 test digits); mean over seeds %s "
          "(lowest-highest).\n" % (budget, ", ".join(str(s) for s in sorted(seeds_seen))))
    print("| scenario | CLAD | Deep SVDD | one-class SVM | ensemble | kept by auto (picks) |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(row)
    if rows:
        print("| *mean of the scenarios* | %s |" % " | ".join(
            "%.1f" % statistics.mean(per_method[m]) for m in METHODS + ("kept",)))
        print("\nThe ensemble's mean is at least the best single method's on %d of %d scenarios." % (
            ens_ge, len(rows)))
        print("auto's kept model is, on the mean over the seeds, within 1 point of the best single "
              "method's test AUROC on %d of %d scenarios (run by run: %d of %d runs)." % (
                  sc_within, len(rows), within, total))


main()

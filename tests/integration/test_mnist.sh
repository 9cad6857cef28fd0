#!/usr/bin/env bash
# tests/integration/test_mnist.sh: the whole method learns on the real MNIST digits.
# Trains mnist:STR on the `make data` split with a short budget (about a minute on one
# core) with the default recipe and requires its AUROC above 0.90 on the test split
# (0.957 measured with these settings; its classifier's orientation confidence alone
# gave 0.909; chance is 0.5); then the paper's recipe (ODIN) at a shorter budget, above
# 0.7 (0.814 measured).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-/usr/bin/python3}
out=tests/build/mnist
mkdir -p "$out"
./trainer/clad-train --data mnist --normal mnist:STR --out "$out/str.safetensors" \
	--ae-epochs 20 --dec-epochs 10 --clf-epochs 2 --seed 1 --quiet --json > "$out/metrics.json"
./trainer/clad-train --data mnist --normal mnist:STR --out "$out/str_paper.safetensors" --recipe paper \
	--ae-epochs 20 --dec-epochs 10 --clf-epochs 3 --seed 1 --quiet --json > "$out/paper.json"
"$PY" - "$out/metrics.json" "$out/paper.json" <<'PYEOF'
import json, sys
m, p = (json.load(open(f)) for f in sys.argv[1:3])
auc, base = m["score"]["auroc"], m["baseline"]["auroc"]
print("test_mnist: mnist:STR neighbours AUROC %.4f, orientation baseline %.4f" % (auc, base))
if m["score"]["name"] != "neighbours" or not auc > 0.90:
    sys.exit("test_mnist: the default recipe's AUROC %.4f is not above 0.90: the pipeline did not learn" % auc)
odin = p["odin"]["auroc"]
print("test_mnist: mnist:STR --recipe paper ODIN AUROC %.4f, baseline %.4f" % (odin, p["baseline"]["auroc"]))
if not odin > 0.7:
    sys.exit("test_mnist: ODIN AUROC %.4f is not above 0.7: the paper's recipe did not learn" % odin)
PYEOF

# bf16 scoring (clad-train eval --precision bf16, SQL's clad.precision) on both models:
# the AUROC within 0.2 points of fp32's and the 2,000 confidences ranked as in fp32
# (Spearman at least 0.999); the fp32 figures it compares with are the training run's
for name in str str_paper; do
	./trainer/clad-train eval --model "$out/$name.safetensors" --data mnist --normal mnist:STR \
		--precision bf16 --quiet --json > "$out/${name}_bf16.json"
done
"$PY" - "$out/metrics.json" "$out/str_bf16.json" "$out/paper.json" "$out/str_paper_bf16.json" <<'PYEOF'
import json, sys
for trained, bf16 in ((sys.argv[1], sys.argv[2]), (sys.argv[3], sys.argv[4])):
    t, b = json.load(open(trained)), json.load(open(bf16))
    f = b["fp32"]
    print("test_mnist: bf16 %s AUROC %.4f (fp32 %.4f), Spearman %.6f, largest confidence change %.3g of %.3g"
          % (b["score"]["name"], b["score"]["auroc"], f["auroc"], f["spearman"],
             f["max_confidence_change"], f["confidence_spread"]))
    if b["precision"] != "bf16" or f["auroc"] != t["score"]["auroc"]:
        sys.exit("test_mnist: eval --precision bf16 did not compare with the trained model's fp32 AUROC")
    if not abs(b["score"]["auroc"] - f["auroc"]) <= 0.002 or not f["spearman"] >= 0.999:
        sys.exit("test_mnist: bf16 scoring moved the AUROC or the ranks too far: %r" % f)
    if not 0 < f["max_confidence_change"]:
        sys.exit("test_mnist: bf16 confidences equal fp32's: nothing was rounded")
PYEOF

# The one-class baselines (--method, trainer/baselines.c) on the same split, evaluated
# the same way: each must learn (AUROC above 0.6; chance 0.5), and the same seed gives
# the same metrics, with one thread or two (products split among the threads, the other
# loops by channel or range: the same floats).  mnist:STR: OCSVM about 2 s, Deep SVDD
# (10 + 10 epochs) about 20 s.
./trainer/clad-train --method ocsvm --data mnist --normal mnist:STR --quiet --json > "$out/ocsvm.json"
svdd=(--method deepsvdd --data mnist --normal mnist:STR --ae-epochs 10 --svdd-epochs 10 --latent 32
	--svdd-batch 128 --seed 1 --quiet --json)
./trainer/clad-train "${svdd[@]}" > "$out/deepsvdd.json"
./trainer/clad-train "${svdd[@]}" --threads 2 > "$out/deepsvdd2.json"
"$PY" - "$out" <<'PYEOF'
import json, sys
d = sys.argv[1]
for method in ("ocsvm", "deepsvdd"):
    m = json.load(open("%s/%s.json" % (d, method)))
    a = m["metrics"]["auroc"]
    print("test_mnist: mnist:STR %s AUROC %.4f (%s)" % (method, a, m["model"]))
    if m["method"] != method or m["n_normal"] + m["n_anomaly"] != m["n_test"]:
        sys.exit("test_mnist: %s: malformed report %r" % (method, m))
    if not a > 0.6:
        sys.exit("test_mnist: %s AUROC %.4f is not above 0.6: the baseline did not learn" % (method, a))
a, b = (json.load(open("%s/%s.json" % (d, f)))["metrics"] for f in ("deepsvdd", "deepsvdd2"))
if a != b:
    sys.exit("test_mnist: Deep SVDD with the same seed (1 and 2 threads) gave other metrics: %r / %r" % (a, b))
PYEOF

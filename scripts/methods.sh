#!/usr/bin/env bash
# scripts/methods.sh: `make methods`: which detector to pick, measured.  For the 13 MNIST
# scenarios (mnist:CUR, STR, MIX, the ten digits) and seeds, one `clad-train --method auto`
# run each: it trains CLAD (the default recipe), Deep SVDD, the one-class SVM and their
# ensemble on the same normal images, measures each on a few labelled images and keeps
# the best; its report holds every candidate's test AUROC beside the choice.
#
# The data keep the three roles apart: training on the training part of the validation
# split (scripts/val_split.py: a seeded 80% of each class of the 8,000 training digits,
# data/mnist-val), choosing on its other 20% (every normal image there and a seeded
# METHODS_ANOMALIES (20) of its anomalies), testing on the 2,000 test digits
# (data/mnist-methods: links to those two sets' files).
#
# METHODS_BUDGET (short): short = CLAD 20 + 10 + 2 epochs, Deep SVDD 20 pretraining + 30
# one-class epochs (latent 10, as CLAD's autoencoder); full = the defaults (CLAD 100 +
# 100 + 10, Deep SVDD 100 + 50).  METHODS_SEEDS ("1 2 3 4"), METHODS_JOBS (2),
# METHODS_SCENARIOS (all).  Writes results/methods/BUDGET/SCENARIO_sSEED.json, every
# candidate's scores of all the validation images (SCENARIO_sSEED.scores.csv, for
# scripts/auto_rule.py), results/methods/BUDGET/table.md (scripts/methods_table.py) and
# auto_rule.md (scripts/auto_rule.py: --method auto's choice rule against others).
set -euo pipefail
cd "$(dirname "$0")/.."

BUDGET=${METHODS_BUDGET:-short}
case $BUDGET in
	short) FLAGS="--ae-epochs 20 --dec-epochs 10 --clf-epochs 2 --svdd-epochs 30" ;;
	full) FLAGS="" ;;
	*) echo "methods.sh: METHODS_BUDGET must be short or full, not $BUDGET" >&2; exit 2 ;;
esac
[ -f data/mnist/train-images-idx3-ubyte ] || { echo "methods.sh: run make data first" >&2; exit 1; }
[ -f data/mnist-val/train-images-idx3-ubyte ] || /usr/bin/python3 scripts/val_split.py data/mnist data/mnist-val
mkdir -p data/mnist-methods
for f in train-images-idx3-ubyte train-labels-idx1-ubyte; do ln -sf ../mnist-val/$f data/mnist-methods/$f; done
for f in t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do ln -sf ../mnist/$f data/mnist-methods/$f; done

OUT=results/methods/$BUDGET
mkdir -p "$OUT"
jobs_file=$OUT/jobs.txt
: >"$jobs_file"
for seed in ${METHODS_SEEDS:-1 2 3 4}; do
	for sc in ${METHODS_SCENARIOS:-CUR STR MIX 0 1 2 3 4 5 6 7 8 9}; do
		[ -s "$OUT/${sc}_s$seed.json" ] || echo "$sc $seed" >>"$jobs_file"
	done
done
run_one() {
	local sc=$1 seed=$2 name=$1_s$2 t0
	t0=$(date +%s)
	# shellcheck disable=SC2086
	if ./trainer/clad-train --data idx:data/mnist-methods --normal "mnist:$sc" --seed "$seed" --method auto \
		--validation idx:data/mnist-val --validation-anomalies "${METHODS_ANOMALIES:-20}" --validation-scores "$OUT/$name.scores.csv" \
		$FLAGS --quiet --json \
		>"$OUT/$name.json.tmp" 2>"$OUT/$name.err"; then
		mv "$OUT/$name.json.tmp" "$OUT/$name.json"
		echo "methods: mnist:$sc seed $seed done in $(( $(date +%s) - t0 )) s"
	else
		echo "methods: mnist:$sc seed $seed FAILED: $(tail -1 "$OUT/$name.err")" >&2
		return 1
	fi
}
export -f run_one
export OUT FLAGS
echo "methods: budget $BUDGET, $(wc -l <"$jobs_file") runs to do, ${METHODS_JOBS:-2} at a time -> $OUT"
xargs -P "${METHODS_JOBS:-2}" -L 1 bash -c 'run_one "$@"' _ <"$jobs_file"
/usr/bin/python3 scripts/methods_table.py "$OUT" "$BUDGET" | tee "$OUT/table.md"
# the choice rules replayed on the validation images (and, to report, the test AUROCs)
/usr/bin/python3 scripts/auto_rule.py "$OUT" --test | tee "$OUT/auto_rule.md"

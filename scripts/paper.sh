#!/usr/bin/env bash
# scripts/paper.sh: `make paper`: clad's CLAD (the default recipe), CLAD as the paper
# trains it (--recipe paper), the one-class SVM and Deep SVDD on the real-MNIST split of
# `make data` (8000 train / 2000 test), for the paper's three latent-class scenarios
# (mnist:CUR, STR, MIX) and the ten one-class digits (mnist:0 ... mnist:9), over seeds,
# then one markdown table beside the paper's numbers (scripts/paper_table.py).
#
# PAPER_BUDGET (full): full = the recipes' own budgets: CLAD 100 + 100 + 10 epochs (the
# defaults; 10 classifier epochs over the four turns of every image), the paper's recipe
# 100 + 100 + 100, Deep SVDD 250 pretraining + 150 one-class epochs (Ruff et al.'s MNIST
# settings); hours on a 2-core machine.  short = the test suite's budget: CLAD 20 + 10 + 2,
# the paper's recipe 20 + 10 + 3, Deep SVDD 30 + 30.
# PAPER_JOBS (2): runs at a time, one thread each.  PAPER_SEEDS ("1"): the seeds, e.g.
# "1 2 3 4".  PAPER_METHODS (all: "clad clad-paper ocsvm deepsvdd").  PAPER_SCENARIOS
# (all: "CUR STR MIX 0 1 2 3 4 5 6 7 8 9"): a subset runs only those.
# Writes results/paper/BUDGET/METHOD_SCENARIO_sSEED.json (one clad-train --json report
# each; a run already there is kept) and results/paper/BUDGET/table.md.
set -euo pipefail
cd "$(dirname "$0")/.."

BUDGET=${PAPER_BUDGET:-full}
JOBS=${PAPER_JOBS:-2}
SEEDS=${PAPER_SEEDS:-${PAPER_SEED:-1}}
case $BUDGET in
	# the options of each method at this budget (words; run_one splits them)
	full)
		CLAD_FLAGS=""
		PAPER_FLAGS="--recipe paper"
		SVDD_FLAGS="--ae-epochs 250 --svdd-epochs 150 --latent 32 --svdd-batch 200" ;;
	short)
		CLAD_FLAGS="--ae-epochs 20 --dec-epochs 10 --clf-epochs 2"
		PAPER_FLAGS="--recipe paper --ae-epochs 20 --dec-epochs 10 --clf-epochs 3"
		SVDD_FLAGS="--ae-epochs 30 --svdd-epochs 30 --latent 32 --svdd-batch 128" ;;
	*)
		echo "paper.sh: PAPER_BUDGET must be full or short, not $BUDGET" >&2
		exit 2 ;;
esac
OUT=results/paper/$BUDGET
mkdir -p "$OUT"

# one line per run: method scenario seed (seed by seed, so a cut-short run leaves whole seeds)
jobs_file=$OUT/jobs.txt
: >"$jobs_file"
for seed in $SEEDS; do
	for sc in ${PAPER_SCENARIOS:-CUR STR MIX 0 1 2 3 4 5 6 7 8 9}; do
		for method in ${PAPER_METHODS:-clad clad-paper ocsvm deepsvdd}; do
			[ -s "$OUT/${method}_${sc}_s$seed.json" ] || echo "$method $sc $seed" >>"$jobs_file"
		done
	done
done
run_one() {
	local method=$1 sc=$2 seed=$3 extra=() name=$1_$2_s$3
	case $method in
		# shellcheck disable=SC2206
		clad) extra=($CLAD_FLAGS) ;;
		# shellcheck disable=SC2206
		clad-paper) extra=($PAPER_FLAGS) ;;
		ocsvm) extra=(--method ocsvm) ;;
		# shellcheck disable=SC2206
		deepsvdd) extra=(--method deepsvdd $SVDD_FLAGS) ;;
	esac
	local t0=$(date +%s)
	case $method in clad*) extra+=(--out "$OUT/$name.safetensors") ;; esac
	if ./trainer/clad-train --data mnist --normal "mnist:$sc" --seed "$seed" --quiet --json "${extra[@]}" \
		>"$OUT/$name.json.tmp" 2>"$OUT/$name.err"; then
		mv "$OUT/$name.json.tmp" "$OUT/$name.json"
		rm -f "$OUT/$name.safetensors"   # the report is what the table needs
		echo "paper: $method mnist:$sc seed $seed done in $(( $(date +%s) - t0 )) s"
	else
		echo "paper: $method mnist:$sc seed $seed FAILED: $(tail -1 "$OUT/$name.err")" >&2
		return 1
	fi
}
export -f run_one
export OUT CLAD_FLAGS PAPER_FLAGS SVDD_FLAGS
echo "paper: budget $BUDGET, $(wc -l <"$jobs_file") runs to do, $JOBS at a time, seeds $SEEDS -> $OUT"
t_start=$(date +%s)
xargs -P "$JOBS" -L 1 bash -c 'run_one "$@"' _ <"$jobs_file"
echo "paper: all runs in $(( $(date +%s) - t_start )) s"
/usr/bin/python3 scripts/paper_table.py "$OUT" "$BUDGET" | tee "$OUT/table.md"

#!/usr/bin/env bash
# scripts/paper.sh: `make paper` (issue 8): CLAD, the one-class SVM and Deep SVDD on the
# real-MNIST split of `make data` (8000 train / 2000 test), for the paper's three
# latent-class scenarios (mnist:CUR, STR, MIX) and the ten one-class digits (mnist:0 ...
# mnist:9), then one markdown table beside the paper's numbers (scripts/paper_table.py).
#
# PAPER_BUDGET (full): full = the reference's budget: CLAD 100 + 100 + 100 epochs (the
# defaults), Deep SVDD 250 pretraining + 150 one-class epochs (Ruff et al.'s MNIST
# settings); hours on a 2-core machine.  short = the test suite's budget: CLAD 20 + 10 + 3,
# Deep SVDD 30 + 30; about 20 minutes here with PAPER_JOBS=2.
# PAPER_JOBS (2): runs at a time, one thread each.  PAPER_SEED (1).  PAPER_SCENARIOS
# (all: "CUR STR MIX 0 1 2 3 4 5 6 7 8 9"): a subset runs only those.
# Writes results/paper/BUDGET/METHOD_SCENARIO.json (one clad-train --json report each; a
# run already there is kept) and results/paper/BUDGET/table.md.
set -euo pipefail
cd "$(dirname "$0")/.."

BUDGET=${PAPER_BUDGET:-full}
JOBS=${PAPER_JOBS:-2}
SEED=${PAPER_SEED:-1}
case $BUDGET in
	# the options of each method at this budget (words; run_one splits them)
	full)
		CLAD_FLAGS=""
		SVDD_FLAGS="--ae-epochs 250 --svdd-epochs 150 --latent 32 --ae-batch 200" ;;
	short)
		CLAD_FLAGS="--ae-epochs 20 --dec-epochs 10 --clf-epochs 3"
		SVDD_FLAGS="--ae-epochs 30 --svdd-epochs 30 --latent 32 --ae-batch 128" ;;
	*)
		echo "paper.sh: PAPER_BUDGET must be full or short, not $BUDGET" >&2
		exit 2 ;;
esac
OUT=results/paper/$BUDGET
mkdir -p "$OUT"

# one line per run: method scenario
jobs_file=$OUT/jobs.txt
: >"$jobs_file"
for sc in ${PAPER_SCENARIOS:-CUR STR MIX 0 1 2 3 4 5 6 7 8 9}; do
	for method in clad ocsvm deepsvdd; do
		[ -s "$OUT/${method}_$sc.json" ] || echo "$method $sc" >>"$jobs_file"
	done
done
run_one() {
	local method=$1 sc=$2 extra=()
	case $method in
		# shellcheck disable=SC2206
		clad) extra=(--out "$OUT/clad_$sc.safetensors" $CLAD_FLAGS) ;;
		ocsvm) extra=(--method ocsvm) ;;
		# shellcheck disable=SC2206
		deepsvdd) extra=(--method deepsvdd $SVDD_FLAGS) ;;
	esac
	local t0=$(date +%s)
	if ./trainer/clad-train --data mnist --normal "mnist:$sc" --seed "$SEED" --quiet --json "${extra[@]}" \
		>"$OUT/${method}_$sc.json.tmp" 2>"$OUT/${method}_$sc.err"; then
		mv "$OUT/${method}_$sc.json.tmp" "$OUT/${method}_$sc.json"
		echo "paper: $method mnist:$sc done in $(( $(date +%s) - t0 )) s"
	else
		echo "paper: $method mnist:$sc FAILED: $(tail -1 "$OUT/${method}_$sc.err")" >&2
		return 1
	fi
}
export -f run_one
export OUT SEED CLAD_FLAGS SVDD_FLAGS
echo "paper: budget $BUDGET, $(wc -l <"$jobs_file") runs to do, $JOBS at a time, seed $SEED -> $OUT"
t_start=$(date +%s)
xargs -P "$JOBS" -L 1 bash -c 'run_one "$@"' _ <"$jobs_file"
echo "paper: all runs in $(( $(date +%s) - t_start )) s"
/usr/bin/python3 scripts/paper_table.py "$OUT" "$BUDGET" | tee "$OUT/table.md"

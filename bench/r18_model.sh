#!/usr/bin/env bash
# bench/r18_model.sh [orientation]: the trained ResNet-18 the database benchmarks share
# (bench/build/r18_odin.safetensors: 1x28x28, K = 10, mnist:STR with a short budget,
# --recipe paper: an ODIN model, which PL/Python + PyTorch recompute), or with
# "orientation" the same with the default recipe (bench/build/r18_orientation.safetensors:
# 4 turns, classifier outputs 40), trained once and cached: delete one to train a new
# one.  Prints its path.
set -euo pipefail
cd "$(dirname "$0")/.."
recipe=paper
[ "${1:-}" = orientation ] && recipe=clad
model=bench/build/r18_$([ $recipe = clad ] && echo orientation || echo odin).safetensors
mkdir -p bench/build
if [ -f "$model" ]; then
	echo "bench: using the cached model $model (delete it to train a new one)" >&2
else
	echo "bench: training $model: clad-train --recipe $recipe --data mnist --normal mnist:STR --ae-epochs 5 --dec-epochs 3 --clf-epochs 1" >&2
	t0=$(date +%s)
	./trainer/clad-train --recipe $recipe --data mnist --normal mnist:STR --ae-epochs 5 --dec-epochs 3 --clf-epochs 1 \
		--out "$model.tmp" --quiet >/dev/null
	mv "$model.tmp" "$model"
	echo "bench: trained in $(( $(date +%s) - t0 )) s" >&2
fi
echo "$model"

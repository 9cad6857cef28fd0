#!/usr/bin/env bash
# bench/r18_model.sh: the trained ResNet-18 the database benchmarks share
# (bench/build/r18.safetensors: 1x28x28, K = 10, mnist:STR with a short budget),
# trained once and cached: delete it to train a new one.  Prints its path.
set -euo pipefail
cd "$(dirname "$0")/.."
model=bench/build/r18.safetensors
mkdir -p bench/build
if [ -f "$model" ]; then
	echo "bench: using the cached model $model (delete it to train a new one)" >&2
else
	echo "bench: training $model: clad-train --data mnist --normal mnist:STR --ae-epochs 5 --dec-epochs 3 --clf-epochs 1" >&2
	t0=$(date +%s)
	./trainer/clad-train --data mnist --normal mnist:STR --ae-epochs 5 --dec-epochs 3 --clf-epochs 1 \
		--out "$model.tmp" --quiet >/dev/null
	mv "$model.tmp" "$model"
	echo "bench: trained in $(( $(date +%s) - t0 )) s" >&2
fi
echo "$model"

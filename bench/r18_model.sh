#!/usr/bin/env bash
# bench/r18_model.sh [odin|orientation|neighbours|neighbours_f32|deepsvdd|ocsvm|ensemble]: the trained ResNet-18 the database
# benchmarks share (bench/build/r18_odin.safetensors: 1x28x28, K = 10, mnist:STR with a
# short budget, --recipe paper: an ODIN model, which PL/Python + PyTorch recompute);
# "orientation": the default recipe's classifier scored by the orientation confidence
# (--bank 0; r18_orientation.safetensors: 4 turns, classifier outputs 40); "neighbours":
# the default recipe (r18_neighbours.safetensors: the same and a bfloat16 bank of 2,048
# images); "neighbours_f32": the same with a bank of floats; "deepsvdd": a Deep SVDD
# model of the same digits (--method deepsvdd, latent 32: its encoder, no ResNet-18);
# "ocsvm": a one-class SVM of the same digits (--method ocsvm: support vectors, no nets);
# "ensemble": the default recipe's model, a Deep SVDD and a one-class SVM in one model.
# Trained once and cached (retrained when the flags it was trained with change):
# delete one to train a new one.  Prints its path.
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-odin}
case $kind in
	odin) flags=(--recipe paper) ;;
	orientation) flags=(--recipe clad --bank 0) ;;
	neighbours) flags=(--recipe clad) ;;
	neighbours_f32) flags=(--recipe clad --bank-precision f32) ;;
	deepsvdd) flags=(--method deepsvdd --latent 32 --svdd-epochs 3 --no-eval) ;;
	ocsvm) flags=(--method ocsvm --no-eval) ;;
	ensemble) flags=(--method ensemble --recipe clad --svdd-epochs 3 --no-eval) ;;
	*) echo "r18_model.sh: odin, orientation, neighbours, neighbours_f32, deepsvdd, ocsvm or ensemble, not $kind" >&2
		exit 2 ;;
esac
model=bench/build/r18_$kind.safetensors
train_flags="${flags[*]} --data mnist --normal mnist:STR --ae-epochs 5 --dec-epochs 3 --clf-epochs 1"
mkdir -p bench/build
if [ -f "$model" ] && [ "$(cat "$model.flags" 2>/dev/null)" = "$train_flags" ]; then
	echo "bench: using the cached model $model (delete it to train a new one)" >&2
else
	echo "bench: training $model: clad-train $train_flags" >&2
	t0=$(date +%s)
	# shellcheck disable=SC2086
	./trainer/clad-train $train_flags --out "$model.tmp" --quiet >/dev/null
	mv "$model.tmp" "$model"
	echo "$train_flags" >"$model.flags"
	echo "bench: trained in $(( $(date +%s) - t0 )) s" >&2
fi
echo "$model"

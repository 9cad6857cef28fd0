# tests/ext/fixtures.sh: the files the pg_regress suite reads (sourced by bash
# scripts that run `make installcheck`).
#
#   regress_fixtures DIR
# trains two small models on real digits (cnn classifier, one epoch per stage:
# seconds): DIR/model1.safetensors (mnist:3, K 4, seed 1; the default recipe, an
# orientation model) and model2 (mnist:7, K 5, seed 2; --recipe paper, an ODIN
# model, as every model was before orientation models); writes images in every format and malformed ones
# (tests/ext/make_images.py) and malformed models (tests/ext/make_bad_models.py);
# makes it all readable by the server and exports CLAD_REGRESS_DATA=DIR.
# Uses BIN (clad-train), PY (python with Pillow) and MNIST (an idx directory).
#
#   fixture_model OUT NORMAL K SEED
# trains one such model.
regress_fixtures() {
	local d=$1
	mkdir -p "$d"
	fixture_model "$d/model1.safetensors" mnist:3 4 1
	fixture_model "$d/model2.safetensors" mnist:7 5 2 --recipe paper
	"$PY" tests/ext/make_images.py "$MNIST" "$d"
	"$PY" tests/ext/make_bad_models.py "$d/model1.safetensors" "$d/bad_models"
	chmod -R a+rX "$d"
	export CLAD_REGRESS_DATA=$d
}

# fixture_model OUT NORMAL K SEED [OPTION...]: a small cnn model on real digits,
# one epoch per stage (seconds); the options go to clad-train.
fixture_model() {
	local out=$1 normal=$2 k=$3 seed=$4
	shift 4
	"$BIN" --data "mnist:$MNIST" --classifier cnn --ae-epochs 1 --dec-epochs 1 "$@" --clf-epochs 1 \
		--ae-batch 64 --dec-batch 64 --kmeans-restarts 2 --no-eval --quiet \
		--normal "$normal" -K "$k" --seed "$seed" --out "$out" >/dev/null
}

# tests/ext/fixtures.sh: the files the pg_regress suite reads (sourced by bash
# scripts that run `make installcheck`).
#
#   regress_fixtures DIR
# trains two small models on real digits (cnn classifier, one epoch per stage:
# seconds): DIR/model1.safetensors (mnist:3, K 4, seed 1) and model2 (mnist:7,
# K 5, seed 2); writes images in every format and malformed ones
# (tests/ext/make_images.py) and malformed models (tests/ext/make_bad_models.py);
# makes it all readable by the server and exports CLAD_REGRESS_DATA=DIR.
# Uses BIN (clad-train), PY (python with Pillow) and MNIST (an idx directory).
regress_fixtures() {
	local d=$1
	local fast=(--data "mnist:$MNIST" --classifier cnn --ae-epochs 1 --dec-epochs 1 --clf-epochs 1
		--ae-batch 64 --dec-batch 64 --kmeans-restarts 2 --no-eval --quiet)
	mkdir -p "$d"
	"$BIN" "${fast[@]}" --normal mnist:3 -K 4 --seed 1 --out "$d/model1.safetensors" >/dev/null
	"$BIN" "${fast[@]}" --normal mnist:7 -K 5 --seed 2 --out "$d/model2.safetensors" >/dev/null
	"$PY" tests/ext/make_images.py "$MNIST" "$d"
	"$PY" tests/ext/make_bad_models.py "$d/model1.safetensors" "$d/bad_models"
	chmod -R a+rX "$d"
	export CLAD_REGRESS_DATA=$d
}

# tests/ext/fixtures.sh: the files the pg_regress suite reads (sourced by bash
# scripts that run `make installcheck`, and by the Makefile's fixture rules).
#
#   regress_fixtures DIR
# has make put the suite's files in tests/build/fixtures (`make regress-fixtures`:
# the two models regress_model trains, the committed images of tests/fixtures,
# files.tsv) and copies them to DIR, readable by the server's user, for a
# script's own checks that read them on the server (pg_read_binary_file);
# exports CLAD_REGRESS_DATA=DIR.  `make installcheck` itself needs none of
# this: it makes the files and psql reads them on the client side.
# Uses BIN (clad-train).
#
#   regress_model N OUT
# trains the suite's model N on the real digits committed in tests/fixtures/mnist
# (300 threes and 300 sevens; tests/fixtures/README.md): model1 (mnist:3, K 4,
# seed 1; the default recipe, an orientation model) and model2 (mnist:7, K 5,
# seed 2; --recipe paper, an ODIN model, as every model was before orientation
# models).  Seconds each; the same build gives the same bytes.
#
#   fixture_model OUT NORMAL K SEED [OPTION...]
# trains one such model on the idx digits in MNIST (tests/fixtures/mnist when
# unset).
regress_fixtures() {
	local d=$1
	make -s regress-fixtures REGRESS_TRAIN="${BIN:-trainer/clad-train}" >/dev/null
	mkdir -p "$d"
	cp -R tests/build/fixtures/. "$d"/
	chmod -R a+rX "$d"
	export CLAD_REGRESS_DATA=$d
}

regress_model() {
	local MNIST=tests/fixtures/mnist
	case $1 in
		1) fixture_model "$2" mnist:3 4 1 ;;
		2) fixture_model "$2" mnist:7 5 2 --recipe paper ;;
		*) echo "regress_model: no model $1" >&2; return 1 ;;
	esac
}

# fixture_model OUT NORMAL K SEED [OPTION...]: a small cnn model on real digits,
# one epoch per stage (seconds); the options go to clad-train.
fixture_model() {
	local out=$1 normal=$2 k=$3 seed=$4
	shift 4
	"${BIN:-trainer/clad-train}" --data "mnist:${MNIST:-tests/fixtures/mnist}" --classifier cnn \
		--ae-epochs 1 --dec-epochs 1 "$@" --clf-epochs 1 \
		--ae-batch 64 --dec-batch 64 --kmeans-restarts 2 --threads 1 --no-eval --quiet \
		--normal "$normal" -K "$k" --seed "$seed" --out "$out" >/dev/null
}

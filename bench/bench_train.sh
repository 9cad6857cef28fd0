#!/usr/bin/env bash
# bench/bench_train.sh: the trainer part of `make bench`. clad-train against
# PyTorch 1.13 (bench/bench_train_torch.py) on the same images (mnist:STR, the
# 90% of the normal training digits clad fits) and the same settings (clad's
# --recipe paper: the plain self-labels PyTorch's reference trains, not the
# default recipe's four turns of every image), with 1
# and 2 threads, in one run; prints seconds per epoch per 1,000 images and
# ratios (PyTorch time / clad time, higher = clad faster).
#
# How each side is timed (steady epochs, k-means left out):
#   PyTorch: one untimed warm-up epoch per stage, then 4 timed epochs of the
#            autoencoder and DEC and 2 of ResNet-18.
#   clad:    two runs with the same seed, A = 3/1/1 and B = 3/5/3 epochs
#            (autoencoder/DEC/classifier), --dec-tol 0 so DEC runs them all.
#            DEC and classifier = (B - A) / (4 or 2) epochs: the stage's fixed costs
#            (k-means with 20 restarts, the first and last encodings, the first
#            epoch's set-up) cancel, as A and B train the same autoencoder. The
#            autoencoder = its stage time / 3, the mean of A and B (first epoch
#            included).
# BENCH_TRAIN_THREADS overrides the thread counts ("1 2"), BENCH_TORCH_WAIT_POLICY
# PyTorch's OMP_WAIT_POLICY (PASSIVE; with 2 threads ACTIVE trains faster here).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-/usr/bin/python3}
out=bench/build
mkdir -p "$out"
threads=${BENCH_TRAIN_THREADS:-1 2}

# PyTorch as the inference part runs it: no spinning OpenMP workers (unless
# BENCH_TORCH_WAIT_POLICY says otherwise), and the OpenBLAS kernels
# that suit this CPU (unless the machine already chose). clad gets neither.
torch_env=(OMP_WAIT_POLICY="${BENCH_TORCH_WAIT_POLICY:-PASSIVE}")
if [ -z "${OPENBLAS_CORETYPE:-}" ] && grep -qw avx512f /proc/cpuinfo; then
	torch_env+=(OPENBLAS_CORETYPE=SKYLAKEX)
fi

clad_run() { # threads name ae dec clf
	./trainer/clad-train --data mnist --normal mnist:STR --out "$out/str.safetensors" \
		--recipe paper --ae-epochs "$3" --dec-epochs "$4" --clf-epochs "$5" --dec-tol 0 \
		--no-eval --record-times --threads "$1" --quiet > "$out/train-clad-t$1-$2.log"
	./trainer/clad-train info "$out/str.safetensors" --json > "$out/train-clad-t$1-$2.json"
}

# CPU ticks: busy on the whole machine, and used by this script's children;
# their difference is what other processes took while the timings ran.
busy_ticks() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
own_ticks() { awk '{print $16 + $17}' "/proc/$$/stat"; }
busy0=$(busy_ticks) own0=$(own_ticks) t0=$(date +%s.%N)

echo
echo "trainer: clad-train against PyTorch, mnist:STR, threads: $threads"
for t in $threads; do
	clad_run "$t" a 3 1 1
	clad_run "$t" b 3 5 3
	env "${torch_env[@]}" OMP_NUM_THREADS="$t" "$PY" bench/bench_train_torch.py "$t" --epochs 4 --clf-epochs 2 \
		> "$out/train-torch-t$t.txt"
done
other=$(awk -v b="$(( $(busy_ticks) - busy0 ))" -v o="$(( $(own_ticks) - own0 ))" \
	-v hz="$(getconf CLK_TCK)" -v t0="$t0" -v t1="$(date +%s.%N)" \
	'BEGIN { x = (b - o) / hz / (t1 - t0); printf "%.2f", (x < 0 ? 0 : x) }')
echo "other processes used $other of the $(nproc) cores on average while this ran" \
	"(above ~0.1 the numbers are noisy, the 2-thread ones most)"

"$PY" - "$out" $threads <<'PYEOF'
import json, sys
out, threads = sys.argv[1], [int(t) for t in sys.argv[2:]]
clad, torch = {}, {}
for t in threads:
    a = json.load(open("%s/train-clad-t%d-a.json" % (out, t)))["summary"]
    b = json.load(open("%s/train-clad-t%d-b.json" % (out, t)))["summary"]
    sa, sb = a["stages"], b["stages"]
    for st in (sa, sb):
        for s in ("autoencoder", "dec", "classifier"):
            if st[s]["epochs"] != st[s]["epochs_set"] or "seconds" not in st[s]:
                sys.exit("bench_train: clad's %s stage stopped early or was not timed" % s)
    kimg = b["n_fit"] / 1000.0
    ae = (sa["autoencoder"]["seconds"] + sb["autoencoder"]["seconds"]) / (
        sa["autoencoder"]["epochs"] + sb["autoencoder"]["epochs"])
    dec = (sb["dec"]["seconds"] - sa["dec"]["seconds"]) / (sb["dec"]["epochs"] - sa["dec"]["epochs"])
    clf = (sb["classifier"]["seconds"] - sa["classifier"]["seconds"]) / (
        sb["classifier"]["epochs"] - sa["classifier"]["epochs"])
    clad[t] = {"ae": ae / kimg, "dec": dec / kimg, "clf": clf / kimg, "n": b["n_fit"]}
    d = {}
    for line in open("%s/train-torch-t%d.txt" % (out, t)):
        k, _, v = line.strip().partition(" ")
        d[k] = v
    torch[t] = {s: float(d["torch_%s_s_per_kimg" % s]) for s in ("ae", "dec", "clf")}
    torch[t]["n"] = int(d["n_fit"])
    if torch[t]["n"] != clad[t]["n"]:
        sys.exit("bench_train: clad fits %d images, PyTorch %d" % (clad[t]["n"], torch[t]["n"]))
    torch[t]["info"] = d["torch"]

print("PyTorch: %s" % torch[threads[0]]["info"].replace(" threads %d" % threads[0], ""))
print("timed: PyTorch 1 warm-up + 4 epochs (AE, DEC) / 2 (ResNet-18); clad: difference of two"
      " runs (DEC 5-1, ResNet-18 3-1 epochs; k-means left out), AE stage time / 3 epochs")
print("fit images: %d; seconds per epoch per 1,000 images (lower is better);"
      " ratio = PyTorch / clad at equal threads (higher = clad faster)" % clad[threads[0]]["n"])
print()
hdr = "%-12s" % "stage"
for t in threads:
    hdr += " %9s" % ("clad %dt" % t)
for t in threads:
    hdr += " %9s" % ("torch %dt" % t)
for t in threads:
    hdr += " %9s" % ("ratio %dt" % t)
print(hdr)
for s, label in (("ae", "autoencoder"), ("dec", "DEC"), ("clf", "ResNet-18")):
    row = "%-12s" % label
    for t in threads:
        row += " %9.3f" % clad[t][s]
    for t in threads:
        row += " %9.3f" % torch[t][s]
    for t in threads:
        row += " %8.2fx" % (torch[t][s] / clad[t][s])
    print(row)
PYEOF

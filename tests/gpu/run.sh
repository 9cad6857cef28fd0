#!/usr/bin/env bash
# tests/gpu/run.sh: the GPU check, on a machine with a CUDA GPU (about 4 minutes).
#
#   1. parity: tests/test_device on the GPU (every layer in small nets of odd
#      shapes and every reference model: outputs within 1e-4, gradients within
#      1e-3, BatchNorm statistics, SGD and Adam steps; see tests/test_device.c);
#   2. a short mnist:STR run (ResNet-18) on the GPU and on the CPU, same seed:
#      the AUROCs must agree within 1 point; the time per epoch of each
#      stage on both (the CPU one pinned to 2 cores with 2 BLAS threads, the
#      size of the development machines);
#   3. the reference's full budget for mnist:CUR (100 + 100 + 100 epochs) on
#      the GPU, timed (stopped after GPU_FULL_LIMIT seconds, 170 by default).
# Results go to $OUT (the device machine's result folder) or results/gpu/: gpu.md (the
# table), parity.txt, summaries.json (the training summaries), errors.txt.
#
# On a GPU machine that cannot build clad, run tests/gpu/bundle.sh here first and carry
# .gpu/ along with data/mnist.  Without a GPU it says so and exits 0.  GPU_DRY_RUN=1 runs the script's own
# logic on the emulated device with tiny budgets (to check the script here).
# Needs the real MNIST digits in data/mnist (make data, or carried along).
set -euo pipefail
cd "$(dirname "$0")/../.."

PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
# the bulky files (models, logs) in a work folder; the few that the device tool brings back
# (at most 8, 16 MB each) in $OUT or results/gpu: gpu.md, parity.txt, summaries.json, errors.txt
DEST=${OUT:-results/gpu}
R=$(mktemp -d /tmp/clad_gpu.XXXXXX)
mkdir -p "$DEST"
keep() { cp "$R"/parity.txt "$R"/gpu.md "$R"/summaries.json "$DEST"/ 2>/dev/null || true
	cat "$R"/*.err >"$DEST/errors.txt" 2>/dev/null || true; rm -rf "$R"; }
trap keep EXIT
DEV=cuda
SHORT=(--ae-epochs 10 --dec-epochs 10 --clf-epochs 5)
FULL=(--ae-epochs 100 --dec-epochs 100 --clf-epochs 100)
LIMIT=${GPU_FULL_LIMIT:-170}
if [ "${GPU_DRY_RUN:-0}" = 1 ]; then
	DEV=emulated
	SHORT=(--ae-epochs 1 --dec-epochs 1 --clf-epochs 1 --classifier fc3)
	FULL=(--ae-epochs 1 --dec-epochs 1 --clf-epochs 1 --classifier fc3)
elif ! nvidia-smi -L >/dev/null 2>&1; then
	echo "tests/gpu/run.sh: no GPU here (nvidia-smi -L failed): nothing to check"
	exit 0
fi
[ -f data/mnist/t10k-labels-idx1-ubyte ] || { echo "tests/gpu/run.sh: data/mnist missing (make data)" >&2; exit 1; }

started=$(date +%s)
TRAIN=./trainer/clad-train
TEST=./tests/test_device
if [ -x .gpu/clad-train ] && [ "${GPU_DRY_RUN:-0}" != 1 ]; then
	# binaries and libraries made here by tests/gpu/bundle.sh (the GPU machine cannot build)
	echo "== using .gpu/ (tests/gpu/bundle.sh)"
	TRAIN=./.gpu/clad-train
	TEST=./.gpu/test_device
	rm -rf /tmp/clad_gpu_lib
	mkdir -p /tmp/clad_gpu_lib
	tar -xJf .gpu/lib.tar.xz -C /tmp/clad_gpu_lib
	export LD_LIBRARY_PATH=/tmp/clad_gpu_lib/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
	# CUDA 13's cuBLAS and runtime: the rpath's /usr/local/cuda/lib64, or wherever they are
	if ldd "$TRAIN" | grep -q "libcublas.*not found"; then
		cublas=$(find /usr/local /usr/lib /opt -name 'libcublas.so.13*' 2>/dev/null | head -1)
		cudart=$(find /usr/local /usr/lib /opt -name 'libcudart.so.13*' 2>/dev/null | head -1)
		[ -n "$cublas" ] && LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$(dirname "$cublas")
		[ -n "$cudart" ] && LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$(dirname "$cudart")
	fi
	ldd "$TRAIN" | grep "not found" && { echo "tests/gpu/run.sh: libraries missing" >&2; exit 1; }
else
	echo "== build"
	make -s CUDA=1 trainer/clad-train tests/test_device
fi
[ "$DEV" = cuda ] && nvidia-smi -L

echo "== parity (tests/test_device on $DEV)"
CLAD_TEST_DEVICE=$DEV "$TEST" 2>&1 | tee "$R/parity.txt"
parity_ok=0
grep -q "^test_device: [0-9]* checks, 0 failed" "$R/parity.txt" && ! grep -q SKIPPED "$R/parity.txt" && parity_ok=1

echo "== mnist:STR, short budget, on $DEV and on 2 CPU cores"
# train NAME [command prefix...] -- [clad-train options...]: model, summary, wall seconds in $R/NAME.*
train() {
	local name=$1 pre=() t0
	shift
	while [ "$1" != -- ]; do pre+=("$1"); shift; done
	shift
	t0=$(date +%s.%N)
	"${pre[@]}" "$TRAIN" --data mnist --seed 1 --record-times --json --quiet \
		--out "$R/$name.safetensors" "$@" >"$R/$name.json" 2>"$R/$name.err" || return $?
	awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { print b - a }' >"$R/$name.wall"
}
train str_gpu -- --device "$DEV" --normal mnist:STR "${SHORT[@]}" || { cat "$R/str_gpu.err"; exit 1; }
# the CPU run pinned to two cores (taskset, when there) with two BLAS threads
pin=()
command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ] && pin=(taskset -c 0,1)
train str_cpu "${pin[@]}" -- --device cpu --threads 2 --normal mnist:STR "${SHORT[@]}" ||
	{ cat "$R/str_cpu.err"; exit 1; }

echo "== mnist:CUR, the reference's full budget, on $DEV (stopped after ${LIMIT}s)"
full_rc=0
train cur_full timeout "$LIMIT" -- --device "$DEV" --normal mnist:CUR "${FULL[@]}" || full_rc=$?

"$PY" - "$R" "$parity_ok" "$full_rc" "$LIMIT" "$DEV" <<'EOF'
import json, struct, sys
R, parity_ok, full_rc, limit, dev = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]

def summary(name):
    raw = open(f"{R}/{name}.safetensors", "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    return json.loads(json.loads(raw[8:8 + n])["__metadata__"]["summary"])

def per_epoch(s, stage):
    st = s["stages"][stage]
    return st["seconds"] / st["epochs"] if st["epochs"] else float("nan")

g, c = summary("str_gpu"), summary("str_cpu")
ga, ca = g["test"]["score"]["auroc"], c["test"]["score"]["auroc"]
lines = [f"# GPU check ({dev})", "",
         f"- parity (tests/test_device on the GPU): {'passed' if parity_ok else 'FAILED'}",
         f"- mnist:STR short budget, AUROC: GPU {100*ga:.2f}, CPU {100*ca:.2f}, "
         f"difference {100*abs(ga-ca):.2f} points ({'within' if abs(ga-ca) <= 0.01 else 'NOT within'} 1 point)",
         "", "| stage | GPU s/epoch | CPU (2 cores) s/epoch | speed-up |", "|---|---:|---:|---:|"]
ok = parity_ok and abs(ga - ca) <= 0.01
for stage in ("autoencoder", "dec", "classifier"):
    a, b = per_epoch(g, stage), per_epoch(c, stage)
    lines.append(f"| {stage} | {a:.3f} | {b:.3f} | {b/a:.1f}x |")
if full_rc == 0:
    f = summary("cur_full")
    wall = float(open(f"{R}/cur_full.wall").read())
    t = f["stages"]
    lines += ["", f"- mnist:CUR full budget ({t['autoencoder']['epochs']} + {t['dec']['epochs']} + "
              f"{t['classifier']['epochs']} epochs; DEC stops early at its tolerance): "
              f"{wall:.1f} s wall, stages {t['autoencoder']['seconds']:.1f} + {t['dec']['seconds']:.1f} + "
              f"{t['classifier']['seconds']:.1f} s, AUROC {100*f['test']['score']['auroc']:.2f}"]
else:
    lines += ["", f"- mnist:CUR full budget: did not finish within {limit} s (exit {full_rc})"]
    ok = False
open(f"{R}/gpu.md", "w").write("\n".join(lines) + "\n")
runs = {"str_gpu": g, "str_cpu": c}
if full_rc == 0:
    runs["cur_full"] = f
json.dump(runs, open(f"{R}/summaries.json", "w"), indent=1)
print("\n".join(lines))
sys.exit(0 if ok else 1)
EOF
echo "tests/gpu/run.sh: $(( $(date +%s) - started )) s"

#!/usr/bin/env bash
# tests/gpu/run.sh: the GPU check, on a machine with a CUDA GPU (about 6-8 minutes on
# an H100; GPU_TOTAL_LIMIT, 480 s by default, bounds the whole run).
#
# Stages, each with its own time limit (and none past the overall deadline); a stage
# that fails or runs out of time is recorded and the next one runs regardless:
#   parity   tests/build/unit/test_device on the GPU: every layer in small nets of odd shapes and
#            every reference model against the CPU (outputs 1e-4, gradients 1e-3,
#            BatchNorm statistics, SGD), Adam steps and loss values within bounds derived
#            from their rounding, one wait per training step (tests/unit/test_device.c);
#   auroc    mnist:STR at a short budget (GPU_SHORT) over seeds 1 2 3 on the GPU, and
#            the same seeds on the CPU, side by side on this machine's cores (each run
#            pinned to 2 cores, 2 BLAS threads: the development machines' size), started
#            first so that they run while the GPU stages do.  The check passes when the
#            GPU's and the CPU's mean AUROCs are within the seeds' spread:
#              |mean_GPU - mean_CPU| <= max(range_GPU, range_CPU, 0.5 points)
#            (range: highest minus lowest of the 3 seeds; with the seeds' standard
#            deviation s, a range of 3 is about 1.7 s and a difference of two 3-seed means
#            has deviation 0.82 s: about a 2-sigma rule).  The same-seed differences are
#            listed too.  cuBLAS sums in another order than OpenBLAS and a GPU contracts
#            a*b + c, so k-means and DEC labels can flip: same seeds do not give the same
#            AUROC, and seeds alone move it by up to 4 points (docs/results.md);
#   speed    seconds per epoch of each stage on the GPU and on the CPU (median of the 3
#            seeds each; the CPU runs 2 threads on 2 cores with the other CPU runs beside;
#            the GPU runs' host share, k-means, calibration and evaluation, gets up to 8
#            threads on the cores after the CPU runs');
#   full     the default recipe's full budget for mnist:CUR (100 + 100 + 10 epochs, the
#            classifier's over 4 orientations; DEC stops early at its tolerance) on the
#            GPU, timed, stopped after GPU_FULL_LIMIT s (200); when stopped, where it got
#            and an estimate from the short runs' epochs;
#   debug    tests/build/unit/test_device on the GPU again with CLAD_CUDA_DEBUG=1 (a wait after every
#            launch, failures name their kernel), in the time left.
#
# Results go to $OUT (the device machine's result folder) or results/gpu/, written as
# each stage ends (a run killed at its time limit leaves what it had): gpu.md (the summary
# and tables, rewritten after every stage), log.txt, parity.txt (tests/build/unit/test_device's
# output, streamed), runs.tsv (every training run), summaries.json (their training
# summaries), full_progress.txt (the full run's per-epoch lines, streamed), errors.txt.
# Exit status 0 when every check passed, 1 otherwise (gpu.md names the failed ones).
# Limits (seconds): GPU_TOTAL_LIMIT 480, GPU_PARITY_LIMIT 150, GPU_SEED_LIMIT 90 (each GPU
# run), GPU_CPU_LIMIT 360 (each CPU run), GPU_FULL_LIMIT 200; the debug stage gets what is
# left (at most 120).  GPU_SHORT overrides the short budget ("--ae-epochs 10 --dec-epochs
# 10 --clf-epochs 5").
#
# On a GPU machine that cannot build clad, run tests/gpu/bundle.sh here first and carry
# .gpu/ along with data/mnist (the device tool: carry [".gpu", "data/mnist"]).  Without a
# GPU it says so and exits 0.  Needs the real MNIST digits in data/mnist (make data).
#
# For testing the script itself (tests/gpu/test_run.sh): GPU_DRY_RUN=1 runs every stage
# on the emulated device with tiny budgets on a subset of the digits, and GPU_STUB_FAIL
# (dry runs only; a comma list) replaces parts by stubs: "parity" a parity run that fails
# a check, "hang-auroc" GPU training runs that never finish.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1

PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
DEST=${OUT:-results/gpu}
mkdir -p "$DEST"
rm -f "$DEST"/gpu.md "$DEST"/log.txt "$DEST"/parity.txt "$DEST"/runs.tsv "$DEST"/summaries.json \
	"$DEST"/full_progress.txt "$DEST"/errors.txt
# models and run outputs here; what the device tool brings back (a few files) in $DEST
W=$(mktemp -d "${TMPDIR:-/tmp}/clad_gpu.XXXXXX")
: >"$W/stages.tsv"
: >"$W/runs.tsv"
DRY=${GPU_DRY_RUN:-0}
STUB=${GPU_STUB_FAIL:-}
stub() { [[ ",$STUB," == *",$1,"* ]]; }

T0=$(date +%s)
DEADLINE=$((T0 + ${GPU_TOTAL_LIMIT:-480}))
RESERVE=15						# for the report at the end
log() { echo "$*" | tee -a "$DEST/log.txt"; }
elapsed() { echo $(($(date +%s) - T0)); }
# budget LIMIT: a stage's time limit, LIMIT or what is left before the deadline
budget() {
	local l=$1 r=$((DEADLINE - RESERVE - $(date +%s)))
	[ "$r" -lt "$l" ] && l=$r
	[ "$l" -lt 1 ] && l=1
	echo "$l"
}

# ---------------------------------------------------------------- the report
# Rewritten from what is there after every stage: gpu.md, runs.tsv, summaries.json.
report() {
	"$PY" - "$W" "$DEST" "$DEV" "$DRY" "$(elapsed)" "${GPU_TOTAL_LIMIT:-480}" "${GPU_THREADS:-2}" <<'EOF' || echo "report failed" >>"$DEST/errors.txt"
import json, os, re, statistics, struct, sys
W, DEST, dev, dry, elapsed, total, gthreads = (sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1", sys.argv[5],
                                              sys.argv[6], sys.argv[7])

def lines(path):
    try:
        return [l.rstrip("\n").split("\t") for l in open(path) if l.strip()]
    except OSError:
        return []

def summary(name):
    try:
        raw = open(f"{W}/{name}.safetensors", "rb").read()
        n = struct.unpack("<Q", raw[:8])[0]
        return json.loads(json.loads(raw[8:8 + n])["__metadata__"]["summary"])
    except Exception:
        return None

stages = {}
for row in lines(f"{W}/stages.tsv"):
    stages[row[0]] = row[1:]
runs = {}
for row in lines(f"{W}/runs.tsv"):
    runs[row[0]] = {"device": row[1], "seed": row[2], "rc": int(row[3]), "wall": float(row[4]), "limit": row[5]}
sums = {name: summary(name) for name, r in runs.items() if r["rc"] == 0}
sums = {k: v for k, v in sums.items() if v}
json.dump(sums, open(f"{DEST}/summaries.json", "w"), indent=1)
with open(f"{DEST}/runs.tsv", "w") as f:
    f.write("run\tdevice\tseed\texit\twall_s\tlimit_s\tauroc\n")
    for name, r in runs.items():
        au = sums[name]["test"]["score"]["auroc"] if name in sums else ""
        f.write(f"{name}\t{r['device']}\t{r['seed']}\t{r['rc']}\t{r['wall']:.1f}\t{r['limit']}\t{au}\n")

out = [f"# GPU check ({dev}{', dry run on the emulated device' if dry else ''})", ""]
failed, passed = [], []

def verdict(check, ok, text):
    (passed if ok else failed).append(check)
    out.append(f"- **{check}**: {'passed' if ok else 'FAILED'}: {text}")

# parity
par = stages.get("parity")
if par:
    txt = open(f"{DEST}/parity.txt", errors="replace").read() if os.path.exists(f"{DEST}/parity.txt") else ""
    first = txt.split("== CLAD_CUDA_DEBUG=1")[0]
    m = re.search(r"^test_device: (\d+) checks, (\d+) failed", first, re.M)
    res = f"{m.group(1)} checks, {m.group(2)} failed" if m else "no summary line"
    note = f"; {par[2]}" if len(par) > 2 and par[2] else ""
    verdict("parity", par[0] == "ok", f"tests/build/unit/test_device on {dev}: {res} ({par[0]}, {par[1]} s{note}; parity.txt)")
else:
    out.append("- parity: not run yet")

# AUROC over seeds
gpu = {r["seed"]: sums[n]["test"]["score"]["auroc"] for n, r in runs.items() if n.startswith("str_gpu") and n in sums}
cpu = {r["seed"]: sums[n]["test"]["score"]["auroc"] for n, r in runs.items() if n.startswith("str_cpu") and n in sums}
want = stages.get("auroc")
if want and want[0] == "started":
    out.append(f"- auroc: waiting for the runs; finished so far: GPU seeds {' '.join(sorted(gpu)) or 'none'}, "
               f"CPU seeds {' '.join(sorted(cpu)) or 'none'}")
elif want:
    seeds = want[2].split() if len(want) > 2 else []
    missing = [f"GPU seed {s}" for s in seeds if s not in gpu] + [f"CPU seed {s}" for s in seeds if s not in cpu]
    if len(gpu) >= 2 and len(cpu) >= 2 and not missing:
        mg, mc = statistics.mean(gpu.values()), statistics.mean(cpu.values())
        rg, rc = max(gpu.values()) - min(gpu.values()), max(cpu.values()) - min(cpu.values())
        bound = max(rg, rc, 0.005)
        verdict("auroc", abs(mg - mc) <= bound,
                f"mnist:STR short budget, seeds {' '.join(seeds)}: mean AUROC GPU {100*mg:.2f}, CPU {100*mc:.2f}, "
                f"difference {100*abs(mg-mc):.2f} points; bound max(range GPU {100*rg:.2f}, range CPU {100*rc:.2f}, "
                f"0.50) = {100*bound:.2f} points")
        out += ["", "| seed | GPU AUROC | CPU AUROC | difference |", "|---|---:|---:|---:|"]
        for s in seeds:
            out.append(f"| {s} | {100*gpu[s]:.2f} | {100*cpu[s]:.2f} | {100*(gpu[s]-cpu[s]):+.2f} |")
        out.append("")
    else:
        verdict("auroc", False, f"incomplete: {', '.join(missing) or 'fewer than 2 seeds'} did not finish "
                "(runs.tsv, errors.txt)")
else:
    out.append("- auroc: not run yet")

# speed per epoch
def per_epoch(prefix, stage):
    v = [s["stages"][stage]["seconds"] / s["stages"][stage]["epochs"] for n, s in sums.items()
         if n.startswith(prefix) and s["stages"].get(stage, {}).get("epochs")]
    return statistics.median(v) if v else None

if gpu or cpu:
    out += ["", "Seconds per epoch, median over the seeds (mnist:STR, "
            f"{'tiny dry-run budget' if dry else 'short budget'}; CPU: 2 BLAS threads pinned to 2 cores, "
            f"the other CPU runs beside it; GPU: the host's share on {gthreads} threads):", "",
            "| stage | GPU s/epoch | CPU (2 threads) s/epoch | GPU speed-up |", "|---|---:|---:|---:|"]
    for stage in ("autoencoder", "dec", "classifier"):
        a, b = per_epoch("str_gpu", stage), per_epoch("str_cpu", stage)
        fa = f"{a:.3f}" if a else "-"
        fb = f"{b:.3f}" if b else "-"
        out.append(f"| {stage} | {fa} | {fb} | {f'{b/a:.1f}x' if a and b else '-'} |")
    out.append("")

# the full budget
full = stages.get("full")
if full:
    f = sums.get("cur_full")
    if f:
        t = f["stages"]
        r = runs["cur_full"]
        out.append(f"- full budget, mnist:CUR on {dev}: {r['wall']:.1f} s wall; stages "
                   f"{t['autoencoder']['seconds']:.1f} s ({t['autoencoder']['epochs']} epochs) + "
                   f"{t['dec']['seconds']:.1f} s ({t['dec']['epochs']}) + {t['classifier']['seconds']:.1f} s "
                   f"({t['classifier']['epochs']}); AUROC {100*f['test']['score']['auroc']:.2f}")
    else:
        where = ""
        try:
            prog = [l for l in open(f"{DEST}/full_progress.txt", errors="replace").read().replace("\r", "\n").split("\n")
                    if re.match(r"^(autoencoder|dec|classifier): epoch", l)]
            where = f"; last progress: {prog[-1].strip()}" if prog else ""
        except OSError:
            pass
        est = ""
        ae, de, cl = per_epoch("str_gpu", "autoencoder"), per_epoch("str_gpu", "dec"), per_epoch("str_gpu", "classifier")
        if ae and de and cl:
            est = (f"; estimate from the short runs' epochs: {100*ae + 100*de + 10*cl:.0f} s at most "
                   f"(100 x {ae:.2f} + 100 x {de:.2f} (DEC stops early) + 10 x {cl:.2f})")
        why = ""
        try:
            errs = [l for l in open(f"{DEST}/full_progress.txt", errors="replace").read().split("\n")
                    if l.startswith("clad-train: ") and "failed" in l]
            why = f"; {errs[-1][:300]}" if errs else ""
        except OSError:
            pass
        out.append(f"- full budget, mnist:CUR on {dev}: did not finish ({full[0]}, {full[1]} s){why}{where}{est}")
else:
    out.append("- full budget: not run yet")

dbg = stages.get("debug")
if dbg:
    if dbg[0] == "skipped":
        out.append(f"- debug (CLAD_CUDA_DEBUG=1): skipped ({dbg[2] if len(dbg) > 2 else ''})")
    else:
        note = f"; {dbg[2]}" if len(dbg) > 2 and dbg[2] else ""
        verdict("debug", dbg[0] == "ok", f"tests/build/unit/test_device with CLAD_CUDA_DEBUG=1: {dbg[0]}, {dbg[1]} s{note}")

# the parity table: worst error / bound per family, as test_device prints them
if os.path.exists(f"{DEST}/parity.txt"):
    txt = open(f"{DEST}/parity.txt", errors="replace").read()
    first = txt.split("== CLAD_CUDA_DEBUG=1")[0]
    rows = re.findall(r"^  parity: (.*?), worst (.*?) ([0-9.eE+-]+|inf|nan)$", first, re.M)
    devline = re.findall(r"^  device: (.*)$", first, re.M)
    if rows:
        out += ["", f"Parity ({devline[0] if devline else dev}): the worst of each kind of check, as a "
                "fraction of its bound (1 = at the bound):", "", "| checks | worst | of the bound |", "|---|---|---:|"]
        for what, how, v in rows:
            out.append(f"| {what} | {how} | {v} |")
    fails = re.findall(r"check failed: (.*)$", txt, re.M)
    if fails:
        out += ["", f"Failed checks ({len(fails)}; the first 10):", ""] + [f"    {l[:300]}" for l in fails[:10]]

head = [f"Checks failed: {', '.join(failed)}" if failed else
        ("All checks passed." if passed else "No check finished yet."),
        f"({elapsed} s of the {total} s allowed; stages: " +
        ", ".join(f"{k} {v[0]} {v[1]} s" for k, v in stages.items()) + ")", ""]
out[2:2] = head
open(f"{DEST}/gpu.md", "w").write("\n".join(out) + "\n")
open(f"{W}/verdict", "w").write("fail" if failed else "pass")
EOF
}

# stage_done NAME RESULT SECONDS [NOTE]: recorded, logged, and the report rewritten
stage_done() {
	printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "${4:-}" >>"$W/stages.tsv"
	log "== $1: $2 ($3 s)${4:+: $4}"
	report
}

# ---------------------------------------------------------------- where to run
DEV=cuda
SHORT=(${GPU_SHORT:---ae-epochs 10 --dec-epochs 10 --clf-epochs 5})
FULL=()							# the default recipe's budget
FULL_LIMIT=${GPU_FULL_LIMIT:-200}
CPU_LIMIT=${GPU_CPU_LIMIT:-360}
PARITY_LIMIT=${GPU_PARITY_LIMIT:-150}
SEED_LIMIT=${GPU_SEED_LIMIT:-90}
DATA=(--data mnist)
SEEDS=(1 2 3)
TRAIN=./trainer/clad-train
TEST=./tests/build/unit/test_device
if [ "$DRY" = 1 ]; then
	DEV=emulated
	SHORT=(--ae-epochs 1 --dec-epochs 1 --clf-epochs 1 --classifier fc3 --kmeans-restarts 2)
	FULL=(--ae-epochs 2 --dec-epochs 2 --clf-epochs 1 --classifier fc3 --kmeans-restarts 2)
elif [ -n "$STUB" ]; then
	echo "tests/gpu/run.sh: GPU_STUB_FAIL is for dry runs (GPU_DRY_RUN=1)" >&2
	exit 2
elif ! nvidia-smi -L >/dev/null 2>&1; then
	echo "tests/gpu/run.sh: no GPU here (nvidia-smi -L failed): nothing to check"
	exit 0
fi
[ -f data/mnist/t10k-labels-idx1-ubyte ] || { echo "tests/gpu/run.sh: data/mnist missing (make data)" >&2; exit 1; }
log "tests/gpu/run.sh: $(date -u '+%F %T') UTC, $(nproc) cores, results in $DEST"

t=$(date +%s)
if [ "$DRY" = 1 ]; then
	# a subset of the digits (1,200 training, 600 test images), so that a dry run takes seconds
	"$PY" - data/mnist "$W/mnist" <<'EOF'
import os, struct, sys
src, dst = sys.argv[1], sys.argv[2]
os.makedirs(dst)
for prefix, n in (("train", 1200), ("t10k", 600)):
    img = open(f"{src}/{prefix}-images-idx3-ubyte", "rb").read()
    lab = open(f"{src}/{prefix}-labels-idx1-ubyte", "rb").read()
    _, _, h, w = struct.unpack(">IIII", img[:16])
    open(f"{dst}/{prefix}-images-idx3-ubyte", "wb").write(struct.pack(">IIII", 0x803, n, h, w) + img[16:16 + n * h * w])
    open(f"{dst}/{prefix}-labels-idx1-ubyte", "wb").write(struct.pack(">II", 0x801, n) + lab[8:8 + n])
EOF
	DATA=(--data "mnist:$W/mnist")
	[ -x "$TRAIN" ] && [ -x "$TEST" ] || make -s trainer/clad-train tests/build/unit/test_device
	setup_ok=$?
elif [ -x .gpu/bin/clad-train ]; then
	# binaries, module and libraries made by tests/gpu/bundle.sh (this machine cannot build)
	log "== using .gpu/ (tests/gpu/bundle.sh): $(cat .gpu/BUILT 2>/dev/null)"
	TRAIN=./.gpu/bin/clad-train
	TEST=./.gpu/bin/test_device
	mkdir -p "$W/lib"
	tar -xJf .gpu/lib.tar.xz -C "$W"
	export LD_LIBRARY_PATH=$W/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
	# CUDA 13's cuBLAS and runtime for the module: its runpath, or wherever they are here
	if ldd .gpu/lib/clad/clad_cuda.so | grep -q "not found"; then
		for lib in libcublas.so.13 libcublasLt.so.13 libcudart.so.13; do
			found=$(find /usr/local /usr/lib /usr/lib64 /opt -name "$lib*" 2>/dev/null | head -1)
			[ -n "$found" ] && LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$(dirname "$found")
		done
	fi
	missing=$(ldd "$TRAIN" "$TEST" .gpu/lib/clad/clad_cuda.so 2>&1 | grep "not found")
	setup_ok=0
	[ -n "$missing" ] && { echo "libraries missing: $missing" >>"$DEST/errors.txt"; setup_ok=1; }
else
	log "== build"
	timeout "$(budget 300)" make -s CUDA=1 trainer/clad-train tests/build/unit/test_device core/cuda/clad_cuda.so \
		>>"$DEST/log.txt" 2>&1
	setup_ok=$?
fi
# the build's test_device looks for the CUDA module in ../core/cuda/ of its own
# directory (tests/build/unit/), not the build's core/cuda/: name the module
if [ "$TEST" = ./tests/build/unit/test_device ] && [ -f core/cuda/clad_cuda.so ] && [ -z "${CLAD_CUDA_MODULE:-}" ]; then
	export CLAD_CUDA_MODULE=$PWD/core/cuda/clad_cuda.so
fi
[ "$DEV" = cuda ] && nvidia-smi -L | tee -a "$DEST/log.txt"
if [ "$setup_ok" != 0 ]; then
	stage_done setup failed $(($(date +%s) - t)) "binaries or libraries missing (log.txt, errors.txt)"
	cat "$DEST/gpu.md"
	exit 1
fi
stage_done setup ok $(($(date +%s) - t))

# ---------------------------------------------------------------- pinning
# CPU runs on cores 0-1, 2-3, 4-5; the GPU's processes on two cores after them.
ncores=$(nproc)
pin_cpu() { # pin_cpu I: taskset's list for the I-th CPU run
	[ "$ncores" -ge 2 ] && command -v taskset >/dev/null || return 0
	local a=$(((2 * $1) % ncores))
	echo "$a,$(((a + 1) % ncores))"
}
# The GPU runs' host share (k-means, calibration, evaluation on the CPU) on the cores
# after the CPU runs', with up to 8 BLAS threads (2 where there are few cores).
GPU_CORES=
GPU_PIN=()
GPU_THREADS=2
first=$((2 * ${#SEEDS[@]}))
if [ "$ncores" -ge $((first + 2)) ] && command -v taskset >/dev/null; then
	last=$((ncores - 1 < first + 7 ? ncores - 1 : first + 7))
	GPU_CORES=$first-$last
	GPU_THREADS=$((last - first + 1))
	GPU_PIN=(taskset -c "$GPU_CORES")
fi

# train NAME DEVICE SEED LIMIT PIN [clad-train options...]: one run, recorded in runs.tsv
train() {
	local name=$1 dev=$2 seed=$3 limit=$4 pin=$5 t0 rc=0 pre=() err=$W/$1.err
	shift 5
	[ -n "$pin" ] && pre=(taskset -c "$pin")
	[ "$name" = cur_full ] && err=$DEST/full_progress.txt
	t0=$(date +%s.%N)
	if [[ "$name" == str_gpu* ]] && stub hang-auroc; then
		timeout --foreground "$limit" sleep 100000 || rc=$?
	else
		timeout --foreground "$limit" "${pre[@]}" "$TRAIN" "${DATA[@]}" --seed "$seed" --record-times --json \
			--device "$dev" --out "$W/$name.safetensors" "$@" >"$W/$name.json" 2>"$err" || rc=$?
	fi
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$dev" "$seed" "$rc" \
		"$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')" "$limit" >>"$W/runs.tsv"
	if [ "$rc" != 0 ]; then
		{ echo "== $name (exit $rc$([ "$rc" = 124 ] && echo ": stopped at its ${limit} s limit"))"
			tail -20 "$err"; } >>"$DEST/errors.txt"
	fi
	return "$rc"
}

# ---------------------------------------------------------------- CPU seeds, in the background
cpu_limit=$(budget "$CPU_LIMIT")
log "== CPU runs: mnist:STR ${SHORT[*]}, seeds ${SEEDS[*]}, each 2 threads on 2 cores, limit ${cpu_limit} s"
cpu_pids=()
for i in "${!SEEDS[@]}"; do
	train "str_cpu_${SEEDS[i]}" cpu "${SEEDS[i]}" "$cpu_limit" "$(pin_cpu "$i")" --threads 2 --quiet \
		--normal mnist:STR "${SHORT[@]}" &
	cpu_pids+=($!)
done

# ---------------------------------------------------------------- parity
t=$(date +%s)
lim=$(budget "$PARITY_LIMIT")
log "== parity: tests/build/unit/test_device on $DEV (limit ${lim} s)"
if stub parity; then
	# a stand-in that fails a check (GPU_STUB_FAIL=parity)
	{ echo "  device: $DEV (GPU_STUB_FAIL=parity: a stub, not tests/build/unit/test_device)"
		echo "tests/unit/test_device.c:0: check failed: stub: GPU_STUB_FAIL=parity fails this check"
		echo "  parity: outputs and gradients, worst error / bound 1.5"
		echo "test_device: 1 checks, 1 failed"; } >"$DEST/parity.txt"
	rc=1
else
	CLAD_TEST_DEVICE=$DEV timeout --foreground "$lim" "${GPU_PIN[@]}" "$TEST" >"$DEST/parity.txt" 2>&1
	rc=$?
fi
if [ $rc = 0 ] && grep -q "^test_device: [0-9]* checks, 0 failed" "$DEST/parity.txt" &&
	! grep -q SKIPPED "$DEST/parity.txt"; then
	stage_done parity ok $(($(date +%s) - t))
else
	stage_done parity failed $(($(date +%s) - t)) "exit $rc$([ $rc = 124 ] && echo ", stopped at ${lim} s"); \
$(grep -m1 -E 'check failed|SKIPPED' "$DEST/parity.txt" | cut -c1-200)"
fi

# ---------------------------------------------------------------- the GPU seeds
t=$(date +%s)
log "== GPU runs: mnist:STR ${SHORT[*]}, seeds ${SEEDS[*]}, on $DEV (host share: $GPU_THREADS threads${GPU_CORES:+ on cores $GPU_CORES})"
for s in "${SEEDS[@]}"; do
	lim=$(budget "$SEED_LIMIT")
	train "str_gpu_$s" "$DEV" "$s" "$lim" "$GPU_CORES" --threads "$GPU_THREADS" --quiet --normal mnist:STR "${SHORT[@]}" ||
		log "   seed $s on $DEV failed (errors.txt)"
	report
done
printf '%s\t%s\t%s\t%s\n' auroc started $(($(date +%s) - t)) "${SEEDS[*]}" >>"$W/stages.tsv"

# ---------------------------------------------------------------- the full budget
t=$(date +%s)
lim=$(budget "$FULL_LIMIT")
log "== full budget: mnist:CUR ${FULL[*]:-(the default recipe)} on $DEV (limit ${lim} s)"
if train cur_full "$DEV" 1 "$lim" "$GPU_CORES" --threads "$GPU_THREADS" --normal mnist:CUR "${FULL[@]}"; then
	stage_done full ok $(($(date +%s) - t))
else
	stage_done full "$([ "$(grep '^cur_full' "$W/runs.tsv" | cut -f4)" = 124 ] && echo "stopped at the limit" || echo failed)" \
		$(($(date +%s) - t))
fi

# ---------------------------------------------------------------- debug mode
t=$(date +%s)
if [ "$DEV" != cuda ]; then
	stage_done debug skipped 0 "CLAD_CUDA_DEBUG is the CUDA device's (a dry run)"
elif [ $((DEADLINE - RESERVE - $(date +%s))) -lt 30 ]; then
	stage_done debug skipped 0 "no time left"
else
	lim=$(budget 120)
	log "== debug: CLAD_CUDA_DEBUG=1 tests/build/unit/test_device (limit ${lim} s)"
	echo "== CLAD_CUDA_DEBUG=1" >>"$DEST/parity.txt"
	CLAD_CUDA_DEBUG=1 CLAD_TEST_DEVICE=cuda timeout --foreground "$lim" "${GPU_PIN[@]}" "$TEST" >>"$DEST/parity.txt" 2>&1
	rc=$?
	dbg=$(sed -n '/^== CLAD_CUDA_DEBUG=1/,$p' "$DEST/parity.txt")
	if [ $rc = 0 ] && grep -q "^test_device: [0-9]* checks, 0 failed" <<<"$dbg" && ! grep -q SKIPPED <<<"$dbg"; then
		stage_done debug ok $(($(date +%s) - t))
	else
		stage_done debug "$([ $rc = 124 ] && echo "stopped at the limit" || echo "failed (exit $rc)")" \
			$(($(date +%s) - t)) "$(grep -m1 -E 'check failed|SKIPPED' <<<"$dbg" | cut -c1-200)"
	fi
fi

# ---------------------------------------------------------------- the CPU seeds, the comparison
t=$(date +%s)
log "== waiting for the CPU runs"
for p in "${cpu_pids[@]}"; do wait "$p"; done
stage_done auroc compared $(($(date +%s) - t)) "${SEEDS[*]}"
rm -rf "$W"/*.safetensors
cat "$DEST/gpu.md"
log "tests/gpu/run.sh: $(elapsed) s"
verdict=$(cat "$W/verdict" 2>/dev/null || echo fail)
rm -rf "$W"
[ "$verdict" = pass ]

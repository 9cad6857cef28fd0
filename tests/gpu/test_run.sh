#!/usr/bin/env bash
# tests/gpu/test_run.sh: tests/gpu/run.sh's own logic, here, without a GPU: its dry run
# (GPU_DRY_RUN=1: every stage on the emulated device, tiny budgets, a subset of the
# digits) three times (about 2 minutes on 2 cores):
#   1. with stubs (GPU_STUB_FAIL=parity,hang-auroc): a parity run that fails a check and
#      GPU training runs that hang past their 2 s limit.  Every stage still runs: the
#      CPU seeds, the full budget and the report; gpu.md names the failed checks (parity,
#      auroc: incomplete), errors.txt says which runs stopped at their limit, exit 1;
#   2. killed (SIGKILL to its process group, as a device tool's time limit does) while
#      a GPU run hangs: what the finished stages wrote is there (gpu.md with the parity
#      verdict, parity.txt, log.txt);
#   3. without stubs: tests/build/unit/test_device on the emulated device passes, the AUROCs of
#      the emulated device and the CPU agree by the seeds' rule, exit 0.
# Needs data/mnist (make data).
set -euo pipefail
cd "$(dirname "$0")/../.."

T=$(mktemp -d /tmp/clad_test_gpu_run.XXXXXX)
pid=
cleanup() {
	[ -n "$pid" ] && kill -KILL -- "-$pid" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
. tests/integration/checks.sh
has() { grep -qF -- "$2" "$1" 2>/dev/null; }

# ---------------------------------------------------------------- 1. stubs that fail
mkdir -p "$T/tmp1"
rc=0
GPU_DRY_RUN=1 GPU_STUB_FAIL=parity,hang-auroc GPU_SEED_LIMIT=2 OUT="$T/out1" TMPDIR="$T/tmp1" \
	./tests/gpu/run.sh >"$T/run1.log" 2>&1 || rc=$?
O=$T/out1
check "[ $rc = 1 ]" "run 1 (stubs): exit $rc, expected 1: $(tail -5 "$T/run1.log")"
check "has '$O/gpu.md' 'Checks failed: parity, auroc'" "run 1: gpu.md does not name parity and auroc as failed"
check "has '$O/gpu.md' '**parity**: FAILED'" "run 1: no parity verdict"
check "has '$O/gpu.md' '**auroc**: FAILED: incomplete: GPU seed 1, GPU seed 2, GPU seed 3 did not finish'" \
	"run 1: the AUROC check does not say the GPU seeds did not finish"
check "has '$O/gpu.md' 'full budget, mnist:CUR on emulated: ' && has '$O/gpu.md' 's wall; stages'" \
	"run 1: the full budget ran not after the failures"
check "has '$O/gpu.md' '| classifier | - | '" "run 1: no CPU speed figures"
check "[ \$(grep -c 'stopped at its 2 s limit' '$O/errors.txt') = 3 ]" "run 1: errors.txt does not list the 3 stopped runs"
check "[ \$(awk -F'\t' '\$1 ~ /^str_cpu/ && \$4 == 0' '$O/runs.tsv' | wc -l) = 3 ]" "run 1: the CPU seeds did not all finish"
check "has '$O/parity.txt' 'check failed: stub'" "run 1: parity.txt lacks the stub's failed check"
for f in gpu.md log.txt parity.txt runs.tsv summaries.json full_progress.txt errors.txt; do
	check "[ -s '$O/$f' ]" "run 1: $f missing or empty"
done
check "[ -z \"\$(ls -A '$T/tmp1')\" ]" "run 1: its work folder was left behind"

# ---------------------------------------------------------------- 2. killed mid-run
mkdir -p "$T/tmp2"
O=$T/out2
GPU_DRY_RUN=1 GPU_STUB_FAIL=parity,hang-auroc OUT="$O" TMPDIR="$T/tmp2" \
	setsid ./tests/gpu/run.sh >"$T/run2.log" 2>&1 &
pid=$!
for _ in $(seq 1 120); do
	has "$O/log.txt" "== GPU runs" && break
	sleep 0.5
done
sleep 1
kill -KILL -- "-$pid" 2>/dev/null
wait "$pid" 2>/dev/null || true
pid=
check "has '$O/log.txt' '== GPU runs'" "run 2: never reached the GPU runs: $(cat "$T/run2.log")"
check "has '$O/gpu.md' '**parity**: FAILED' && has '$O/gpu.md' 'full budget: not run yet'" \
	"run 2: gpu.md does not hold the parity verdict of before the kill: $(cat "$O/gpu.md" 2>/dev/null)"
check "has '$O/parity.txt' 'test_device: 1 checks, 1 failed'" "run 2: parity.txt missing after the kill"

# ---------------------------------------------------------------- 3. no stubs
mkdir -p "$T/tmp3"
O=$T/out3
rc=0
GPU_DRY_RUN=1 OUT="$O" TMPDIR="$T/tmp3" ./tests/gpu/run.sh >"$T/run3.log" 2>&1 || rc=$?
check "[ $rc = 0 ]" "run 3 (no stubs): exit $rc: $(grep -E 'FAILED|failed' "$O/gpu.md" "$T/run3.log" | head -5)"
check "has '$O/gpu.md' 'All checks passed.'" "run 3: gpu.md does not say all checks passed"
check "has '$O/gpu.md' '**parity**: passed' && has '$O/gpu.md' '**auroc**: passed'" "run 3: parity or auroc not passed"
check "grep -qE '^test_device: [0-9]+ checks, 0 failed' '$O/parity.txt'" "run 3: test_device did not pass"
check "grep -q '| Adam steps | difference / rounding bound |' '$O/gpu.md'" "run 3: no parity table"
check "[ \$(awk -F'\t' 'NR > 1 && \$4 == 0' '$O/runs.tsv' | wc -l) = 7 ]" "run 3: not every training run finished"

echo "--- run 1's summary (stubs: a failed parity check, hung GPU runs):"
sed -n '1,8p' "$T/out1/gpu.md"
echo "test_run.sh: $checks checks, $fails failed"
[ "$fails" = 0 ]

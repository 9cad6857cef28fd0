#!/usr/bin/env bash
# tests/integration/test_cuda_module.sh: the CUDA backend is a module loaded at run time
# (core/cuda/clad_cuda.so, core/device_impl.h), so one clad-train starts
# everywhere and says why --device cuda cannot be had.  Checks, on this
# machine (no GPU needed):
#   - clad-train and tests/build/unit/test_device have no NEEDED entry for a CUDA library,
#     and the module (when built) exports its one function and needs nothing
#     of clad's;
#   - --device cuda with the module: here, without a GPU, "no usable CUDA GPU"
#     (with one: it trains);
#   - CLAD_CUDA_MODULE naming a missing file, or a file that is no module: a
#     clear message, exit 1, no model;
#   - make install puts the module in PREFIX/lib/clad, where the installed
#     clad-train finds it; a copy without the module says where it looked;
#   - with the CUDA Toolkit hidden (an empty directory bind-mounted over it in
#     a private mount namespace: unshare -m, as root), clad-train --device cpu
#     trains, and --device cuda quotes the loader's error.
# CUDA=0|1 (from make) says whether this build has the module.
set -euo pipefail
cd "$(dirname "$0")/../.."

BIN=./trainer/clad-train
MODULE=core/cuda/clad_cuda.so
CUDA=${CUDA:-$([ -f "$MODULE" ] && echo 1 || echo 0)}
# what the programs will find: the module built now, or one left by an earlier CUDA build
HAVE_MODULE=0
[ -f "$MODULE" ] && HAVE_MODULE=1
PY=${PYTHON:-/usr/bin/python3}
[ -x "$PY" ] || PY=python3
T=$(mktemp -d /tmp/clad_test_cuda_module.XXXXXX)
trap 'rm -rf "$T"' EXIT

. tests/integration/checks.sh

# a tiny idx set (tests/integration/synthetic_idx.py): 4 classes of 28x28 bars,
# 12 training and 6 test images each
"$PY" tests/integration/synthetic_idx.py "$T/data" --classes 4 --train 12 --test 6 --seed 7
TINY=(--normal 0,1 --classifier fc3 -K 2 --latent 4 --ae-epochs 1 --dec-epochs 1 --clf-epochs 1
      --ae-batch 8 --dec-batch 8 --clf-batch 8 --kmeans-restarts 1 --quiet)

# run NAME BINARY [clad-train options...]: exit status in $T/NAME.rc, stderr in $T/NAME.err
run() {
	local name=$1 bin=$2 rc=0
	shift 2
	"$bin" --data "$T/data" --out "$T/$name.safetensors" "${TINY[@]}" "$@" >"$T/$name.out" 2>"$T/$name.err" || rc=$?
	echo "$rc" >"$T/$name.rc"
}
# expect_refusal NAME TEXT: exit 1, TEXT and "use --device cpu" on stderr, no model
expect_refusal() {
	check "[ \"\$(cat '$T/$1.rc')\" = 1 ] && grep -qF -- '$2' '$T/$1.err' && grep -qF 'use --device cpu' '$T/$1.err' \
		&& [ ! -e '$T/$1.safetensors' ]" "$1: expected exit 1 with \"$2\": rc $(cat "$T/$1.rc"): $(cat "$T/$1.err")"
}

# ---------------------------------------------------------------- no CUDA library linked
for b in "$BIN" tests/build/unit/test_device; do
	check "! readelf -d '$b' | grep -E 'NEEDED.*(libcuda|libcudart|libcublas)'" \
		"$b needs a CUDA library: $(readelf -d "$b" | grep NEEDED | tr -s ' ' | tr '\n' ' ')"
done
if [ "$CUDA" = 1 ]; then
	check "[ -f '$MODULE' ]" "CUDA=1 but $MODULE was not built"
fi
if [ $HAVE_MODULE = 1 ]; then
	check "readelf -d '$MODULE' | grep -q 'NEEDED.*libcublas'" "$MODULE does not link cuBLAS"
	exports=$(nm -D --defined-only "$MODULE" | awk '$2 ~ /^[TDBVW]$/ { print $3 }' | grep -v '^_' | tr '\n' ' ')
	check "[ '$exports' = 'clad_cuda_module_open ' ]" "$MODULE exports more than clad_cuda_module_open: $exports"
	check "! nm -D --undefined-only '$MODULE' | grep -q ' clad_'" \
		"$MODULE needs clad symbols: $(nm -D --undefined-only "$MODULE" | grep ' clad_' | tr '\n' ' ')"
fi

# ---------------------------------------------------------------- --device cuda
have_gpu=0
nvidia-smi -L >/dev/null 2>&1 && have_gpu=1
run cuda "$BIN" --device cuda
if [ $HAVE_MODULE = 1 ] && [ $have_gpu = 1 ]; then
	check "[ \"\$(cat '$T/cuda.rc')\" = 0 ]" "--device cuda on a GPU failed: $(cat "$T/cuda.err")"
elif [ $HAVE_MODULE = 1 ]; then
	expect_refusal cuda "no usable CUDA GPU"
else
	expect_refusal cuda "no CUDA backend"
fi
run cpu "$BIN" --device cpu
check "[ \"\$(cat '$T/cpu.rc')\" = 0 ] && [ -s '$T/cpu.safetensors' ]" "--device cpu failed: $(cat "$T/cpu.err")"

# CLAD_CUDA_MODULE: a missing file, a file that is no shared object
CLAD_CUDA_MODULE=$T/missing/clad_cuda.so run missing "$BIN" --device cuda
expect_refusal missing "CLAD_CUDA_MODULE=$T/missing/clad_cuda.so: No such file or directory"
echo "not a module" >"$T/bogus.so"
CLAD_CUDA_MODULE=$T/bogus.so run bogus "$BIN" --device cuda
expect_refusal bogus "the CUDA backend $T/bogus.so cannot be loaded: "
# the override is not consulted for --device cpu
CLAD_CUDA_MODULE=$T/missing/clad_cuda.so run cpu_override "$BIN" --device cpu
check "[ \"\$(cat '$T/cpu_override.rc')\" = 0 ]" "--device cpu with CLAD_CUDA_MODULE set failed: $(cat "$T/cpu_override.err")"

# ---------------------------------------------------------------- installed
# make install's files (the extension's too, under DESTDIR) and a copy of the program alone
make -s --no-print-directory install DESTDIR="$T/root" PREFIX=/opt/clad >"$T/install.log" 2>&1 ||
	bad "make install DESTDIR=... failed: $(tail -5 "$T/install.log")"
check "[ -x '$T/root/opt/clad/bin/clad-train' ]" "make install did not install clad-train"
if [ "$CUDA" = 1 ]; then
	check "[ -f '$T/root/opt/clad/lib/clad/clad_cuda.so' ]" "make install did not install the module in PREFIX/lib/clad"
	run installed "$T/root/opt/clad/bin/clad-train" --device cuda
	if [ $have_gpu = 1 ]; then
		check "[ \"\$(cat '$T/installed.rc')\" = 0 ]" "installed --device cuda on a GPU failed: $(cat "$T/installed.err")"
	else
		expect_refusal installed "no usable CUDA GPU"
	fi
else
	check "[ ! -e '$T/root/opt/clad/lib/clad/clad_cuda.so' ]" "make install installed a module without CUDA"
fi
mkdir -p "$T/alone/bin"
cp "$BIN" "$T/alone/bin/clad-train"
run alone "$T/alone/bin/clad-train" --device cuda
expect_refusal alone "looked for $T/alone/bin/../core/cuda/clad_cuda.so and $T/alone/bin/../lib/clad/clad_cuda.so"

# ---------------------------------------------------------------- without the CUDA runtime
# every directory that holds a CUDA runtime library (ldconfig's cache, the toolkit) hidden
if [ "$(id -u)" = 0 ] && unshare -m true 2>/dev/null; then
	hide=$( { readlink -f /usr/local/cuda 2>/dev/null || true
		ldconfig -p | awk '/lib(cudart|cublas|cublasLt|cuda)\.so/ { print $NF }' | xargs -r -n1 dirname
		if [ -f "$MODULE" ]; then readelf -d "$MODULE" | sed -n 's/.*R[UN]*PATH.*\[\(.*\)\]/\1/p' | tr ':' '\n'; fi
	} | xargs -r -n1 readlink -f 2>/dev/null | sort -u)
	mkdir -p "$T/empty"
	cat >"$T/hidden.sh" <<EOF
set -e
for d in $(echo $hide); do [ -d "\$d" ] && mount --bind "$T/empty" "\$d"; done
if ls $(echo $hide) 2>/dev/null | grep -q '^libcu'; then echo "a CUDA library is still visible" >&2; exit 1; fi
"\$@"
EOF
	unshare -m bash "$T/hidden.sh" bash -c "$(declare -f run); T='$T'; TINY=(${TINY[*]}); run hidden_cpu '$BIN' --device cpu; run hidden_cuda '$BIN' --device cuda" ||
		bad "unshare -m with the CUDA directories hidden ($(echo $hide)) failed"
	check "[ \"\$(cat '$T/hidden_cpu.rc' 2>/dev/null)\" = 0 ] && [ -s '$T/hidden_cpu.safetensors' ]" \
		"clad-train --device cpu without the CUDA runtime failed: $(cat "$T/hidden_cpu.err" 2>/dev/null)"
	if [ $HAVE_MODULE = 1 ]; then
		expect_refusal hidden_cuda "cannot be loaded: libcu"
		check "grep -q 'not installed or not on the library path' '$T/hidden_cuda.err'" \
			"the missing runtime is not explained: $(cat "$T/hidden_cuda.err")"
	fi
	echo "  hidden (unshare -m): $(echo $hide); --device cuda said: $(cat "$T/hidden_cuda.err")"
else
	echo "  skipped the hidden-runtime check: needs root and unshare -m"
fi

echo "  --device cuda here: $(cat "$T/cuda.err")"
echo "test_cuda_module.sh: $checks checks, $fails failed"
[ "$fails" = 0 ]

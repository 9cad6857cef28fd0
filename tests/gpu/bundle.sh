#!/usr/bin/env bash
# tests/gpu/bundle.sh: for a GPU machine that cannot build clad (no jansson, libpng,
# libsvm, libpq, ... development packages there, and no registry to fetch them from):
# the CUDA build made here, laid out as installed, in .gpu/ (ignored by git):
#   .gpu/bin/clad-train, .gpu/bin/test_device     the programs (no CUDA library linked)
#   .gpu/lib/clad/clad_cuda.so                    the CUDA module, where the programs look
#                                                 for it (bin/../lib/clad)
#   .gpu/lib.tar.xz                               the shared libraries they load other than
#                                                 the C/C++ runtime and CUDA's own (and
#                                                 OpenBLAS, which core opens at run time)
#   .gpu/BUILT                                    what was built, when, from which commit
# tests/gpu/run.sh uses .gpu/ when it is there.  With the device tool: carry .gpu and
# data/mnist, run ./tests/gpu/run.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."

make -s CUDA=1 trainer/clad-train tests/build/unit/test_device core/cuda/clad_cuda.so
rm -rf .gpu
mkdir -p .gpu/bin .gpu/lib/clad .gpu/deps/lib
cp trainer/clad-train tests/build/unit/test_device .gpu/bin/
cp core/cuda/clad_cuda.so .gpu/lib/clad/
for bin in .gpu/bin/clad-train .gpu/bin/test_device .gpu/lib/clad/clad_cuda.so; do
	ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }'
done | sort -u | while read -r lib; do
	case $(basename "$lib") in
		libc.so* | libm.so* | libdl.so* | libpthread.so* | librt.so* | ld-linux* | libstdc++.so* | \
			libresolv.so* | libnss* | libgcc_s.so* | libcuda.so* | libcublas* | libcudart*) ;;
		*) cp -L "$lib" .gpu/deps/lib/ ;;
	esac
done
# OpenBLAS is opened at run time (core/gemm.c), not linked: the CPU comparison needs it too
blas=$(ldconfig -p | awk '/libopenblas\.so\.0 / { p = $NF } END { print p }')
[ -n "$blas" ] && cp -L "$blas" .gpu/deps/lib/libopenblas.so.0
for dep in $(ldd .gpu/deps/lib/libopenblas.so.0 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 }'); do
	case $(basename "$dep") in
		libgfortran.so* | libquadmath.so* | libgomp.so*) cp -L "$dep" .gpu/deps/lib/ ;;
	esac
done
# compressed: the device tool carries at most 64 MiB, and OpenBLAS alone is 36 MB
n=$(ls .gpu/deps/lib | wc -l)
tar -cJf .gpu/lib.tar.xz -C .gpu/deps lib
rm -rf .gpu/deps
{ echo "commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- core tests trainer Makefile || echo ' (with changes)')"
	nvcc=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
	echo "built $(date -u '+%F %T') UTC on $(uname -m), $("$nvcc" --version 2>/dev/null | tail -1)"
} >.gpu/BUILT
echo "tests/gpu/bundle.sh: .gpu/ holds the programs, the CUDA module and $n libraries, $(du -sh .gpu | cut -f1)"

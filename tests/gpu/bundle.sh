#!/usr/bin/env bash
# tests/gpu/bundle.sh: for a GPU machine that cannot build clad (no jansson, libpng,
# libsvm, libpq, ... development packages there, and no registry to fetch them from):
# the CUDA build of clad-train and tests/test_device made here, with the shared libraries
# they load other than the C/C++ runtime and CUDA's own (and OpenBLAS, which core opens at
# run time), in .gpu/ (ignored by git; the libraries as .gpu/lib.tar.xz, about 10 MB).
# tests/gpu/run.sh uses .gpu/ when it is there.  With the device tool: carry .gpu and
# data/mnist, run ./tests/gpu/run.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."

make -s CUDA=1 trainer/clad-train tests/test_device
rm -rf .gpu
mkdir -p .gpu/lib
cp trainer/clad-train tests/test_device .gpu/
for bin in .gpu/clad-train .gpu/test_device; do
	ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }'
done | sort -u | while read -r lib; do
	case $(basename "$lib") in
		libc.so* | libm.so* | libdl.so* | libpthread.so* | librt.so* | ld-linux* | libstdc++.so* | \
			libresolv.so* | libnss* | libgcc_s.so* | libcuda.so* | libcublas* | libcudart*) ;;
		*) cp -L "$lib" .gpu/lib/ ;;
	esac
done
# OpenBLAS is opened at run time (core/gemm.c), not linked: the CPU comparison needs it too
blas=$(ldconfig -p | awk '/libopenblas\.so\.0 / { p = $NF } END { print p }')
[ -n "$blas" ] && cp -L "$blas" .gpu/lib/libopenblas.so.0
for dep in $(ldd .gpu/lib/libopenblas.so.0 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 }'); do
	case $(basename "$dep") in
		libgfortran.so* | libquadmath.so* | libgomp.so*) cp -L "$dep" .gpu/lib/ ;;
	esac
done
# compressed: the device tool carries at most 64 MiB, and OpenBLAS alone is 36 MB
n=$(ls .gpu/lib | wc -l)
tar -cJf .gpu/lib.tar.xz -C .gpu lib
rm -rf .gpu/lib
echo "tests/gpu/bundle.sh: .gpu/ holds the binaries and $n libraries, $(du -sh .gpu | cut -f1)"

#!/bin/sh
# tests/parity/run.sh: clad against PyTorch, both directions (make check-parity).
#
# 1. tests/parity/gen_parity.py writes the reference cases to tests/build/parity
#    (again only when gen_parity.py or st_io.py is newer than the stamp file);
# 2. tests/build/unit/test_parity checks clad on every case, with the plain C GEMM and
#    with CLAD_BLAS_AUTO;
# 3. tests/build/unit/test_parity --write-clad-model saves a clad ResNet-18 that
#    tests/parity/check_clad_model.py runs in torchvision;
# 4. tests/build/unit/test_orientation --write saves an orientation model whose confidences
#    tests/parity/check_orientation.py recomputes with torchvision and torch.rot90;
# 5. tests/build/unit/test_neighbours --write saves a neighbour model whose features,
#    distances and confidences tests/parity/check_neighbours.py recomputes.
# Exits non-zero on any failure.  PYTHON: an interpreter with torch and
# torchvision (default /usr/bin/python3, Debian's python3-torch).
set -eu

cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-/usr/bin/python3}
OUT=tests/build/parity
STAMP=$OUT/.stamp

[ -x tests/build/unit/test_parity ] || make tests/build/unit/test_parity

if [ ! -f "$STAMP" ] || [ tests/parity/gen_parity.py -nt "$STAMP" ] || \
   [ tests/parity/st_io.py -nt "$STAMP" ] || [ ! -f "$OUT/index.txt" ]; then
	echo "== generating PyTorch reference data in $OUT"
	rm -rf "$OUT"
	mkdir -p "$OUT"
	"$PYTHON" tests/parity/gen_parity.py "$OUT"
	touch "$STAMP"
else
	echo "== reference data in $OUT are up to date"
fi

echo "== clad against PyTorch"
./tests/build/unit/test_parity "$OUT"

echo "== PyTorch on a model clad saved"
./tests/build/unit/test_parity --write-clad-model "$OUT/clad_resnet18.safetensors"
"$PYTHON" tests/parity/check_clad_model.py "$OUT/clad_resnet18.safetensors"

echo "== PyTorch on clad's orientation confidence"
[ -x tests/build/unit/test_orientation ] || make tests/build/unit/test_orientation
./tests/build/unit/test_orientation --write "$OUT/clad_orientation.safetensors"
"$PYTHON" tests/parity/check_orientation.py "$OUT/clad_orientation.safetensors"
echo "== PyTorch on clad's neighbour confidence"
[ -x tests/build/unit/test_neighbours ] || make tests/build/unit/test_neighbours
./tests/build/unit/test_neighbours --write "$OUT/clad_neighbours.safetensors"
"$PYTHON" tests/parity/check_neighbours.py "$OUT/clad_neighbours.safetensors"
echo "== parity: all passed"

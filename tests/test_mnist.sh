#!/usr/bin/env bash
# tests/test_mnist.sh: the whole method learns on the real MNIST digits.
# Trains mnist:STR on the `make data` split with a short budget (about a minute
# and a half on one core) and requires ODIN AUROC above 0.7 on the test split
# (0.80 measured with these settings; chance is 0.5).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-/usr/bin/python3}
out=tests/build/mnist
mkdir -p "$out"
./trainer/clad-train --data mnist --normal mnist:STR --out "$out/str.safetensors" \
	--ae-epochs 20 --dec-epochs 10 --clf-epochs 3 --seed 1 --quiet --json > "$out/metrics.json"
"$PY" - "$out/metrics.json" <<'PYEOF'
import json, sys
m = json.load(open(sys.argv[1]))
odin, base = m["odin"]["auroc"], m["baseline"]["auroc"]
print("test_mnist: mnist:STR ODIN AUROC %.4f, baseline %.4f" % (odin, base))
if not odin > 0.7:
    sys.exit("test_mnist: ODIN AUROC %.4f is not above 0.7: the pipeline did not learn" % odin)
PYEOF

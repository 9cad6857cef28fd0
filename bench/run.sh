#!/usr/bin/env bash
# bench/run.sh: `make bench`. clad against PyTorch 1.13 on the same ResNet-18
# weights (1x28x28, K = 10), one thread each, in one run; prints ratios
# (higher = clad faster).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-/usr/bin/python3}
out=bench/build
mkdir -p "$out"

"$PY" bench/bench_torch.py make-model "$out/resnet18.safetensors"

# PyTorch at its best: one thread, no spinning OpenMP workers, and the
# OpenBLAS kernels that suit this CPU (unless the machine already chose).
torch_env=(OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE)
if [ -z "${OPENBLAS_CORETYPE:-}" ] && grep -qw avx512f /proc/cpuinfo; then
	torch_env+=(OPENBLAS_CORETYPE=SKYLAKEX)
fi
env "${torch_env[@]}" "$PY" bench/bench_torch.py time "$out/resnet18.safetensors" > "$out/torch.txt"
OMP_NUM_THREADS=1 ./bench/bench_core "$out/resnet18.safetensors" > "$out/clad.txt"

"$PY" - "$out/clad.txt" "$out/torch.txt" <<'PYEOF'
import sys
def read(p):
    d = {}
    for line in open(p):
        k, _, v = line.strip().partition(" ")
        d[k] = v
    return d
c, t = read(sys.argv[1]), read(sys.argv[2])
print("clad:    %s" % c["blas"])
print("PyTorch: %s" % t["torch"])
peak = float(c["sgemm_peak_gflops"])
print("sgemm peak (1 thread, same run): %.1f GFLOP/s" % peak)
fma = float(c.get("fma_peak_gflops", "0"))
if fma > 0:
    print("one core's FMA peak (%s fused multiply-adds in registers, same run): %.1f GFLOP/s"
          % (c["fma_peak_isa"], fma))
print("useful work per forward: %s MFLOP (zero padding skipped)" % c["useful_forward_mflop"])
print()
print("%-22s %12s %12s %8s %14s %12s" % ("work", "clad ms/img", "torch ms/img", "ratio", "clad % peak",
                                          "% FMA peak"))
# fp32, then with the small-map convolutions' weights in bf16 (keys "bf16_...")
for prec in ("", "bf16_"):
    for key, label in (("forward_b1", "forward, batch 1"), ("odin_b1", "ODIN, batch 1"),
                       ("forward_b64", "forward, batch 64"), ("odin_b64", "ODIN, batch 64")):
        if prec + key + "_ms" not in c:
            continue
        cm, tm = float(c[prec + key + "_ms"]), float(t[key + "_ms"])
        g = float(c[prec + key + "_useful_gflops"])
        print("%-22s %12.3f %12.3f %7.1fx %13.0f%% %11s%s"
              % (label + (", bf16" if prec else ""), cm, tm, tm / cm, 100 * g / peak,
                 "%.0f%%" % (100 * g / fma) if fma > 0 else "-",
                 "   %.2fx fp32's speed" % (float(c[key + "_ms"]) / cm) if prec else ""))
print()
print("conv layers alone, eval forward (useful GFLOP/s, % of the sgemm peak):")
print("%-26s %14s %8s %14s %8s" % ("conv", "batch 1", "", "batch 64", ""))
rows = {}
for line in open(sys.argv[1]):
    f = line.split()
    if f[0].startswith("conv_b"):
        rows.setdefault(" ".join(f[1:4]), {})[f[0]] = (float(f[5]), float(f[6]))
for name, r in rows.items():
    b1, b64 = r.get("conv_b1", (0, 0)), r.get("conv_b64", (0, 0))
    print("%-26s %9.1f GF/s %6.0f%% %9.1f GF/s %6.0f%%" % (name, b1[0], b1[1], b64[0], b64[1]))
PYEOF

# The trainer against PyTorch, per stage, 1 and 2 threads.
./bench/bench_train.sh

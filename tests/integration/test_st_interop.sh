#!/usr/bin/env bash
# tests/integration/test_st_interop.sh: safetensors interop between PyTorch (tests/parity/st_io.py) and clad.
#
# Python writes a file with tensors of every dtype and metadata; tests/build/integration/st_roundtrip
# (build it first: make tests/build/integration/st_roundtrip) validates it with clad's reader and
# rewrites it with clad's writer; Python reads clad's file back and checks that
# every tensor (bit for bit) and the metadata are unchanged.  Exits non-zero on
# any mismatch or error.  PYTHON defaults to /usr/bin/python3 (Debian's torch).
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1
cd "$(dirname "$0")/../.."

PYTHON=${PYTHON:-/usr/bin/python3}
ROUNDTRIP=tests/build/integration/st_roundtrip

if [ ! -x "$ROUNDTRIP" ]; then
	echo "test_st_interop: $ROUNDTRIP is missing; run 'make tests/build/integration/st_roundtrip' first" >&2
	exit 1
fi
if ! "$PYTHON" -c 'import torch, numpy' 2>/dev/null; then
	echo "test_st_interop: $PYTHON cannot import torch and numpy" >&2
	exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$PYTHON" - "$tmp/torch.safetensors" <<'EOF'
import os, sys
sys.path.insert(0, os.path.join("tests", "parity"))
import torch
import st_io

torch.manual_seed(3)
t = {
    "conv.weight": torch.randn(4, 3, 3, 3),
    "bn.num_batches_tracked": torch.tensor(17, dtype=torch.int64),    # 0-d
    "odd.bytes": torch.tensor([1, 2, 250], dtype=torch.uint8),         # leaves the next tensor unaligned
    "special.f32": torch.tensor([float("nan"), float("inf"), -float("inf"), -0.0, 1e-45]),
    "f64": torch.randn(2, 5, dtype=torch.float64),
    "f16": torch.randn(7).half(),
    "bf16": torch.randn(3, 2).bfloat16(),
    "i32": torch.tensor([[-2**31, 2**31 - 1]], dtype=torch.int32),
    "i16": torch.tensor([-32768, 32767, 0], dtype=torch.int16),
    "i8": torch.tensor([-128, 127], dtype=torch.int8),
    "mask": torch.tensor([True, False, True]),
    "empty": torch.zeros(0, 4),
    "big.i64": torch.tensor([2**62, -2**63], dtype=torch.int64),
    "noncontig": torch.arange(12.0).reshape(3, 4).t(),
    "caf\u00e9/\u20ac \"quoted\"": torch.ones(1, 1, 1, 1, 1),
}
meta = {"format": "clad-test", "note": "caf\u00e9 \u20ac \"q\" \\ \n tab\t", "empty": "", "n": 3}
st_io.save(sys.argv[1], t, meta)
EOF

"$ROUNDTRIP" "$tmp/torch.safetensors" "$tmp/clad.safetensors"

"$PYTHON" - "$tmp/torch.safetensors" "$tmp/clad.safetensors" <<'EOF'
import os, sys
sys.path.insert(0, os.path.join("tests", "parity"))
import torch
import st_io

want, want_meta = st_io.load(sys.argv[1])
got, got_meta = st_io.load(sys.argv[2])
bad = []

def bits(x):
    # compare bit patterns, so NaN, -0.0 and denormals count as equal only if identical
    x = x.contiguous()
    if x.dtype in (torch.float32, torch.int32):
        return x.view(torch.int32)
    if x.dtype in (torch.float64, torch.int64):
        return x.view(torch.int64)
    if x.dtype in (torch.float16, torch.bfloat16, torch.int16):
        return x.view(torch.int16)
    return x

if list(got) != list(want):
    bad.append("tensor names/order differ: %s vs %s" % (list(got), list(want)))
for name, w in want.items():
    g = got.get(name)
    if g is None:
        bad.append("%s: missing" % name)
    elif g.dtype != w.dtype or g.shape != w.shape or not torch.equal(bits(g), bits(w)):
        bad.append("%s: %s %s differs from %s %s" % (name, g.dtype, tuple(g.shape), w.dtype, tuple(w.shape)))
if got_meta != want_meta:
    bad.append("metadata differs: %r vs %r" % (got_meta, want_meta))
if want_meta.get("n") != "3" or "nan" not in repr(want["special.f32"].tolist()):
    bad.append("the input file itself is not what was saved")

# clad's layout: data 8-aligned, header padded with spaces, __metadata__ first
raw = open(sys.argv[2], "rb").read()
n = int.from_bytes(raw[:8], "little")
if (8 + n) % 8 != 0 or not raw[8:8 + n].startswith(b'{"__metadata__":'):
    bad.append("clad header layout unexpected: %r" % raw[8:40])

for b in bad:
    print("test_st_interop: " + b, file=sys.stderr)
if bad:
    sys.exit(1)
print("test_st_interop: %d tensors and %d metadata entries survive torch -> clad -> torch"
      % (len(want), len(want_meta)))
EOF

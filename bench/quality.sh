#!/usr/bin/env bash
# bench/quality.sh: `make quality`: clad-train against CLAD re-implemented in PyTorch
# (bench/clad_torch.py) on the real-MNIST split of `make data`, at a short budget
# (30 autoencoder, 30 DEC epochs), for mnist:CUR, STR and MIX and seeds
# 1..QUALITY_SEEDS (4), two threads each, one run at a time:
#   clad        clad-train's default recipe (orientation self-labels, 10 classifier
#               epochs over the four turns of every image), then clad-train eval --json;
#   clad-paper  clad-train --recipe paper (plain self-labels and ODIN), 15 classifier
#               epochs;
#   torch-ref   clad_torch.py as the reference code trains (fixed autoencoder batches,
#               k-means and DEC on sampled codes with dropout, conv1 re-initialised),
#               15 classifier epochs;
#   torch-clad  clad_torch.py --clad-conventions (clad-train's choices where they differ).
# A seed is not the same random stream across them, so compare their spreads and
# means, not one seed against another.  Writes results/quality/KIND_SCENARIO_sSEED.json
# (a run already there is kept; delete it to rerun) and results/quality/table.md.
# About an hour on a 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-/usr/bin/python3}
SEEDS=${QUALITY_SEEDS:-4}
out=results/quality
mkdir -p "$out"
EPOCHS=(--ae-epochs 30 --dec-epochs 30 --clf-epochs 15)
CLAD_EPOCHS=(--ae-epochs 30 --dec-epochs 30)

for sc in CUR STR MIX; do
	case $sc in CUR) ids=0,3,8 ;; STR) ids=1,4,7 ;; MIX) ids=2,5,6,9 ;; esac
	for s in $(seq 1 "$SEEDS"); do
		for kind in clad clad-paper; do
			f=$out/${kind}_${sc}_s$s.json
			[ -s "$f" ] && continue
			flags=("${CLAD_EPOCHS[@]}")
			[ "$kind" = clad-paper ] && flags=(--recipe paper "${EPOCHS[@]}")
			./trainer/clad-train --data mnist --normal "mnist:$sc" "${flags[@]}" --seed "$s" --threads 2 \
				--no-eval --quiet --out "$out/${kind}_${sc}_s$s.safetensors"
			./trainer/clad-train eval --model "$out/${kind}_${sc}_s$s.safetensors" --data mnist \
				--normal "mnist:$sc" --json > "$f.part" && mv "$f.part" "$f"
			rm -f "$out/${kind}_${sc}_s$s.safetensors"
		done
		for kind in torch-ref torch-clad; do
			f=$out/${kind}_${sc}_s$s.json
			[ -s "$f" ] && continue
			flag=()
			[ "$kind" = torch-clad ] && flag=(--clad-conventions)
			"$PY" bench/clad_torch.py --normal "$ids" "${EPOCHS[@]}" --seed "$s" --threads 2 "${flag[@]}" \
				> "$f.part" && mv "$f.part" "$f"
		done
		echo "quality: $sc seed $s done"
	done
done

"$PY" - "$out" "$SEEDS" > "$out/table.md" <<'PYEOF'
import json, os, statistics, sys
out, seeds = sys.argv[1], int(sys.argv[2])
kinds = (("clad", "clad-train (default recipe)"), ("clad-paper", "clad-train --recipe paper"),
         ("torch-ref", "PyTorch, reference's conventions"), ("torch-clad", "PyTorch, clad's conventions"))
print("AUROC (%%) on the 2000 test digits, 30 + 30 epochs, then 10 classifier epochs over four "
      "turns (default recipe) or 15 (ODIN: the paper's recipe, PyTorch), seeds 1-%d" % seeds)
print()
print("| scenario | " + " | ".join(label for _, label in kinds) + " |")
print("|---" * (len(kinds) + 1) + "|")
for sc in ("CUR", "STR", "MIX"):
    cells = []
    for kind, _ in kinds:
        vals = []
        for s in range(1, seeds + 1):
            d = json.load(open(os.path.join(out, "%s_%s_s%d.json" % (kind, sc, s))))
            vals.append(100.0 * d["score"]["auroc"] if kind.startswith("clad") else d["odin_auroc"])
        cells.append("mean %.1f (%s)" % (statistics.mean(vals), ", ".join("%.1f" % v for v in vals)))
    print("| mnist:%s | %s |" % (sc, " | ".join(cells)))
PYEOF
cat "$out/table.md"

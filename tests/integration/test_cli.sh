#!/usr/bin/env bash
# tests/integration/test_cli.sh: trainer/clad-train end to end on a small synthetic idx set.
#
# Writes an MNIST-style idx directory (10 classes of 28x28 digits-like
# patterns, seeded), trains with tiny budgets, and checks: the model file,
# eval --json, info, same seed -> same bytes, plain per-epoch lines when
# stderr is not a terminal (and a redrawn bar when it is, if `script` is
# there), --quiet, usage errors (exit 2) and runtime errors (exit 1).
set -euo pipefail
cd "$(dirname "$0")/../.."

BIN=./trainer/clad-train
PY=${PYTHON:-/usr/bin/python3}
[ -x "$PY" ] || PY=python3
T=$(mktemp -d /tmp/clad_test_cli.XXXXXX)
trap 'rm -rf "$T"' EXIT

. tests/integration/checks.sh

# ---------------------------------------------------------------- the data
# Ten classes of bars (tests/integration/synthetic_idx.py), 40 training images
# each in one gzipped file, as the loaders accept, and 20 test images each.
"$PY" tests/integration/synthetic_idx.py "$T/data" --classes 10 --train 40 --test 20 --seed 12345 --gzip-train

FAST=(--classifier cnn --ae-epochs 2 --dec-epochs 2 --clf-epochs 2 --ae-batch 32 --dec-batch 32
      --clf-batch 32 --kmeans-restarts 2 -K 3 --latent 4 --clf-lr 0.001)

# ---------------------------------------------------------------- train
rc=0
$BIN --data "$T/data" --normal 0,3,8 --out "$T/a.safetensors" "${FAST[@]}" --seed 7 \
	>"$T/out_a" 2>"$T/err_a" || rc=$?
check '[ $rc -eq 0 ]' "training exited with $rc: $(cat "$T/err_a")"
check '[ -s "$T/a.safetensors" ]' "no model file written"
check 'grep -q "^autoencoder: epoch 1/2 loss" "$T/err_a" && grep -q "^autoencoder: epoch 2/2" "$T/err_a"' \
	"no plain autoencoder lines: $(cat "$T/err_a")"
check 'grep -q "^dec: epoch 1/2 loss .* changed" "$T/err_a"' "no plain DEC line"
check 'grep -q "^classifier: epoch 2/2 loss .* acc .*img/s" "$T/err_a"' "no plain classifier line"
check 'grep -q "^calibration: " "$T/err_a" && grep -q "^evaluation: " "$T/err_a"' "no calibration/evaluation line"
check '! grep -q $'"'"'\r'"'"' "$T/err_a"' "carriage returns on a non-terminal"
check 'grep -q "AUROC" "$T/out_a" && grep -q "^  neighbours (" "$T/out_a" && grep -q "^  baseline" "$T/out_a"' \
	"no metrics table: $(cat "$T/out_a")"
check 'grep -q "^flagged at the stored threshold" "$T/out_a"' "no flagged share"

# same seed, same bytes (also with the test metrics in the summary)
$BIN --data "$T/data" --normal 0,3,8 --out "$T/b.safetensors" "${FAST[@]}" --seed 7 --quiet \
	>"$T/out_b" 2>"$T/err_b" || rc=$?
check '[ $rc -eq 0 ]' "second training failed: $(cat "$T/err_b")"
check 'cmp -s "$T/a.safetensors" "$T/b.safetensors"' "same seed gave different model files"
check '[ ! -s "$T/err_b" ]' "--quiet printed on stderr: $(cat "$T/err_b")"
# the reports match but for the stages' durations
check 'cmp -s <(grep -v "epochs, final loss\|^trained" "$T/out_a") <(grep -v "epochs, final loss\|^trained" "$T/out_b")' \
	"same seed gave different reports"

# two threads: the same weights and metrics (products split among the threads, the
# other loops by channel or range); the file differs only in the recorded thread count
$BIN --data "$T/data" --normal 0,3,8 --out "$T/t2.safetensors" "${FAST[@]}" --seed 7 --quiet --threads 2 \
	>"$T/out_t2" 2>&1 || rc=$?
check '[ $rc -eq 0 ] && [ "$(cmp -l "$T/a.safetensors" "$T/t2.safetensors" | wc -l)" -eq 1 ]' \
	"--threads 2 trained other weights than --threads 1: $(cmp -l "$T/a.safetensors" "$T/t2.safetensors" | head -3)"

# another seed, other bytes
$BIN --data "$T/data" --normal 0,3,8 --out "$T/c.safetensors" "${FAST[@]}" --seed 8 --quiet --no-eval \
	>"$T/out_c" 2>&1 || rc=$?
check '[ $rc -eq 0 ] && ! cmp -s "$T/a.safetensors" "$T/c.safetensors"' "seed 8 gave seed 7's model"

# the autoencoder's target: the normalised input by default (recorded in the
# summary), the pixels in [0,1] on request: another autoencoder, so other bytes
$BIN --data "$T/data" --normal 0,3,8 --out "$T/px.safetensors" "${FAST[@]}" --seed 7 --quiet --no-eval \
	--ae-target pixels >"$T/out_px" 2>&1 || rc=$?
check '[ $rc -eq 0 ] && ! cmp -s "$T/a.safetensors" "$T/px.safetensors"' \
	"--ae-target pixels trained the default's model: $(cat "$T/out_px")"
check '"$PY" - "$T/a.safetensors" "$T/px.safetensors" <<'"'"'EOF'"'"'
import json, struct, sys
def settings(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    return json.loads(json.loads(raw[8:8 + n])["__metadata__"]["summary"])["settings"]
a, p = (settings(x) for x in sys.argv[1:3])
assert a["ae_target"] == "normalised" and p["ae_target"] == "pixels", (a, p)
EOF' "the summary does not record the autoencoder's target"

# ---------------------------------------------------------------- devices
# The device code path (the GPU's, on the emulated device: the same kernels run
# on the CPU) trains the same model as the CPU: the same clusters, and losses
# and test metrics within rounding.
rc=0
$BIN --data "$T/data" --normal 0,3,8 --out "$T/dev.safetensors" "${FAST[@]}" --seed 7 --device emulated \
	--json --quiet >"$T/dev.json" 2>"$T/dev.err" || rc=$?
$BIN --data "$T/data" --normal 0,3,8 --out "$T/cpu.safetensors" "${FAST[@]}" --seed 7 --device cpu \
	--json --quiet >"$T/cpu.json" 2>>"$T/dev.err" || rc=$?
check '[ $rc -eq 0 ] && cmp -s "$T/cpu.safetensors" "$T/a.safetensors" && "$PY" - "$T/dev.safetensors" "$T/cpu.safetensors" <<'"'"'EOF'"'"'
import json, struct, sys
def summary(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    return json.loads(json.loads(raw[8:8 + n])["__metadata__"]["summary"])
d, c = (summary(p) for p in sys.argv[1:3])
assert d["cluster_sizes"] == c["cluster_sizes"], (d["cluster_sizes"], c["cluster_sizes"])
for stage in ("autoencoder", "dec", "classifier"):
    a, b = d["stages"][stage]["final_loss"], c["stages"][stage]["final_loss"]
    assert abs(a - b) <= 1e-3 * abs(b) + 1e-6, (stage, a, b)
for k in ("score", "baseline"):
    assert abs(d["test"][k]["auroc"] - c["test"][k]["auroc"]) <= 0.01, (k, d["test"][k], c["test"][k])
assert "device" not in d["settings"]
EOF' "--device emulated differs from the CPU: $(cat "$T/dev.err" "$T/dev.json" "$T/cpu.json")"

# Deep SVDD's stages on the device too: the same AUROC as on the CPU
for d in cpu emulated; do
	$BIN --data "$T/data" --normal 0,3,8 --method deepsvdd --ae-epochs 2 --svdd-epochs 2 --svdd-batch 32 \
		--latent 4 --seed 7 --device $d --json --quiet >"$T/svdd_$d.json" 2>>"$T/svdd.err" || rc=$?
done
check '[ $rc -eq 0 ] && "$PY" - "$T/svdd_cpu.json" "$T/svdd_emulated.json" <<'"'"'EOF'"'"'
import json, sys
c, d = (json.load(open(p)) for p in sys.argv[1:3])
a, b = c["metrics"]["auroc"], d["metrics"]["auroc"]
assert abs(a - b) <= 0.01, (a, b)
EOF' "Deep SVDD on the emulated device differs from the CPU: $(cat "$T/svdd.err" "$T"/svdd_*.json)"

# a Deep SVDD model saved with --out (format version 4): eval and info of the file answer
# as the run that trained it did, and that run as the same run without --out
rc=0
$BIN --data "$T/data" --normal 0,3,8 --method deepsvdd --ae-epochs 2 --svdd-epochs 2 --svdd-batch 32 \
	--latent 4 --seed 7 --json --quiet --out "$T/svdd.safetensors" >"$T/svdd_out.json" 2>"$T/svdd.err" || rc=$?
$BIN eval --model "$T/svdd.safetensors" --data "$T/data" --normal 0,3,8 --json --quiet \
	>"$T/svdd_eval.json" 2>>"$T/svdd.err" || rc=$?
$BIN info "$T/svdd.safetensors" --json >"$T/svdd_info.json" 2>>"$T/svdd.err" || rc=$?
$BIN info "$T/svdd.safetensors" >"$T/svdd_info.txt" 2>>"$T/svdd.err" || rc=$?
check '[ $rc -eq 0 ] && grep -q "method       Deep SVDD" "$T/svdd_info.txt" && "$PY" - "$T"/svdd_{out,cpu,eval,info}.json "$T/svdd.safetensors" <<'"'"'EOF'"'"'
import json, struct, sys
out, cpu, ev, info = (json.load(open(p)) for p in sys.argv[1:5])
raw = open(sys.argv[5], "rb").read()
meta = json.loads(raw[8:8 + struct.unpack("<Q", raw[:8])[0]])["__metadata__"]
assert meta["format_version"] == "4" and meta["method"] == "deepsvdd" and "classifier" not in meta, meta
assert out["metrics"] == cpu["metrics"], (out, cpu)
assert ev["score"]["name"] == "deepsvdd" and ev["score"]["auroc"] == out["metrics"]["auroc"], (ev, out)
assert "baseline" not in ev and "cluster_purity" not in ev, ev
assert info["method"] == "deepsvdd" and info["score"] == "deepsvdd" and info["latent"] == 4, info
s = info["summary"]
assert s["method"] == "deepsvdd" and s["test"]["score"]["auroc"] == out["metrics"]["auroc"], s
assert s["settings"]["autoencoder"] == "cvae_nobias" and s["settings"]["svdd_epochs"] == 2, s["settings"]
assert "clusters" not in s["settings"] and "dec" not in s["stages"] and s["stages"]["deepsvdd"]["epochs"] == 2, s
EOF' "a saved Deep SVDD model: $(cat "$T/svdd.err" "$T"/svdd_{out,eval,info}.json 2>/dev/null)"

# a one-class SVM saved with --out (format version 4, no nets): eval and info of the
# file answer as the run that trained it did, and that run as the same run without --out
rc=0
$BIN --data "$T/data" --normal 0,3,8 --method ocsvm --seed 7 --json --quiet >"$T/svm_plain.json" 2>"$T/svm.err" || rc=$?
$BIN --data "$T/data" --normal 0,3,8 --method ocsvm --seed 7 --json --quiet --out "$T/svm.safetensors" \
	>"$T/svm_out.json" 2>>"$T/svm.err" || rc=$?
$BIN eval --model "$T/svm.safetensors" --data "$T/data" --normal 0,3,8 --json --quiet \
	>"$T/svm_eval.json" 2>>"$T/svm.err" || rc=$?
$BIN info "$T/svm.safetensors" --json >"$T/svm_info.json" 2>>"$T/svm.err" || rc=$?
$BIN info "$T/svm.safetensors" >"$T/svm_info.txt" 2>>"$T/svm.err" || rc=$?
check '[ $rc -eq 0 ] && grep -q "method       one-class SVM" "$T/svm_info.txt" && "$PY" - "$T"/svm_{out,plain,eval,info}.json "$T/svm.safetensors" <<'"'"'EOF'"'"'
import json, struct, sys
out, plain, ev, info = (json.load(open(p)) for p in sys.argv[1:5])
raw = open(sys.argv[5], "rb").read()
head = json.loads(raw[8:8 + struct.unpack("<Q", raw[:8])[0]])
meta = head["__metadata__"]
assert meta["format_version"] == "4" and meta["method"] == "ocsvm" and meta["kernel"] == "rbf", meta
assert "autoencoder" not in meta and "latent" not in meta and "classifier" not in meta, meta
assert sorted(k for k in head if k != "__metadata__") == ["calibration.confidences", "ocsvm.coefficients",
                                                          "ocsvm.support_vectors"], head.keys()
n_sv = head["ocsvm.support_vectors"]["shape"][0]
assert out["metrics"] == plain["metrics"], (out, plain)
assert ev["score"]["name"] == "ocsvm" and ev["score"]["auroc"] == out["metrics"]["auroc"], (ev, out)
assert "baseline" not in ev and "cluster_purity" not in ev, ev
assert info["method"] == "ocsvm" and info["score"] == "ocsvm" and info["support_vectors"] == n_sv, info
assert "latent" not in info and "autoencoder" not in info, info
s = info["summary"]
assert s["method"] == "ocsvm" and s["test"]["score"]["auroc"] == out["metrics"]["auroc"], s
assert s["settings"]["ocsvm_nu"] == 0.1 and abs(s["settings"]["ocsvm_gamma"] - info["gamma"]) < 1e-9, s["settings"]
assert "autoencoder" not in s["settings"] and "ae_epochs" not in s["settings"], s["settings"]
assert list(s["stages"]) == ["ocsvm"] and s["n_fit"] + s["n_holdout"] == s["data"]["normal_images"], s
# the nu-property: at least nu x the fit images are support vectors
assert n_sv >= 0.1 * s["n_fit"], (n_sv, s["n_fit"])
EOF' "a saved one-class SVM model: $(cat "$T/svm.err" "$T"/svm_{out,eval,info}.json 2>/dev/null)"

# an ensemble (--method ensemble) saved with --out: its three members inside, eval and
# info of the file answer as the run did; --method auto with labelled images (this set's
# test split: classes other than 0,3,8 are anomalies) keeps the candidate with the highest
# validation AUROC and records the comparison; without labelled images it trains CLAD
rc=0
$BIN --data "$T/data" --normal 0,3,8 --method ensemble "${FAST[@]}" --svdd-epochs 2 --seed 7 --json --quiet \
	--out "$T/ens.safetensors" >"$T/ens_out.json" 2>"$T/ens.err" || rc=$?
$BIN eval --model "$T/ens.safetensors" --data "$T/data" --normal 0,3,8 --json --quiet \
	>"$T/ens_eval.json" 2>>"$T/ens.err" || rc=$?
$BIN info "$T/ens.safetensors" --json >"$T/ens_info.json" 2>>"$T/ens.err" || rc=$?
$BIN --data "$T/data" --normal 0,3,8 --method auto --validation "$T/data" --validation-anomalies 5 "${FAST[@]}" \
	--svdd-epochs 2 --seed 7 --json --quiet --out "$T/auto.safetensors" --validation-scores "$T/auto_scores.csv" \
	>"$T/auto_out.json" 2>>"$T/ens.err" || rc=$?
$BIN info "$T/auto.safetensors" --json >"$T/auto_info.json" 2>>"$T/ens.err" || rc=$?
check '[ $rc -eq 0 ] && "$PY" - "$T"/ens_{out,eval,info}.json "$T"/auto_{out,info}.json "$T/auto_scores.csv" <<'"'"'EOF'"'"'
import csv, json, sys
out, ev, info, aout, ainfo = (json.load(open(p)) for p in sys.argv[1:6])
rows = list(csv.DictReader(open(sys.argv[6])))
assert out["method"] == "ensemble" and sorted(out["members"]) == ["clad", "deepsvdd", "ocsvm"], out
assert ev["score"]["name"] == "ensemble" and ev["score"]["auroc"] == out["metrics"]["auroc"], (ev, out)
assert info["method"] == "ensemble" and info["members"] == ["clad", "deepsvdd", "ocsvm"], info
s = info["summary"]
assert s["test"]["members"] == out["members"] and s["members"] == ["clad", "deepsvdd", "ocsvm"], s
a = aout["auto"]
# the same seed trains the same candidates: their test AUROCs are those of the ensemble run
assert a["candidates"]["ensemble"]["test_auroc"] == round(out["metrics"]["auroc"], 6), (a, out)
for m in ("clad", "deepsvdd", "ocsvm"):
    assert a["candidates"][m]["test_auroc"] == round(out["members"][m]["auroc"], 6), (m, a, out)
assert a["validation_anomalies"] == 5 and a["validation_normal"] == 60, a
best = max(a["candidates"].values(), key=lambda c: c["validation_auroc"])["validation_auroc"]
assert a["candidates"][a["picked"]]["validation_auroc"] == best, a
assert ainfo["method"] == a["picked"] and ainfo["summary"]["auto"] == a, (ainfo["method"], a)
# --validation-scores: every labelled image (the 5 anomalies chosen with, and the others),
# and the AUROC of every candidate on the chosen rows is the one reported
assert list(rows[0]) == ["image", "is_anomaly", "chosen_with", "clad", "deepsvdd", "ocsvm", "ensemble"], rows[0]
used = [r for r in rows if r["chosen_with"] == "1"]
assert sum(r["is_anomaly"] == "1" for r in used) == 5 and sum(r["is_anomaly"] == "0" for r in used) == 60, used
assert sum(r["is_anomaly"] == "1" for r in rows) > 5 and all(r["chosen_with"] == "1" for r in rows if r["is_anomaly"] == "0")
for m, c in a["candidates"].items():
    pos = [float(r[m]) for r in used if r["is_anomaly"] == "1"]
    neg = [float(r[m]) for r in used if r["is_anomaly"] == "0"]
    auroc = sum((p > q) + 0.5 * (p == q) for p in pos for q in neg) / (len(pos) * len(neg))
    assert abs(auroc - c["validation_auroc"]) < 1e-6, (m, auroc, c)
EOF' "an ensemble and --method auto: $(cat "$T/ens.err" "$T"/ens_out.json "$T"/auto_out.json 2>/dev/null)"
# scripts/auto_rule.py replays the run's choice from those scores: its "max" rule on the
# anomalies the run chose with keeps what the run kept (the picked candidate's test AUROC)
mkdir -p "$T/rule"
cp "$T/auto_scores.csv" "$T/rule/CUR_s1.scores.csv"
cp "$T/auto_out.json" "$T/rule/CUR_s1.json"
check '"$PY" scripts/auto_rule.py "$T/rule" --draws 3 --anomalies 5 --test >"$T/rule.txt" 2>&1 &&
	"$PY" - "$T/rule.txt" "$T/auto_out.json" <<'"'"'EOF'"'"'
import json, sys
lines = open(sys.argv[1]).read().split("\n\n")
a = json.load(open(sys.argv[2]))["auto"]
own = [b for b in lines if "the anomalies each run chose with" in b]
row = [l for l in "\n\n".join(lines[lines.index(own[0]):]).splitlines() if l.startswith("| max |")][0]
assert row.split("|")[3].strip() == "%.2f" % (100 * a["candidates"][a["picked"]]["test_auroc"]), (row, a)
EOF' "auto_rule.py does not replay the run's choice: $(cat "$T/rule.txt" 2>/dev/null)"
rc=0
$BIN --data "$T/data" --normal 0,3,8 --method auto "${FAST[@]}" --seed 7 --quiet --out "$T/auto2.safetensors" \
	>/dev/null 2>"$T/auto2.err" || rc=$?
check '[ $rc -eq 0 ] && grep -q "no --validation or --validate-query; training the default method, clad" "$T/auto2.err" &&
	$BIN info "$T/auto2.safetensors" | grep -q "method       CLAD"' "--method auto without labelled images: $(cat "$T/auto2.err")"

# ---------------------------------------------------------------- eval, info
$BIN eval --model "$T/a.safetensors" --data "$T/data" --normal mnist:CUR --json --quiet \
	>"$T/eval.json" 2>"$T/eval.err" || rc=$?
check '[ $rc -eq 0 ]' "eval failed: $(cat "$T/eval.err")"
check '"$PY" - "$T/eval.json" "$T/a.safetensors" <<'"'"'EOF'"'"'
import json, struct, sys
m = json.load(open(sys.argv[1]))
assert m["scenario"] == "mnist:CUR" and m["normal_classes"] == [0, 3, 8], m
assert m["n_test"] == 200 and m["n_normal"] == 60 and m["n_anomaly"] == 140, m
for k in ("score", "baseline"):
    for f in ("auroc", "best_f1", "fpr_at_95tpr", "detection_error", "aupr_in", "aupr_out"):
        assert 0.0 <= m[k][f] <= 1.0, (k, f, m[k][f])
# the default recipe: orientation self-labels scored by the neighbour confidence, no ODIN
assert m["score"]["name"] == "neighbours" and m["score"]["rotations"] == 4, m["score"]
assert m["baseline"]["name"] == "orientation" and "odin" not in m, m
assert 0.0 <= m["flagged"] <= 1.0 and 0.0 <= m["cluster_purity"] <= 1.0
# the summary in the model holds the same test metrics and every setting
raw = open(sys.argv[2], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
s = json.loads(json.loads(raw[8:8 + n])["__metadata__"]["summary"])
assert s["scenario"] == "0,3,8" and s["normal_classes"] == [0, 3, 8], s
assert s["test"]["score"]["auroc"] == m["score"]["auroc"], (s["test"], m)
st = s["settings"]
assert st["classifier"] == "cnn" and st["clusters"] == 3 and st["latent"] == 4 and st["seed"] == 7, st
assert st["ae_epochs"] == 2 and st["clf_lr"] == 0.001 and st["epsilon"] == 0.0161, st
assert st["rotations"] == 4 and st["bank"] == 2048 and st["bank_precision"] == "bf16", st
# the bank is stored as bfloat16 by default
h = json.loads(raw[8:8 + n])
assert h["neighbours.bank.0"]["dtype"] == "BF16" and h["neighbours.bank.1"]["dtype"] == "BF16", h
assert m["score"]["bank"] == s["n_fit"], (m["score"], s["n_fit"])  # fewer fit images than --bank: all of them
for stage in ("autoencoder", "dec", "classifier"):
    assert s["stages"][stage]["epochs"] >= 1 and "seconds" not in s["stages"][stage], s["stages"]
assert len(s["cluster_sizes"]) == 3 and sum(s["cluster_sizes"]) == s["n_fit"], s
assert s["n_fit"] + s["n_holdout"] == 120 and s["data"]["format"] == "idx", s
EOF' "eval --json or the stored summary is wrong: $(cat "$T/eval.json")"

$BIN info "$T/a.safetensors" >"$T/info" 2>&1 || rc=$?
check '[ $rc -eq 0 ] && grep -q "classifier   cnn, K 3" "$T/info" && grep -q "neighbour confidence, [0-9]* normal images in 4 turns (bfloat16)" "$T/info"' \
	"info failed: $(cat "$T/info")"

# --bank 0: the orientation confidence alone, a format-2 model; --bank N keeps N images
rc=0
$BIN --data "$T/data" --normal 0,3,8 --out "$T/orient.safetensors" "${FAST[@]}" --seed 7 --bank 0 \
	--json --quiet >"$T/orient.json" 2>"$T/orient.err" || rc=$?
check '[ $rc -eq 0 ] && "$PY" -c "import json,sys; m = json.load(open(sys.argv[1])); assert m[\"score\"][\"name\"] == \"orientation\" and m[\"baseline\"][\"name\"] == \"upright only\", m" "$T/orient.json"' \
	"--bank 0 did not give an orientation model: $(cat "$T/orient.err" "$T/orient.json")"
rc=0
$BIN --data "$T/data" --normal 0,3,8 --out "$T/bank5.safetensors" "${FAST[@]}" --seed 7 --bank 5 \
	--quiet >"$T/bank5.out" 2>"$T/bank5.err" || rc=$?
check '[ $rc -eq 0 ] && grep -q "^  neighbours (5 images)" "$T/bank5.out"' \
	"--bank 5 did not keep 5 images: $(cat "$T/bank5.err" "$T/bank5.out")"

# --bank-precision f32: a bank of floats (the distances against the bfloat16 bank are
# compared in tests/unit/test_neighbours.c); anything else is refused
rc=0
$BIN --data "$T/data" --normal 0,3,8 --out "$T/f32.safetensors" "${FAST[@]}" --seed 7 --bank-precision f32 \
	--quiet >/dev/null 2>"$T/f32.err" || rc=$?
check '[ $rc -eq 0 ]' "--bank-precision f32 failed: $(cat "$T/f32.err")"
# eight test images as PGM files, for score
mkdir -p "$T/img"
"$PY" - "$T/data/t10k-images-idx3-ubyte" "$T/img" <<'EOF'
import sys
raw = open(sys.argv[1], "rb").read()
for i in range(8):
    open("%s/%d.pgm" % (sys.argv[2], i), "wb").write(b"P5\n28 28\n255\n" + raw[16 + 784 * i:16 + 784 * (i + 1)])
EOF
rc=0
$BIN score "$T/f32.safetensors" "$T/img/"*.pgm >"$T/score_f32" 2>&1 || rc=$?
$BIN info "$T/f32.safetensors" >"$T/info" 2>&1 || rc=$?
check '[ $rc -eq 0 ] && grep -q "4 turns (float)" "$T/info" && "$PY" - "$T/f32.safetensors" "$T/score_f32" <<'"'"'EOF'"'"'
import json, math, struct, sys
raw = open(sys.argv[1], "rb").read()
h = json.loads(raw[8:8 + struct.unpack("<Q", raw[:8])[0]])
assert h["neighbours.bank.0"]["dtype"] == "F32" and h["neighbours.bank.1"]["dtype"] == "F32", h
rows = [l.split("\t") for l in open(sys.argv[2]).read().split("\n") if l]
assert len(rows) == 8 and all(math.isfinite(float(r[1])) and 0 <= float(r[2]) <= 1 for r in rows), rows
EOF' "a model with a bank of floats: $(cat "$T/score_f32" "$T/info" 2>/dev/null)"
rc=0
$BIN --bank-precision f16 --data "$T/data" --normal 0,3,8 >"$T/out" 2>&1 || rc=$?
check '[ $rc -eq 2 ] && grep -q "bank-precision: \"f16\" is not bf16 or f32" "$T/out"' "bad --bank-precision: rc $rc $(cat "$T/out")"

# --recipe paper: plain self-labels and ODIN, a format-1 model; options after it still count
rc=0
$BIN --data "$T/data" --normal 0,3,8 --out "$T/paper.safetensors" "${FAST[@]}" --seed 7 --recipe paper \
	--clf-epochs 2 --json --quiet >"$T/paper.json" 2>"$T/paper.err" || rc=$?
check '[ $rc -eq 0 ] && "$PY" - "$T/paper.json" "$T/paper.safetensors" <<'"'"'EOF'"'"'
import json, struct, sys
m = json.load(open(sys.argv[1]))
assert m["score"]["name"] == "odin" and m["odin"] == m["score"], m
assert m["odin"]["temperature"] == 1000 and m["baseline"]["name"] == "max softmax", m
raw = open(sys.argv[2], "rb").read()
meta = json.loads(raw[8:8 + struct.unpack("<Q", raw[:8])[0]])["__metadata__"]
assert meta["format_version"] == "1" and "score" not in meta and "rotations" not in meta, meta
s = json.loads(meta["summary"])["settings"]
assert s["rotations"] == 1 and s["clf_epochs"] == 2, s
EOF' "--recipe paper did not train an ODIN model: $(cat "$T/paper.err" "$T/paper.json")"
$BIN info "$T/paper.safetensors" >"$T/info" 2>&1 || rc=$?
check '[ $rc -eq 0 ] && grep -q "ODIN" "$T/info"' "info of an ODIN model: $(cat "$T/info")"
rc=0
$BIN --recipe nonsense --data "$T/data" --normal 0,3,8 >"$T/out" 2>&1 || rc=$?
check '[ $rc -eq 2 ] && grep -q "recipe must be clad or paper" "$T/out"' "bad --recipe: rc $rc $(cat "$T/out")"
rc=0
$BIN --rotations 3 --data "$T/data" --normal 0,3,8 >"$T/out" 2>&1 || rc=$?
check '[ $rc -eq 2 ] && grep -q "rotations must be 1, 2 or 4" "$T/out"' "bad --rotations: rc $rc $(cat "$T/out")"

# a terminal gets a redrawn bar (through script(1) when it is installed)
if command -v script >/dev/null 2>&1; then
	script -qec "$BIN --data $T/data --normal 0,3,8 --out $T/tty.safetensors ${FAST[*]} --no-eval" \
		/dev/null >"$T/tty" 2>&1 || true
	check 'grep -q $'"'"'\r'"'"' "$T/tty" && grep -q "ETA\|took" "$T/tty" && grep -q "img/s" "$T/tty"' \
		"no progress bar on a terminal: $(head -c 600 "$T/tty")"
else
	echo "test_cli: script(1) not installed; terminal progress bar not checked"
fi

# --record-times stores the stages' seconds (and only then)
rc=0
$BIN --data "idx:$T/data" --normal mnist:CUR --out "$T/timed.safetensors" "${FAST[@]}" --no-eval \
	--record-times --quiet >/dev/null 2>"$T/timed.err" || rc=$?
check '[ $rc -eq 0 ] && grep -q "seconds" "$T/timed.safetensors" && ! grep -q "seconds" "$T/a.safetensors"' \
	"--record-times: $(cat "$T/timed.err")"

# a Tiny-ImageNet layout (train/<wnid>/images, val/val_annotations.txt, words.txt):
# the preset's class names map to wnids through words.txt
"$PY" - "$T/tiny" <<'EOF'
import os, random, sys
root = sys.argv[1]
rng = random.Random(5)
words = {"n02099601": "golden retriever", "n02085620": "Chihuahua",
         "n02106662": "German shepherd, German shepherd dog, German police dog, alsatian",
         "n02099712": "Labrador retriever", "n02113799": "standard poodle",
         "n02094433": "Yorkshire terrier", "n02125311": "cougar, puma, catamount",
         "n02123394": "Persian cat", "n04487081": "trolleybus, trolley coach",
         "n04146614": "school bus"}
os.makedirs(root + "/val/images")
with open(root + "/words.txt", "w") as f:
    f.write("n00001740\tentity\n" + "".join("%s\t%s\n" % kv for kv in words.items()))
def ppm(path, c):
    px = bytes(v for y in range(12) for x in range(12)
               for v in ((c * 25 + rng.randint(0, 20)) % 256, (x * 20) % 256, (y * 20 + c) % 256))
    open(path, "wb").write(b"P6\n12 12\n255\n" + px)
with open(root + "/val/val_annotations.txt", "w") as ann:
    for c, wnid in enumerate(sorted(words)):
        os.makedirs("%s/train/%s/images" % (root, wnid))
        for i in range(8):
            ppm("%s/train/%s/images/%s_%d.ppm" % (root, wnid, wnid, i), c)
        for i in range(3):
            ppm("%s/val/images/val_%d_%d.ppm" % (root, c, i), c)
            ann.write("val_%d_%d.ppm\t%s\t0\t0\t5\t5\n" % (c, i, wnid))
EOF
rc=0
$BIN --data "tiny:$T/tiny" --normal tiny:anml --image-size 12 --out "$T/tiny.safetensors" "${FAST[@]}" \
	--json --quiet >"$T/tiny.json" 2>"$T/tiny.err" || rc=$?
check '[ $rc -eq 0 ] && "$PY" - "$T/tiny.json" "$T/tiny.safetensors" <<'"'"'EOF'"'"'
import json, struct, sys
m = json.load(open(sys.argv[1]))
assert m["scenario"] == "tiny:ANML" and m["n_normal"] == 24 and m["n_anomaly"] == 6, m
raw = open(sys.argv[2], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
s = json.loads(json.loads(raw[8:8 + n])["__metadata__"]["summary"])
assert s["normal_class_names"] == ["n02085620", "n02094433", "n02099601", "n02099712",
                                   "n02106662", "n02113799", "n02123394", "n02125311"], s
assert s["data"]["format"] == "folder" and s["data"]["image_shape"] == [3, 12, 12], s
EOF' "Tiny-ImageNet layout: $(cat "$T/tiny.err" "$T/tiny.json")"

# ---------------------------------------------------------------- the training report
rc=0
$BIN --data "$T/data" --normal 0,3 --out "$T/r.safetensors" "${FAST[@]}" --report "$T/report" --quiet \
	>/dev/null 2>"$T/report.err" || rc=$?
check '[ $rc -eq 0 ] && "$PY" - "$T/report/index.html" <<'"'"'EOF'"'"'
import base64, sys
import xml.etree.ElementTree as ET
# well-formed: the page parses as XML (XHTML), with nothing fetched from a network
root = ET.parse(sys.argv[1]).getroot()
H, S = "{http://www.w3.org/1999/xhtml}", "{http://www.w3.org/2000/svg}"
text = open(sys.argv[1]).read()
assert "http://" not in text.replace("http://www.w3.org/", ""), "a network reference"
assert "<script" not in text, "a script"
charts = {s.get("id"): s for s in root.iter(S + "svg") if s.get("class") == "chart"}
want = ["loss-autoencoder", "loss-dec", "loss-classifier", "map-cluster", "map-class", "roc", "histogram"]
assert sorted(charts) == sorted(want), sorted(charts)
for cid, svg in charts.items():
    series = [e for e in svg.iter() if e.get("class") == "series"]
    assert series and all(int(e.get("data-n")) > 0 for e in series), (cid, [e.get("data-n") for e in series])
    if cid.startswith("map-"):
        assert len(list(svg.iter(S + "circle"))) == int(series[0].get("data-n")), cid
roc = [e for e in charts["roc"].iter(S + "polyline")]
assert len(roc) == 2 and all(e.get("points").split()[0] == "40.0,290.0" for e in roc), "ROC from (0,0)"
imgs = list(root.iter(H + "img"))
assert len(imgs) >= 10
for im in imgs:
    src = im.get("src")
    assert src.startswith("data:image/png;base64,"), src[:40]
    assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
EOF' "the training report: $(cat "$T/report.err")"
# the report of every other method: what applies to it (Deep SVDD: its two stages and its
# codes by true class; the one-class SVM: no losses, no codes; the ensemble: CLAD's
# losses and each member's ROC beside its own), never clusters or a baseline
rc=0
for m in deepsvdd ocsvm ensemble; do
	$BIN --data "$T/data" --normal 0,3 --method $m "${FAST[@]}" --svdd-epochs 2 --report "$T/report_$m" --quiet \
		>/dev/null 2>>"$T/report.err" || rc=$?
done
check '[ $rc -eq 0 ] && "$PY" - "$T" <<'"'"'EOF'"'"'
import sys
import xml.etree.ElementTree as ET
S = "{http://www.w3.org/2000/svg}"
want = {"deepsvdd": (["loss-autoencoder", "loss-deepsvdd", "map-class", "roc", "histogram"], 1),
        "ocsvm": (["roc", "histogram"], 1),
        "ensemble": (["loss-autoencoder", "loss-dec", "loss-classifier", "roc", "histogram"], 4)}
for m, (charts_want, curves) in want.items():
    root = ET.parse("%s/report_%s/index.html" % (sys.argv[1], m)).getroot()
    charts = {s.get("id"): s for s in root.iter(S + "svg") if s.get("class") == "chart"}
    assert sorted(charts) == sorted(charts_want), (m, sorted(charts))
    assert len(list(charts["roc"].iter(S + "polyline"))) == curves, m
EOF' "the other methods' reports: $(cat "$T/report.err")"

# ---------------------------------------------------------------- errors
# expect STATUS NEEDLE -- ARGS... (checks.sh): exit status, a "clad-train: " message containing NEEDLE, no model
D=(--data "$T/data" --out "$T/x.safetensors")
expect 2 'is not an integer' -- "${D[@]}" --normal 0,3 --ae-epochs abc
expect 2 'is not an integer' -- "${D[@]}" --normal 0,3 --ae-epochs 2x
expect 2 'must be between 2 and 256' -- "${D[@]}" --normal 0,3 -K 1
expect 2 'is not a finite number' -- "${D[@]}" --normal 0,3 --ae-lr nan
expect 2 'is not a finite number' -- "${D[@]}" --normal 0,3 --ae-lr 0x10
expect 2 'must be > 0' -- "${D[@]}" --normal 0,3 --clf-lr 0
expect 2 'must be > 0 and < 1' -- "${D[@]}" --normal 0,3 --tpr 1
expect 2 'not a non-negative integer' -- "${D[@]}" --normal 0,3 --seed -1
expect 2 'does not fit in 64 bits' -- "${D[@]}" --normal 0,3 --seed 18446744073709551616
expect 2 'unknown architecture' -- "${D[@]}" --normal 0,3 --classifier vgg
expect 2 'is not normalised or pixels' -- "${D[@]}" --normal 0,3 --ae-target raw
expect 2 'unknown or ambiguous option' -- "${D[@]}" --normal 0,3 --bogus
expect 2 "needs a value" -- "${D[@]}" --normal
expect 2 '--out is required' -- --data "$T/data" --normal 0,3
expect 2 '--normal is required' -- --data "$T/data" --out "$T/x.safetensors"
expect 2 'unknown scenario' -- "${D[@]}" --normal mnist:XYZ
expect 2 'listed twice' -- "${D[@]}" --normal 0,3,3
expect 2 'unknown format' -- "${D[@]}" --normal 0,3 --format png
expect 2 'cannot be used together' -- "${D[@]}" --normal 0,3 --db "dbname=x" --query "select 1"
expect 2 'unexpected argument' -- "${D[@]}" --normal 0,3 extra
expect 2 'does not apply to eval' -- eval --model "$T/a.safetensors" --data "$T/data" --normal 0,3 --ae-epochs 3
expect 2 '--report applies to training' -- eval --model "$T/a.safetensors" --data "$T/data" --normal 0,3 --report "$T/r2"
expect 2 '--method must be clad, ocsvm, deepsvdd, ensemble or auto' -- "${D[@]}" --normal 0,3 --method svm
expect 2 'needs --out or --model-name' -- --data "$T/data" --normal 0,3 --method deepsvdd --no-eval
expect 2 'needs --out or --model-name' -- --data "$T/data" --normal 0,3 --method ocsvm --no-eval
expect 2 '--validation applies to --method auto' -- "${D[@]}" --normal 0,3 --validation "$T/data"
expect 2 '--validation-scores applies to --method auto' -- "${D[@]}" --normal 0,3 --validation-scores "$T/x.csv"
expect 2 '--validation-scores needs --validation or --validate-query' -- "${D[@]}" --normal 0,3 --method auto \
	--validation-scores "$T/x.csv"
expect 2 '--validate-query needs --db' -- "${D[@]}" --normal 0,3 --method auto --validate-query "select 1"
expect 2 'cannot be used together' -- --db x --query q --out "$T/x.safetensors" --method auto --validation "$T/data" --validate-query q
expect 2 '--method applies to training only' -- eval --model "$T/a.safetensors" --data "$T/data" --normal 0,3 --method ocsvm
expect 2 'must be > 0' -- --data "$T/data" --normal 0,3 --method ocsvm --ocsvm-nu 0
expect 2 'is not cpu, cuda, cuda:N or emulated' -- "${D[@]}" --normal 0,3 --device tpu
expect 2 'is not cpu, cuda, cuda:N or emulated' -- "${D[@]}" --normal 0,3 --device cuda:x
# --device cuda without a GPU (or without the CUDA backend): a clear error, no model
if ! nvidia-smi -L >/dev/null 2>&1; then
	expect 1 'use --device cpu' -- "${D[@]}" --normal 0,3 --device cuda "${FAST[@]}"
	check '[ ! -e "$T/x.safetensors" ]' "--device cuda without a GPU wrote a model"
fi
expect 1 'not found' -- --data "$T/missing" --normal 0,3 --out "$T/x.safetensors"
expect 1 'is not in the set' -- "${D[@]}" --normal 0,12
expect 1 'not a valid clad model' -- eval --model "$T/data/t10k-labels-idx1-ubyte" --data "$T/data" --normal 0,3
expect 1 'cannot open' -- info "$T/none.safetensors"

# a truncated label file: a clear error, no model
cp -r "$T/data" "$T/trunc"
head -c 100 "$T/data/t10k-labels-idx1-ubyte" >"$T/trunc/t10k-labels-idx1-ubyte"
expect 1 'cannot load the test split' -- --data "$T/trunc" --normal 0,3 --out "$T/t.safetensors" "${FAST[@]}"
check '[ ! -e "$T/t.safetensors" ]' "a model was written although the test split is broken"

# --help and --version
rc=0; $BIN --help >"$T/help" 2>&1 || rc=$?
check '[ $rc -eq 0 ] && grep -q "mnist:CUR" "$T/help" && grep -q -- "--dec-momentum" "$T/help"' "--help"
rc=0; $BIN --version >"$T/ver" 2>&1 || rc=$?
check '[ $rc -eq 0 ] && grep -q "^clad-train (clad) " "$T/ver"' "--version"

echo "test_cli: $checks checks, $fails failed"
[ "$fails" -eq 0 ]

#!/usr/bin/env bash
# tests/integration/test_train_db.sh: models stored in PostgreSQL by the trainer.
#
# Needs the clad extension installed (run as root, this script installs it
# first with `make install`).  Starts a throwaway cluster (tests/integration/pgcluster.sh),
# loads real MNIST digits (data/mnist of `make data`) into a table as PNG
# bytea, and checks:
#   clad-train --model-name --activate: a version is stored and active, and
#     the run is in clad.training_runs (succeeded, rows, version, metrics);
#     the stored bytes are the --out file's;
#   without --activate: a new version, the active one unchanged;
#   a failing run (a corrupt image; a store the role may not make): 'failed'
#     with the error, no new version, the active one unchanged;
#   the run lock: while another session holds clad_run_begin for the model,
#     clad-train refuses at once without training; after that session ends,
#     a run succeeds and the abandoned run is marked failed;
#   SIGTERM mid-training: the trainer stops within seconds, the run is
#     recorded failed ("interrupted by SIGTERM"), nothing is stored;
#   push: a file stored as a version, its id on stdout;
#   score: the trainer's confidence and score equal SQL's clad_confidence and
#     clad_score for 20 PNG files (|diff| <= 1e-6);
#   a role without the writer's privileges cannot push; usage errors.
set -euo pipefail
cd "$(dirname "$0")/../.."

BIN=${CLAD_TRAIN:-./trainer/clad-train}
PY=${PYTHON:-/usr/bin/python3}
[ -x "$PY" ] || PY=python3
MNIST=${MNIST:-data/mnist}
. tests/integration/pgcluster.sh
pgc_need_mnist test_train_db.sh "$MNIST"
pgc_need_clad test_train_db.sh
pgc_start clad_test_train_db

. tests/integration/checks.sh
q() { psql_q -c "$1"; }

# ---------------------------------------------------------------- the tables
# digits: 300 training and 200 test digits (the first of each split) as 8-bit
# gray PNG + smallint label.  score_imgs: 20 more test digits, also written
# as files $T/img/NAME: gray PNG, every 5th from 1 an RGB PNG, every 5th
# from 3 a 32x32 PNG (the digit padded by 2; resized to 28x28 when scored).
"$PY" - "$MNIST" "$T/digits.sql" "$T/img" <<'EOF'
import os, struct, sys
sys.path.insert(0, "scripts")
from mnist_idx import digits, framed, png, rgb
src, out, imgdir = sys.argv[1], sys.argv[2], sys.argv[3]

def variant(i, px):
    if i % 5 == 1:
        return png(28, 28, rgb(px), 2)
    if i % 5 == 3:
        return png(32, 32, framed(px, 28, 28, 2))
    return png(28, 28, px)

os.makedirs(imgdir)
test = digits(src, "t10k", 220)
with open(out, "w") as f:
    f.write("create table digits (id serial primary key, split text not null, img bytea, label smallint);\n")
    f.write("copy digits (split, img, label) from stdin;\n")
    for split, rows in (("train", digits(src, "train", 300)), ("test", test[:200])):
        for px, y in rows:
            f.write("%s\t\\\\x%s\t%d\n" % (split, png(28, 28, px).hex(), y))
    f.write("\\.\n")
    f.write("create table score_imgs (name text primary key, img bytea not null);\n")
    f.write("copy score_imgs (name, img) from stdin;\n")
    for i, (px, y) in enumerate(test[200:]):
        name = "d%02d_%d.png" % (i, y)
        data = variant(i, px)
        open(os.path.join(imgdir, name), "wb").write(data)
        f.write("%s\t\\\\x%s\n" % (name, data.hex()))
    f.write("\\.\n")
EOF
psql_q -f "$T/digits.sql"
check '[ "$(q "select count(*) from digits")" = 500 ] && [ "$(q "select count(*) from score_imgs")" = 20 ]' \
	"the tables were not loaded"

rc=0
q "create extension clad" >"$T/ext.err" 2>&1 || rc=$?
check '[ $rc -eq 0 ]' "CREATE EXTENSION clad failed: $(cat "$T/ext.err")"
[ $rc -eq 0 ] || { echo "test_train_db.sh: cannot go on without the extension" >&2; exit 1; }

TRAIN_Q="select img, label from digits where split = 'train' order by id"
TEST_Q="select img, label from digits where split = 'test' order by id"
FAST=(--classifier cnn --ae-epochs 1 --dec-epochs 1 --clf-epochs 1 --ae-batch 32 --dec-batch 32
      --clf-batch 32 --kmeans-restarts 2 --seed 3)
N=(--normal 1,4,7)

# train ARGS...: run clad-train, status in $rc, stdout in $T/out, stderr in $T/err
train() {
	rc=0
	$BIN "$@" >"$T/out" 2>"$T/err" || rc=$?
	[ -z "${VERBOSE:-}" ] || { echo "[exit $rc] $*"; cat "$T/err" "$T/out"; }
}
versions() { q "select count(*) from clad.model_versions where name = 'm'"; }
active() { q "select coalesce(active_version, -1) from clad.model_list where name = 'm'"; }
runs() { q "select count(*) from clad.training_runs where model_name = 'm'"; }

# ---------------------------------------------------------------- a stored, active version
train --db "$CONN" --query "$TRAIN_Q" --test-query "$TEST_Q" "${N[@]}" "${FAST[@]}" \
	--model-name m --activate --out "$T/m1.safetensors"
check '[ $rc -eq 0 ]' "training with --model-name exited with $rc: $(cat "$T/err")"
V1=$(sed -n 's/^clad-train: stored clad model "m" version \([0-9]*\) (active)$/\1/p' "$T/err")
check '[ -n "$V1" ]' "no \"stored ... (active)\" note: $(cat "$T/err")"
V1=${V1:-0}
check '[ "$(active)" = "$V1" ] && [ "$(versions)" = 1 ]' \
	"after the first run: active $(active), $(versions) versions (want $V1, 1)"
row=$(q "select status, rows, version_id, activated, metrics is not null, metrics ? 'test',
                error is null, client like 'clad-train % pid % on %', finished_at is not null
         from clad.training_runs where model_name = 'm'")
check '[ "$(runs)" = 1 ] && [ "$row" = "succeeded|300|$V1|t|t|t|t|t|t" ]' "the run's row: $row"
check '[ "$(q "select encode(sha256, '"'hex'"') from clad.model_versions where id = $V1")" = \
	"$(sha256sum "$T/m1.safetensors" | cut -d" " -f1)" ]' "the stored bytes are not the --out file's"
check '[ "$(q "select (metrics->'"'data'"'->>'"'query'"') = \$q\$$TRAIN_Q\$q\$ and metrics::text not like '"'%$SOCK%'"'
               from clad.model_versions where id = $V1")" = t ]' \
	"the version's metrics are not the training summary (or hold the connection string)"

# ---------------------------------------------------------------- a second version, not activated
train --db "$CONN" --query "$TRAIN_Q" "${N[@]}" "${FAST[@]}" --seed 4 --model-name m
check '[ $rc -eq 0 ]' "the second run exited with $rc: $(cat "$T/err")"
V2=$(sed -n 's/^clad-train: stored clad model "m" version \([0-9]*\) (not active; the active version is '"$V1"')$/\1/p' "$T/err")
check '[ -n "$V2" ] && [ "$V2" -gt "$V1" ]' "no \"stored ... (not active ...)\" note: $(cat "$T/err")"
V2=${V2:-0}
check '[ "$(active)" = "$V1" ] && [ "$(versions)" = 2 ]' \
	"after the second run: active $(active), $(versions) versions (want $V1, 2)"
row=$(q "select status, rows, version_id, activated from clad.training_runs
         where model_name = 'm' order by id desc limit 1")
check '[ "$row" = "succeeded|300|$V2|f" ]' "the second run's row: $row"
check 'grep -q "^trained clad model \"m\" on [0-9]* normal images" "$T/out"' "no training report: $(cat "$T/out")"

# ---------------------------------------------------------------- failing runs
train --db "$CONN" "${N[@]}" "${FAST[@]}" --model-name m --activate --quiet \
	--query "select case when id = 3 then substring(img from 1 for 60) else img end, label
	         from digits where split = 'train' order by id"
check '[ $rc -eq 1 ] && grep -q "row 3: cannot decode the image" "$T/err"' \
	"a corrupt image: exit $rc, $(cat "$T/err")"
row=$(q "select status, rows is null, version_id is null, error like '%row 3: cannot decode the image%'
         from clad.training_runs where model_name = 'm' order by id desc limit 1")
check '[ "$row" = "failed|t|t|t" ]' "the corrupt image's run: $row"
check '[ "$(active)" = "$V1" ] && [ "$(versions)" = 2 ]' \
	"after a failed run: active $(active), $(versions) versions (want $V1, 2)"

# a role that may record runs but not store models: trains, then the store fails
q "create role runner login; grant select on digits to runner;
   grant execute on function clad_run_begin(text, text),
       clad_run_end(bigint, text, bigint, bigint, boolean, jsonb, text) to runner" >/dev/null
train --db "host=$SOCK port=$PORT user=runner dbname=postgres" --query "$TRAIN_Q" "${N[@]}" "${FAST[@]}" \
	--model-name m --activate --quiet
check '[ $rc -eq 1 ] && grep -q "cannot store clad model \"m\".*permission denied for function clad_load_model" "$T/err"' \
	"a store that is refused: exit $rc, $(cat "$T/err")"
row=$(q "select status, rows, version_id is null, error like '%permission denied for function clad_load_model%'
         from clad.training_runs where model_name = 'm' order by id desc limit 1")
check '[ "$row" = "failed|300|t|t" ]' "the refused store's run: $row"
check '[ "$(active)" = "$V1" ] && [ "$(versions)" = 2 ]' \
	"after a refused store: active $(active), $(versions) versions (want $V1, 2)"

# a bad name is the server's to refuse, before anything is read
train --db "$CONN" --query "$TRAIN_Q" "${N[@]}" "${FAST[@]}" --model-name "no such name!"
check '[ $rc -eq 1 ] && grep -q "invalid clad model name" "$T/err" && ! grep -q "loading the training" "$T/err"' \
	"a bad model name: exit $rc, $(cat "$T/err")"

# ---------------------------------------------------------------- the run lock
pgc_hold_run m 'lock holder' && ok || bad "the lock holder's run does not show"
before=$(runs)
start=$(date +%s)
train --db "$CONN" --query "$TRAIN_Q" "${N[@]}" "${FAST[@]}" --model-name m --activate
took=$(($(date +%s) - start))
check '[ $rc -eq 1 ] && grep -q "another training run of clad model \"m\" is in progress" "$T/err"' \
	"while the lock is held: exit $rc, $(cat "$T/err")"
check '[ $took -le 10 ] && ! grep -q "loading the training" "$T/err"' "refused after ${took}s, or read rows: $(cat "$T/err")"
check '[ "$(runs)" = "$before" ] && [ "$(versions)" = 2 ] && [ "$(active)" = "$V1" ]' \
	"the refused run changed the log or the versions"
pgc_release_run
train --db "$CONN" --query "$TRAIN_Q" "${N[@]}" "${FAST[@]}" --model-name m --activate
check '[ $rc -eq 0 ] && grep -q "stored clad model \"m\" version [0-9]* (active)" "$T/err"' \
	"after the lock holder ended: exit $rc, $(cat "$T/err")"
check '[ "$(versions)" = 3 ] && [ "$(active)" != "$V1" ]' "after the lock holder ended: $(versions) versions, active $(active)"
row=$(q "select status, error like 'abandoned%' from clad.training_runs where client = 'lock holder'")
check '[ "$row" = "failed|t" ]' "the abandoned run: $row"

# ---------------------------------------------------------------- stopped by a signal
# SIGTERM (systemd stopping the job, kill) mid-training: the trainer stops at the
# next layer, records the run as failed and stores nothing; the active version stays.
# The budget is far more than the test waits (50 epochs of these 85 images took under
# 2 s on a quiet machine, and the run finished before the signal), and the signal
# goes once an autoencoder epoch has been printed: training is under way.
before_active=$(active)
before_versions=$(versions)
$BIN --db "$CONN" --query "$TRAIN_Q" "${N[@]}" "${FAST[@]}" --ae-epochs 100000 --model-name m --activate \
	>"$T/out" 2>"$T/err" &
trainer=$!
for _ in $(seq 1 150); do
	grep -q "^autoencoder: epoch 2/" "$T/err" 2>/dev/null && break
	sleep 0.2
done
kill -TERM "$trainer"
t0=$(date +%s%N)
rc=0
wait "$trainer" || rc=$?
took_ms=$((($(date +%s%N) - t0) / 1000000))
check '[ $rc -eq 1 ] && grep -q "interrupted by SIGTERM" "$T/err"' "after SIGTERM: exit $rc, $(cat "$T/err")"
check '[ $took_ms -lt 5000 ]' "the trainer took $took_ms ms to stop after SIGTERM"
row=$(q "select status, error like 'interrupted by SIGTERM%' from clad.training_runs where model_name = 'm' order by id desc limit 1")
check '[ "$row" = "failed|t" ]' "the run stopped by SIGTERM: $row"
check '[ "$(active)" = "$before_active" ] && [ "$(versions)" = "$before_versions" ]' \
	"after SIGTERM: active $(active) (was $before_active), $(versions) versions (was $before_versions)"
echo "SIGTERM mid-training: the trainer stopped in $took_ms ms, run recorded failed, nothing stored"

# ---------------------------------------------------------------- push
rc=0
$BIN push --db "$CONN" --model-name pushed "$T/m1.safetensors" >"$T/out" 2>"$T/err" || rc=$?
P=$(cat "$T/out")
check '[ $rc -eq 0 ] && [[ "$P" =~ ^[0-9]+$ ]] &&
	grep -q "^clad-train: stored .*m1.safetensors as clad model \"pushed\" version $P on the --db server (active)$" "$T/err"' \
	"push: exit $rc, stdout $P, $(cat "$T/err")"
row=$(q "select m.active_version, encode(v.sha256, 'hex'), v.metrics->>'clad_version' is not null
         from clad.model_list m join clad.model_versions v on v.name = m.name where m.name = 'pushed'")
check '[ "$row" = "$P|$(sha256sum "$T/m1.safetensors" | cut -d" " -f1)|t" ]' "the pushed version: $row"
rc=0
$BIN push --db "$CONN" --model-name m --activate --quiet "$T/m1.safetensors" >"$T/out" 2>"$T/err" || rc=$?
P2=$(cat "$T/out")
check '[ $rc -eq 0 ] && [ ! -s "$T/err" ] && [ "$(active)" = "$P2" ] && [ "$(versions)" = 4 ]' \
	"push --activate: exit $rc, stdout $P2, active $(active), $(cat "$T/err")"
check '[ "$(runs)" = 7 ]' "push recorded a training run ($(runs) runs)"
# a Deep SVDD model file (format 4) is pushed like a CLAD one and scored in SQL
rc=0
"$BIN" --data "mnist:$MNIST" --normal mnist:1 --method deepsvdd --ae-epochs 1 --svdd-epochs 1 --latent 8 \
	--svdd-batch 64 --no-eval --quiet --out "$T/svdd.safetensors" >/dev/null 2>"$T/err" &&
	PS=$($BIN push --db "$CONN" --model-name svdd --quiet "$T/svdd.safetensors" 2>>"$T/err") || rc=$?
row=$(q "select v.metrics->>'method', (select clad_score('svdd', img) between 0 and 1 from digits limit 1)
         from clad.model_versions v where v.id = ${PS:-0}")
check '[ $rc -eq 0 ] && [ "$row" = "deepsvdd|t" ]' "push of a Deep SVDD model: exit $rc, row '$row', $(cat "$T/err")"
# and trained from the database and stored as a version (--method deepsvdd --model-name):
# the run recorded, the test split's metrics in the version's
train --db "$CONN" --query "$TRAIN_Q" --test-query "$TEST_Q" "${N[@]}" --method deepsvdd --ae-epochs 1 \
	--svdd-epochs 1 --latent 8 --svdd-batch 64 --model-name svdd_db --activate
row=$(q "select r.status, r.rows, v.metrics->>'method', (v.metrics->'test'->'score'->>'auroc')::float between 0 and 1,
                (select clad_score('svdd_db', img) between 0 and 1 from digits limit 1)
         from clad.training_runs r join clad.model_versions v on v.id = r.version_id where r.model_name = 'svdd_db'")
check '[ $rc -eq 0 ] && [ "$row" = "succeeded|300|deepsvdd|t|t" ]' \
	"Deep SVDD trained with --db --model-name: exit $rc, row '$row', $(cat "$T/err")"
# the one-class SVM likewise: pushed from a file, and trained from the database
rc=0
"$BIN" --data "mnist:$MNIST" --normal mnist:1 --method ocsvm --no-eval --quiet --out "$T/svm.safetensors" \
	>/dev/null 2>"$T/err" && PS=$($BIN push --db "$CONN" --model-name svm --quiet "$T/svm.safetensors" 2>>"$T/err") ||
	rc=$?
row=$(q "select v.metrics->>'method', (select clad_score('svm', img) between 0 and 1 from digits limit 1)
         from clad.model_versions v where v.id = ${PS:-0}")
check '[ $rc -eq 0 ] && [ "$row" = "ocsvm|t" ]' "push of a one-class SVM model: exit $rc, row '$row', $(cat "$T/err")"
train --db "$CONN" --query "$TRAIN_Q" --test-query "$TEST_Q" "${N[@]}" --method ocsvm --model-name svm_db --activate
row=$(q "select r.status, r.rows, v.metrics->>'method', (v.metrics->'test'->'score'->>'auroc')::float between 0 and 1,
                (select clad_score('svm_db', img) between 0 and 1 from digits limit 1)
         from clad.training_runs r join clad.model_versions v on v.id = r.version_id where r.model_name = 'svm_db'")
check '[ $rc -eq 0 ] && [ "$row" = "succeeded|300|ocsvm|t|t" ]' \
	"one-class SVM trained with --db --model-name: exit $rc, row '$row', $(cat "$T/err")"
# --method auto, the labelled images from the database (--validate-query: image and a
# boolean is_anomaly, here the test rows' digits outside 1,4,7): the kept candidate is
# stored and the comparison lands in the version's metrics and the run's
train --db "$CONN" --query "$TRAIN_Q" --test-query "$TEST_Q" "${N[@]}" --method auto --classifier cnn \
	--ae-epochs 1 --dec-epochs 1 --clf-epochs 1 --svdd-epochs 1 --latent 8 --ae-batch 64 --bank 32 \
	--validate-query "select img, label not in (1, 4, 7) from digits where split = 'test' order by id" \
	--validation-anomalies 10 --model-name auto_db
row=$(q "select r.status, v.metrics->'auto'->>'picked' = v.metrics->>'method'
                    or (v.metrics->'auto'->>'picked' = 'clad' and v.metrics->>'method' is null),
                r.metrics->'auto' = v.metrics->'auto', (r.metrics->'auto'->>'validation_anomalies')::int,
                jsonb_typeof(r.metrics->'auto'->'candidates'->'ensemble'->'validation_auroc')
         from clad.training_runs r join clad.model_versions v on v.id = r.version_id where r.model_name = 'auto_db'")
check '[ $rc -eq 0 ] && [ "$row" = "succeeded|t|t|10|number" ]' \
	"--method auto with --validate-query: exit $rc, row '$row', $(cat "$T/err")"
# a hostile search_path (lookalikes of the lifecycle functions and an "=" on text
# that is always true, before the extension's schema) changes nothing
q "create schema evil;
   create function evil.clad_load_model(text, bytea, jsonb, boolean) returns bigint language sql as 'select 424242::bigint';
   create function evil.clad_run_begin(text, text) returns bigint language sql as 'select 424242::bigint';
   create function evil.text_eq_always(text, text) returns boolean language sql immutable as 'select true';
   create operator evil.= (leftarg = text, rightarg = text, function = evil.text_eq_always);
   alter database postgres set search_path = evil, public, pg_catalog" >/dev/null
rc=0
$BIN push --db "$CONN" --model-name hostile "$T/m1.safetensors" >"$T/out" 2>"$T/err" || rc=$?
PH=$(cat "$T/out")
q "alter database postgres reset search_path; drop schema evil cascade" >/dev/null 2>&1
check '[ $rc -eq 0 ] && [ "$PH" != 424242 ] && [ "$(q "select count(*) from clad.model_versions where name = '"'hostile'"' and id = ${PH:-0}")" = 1 ] &&
	grep -q "as clad model \"hostile\" version $PH on the --db server (active)" "$T/err"' \
	"push under a hostile search_path: exit $rc, stdout $PH, $(cat "$T/err")"
q "select clad_drop_model('hostile')" >/dev/null
head -c 1000 "$T/m1.safetensors" >"$T/cut.safetensors"
rc=0
$BIN push --db "$CONN" --model-name m "$T/cut.safetensors" >"$T/out" 2>"$T/err" || rc=$?
check '[ $rc -eq 1 ] && grep -q "is not a valid clad model" "$T/err" && [ ! -s "$T/out" ] && [ "$(versions)" = 4 ]' \
	"push of a truncated file: exit $rc, $(cat "$T/err")"

# ---------------------------------------------------------------- score: the trainer and SQL agree
# m1 (T = 1000: its confidences all sit near 1/K) and a model at T = 1, whose
# confidences spread over the images, so that equality means something
rc=0
"$BIN" --data "mnist:$MNIST" --normal mnist:1 "${FAST[@]}" --temperature 1 --no-eval --quiet \
	--out "$T/t1.safetensors" >/dev/null 2>"$T/score.err" || rc=$?
VT1=$($BIN push --db "$CONN" --model-name t1 "$T/t1.safetensors" 2>>"$T/score.err") || rc=$?
check '[ $rc -eq 0 ] && [ -n "$VT1" ]' "a T=1 model for the score check: $(cat "$T/score.err")"
for pair in "m1:$V1:0" "t1:$VT1:0.01"; do
	IFS=: read -r mname mver spread <<<"$pair"
	rc=0
	$BIN score "$T/$mname.safetensors" "$T"/img/*.png >"$T/score.txt" 2>"$T/score.err" || rc=$?
	q "select name, clad_confidence($mver::bigint, img), clad_score($mver::bigint, img) from score_imgs order by name" \
		>"$T/score.sql" 2>>"$T/score.err" || rc=$?
	[ $rc -eq 0 ] && "$PY" - "$T/score.txt" "$T/score.sql" "$spread" >"$T/score.chk" 2>&1 <<'EOF' || rc=1
import os, struct, sys
cli = {}
for line in open(sys.argv[1]):
    f, c, s = line.rstrip("\n").split("\t")
    cli[os.path.basename(f)] = (float(c), float(s))
sql = {}
for line in open(sys.argv[2]):
    if line.strip():
        n, c, s = line.rstrip("\n").split("|")
        sql[n] = (float(c), float(s))
assert len(cli) == 20 and sorted(cli) == sorted(sql), (sorted(cli), sorted(sql))
worst, same = 0.0, 0
for n in sql:
    for a, b in zip(cli[n], sql[n]):
        worst = max(worst, abs(a - b))
        same += struct.pack("<f", a) == struct.pack("<f", b)
assert worst <= 1e-6, "largest difference %g" % worst
assert len(set(v[1] for v in cli.values())) > 1, "every image has the same score"
confs = [v[0] for v in cli.values()]
assert max(confs) - min(confs) >= float(sys.argv[3]), "confidences spread only %g" % (max(confs) - min(confs))
print("largest difference %g; %d of %d values the same float; confidences %.6f..%.6f"
      % (worst, same, 2 * len(sql), min(confs), max(confs)))
EOF
	[ -z "${VERBOSE:-}" ] || cat "$T/score.txt" "$T/score.sql" "$T/score.chk"
	check '[ $rc -eq 0 ]' "clad-train score against SQL ($mname): $(cat "$T/score.err" "$T/score.chk" 2>/dev/null)"
	echo "score ($mname): $(cat "$T/score.chk")"
done
rc=0
$BIN score "$T/m1.safetensors" "$T/img/d00_"*.png "$T/cut.safetensors" >"$T/out" 2>"$T/err" || rc=$?
check '[ $rc -eq 1 ] && [ "$(wc -l <"$T/out")" = 1 ] && grep -q "cut.safetensors: cannot decode the image" "$T/err"' \
	"score of a file that is no image: exit $rc, $(cat "$T/err")"

# ---------------------------------------------------------------- privileges, secrets, usage
q "create role nopriv login" >/dev/null
rc=0
$BIN push --db "host=$SOCK port=$PORT user=nopriv dbname=postgres" --model-name m "$T/m1.safetensors" \
	>"$T/out" 2>"$T/err" || rc=$?
check '[ $rc -eq 1 ] && grep -q "permission denied" "$T/err" && [ "$(versions)" = 4 ]' \
	"push by a role without privilege: exit $rc, $(cat "$T/err")"
train --db "host=$SOCK port=$PORT user=nopriv dbname=postgres" --query "$TRAIN_Q" "${N[@]}" "${FAST[@]}" \
	--model-name m
check '[ $rc -eq 1 ] && grep -q "permission denied for function clad_run_begin" "$T/err" &&
	! grep -q "loading the training" "$T/err"' "training by a role without privilege: exit $rc, $(cat "$T/err")"
rc=0
$BIN push --db "host=$SOCK port=$PORT user=postgres dbname=nosuchdb password=s3cret-pw" --model-name m \
	"$T/m1.safetensors" >"$T/out" 2>"$T/err" || rc=$?
check '[ $rc -eq 1 ] && grep -q "cannot connect" "$T/err" && ! grep -q "s3cret-pw" "$T/err"' \
	"push to a database that does not exist: exit $rc, $(cat "$T/err")"

# expect STATUS NEEDLE -- ARGS... (checks.sh): exit status, a "clad-train: " message containing NEEDLE, no model
expect 2 '--model-name needs --db' -- --data "$MNIST" "${N[@]}" --model-name m --out "$T/x.safetensors"
expect 2 '--activate needs --model-name' -- --db "$CONN" --query "$TRAIN_Q" "${N[@]}" --activate \
	--out "$T/x.safetensors"
expect 2 '--out is required' -- --db "$CONN" --query "$TRAIN_Q" "${N[@]}"
expect 2 'push needs --model-name' -- push --db "$CONN" "$T/m1.safetensors"
expect 2 'push needs --db' -- push --model-name m "$T/m1.safetensors"
expect 2 'push needs a model file' -- push --db "$CONN" --model-name m
expect 2 'push takes only' -- push --db "$CONN" --model-name m --query "$TRAIN_Q" "$T/m1.safetensors"
expect 2 'score needs image files' -- score "$T/m1.safetensors"
expect 2 'does not apply to eval' -- eval --model "$T/m1.safetensors" --data "$MNIST" "${N[@]}" --model-name m
check '[ "$(versions)" = 4 ] && [ "$(runs)" = 7 ]' "usage errors changed the database"

if [ "$fails" -ne 0 ]; then
	echo "test_train_db.sh: $fails of $checks checks failed" >&2
	echo "--- server log" >&2
	tail -n 20 "$T/data/server.log" >&2 || true
	exit 1
fi
echo "test_train_db.sh: all $checks checks passed (PostgreSQL $("$PGBIN/postgres" -V | awk '{print $3}'), port $PORT)"

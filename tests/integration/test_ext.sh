#!/usr/bin/env bash
# tests/integration/test_ext.sh: the extension on a throwaway PostgreSQL cluster.
#
# Installs the extension (make install: as root), starts a private cluster
# (tests/integration/pgcluster.sh), has make put the suite's files in place (two small
# models trained on the real digits of tests/fixtures/mnist, the committed image
# files; tests/ext/fixtures.sh) with a copy in $T/regress for the checks below,
# and runs:
#   1. make installcheck: pg_regress, tests/sql/*.sql against tests/expected/*.out;
#   2. activation under load: one session scores in a loop while another
#      switches the active version back and forth; every statement must
#      succeed and see one version (its scores equal one version's, never a mix);
#   3. a parallel scan really runs in parallel workers (EXPLAIN ANALYZE shows
#      workers launched) and gives the serial plan's scores;
#   4. a backend's memory stays flat across thousands of scored rows;
#   5. statement_timeout (row and batch forms) and pg_cancel_backend stop a long
#      scoring query within a second; pg_terminate_backend ends one without a
#      crash or crash recovery in the server log;
#   6. pg_dump and pg_restore keep the models, their active versions, dates, the
#      ids of dropped versions, the position of the version ids, and a user table
#      scoring by id in its own schema (scripts/clad-restore-list).
set -euo pipefail
cd "$(dirname "$0")/../.."

BIN=${CLAD_TRAIN:-./trainer/clad-train}
. tests/integration/pgcluster.sh
pgc_need_clad test_ext.sh
pgc_start clad_test_ext "max_worker_processes = 8" "max_parallel_workers = 4"

D=$T/regress
. tests/ext/fixtures.sh
regress_fixtures "$D"
rm -rf tests/build/regress
if ! make -s installcheck; then
	[ -f tests/build/regress/regression.diffs ] && head -200 tests/build/regress/regression.diffs
	echo "test_ext.sh: pg_regress failed (tests/build/regress/regression.diffs)" >&2
	exit 1
fi

. tests/integration/checks.sh

# ---------------------------------------------------------------- activation under load
psql_q >/dev/null <<SQL
CREATE EXTENSION clad;
SELECT clad_load_model('live', pg_read_binary_file('$D/model1.safetensors'));
SELECT clad_load_model('live', pg_read_binary_file('$D/model2.safetensors'));
CREATE TABLE live_imgs AS
	SELECT f AS name, pg_read_binary_file('$D/digits/' || f) AS img
	FROM pg_ls_dir('$D/digits') f ORDER BY f LIMIT 16;
SQL
# the two versions' answers for the 16 images, as text
v1=$(psql_q -c "SELECT string_agg(clad_confidence(1, img)::text, ',' ORDER BY name) FROM live_imgs")
v2=$(psql_q -c "SELECT string_agg(clad_confidence(2, img)::text, ',' ORDER BY name) FROM live_imgs")
[ "$v1" != "$v2" ] && ok || bad "the two versions give the same confidences"
N=60
for i in $(seq $N); do
	echo "SELECT string_agg(clad_confidence('live', img)::text, ',' ORDER BY name) FROM live_imgs;"
done >"$T/score_loop.sql"
"$PGBIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -f "$T/score_loop.sql" >"$T/score_loop.out" 2>"$T/score_loop.err" &
scorer=$!
switches=0
while kill -0 $scorer 2>/dev/null; do
	psql_q -c "SELECT clad_activate('live', $((switches % 2 + 1)))" >/dev/null
	switches=$((switches + 1))
done
wait $scorer && ok || bad "the scoring session failed: $(head -3 "$T/score_loop.err")"
lines=$(wc -l <"$T/score_loop.out")
mixed=$(grep -v -x -F -e "$v1" -e "$v2" "$T/score_loop.out" | wc -l || true)
saw1=$(grep -c -x -F -e "$v1" "$T/score_loop.out" || true)
saw2=$(grep -c -x -F -e "$v2" "$T/score_loop.out" || true)
[ "$lines" = "$N" ] && ok || bad "$lines statements answered, not $N"
[ "$mixed" = 0 ] && ok || bad "$mixed statements mixed versions"
echo "activation under load: $N statements, $switches activations, $saw1 saw version 1, $saw2 saw version 2, $mixed mixed"

# ---------------------------------------------------------------- parallel workers
psql_q <<SQL >/dev/null
CREATE TABLE par AS SELECT g AS id, img FROM live_imgs, generate_series(1, 25) g;
ANALYZE par;
SQL
PAR="SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;"
plan=$(psql_q -c "$PAR EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT sum(clad_score(1, img)) FROM par")
if echo "$plan" | grep -q "Workers Launched: [12]"; then ok; else bad "no parallel workers launched: $plan"; fi
ser=$(psql_q -c "SET max_parallel_workers_per_gather = 0; SELECT string_agg(s::text, ',' ORDER BY id, s) FROM (SELECT id, clad_score('live', img) s FROM par) q")
par=$(psql_q -c "$PAR SELECT string_agg(s::text, ',' ORDER BY id, s) FROM (SELECT id, clad_score('live', img) s FROM par) q")
[ "$ser" = "$par" ] && ok || bad "parallel and serial scores differ"

# ---------------------------------------------------------------- prepared model files
# a version is prepared once and mapped by every later backend (pg_clad/<sha256>.prep);
# answers are the same with and without the file; a damaged or cut file is replaced,
# never trusted; the file goes with the last version of its bytes
PD=$T/data/pg_clad
sha_of() { psql_q -c "SELECT encode(sha256, 'hex') FROM clad.model_versions WHERE id = $1"; }
conf16() { psql_q -c "$1 SELECT string_agg(clad_confidence(1, img)::text, ',' ORDER BY name) FROM live_imgs"; }
mapped1() { psql_q -c "$1 SELECT clad_confidence(1, img) FROM live_imgs LIMIT 1" \
	-c "SELECT mapped FROM clad_cache() WHERE version = 1" | tail -1; }
sha1=$(sha_of 1)
[ -s "$PD/$sha1.prep" ] && ok || { bad "no prepared file $PD/$sha1.prep after scoring version 1"; ls -la "$PD" >&2; grep "clad" "$T/data/server.log" | tail >&2; }
[ -z "$(ls "$PD" | grep '\.tmp\.' || true)" ] && ok || bad "temporary files left in $PD: $(ls "$PD")"
[ "$(mapped1 "")" = t ] && ok || bad "a new session does not map version 1's prepared file"
[ "$(mapped1 "SET clad.prepared_files = off;")" = f ] && ok || bad "clad.prepared_files = off still maps"
[ "$(conf16 "SET clad.prepared_files = off;")" = "$v1" ] && ok || bad "scores without the prepared file differ"
[ "$(conf16 "")" = "$v1" ] && ok || bad "scores from the prepared file differ"
size=$(stat -c %s "$PD/$sha1.prep")
for damage in garbage cut flip; do
	case $damage in
		garbage) printf 'not a prepared model' | as_pg tee "$PD/$sha1.prep" >/dev/null ;;
		cut) as_pg truncate -s $((size / 2)) "$PD/$sha1.prep" ;;
		flip) printf '\377' | as_pg dd of="$PD/$sha1.prep" bs=1 seek=$((size - 100)) conv=notrunc status=none ;;
	esac
	[ "$(conf16 "")" = "$v1" ] && ok || bad "scores after a $damage prepared file differ"
	[ "$(stat -c %s "$PD/$sha1.prep")" = "$size" ] && [ "$(mapped1 "")" = t ] && ok ||
		bad "a $damage prepared file was not replaced by a good one"
done
n_refused=$(grep -c "prepared model \"pg_clad/$sha1.prep\" not used" "$T/data/server.log" || true)
[ "$n_refused" -ge 3 ] && ok || bad "the server log shows $n_refused refused prepared files, not 3"
# ---------------------------------------------------------------- bf16 scoring (clad.precision)
# a ResNet-18 (whose small-map convolutions have plans; the cnn fixtures have none):
# a session with clad.precision = bf16 scores from a prepared file of its own
# (pg_clad/<sha256>.bf16.prep, smaller) the confidences clad-train score --precision
# bf16 prints (within 1e-6), which differ from fp32's a little; fp32 sessions keep the
# fp32 answers; a value other than fp32 or bf16 is refused; the drop takes both files
fixture_model "$T/r18.safetensors" mnist:7 3 7 --classifier resnet18 --recipe paper
chmod a+r "$T/r18.safetensors"
r18=$(psql_q -c "SELECT clad_load_model('r18', pg_read_binary_file('$T/r18.safetensors'))")
sha_r18=$(sha_of "$r18")
conf_r18() { psql_q -c "$1 SELECT string_agg(clad_confidence($r18, img)::text, ',' ORDER BY name) FROM live_imgs"; }
bf_files=$(psql_q -c "SELECT string_agg('$D/digits/' || name, ' ' ORDER BY name) FROM live_imgs")
fp_sql=$(conf_r18 "")
bf_sql=$(conf_r18 "SET clad.precision = bf16;")
# shellcheck disable=SC2086
bf_trainer=$("$BIN" score --precision bf16 "$T/r18.safetensors" $bf_files | cut -f2 | paste -sd,)
# shellcheck disable=SC2086
fp_trainer=$("$BIN" score "$T/r18.safetensors" $bf_files | cut -f2 | paste -sd,)
if /usr/bin/python3 - "$bf_sql" "$bf_trainer" "$fp_sql" "$fp_trainer" <<'EOF'
import sys
sq, tr, fp, fpt = ([float(v) for v in a.split(",")] for a in sys.argv[1:5])
assert len(sq) == len(tr) == len(fp) == len(fpt) == 16, (len(sq), len(tr), len(fp), len(fpt))
close = lambda a, b: abs(a - b) <= 1e-6 * max(1.0, abs(b))
assert all(close(a, b) for a, b in zip(sq, tr)), ("bf16", sq, tr)
assert all(close(a, b) for a, b in zip(fp, fpt)), ("fp32", fp, fpt)
assert sq != fp, "bf16 answers equal fp32's: nothing was rounded"
assert all(abs(a - b) <= 0.01 * max(1.0, abs(b)) for a, b in zip(sq, fp)), (sq, fp)
EOF
then ok; else bad "bf16 confidences in SQL differ from clad-train score --precision bf16's, or from fp32's too much"; fi
[ -s "$PD/$sha_r18.bf16.prep" ] && [ "$(stat -c %s "$PD/$sha_r18.bf16.prep")" -lt "$(stat -c %s "$PD/$sha_r18.prep")" ] &&
	ok || bad "no smaller bf16 prepared file beside the fp32 one: $(ls -l "$PD")"
[ "$(psql_q -c "SET clad.precision = bf16" -c "SELECT clad_confidence($r18, img) FROM live_imgs LIMIT 1" \
	-c "SELECT mapped FROM clad_cache() WHERE version = $r18" | tail -1)" = t ] && ok ||
	bad "a new bf16 session does not map the bf16 prepared file"
[ "$(conf_r18 "SET clad.precision = bf16;")" = "$bf_sql" ] && ok || bad "bf16 answers from the prepared file differ"
[ "$(psql_q -c "SET clad.precision = bf16" -c "SELECT clad_confidence($r18, img) FROM live_imgs LIMIT 1" \
	-c "RESET clad.precision" \
	-c "SELECT string_agg(clad_confidence($r18, img)::text, ',' ORDER BY name) FROM live_imgs" | tail -1)" = "$fp_sql" ] &&
	ok || bad "a session that scored in bf16 does not give fp32's answers after RESET clad.precision"
[ "$(psql_q -c "SELECT status FROM clad_prepared_files(false) WHERE file = '$sha_r18.bf16.prep'")" = "in use" ] &&
	ok || bad "clad_prepared_files() does not list the bf16 file in use"
msg=$(psql_q -c "SELECT clad_blas()" -c "SET clad.precision = fp16" 2>&1 || true)
[[ $msg == *'invalid value for parameter "clad.precision": "fp16"'* ]] && ok || bad "SET clad.precision = fp16: $msg"
# set before the library is loaded: a placeholder, checked at the load: a warning, and fp32
msg=$(psql_q -c "SET clad.precision = fp16" -c "SELECT clad_blas() IS NOT NULL" -c "SHOW clad.precision" 2>&1 || true)
[[ $msg == *'WARNING:  invalid value for parameter "clad.precision": "fp16"'* && $msg == *fp32 ]] && ok ||
	bad "SET clad.precision = fp16 before clad was loaded: $msg"
echo "bf16 scoring: 16 confidences as clad-train score --precision bf16 gives them; prepared files $(stat -c %s "$PD/$sha_r18.bf16.prep") bytes in bf16, $(stat -c %s "$PD/$sha_r18.prep") in fp32"
psql_q -c "SELECT clad_drop_model('r18')" >/dev/null
[ ! -e "$PD/$sha_r18.prep" ] && [ ! -e "$PD/$sha_r18.bf16.prep" ] && ok || bad "dropping the model left its prepared files"

# the file goes with the last version of its bytes
fixture_model "$T/solo.safetensors" mnist:7 3 7
chmod a+r "$T/solo.safetensors"
solo=$(psql_q -c "SELECT clad_load_model('solo', pg_read_binary_file('$T/solo.safetensors'))")
twin=$(psql_q -c "SELECT clad_load_model('twin', pg_read_binary_file('$D/model1.safetensors'))")
sha_solo=$(sha_of "$solo")
# written when the version was stored: the first scoring session maps it at once
[ -s "$PD/$sha_solo.prep" ] && ok || bad "no prepared file written when the new model was stored"
[ "$(psql_q -c "SELECT clad_score($solo, img) FROM live_imgs LIMIT 1" \
	-c "SELECT mapped FROM clad_cache() WHERE version = $solo" | tail -1)" = t ] && ok ||
	bad "the first session scoring a freshly stored version did not map its prepared file"
psql_q -c "SELECT clad_score($twin, img) FROM live_imgs LIMIT 1" >/dev/null
psql_q -c "SELECT clad_drop_model('solo')" -c "SELECT clad_drop_model('twin')" >/dev/null
[ ! -e "$PD/$sha_solo.prep" ] && ok || bad "dropping the model left its prepared file"
[ -s "$PD/$sha1.prep" ] && ok || bad "dropping a model removed the prepared file another version still uses"
# a drop releases the file when it commits: not on rollback (of the transaction or
# a savepoint), and even when a concurrent scorer wrote the file again meanwhile
psql_q -c "CREATE DATABASE clad_other" >/dev/null
other() { psql_q -d clad_other "$@"; }
other -c "CREATE EXTENSION clad" -c "CREATE EXTENSION dblink" >/dev/null
race=$(other -c "SELECT clad_load_model('race', pg_read_binary_file('$T/solo.safetensors'))")
other -c "BEGIN" -c "SELECT clad_drop_model('race')" -c "ROLLBACK" >/dev/null
[ -s "$PD/$sha_solo.prep" ] && ok || bad "a rolled back drop removed the prepared file"
other -c "BEGIN" -c "SAVEPOINT a" -c "SELECT clad_drop_model('race')" -c "ROLLBACK TO a" -c "COMMIT" >/dev/null
[ -s "$PD/$sha_solo.prep" ] && ok || bad "a drop rolled back to a savepoint removed the prepared file"
other >/dev/null <<SQL
SELECT dblink_connect('dropper', 'host=$SOCK port=$PORT user=postgres dbname=clad_other');
SELECT dblink_exec('dropper', 'BEGIN');
SELECT dblink_exec('dropper', 'DO \$\$BEGIN PERFORM clad_drop_model(''race''); END\$\$');
SELECT clad_score($race, img) FROM (SELECT pg_read_binary_file('$D/digits/' || f) img
	FROM pg_ls_dir('$D/digits') f ORDER BY f LIMIT 1) q;
SELECT dblink_exec('dropper', 'COMMIT');
SQL
[ ! -e "$PD/$sha_solo.prep" ] && ok || bad "a drop that committed after a concurrent scorer rewrote the file left it"
# shared by databases: the file stays while any database of the cluster holds the bytes
other -c "SELECT clad_load_model('solo', pg_read_binary_file('$T/solo.safetensors'))" >/dev/null
psql_q -c "SELECT clad_load_model('solo', pg_read_binary_file('$T/solo.safetensors'))" >/dev/null
psql_q -c "SELECT clad_drop_model('solo')" >/dev/null
[ -s "$PD/$sha_solo.prep" ] && ok || bad "a drop in one database removed the prepared file another database holds"
other -c "SELECT clad_score('solo', img) FROM (SELECT pg_read_binary_file('$D/digits/' || f) img
	FROM pg_ls_dir('$D/digits') f ORDER BY f LIMIT 1) q" -c "SELECT mapped FROM clad_cache()" | tail -1 | grep -qx t &&
	ok || bad "the other database does not map the file after the first database's drop"
other -c "SELECT clad_drop_model('solo')" >/dev/null
[ ! -e "$PD/$sha_solo.prep" ] && ok || bad "the last database's drop left the prepared file"
# clad_prepared_files: in use, orphans (a rolled back load, a dropped database's bytes,
# a stray file), unfinished temporary files; removed on request, the files in use kept
psql_q -c "BEGIN" -c "SELECT clad_load_model('ghost', pg_read_binary_file('$T/solo.safetensors'))" -c "ROLLBACK" >/dev/null
fake=$(printf '%064d' 7)
as_pg cp "$PD/$sha1.prep" "$PD/$fake.prep"
gone_pid=$(sh -c 'echo $$')
as_pg cp "$PD/$sha1.prep" "$PD/$fake.prep.tmp.$gone_pid"
files() { psql_q -c "SELECT string_agg(left(file, 4) || CASE WHEN file LIKE '%.tmp.%' THEN '.tmp' ELSE '.prep' END
	|| ':' || status, ' ' ORDER BY file)
	FROM clad_prepared_files($1) WHERE sha256 IN ('$sha1', '$sha_solo', '$fake')"; }
s1=${sha1:0:4}.prep:in\ use; so=${sha_solo:0:4}.prep
report=$(files false)
for w in "$s1" "$so:orphan" "0000.prep:orphan" "0000.tmp:unfinished"; do
	case " $report " in *" $w "*) ok ;; *) bad "clad_prepared_files() does not report '$w': $report" ;; esac
done
report=$(files true)
for w in "$s1" "$so:removed" "0000.prep:removed" "0000.tmp:removed"; do
	case " $report " in *" $w "*) ok ;; *) bad "clad_prepared_files(true) does not report '$w': $report" ;; esac
done
[ ! -e "$PD/$sha_solo.prep" ] && [ ! -e "$PD/$fake.prep" ] && [ -s "$PD/$sha1.prep" ] && ok ||
	bad "clad_prepared_files(true) removed the wrong files: $(ls "$PD")"
other -c "SELECT clad_load_model('left', pg_read_binary_file('$T/solo.safetensors'))" >/dev/null
psql_q -c "DROP DATABASE clad_other" >/dev/null
case " $(files false) " in *" $so:orphan "*) ok ;; *) bad "a dropped database's file is not an orphan: $(files false)" ;; esac
files true >/dev/null
[ -z "$(ls "$PD" | grep "^$sha_solo" || true)" ] && ok || bad "a dropped database's file or marker stayed: $(ls "$PD")"
echo "prepared files: $(ls "$PD" | wc -l) in pg_clad, $size bytes for version 1; damaged, cut and flipped files replaced ($n_refused refusals logged)"

# ---------------------------------------------------------------- memory stays flat across rows
# one session (JIT off: LLVM's own memory is not clad's): every kind of call
# once (model cached, buffers grown to their batch high-water mark), RSS, then
# the same statements ten times more, RSS again; the growth must stay under
# 1 MB (a leak of even 100 bytes per call would show as 1.2 MB)
rss="substring(pg_read_file('/proc/self/status') from 'VmRSS:\\s+(\\d+)')::int"
calls="SELECT count(clad_score('live', img)) + count(clad_embed('live', img)) + count(clad_cluster_probs('live', img)) FROM par;
SELECT count(clad_score('live', array_agg)) FROM (SELECT array_agg(img) FROM par GROUP BY id % 7) q;"
mem=$(psql_q -F ' ' <<SQL
SET jit = off;
$calls
SELECT $rss;
$(for i in $(seq 10); do echo "$calls"; done)
SELECT $rss;
SQL
)
before=$(echo "$mem" | sed -n 3p)
after=$(echo "$mem" | sed -n 24p)
if [ -n "$before" ] && [ -n "$after" ] && [ $((after - before)) -lt 1024 ]; then ok; else bad "backend RSS grew from $before kB to $after kB"; fi
echo "memory: backend RSS $before kB after 1,200 calls and 7 batches, $after kB after 12,000 more calls and 70 batches"

# ---------------------------------------------------------------- cancel and statement_timeout
# a long scoring query (40,000 rows) stops within a second
ms() { echo $(($(date +%s%N) / 1000000)); }
t0=$(ms)
out=$(psql_q -c "SET statement_timeout = '300ms'; SELECT count(clad_score('live', img)) FROM par, generate_series(1, 100)" 2>&1 || true)
t1=$(ms)
if echo "$out" | grep -q "canceling statement due to statement timeout" && [ $((t1 - t0)) -lt 1300 ]; then ok
else bad "statement_timeout: $((t1 - t0)) ms: $out"; fi
echo "statement_timeout 300 ms: the query stopped after $((t1 - t0)) ms (psql start included)"
# the batch form too (chunks of 64 images)
t0=$(ms)
out=$(psql_q -c "SET statement_timeout = '300ms'; SELECT sum(s) FROM (SELECT unnest(clad_score('live', array_agg(img))) s
	FROM par, generate_series(1, 100) g GROUP BY g) b" 2>&1 || true)
t1=$(ms)
if echo "$out" | grep -q "canceling statement due to statement timeout" && [ $((t1 - t0)) -lt 1300 ]; then ok
else bad "statement_timeout, batch form: $((t1 - t0)) ms: $out"; fi
echo "statement_timeout 300 ms, batch form: the query stopped after $((t1 - t0)) ms (psql start included)"

# start a long scoring query in the background; sets victim (the psql) and pid (its backend)
long_query() {
	"$PGBIN/psql" -X -q -A -t -c "SELECT count(clad_score('live', img)) FROM par, generate_series(1, 100)" >"$1" 2>&1 &
	victim=$!
	pid=$(pgc_backend_pid "query LIKE 'SELECT count(clad_score(%'")
	sleep 0.3
}
# stop_long_query FUNCTION MESSAGE: a long query stopped by pg_cancel_backend or
# pg_terminate_backend must end with MESSAGE within a second; sets t0, t1
stop_long_query() {
	long_query "$T/$1.out"
	t0=$(ms)
	psql_q -c "SELECT $1($pid)" >/dev/null
	wait $victim || true
	t1=$(ms)
	if grep -q "$2" "$T/$1.out" && [ $((t1 - t0)) -lt 1000 ]; then ok
	else bad "$1: $((t1 - t0)) ms: $(cat "$T/$1.out")"; fi
}
stop_long_query pg_cancel_backend "canceling statement due to user request"
echo "pg_cancel_backend: the query stopped $((t1 - t0)) ms after the cancel"

# pg_terminate_backend mid-query: the backend exits cleanly (no crash, no
# crash recovery) and the server goes on
stop_long_query pg_terminate_backend "terminating connection due to administrator command"
sleep 0.5
if grep -qiE "terminated by signal|was terminated|crash|reinitializ|not properly shut down" "$T/data/server.log"; then
	bad "the server log shows a crash: $(grep -iE "terminated by signal|was terminated|crash|reinitializ|not properly shut down" "$T/data/server.log" | head -3)"
else ok; fi
[ "$(psql_q -c "SELECT clad_score('live', img) BETWEEN 0 AND 1 FROM par LIMIT 1")" = t ] && ok || bad "no scoring after the terminate"
echo "pg_terminate_backend: the backend left $((t1 - t0)) ms after the terminate; no crash or recovery in the server log"

# ---------------------------------------------------------------- a held training lock
# any role can take the advisory lock of a model's training runs: the refusal
# names the holder's process and role so that an operator can act
psql_q -c "SET application_name = 'lock_squatter'; SELECT pg_advisory_lock(1668047204, hashtext('locked')), pg_sleep(4)" >/dev/null &
squatter=$!
for _ in $(seq 50); do
	[ "$(psql_q -c "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 1668047204")" = 1 ] && break
	sleep 0.1
done
msg=$(psql_q -c "SELECT clad_run_begin('locked')" 2>&1 || true)
[[ $msg == *"held by process"*"role postgres"*"lock_squatter"* ]] && ok || bad "the refused run does not name the lock's holder: $msg"
wait $squatter
echo "held training lock: $(grep -o 'held by process.*' <<<"$msg" | head -1)"

# ---------------------------------------------------------------- the other methods' models
# a Deep SVDD, a one-class SVM and an ensemble model (CLAD, Deep SVDD and a one-class
# SVM), each trained by clad-train --method M --out and served like a CLAD model: the
# trainer's confidences and scores (clad-train score) equal the server's row by row
# within 1e-6, and the batch form's within 1e-5; clad_is_anomaly follows the stored
# threshold; clad_embed gives Deep SVDD's code and refuses the others (no encoder of
# their own); the cluster functions refuse them naming the method; a new session maps
# the prepared file and scores the same (an ensemble has none: it is loaded from its
# file, and scores the same); pg_dump keeps them (below)
mapfile -t method_files < <(psql_q -c "SELECT '$D/digits/' || name FROM live_imgs ORDER BY name")
# serve_method NAME METHOD LATENT (0: none) TRAINING-OPTIONS...
serve_method() {
	local name=$1 method=$2 latent=$3 version threshold msg conf embed="NULL" mapped=t
	shift 3
	[ "$method" = ensemble ] && mapped=f
	"${BIN:-trainer/clad-train}" --data "mnist:${MNIST:-tests/fixtures/mnist}" --method "$method" --normal mnist:7 \
		"$@" --threads 1 --no-eval --quiet --out "$T/$name.safetensors" >/dev/null
	chmod a+r "$T/$name.safetensors"
	version=$(psql_q -c "SELECT clad_load_model('$name', pg_read_binary_file('$T/$name.safetensors'))")
	"${BIN:-trainer/clad-train}" score "$T/$name.safetensors" "${method_files[@]}" >"$T/${name}_trainer.txt"
	[ "$latent" -gt 0 ] && embed="array_length(clad_embed('$name', img), 1)"
	psql_q -F $'\t' -c "SELECT '$D/digits/' || name, clad_confidence('$name', img), clad_score('$name', img),
		clad_is_anomaly('$name', img), $embed FROM live_imgs ORDER BY name" >"$T/${name}_sql.txt"
	psql_q -c "SELECT array_to_string(clad_confidence('$name', array_agg(img ORDER BY name)), E'\n')
		FROM live_imgs" >"$T/${name}_batch.txt"
	threshold=$("${BIN:-trainer/clad-train}" info "$T/$name.safetensors" --json |
		/usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["threshold"])')
	if /usr/bin/python3 - "$T/${name}_trainer.txt" "$T/${name}_sql.txt" "$T/${name}_batch.txt" "$threshold" "$latent" <<'EOF'
import sys
tr = [l.split("\t") for l in open(sys.argv[1]).read().splitlines()]
sq = [l.split("\t") for l in open(sys.argv[2]).read().splitlines()]
ba = [float(v) for v in open(sys.argv[3]).read().split()]
thr, latent = float(sys.argv[4]), sys.argv[5]
assert len(tr) == len(sq) == len(ba) == 16, (len(tr), len(sq), len(ba))
close = lambda a, b: abs(a - b) <= 1e-6 * max(1.0, abs(b))
for t, s, b in zip(tr, sq, ba):
    assert t[0] == s[0], (t, s)
    assert close(float(s[1]), float(t[1])) and close(float(s[2]), float(t[2])), (t, s)
    # the batch form multiplies 16 images at once: the products round otherwise
    assert abs(b - float(s[1])) <= 1e-5 * max(1.0, abs(float(s[1]))), (b, s)
    assert (s[3] == "t") == (float(s[1]) < thr), (s, thr)
    assert s[4] == (latent if latent != "0" else ""), (s, latent)
assert len({s[1] for s in sq}) > 1, "every image has the same confidence"
EOF
	then ok; else bad "the $method model's SQL answers differ from clad-train score's"; fi
	msg=$(psql_q -c "SELECT clad_cluster('$name', img) FROM live_imgs LIMIT 1" 2>&1 || true)
	[[ $msg == *"\"$name\" is a $method model: it has no clusters"* ]] && ok || bad "clad_cluster of a $method model: $msg"
	msg=$(psql_q -c "SELECT clad_cluster('$name', array_agg(img)) FROM live_imgs" 2>&1 || true)
	[[ $msg == *"is a $method model"* ]] && ok || bad "the batch clad_cluster of a $method model: $msg"
	if [ "$latent" -eq 0 ]; then
		msg=$(psql_q -c "SELECT clad_embed('$name', img) FROM live_imgs LIMIT 1" 2>&1 || true)
		[[ $msg == *"\"$name\" is a $method model: it has no latent code"* ]] && ok ||
			bad "clad_embed of a $method model: $msg"
	fi
	[ "$(psql_q -c "SELECT clad_model_describe(pg_read_binary_file('$T/$name.safetensors'))->>'method'")" = "$method" ] &&
		ok || bad "clad_model_describe does not name the $method method"
	conf="SELECT string_agg(clad_confidence('$name', img)::text, ',' ORDER BY name) FROM live_imgs"
	[ "$(psql_q -c "$conf" -c "SELECT mapped FROM clad_cache() WHERE version = $version" | tail -1)" = $mapped ] &&
		[ "$(psql_q -c "$conf")" = "$(psql_q -c "SET clad.prepared_files = off; $conf" | tail -1)" ] && ok ||
		bad "a $method model's prepared file is not mapped (or is, for an ensemble), or scores otherwise"
	echo "$method model: version $version, served in SQL as clad-train scores it (16 digits, threshold $threshold)"
}
serve_method svdd deepsvdd 8 --ae-epochs 2 --svdd-epochs 2 --latent 8 --svdd-batch 64
serve_method svm ocsvm 0
serve_method ens ensemble 0 --classifier cnn --ae-epochs 2 --dec-epochs 1 --clf-epochs 1 --svdd-epochs 2 \
	--bank 64 --latent 8 --ae-batch 64 --svdd-batch 64

# ---------------------------------------------------------------- pg_dump keeps the models
# models are user data (extension config tables): a dump restored into a new
# database has every version with its date, the active ones, the ids of dropped
# versions, the runs, and new ids follow on.  A user table in a schema that sorts
# before "clad", with a generated column over scoring by id, restores whole when
# pg_restore follows scripts/clad-restore-list.
gone=$(psql_q <<SQL | tail -1
SELECT clad_load_model('gone', pg_read_binary_file('$D/model1.safetensors'));
SELECT clad_load_model('gone', pg_read_binary_file('$D/model2.safetensors')) AS v \gset
SELECT clad_drop_model('gone', :v);
SELECT :v;
SQL
)
psql_q >/dev/null <<SQL
CREATE SCHEMA app;
CREATE TABLE app.scored (name text PRIMARY KEY, img bytea NOT NULL,
						 s real GENERATED ALWAYS AS (clad_score(1::bigint, img)) STORED);
INSERT INTO app.scored SELECT name, img FROM live_imgs;
CREATE INDEX scored_by_2 ON app.scored ((clad_score(2::bigint, img)));
SQL
"$PGBIN/pg_dump" -Fc -d postgres -f "$T/dump.pgc"
psql_q -c "CREATE DATABASE restored" >/dev/null
if PG_RESTORE="$PGBIN/pg_restore" ./scripts/clad-restore-list "$T/dump.pgc" >"$T/restore.list" &&
	"$PGBIN/pg_restore" -L "$T/restore.list" -d restored --exit-on-error "$T/dump.pgc" 2>"$T/restore.err"; then ok
else bad "pg_restore: $(head -5 "$T/restore.err")"; fi
dates="SELECT string_agg(id || '@' || created_at || ':' || md5(metrics::text) || ':' || encode(sha256, 'hex'), ' ' ORDER BY id) FROM clad.model_versions"
[ "$(psql_q -c "$dates")" = "$(psql_q -d restored -c "$dates")" ] && ok ||
	bad "version dates after restore: $(psql_q -d restored -c "$dates"), before: $(psql_q -c "$dates")"
retired="SELECT string_agg(id || ':' || encode(sha256, 'hex'), ' ' ORDER BY id) FROM clad.retired_versions"
r=$(psql_q -d restored -c "$retired")
[ -n "$r" ] && [ "$(psql_q -c "$retired")" = "$r" ] && ok || bad "retired ids after restore: '$r'"
msg=$(psql_q -d restored -c "SELECT clad_load_model_version($gone, 'gone', pg_read_binary_file('$D/model1.safetensors'))" 2>&1 || true)
[[ $msg == *"was dropped from this server"* ]] && ok || bad "a dropped id took other bytes after restore: $msg"
user_rows="SELECT count(*) || ':' || string_agg(s::text, ',' ORDER BY name) FROM app.scored"
[ "$(psql_q -c "$user_rows")" = "$(psql_q -d restored -c "$user_rows")" ] && ok ||
	bad "the user table scoring by id after restore: $(psql_q -d restored -c "$user_rows")"
above="SELECT string_agg(name, ',' ORDER BY name) FROM app.scored WHERE clad_score(2::bigint, img) > 0.5"
no_scan="SET enable_seqscan = off; SET enable_bitmapscan = off;"
no_index="SET enable_indexscan = off; SET enable_bitmapscan = off;"
psql_q -d restored -c "$no_scan EXPLAIN $above" | grep -q "Index Scan using scored_by_2" && ok ||
	bad "the restored expression index over scoring by id is not used"
[ "$(psql_q -d restored -c "$no_scan $above")" = "$(psql_q -d restored -c "$no_index $above")" ] &&
	[ "$(psql_q -d restored -c "$no_scan $above")" = "$(psql_q -c "$no_index $above")" ] && ok ||
	bad "the restored index over scoring by id answers otherwise than a scan"
listing="SELECT string_agg(name || ':' || coalesce(active_version, 0) || ':' || versions, ' ' ORDER BY name) FROM clad.model_list"
a=$(psql_q -c "$listing")
b=$(psql_q -d restored -c "$listing")
[ -n "$a" ] && [ "$a" = "$b" ] && ok || bad "models after restore: '$b', before: '$a'"
conf="SELECT string_agg(clad_confidence('live', img)::text, ',' ORDER BY name) FROM live_imgs"
[ "$(psql_q -c "$conf")" = "$(psql_q -d restored -c "$conf")" ] && ok || bad "scores differ after restore"
for name in svdd svm ens; do
	conf="SELECT string_agg(clad_confidence('$name', img)::text, ',' ORDER BY name) FROM live_imgs"
	[ "$(psql_q -c "$conf")" = "$(psql_q -d restored -c "$conf")" ] && ok ||
		bad "the model $name scores differently after restore"
done
maxid=$(psql_q -c "SELECT max(id) FROM clad.model_versions")
newid=$(psql_q -d restored -c "SELECT clad_load_model('live', pg_read_binary_file('$D/model1.safetensors'))")
[ "$newid" -gt "$maxid" ] && ok || bad "a version loaded after restore got id $newid (ids up to $maxid existed)"
echo "pg_dump/pg_restore: models $b; next version id $newid"

if [ "$fails" -ne 0 ]; then
	echo "test_ext.sh: $fails of $checks checks failed" >&2
	exit 1
fi
echo "test_ext.sh: pg_regress passed; all $checks further checks passed (PostgreSQL $("$PGBIN/postgres" -V | awk '{print $3}'))"

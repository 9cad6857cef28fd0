#!/usr/bin/env bash
# tests/integration/test_soak.sh: scoring under load while models change, and a trainer killed
# mid-run (make soak; SOAK_SECONDS long, 180 by default).
#
# A throwaway cluster (local socket only) holds 300 real MNIST digits as PNG bytea
# and a model "m" whose versions are always one of three known model files A, B
# and C (C trained from the table by `clad-train --db`, which is deterministic,
# so retraining it gives C's bytes again).  For SOAK_SECONDS:
#   - pgbench, 16 clients, runs one statement per transaction that scores four
#     random digits by the model's name and divides by the number of files whose
#     confidences match all four (0 when the statement mixed versions: an ERROR,
#     counted as a failed transaction);
#   - a retraining job stores and activates a new version every
#     SOAK_RETRAIN_EVERY (5) seconds: `clad-train push --activate` of A or B, or
#     `clad-train --db ... --model-name m --activate` (C again);
#   - another session prunes old versions (clad_prune_versions, keep 3) every 3 s;
#   - the private memory (RssAnon) of every pgbench backend is sampled every 2 s.
# Passes when no transaction failed, every stored version is A, B or C, the
# backends' memory stays under a bound (their model cache holds at most
# clad.model_cache_size = 4 models: 4 x 1.5 x the model file, plus 64 MB for the
# backend itself), and the server log shows no crash.  Then clad-train is killed
# (SIGKILL, then SIGTERM) in the middle of a --db run: the active version and
# the versions stay as they were, scoring goes on, and the run is marked failed
# (at once for SIGTERM; for SIGKILL, which the trainer cannot see, when the next
# run of the model starts, as clad_run_begin does).
set -euo pipefail
cd "$(dirname "$0")/../.."

BIN=${CLAD_TRAIN:-./trainer/clad-train}
PY=${PYTHON:-/usr/bin/python3}
MNIST=${MNIST:-data/mnist}
SECS=${SOAK_SECONDS:-180}
EVERY=${SOAK_RETRAIN_EVERY:-5}
. tests/integration/pgcluster.sh
pgc_need_clad test_soak.sh
pgc_start clad_test_soak "max_connections = 60"
bg=()
stop_bg() { for p in "${bg[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap 'stop_bg; pgc_cleanup' EXIT

. tests/integration/checks.sh

# ---------------------------------------------------------------- data and models
"$PY" scripts/digits_copy.py "$MNIST" "$T/digits.copy" 200 100
psql_q >/dev/null <<SQL
CREATE EXTENSION clad;
CREATE TABLE images (id int PRIMARY KEY, label int, split text, img bytea);
\copy images (id, label, split, img) FROM '$T/digits.copy'
SQL
TRAIN_Q="SELECT img, label FROM images WHERE split = 'train'"
FAST=(--classifier cnn --ae-epochs 1 --dec-epochs 1 --clf-epochs 1 --ae-batch 32 --dec-batch 32
	--clf-batch 32 --kmeans-restarts 2 -K 4 --normal 1,4,7 --quiet)
"$BIN" --data "mnist:$MNIST" "${FAST[@]}" --seed 1 --no-eval --out "$T/A.safetensors" >/dev/null
"$BIN" --data "mnist:$MNIST" "${FAST[@]}" --seed 2 --no-eval --out "$T/B.safetensors" >/dev/null
"$BIN" --db "$CONN" --query "$TRAIN_Q" "${FAST[@]}" --seed 3 --model-name m --activate \
	--out "$T/C.safetensors" >/dev/null 2>"$T/c.err" || { cat "$T/c.err" >&2; exit 1; }
chmod -R a+rX "$T"
# ref: each file's confidence for every digit (through fixed version ids)
psql_q >/dev/null <<SQL
SELECT clad_load_model('ref_a', pg_read_binary_file('$T/A.safetensors'));
SELECT clad_load_model('ref_b', pg_read_binary_file('$T/B.safetensors'));
CREATE TABLE files (file text PRIMARY KEY, sha256 bytea);
INSERT INTO files SELECT 'A', sha256(pg_read_binary_file('$T/A.safetensors'))
	UNION ALL SELECT 'B', sha256(pg_read_binary_file('$T/B.safetensors'))
	UNION ALL SELECT 'C', sha256(pg_read_binary_file('$T/C.safetensors'));
CREATE TABLE ref (file text, id int, conf real, PRIMARY KEY (file, id));
INSERT INTO ref SELECT f, i.id, clad_confidence(m, i.img) FROM images i,
	(VALUES ('A', 'ref_a'), ('B', 'ref_b'), ('C', 'm')) v(f, m);
GRANT SELECT ON images, ref TO PUBLIC;
SQL
distinct=$(psql_q -c "SELECT count(*) FROM (SELECT id FROM ref GROUP BY id HAVING count(DISTINCT conf) = 3) q")
echo "soak: 300 digits; models A, B, C ($(stat -c %s "$T/A.safetensors") bytes each);" \
	"$distinct digits have three different confidences"
[ "$distinct" -ge 250 ] || bad "the three models do not tell their versions apart ($distinct digits)"

# pgbench: four random digits scored by name in one statement; the statement
# fails (division by zero) unless one file explains all four confidences
cat >"$T/score.sql" <<'SQL'
\set a random(1, 300)
\set b random(1, 300)
\set c random(1, 300)
\set d random(1, 300)
SELECT 1 / (SELECT count(*)::int FROM (SELECT r.file FROM
	(SELECT id, clad_confidence('m', img) AS conf FROM images WHERE id IN (:a, :b, :c, :d)) s
	JOIN ref r ON r.id = s.id AND r.conf = s.conf GROUP BY r.file
	HAVING count(*) = (SELECT count(*) FROM images WHERE id IN (:a, :b, :c, :d))) q);
SQL

# ---------------------------------------------------------------- under load
end=$(($(date +%s) + SECS))
(
	# stop_bg's TERM ends the loop only once the push or training under way
	# has finished (bash runs the trap after its foreground command), so no
	# version lands after the job is stopped
	trap 'exit 0' TERM
	# the slow path (training from the table) first, so that a loaded machine
	# still sees both paths within the run
	i=2
	while [ "$(date +%s)" -lt "$end" ]; do
		sleep "$EVERY"
		case $((i % 3)) in
		0) "$BIN" push --db "$CONN" --model-name m --activate --quiet "$T/A.safetensors" >/dev/null ;;
		1) "$BIN" push --db "$CONN" --model-name m --activate --quiet "$T/B.safetensors" >/dev/null ;;
		2) "$BIN" --db "$CONN" --query "$TRAIN_Q" "${FAST[@]}" --seed 3 --model-name m --activate >/dev/null ;;
		esac && echo "$((i % 3))" >>"$T/stored" || echo "retrain $i failed" >>"$T/bg.err"
		i=$((i + 1))
	done
) &
bg+=($!)
(
	while [ "$(date +%s)" -lt "$end" ]; do
		sleep 3
		psql_q -c "SELECT clad_prune_versions('m', 3)" >>"$T/pruned" 2>>"$T/bg.err" || true
	done
) &
bg+=($!)
(
	while [ "$(date +%s)" -lt "$end" ]; do
		sleep 2
		for pid in $(psql_q -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'pgbench'"); do
			awk '/^RssAnon/ {print $2}' "/proc/$pid/status" 2>/dev/null || true
		done >>"$T/rss"
	done
) &
bg+=($!)

pgbench_rc=0
"$PGBIN/pgbench" -n -c 16 -j 2 -T "$SECS" -f "$T/score.sql" -h "$SOCK" -p "$PORT" -U postgres postgres \
	>"$T/pgbench.out" 2>"$T/pgbench.err" || pgbench_rc=$?
stop_bg
bg=()

tx=$(grep -o 'number of transactions actually processed: [0-9]*' "$T/pgbench.out" | grep -o '[0-9]*$' || echo 0)
failed=$(grep -o 'number of failed transactions: [0-9]*' "$T/pgbench.out" | grep -o '[0-9]*$' || echo "?")
tps=$(grep -o 'tps = [0-9.]*' "$T/pgbench.out" | head -1 | grep -o '[0-9.]*$' || echo "?")
errs=$(grep -c 'ERROR\|error' "$T/pgbench.err" || true)
stored=$(wc -l <"$T/stored" 2>/dev/null || echo 0)
pruned=$(awk '{s += $1} END {print s + 0}' "$T/pruned" 2>/dev/null || echo 0)
maxrss=$(sort -n "$T/rss" 2>/dev/null | tail -1)
samples=$(wc -l <"$T/rss" 2>/dev/null || echo 0)
model_kb=$(($(stat -c %s "$T/A.safetensors") / 1024))
bound=$((4 * model_kb * 3 / 2 + 65536))
unknown=$(psql_q -c "SELECT count(*) FROM clad.model_versions v WHERE v.name = 'm'
	AND v.sha256 NOT IN (SELECT sha256 FROM files)")
echo "soak: $SECS s, pgbench 16 clients: $tx transactions ($tps tps), $failed failed, $errs client errors;" \
	"$stored versions stored and activated (A, B, C: $(grep -c '^0' "$T/stored" || true)," \
	"$(grep -c '^1' "$T/stored" || true), $(grep -c '^2' "$T/stored" || true)), $pruned pruned;" \
	"backend RssAnon max ${maxrss:-?} kB over $samples samples (bound $bound kB)"
[ "$tx" -gt 0 ] || bad "pgbench ran no transaction: $(tail -5 "$T/pgbench.err")"
[ "$pgbench_rc" = 0 ] || bad "pgbench exited with $pgbench_rc (a client aborted on an ERROR?)"
[ "$failed" = 0 ] && [ "$errs" = 0 ] || bad "failed statements: $failed; $(grep -m3 ERROR "$T/pgbench.err" || true)"
[ "$stored" -ge 3 ] && grep -q '^2' "$T/stored" && grep -q '^0' "$T/stored" ||
	bad "the retraining job stored $stored versions (both paths needed)"
[ ! -s "$T/bg.err" ] || bad "the retraining or pruning job failed: $(head -3 "$T/bg.err")"
[ "$pruned" -gt 0 ] || bad "nothing was pruned"
[ "$unknown" = 0 ] || bad "$unknown stored versions are none of A, B, C"
[ -n "$maxrss" ] && [ "$maxrss" -lt "$bound" ] || bad "backend memory ${maxrss:-unknown} kB, bound $bound kB"

# ---------------------------------------------------------------- a trainer killed mid-run
state() {
	psql_q -c "SELECT (SELECT active_version FROM clad.model_list WHERE name = 'm'),
		(SELECT string_agg(id || ':' || encode(sha256, 'hex'), ',' ORDER BY id) FROM clad.model_versions)"
}
# the retraining job's last clad-train may still be running: let it finish
for _ in $(seq 1 300); do
	[ "$(psql_q -c "SELECT count(*) FROM clad.training_runs WHERE status = 'running'")" = 0 ] && break
	sleep 0.2
done
for sig in KILL TERM; do
	before=$(state)
	# (a run that cannot end by itself: 200 epochs of ~60 digits took under 2 s here)
	"$BIN" --db "$CONN" --query "$TRAIN_Q" "${FAST[@]}" --ae-epochs 1000000 --seed 9 --model-name m --activate \
		>"$T/kill.out" 2>"$T/kill.err" &
	trainer=$!
	for _ in $(seq 1 100); do
		[ "$(psql_q -c "SELECT count(*) FROM clad.training_runs WHERE status = 'running'")" = 1 ] && break
		sleep 0.2
	done
	sleep 2
	kill -s "$sig" "$trainer" 2>/dev/null || { bad "clad-train ended before SIG$sig: $(cat "$T/kill.err")"; continue; }
	wait "$trainer" 2>/dev/null || true
	sleep 0.5
	run=$(psql_q -c "SELECT id FROM clad.training_runs ORDER BY id DESC LIMIT 1")
	[ "$(state)" = "$before" ] || bad "SIG$sig mid-run changed the models: $(state) (was $before)"
	[ "$(psql_q -c "SELECT clad_score('m', img) BETWEEN 0 AND 1 FROM images LIMIT 1")" = t ] ||
		bad "no scoring after SIG$sig"
	if [ "$sig" = KILL ]; then
		# the trainer could not say; the next run of the model marks it failed
		"$BIN" push --db "$CONN" --model-name other --quiet "$T/A.safetensors" >/dev/null
		# (the killed trainer's backend may still hold the model's lock for a moment)
		for _ in $(seq 1 50); do
			psql_q -c "SELECT clad_run_end(clad_run_begin('m', 'soak'), 'failed', error => 'soak probe')" \
				>/dev/null 2>&1 && break
			sleep 0.2
		done
	fi
	row=$(psql_q -c "SELECT status, coalesce(error, '') FROM clad.training_runs WHERE id = $run")
	case $sig:$row in
	KILL:failed\|abandoned*|TERM:failed\|interrupted\ by\ SIGTERM*) ;;
	*) bad "the run killed by SIG$sig: $row" ;;
	esac
	echo "clad-train killed by SIG$sig mid-run: models unchanged, scoring goes on, run $run: $row"
done

if grep -qiE "terminated by signal|was terminated|reinitializ" "$T/data/server.log"; then
	bad "the server log shows a crash: $(grep -iE "terminated by signal|was terminated" "$T/data/server.log" | head -3)"
fi
[ $fails = 0 ] || exit 1
echo "test_soak.sh: passed"

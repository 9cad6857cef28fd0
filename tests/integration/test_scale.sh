#!/usr/bin/env bash
# tests/integration/test_scale.sh: clad across PostgreSQL servers with postgres_fdw (make
# check-scale, part of make test).  On one machine, Unix sockets only: a
# coordinator and two shard clusters (tests/scale/shards.sh), a table of real
# digits hash-partitioned into foreign tables on the shards, one model version
# put on every server under one id by clad-train push --shard.  Checks:
#   - the same version id and hash on every server; push refuses a server that
#     holds other bytes under the id, naming it;
#   - what postgres_fdw (PostgreSQL 15) ships, from EXPLAIN VERBOSE: the clad
#     call inside the remote SQL of a WHERE filter (id and pinned forms), of a
#     top-k ORDER BY, and of a shard-side scored view; both shards scanned
#     asynchronously; a plain SELECT-list call is computed on the coordinator
#     (postgres_fdw does not ship target lists), and nothing is shipped when the
#     server does not list the extension;
#   - the answers equal a single server's: per-row scores, filtered ids, top-k;
#     a shipped filter loads no model on the coordinator;
#   - the pinned form refuses to score when a shard holds other bytes under the id.
set -euo pipefail
cd "$(dirname "$0")/../.."

BIN=${CLAD_TRAIN:-./trainer/clad-train}
PY=${PYTHON:-/usr/bin/python3}
MNIST=${MNIST:-data/mnist}
ROWS=${SCALE_TEST_ROWS:-600}

. tests/integration/checks.sh
. tests/integration/pgcluster.sh
. tests/scale/shards.sh
. tests/ext/fixtures.sh
pgc_need_mnist test_scale.sh "$MNIST"
pgc_need_clad test_scale.sh
shards_start 2

fixture_model "$T/model1.safetensors" mnist:3 4 1
fixture_model "$T/model2.safetensors" mnist:7 5 2
"$PY" scripts/digits_copy.py "$MNIST" "$T/digits.copy" 0 "$ROWS"
chmod -R a+rX "$T"

# --- the data: one local copy (the single server), one sharded -----------------------
shards_table images 2
shards_psql 0 >/dev/null <<SQL
CREATE TABLE digits (id bigint PRIMARY KEY, label int, split text, img bytea);
\copy digits (id, label, split, img) FROM '$T/digits.copy'
INSERT INTO images SELECT id, label, img FROM digits;
SQL
n1=$(shards_psql 1 -c "SELECT count(*) FROM images")
n2=$(shards_psql 2 -c "SELECT count(*) FROM images")
check_cmd "the $ROWS rows are split between the shards ($n1 + $n2)" \
	test "$((n1 + n2))" = "$ROWS" -a "$n1" -gt 0 -a "$n2" -gt 0

# --- one version on every server ------------------------------------------------------
V=$("$BIN" push --db "$(shards_conn 0)" --shard "$(shards_conn 1)" --shard "$(shards_conn 2)" \
	--model-name digits --activate --quiet "$T/model1.safetensors")
sha0=$(shards_psql 0 -c "SELECT encode(sha256, 'hex') FROM clad.model_versions WHERE id = $V")
for k in 1 2; do
	shak=$(shards_psql "$k" -c "SELECT encode(sha256, 'hex') FROM clad.model_versions WHERE id = $V")
	check_cmd "push --shard: shard $k holds version $V with the coordinator's hash" test "$shak" = "$sha0"
done
check_cmd "push again: the same bytes under the same id are kept, not duplicated" \
	test "$("$BIN" push --db "$(shards_conn 0)" --shard "$(shards_conn 1)" --shard "$(shards_conn 2)" \
		--version-id "$V" --model-name digits --quiet "$T/model1.safetensors")" = "$V"
PIN="$V, '\\x$sha0'::bytea"

# --- what postgres_fdw ships ----------------------------------------------------------
plan() { shards_psql 0 -c "SET jit = off" -c "EXPLAIN (VERBOSE, COSTS OFF) $1"; }
remote_sql() { plan "$1" | grep "Remote SQL:"; }
shipped_on_both() {	# the call is in the remote SQL of both partitions' scans
	local p n
	p=$(plan "$1")
	n=$(grep "Remote SQL:" <<<"$p" | grep -c "public\.clad_score(" || true)
	[ "$n" = 2 ] && [ "$(grep -c "Async Foreign Scan" <<<"$p" || true)" = 2 ] && return 0
	echo "$p" >&2
	return 1
}
FILTER="SELECT id FROM images WHERE clad_score($V, img) > 0.5"
check_cmd "a WHERE filter with the id form runs on both shards, asynchronously" shipped_on_both "$FILTER"
check_cmd "a WHERE filter with the pinned form runs on both shards" \
	shipped_on_both "SELECT id FROM images WHERE clad_score($PIN, img) > 0.5"
check_cmd "a top-k ORDER BY is sorted on the shards" grep -q "ORDER BY public.clad_score(" \
	<<<"$(remote_sql "SELECT id, clad_score($V, img) FROM images ORDER BY 2 DESC LIMIT 5")"
p=$(plan "SELECT id, clad_score($V, img) FROM images")
check_cmd "a SELECT-list call is not shipped by PostgreSQL 15's postgres_fdw (the images cross the wire)" \
	test "$(grep -c "Remote SQL: SELECT id, img FROM public.images" <<<"$p")" = 2
shards_scored_view images 2 "$V"
check_cmd "the scored view's score is computed on the shards (the coordinator reads id, label, score)" \
	test "$(remote_sql "SELECT id, score FROM images_scored" | grep -c "SELECT id, score FROM public.images_scored")" = 2
shards_psql 0 -c "ALTER SERVER shard1 OPTIONS (DROP extensions)" >/dev/null
check_cmd "without extensions 'clad' on the server, nothing of clad is shipped there" \
	test "$(remote_sql "$FILTER" | grep -c "clad_score")" = 1
shards_psql 0 -c "ALTER SERVER shard1 OPTIONS (ADD extensions 'clad')" >/dev/null

# --- the same answers as one server ---------------------------------------------------
single=$(shards_psql 0 -c "SELECT id, clad_score($V, img) FROM digits ORDER BY id" | md5sum)
viewed=$(shards_psql 0 -c "SELECT id, score FROM images_scored ORDER BY id" | md5sum)
local_tl=$(shards_psql 0 -c "SELECT id, clad_score($V, img) FROM images ORDER BY id" | md5sum)
check_cmd "per-row scores computed on the shards equal the single server's" test "$viewed" = "$single"
check_cmd "per-row scores through the foreign tables (computed on the coordinator) too" test "$local_tl" = "$single"
t=$(shards_psql 0 -c "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY clad_score($V, img)) FROM digits")
want=$(shards_psql 0 -c "SELECT id FROM digits WHERE clad_score($V, img) > $t ORDER BY id" | md5sum)
got=$(shards_psql 0 -c "SELECT id FROM images WHERE clad_score($V, img) > $t ORDER BY id" | md5sum)
got_pin=$(shards_psql 0 -c "SELECT id FROM images WHERE clad_score($PIN, img) > $t ORDER BY id" | md5sum)
check_cmd "the filtered ids (score > median $t) equal the single server's" test "$got" = "$want"
check_cmd "the pinned filter's too" test "$got_pin" = "$want"
want=$(shards_psql 0 -c "SELECT id, clad_score($V, img) FROM digits ORDER BY 2 DESC, id LIMIT 5")
got=$(shards_psql 0 -c "SELECT id, clad_score($V, img) FROM images ORDER BY 2 DESC, id LIMIT 5")
check_cmd "the top 5 anomalies equal the single server's" test "$got" = "$want"
loads=$(shards_psql 0 -c "SELECT count(*) FROM images WHERE clad_score($V, img) > $t" \
	-c "SELECT clad_cache_loads()" | tail -1)
check_cmd "a shipped filter loads no model on the coordinator ($loads loads)" test "$loads" = 0

# --- other bytes under the id ----------------------------------------------------------
W=$((V + 100))
"$BIN" push --db "$(shards_conn 0)" --shard "$(shards_conn 1)" --version-id "$W" --model-name digits \
	--quiet "$T/model1.safetensors" >/dev/null
shards_psql 2 -c "SELECT clad_load_model_version($W, 'digits', pg_read_binary_file('$T/model2.safetensors'))" >/dev/null
if "$BIN" push --db "$(shards_conn 0)" --shard "$(shards_conn 1)" --shard "$(shards_conn 2)" \
	--version-id "$W" --model-name digits --quiet "$T/model1.safetensors" >"$T/push.out" 2>"$T/push.err"; then
	bad "push with a shard holding other bytes under the id succeeded"
else
	sed 's/^/  push said: /' "$T/push.err"
	check_cmd "push refuses, naming the shard and both hashes" \
		grep -q -- "to --shard 2 of 2: .*version $W already exists on this server with other contents.*sha256 [0-9a-f]\{64\}; given: .*sha256 $sha0" "$T/push.err"
fi
if shards_psql 0 -c "SELECT count(*) FROM images WHERE clad_score($W, '\\x$sha0'::bytea, img) > 0" \
	>/dev/null 2>"$T/pinned.err"; then
	bad "the pinned form scored with a shard holding other bytes under the id"
else
	sed 's/^/  the coordinator said: /' "$T/pinned.err"
	check_cmd "the pinned form refuses to score: the shard holds other bytes under the id" \
		grep -q "clad model version $W on this server is not the pinned model" "$T/pinned.err"
fi
differ=$(shards_psql 2 -c "SELECT count(*) FROM images WHERE clad_score($W, img) <> clad_score($V, img)")
echo "(without the pin, the id form silently scores with shard 2's other model: $differ of its $n2 rows score differently)"

grep -h -E "PANIC|server process .* was terminated|terminated by signal" "$T"/data/server.log "$T"/shard*/data/server.log &&
	bad "a server log shows a crash"
if [ "$fails" -gt 0 ]; then
	echo "test_scale.sh: $fails check(s) failed" >&2
	exit 1
fi
echo "test_scale.sh: all checks passed"

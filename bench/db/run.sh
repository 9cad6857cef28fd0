#!/usr/bin/env bash
# bench/db/run.sh: the database part of `make bench`, run by `make bench-db`
# after the build, `make install` and `make data`.
#
# One run, on a throwaway PostgreSQL 15 cluster (tests/integration/pgcluster.sh), the same trained
# ResNet-18 (1x28x28, K = 10; bench/build/r18_odin.safetensors and, for the default
# recipe, r18_orientation.safetensors and r18_neighbours[_f32].safetensors; and a Deep
# SVDD model of the same digits, deepsvdd.safetensors; trained once and cached) in
# clad (clad_load_model) and in a PL/Python + PyTorch scorer that a user would assemble
# today (bench/db/plpython_scorer.sql, bench/db/torch_scorer.py: torchvision's resnet18
# with the file's weights, cached in GD, the same ODIN score and calibration), and the
# 2,000 real MNIST test digits as PNG bytea (t2000; t20000 = them 10 times):
#   - correctness first: clad and PyTorch agree on 50 images (or the bench fails);
#   - rows/s of SELECT sum(f(img)) FROM t2000 in one backend, after a warm-up: clad with
#     jit off and on, PL/Python + torch with 1 thread and with 2 (fewer rows);
#   - the batch form (array_agg chunks of 64) against torch at batch 64;
#   - 20,000 rows with max_parallel_workers_per_gather 0 and 2 (EXPLAIN ANALYZE shows
#     Workers Launched), one of them cold: restarted cluster, OS page cache dropped
#     when the kernel lets us;
#   - the first clad_score call of a new session (median of 5 sessions), and the
#     backend's memory before clad, with the model cached, and over a long soak.
# PyTorch runs at its best: OMP_WAIT_POLICY=PASSIVE and the OpenBLAS kernels that suit
# the CPU (OPENBLAS_CORETYPE=SKYLAKEX on AVX-512 unless set) in the server's
# environment, torch's and OpenBLAS's threads set per call.
# Prints a table (ratios: higher = clad faster) with the issue's targets, writes
# bench/build/db_results.json and bench/build/db_throughput.svg.
#
# Knobs: BENCH_DB_TORCH2_ROWS (rows for torch with 2 threads; 500),
# BENCH_DB_SOAK_ROWS (rows of the memory soak; default 100,000 when clad's measured
# rate fits them in BENCH_DB_SOAK_SECONDS (90 s), else as many 2,000-row passes as fit,
# at least 5), BENCH_DB_PAR_ROWS (the parallel runs' table size; 20000).
set -euo pipefail
cd "$(dirname "$0")/../.."

PY=${PYTHON:-/usr/bin/python3}
SYS_PY=/usr/bin/python3		# the interpreter PL/Python embeds (Debian's python3)
out=bench/build
mkdir -p "$out"
TORCH2_ROWS=${BENCH_DB_TORCH2_ROWS:-500}
SOAK_ROWS=${BENCH_DB_SOAK_ROWS:-}
SOAK_SECONDS=${BENCH_DB_SOAK_SECONDS:-90}
PAR_ROWS=${BENCH_DB_PAR_ROWS:-20000}
t_start=$(date +%s)

say() { echo "bench-db: $*"; }
die() { echo "bench-db: FAILED: $*" >&2; exit 1; }

# --- 1. what the PL/Python side needs --------------------------------------------------
PGLIB=/usr/lib/postgresql/15/lib
need=()
[ -e "$PGLIB/plpython3.so" ] || need+=(postgresql-plpython3-15)
"$SYS_PY" -c 'import torch, torchvision, PIL, numpy' 2>/dev/null ||
	need+=(python3-torch python3-torchvision python3-pil python3-numpy)
if [ ${#need[@]} -gt 0 ]; then
	[ "$(id -u)" = 0 ] || die "missing ${need[*]} (run as root to install them with apt-get)"
	say "installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -q "${need[@]}" >/dev/null ||
		{ apt-get update -q >/dev/null && apt-get install -y -q "${need[@]}" >/dev/null; } ||
		die "apt-get install ${need[*]}"
fi
[ -e "$PGLIB/plpython3.so" ] || die "$PGLIB/plpython3.so missing after installing postgresql-plpython3-15"

# --- 2. the model ------------------------------------------------------------------------
model=$(./bench/r18_model.sh)
omodel=$(./bench/r18_model.sh orientation)
nmodel=$(./bench/r18_model.sh neighbours)
fmodel=$(./bench/r18_model.sh neighbours_f32)
smodel=$(./bench/r18_model.sh deepsvdd)
vmodel=$(./bench/r18_model.sh ocsvm)
emodel=$(./bench/r18_model.sh ensemble)
"$SYS_PY" bench/db/report.py check-model "$model" || die "$model is not a resnet18 1x28x28 K=10 clad model"

# --- 3. the cluster ----------------------------------------------------------------------
# The server's environment: PyTorch's best settings.  runuser (as_pg) keeps the caller's
# environment, but the server is (re)started through `env` below all the same, and
# /proc/PID/environ of the postmaster is checked.
server_env=(OMP_WAIT_POLICY=PASSIVE)
if [ -n "${OPENBLAS_CORETYPE:-}" ]; then
	server_env+=(OPENBLAS_CORETYPE="$OPENBLAS_CORETYPE")
elif grep -qw avx512f /proc/cpuinfo; then
	server_env+=(OPENBLAS_CORETYPE=SKYLAKEX)
fi
export "${server_env[@]}"

. tests/integration/pgcluster.sh
pgc_start clad_bench_db "max_worker_processes = 8" "max_parallel_workers = 4" "shared_buffers = 256MB"
R=$T/results.txt
: >"$R"
rec() { echo "$*" >>"$R"; }

postmaster_pid() { head -1 "$T/data/postmaster.pid"; }
# CPU ticks the cluster has used: the postmaster, its children that exited (reaped:
# cutime/cstime) and those alive; kept across restarts in cluster_ticks_done.
cluster_ticks_done=0
cluster_ticks() {
	local pm
	pm=$(postmaster_pid)
	{
		awk '{print $14 + $15 + $16 + $17}' "/proc/$pm/stat"
		for c in $(cat "/proc/$pm/task/"*/children 2>/dev/null); do
			awk '{print $14 + $15}' "/proc/$c/stat" 2>/dev/null || true
		done
	} | awk -v d="$cluster_ticks_done" '{s += $1} END {print s + d}'
}
db_restart() {
	cluster_ticks_done=$(cluster_ticks)
	as_pg "$PGBIN/pg_ctl" -D "$T/data" -m fast -w stop >/dev/null
	pgc_started=0
	if [ "${1:-}" = drop-caches ]; then
		local c0
		c0=$(awk '/^Cached:/{print $2}' /proc/meminfo)
		sync
		if (echo 3 >/proc/sys/vm/drop_caches) 2>/dev/null; then
			rec cold_os_cache "dropped (page cache $((c0 / 1024)) MB -> $(awk '/^Cached:/{print int($2 / 1024)}' /proc/meminfo) MB)"
		else
			rec cold_os_cache "not dropped"
		fi
	fi
	as_pg env "${server_env[@]}" "$PGBIN/pg_ctl" -D "$T/data" -l "$T/data/server.log" -w -t 60 start >/dev/null ||
		{ cat "$T/data/server.log" >&2; die "restarting the cluster"; }
	pgc_started=1
}
db_restart
for v in "${server_env[@]}"; do
	tr '\0' '\n' <"/proc/$(postmaster_pid)/environ" | grep -qx "$v" || die "the server's environment lacks $v"
done
say "cluster on $SOCK (port $PORT), server environment: ${server_env[*]}"

cp "$model" "$T/r18.safetensors"
cp "$omodel" "$T/r18_orientation.safetensors"
cp "$nmodel" "$T/r18_neighbours.safetensors"
cp "$fmodel" "$T/r18_neighbours_f32.safetensors"
cp "$smodel" "$T/deepsvdd.safetensors"
cp "$vmodel" "$T/ocsvm.safetensors"
cp "$emodel" "$T/ensemble.safetensors"
cp bench/db/torch_scorer.py "$T/torch_scorer.py"
chmod 644 "$T/r18.safetensors" "$T/r18_orientation.safetensors" "$T/r18_neighbours.safetensors" \
	"$T/r18_neighbours_f32.safetensors" "$T/deepsvdd.safetensors" "$T/ocsvm.safetensors" \
	"$T/ensemble.safetensors" "$T/torch_scorer.py"
"$PY" scripts/digits_copy.py data/mnist "$T/digits.copy" 0 2000
psql_q >/dev/null <<SQL
CREATE EXTENSION clad;
CREATE EXTENSION plpython3u;
SELECT clad_load_model('m', pg_read_binary_file('$T/r18.safetensors'));
SELECT clad_load_model('o', pg_read_binary_file('$T/r18_orientation.safetensors'));
SELECT clad_load_model('n', pg_read_binary_file('$T/r18_neighbours.safetensors'));
SELECT clad_load_model('nf', pg_read_binary_file('$T/r18_neighbours_f32.safetensors'));
SELECT clad_load_model('svdd', pg_read_binary_file('$T/deepsvdd.safetensors'));
SELECT clad_load_model('svm', pg_read_binary_file('$T/ocsvm.safetensors'));
SELECT clad_load_model('ens', pg_read_binary_file('$T/ensemble.safetensors'));
ALTER DATABASE postgres SET clad.model = 'm';
ALTER DATABASE postgres SET bench.torch_dir = '$T';
ALTER DATABASE postgres SET bench.torch_model = '$T/r18.safetensors';
CREATE TABLE t2000 (id int PRIMARY KEY, label int NOT NULL, split text NOT NULL, img bytea NOT NULL);
\copy t2000 (id, label, split, img) FROM '$T/digits.copy'
CREATE TABLE t20000 AS
	SELECT k * 2000 + id AS id, label, img FROM t2000, generate_series(0, $(( PAR_ROWS / 2000 - 1 ))) k ORDER BY k, id;
-- about 6 MB: under min_parallel_table_scan_size (8 MB) the planner plans no workers,
-- and under 24 MB at most one; an operator says how many this table deserves
ALTER TABLE t20000 SET (parallel_workers = 2);
VACUUM ANALYZE t2000;
VACUUM ANALYZE t20000;
SQL
psql_q -f bench/db/plpython_scorer.sql >/dev/null
n2000=$(psql_q -c "SELECT count(*) FROM t2000")
n20000=$(psql_q -c "SELECT count(*) FROM t20000")
[ "$n2000" = 2000 ] || die "t2000 holds $n2000 rows, not 2000"
rec rows_t2000 "$n2000"
rec rows_t20000 "$n20000"
rec t20000_size "$(psql_q -c "SELECT pg_size_pretty(pg_table_size('t20000'))")"
rec model_file_bytes "$(stat -c %s "$model")"
rec cpu "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
rec ncpu "$(nproc)"
rec server_env "${server_env[*]}"
rec clad_blas "$(psql_q -c "SELECT clad_blas()")"
say "loaded $n2000 digits (t2000) and $n20000 rows (t20000, $(psql_q -c "SELECT pg_size_pretty(pg_table_size('t20000'))"))"

# CPU accounting: busy ticks of the machine, minus the cluster's and this script's
# children's (psql, python): what other processes took while the bench ran.
busy_ticks() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
own_ticks() { awk '{print $16 + $17}' "/proc/$$/stat"; }
busy0=$(busy_ticks) own0=$(own_ticks) cl0=$(cluster_ticks) w0=$(date +%s.%N)

# --- 4. correctness: clad and PyTorch on the same 50 images -----------------------------
say "correctness: clad_confidence/clad_score against torch_confidence/torch_score on 50 images"
psql_q -F ' ' -c "SELECT id, clad_confidence(img), clad_score(img), torch_confidence(img, 1), torch_score(img, 1)
	FROM t2000 WHERE id <= 50 ORDER BY id" >"$T/agree.txt"
"$SYS_PY" bench/db/report.py compare "$model" "$T/agree.txt" >>"$R" || {
	cat "$R" >&2
	die "clad and PL/Python+torch disagree (see above)"
}
grep '^agree_' "$R" | sed 's/^/  /'

# --- 5. measurements ---------------------------------------------------------------------
# timed NAME ROWS PRELUDE QUERY: a new session runs PRELUDE (settings, warm-up; output
# discarded), then QUERY under psql's \timing; records "NAME ms rows value".
timed() {
	local name=$1 rows=$2 pre=$3 query=$4 o ms val
	o=$(printf '%s\n' '\o /dev/null' "$pre" '\o' '\timing on' "$query;" | psql_q)
	ms=$(awk '/^Time: /{t = $2} END {print t}' <<<"$o")
	val=$(grep -v '^Time: ' <<<"$o" | tail -1)
	[ -n "$ms" ] || die "$name: no timing in: $o"
	rec "$name" "$ms" "$rows" "$val"
	say "$(printf '%-28s %7d rows %10.1f ms %9.1f rows/s  (sum %s)' "$name" "$rows" "$ms" \
		"$(awk -v r="$rows" -v m="$ms" 'BEGIN {print r / (m / 1000)}')" "$val")"
}
rss_sql="SELECT (regexp_match(s, 'VmRSS:\s+(\d+)'))[1] || ' ' || (regexp_match(s, 'RssAnon:\s+(\d+)'))[1]
	|| ' ' || (regexp_match(s, 'RssShmem:\s+(\d+)'))[1]
	|| ' ' || coalesce((regexp_match(pg_read_file('/proc/self/smaps_rollup'), 'AnonHugePages:\s+(\d+)'))[1], '0')
	|| ' ' || (regexp_match(s, 'RssFile:\s+(\d+)'))[1]
	FROM pg_read_file('/proc/self/status') s"
warm_clad="SELECT sum(clad_score(img)) FROM t2000 WHERE id <= 100"

say "one backend, 2,000 rows, after a 100-row warm-up in the same session"
timed clad_jitoff 2000 "SET jit = off; $warm_clad;" "SELECT sum(clad_score(img)) FROM t2000"
timed clad_jiton 2000 "SET jit = on; $warm_clad;" "SELECT sum(clad_score(img)) FROM t2000"
# the ODIN model with the small-map convolutions' weights in bfloat16 (clad.precision)
timed clad_bf16 2000 "SET jit = off; SET clad.precision = bf16; $warm_clad;" "SELECT sum(clad_score(img)) FROM t2000"
# the default recipe's model (orientation confidence: four turns of each image in one
# pass) against the ODIN model above, the same way
timed clad_orient 2000 "SET jit = off; SELECT sum(clad_score('o', img)) FROM t2000 WHERE id <= 100;" \
	"SELECT sum(clad_score('o', img)) FROM t2000"
# the default recipe's model: the same classifier, the neighbour confidence (a bfloat16
# bank of 2,048 images' features scanned per row), against the orientation model; and
# the same with a bank of floats (twice the bytes)
timed clad_neigh 2000 "SET jit = off; SELECT sum(clad_score('n', img)) FROM t2000 WHERE id <= 100;" \
	"SELECT sum(clad_score('n', img)) FROM t2000"
timed clad_neigh_f32 2000 "SET jit = off; SELECT sum(clad_score('nf', img)) FROM t2000 WHERE id <= 100;" \
	"SELECT sum(clad_score('nf', img)) FROM t2000"
# a Deep SVDD model of the same digits (its encoder alone) against the CLAD models above
timed clad_svdd 2000 "SET jit = off; SELECT sum(clad_score('svdd', img)) FROM t2000 WHERE id <= 100;" \
	"SELECT sum(clad_score('svdd', img)) FROM t2000"
# and a one-class SVM of the same digits (a matrix product with its support vectors)
timed clad_svm 2000 "SET jit = off; SELECT sum(clad_score('svm', img)) FROM t2000 WHERE id <= 100;" \
	"SELECT sum(clad_score('svm', img)) FROM t2000"
# the ensemble of the three (the neighbour model's passes, then the encoder's and the SVM's)
timed clad_ens 2000 "SET jit = off; SELECT sum(clad_score('ens', img)) FROM t2000 WHERE id <= 100;" \
	"SELECT sum(clad_score('ens', img)) FROM t2000"
# The same models interleaved: this machine's throughput drifts by a third within a run
# (the soak's passes of one query range that far), so rows measured minutes apart make
# poor ratios.  ROUNDS rounds, each scoring the same 400 rows with every model in turn
# (each in a new session after a 50-row warm-up): a ratio per round from neighbouring
# measurements, the median of the rounds reported.  mb and nb: the ODIN and the neighbour
# model scored with clad.precision = bf16.
for round in 1 2 3 4 5; do
	for mk in m o n nf mb nb; do
		name=$mk prec=fp32
		case $mk in mb | nb) name=${mk%b} prec=bf16 ;; esac
		o=$(printf '%s\n' '\o /dev/null' "SET jit = off; SET clad.precision = $prec;
			SELECT sum(clad_score('$name', img)) FROM t2000 WHERE id <= 50;" '\o' \
			'\timing on' "SELECT sum(clad_score('$name', img)) FROM t2000 WHERE id > 1000 AND id <= 1400;" | psql_q)
		rec "ilv_$mk" "$(awk '/^Time: /{t = $2} END {print t}' <<<"$o") 400 $round"
	done
done
say "interleaved: 5 rounds of 400 rows per model (ODIN, orientation, neighbours, float bank; ODIN and neighbours in bf16) recorded"
# did the planner JIT-compile it?  (a function's COST counts in cpu_operator_cost units,
# 0.0025: the plan's cost decides, against jit_above_cost; recorded, not assumed)
jit_plan=$(psql_q -c "SET jit = on" -c "EXPLAIN SELECT sum(clad_score(img)) FROM t2000")
rec jit_plan_cost "$(sed -n 's/.*cost=[0-9.]*\.\.\([0-9.]*\) .*/\1/p' <<<"$jit_plan" | head -1)"
rec jit_planned "$(grep -q 'JIT:' <<<"$jit_plan" && echo yes || echo no)"
rec jit_above_cost "$(psql_q -c 'SHOW jit_above_cost')"
timed torch_1t 2000 "SET jit = off; SELECT 'torch_rss_before ' || ($rss_sql) \\g $T/torch_rss0.txt
	SELECT sum(torch_score(img, 1)) FROM t2000 WHERE id <= 20;
	SELECT 'torch_describe_1t ' || torch_describe(1) \\g $T/torch_describe.txt
	SELECT 'torch_rss_cached ' || ($rss_sql) \\g $T/torch_rss.txt" \
	"SELECT sum(torch_score(img, 1)) FROM t2000"
cat "$T/torch_describe.txt" "$T/torch_rss0.txt" "$T/torch_rss.txt" | grep -v '^$' >>"$R"
timed torch_2t "$TORCH2_ROWS" "SET jit = off; SELECT sum(torch_score(img, 2)) FROM t2000 WHERE id <= 20;
	SELECT 'torch_describe_2t ' || torch_describe(2) \\g $T/torch_describe2.txt" \
	"SELECT sum(torch_score(img, 2)) FROM t2000 WHERE id <= $TORCH2_ROWS"
grep -v '^$' "$T/torch_describe2.txt" >>"$R"

say "batch form: array_agg chunks of 64, 2,000 rows, after a 128-row warm-up"
batch_q() { # FUNCTION-CALL ROW-FILTER
	echo "SELECT sum(s) FROM (SELECT unnest($1) s FROM (SELECT img, row_number() over () / 64 AS chunk
		FROM t2000 $2) q GROUP BY chunk) r"
}
timed clad_batch 2000 "SET jit = off; $(batch_q "clad_score('m', array_agg(img))" "WHERE id <= 128");" \
	"$(batch_q "clad_score('m', array_agg(img))" "")"
timed torch_batch 2000 "SET jit = off; $(batch_q "torch_score_batch(array_agg(img), 1)" "WHERE id <= 128");" \
	"$(batch_q "torch_score_batch(array_agg(img), 1)" "")"
timed clad_batch_bf16 2000 "SET jit = off; SET clad.precision = bf16; $(batch_q "clad_score('m', array_agg(img))" "WHERE id <= 128");" \
	"$(batch_q "clad_score('m', array_agg(img))" "")"
timed clad_neigh_batch 2000 "SET jit = off; $(batch_q "clad_score('n', array_agg(img))" "WHERE id <= 128");" \
	"$(batch_q "clad_score('n', array_agg(img))" "")"

# Parallel workers: the first run cold (the cluster restarted, the OS page cache dropped
# when allowed), then warm with 2 and with 0 workers.  Each run is an EXPLAIN ANALYZE
# (TIMING OFF: no per-node clocks), timed by psql; "Workers Launched" is read from it.
par() { # NAME WORKERS PRELUDE
	local o
	o=$(printf '%s\n' "SET jit = off; SET max_parallel_workers_per_gather = $2;" '\o /dev/null' "$3" '\o' '\timing on' \
		"EXPLAIN (ANALYZE, TIMING OFF) SELECT sum(clad_score(img)) FROM t20000;" | psql_q)
	echo "$o" >"$T/$1.plan"
	local ms planned launched
	ms=$(awk '/^Time: /{t = $2} END {print t}' <<<"$o")
	planned=$(sed -n 's/.*Workers Planned: \([0-9]*\).*/\1/p' <<<"$o" | head -1)
	launched=$(sed -n 's/.*Workers Launched: \([0-9]*\).*/\1/p' <<<"$o" | head -1)
	rec "$1" "$ms" "$n20000" "-"
	rec "$1_workers" "${planned:-0}" "${launched:-0}"
	say "$(printf '%-28s %7d rows %10.1f ms %9.1f rows/s  (workers planned %s, launched %s)' "$1" "$n20000" "$ms" \
		"$(awk -v r="$n20000" -v m="$ms" 'BEGIN {print r / (m / 1000)}')" "${planned:-0}" "${launched:-0}")"
}
say "$n20000 rows, max_parallel_workers_per_gather 2 and 0 (leader participates)"
db_restart drop-caches
say "cluster restarted, OS page cache: $(sed -n 's/^cold_os_cache //p' "$R")"
par par2_cold 2 ""
par par2 2 "SELECT sum(clad_score(img)) FROM t20000 WHERE id <= 200;"
par par0 0 "SELECT sum(clad_score(img)) FROM t20000 WHERE id <= 100;"
for r in par2_cold par2; do
	grep -q "^${r}_workers 2 2$" "$R" || say "WARNING: $r did not launch 2 workers ($(grep "^${r}_workers" "$R"))"
done

say "first clad_score call of a new session (model load), 5 sessions mapping the prepared file, 3 without"
for i in 1 2 3 4 5 6 7 8; do
	# sessions 6-8: clad.prepared_files off, each backend reads, parses and packs the model itself
	off=""
	[ "$i" -gt 5 ] && off="SET clad.prepared_files = off;"

	# the session's first query reads the table (catalogs, buffers); then the first and a
	# second clad_score call (another image) under \timing; then clad_cache()'s phases
	o=$(printf '%s\n' '\o /dev/null' "$off SELECT length(img) FROM t2000 WHERE id = 1;" '\o' '\timing on' \
		"SELECT clad_score(img) FROM t2000 WHERE id = 1;" "SELECT clad_score(img) FROM t2000 WHERE id = 2;" \
		'\timing off' "SELECT 'phases ' || fetch_ms || ' ' || parse_ms || ' ' || prepare_ms || ' ' || mapped FROM clad_cache();" |
		psql_q 2>&1) || true	# clad_cache()'s columns are informative only
	[ "$(grep -c '^Time: ' <<<"$o")" = 2 ] || die "first call, session $i: $o"
	k=first_call
	[ -n "$off" ] && k=first_call_unmapped
	rec "$k" "$(awk '/^Time: /{printf "%s ", $2}' <<<"$o")"
	sed -n "s/^phases /${k}_phases /p" <<<"$o" >>"$R"
done
m_sha=$(psql_q -c "SELECT encode(sha256, 'hex') FROM clad.model_versions WHERE name = 'm'")
rec prepared_file_bytes "$(stat -c %s "$T/data/pg_clad/$m_sha.prep" 2>/dev/null)"
rec prepared_file_bytes_bf16 "$(stat -c %s "$T/data/pg_clad/$m_sha.bf16.prep" 2>/dev/null)"
say "first clad_score call of the neighbour model ('n', its prepared file mapped), 3 sessions, with the backend's memory"
for _ in 1 2 3; do
	o=$(printf '%s\n' '\o /dev/null' "SELECT length(img) FROM t2000 WHERE id = 1;" '\o' \
		"SELECT 'neigh_rss_before ' || ($rss_sql);" '\timing on' \
		"SELECT clad_score('n', img) FROM t2000 WHERE id = 1;" "SELECT clad_score('n', img) FROM t2000 WHERE id = 2;" \
		'\timing off' "SELECT 'neigh_rss_cached ' || ($rss_sql);" | psql_q)
	[ "$(grep -c '^Time: ' <<<"$o")" = 2 ] || die "first call of the neighbour model: $o"
	rec first_call_neigh "$(awk '/^Time: /{printf "%s ", $2}' <<<"$o")"
	grep '^neigh_rss_' <<<"$o" >>"$R"
done
say "first PL/Python torch_score call of a new session (import torch, build the model), 3 sessions"
for _ in 1 2 3; do
	o=$(printf '%s\n' '\o /dev/null' "SELECT length(img) FROM t2000 WHERE id = 1;" '\o' '\timing on' \
		"SELECT torch_score(img, 1) FROM t2000 WHERE id = 1;" "SELECT torch_score(img, 1) FROM t2000 WHERE id = 2;" | psql_q)
	rec torch_first_call "$(awk '/^Time: /{printf "%s ", $2}' <<<"$o")"
done

# Memory: one session, jit off: before any clad call, with the model cached (one call),
# after each 2,000-row pass of the soak.
rate=$(awk '$1 == "clad_jitoff" {print $3 / ($2 / 1000)}' "$R")
if [ -n "$SOAK_ROWS" ]; then
	passes=$(( (SOAK_ROWS + 1999) / 2000 ))
else
	passes=$(awk -v r="$rate" -v s="$SOAK_SECONDS" 'BEGIN {p = int(s * r / 2000); print (p > 50 ? 50 : (p < 5 ? 5 : p))}')
fi
say "memory soak: $passes passes of 2,000 rows ($(( passes * 2000 )) rows) in one session, jit off"
[ "$passes" -ge 50 ] || say "  (fewer than 100,000 rows: clad scores ${rate%.*} rows/s here, 100,000 would take" \
	"$(awk -v r="$rate" 'BEGIN {printf "%.0f", 100000 / r}') s; BENCH_DB_SOAK_ROWS=100000 forces them)"
{
	echo "SET jit = off;"
	echo "SELECT sum(length(img)) FROM t2000;"
	echo "SELECT 'rss_before ' || ($rss_sql);"
	echo "SELECT 'one ' || clad_score(img) FROM t2000 WHERE id = 1;"
	echo "SELECT 'rss_cached ' || ($rss_sql);"
	printf '%s\n' '\timing on'
	for p in $(seq 1 "$passes"); do
		echo "SELECT 'pass $p ' || sum(clad_score(img)) FROM t2000;"
		echo "SELECT 'rss_pass $p ' || ($rss_sql);"
	done
} | psql_q >"$T/soak.txt"
grep '^rss_' "$T/soak.txt" >>"$R"
awk '/^Time: /{n++; if (n % 2 == 1) printf "soak_pass_ms %s\n", $2}' "$T/soak.txt" >>"$R"

other=$(awk -v b="$(( $(busy_ticks) - busy0 ))" -v o="$(( $(own_ticks) - own0 + $(cluster_ticks) - cl0 ))" \
	-v hz="$(getconf CLK_TCK)" -v t0="$w0" -v t1="$(date +%s.%N)" \
	'BEGIN { x = (b - o) / hz / (t1 - t0); printf "%.2f", (x < 0 ? 0 : x) }')
rec other_cores "$other"
rec loadavg "$(cut -d' ' -f1-3 /proc/loadavg)"
rec torch2_rows "$TORCH2_ROWS"
rec wall_s "$(( $(date +%s) - t_start ))"
pgc_stop

# --- 6. the report -----------------------------------------------------------------------
cp "$R" "$out/db_results.txt"
cp "$R" "$out/db_results.txt"	# the raw records, kept should the report fail
"$SYS_PY" bench/db/report.py report "$model" "$R" "$out/db_results.json" "$out/db_throughput.svg"

#!/usr/bin/env bash
# bench/db/profile.sh: where a scoring backend's time goes, per row (`make profile-db`).
#
# On a throwaway cluster (tests/integration/pgcluster.sh) with the bench's ODIN model
# (bench/r18_model.sh) and the 2,000 MNIST test digits as PNG bytea, one backend
# scores them row by row (SELECT sum(clad_score(img)) FROM t2000, after a warm-up) in
# each precision, then through the batch form (array_agg chunks of 64) in fp32, while
# `perf record` samples that backend alone.  The samples are
# grouped by what they were doing (bench/db/profile_report.py): the network's layers
# (clad's own kernels, OpenBLAS, the other layers), ODIN's other steps, decoding the
# PNG, resizing and normalising, calibration, the executor and the rest of PostgreSQL,
# the C library and the kernel.  Prints the split and writes
# bench/build/profile_<fp32|bf16|fp32-batch>.txt (perf's own report).
#
# Needs perf (linux-perf: installed when missing, as root) and permission to sample a process (root, or
# kernel.perf_event_paranoid <= 2 for the backend's own user space).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-/usr/bin/python3}
out=bench/build
mkdir -p "$out"
say() { echo "profile-db: $*"; }
die() { echo "profile-db: FAILED: $*" >&2; exit 1; }
if ! command -v perf >/dev/null; then
	[ "$(id -u)" = 0 ] || die "perf is missing (run as root to install linux-perf with apt-get)"
	say "installing linux-perf"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q linux-perf >/dev/null ||
		{ apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q linux-perf >/dev/null; } ||
		die "apt-get install linux-perf"
fi

model=$(./bench/r18_model.sh odin)
. tests/integration/pgcluster.sh
pgc_start clad_profile_db
cp "$model" "$T/r18.safetensors"
chmod 644 "$T/r18.safetensors"
"$PY" scripts/digits_copy.py data/mnist "$T/digits.copy" 0 2000
psql_q >/dev/null <<SQL
CREATE EXTENSION clad;
SELECT clad_load_model('m', pg_read_binary_file('$T/r18.safetensors'));
CREATE TABLE t2000 (id int PRIMARY KEY, label int NOT NULL, split text NOT NULL, img bytea NOT NULL);
\copy t2000 (id, label, split, img) FROM '$T/digits.copy'
VACUUM ANALYZE t2000;
SQL

# the batch form's query: array_agg chunks of 64 rows, as make bench-db times it
batch_sum() { # ROW-FILTER
	echo "SELECT sum(s) FROM (SELECT unnest(clad_score('m', array_agg(img))) s FROM
		(SELECT img, row_number() over () / 64 AS chunk FROM t2000 $1) q GROUP BY chunk) r"
}
# row by row in each precision, then the batch form in fp32
for run in fp32 bf16 fp32-batch; do
	prec=${run%-batch}
	if [ "$run" = "$prec" ]; then
		warm="SELECT sum(clad_score('m', img)) FROM t2000 WHERE id <= 100"
		query="SELECT sum(clad_score('m', img)) FROM t2000"
	else
		warm=$(batch_sum "WHERE id <= 128")
		query=$(batch_sum "")
	fi
	# one session: a warm-up, a pause while perf attaches, then the rows it samples
	PGAPPNAME=clad_profile psql_q -c "SET jit = off" -c "SET clad.precision = $prec" \
		-c "$warm" -c "SELECT pg_sleep(1.5)" -c '\timing on' -c "$query" -c "$query" \
		>"$T/session_$run.txt" &
	session=$!
	pid=$(pgc_backend_pid "application_name = 'clad_profile'")
	[ -n "$pid" ] || die "no scoring backend to profile"
	sleep 0.8
	perf record -q -F 2000 -g -p "$pid" -o "$T/perf_$run.data" -- sleep 6 2>/dev/null ||
		die "perf record failed (kernel.perf_event_paranoid is $(cat /proc/sys/kernel/perf_event_paranoid))"
	wait "$session" || die "the scoring session failed"
	perf report -i "$T/perf_$run.data" --no-children -g none --sort dso,symbol --stdio 2>/dev/null \
		>"$out/profile_$run.txt"
	say "$run: perf's report in $out/profile_$run.txt"
	# the slower of the two sampled passes: perf's sampling costs a little
	ms=$(awk '/^Time: /{if ($2 > t) t = $2} END {print t}' "$T/session_$run.txt")
	"$PY" bench/db/profile_report.py "$run" "$out/profile_$run.txt" "$ms" 2000
done

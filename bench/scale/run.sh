#!/usr/bin/env bash
# bench/scale/run.sh: `make scale`: clad on one server against the same
# rows sharded over two and three servers with postgres_fdw, in one run, on this
# machine, then everything torn down (the clusters live in a mktemp directory
# removed on exit).
#
# The trained ResNet-18 of the database benchmark (bench/r18_model.sh) is put on
# the coordinator and three shards under one id (clad-train push --shard); the
# 2,000 real MNIST test digits, SCALE_COPIES (2) times, are stored once in a
# local table of the coordinator (the single server) and hash-partitioned into
# foreign tables on shards 1-2 (images2) and 1-3 (images3), async_capable.
# Measured after a warm-up that loads the model in every backend involved:
#   - a filter that scores every row, SELECT count(*) FROM T WHERE
#     clad_score(id, img) > 0.95: on the single server with 0 and 2
#     parallel workers, and on 2 and 3 shards (the call shipped to each shard,
#     EXPLAIN checked);
#   - per-row scores of every row, SELECT sum(score) over a scored view on each
#     shard (the score computed where the rows are).
# Prints rows/s and ratios to the single server (higher = faster).  Every server
# runs on the same 2 cores here, so the gain is bounded by the cores, not the
# servers: two shards can at best double one backend; a third adds nothing.
set -euo pipefail
cd "$(dirname "$0")/../.."

COPIES=${SCALE_COPIES:-2}
BIN=./trainer/clad-train
say() { echo "scale: $*"; }
die() { echo "scale: FAILED: $*" >&2; exit 1; }

model=$(./bench/r18_model.sh)
. tests/integration/pgcluster.sh
. tests/scale/shards.sh
conf=("max_worker_processes = 8" "max_parallel_workers = 4" "shared_buffers = 256MB")
shards_start 3 "${conf[@]}"
say "coordinator and 3 shards on $T (Unix sockets, port $PORT)"

cp "$model" "$T/model.safetensors"
/usr/bin/python3 scripts/digits_copy.py data/mnist "$T/digits.copy" 0 2000
chmod -R a+rX "$T"
V=$("$BIN" push --db "$(shards_conn 0)" --shard "$(shards_conn 1)" --shard "$(shards_conn 2)" \
	--shard "$(shards_conn 3)" --model-name digits --activate --quiet "$T/model.safetensors")
shards_table images2 2
shards_table images3 3
shards_psql 0 >/dev/null <<SQL
CREATE TABLE digits (id bigint PRIMARY KEY, label int, split text, img bytea);
\copy digits (id, label, split, img) FROM '$T/digits.copy'
CREATE TABLE local_images AS
	SELECT k * 2000 + id AS id, label, img FROM digits, generate_series(0, $((COPIES - 1))) k ORDER BY 1;
ALTER TABLE local_images SET (parallel_workers = 2);
INSERT INTO images2 SELECT * FROM local_images;
INSERT INTO images3 SELECT * FROM local_images;
VACUUM ANALYZE local_images;
SQL
for k in 1 2; do shards_psql "$k" -c "VACUUM ANALYZE images2" >/dev/null; done
for k in 1 2 3; do shards_psql "$k" -c "VACUUM ANALYZE images3" >/dev/null; done
shards_scored_view images2 2 "$V"
shards_scored_view images3 3 "$V"
rows=$(shards_psql 0 -c "SELECT count(*) FROM local_images")
thr=0.95	# a calibrated score above it: fewer than 5% of held-out normal digits were as unusual
say "model version $V on all 4 servers; $rows rows"

# the shipped call, checked before anything is timed
for t in images2 images3; do
	n=$(shards_psql 0 -c "EXPLAIN VERBOSE SELECT count(*) FROM $t WHERE clad_score($V, img) > 0.5" |
		grep "Remote SQL:" | grep -c "public.clad_score(" || true)
	[ "$n" = "${t#images}" ] || die "$t: the clad_score call is not in the remote SQL of every shard"
done

# time_query LABEL SETUP QUERY: seconds of QUERY in one session, after SETUP and a
# warm-up (the same query on 40 rows: the model loaded in this backend and on
# every shard the session reaches)
R=$T/results.txt
: >"$R"
time_query() {
	local label=$1 setup=$2 q=$3 warm=$4 s
	s=$(shards_psql 0 -c "SET jit = off" -c "$setup" -c "$warm" -c '\timing on' -c "$q" 2>&1 |
		sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -1)
	[ -n "$s" ] || die "$label: no timing"
	echo "$label $s" >>"$R"
	say "$(awk -v l="$label" -v n="$rows" -v s="$s" 'BEGIN {printf "%-12s %8.1f rows/s", l, n / (s / 1000)}')"
}
filter() { echo "SELECT count(*) FROM $1 WHERE clad_score($V, img) > $thr"; }
warm() { echo "SELECT count(*) FROM $1 WHERE id % 200 = 0 AND clad_score($V, img) > $thr"; }
time_query single_0 "SET max_parallel_workers_per_gather = 0" "$(filter local_images)" "$(warm local_images)"
time_query single_2 "SET max_parallel_workers_per_gather = 2" "$(filter local_images)" "$(warm local_images)"
time_query shards_2 "SET max_parallel_workers_per_gather = 0" "$(filter images2)" "$(warm images2)"
time_query shards_3 "SET max_parallel_workers_per_gather = 0" "$(filter images3)" "$(warm images3)"
time_query view_single "SET max_parallel_workers_per_gather = 0" \
	"SELECT sum(clad_score($V, img)) FROM local_images" "SELECT sum(clad_score($V, img)) FROM local_images WHERE id % 200 = 0"
time_query view_2 "SET max_parallel_workers_per_gather = 0" \
	"SELECT sum(score) FROM images2_scored" "SELECT sum(score) FROM images2_scored WHERE id % 200 = 0"
time_query view_3 "SET max_parallel_workers_per_gather = 0" \
	"SELECT sum(score) FROM images3_scored" "SELECT sum(score) FROM images3_scored WHERE id % 200 = 0"

# the same answer everywhere
a=$(shards_psql 0 -c "$(filter local_images)")
b=$(shards_psql 0 -c "$(filter images2)")
c=$(shards_psql 0 -c "$(filter images3)")
[ "$a" = "$b" ] && [ "$a" = "$c" ] || die "anomaly counts differ: single $a, 2 shards $b, 3 shards $c"
say "anomalies (score above $thr): $a of $rows on the single server, 2 shards and 3 shards alike"

ms() { awk -v k="$1" '$1 == k {print $2}' "$R"; }
{
	echo
	echo "clad across servers with postgres_fdw, $rows rows (2,000 real MNIST test digits x $COPIES), ResNet-18 1x28x28"
	echo "all servers on this machine's $(nproc) cores: the gain is bounded by the cores, not the servers"
	echo
	printf '%-58s %9s %9s\n' "scoring every row" "rows/s" "x single"
	for k in single_0 single_2 shards_2 shards_3 view_single view_2 view_3; do
		case $k in
			single_0) label="filter, one server, one backend"; base=single_0 ;;
			single_2) label="filter, one server, 2 parallel workers"; base=single_0 ;;
			shards_2) label="filter shipped to 2 shards (async foreign scans)"; base=single_0 ;;
			shards_3) label="filter shipped to 3 shards"; base=single_0 ;;
			view_single) label="per-row scores, one server, one backend"; base=view_single ;;
			view_2) label="per-row scores from views on 2 shards"; base=view_single ;;
			view_3) label="per-row scores from views on 3 shards"; base=view_single ;;
		esac
		awk -v l="$label" -v n="$rows" -v t="$(ms $k)" -v b="$(ms $base)" \
			'BEGIN {printf "%-58s %9.1f %8.2fx\n", l, n / (t / 1000), b / t}'
	done
	echo
	echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee bench/build/scale_results.txt

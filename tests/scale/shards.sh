# tests/scale/shards.sh: clad sharded with postgres_fdw on one machine, for
# tests/integration/test_scale.sh and bench/scale/run.sh (sourced; needs tests/integration/pgcluster.sh).
#
#   shards_start N [CONF_LINE ...]
# starts a coordinator (pgc_start clad_scale) and N shard clusters
# (pgc_start_extra shard1..shardN), Unix sockets only, and installs clad on
# every one; on the coordinator postgres_fdw and one foreign server per shard,
# shard1..shardN, with the options clad needs: extensions 'clad' (postgres_fdw
# ships a call of an extension's function only when the server lists the
# extension, and only IMMUTABLE ones) and async_capable 'true' (the shards of
# one Append scan at the same time).
#
#   shards_psql K [psql args]       psql on shard K (0: the coordinator)
#   shards_conn K                   its libpq connection string
#   shards_table NAME M             on shards 1..M a table NAME (id bigint
#                                   PRIMARY KEY, label int, img bytea); on the
#                                   coordinator NAME partitioned by hash of id
#                                   into foreign tables NAME_1..NAME_M, one per
#                                   shard; rows inserted on the coordinator go
#                                   to their shard
#   shards_scored_view NAME M MODEL on shards 1..M a view NAME_scored (id,
#                                   label, score) = clad_score(MODEL, img) over
#                                   NAME, and on the coordinator NAME_scored
#                                   over them the same way: per-row scores
#                                   computed where the rows are

shards_n=0

shards_sock() {
	if [ "$1" = 0 ]; then echo "$SOCK"; else echo "$T/shard$1/sock"; fi
}

shards_conn() {
	echo "host=$(shards_sock "$1") port=$PORT user=postgres dbname=postgres"
}

shards_psql() {
	local k=$1
	shift
	"$PGBIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h "$(shards_sock "$k")" -p "$PORT" -U postgres \
		-d postgres "$@"
}

shards_start() {
	local n=$1 k
	shift
	pgc_start clad_scale "$@"
	for k in $(seq 1 "$n"); do
		pgc_start_extra "shard$k" "$@"
	done
	shards_n=$n
	for k in $(seq 0 "$n"); do
		shards_psql "$k" -c "CREATE EXTENSION clad" >/dev/null
	done
	shards_psql 0 -c "CREATE EXTENSION postgres_fdw" >/dev/null
	for k in $(seq 1 "$n"); do
		shards_psql 0 >/dev/null <<SQL
CREATE SERVER shard$k FOREIGN DATA WRAPPER postgres_fdw
	OPTIONS (host '$(shards_sock "$k")', port '$PORT', dbname 'postgres',
			 extensions 'clad', async_capable 'true');
CREATE USER MAPPING FOR postgres SERVER shard$k OPTIONS (user 'postgres');
SQL
	done
}

shards_table() {
	local name=$1 m=$2 k
	[ "$m" -le "$shards_n" ] || { echo "shards_table: $m shards asked, $shards_n started" >&2; return 1; }
	shards_psql 0 -c "CREATE TABLE $name (id bigint NOT NULL, label int, img bytea) PARTITION BY HASH (id)" >/dev/null
	for k in $(seq 1 "$m"); do
		shards_psql "$k" -c "CREATE TABLE $name (id bigint PRIMARY KEY, label int, img bytea)" >/dev/null
		shards_psql 0 -c "CREATE FOREIGN TABLE ${name}_$k PARTITION OF $name
			FOR VALUES WITH (MODULUS $m, REMAINDER $((k - 1)))
			SERVER shard$k OPTIONS (table_name '$name', batch_size '100')" >/dev/null
	done
}

shards_scored_view() {
	local name=$1 m=$2 model=$3 k
	shards_psql 0 -c "CREATE TABLE ${name}_scored (id bigint NOT NULL, label int, score real)
		PARTITION BY HASH (id)" >/dev/null
	for k in $(seq 1 "$m"); do
		shards_psql "$k" -c "CREATE VIEW ${name}_scored AS
			SELECT id, label, clad_score($model, img) AS score FROM $name" >/dev/null
		shards_psql 0 -c "CREATE FOREIGN TABLE ${name}_scored_$k PARTITION OF ${name}_scored
			FOR VALUES WITH (MODULUS $m, REMAINDER $((k - 1)))
			SERVER shard$k OPTIONS (table_name '${name}_scored')" >/dev/null
	done
}

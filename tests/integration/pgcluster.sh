# tests/integration/pgcluster.sh: a throwaway PostgreSQL 15 cluster for tests, benchmarks and
# the demo (sourced by bash scripts).
#
#   pgc_start NAME [CONF_LINE ...]
# creates a private cluster (initdb + pg_ctl, as the postgres user when run as
# root: initdb refuses root) in a mktemp directory /tmp/NAME.XXXXXX, on a free
# port, with its Unix socket in a directory of its own and no TCP
# (listen_addresses = ''), and starts it; extra postgresql.conf lines may be
# given.  It sets T (the directory, for the caller's files too), SOCK, PORT,
# CONN (a libpq connection string), PGBIN, exports PGUSER=postgres and
# PGHOST/PGPORT, and defines psql_q (psql, tuples only, stop on error) and
# as_pg (run as the server's user).  pgc_start_extra starts more clusters
# beside it (postgres_fdw shards).  PGC_SERVER_WRAPPER, when set, is a command
# the postmaster runs under (the valgrind suite's).  An EXIT trap stops the server and
# removes the directory; call pgc_stop to stop it earlier.

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
[ -x "$PGBIN/initdb" ] || PGBIN=$(pg_config --bindir 2>/dev/null || true)

if [ "$(id -u)" = 0 ]; then
	as_pg() { runuser -u postgres -- "$@"; }
else
	as_pg() { "$@"; }
fi

pgc_started=0
pgc_extra=()			# data directories of pgc_start_extra's clusters
pgc_stop_dir() {
	as_pg "$PGBIN/pg_ctl" -D "$1" -m fast -w stop >/dev/null 2>&1 ||
		as_pg "$PGBIN/pg_ctl" -D "$1" -m immediate -w stop >/dev/null 2>&1 || true
}
pgc_stop() {
	local d
	for d in "${pgc_extra[@]}"; do
		pgc_stop_dir "$d"
	done
	pgc_extra=()
	if [ "$pgc_started" = 1 ]; then
		pgc_stop_dir "$T/data"
		pgc_started=0
	fi
}
pgc_cleanup() {
	pgc_stop
	[ -n "${T:-}" ] && rm -rf "$T"
}

pgc_start() {
	local name=$1
	shift
	if [ ! -x "$PGBIN/initdb" ] || [ ! -x "$PGBIN/pg_ctl" ]; then
		echo "$name: PostgreSQL's initdb/pg_ctl not found (install postgresql-15, or set PGBIN)" >&2
		exit 1
	fi
	T=$(mktemp -d "/tmp/$name.XXXXXX")
	trap pgc_cleanup EXIT
	trap 'exit 130' INT TERM
	mkdir -p "$T/sock"
	chmod 755 "$T"			# the server (postgres) reads files the caller puts here
	chmod 700 "$T/sock"
	[ "$(id -u)" = 0 ] && chown postgres:postgres "$T/sock"

	# a port nothing listens on (the server has no TCP; the port only names its socket)
	PORT=
	local p
	for p in $(seq 54329 54528); do
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && [ ! -e "/tmp/.s.PGSQL.$p" ]; then
			PORT=$p
			break
		fi
	done
	[ -n "$PORT" ] || { echo "$name: no free port in 54329-54528" >&2; exit 1; }

	unset PGHOSTADDR PGDATABASE PGSERVICE PGOPTIONS PGPASSWORD PGSSLMODE
	export PGUSER=postgres
	SOCK=$T/sock
	export PGHOST=$SOCK PGPORT=$PORT
	CONN="host=$SOCK port=$PORT user=postgres dbname=postgres"

	pgc_create "$T/data" "$SOCK" "$@"
	pgc_started=1
	if [ -n "${PGC_SERVER_WRAPPER:-}" ]; then
		# the postmaster under a wrapper command (valgrind): started directly, as
		# pg_ctl would start the real binary; its output goes to the server log
		# shellcheck disable=SC2086
		as_pg $PGC_SERVER_WRAPPER "$PGBIN/postgres" -D "$T/data" >>"$T/data/server.log" 2>&1 </dev/null &
		local i
		for i in $(seq 600); do
			"$PGBIN/pg_isready" -q -h "$SOCK" -p "$PORT" && return 0
			sleep 0.5
		done
		cat "$T/data/server.log" >&2
		exit 1
	fi
	pgc_pgctl_start "$T/data"
}

# pgc_create DATA SOCKDIR [CONF_LINE ...]: initdb DATA for a server on $PORT with
# its socket in SOCKDIR, no TCP.
pgc_create() {
	local data=$1 sock=$2
	shift 2
	mkdir -p "$data"
	[ "$(id -u)" = 0 ] && chown postgres:postgres "$data"
	if ! as_pg "$PGBIN/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C --no-sync \
		>"$data.initdb.log" 2>&1; then
		cat "$data.initdb.log" >&2
		exit 1
	fi
	{
		cat <<CONF
listen_addresses = ''
port = $PORT
unix_socket_directories = '$sock'
unix_socket_permissions = 0700
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
		local line
		for line in "$@"; do
			echo "$line"
		done
	} >>"$data/postgresql.conf"
}

pgc_pgctl_start() {
	if ! as_pg "$PGBIN/pg_ctl" -D "$1" -l "$1/server.log" -w -t 60 start >/dev/null 2>&1; then
		cat "$1/server.log" >&2
		exit 1
	fi
}

# pgc_start_extra NAME [CONF_LINE ...]: after pgc_start, one more cluster in
# $T/NAME (data/, sock/), on the same port number with a socket directory of its
# own; stopped with the first.  Connect with host=$T/NAME/sock port=$PORT.
pgc_start_extra() {
	local name=$1
	shift
	mkdir -p "$T/$name/sock"
	chmod 755 "$T/$name"
	chmod 700 "$T/$name/sock"
	[ "$(id -u)" = 0 ] && chown postgres:postgres "$T/$name/sock"
	pgc_create "$T/$name/data" "$T/$name/sock" "$@"
	pgc_extra+=("$T/$name/data")
	pgc_pgctl_start "$T/$name/data"
}

psql_q() { "$PGBIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" -U postgres -d postgres "$@"; }

# pgc_backend_pid CONDITION: the pid of the backend pg_stat_activity shows
# matching CONDITION (SQL over its columns), waiting up to 5 s for it to
# appear (a session just started in the background); empty if none does.
pgc_backend_pid() {
	local pid=
	for _ in $(seq 50); do
		pid=$(psql_q -c "SELECT pid FROM pg_stat_activity WHERE ($1) AND pid <> pg_backend_pid()")
		[ -n "$pid" ] && break
		sleep 0.1
	done
	echo "$pid"
}

# pgc_need_mnist WHO DIR: stop with a message unless DIR holds the idx digits
# that `make data` writes.
pgc_need_mnist() {
	if [ ! -e "$2/train-images-idx3-ubyte" ] && [ ! -e "$2/train-images-idx3-ubyte.gz" ]; then
		echo "$1: $2 not found: run \`make data\` first" >&2
		exit 1
	fi
}

# pgc_hold_run MODEL CLIENT: in the background, a session (application_name
# clad_lock_holder) that begins a training run of clad model MODEL as CLIENT, so
# holding the model's run lock, for up to 120 s; its pid in pgc_holder.  Returns once
# the run shows as running (1 if it does not within 20 s).  pgc_release_run ends it.
pgc_hold_run() {
	local shows="select count(*) from clad.training_runs where client = '$2' and status = 'running'"
	PGAPPNAME=clad_lock_holder "$PGBIN/psql" -X -q -h "$SOCK" -p "$PORT" -U postgres -d postgres \
		-c "select clad_run_begin('$1', '$2')" -c "select pg_sleep(120)" >/dev/null 2>&1 &
	pgc_holder=$!
	local _
	for _ in $(seq 1 100); do
		[ "$(psql_q -c "$shows")" = 1 ] && return 0
		sleep 0.2
	done
	return 1
}
pgc_release_run() {
	psql_q -c "select pg_terminate_backend(pid, 10000) from pg_stat_activity
	           where application_name = 'clad_lock_holder'" >/dev/null
	wait "$pgc_holder" 2>/dev/null || true
}

# pgc_need_clad WHO: install this build of the extension when run as root (the
# server loads the installed clad.so), else stop unless one is installed.
pgc_need_clad() {
	if [ "$(id -u)" = 0 ]; then
		make -s install >/dev/null
	elif [ ! -e "$("$PGBIN/pg_config" --sharedir)/extension/clad.control" ]; then
		echo "$1: the clad extension is not installed: run \`make install\` as root first" >&2
		exit 1
	fi
}

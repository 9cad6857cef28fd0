#!/usr/bin/env bash
# tests/integration/test_schedule.sh: the scheduled-retraining recipes of scripts/schedule/.
#
# Needs the clad extension (installed first with `make install` when run as
# root), data/mnist (`make data`) and pg_cron (Debian's postgresql-15-cron).
# Starts one throwaway cluster (tests/integration/pgcluster.sh) with pg_cron preloaded,
# loads real MNIST digits into the recipes' table `images`, and checks:
#   a. clad-retrain.cron: its job line, taken from the file itself and run as
#      cron would (/bin/sh -c, the file's variables, a bare environment, in
#      HOME, as a user that is not root), with only these changed: the
#      trainer's path, the lock directory, the log file, a tiny training
#      budget in CLAD_TRAIN_OPTS, and PGSERVICEFILE naming a service file
#      that points service "clad" at the test cluster.  Two runs: two
#      'succeeded' runs, two versions, the newest active, "exit 0" logged
#      twice; a query that fails: a 'failed' run, the active version
#      unchanged, the error and "exit 1" logged; the lock file held (a run
#      still going on this host): "exit 75" at once, nothing run; the
#      database's advisory lock held (a run from another host): "exit 1",
#      nothing stored;
#   b. clad-retrain.service and .timer: `systemd-analyze verify` (when it
#      works here), then the service's ExecStart run the same way, with the
#      values of clad-retrain.env (CLAD_TRAIN_OPTS made tiny): a third
#      version, active;
#   c. pg_cron.sql, its schedule made '* * * * *', for a model of 4 versions
#      (the oldest active) with keep = 2, and for a model that does not exist:
#      within 75 s cron.job_run_details shows the prune 'succeeded' and the
#      other 'failed', and only the active version and the newest 2 remain.
set -euo pipefail
cd "$(dirname "$0")/../.."

BIN=$PWD/trainer/clad-train
PY=${PYTHON:-/usr/bin/python3}
[ -x "$PY" ] || PY=python3
MNIST=${MNIST:-data/mnist}
S=scripts/schedule
. tests/integration/pgcluster.sh
pgc_need_mnist test_schedule.sh "$MNIST"
pgc_need_clad test_schedule.sh
if [ ! -e "$("$PGBIN/pg_config" --sharedir)/extension/pg_cron.control" ]; then
	echo "test_schedule.sh: pg_cron is not installed: apt-get install postgresql-15-cron (scripts/deps.sh)" >&2
	exit 1
fi
started=$(date +%s)
pgc_start clad_test_schedule "shared_preload_libraries = 'pg_cron'" "cron.database_name = 'postgres'" \
	"cron.use_background_workers = on"

# the jobs run as the server's user, who may not enter the checkout (a private
# clone, a folder under /root): they run a copy of the trainer in $T
cp "$BIN" "$T/clad-train"
chmod 755 "$T/clad-train"
BIN=$T/clad-train

. tests/integration/checks.sh
q() { psql_q -c "$1"; }

# the scheduled commands run as the server's user (postgres, when we are
# root): not root, and one that may reach the cluster's socket
mkdir -p "$T/home" "$T/lock" "$T/lock2" "$T/log"
[ "$(id -u)" = 0 ] && chown postgres:postgres "$T/home" "$T/lock" "$T/lock2" "$T/log"
RUN_USER=$(as_pg id -un)

# the libpq service the recipes name (service=clad), pointing at this cluster
cat >"$T/pg_service.conf" <<EOF
[clad]
host=$SOCK
port=$PORT
user=postgres
dbname=postgres
EOF
chmod 644 "$T/pg_service.conf"
TINY="--classifier cnn --ae-epochs 1 --dec-epochs 1 --clf-epochs 1 --ae-batch 64 --dec-batch 64 --kmeans-restarts 2"

# ---------------------------------------------------------------- the table
"$PY" scripts/digits_copy.py "$MNIST" "$T/digits.copy" 300 100
chmod 644 "$T/digits.copy"
psql_q >/dev/null <<SQL
CREATE EXTENSION clad;
CREATE TABLE images (id int PRIMARY KEY, label int NOT NULL, split text NOT NULL, img bytea NOT NULL);
\copy images (id, label, split, img) FROM '$T/digits.copy'
SQL
check '[ "$(q "select count(*) from images")" = 400 ]' "the digits were not loaded"

versions() { q "select count(*) from clad.model_versions where name = '$1'"; }
active() { q "select coalesce(max(active_version), -1) from clad.model_list where name = '$1'"; }
newest() { q "select coalesce(max(id), -2) from clad.model_versions where name = '$1'"; }
runs() { q "select count(*) from clad.training_runs where model_name = '$1'"; }
last_run() { q "select $2 from clad.training_runs where model_name = '$1' order by id desc limit 1"; }

# ================================================================ a. cron
# Parse the file as cron does: NAME = VALUE lines (the value up to a '#',
# trailing blanks dropped, one pair of matching quotes removed) and the job
# line: five time fields (or @nickname), the user, the command.
CRON=$S/clad-retrain.cron
cron_env=()
njobs=0
while IFS= read -r line || [ -n "$line" ]; do
	[[ "$line" =~ ^[[:space:]]*(#|$) ]] && continue
	if [[ "$line" =~ ^[[:space:]]*([^[:space:]=]+)[[:space:]]*=[[:space:]]*([^#]*) ]]; then
		name=${BASH_REMATCH[1]}
		val=${BASH_REMATCH[2]}
		val=${val%"${val##*[![:space:]]}"}
		if [ ${#val} -ge 2 ] && { [[ "$val" == \"*\" ]] || [[ "$val" == \'*\' ]]; }; then
			val=${val:1:${#val}-2}
		fi
		cron_env+=("$name=$val")
	elif [[ "$line" =~ ^[[:space:]]*(@[a-z]+|[^[:space:]]+[[:space:]]+[^[:space:]]+[[:space:]]+[^[:space:]]+[[:space:]]+[^[:space:]]+[[:space:]]+[^[:space:]]+)[[:space:]]+([^[:space:]]+)[[:space:]]+(.+)$ ]]; then
		njobs=$((njobs + 1))
		cron_when=${BASH_REMATCH[1]}
		cron_user=${BASH_REMATCH[2]}
		cron_cmd=${BASH_REMATCH[3]}
	else
		bad "$CRON: a line cron would not take: $line"
	fi
done <"$CRON"
check '[ $njobs = 1 ]' "$CRON: $njobs job lines (want 1)"
cron_when=${cron_when:-} cron_user=${cron_user:-} cron_cmd=${cron_cmd:-}
check '[[ "$cron_when" =~ ^[0-9]+\ +[0-9]+\ +\*\ +\*\ +\*$ ]] && [ -n "$cron_user" ] && [ "$cron_user" != root ]' \
	"the job is not nightly, or runs as root: \"$cron_when\" as \"$cron_user\""
check '! grep -v "^[[:space:]]*#" "$CRON" | grep -qi "password"' "$CRON holds a password"
check '[[ "$cron_cmd" == "flock -n "* ]] && [[ "$cron_cmd" == *"--db \"\$CLAD_DB\""* ]] &&
	[[ "$cron_cmd" == *" --activate --quiet \$CLAD_TRAIN_OPTS "* ]] && [[ "$cron_cmd" == *">>\"\$CLAD_LOG\" 2>&1"* ]]' \
	"the job line is not the recipe's: $cron_cmd"
# cron: an unescaped % ends the command (the rest is its stdin), \% is a %
check '! printf %s "$cron_cmd" | grep -q "\(^\|[^\\]\)%"' "the job line has an unescaped %"
cron_cmd=${cron_cmd//\\%/%}
# the paths of the host: the trainer, the lock
n_bin=$(grep -o "/usr/local/bin/clad-train " <<<"$cron_cmd" | wc -l)
n_lock=$(grep -o "/run/lock/" <<<"$cron_cmd" | wc -l)
check '[ "$n_bin" = 1 ] && [ "$n_lock" = 1 ]' "the job line's trainer ($n_bin) or lock ($n_lock) path is not the recipe's"
cron_cmd=${cron_cmd//\/usr\/local\/bin\/clad-train /$BIN }

# run_cron LOCKDIR [NAME=VALUE ...]: the job line, as cron runs it, with the
# file's variables and then the test's; $T/cron.out gets what cron would mail
run_cron() {
	local lockdir=$1
	shift
	local cmd=${cron_cmd//\/run\/lock\//$lockdir/}
	local shell
	shell=$(cron_var SHELL)
	shell=${shell:-/bin/sh}
	rc=0
	( cd "$T/home" && as_pg env -i HOME="$T/home" LOGNAME="$RUN_USER" SHELL=/bin/sh PATH=/usr/bin:/bin \
		"${cron_env[@]}" CLAD_LOG="$T/log/retrain.log" CLAD_TRAIN_OPTS="$TINY" \
		PGSERVICEFILE="$T/pg_service.conf" "$@" "$shell" -c "$cmd" ) >"$T/cron.out" 2>&1 || rc=$?
}
# cron_var NAME: the value the file gives NAME (the last one)
cron_var() {
	local kv v=
	for kv in "${cron_env[@]}"; do
		[[ "$kv" == "$1="* ]] && v=${kv#"$1="}
	done
	printf '%s' "$v"
}
MODEL=$(cron_var CLAD_MODEL)
QUERY=$(cron_var CLAD_QUERY)
check '[ -n "$MODEL" ] && [ -n "$QUERY" ]' "$CRON sets no CLAD_MODEL or CLAD_QUERY"
NROWS=$(q "select count(*) from ($QUERY) r")
logged() { grep -c "^[0-9T:+-]* clad-train $MODEL: exit $1\$" "$T/log/retrain.log" || true; }

t0=$(date +%s)
run_cron "$T/lock"
rc1=$rc
run_cron "$T/lock"
took=$(($(date +%s) - t0))
check '[ $rc1 = 0 ] && [ $rc = 0 ] && [ ! -s "$T/cron.out" ]' "the cron job: exit $rc1, $rc, output $(cat "$T/cron.out")"
# --quiet: no progress and no notes; the training report (stdout) and the exit
check '[ "$(logged 0)" = 2 ] && [ "$(grep -c "^trained clad model \"$MODEL\" on [0-9]* normal images" "$T/log/retrain.log")" = 2 ] &&
	! grep -q "^clad-train:" "$T/log/retrain.log"' "the log after two runs: $(cat "$T/log/retrain.log")"
row=$(q "select string_agg(status || ',' || rows || ',' || activated, ' ' order by id)
         from clad.training_runs where model_name = '$MODEL'")
check '[ "$row" = "succeeded,$NROWS,true succeeded,$NROWS,true" ]' "the two cron runs in clad.training_runs: $row"
V2=$(newest "$MODEL")
check '[ "$(versions "$MODEL")" = 2 ] && [ "$(active "$MODEL")" = "$V2" ] && [ "$(last_run "$MODEL" version_id)" = "$V2" ]' \
	"after two runs: $(versions "$MODEL") versions, active $(active "$MODEL"), newest $V2"
echo "cron job: 2 runs of $NROWS rows in ${took}s"

# a query that fails: a 'failed' run, nothing stored, the active version kept
run_cron "$T/lock" CLAD_QUERY="SELECT img FROM no_such_table"
check '[ $rc = 0 ] && [ "$(logged 1)" = 1 ] && grep -q "no_such_table" "$T/log/retrain.log"' \
	"a failing query: exit $rc, log $(cat "$T/log/retrain.log")"
row=$(last_run "$MODEL" "status, version_id is null, error like '%no_such_table%'")
check '[ "$row" = "failed|t|t" ] && [ "$(runs "$MODEL")" = 3 ]' "the failing query's run: $row, $(runs "$MODEL") runs"
check '[ "$(versions "$MODEL")" = 2 ] && [ "$(active "$MODEL")" = "$V2" ]' \
	"after a failed run: $(versions "$MODEL") versions, active $(active "$MODEL") (want 2, $V2)"

# the lock file held, as by a run still going on this host: skipped at once
exec 9>"$T/lock/clad-retrain.lock"
flock -n 9
t0=$(date +%s)
run_cron "$T/lock"
took=$(($(date +%s) - t0))
exec 9>&-
check '[ $rc = 0 ] && [ "$(logged 75)" = 1 ] && [ $took -le 5 ] && [ "$(runs "$MODEL")" = 3 ]' \
	"with the lock file held: exit $rc after ${took}s, $(runs "$MODEL") runs, log $(tail -n 2 "$T/log/retrain.log")"

# the database's lock held, as by a run of the same model on another host
pgc_hold_run "$MODEL" 'other host' && ok || bad "the other host's run does not show"
run_cron "$T/lock2"
check '[ $rc = 0 ] && [ "$(logged 1)" = 2 ] && grep -q "another training run of clad model \"$MODEL\" is in progress" "$T/log/retrain.log"' \
	"with the advisory lock held elsewhere: exit $rc, log $(tail -n 3 "$T/log/retrain.log")"
check '[ "$(versions "$MODEL")" = 2 ] && [ "$(active "$MODEL")" = "$V2" ] && [ "$(runs "$MODEL")" = 4 ]' \
	"the refused run changed the versions or the runs: $(versions "$MODEL"), $(active "$MODEL"), $(runs "$MODEL")"
pgc_release_run

# ================================================================ b. systemd
SVC=$S/clad-retrain.service
TIMER=$S/clad-retrain.timer
ENVF=$S/clad-retrain.env
key() { sed -n "s/^$2=//p" "$1"; }
check '[ "$(key "$SVC" Type)" = oneshot ] && [ "$(key "$SVC" NoNewPrivileges)" = yes ] &&
	[ "$(key "$SVC" ProtectSystem)" = strict ] && [ -n "$(key "$SVC" User)" ] && [ "$(key "$SVC" User)" != root ] &&
	[ "$(key "$SVC" EnvironmentFile)" = /etc/clad/retrain.env ]' "$SVC: not a oneshot, hardened, non-root unit with /etc/clad/retrain.env"
check '[ -n "$(key "$TIMER" OnCalendar)" ] && [ "$(key "$TIMER" Persistent)" = true ] &&
	[ "$(key "$TIMER" WantedBy)" = timers.target ]' "$TIMER: no OnCalendar, Persistent=true or WantedBy=timers.target"
exec_start=$(key "$SVC" ExecStart)
odd=$(tr -cd "\"'\\\\%;" <<<"$exec_start")
check '[ "$(grep -c "^ExecStart=" "$SVC")" = 1 ] && [[ "$exec_start" == "/usr/local/bin/clad-train "* ]] && [ -z "$odd" ]' \
	"$SVC: not one ExecStart=/usr/local/bin/clad-train ... without quotes, backslashes, % or ;: $exec_start"
mkdir -p "$T/units"
sed "s|^ExecStart=/usr/local/bin/clad-train |ExecStart=$BIN |" "$SVC" >"$T/units/clad-retrain.service"
cp "$TIMER" "$T/units/clad-retrain.timer"
sa_works=0
if command -v systemd-analyze >/dev/null 2>&1; then
	# does verify work here, and does it catch a mistake?
	printf '[Service]\nType=oneshot\nExecStart=/bin/true\n' >"$T/units/good.service"
	printf '[Service]\nType=oneshot\nExecStart=/bin/true\nNoNewPrivilege=yes\n' >"$T/units/typo.service"
	if (cd "$T/units" && systemd-analyze verify ./good.service) >"$T/sa.out" 2>&1 && [ ! -s "$T/sa.out" ]; then
		sa_works=1
	fi
fi
if [ $sa_works = 1 ]; then
	check '(cd "$T/units" && systemd-analyze verify ./typo.service) 2>&1 | grep -q NoNewPrivilege' \
		"systemd-analyze verify does not catch an unknown key"
	rc=0
	(cd "$T/units" && systemd-analyze verify ./clad-retrain.service ./clad-retrain.timer) >"$T/sa.out" 2>&1 || rc=$?
	check '[ $rc = 0 ] && [ ! -s "$T/sa.out" ]' "systemd-analyze verify of the units: exit $rc, $(cat "$T/sa.out")"
	check 'systemd-analyze calendar "$(key "$TIMER" OnCalendar)" >/dev/null 2>&1' "OnCalendar does not parse"
	echo "systemd-analyze verify: the service and the timer pass ($(systemd-analyze --version | head -n 1))"
else
	echo "test_schedule.sh: systemd-analyze is missing or does not work here: the units are not verified"
fi

# the EnvironmentFile, as systemd reads it: KEY=VALUE, "..." keeps spaces
env_vals=()
while IFS= read -r line || [ -n "$line" ]; do
	[[ "$line" =~ ^[[:space:]]*([#\;]|$) ]] && continue
	if [[ "$line" =~ ^([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]] && [[ "${BASH_REMATCH[2]}" != *\\* ]]; then
		name=${BASH_REMATCH[1]}
		val=${BASH_REMATCH[2]}
		[[ "$val" == \"*\" ]] && val=${val:1:${#val}-2}
		env_vals+=("$name=$val")
	else
		bad "$ENVF: a line this test does not read as systemd would: $line"
	fi
done <"$ENVF"
missing=
for v in $(grep -o '\$[{]\?[A-Za-z_][A-Za-z0-9_]*' <<<"$exec_start" | tr -d '${'); do
	# (no grep -q: with pipefail, printf killed by SIGPIPE would count as a miss)
	printf '%s\n' "${env_vals[@]}" | grep "^$v=" >/dev/null || missing="$missing $v"
done
check '[ -z "$missing" ]' "$ENVF does not set$missing, used by ExecStart"
check '[ "$(printf "%s\n" "${env_vals[@]}" | grep "^CLAD_MODEL=")" = "CLAD_MODEL=$MODEL" ] &&
	[ "$(printf "%s\n" "${env_vals[@]}" | grep "^CLAD_QUERY=")" = "CLAD_QUERY=$QUERY" ] &&
	[ "$(printf "%s\n" "${env_vals[@]}" | grep "^CLAD_DB=")" = "$(printf "%s\n" "${cron_env[@]}" | grep "^CLAD_DB=")" ]' \
	"$ENVF and $CRON differ in CLAD_DB, CLAD_MODEL or CLAD_QUERY"

# ExecStart in sh: ${X} one word, $X split at blanks (no globbing), in /,
# with no new privileges
svc_cmd=$(sed 's/\${\([A-Za-z_][A-Za-z0-9_]*\)}/"${\1}"/g' <<<"${exec_start/#\/usr\/local\/bin\/clad-train /$BIN }")
nnp=()
command -v setpriv >/dev/null 2>&1 && nnp=(setpriv --no-new-privs)
before=$(runs "$MODEL")
rc=0
( cd / && as_pg env -i HOME="$T/home" PATH=/usr/bin:/bin "${env_vals[@]}" CLAD_TRAIN_OPTS="$TINY" \
	PGSERVICEFILE="$T/pg_service.conf" "${nnp[@]}" /bin/sh -c "set -f; exec $svc_cmd" ) >"$T/svc.out" 2>&1 || rc=$?
V3=$(newest "$MODEL")
check '[ $rc = 0 ] && grep -q "^clad-train: stored clad model \"$MODEL\" version $V3 (active)$" "$T/svc.out"' \
	"the service's ExecStart: exit $rc, $(tail -n 5 "$T/svc.out")"
check '[ "$(versions "$MODEL")" = 3 ] && [ "$(active "$MODEL")" = "$V3" ] && [ "$V3" -gt "$V2" ] &&
	[ "$(runs "$MODEL")" = $((before + 1)) ] && [ "$(last_run "$MODEL" "status || rows")" = "succeeded$NROWS" ]' \
	"after the service's run: $(versions "$MODEL") versions, active $(active "$MODEL"), last run $(last_run "$MODEL" status)"
row=$(q "select status, error like 'abandoned%' from clad.training_runs where client = 'other host'")
check '[ "$row" = "failed|t" ]' "the other host's abandoned run: $row"

# ================================================================ c. pg_cron
"$BIN" --data "mnist:$MNIST" --normal mnist:3 $TINY --no-eval --quiet --out "$T/tiny.safetensors" >/dev/null
chmod 644 "$T/tiny.safetensors"
P=()
for i in 1 2 3 4; do
	P+=("$("$BIN" push --db "$CONN" --model-name pruned --quiet "$T/tiny.safetensors")")
done
q "select clad_activate('pruned', ${P[0]})" >/dev/null
check '[ "$(versions pruned)" = 4 ] && [ "$(active pruned)" = "${P[0]}" ]' "4 versions of pruned, the oldest active"

# the prune job's schedule, on the one line (not a comment) that has it
n_sched=$(grep -v "^[[:space:]]*--" "$S/pg_cron.sql" | grep -c "'15 3 \* \* \*'" || true)
check '[ "$n_sched" = 1 ]' "$S/pg_cron.sql: the schedule '15 3 * * *' appears $n_sched times outside comments"
sed "/^[[:space:]]*--/!s/'15 3 \* \* \*'/'* * * * *'/" "$S/pg_cron.sql" >"$T/pg_cron.sql"
rc=0
{ psql_q -v model=pruned -v keep=2 -f "$T/pg_cron.sql" && psql_q -v model=pruned -v keep=2 -f "$T/pg_cron.sql" &&
	psql_q -v model=nosuch -v keep=2 -f "$T/pg_cron.sql"; } >"$T/cron_sql.out" 2>&1 || rc=$?
check '[ $rc = 0 ]' "pg_cron.sql: $(cat "$T/cron_sql.out")"
row=$(q "select string_agg(jobname || '|' || schedule || '|' || command, E'\n' order by jobname) from cron.job")
want="clad-prune-nosuch|* * * * *|SELECT clad_prune_versions('nosuch', 2)
clad-prune-pruned|* * * * *|SELECT clad_prune_versions('pruned', 2)
cron-history-cleanup|0 4 * * 0|DELETE FROM cron.job_run_details WHERE end_time < now() - interval '30 days'"
check '[ "$row" = "$want" ]' "the jobs (one each, run twice): $row"

status_of() {
	q "select coalesce(string_agg(d.status, ',' order by d.runid), '') from cron.job_run_details d
	   join cron.job j using (jobid) where j.jobname = '$1'"
}
t0=$(date +%s)
while :; do
	s1=$(status_of clad-prune-pruned)
	s2=$(status_of clad-prune-nosuch)
	left=$(q "select string_agg(id::text, ',' order by id) from clad.model_versions where name = 'pruned'")
	if [[ "$s1" == *succeeded* ]] && [[ "$s2" == *failed* ]] && [ "$left" = "${P[0]},${P[2]},${P[3]}" ]; then
		break
	fi
	[ $(($(date +%s) - t0)) -ge 75 ] && break
	sleep 2
done
waited=$(($(date +%s) - t0))
check '[[ "$s1" == succeeded* ]] && [ "$left" = "${P[0]},${P[2]},${P[3]}" ] && [ "$(active pruned)" = "${P[0]}" ]' \
	"after ${waited}s: the prune job's runs \"$s1\", versions left $left (want ${P[0]},${P[2]},${P[3]}), active $(active pruned)"
msg=$(q "select d.return_message from cron.job_run_details d join cron.job j using (jobid)
         where j.jobname = 'clad-prune-nosuch' order by d.runid limit 1")
check '[[ "$s2" == failed* ]] && [[ "$msg" == *"clad model \"nosuch\" does not exist"* ]]' \
	"the prune of a missing model: runs \"$s2\", message $msg"
echo "pg_cron: after ${waited}s the prune job had run: versions ${P[*]} -> $left (active ${P[0]}, keep 2)"

if [ "$fails" -ne 0 ]; then
	echo "test_schedule.sh: $fails of $checks checks failed" >&2
	echo "--- retrain.log" >&2
	cat "$T/log/retrain.log" >&2 || true
	echo "--- server log" >&2
	tail -n 20 "$T/data/server.log" >&2 || true
	exit 1
fi
echo "test_schedule.sh: all $checks checks passed in $(($(date +%s) - started))s (pg_cron $(q "select extversion from pg_extension where extname = 'pg_cron'"))"

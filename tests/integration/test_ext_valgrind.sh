#!/usr/bin/env bash
# tests/integration/test_ext_valgrind.sh: the whole pg_regress suite with the server under
# valgrind's memcheck.
#
# The postmaster of a throwaway cluster runs under valgrind (its backends are
# forks, so every one of them is checked, parallel workers included) with the
# installed extension; then `make installcheck` runs the suite.  Passes when
# pg_regress passes (pg_regress leaves its database, contrib_regression, behind),
# valgrind reports no error in any process (PostgreSQL's own
# known reports, uninitialised padding bytes it writes to WAL and to the
# relcache init file, and glibc's loader reading past a string are suppressed by
# tests/valgrind/postgres.supp, which names only their functions), the server log shows no crash, and the logs show that backends
# really loaded clad.so under valgrind.  (AddressSanitizer was tried first:
# with libasan preloaded, Debian's PostgreSQL binaries hang in bindtextdomain
# before main, so the sanitizer route would need a PostgreSQL built with ASan.)
set -euo pipefail
cd "$(dirname "$0")/../.."

BIN=${CLAD_TRAIN:-./trainer/clad-train}
PY=${PYTHON:-/usr/bin/python3}
MNIST=${MNIST:-data/mnist}
command -v valgrind >/dev/null || { echo "test_ext_valgrind.sh: valgrind is not installed" >&2; exit 1; }
. tests/integration/pgcluster.sh
pgc_need_clad test_ext_valgrind.sh
# valgrind runs as the server's user, who may not enter the checkout: its
# suppressions and logs live in a folder of their own, and the logs are
# copied to tests/build/valgrind for a look afterwards
VG=$(mktemp -d /tmp/clad_valgrind.XXXXXX)
chmod 777 "$VG"
cp tests/valgrind/postgres.supp "$VG/"
chmod 644 "$VG/postgres.supp"
keep_logs() { rm -rf tests/build/valgrind; mkdir -p tests/build/valgrind
	cp "$VG"/vg.*.log tests/build/valgrind/ 2>/dev/null || true; rm -rf "$VG"; }
PGC_SERVER_WRAPPER="valgrind --quiet --tool=memcheck --leak-check=no --num-callers=24 --trace-children=no
	--suppressions=$VG/postgres.supp --log-file=$VG/vg.%p.log
	--error-markers=CLAD_VG_ERROR_BEGIN,CLAD_VG_ERROR_END"
pgc_start clad_test_ext_valgrind "max_worker_processes = 8" "max_parallel_workers = 4"

. tests/ext/fixtures.sh
regress_fixtures "$T/regress"

. tests/integration/checks.sh
rm -rf tests/build/regress
t0=$(date +%s)
# CLAD_VALGRIND_REGRESS: the pg_regress files to run (all of them when unset);
# make test runs those that take no minutes under valgrind
if ! make -s installcheck ${CLAD_VALGRIND_REGRESS:+REGRESS="$CLAD_VALGRIND_REGRESS"}; then
	[ -f tests/build/regress/regression.diffs ] && head -100 tests/build/regress/regression.diffs
	bad "pg_regress under valgrind failed (tests/build/regress/regression.diffs)"
fi
t1=$(date +%s)
# a backend under valgrind with clad.so mapped (valgrind's own preload shows in the maps)
maps=$(psql_q -d contrib_regression -c "SELECT clad_cache_loads() >= 0; SELECT pg_read_file('/proc/self/maps')")
if echo "$maps" | grep -q "/clad.so" && echo "$maps" | grep -q "vgpreload_memcheck"; then :
else bad "the backend is not running clad.so under valgrind"; fi
pgc_stop

nlogs=$(ls "$VG"/vg.*.log | wc -l)
trap 'keep_logs; pgc_cleanup' EXIT
# every error valgrind reports (not suppressed) is framed by the markers
report="== CLAD_VG_ERROR_BEGIN$"
errors=$(cat "$VG"/vg.*.log | grep -c "$report" || true)
if [ "$errors" != 0 ]; then
	bad "valgrind reported $errors errors:"
	grep -l "$report" "$VG"/vg.*.log | head -3 | xargs cat | head -120 >&2 || true
fi
if grep -qiE "terminated by signal|was terminated|reinitializ" "$T/data/server.log"; then
	bad "the server log shows a crash:"
	grep -iE -A5 "terminated by signal|was terminated" "$T/data/server.log" | head -30 >&2
fi
[ $fails = 0 ] || exit 1
echo "test_ext_valgrind.sh: pg_regress (${CLAD_VALGRIND_REGRESS:-the whole suite}) passed in $((t1 - t0)) s with the server under valgrind" \
	"($nlogs processes checked): no memcheck error, no crash"

#!/usr/bin/env bash
# tests/integration/test_fuzz_sql.sh: malformed images thrown at clad_score in one session.
#
# A PNG, a JPEG (progressive) and a PGM of a real digit, each truncated at every
# byte offset and mutated by FUZZ_MUTATIONS (10,000) seeded byte flips each, go
# through clad_score one by one in a single backend (a plpgsql loop catching each
# ERROR), three times, 2,000 inputs per statement.  Every call must return a score
# in [0,1] or raise an ERROR (the same answers every time); the backend's pid must
# stay the same (no crash, no restart) and its memory flat: the third pass may not
# add 1 MB to the private memory (RssAnon) the second left, nor a byte to its
# memory contexts.  (Within one transaction, each caught ERROR makes PL/pgSQL set
# the expression up again, so memory grows until the transaction ends: hence
# statements of bounded size.)
#
# Why not compare the first pass with the second: RssAnon grows by about 3 MB from
# the first pass to the second and then stays put.  malloc_stats() (called from gdb
# after each pass) shows the bytes in use identical after every pass, while the
# main arena's size grows once: glibc raises its mmap threshold to the largest
# block freed so far (an image declaring millions of pixels), after which such
# blocks come from the heap and freed ones stay there for reuse.  That is a
# high-water mark, not a leak; the third pass checks that it holds.
set -euo pipefail
cd "$(dirname "$0")/../.."

BIN=${CLAD_TRAIN:-./trainer/clad-train}
PY=${PYTHON:-/usr/bin/python3}
MNIST=${MNIST:-data/mnist}
N=${FUZZ_MUTATIONS:-10000}
. tests/integration/pgcluster.sh
. tests/integration/checks.sh
pgc_need_clad test_fuzz_sql.sh
pgc_start clad_test_fuzz_sql

"$BIN" --data "mnist:$MNIST" --normal mnist:3 --classifier cnn --ae-epochs 1 --dec-epochs 1 \
	--clf-epochs 1 --ae-batch 64 --dec-batch 64 --kmeans-restarts 2 -K 4 --no-eval --quiet \
	--out "$T/model.safetensors" >/dev/null
"$PY" tests/ext/make_images.py "$MNIST" "$T/img" >/dev/null
"$PY" - "$T/img/formats" "$N" "$T/cases.copy" <<'PYEOF'
import os, random, sys
src, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rng = random.Random(20261128)
with open(out, "w") as f:
    for name in ("png_gray8.png", "jpeg_progressive.jpg", "pgm_binary.pgm"):
        good = open(os.path.join(src, name), "rb").read()
        for cut in range(len(good)):
            f.write("%s\ttrunc\t\\\\x%s\n" % (name, good[:cut].hex()))
        for _ in range(n):
            b = bytearray(good)
            for _ in range(rng.randint(1, 8)):
                b[rng.randrange(len(b))] = rng.randrange(256)
            f.write("%s\tflip\t\\\\x%s\n" % (name, bytes(b).hex()))
PYEOF
chmod -R a+rX "$T"
psql_q >/dev/null <<SQL
CREATE EXTENSION clad;
SELECT clad_load_model('m', pg_read_binary_file('$T/model.safetensors'));
CREATE TABLE cases (id serial, fmt text, kind text, img bytea);
\copy cases (fmt, kind, img) FROM '$T/cases.copy'
CREATE FUNCTION run_cases(lo int, hi int, OUT scored int, OUT errors int, OUT bad int) LANGUAGE plpgsql AS \$\$
DECLARE r record; s real;
BEGIN
	scored := 0; errors := 0; bad := 0;
	FOR r IN SELECT img FROM cases WHERE id >= lo AND id < hi ORDER BY id LOOP
		BEGIN
			s := clad_score('m', r.img);
			IF s >= 0 AND s <= 1 THEN scored := scored + 1; ELSE bad := bad + 1; END IF;
		EXCEPTION WHEN OTHERS THEN
			IF SQLSTATE IN ('22P03', '54000', '0A000', '22003') THEN errors := errors + 1;
			ELSE RAISE; END IF;
		END;
	END LOOP;
END \$\$;
SQL
total=$(psql_q -c "SELECT count(*) FROM cases")
rss="substring(pg_read_file('/proc/self/status') from 'RssAnon:\\s+(\\d+)')::int"
# Three passes over every input in statements of 2,000 inputs (each its own
# transaction); the memory after the second and third must be the same
pass() {
	local lo
	for lo in $(seq 0 2000 "$total"); do
		echo "INSERT INTO tally SELECT $1, * FROM run_cases($lo, $lo + 2000);"
	done
}
ctx="(SELECT sum(total_bytes) FROM pg_backend_memory_contexts)"
out=$(psql_q -F ' ' <<SQL
SET jit = off;
CREATE TABLE tally (pass int, scored int, errors int, bad int);
SELECT pg_backend_pid();
$(pass 1)
SELECT $rss, $ctx;
$(pass 2)
SELECT $rss, $ctx;
$(pass 3)
SELECT $rss, $ctx;
SELECT pg_backend_pid();
SQL
)
pid0=$(echo "$out" | sed -n 1p)
read -r m1 c1 <<<"$(echo "$out" | sed -n 2p)"
read -r m2 c2 <<<"$(echo "$out" | sed -n 3p)"
read -r m3 c3 <<<"$(echo "$out" | sed -n 4p)"
pid1=$(echo "$out" | sed -n 5p)
read -r sc er bd <<<"$(psql_q -F ' ' -c "SELECT sum(scored), sum(errors), sum(bad) FROM tally WHERE pass = 1")"
differ=$(psql_q -c "SELECT count(DISTINCT (scored, errors, bad)) FROM
	(SELECT pass, sum(scored) scored, sum(errors) errors, sum(bad) bad FROM tally GROUP BY pass) p")
echo "fuzz: $total inputs ($N byte-flip mutations and every truncation of a PNG, a JPEG and a PGM):" \
	"$sc scored, $er refused with an ERROR, $bd out of range; backend pid $pid0 -> $pid1;" \
	"RssAnon $m1 / $m2 / $m3 kB and memory contexts $c1 / $c2 / $c3 bytes after passes 1 / 2 / 3"
[ "$pid0" = "$pid1" ] && ok || bad "the backend changed (crash?)"
[ $((sc + er)) = "$total" ] && ok || bad "not every input was answered"
[ "$differ" = 1 ] && ok || bad "the passes answered differently"
[ "$bd" = 0 ] && ok || bad "scores out of [0,1]"
[ $((m3 - m2)) -lt 1024 ] && ok || bad "RssAnon grew by $((m3 - m2)) kB in the third pass"
[ "$c3" -le "$c2" ] && ok || bad "memory contexts grew by $((c3 - c2)) bytes in the third pass"
if grep -q "terminated by signal\|server process .* was terminated" "$T/data/server.log"; then
	bad "the server log shows a crashed backend"
fi
[ $fails = 0 ] || exit 1
echo "test_fuzz_sql.sh: passed"

#!/usr/bin/env bash
# tests/integration/test_upgrade.sh: upgrades keep every model, and the upgraded extension
# is the one a fresh install makes.
#
#   1. The released install scripts (sql/released: their SHA-256) are
#      unchanged, and every released version has an update path to the
#      control file's default_version.
#   2. A database on each released version, holding models (two names, three
#      versions, one dropped, an active version switched, a user table with a
#      generated column scoring by id; and a Deep SVDD, a one-class SVM and an
#      ensemble model), goes through ALTER EXTENSION clad UPDATE:
#      every model, version id, date, SHA-256, retired id, active version, run
#      and score is unchanged, and the functions of the new version work.
#   3. The extension the update leaves (every function's definition, owner
#      grants and comment; every table's columns, defaults, constraints,
#      indexes, triggers and grants; views, sequences, configuration tables) is
#      the one CREATE EXTENSION makes: the install script cannot change
#      without an upgrade script doing the same.
# Needs the clad extension installed (as root, this script runs make install)
# and the MNIST digits of `make data` (two small models are trained, seconds).
set -euo pipefail
cd "$(dirname "$0")/../.."

BIN=${CLAD_TRAIN:-./trainer/clad-train}
MNIST=${MNIST:-data/mnist}
. tests/integration/pgcluster.sh
pgc_need_mnist test_upgrade.sh "$MNIST"
pgc_need_clad test_upgrade.sh
pgc_start clad_test_upgrade

. tests/integration/checks.sh

# ---------------------------------------------------------------- released scripts
if sha256sum --quiet -c sql/released; then ok; else bad "a released install script changed (sql/released)"; fi
current=$(sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" clad.control)
released=$(sed -n 's/.*sql\/clad--\([^-]*\)\.sql$/\1/p' sql/released)
[ -f "sql/clad--$current.sql" ] && ok || bad "no install script sql/clad--$current.sql for default_version $current"
psql_q -c "CREATE DATABASE fresh" >/dev/null
for v in $released; do
	path=$(psql_q -d fresh -c "SELECT path FROM pg_extension_update_paths('clad') WHERE source = '$v' AND target = '$current'")
	if [ "$v" = "$current" ] || [ -n "$path" ]; then ok; else bad "no update path from released $v to $current"; fi
done

# ---------------------------------------------------------------- models through an update
train() {
	"$BIN" --data "mnist:$MNIST" --classifier cnn --ae-epochs 1 --dec-epochs 1 --clf-epochs 1 \
		--ae-batch 64 --dec-batch 64 --kmeans-restarts 2 --no-eval --quiet \
		--normal "$1" -K "$2" --seed "$3" --out "$4" "${@:5}" >/dev/null
}
train mnist:3 4 1 "$T/m1.safetensors"
train mnist:7 5 2 "$T/m2.safetensors" --recipe paper
train mnist:7 5 3 "$T/svdd.safetensors" --method deepsvdd --svdd-epochs 1 --svdd-batch 64
train mnist:7 5 3 "$T/svm.safetensors" --method ocsvm
train mnist:7 5 3 "$T/ens.safetensors" --method ensemble --svdd-epochs 1 --svdd-batch 64 --bank 32
cp "$MNIST/t10k-images-idx3-ubyte" "$T/images.idx"
chmod a+r "$T"/*.safetensors "$T/images.idx"

# what must survive, as text: models, versions, retired ids, runs, scores
state() {
	psql_q -d "$1" <<'SQL'
SELECT 'model ' || m.name || ' ' || m.created_at || ' active ' || coalesce(a.version::text, '-') || ' at ' || a.activated_at
	FROM clad.models m LEFT JOIN clad.active_versions a ON a.name = m.name ORDER BY m.name;
SELECT 'version ' || id || ' ' || name || ' ' || encode(sha256, 'hex') || ' ' || created_at || ' '
	|| size_bytes || ' ' || md5(metrics::text) FROM clad.model_versions ORDER BY id;
SELECT 'retired ' || id || ' ' || encode(sha256, 'hex') FROM clad.retired_versions ORDER BY id;
SELECT 'run ' || id || ' ' || model_name || ' ' || status FROM clad.training_runs ORDER BY id;
SELECT 'next id ' || last_value FROM clad.model_versions_id_seq;
SELECT 'score ' || i || ' ' || clad_score('digits', img) || ' ' || clad_score(2::bigint, img) || ' '
	|| clad_confidence('sevens', img) || ' ' || clad_cluster('digits', img) || ' ' || clad_confidence('svdd', img)
	|| ' ' || clad_confidence('svm', img) || ' ' || clad_confidence('ens', img) FROM imgs ORDER BY i;
SELECT 'user ' || count(*) || ' ' || sum(s) FROM app.scored;
SQL
}

for v in $released; do
	[ "$v" = "$current" ] && continue
	db="from_${v//./_}"
	psql_q -c "CREATE DATABASE $db" >/dev/null
	psql_q -d "$db" >/dev/null <<SQL
CREATE EXTENSION clad VERSION '$v';
SELECT clad_load_model('digits', pg_read_binary_file('$T/m1.safetensors'));
SELECT clad_load_model('digits', pg_read_binary_file('$T/m2.safetensors'));
SELECT clad_load_model('sevens', pg_read_binary_file('$T/m2.safetensors'));
SELECT clad_load_model('digits', pg_read_binary_file('$T/m1.safetensors'), '{"note": "again"}') AS v \gset
SELECT clad_activate('digits', 2);
SELECT clad_drop_model('digits', :v);
SELECT clad_run_begin('digits');
SELECT clad_load_model('svdd', pg_read_binary_file('$T/svdd.safetensors'));
SELECT clad_load_model('svm', pg_read_binary_file('$T/svm.safetensors'));
SELECT clad_load_model('ens', pg_read_binary_file('$T/ens.safetensors'));
CREATE TABLE imgs AS SELECT i, substring(f FROM 17 + i * 784 FOR 784) AS img
	FROM (SELECT pg_read_binary_file('$T/images.idx') f) q, generate_series(0, 19) i;
CREATE SCHEMA app;
CREATE TABLE app.scored (i int, img bytea, s real GENERATED ALWAYS AS (clad_score(1::bigint, img)) STORED);
INSERT INTO app.scored (i, img) SELECT i, img FROM imgs;
CREATE INDEX ON app.scored ((clad_score(1::bigint, img)));
SQL
	before=$(state "$db")
	psql_q -d "$db" -c "ALTER EXTENSION clad UPDATE" >/dev/null
	after_version=$(psql_q -d "$db" -c "SELECT extversion FROM pg_extension WHERE extname = 'clad'")
	[ "$after_version" = "$current" ] && ok || bad "$v: ALTER EXTENSION clad UPDATE left version $after_version, not $current"
	after=$(state "$db")
	if [ "$before" = "$after" ]; then ok
	else bad "$v -> $current changed the models: $(diff <(echo "$before") <(echo "$after") | head -10)"; fi
	[ "$(echo "$after" | grep -c '^version ')" = 6 ] && [ "$(echo "$after" | grep -c '^score ')" = 20 ] && ok ||
		bad "$v: the state compared is incomplete: $(echo "$after" | head -5)"
	# the old ways go on, and the new version's functions work
	id=$(psql_q -d "$db" -c "SELECT clad_load_model('digits', pg_read_binary_file('$T/m2.safetensors'), '{\"note\": \"after\"}')")
	[ "$id" -gt "$(echo "$before" | sed -n 's/^next id //p')" ] && ok || bad "$v: a version stored after the update got id $id"
	n=$(psql_q -d "$db" -c "SELECT count(*) FROM clad_prepared_files() WHERE status = 'in use'")
	[ "$n" -ge 2 ] && ok || bad "$v: clad_prepared_files() after the update shows $n files in use"
	echo "upgrade $v -> $current: $(echo "$after" | grep -c '^version ') versions, $(echo "$after" | grep -c '^score ') scores unchanged"
done

# ---------------------------------------------------------------- updated = installed
# every object of the extension, described by name (oids differ between databases)
describe() {
	psql_q -d "$1" <<'SQL'
WITH members AS (
	SELECT d.classid, d.objid FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
	WHERE d.refclassid = 'pg_extension'::regclass AND e.extname = 'clad' AND d.deptype = 'e'
), rels AS (
	SELECT c.oid, c.relname, n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE c.oid IN (SELECT objid FROM members WHERE classid = 'pg_class'::regclass)
)
SELECT 'object ' || pg_describe_object(classid, objid, 0) FROM members
UNION ALL
SELECT 'function ' || p.oid::regprocedure || E'\n' || pg_get_functiondef(p.oid)
	|| E'\nacl ' || coalesce(p.proacl::text, 'default') || ' owner ' || pg_get_userbyid(p.proowner)
	|| E'\ncomment ' || coalesce(obj_description(p.oid, 'pg_proc'), '')
FROM pg_proc p WHERE p.oid IN (SELECT objid FROM members WHERE classid = 'pg_proc'::regclass) AND p.prokind <> 'a'
UNION ALL
SELECT 'relation ' || r.nspname || '.' || r.relname || ' kind ' || c.relkind::text || ' acl ' || coalesce(c.relacl::text, 'default')
	|| ' options ' || coalesce(c.reloptions::text, '') || ' comment ' || coalesce(obj_description(c.oid, 'pg_class'), '')
	|| CASE WHEN c.relkind = 'v' THEN E'\n' || pg_get_viewdef(c.oid) ELSE '' END
FROM rels r JOIN pg_class c ON c.oid = r.oid
UNION ALL
SELECT 'column ' || r.nspname || '.' || r.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
	|| CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
	|| coalesce(' default ' || pg_get_expr(ad.adbin, ad.adrelid), '') || ' generated ' || a.attgenerated::text
	|| ' identity ' || a.attidentity::text || ' acl ' || coalesce(a.attacl::text, 'default')
	|| ' comment ' || coalesce(col_description(r.oid, a.attnum), '')
FROM rels r JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_attrdef ad ON ad.adrelid = r.oid AND ad.adnum = a.attnum
UNION ALL
SELECT 'constraint ' || r.nspname || '.' || r.relname || ' ' || co.conname || ' ' || pg_get_constraintdef(co.oid)
FROM rels r JOIN pg_constraint co ON co.conrelid = r.oid
UNION ALL
SELECT 'index ' || r.nspname || '.' || r.relname || ' ' || pg_get_indexdef(i.indexrelid)
FROM rels r JOIN pg_index i ON i.indrelid = r.oid
UNION ALL
SELECT 'trigger ' || r.nspname || '.' || r.relname || ' ' || pg_get_triggerdef(t.oid) || ' enabled ' || t.tgenabled::text
FROM rels r JOIN pg_trigger t ON t.tgrelid = r.oid AND NOT t.tgisinternal
UNION ALL
SELECT 'sequence ' || s.seqrelid::regclass || ' ' || format_type(s.seqtypid, NULL) || ' ' || s.seqstart || ' '
	|| s.seqincrement || ' ' || s.seqmax || ' ' || s.seqmin || ' ' || s.seqcache || ' ' || s.seqcycle
FROM pg_sequence s WHERE s.seqrelid IN (SELECT oid FROM rels)
UNION ALL
SELECT 'config ' || c::regclass || ' ' || coalesce(x.extcondition[i], '')
FROM pg_extension x, unnest(x.extconfig) WITH ORDINALITY u(c, i) WHERE x.extname = 'clad'
UNION ALL
SELECT 'schema ' || n.nspname || ' acl ' || coalesce(n.nspacl::text, 'default') || ' owner ' || pg_get_userbyid(n.nspowner)
FROM pg_namespace n WHERE n.oid IN (SELECT objid FROM members WHERE classid = 'pg_namespace'::regclass)
ORDER BY 1;
SQL
}
psql_q -d fresh -c "CREATE EXTENSION clad" >/dev/null
want=$(describe fresh)
n_objects=$(echo "$want" | grep -c '^object ' || true)
n_functions=$(echo "$want" | grep -c '^function ' || true)
[ "$n_functions" -ge 30 ] && ok || bad "the description of a fresh install lists $n_functions functions"
for v in $released; do
	[ "$v" = "$current" ] && continue
	db="from_${v//./_}"
	got=$(describe "$db")
	if [ "$want" = "$got" ]; then ok
	else
		bad "$v -> $current by update differs from a fresh install of $current:"
		diff <(echo "$want") <(echo "$got") | head -40 >&2
	fi
done
echo "updated = installed: $n_objects objects compared ($n_functions functions) for releases: $released"

if [ "$fails" -ne 0 ]; then
	echo "test_upgrade.sh: $fails of $checks checks failed" >&2
	exit 1
fi
echo "test_upgrade.sh: all $checks checks passed (default_version $current; released: $(echo $released))"

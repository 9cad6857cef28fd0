#!/usr/bin/env bash
# scripts/demo.sh: the main job, end to end, on a throwaway PostgreSQL cluster
# (run by `make demo`, after the build, `make install` and `make data`).
#
# Starts a private cluster (tests/integration/pgcluster.sh), loads the 10,000 real MNIST
# digits (data/mnist) into a table as PNG bytea, trains mnist:CUR from SQL
# with a short budget (clad-train --db --query --model-name --activate),
# scores the 2,000 test digits with clad_score in SQL, prints the most
# anomalous ones and the AUROC computed in SQL from those scores, and stops
# the cluster.  DEMO_FLAGS sets the training budget.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-/usr/bin/python3}
[ -x "$PY" ] || PY=python3
DEMO_FLAGS=${DEMO_FLAGS:---ae-epochs 20 --dec-epochs 10 --clf-epochs 2}

. tests/integration/pgcluster.sh
pgc_start clad_demo
echo "== a throwaway PostgreSQL cluster on $SOCK, port $PORT"

"$PY" scripts/digits_copy.py data/mnist "$T/digits.copy"
psql_q <<SQL
CREATE EXTENSION clad;
CREATE TABLE images (id int PRIMARY KEY, label int NOT NULL, split text NOT NULL, img bytea NOT NULL);
\copy images (id, label, split, img) FROM '$T/digits.copy'
SQL
echo "== loaded $(psql_q -c "SELECT count(*) FILTER (WHERE split = 'train') || ' training and ' ||
	count(*) FILTER (WHERE split = 'test') || ' test digits (PNG bytea)' FROM images")"

echo "== training mnist:CUR from SQL: clad-train --db ... --query ... --model-name mnist_cur --activate $DEMO_FLAGS"
# shellcheck disable=SC2086
./trainer/clad-train --db "$CONN" \
	--query "SELECT img, label FROM images WHERE split = 'train'" \
	--test-query "SELECT img, label FROM images WHERE split = 'test'" \
	--normal mnist:CUR --model-name mnist_cur --activate $DEMO_FLAGS

echo "== the model in the database"
"$PGBIN/psql" -X -P pager=off -v ON_ERROR_STOP=1 -c "SELECT name, active_version, versions, architecture, input_shape, clusters,
	pg_size_pretty(size_bytes) AS size FROM clad.model_list"
"$PGBIN/psql" -X -P pager=off -v ON_ERROR_STOP=1 -c "SELECT id, model_name, status, rows, version_id, finished_at - started_at AS took
	FROM clad.training_runs"

echo "== scoring the 2000 test digits in SQL (mnist:CUR: the curved digits 0, 3 and 8 are normal)"
"$PGBIN/psql" -X -P pager=off -v ON_ERROR_STOP=1 <<'SQL'
SET clad.model = 'mnist_cur';
\timing on
CREATE TEMP TABLE scored AS
	SELECT id, label, label NOT IN (0, 3, 8) AS anomalous, clad_score(img) AS score,
		   clad_is_anomaly(img) AS flagged, clad_cluster(img) AS cluster
	FROM images WHERE split = 'test';
\timing off
\echo the ten most anomalous test digits:
SELECT id, label, anomalous, round(score::numeric, 4) AS score, cluster FROM scored ORDER BY score DESC, id LIMIT 10;
\echo AUROC of clad_score (the other seven digits are the anomalies), computed in SQL:
WITH r AS (SELECT anomalous, rank() OVER (ORDER BY score) + (count(*) OVER (PARTITION BY score) - 1) / 2.0 AS rnk
		   FROM scored)
SELECT round(((sum(rnk) FILTER (WHERE anomalous) - count(*) FILTER (WHERE anomalous) * (count(*) FILTER (WHERE anomalous) + 1) / 2.0)
	   / (count(*) FILTER (WHERE anomalous) * count(*) FILTER (WHERE NOT anomalous)))::numeric, 4) AS auroc,
	   count(*) FILTER (WHERE anomalous) AS anomalous, count(*) FILTER (WHERE NOT anomalous) AS normal
FROM r;
SELECT anomalous, count(*) AS images, round(avg(flagged::int)::numeric, 3) AS flagged_share FROM scored GROUP BY 1 ORDER BY 1;
SQL
pgc_stop
echo "== cluster stopped"

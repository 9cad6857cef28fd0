-- parallel: a parallel plan scores in workers and gives the serial plan's scores.
CREATE TABLE many AS SELECT g * 100 + d.id AS id, d.img FROM digits d, generate_series(1, 5) g;
ANALYZE many;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT sum(clad_score(1, img)) FROM many;
EXPLAIN (COSTS OFF) SELECT sum(clad_score('digits', img)) FROM many;
EXPLAIN (COSTS OFF) CREATE TABLE par_scores AS SELECT id, clad_score('digits', img) s, clad_cluster(1, img) k FROM many;
CREATE TABLE par_scores AS SELECT id, clad_score('digits', img) s, clad_cluster(1, img) k FROM many;
SET max_parallel_workers_per_gather = 0;
EXPLAIN (COSTS OFF) SELECT sum(clad_score(1, img)) FROM many;
SELECT count(*) AS n, bool_and(p.s = clad_score('digits', m.img)) AS same_scores,
	   bool_and(p.k = clad_cluster(1, m.img)) AS same_clusters
FROM par_scores p JOIN many m USING (id);
RESET ALL;

-- BLAS is single-threaded inside a backend
SELECT clad_blas() LIKE '%, 1 thread' AS single_threaded;

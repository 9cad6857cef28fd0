-- scoring: every function and overload, with the model by setting, name and id.
SET clad.model = 'digits';
SELECT img AS img3 FROM fmt WHERE name = 'png_gray8.png' \gset

-- the three ways of naming the model agree (version 1 is the active one)
SELECT clad_score(:'img3'::bytea) = clad_score('digits', :'img3'::bytea) AS by_name,
	   clad_score(:'img3'::bytea) = clad_score(1, :'img3'::bytea) AS by_id,
	   clad_confidence(:'img3'::bytea) = clad_confidence(1, :'img3'::bytea) AS conf,
	   clad_is_anomaly(:'img3'::bytea) = clad_is_anomaly(1, :'img3'::bytea) AS anomaly,
	   clad_embed(:'img3'::bytea) = clad_embed(1, :'img3'::bytea) AS embed,
	   clad_cluster(:'img3'::bytea) = clad_cluster('digits', :'img3'::bytea) AS cluster,
	   clad_cluster_probs(:'img3'::bytea) = clad_cluster_probs(1, :'img3'::bytea) AS probs;

-- ranges and shapes, on 40 real digits (version 1: a neighbour model, the default
-- recipe's, whose confidence is minus the sum of its two feature distances, each
-- standardised on held-out normal images: about 0 for a typical normal digit)
SELECT count(*) AS n,
	   bool_and(clad_score(img) BETWEEN 0 AND 1) AS score_in_0_1,
	   bool_and(clad_confidence(img) BETWEEN -1e4 AND 1e4) AS conf_finite,
	   bool_and(array_length(clad_embed(img), 1) = 10) AS latent_10,
	   bool_and(array_length(clad_cluster_probs(img), 1) = 4) AS k_4,
	   bool_and(abs((SELECT sum(p) FROM unnest(clad_cluster_probs(img)) p) - 1) < 1e-5) AS probs_sum_1,
	   bool_and(clad_cluster(img) BETWEEN 0 AND 3) AS cluster_in_0_3,
	   count(DISTINCT clad_score(img)) > 1 AS scores_differ
FROM digits;

-- the cluster is the most probable one; is_anomaly is confidence below the threshold
SELECT bool_and(clad_cluster(img) + 1 = (SELECT i FROM unnest(clad_cluster_probs(img)) WITH ORDINALITY u(p, i)
										  ORDER BY p DESC LIMIT 1)) AS cluster_is_argmax,
	   bool_and(clad_is_anomaly(img) = (clad_confidence(img) <
			(clad_model_describe((SELECT model FROM clad.model_versions WHERE id = 1))->>'threshold')::real))
		   AS anomaly_is_below_threshold
FROM digits;

-- the score falls as the confidence rises (the calibrated score is monotone)
WITH q AS (SELECT clad_confidence(img) c, clad_score(img) s FROM digits)
SELECT bool_and(NOT (a.c > b.c AND a.s > b.s)) AS monotone FROM q a, q b;

-- a different model gives different answers
SELECT clad_confidence('sevens', :'img3'::bytea) <> clad_confidence('digits', :'img3'::bytea) AS differs,
	   array_length(clad_cluster_probs('sevens', :'img3'::bytea), 1) AS k_sevens;

-- pixels as real[]: C*H*W values, (H,W), (C,H,W), resized, equal to the bytes
SELECT (SELECT img FROM fmt WHERE name = 'raw.bin') AS raw \gset
CREATE TEMP TABLE px AS
SELECT array_agg((get_byte(:'raw'::bytea, i) / 255.0)::real ORDER BY i) AS flat FROM generate_series(0, 783) i;
SELECT clad_confidence(1, flat) = clad_confidence(1, :'raw'::bytea) AS flat_equals_raw,
	   clad_confidence(1, flat) = clad_confidence(1, :'img3'::bytea) AS flat_equals_png,
	   clad_embed('digits', flat) = clad_embed(:'img3'::bytea) AS embed_equal
FROM px;
SELECT clad_confidence(1, array_fill(0.5::real, ARRAY[784])) = clad_confidence(1, array_fill(0.5::real, ARRAY[28, 28])) AS hw,
	   clad_confidence(1, array_fill(0.5::real, ARRAY[28, 28])) = clad_confidence(1, array_fill(0.5::real, ARRAY[56, 56])) AS resized,
	   abs(clad_confidence(1, array_fill(0.5::real, ARRAY[28, 28])) - clad_confidence(1, array_fill(0.5::real, ARRAY[3, 28, 28]))) < 1e-5 AS rgb,
	   clad_confidence(1, array_fill(0.5::real, ARRAY[28, 28])) = clad_confidence(1, array_fill(0.5::real, ARRAY[2, 28, 28])) AS gray_alpha;

-- batch forms: the same answers as one image at a time; NULL elements stay NULL
-- (rounding differs between the batch and row kernels, more on some CPUs: a
-- few units in the last place of a feature, which the neighbour confidence
-- divides by the held-out distances' spread: up to about 1e-4.  The calibrated score is a
-- rank among the held-out confidences, which for these one-epoch models lie
-- a few units apart at T = 1000, so the same few units can move it across
-- several of them: the score is checked to be the same decreasing function of
-- the confidence in both forms, equal where the confidences are equal)
WITH b AS (SELECT clad_confidence(1, array_agg(img ORDER BY id)) c, clad_cluster(1, array_agg(img ORDER BY id)) k,
				  clad_is_anomaly(1, array_agg(img ORDER BY id)) a, clad_score(array_agg(img ORDER BY id)) s,
				  clad_confidence(array_agg(img ORDER BY id)) c0
		   FROM digits),
r AS (SELECT d.id, b.c[d.id + 1] bc, b.k[d.id + 1] bk, b.a[d.id + 1] ba, b.s[d.id + 1] bs, b.c0[d.id + 1] bc0,
			 clad_confidence(1, d.img) rc, clad_cluster(1, d.img) rk, clad_is_anomaly(1, d.img) ra,
			 clad_score(d.img) rs, clad_confidence(d.img) rc0
	  FROM b, digits d)
SELECT bool_and(abs(bc - rc) < 1e-3) AS confidence,
	   bool_and(bk = rk) AS cluster,
	   bool_and(ba = ra) AS is_anomaly,
	   bool_and(abs(bc0 - rc0) < 1e-3 AND abs(bs - rs) < 0.1 AND
				CASE WHEN bc0 = rc0 THEN bs = rs WHEN bc0 > rc0 THEN bs <= rs ELSE bs >= rs END) AS score
FROM r;
-- (the same image twice in one batch: OpenBLAS's AVX2 kernels, which some machines
-- pin, round a column differently by its place in a product, so the two copies'
-- confidences may differ in the last bits; the scores then follow them)
SELECT s[1] IS NOT NULL AS first, s[2] IS NULL AS second_null,
	   abs(c[3] - c[1]) < 1e-4 AND CASE WHEN c[3] = c[1] THEN s[3] = s[1] WHEN c[3] > c[1] THEN s[3] <= s[1]
										ELSE s[3] >= s[1] END AS third, array_length(s, 1) AS n
FROM (SELECT clad_score(1, ARRAY[:'img3'::bytea, NULL, :'img3'::bytea]) s,
			 clad_confidence(1, ARRAY[:'img3'::bytea, NULL, :'img3'::bytea]) c) q;
SELECT clad_score(1, '{}'::bytea[]) AS empty, clad_cluster(1, ARRAY[NULL]::bytea[]) AS all_null;
-- chunks of 64: a batch of 100 images
SELECT array_length(clad_score(1, array_agg(img)), 1) AS n100
FROM (SELECT img FROM digits, generate_series(1, 3) LIMIT 100) q;

-- STRICT: NULL in, NULL out
SELECT clad_score(NULL::bytea) IS NULL AS a, clad_score('digits', NULL::real[]) IS NULL AS b,
	   clad_score(NULL::bigint, :'img3'::bytea) IS NULL AS c;

-- volatility and parallel safety as declared
SELECT p.proname, pg_get_function_identity_arguments(p.oid) AS args, p.provolatile, p.proparallel, p.proisstrict
FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'clad'
WHERE p.proname = 'clad_score'
ORDER BY 2;

-- a model is parsed once per backend and version, not per row
SELECT clad_cache_loads() AS loads_before;
SELECT count(clad_score(1, img)) FROM digits;
SELECT count(clad_score(2, img)) FROM digits;
SELECT clad_cache_loads() AS loads_after;
SELECT version, name, calls > 0 AS used FROM clad_cache() ORDER BY version;
RESET clad.model;

-- version 2 (model2): an ODIN model, as every model was before orientation models;
-- its confidence is a max softmax of K = 5 classes, in [1/5, 1]
SELECT clad_model_describe(model)->>'score' AS score, clad_model_describe(model)->>'rotations' AS rotations,
	   clad_model_describe(model)->>'format_version' AS format_version
FROM clad.model_versions WHERE id IN (1, 2) ORDER BY id;
SELECT count(*) AS n,
	   bool_and(clad_confidence(2, img) BETWEEN 0.2 AND 1) AS conf_in_1_over_k_1,
	   bool_and(clad_score(2, img) BETWEEN 0 AND 1) AS score_in_0_1,
	   count(DISTINCT clad_confidence(2, img)) > 1 AS confidences_differ
FROM digits;

-- overloads: every scoring function in each of its forms (model by setting, name or
-- version id; image as bytea or real[]; batch) gives the answer of the id + bytea form.
SET clad.model = 'digits';
SELECT active_version FROM clad.model_list WHERE name = 'digits';
SELECT img AS png FROM fmt WHERE name = 'png_gray8.png' \gset
SELECT img AS raw FROM fmt WHERE name = 'raw.bin' \gset
SELECT array_agg((get_byte(:'raw'::bytea, i) / 255.0)::real ORDER BY i)::text AS px
FROM generate_series(0, 783) i \gset
SELECT 'score' AS f,
	   clad_score(:'png'::bytea) = r AS setting_bytea, clad_score(:'px'::real[]) = r AS setting_pixels,
	   clad_score('digits', :'png'::bytea) = r AS name_bytea, clad_score('digits', :'px'::real[]) = r AS name_pixels,
	   clad_score(1, :'px'::real[]) = r AS id_pixels
FROM (SELECT clad_score(1, :'png'::bytea) r) q
UNION ALL
SELECT 'confidence',
	   clad_confidence(:'png'::bytea) = r, clad_confidence(:'px'::real[]) = r,
	   clad_confidence('digits', :'png'::bytea) = r, clad_confidence('digits', :'px'::real[]) = r,
	   clad_confidence(1, :'px'::real[]) = r
FROM (SELECT clad_confidence(1, :'png'::bytea) r) q
UNION ALL
SELECT 'is_anomaly',
	   clad_is_anomaly(:'png'::bytea) = r, clad_is_anomaly(:'px'::real[]) = r,
	   clad_is_anomaly('digits', :'png'::bytea) = r, clad_is_anomaly('digits', :'px'::real[]) = r,
	   clad_is_anomaly(1, :'px'::real[]) = r
FROM (SELECT clad_is_anomaly(1, :'png'::bytea) r) q
UNION ALL
SELECT 'embed',
	   clad_embed(:'png'::bytea) = r, clad_embed(:'px'::real[]) = r,
	   clad_embed('digits', :'png'::bytea) = r, clad_embed('digits', :'px'::real[]) = r,
	   clad_embed(1, :'px'::real[]) = r
FROM (SELECT clad_embed(1, :'png'::bytea) r) q
UNION ALL
SELECT 'cluster',
	   clad_cluster(:'png'::bytea) = r, clad_cluster(:'px'::real[]) = r,
	   clad_cluster('digits', :'png'::bytea) = r, clad_cluster('digits', :'px'::real[]) = r,
	   clad_cluster(1, :'px'::real[]) = r
FROM (SELECT clad_cluster(1, :'png'::bytea) r) q
UNION ALL
SELECT 'cluster_probs',
	   clad_cluster_probs(:'png'::bytea) = r, clad_cluster_probs(:'px'::real[]) = r,
	   clad_cluster_probs('digits', :'png'::bytea) = r, clad_cluster_probs('digits', :'px'::real[]) = r,
	   clad_cluster_probs(1, :'px'::real[]) = r
FROM (SELECT clad_cluster_probs(1, :'png'::bytea) r) q;

-- the batch forms, in their three model forms, against one image at a time
-- (rounding differs between the batch and row kernels, more on CPUs without AVX-512;
-- the calibrated score magnifies a confidence difference by 1/(n+1) over the gap
-- between neighbouring calibration confidences, hence its looser tolerance)
WITH imgs AS (SELECT array_agg(img ORDER BY id) a FROM digits WHERE id < 10),
	 one AS (SELECT array_agg(clad_confidence(1, img) ORDER BY id) c, array_agg(clad_score(1, img) ORDER BY id) s,
					array_agg(clad_is_anomaly(1, img) ORDER BY id) an, array_agg(clad_cluster(1, img) ORDER BY id) k
			 FROM digits WHERE id < 10)
SELECT (SELECT bool_and(abs(x - y) < 1e-3) FROM unnest(clad_confidence(a), one.c) u(x, y)) AS confidence_setting,
	   (SELECT bool_and(abs(x - y) < 1e-3) FROM unnest(clad_confidence('digits', a), one.c) u(x, y)) AS confidence_name,
	   (SELECT bool_and(abs(x - y) < 1e-3) FROM unnest(clad_confidence(1, a), one.c) u(x, y)) AS confidence_id,
	   (SELECT bool_and(abs(x - y) < 0.02) FROM unnest(clad_score(a), one.s) u(x, y)) AS score_setting,
	   (SELECT bool_and(abs(x - y) < 0.02) FROM unnest(clad_score('digits', a), one.s) u(x, y)) AS score_name,
	   (SELECT bool_and(abs(x - y) < 0.02) FROM unnest(clad_score(1, a), one.s) u(x, y)) AS score_id,
	   clad_is_anomaly(a) = one.an AND clad_is_anomaly('digits', a) = one.an AND clad_is_anomaly(1, a) = one.an AS is_anomaly_all,
	   clad_cluster(a) = one.k AND clad_cluster('digits', a) = one.k AND clad_cluster(1, a) = one.k AS cluster_all
FROM imgs, one;

-- the scoring signatures: 6 functions x 6 forms and 4 batch functions x 3 forms, all tested above
SELECT count(*) AS scoring_signatures FROM pg_proc p
JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'clad'
WHERE p.prolang = (SELECT oid FROM pg_language WHERE lanname = 'c') AND p.proname ~ '^clad_(score|confidence|is_anomaly|embed|cluster|cluster_probs)$';
RESET clad.model;

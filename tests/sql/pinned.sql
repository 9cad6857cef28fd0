-- pinned: one version id naming the same bytes on several servers
-- (clad_load_model_version) and the pinned scoring forms (version, sha256, img)
-- that refuse other bytes under the id.
SELECT fixture('model1.safetensors') AS m1,
	   fixture('model2.safetensors') AS m2 \gset
SELECT img AS img3 FROM fmt WHERE name = 'png_gray8.png' \gset

-- a given id: the model is created, its first version activated, the sequence moved past it
SELECT clad_load_model_version(1000, 'copies', :'m1'::bytea) AS v1000;
SELECT name, active_version, versions FROM clad.model_list WHERE name = 'copies';
SELECT sha256 = sha256(:'m1'::bytea) AS same_sha FROM clad.model_versions WHERE id = 1000;
SELECT clad_load_model('copies', :'m2'::bytea) > 1000 AS next_id_after_1000;

-- the same bytes under the same id and name again: nothing changes (it may activate)
SELECT clad_load_model_version(1000, 'copies', :'m1'::bytea) AS again;
SELECT count(*) AS versions_of_1000 FROM clad.model_versions WHERE id = 1000;
SELECT clad_load_model_version(1000, 'copies', :'m1'::bytea, activate => true) AS again_activated;

-- other bytes or another name under the id: refused, nothing stored
SELECT err($$SELECT clad_load_model_version(1000, 'copies', fixture('model2.safetensors'))$$);
DO $$
DECLARE
	d text;
BEGIN
	PERFORM clad_load_model_version(1000, 'copies',
		fixture('model2.safetensors'));
EXCEPTION WHEN unique_violation THEN
	GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL;
	RAISE NOTICE 'detail names both: %',
		d ~ '^Stored: model "copies", sha256 [0-9a-f]{64}; given: model "copies", sha256 [0-9a-f]{64}\.$';
END $$;
SELECT err($$SELECT clad_load_model_version(1000, 'digits', (SELECT model FROM clad.model_versions WHERE id = 1000))$$);
SELECT err($$SELECT clad_load_model_version(0, 'copies', (SELECT model FROM clad.model_versions WHERE id = 1000))$$);
SELECT err($$SELECT clad_load_model_version(NULL, 'copies', (SELECT model FROM clad.model_versions WHERE id = 1000))$$);
SELECT err($$SELECT clad_load_model_version(2000, 'copies', '\x00')$$);
SELECT count(*) AS no_version_2000 FROM clad.model_versions WHERE id = 2000;

-- pinned scoring: the same answers as the id form when the hash matches
SELECT sha256 AS sha1000 FROM clad.model_versions WHERE id = 1000 \gset
SELECT clad_score(1000, :'sha1000'::bytea, :'img3'::bytea) = clad_score(1000, :'img3'::bytea) AS score_same,
	   clad_confidence(1000, :'sha1000'::bytea, :'img3'::bytea) = clad_confidence(1000, :'img3'::bytea) AS conf_same,
	   clad_is_anomaly(1000, :'sha1000'::bytea, :'img3'::bytea) = clad_is_anomaly(1000, :'img3'::bytea) AS anomaly_same,
	   clad_embed(1000, :'sha1000'::bytea, :'img3'::bytea) = clad_embed(1000, :'img3'::bytea) AS embed_same,
	   clad_cluster(1000, :'sha1000'::bytea, :'img3'::bytea) = clad_cluster(1000, :'img3'::bytea) AS cluster_same,
	   clad_cluster_probs(1000, :'sha1000'::bytea, :'img3'::bytea) = clad_cluster_probs(1000, :'img3'::bytea) AS probs_same;
SELECT count(*) AS scored FROM digits WHERE clad_score(1000, :'sha1000'::bytea, img) BETWEEN 0 AND 1;

-- another hash, a malformed hash, an unknown id: refused
SELECT err($$SELECT clad_score(1000, sha256('other'::bytea), img) FROM fmt LIMIT 1$$);
SELECT err($$SELECT clad_cluster(1000, '\x0102'::bytea, img) FROM fmt LIMIT 1$$);
SELECT err($$SELECT clad_score(999999, sha256('x'::bytea), img) FROM fmt LIMIT 1$$);
-- the hash is checked on every row, not only the first
SELECT err($$SELECT clad_score(1000, CASE WHEN d.id > (SELECT min(id) FROM digits) THEN sha256('x'::bytea)
		ELSE (SELECT sha256 FROM clad.model_versions WHERE id = 1000) END, d.img)
		FROM (SELECT id, img FROM digits ORDER BY id OFFSET 0) d$$);

-- pinned forms are IMMUTABLE like the id forms (so postgres_fdw may ship them)
SELECT p.proname, p.provolatile, p.proparallel FROM pg_proc p
WHERE p.proname LIKE 'clad\_%' AND p.pronargs = 3 AND p.proargtypes[1] = 'bytea'::regtype
ORDER BY 1;

-- writing needs a grant, as for clad_load_model
CREATE ROLE clad_pin_reader;
SET ROLE clad_pin_reader;
SELECT err($$SELECT clad_load_model_version(3000, 'copies', '\x00')$$);
RESET ROLE;
DROP ROLE clad_pin_reader;
SELECT clad_drop_model('copies');

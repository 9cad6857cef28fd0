-- models: every malformed model file (tests/ext/make_bad_models.py: the smallest
-- change to a good file that breaks it) is refused by clad_load_model with a
-- clear error, whether it comes through clad_load_model or a direct INSERT, and
-- leaves nothing behind: no model, no version, no cache entry, no load.
\getenv data CLAD_REGRESS_DATA
CREATE TABLE bad_models (name text PRIMARY KEY, model bytea NOT NULL);
INSERT INTO bad_models SELECT replace(f, '.safetensors', ''), pg_read_binary_file(:'data' || '/bad_models/' || f)
FROM pg_ls_dir(:'data' || '/bad_models') f;
SELECT count(*) AS malformed_models FROM bad_models;

CREATE FUNCTION try_load(how text, blob bytea) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	IF how = 'load' THEN
		PERFORM clad_load_model('evil', blob);
	ELSIF how = 'describe' THEN
		PERFORM clad_model_describe(blob);
	ELSE
		INSERT INTO clad.models (name) VALUES ('evil');
		INSERT INTO clad.model_versions (name, model, autoencoder, classifier, input_shape, clusters, size_bytes, sha256)
		VALUES ('evil', blob, '', '', '{}', 0, 0, '');
	END IF;
	RETURN 'loaded';
EXCEPTION WHEN OTHERS THEN
	-- file sizes and byte positions depend on the model file's header: masked
	RETURN SQLSTATE || ': ' || regexp_replace(SQLERRM, '[0-9]{4,}', 'N', 'g');
END $$;

SELECT clad_cache_loads() AS loads_before, (SELECT count(*) FROM clad_cache()) AS cached_before \gset
SELECT max(id) AS last_version FROM clad.model_versions \gset
SELECT name, try_load('load', model) AS clad_load_model FROM bad_models ORDER BY name;
-- a direct INSERT and clad_model_describe give the same error for every file
SELECT count(*) FILTER (WHERE try_load('load', model) IS DISTINCT FROM try_load('insert', model)) AS insert_differs,
	   count(*) FILTER (WHERE try_load('load', model) IS DISTINCT FROM try_load('describe', model)) AS describe_differs
FROM bad_models;
SELECT count(*) AS models_left FROM clad.models WHERE name = 'evil';
SELECT count(*) AS versions_left FROM clad.model_versions WHERE id > :last_version OR name = 'evil';
SELECT clad_cache_loads() = :loads_before AS nothing_loaded,
	   (SELECT count(*) FROM clad_cache()) = :cached_before AS nothing_cached;
-- and the session still loads and scores a good model
SELECT clad_score(1, (SELECT img FROM digits ORDER BY id LIMIT 1)) BETWEEN 0 AND 1 AS still_scoring;
DROP TABLE bad_models;
DROP FUNCTION try_load(text, bytea);

-- setup: the extension, two model versions and the test images.
-- Files come from tests/test_ext.sh through CLAD_REGRESS_DATA: model1 (mnist:3,
-- K 4) and model2 (mnist:7, K 5), small cnn models trained on real digits;
-- one digit in every image format; 40 real test digits; malformed files.
\getenv data CLAD_REGRESS_DATA
CREATE EXTENSION clad;
SELECT extversion FROM pg_extension WHERE extname = 'clad';

-- the first version of a model becomes active; later ones do not unless asked
SELECT clad_load_model('digits', pg_read_binary_file(:'data' || '/model1.safetensors')) AS v1;
SELECT clad_load_model('digits', pg_read_binary_file(:'data' || '/model2.safetensors')) AS v2;
SELECT clad_load_model('sevens', pg_read_binary_file(:'data' || '/model2.safetensors'),
					   '{"note": "a copy"}') AS v3;
SELECT name, active_version, versions, architecture, input_shape, clusters FROM clad.model_list;
SELECT id, name, autoencoder, classifier, input_shape, clusters, octet_length(sha256) AS sha_bytes,
	   size_bytes = octet_length(model) AS size_ok, metrics ? 'stages' AS has_summary
FROM clad.model_versions ORDER BY id;
SELECT metrics FROM clad.model_versions WHERE id = 3;

CREATE TABLE fmt (name text PRIMARY KEY, img bytea NOT NULL);
INSERT INTO fmt SELECT f, pg_read_binary_file(:'data' || '/formats/' || f)
FROM pg_ls_dir(:'data' || '/formats') f;
SELECT name, octet_length(img) > 0 AS ok FROM fmt ORDER BY name;

CREATE TABLE digits (id int PRIMARY KEY, label int NOT NULL, img bytea NOT NULL);
INSERT INTO digits SELECT substr(f, 1, 4)::int, substr(f, 6, 1)::int, pg_read_binary_file(:'data' || '/digits/' || f)
FROM pg_ls_dir(:'data' || '/digits') f;
SELECT count(*), count(DISTINCT label) FROM digits;

CREATE TABLE bad (name text PRIMARY KEY, img bytea NOT NULL);
INSERT INTO bad SELECT f, pg_read_binary_file(:'data' || '/bad/' || f)
FROM pg_ls_dir(:'data' || '/bad') f;
SELECT count(*) FROM bad;

-- reports an error's SQLSTATE and message instead of failing the script
CREATE FUNCTION err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE q;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

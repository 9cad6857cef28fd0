-- setup: the extension, two model versions and the test images.
-- The files (make installcheck puts them in CLAD_REGRESS_DATA): model1 (mnist:3,
-- K 4) and model2 (mnist:7, K 5), small cnn models trained on real digits;
-- one digit in every image format; 40 real test digits; malformed images.
-- psql reads them here, on the client side (files.tsv: a line of path and
-- base64 bytes for each), so the server needs no access to them; later files
-- take them from the table files, by path (fixture(path)).
CREATE EXTENSION clad;
SELECT extversion FROM pg_extension WHERE extname = 'clad';

CREATE TABLE files (path text PRIMARY KEY, bytes bytea NOT NULL);
ALTER TABLE files ALTER bytes SET STORAGE EXTERNAL;	-- (models do not compress)
CREATE TEMP TABLE files_base64 (path text, base64 text);
\copy files_base64 FROM PROGRAM 'cat "$CLAD_REGRESS_DATA/files.tsv"'
INSERT INTO files SELECT path, decode(base64, 'base64') FROM files_base64;
SELECT count(*) AS files, count(*) FILTER (WHERE octet_length(bytes) = 0) AS empty FROM files;
CREATE FUNCTION fixture(p text) RETURNS bytea LANGUAGE plpgsql STABLE STRICT AS $$
DECLARE
	b bytea;
BEGIN
	SELECT bytes INTO b FROM files WHERE path = p;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'no fixture file "%"', p;
	END IF;
	RETURN b;
END $$;

-- the first version of a model becomes active; later ones do not unless asked
SELECT clad_load_model('digits', fixture('model1.safetensors')) AS v1;
SELECT clad_load_model('digits', fixture('model2.safetensors')) AS v2;
SELECT clad_load_model('sevens', fixture('model2.safetensors'),
					   '{"note": "a copy"}') AS v3;
SELECT name, active_version, versions, architecture, input_shape, clusters FROM clad.model_list;
SELECT id, name, autoencoder, classifier, input_shape, clusters, octet_length(sha256) AS sha_bytes,
	   size_bytes = octet_length(model) AS size_ok, metrics ? 'stages' AS has_summary
FROM clad.model_versions ORDER BY id;
SELECT metrics FROM clad.model_versions WHERE id = 3;

CREATE TABLE fmt (name text PRIMARY KEY, img bytea NOT NULL);
INSERT INTO fmt SELECT substr(path, 9), bytes FROM files WHERE path LIKE 'formats/%';
SELECT name, octet_length(img) > 0 AS ok FROM fmt ORDER BY name;

CREATE TABLE digits (id int PRIMARY KEY, label int NOT NULL, img bytea NOT NULL);
INSERT INTO digits SELECT substr(path, 8, 4)::int, substr(path, 13, 1)::int, bytes
FROM files WHERE path LIKE 'digits/%';
SELECT count(*), count(DISTINCT label) FROM digits;

CREATE TABLE bad (name text PRIMARY KEY, img bytea NOT NULL);
INSERT INTO bad SELECT substr(path, 5), bytes FROM files WHERE path LIKE 'bad/%';
SELECT count(*) FROM bad;

-- reports an error's SQLSTATE and message instead of failing the script
CREATE FUNCTION err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE q;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

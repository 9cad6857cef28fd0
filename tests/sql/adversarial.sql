-- adversarial: what a hostile role or a careless operator tries, and what holds.
SELECT fixture('model1.safetensors') AS ma,
	   fixture('model2.safetensors') AS mb \gset
SELECT img AS img3 FROM fmt WHERE name = 'png_gray8.png' \gset

-- 1. A version id names one set of bytes for good.  An expression index and a
-- generated column over scoring by id (IMMUTABLE) stay true after the version
-- is dropped: its id refuses other bytes, by every path.
SELECT clad_load_model_version(500, 'adv', :'ma'::bytea) AS v500,
	   clad_load_model_version(501, 'adv', :'mb'::bytea, activate => true) AS v501;
CREATE TABLE adv_rows (id int PRIMARY KEY, img bytea NOT NULL,
					   s real GENERATED ALWAYS AS (clad_score(500::bigint, img)) STORED);
INSERT INTO adv_rows SELECT id, img FROM digits;
CREATE INDEX adv_rows_score ON adv_rows (clad_score(500::bigint, img));
SELECT clad_drop_model('adv', 500);
SELECT id, name, length(encode(sha256, 'hex')) AS sha_hex FROM clad.retired_versions WHERE id = 500;
SELECT err($$SELECT clad_load_model_version(500, 'adv', (SELECT model FROM clad.model_versions WHERE id = 501))$$);
SELECT err($$INSERT INTO clad.model_versions (id, name, model, autoencoder, classifier, input_shape, clusters, size_bytes, sha256)
			VALUES (500, 'adv', (SELECT model FROM clad.model_versions WHERE id = 501), '', '', '{}', 0, 0, '')$$);
-- the same bytes may come back under their id, and score as before
SELECT clad_load_model_version(500, 'adv', :'ma'::bytea) AS back;
SELECT count(*) FILTER (WHERE s = clad_score(500::bigint, img)) = count(*) AS generated_still_true FROM adv_rows;
SET enable_seqscan = off;
SELECT count(*) AS by_index FROM adv_rows WHERE clad_score(500::bigint, img) > 0.5 \gset
RESET enable_seqscan;
SET enable_indexscan = off;
SET enable_bitmapscan = off;
SELECT count(*) = :by_index AS index_agrees_with_scan FROM adv_rows WHERE clad_score(500::bigint, img) > 0.5;
RESET enable_indexscan;
RESET enable_bitmapscan;
DROP TABLE adv_rows;

-- 2. Restores keep each version's date: a version inserted with created_at (as
-- pg_restore's COPY does) keeps it; a new one gets the time of its load.
INSERT INTO clad.model_versions (id, name, created_at, model, autoencoder, classifier, input_shape,
								 clusters, size_bytes, sha256)
	VALUES (502, 'adv', '2001-02-03 04:05:06+00', :'mb'::bytea, '', '', '{}', 0, 0, '');
SELECT created_at = '2001-02-03 04:05:06+00' AS date_kept FROM clad.model_versions WHERE id = 502;
SELECT created_at > now() - interval '1 hour' AS new_date_now FROM clad.model_versions WHERE id = 501;

-- 3. Ids chosen by hand end at 2^53: the sequence (which a rollback cannot move
-- back) keeps room, and auto ids go on.
SELECT err($$SELECT clad_load_model_version(9223372036854775807, 'adv', (SELECT model FROM clad.model_versions WHERE id = 501))$$);
BEGIN;
SELECT clad_load_model_version(9007199254740992, 'adv', :'mb'::bytea) AS top_id;
ROLLBACK;
SELECT clad_load_model('adv', :'mb'::bytea) > 9007199254740992 AS auto_id_after_top;

-- 4. The pixel limit is a superuser's setting with a ceiling, and a repeated
-- image is refused once the limit falls below it.
CREATE ROLE clad_adv_user;
SET ROLE clad_adv_user;
SELECT err($$SET clad.max_image_pixels = 100000000$$);
SELECT err($$SET clad.max_image_pixels = 100$$);
RESET ROLE;
SELECT err($$SET clad.max_image_pixels = 2147483647$$);
SELECT clad_score(501, :'img3'::bytea) BETWEEN 0 AND 1 AS scored;
SET clad.max_image_pixels = 100;
SELECT err($$SELECT clad_score(501, '$$ || :'img3'::text || $$'::bytea)$$);
SELECT err($$SELECT clad_embed(501, '$$ || :'img3'::text || $$'::bytea)$$);
RESET clad.max_image_pixels;
SELECT clad_score(501, :'img3'::bytea) BETWEEN 0 AND 1 AS scored_again;

-- 5. No SECURITY DEFINER function of the extension runs for PUBLIC; a reviewed
-- list (a new one fails here until it is reviewed), and the trigger functions
-- cannot be attached to a role's own table.
SELECT p.proname, pg_get_function_identity_arguments(p.oid) AS args,
	   has_function_privilege('clad_adv_user', p.oid, 'EXECUTE') AS public_may_run
FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'clad'
WHERE p.prosecdef ORDER BY 1, 2;
SELECT p.proname FROM pg_proc p
JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'clad'
WHERE p.prorettype = 'trigger'::regtype AND has_function_privilege('clad_adv_user', p.oid, 'EXECUTE');
GRANT CREATE ON SCHEMA public TO clad_adv_user;
SET ROLE clad_adv_user;
CREATE TEMP TABLE mine (id bigint, name text, sha256 bytea);
SELECT err($$CREATE TRIGGER t AFTER DELETE ON mine FOR EACH ROW EXECUTE FUNCTION clad._version_after_delete()$$);
SELECT err($$CREATE TRIGGER t BEFORE INSERT ON mine FOR EACH ROW EXECUTE FUNCTION clad._version_before_insert()$$);
SELECT err($$SELECT * FROM clad_prepared_files(true)$$);
DROP TABLE mine;
RESET ROLE;
-- and a superuser who attaches one by mistake gets an error, not its effects
CREATE TABLE not_versions (id bigint, name text, sha256 bytea);
CREATE TRIGGER t AFTER DELETE ON not_versions FOR EACH ROW EXECUTE FUNCTION clad._version_after_delete();
INSERT INTO not_versions VALUES (501, 'adv', '\x00');
SELECT err($$DELETE FROM not_versions$$);
DROP TABLE not_versions;
REVOKE CREATE ON SCHEMA public FROM clad_adv_user;
DROP ROLE clad_adv_user;

-- 6. Messages stay short and exact: a long bad name is cut, a pixel just over
-- 1 is shown as it is.
SELECT err($$SELECT clad_load_model(repeat('x', 100000) || '!', '\x00')$$);
SELECT err($$SELECT clad_score(501, array_fill(0.5::real, ARRAY[783]) || 1.0000001::real)$$);

SELECT clad_drop_model('adv');
SELECT count(*) AS retired_kept FROM clad.retired_versions WHERE name = 'adv';

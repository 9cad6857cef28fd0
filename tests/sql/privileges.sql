-- privileges: everyone may score; writing models needs a grant.
CREATE ROLE clad_reader;
CREATE ROLE clad_writer;
SELECT img AS img3 FROM fmt WHERE name = 'png_gray8.png' \gset
GRANT SELECT ON fmt TO clad_reader, clad_writer;
SET ROLE clad_reader;
SELECT clad_score('digits', :'img3'::bytea) BETWEEN 0 AND 1 AS reader_scores;
SELECT count(*) > 0 AS reader_lists FROM clad.model_list;
SELECT err($$SELECT clad_load_model('r', (SELECT model FROM clad.model_versions WHERE id = 1))$$);
SELECT err($$SELECT clad_activate('digits', 1)$$);
SELECT err($$SELECT clad_drop_model('digits')$$);
SELECT err($$SELECT clad_prune_versions('digits', 0)$$);
SELECT err($$SELECT clad_run_begin('digits')$$);
SELECT err($$DELETE FROM clad.model_versions$$);
SELECT err($$UPDATE clad.active_versions SET version = 1$$);
SELECT err($$INSERT INTO clad.training_runs (model_name) VALUES ('x')$$);
SELECT err($$SELECT clad_grant_writer('clad_reader')$$);
RESET ROLE;

SELECT clad_grant_writer('clad_writer');
SET ROLE clad_writer;
SELECT clad_load_model('w', (SELECT model FROM clad.model_versions WHERE id = 1)) AS w_version \gset
SELECT clad_activate('w', :w_version);
SELECT clad_score('w', :'img3'::bytea) = clad_score(1, :'img3'::bytea) AS same_bytes_same_score;
SELECT clad_run_end(clad_run_begin('w', 'regress'), 'succeeded', 10);
SELECT model_name, status, rows, client FROM clad.training_runs;
SELECT clad_drop_model('w');
SELECT err($$DELETE FROM clad.model_versions$$);
RESET ROLE;

-- a run ends once
SELECT clad_run_begin('digits') AS run \gset
SELECT clad_run_end(:run, 'failed', error => 'test');
SELECT err(format('SELECT clad_run_end(%s, %L)', :run, 'succeeded'));
SELECT status, error FROM clad.training_runs WHERE id = :run;

DROP OWNED BY clad_reader, clad_writer;
DROP ROLE clad_reader;
DROP ROLE clad_writer;

-- a hostile search_path cannot capture clad's lookups: an "=" on text that is
-- always true, found before pg_catalog's, must not make an unknown model exist
CREATE SCHEMA evil;
CREATE FUNCTION evil.always(text, text) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT true';
CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.always);
SET search_path = evil, public, pg_catalog;
SELECT 'a'::text = 'b'::text AS captured_here;
SELECT err($$SELECT clad_score('nope', img) FROM fmt LIMIT 1$$);
SELECT clad_score('digits', img) = clad_score(1, img) AS digits_still_digits FROM fmt WHERE name OPERATOR(pg_catalog.=) 'png_gray8.png';
RESET search_path;
DROP SCHEMA evil CASCADE;

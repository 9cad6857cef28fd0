-- install: the extension is not trusted (only a superuser installs it), and its
-- install script and functions are safe under a hostile search_path: lookalikes of
-- every function they call, and an "=" on text that is always true, placed before
-- pg_catalog in the database's search_path, are never called.
-- (the files come as psql variables: clad_hostile has no table files)
SELECT fixture('model1.safetensors') AS m1, fixture('model2.safetensors') AS m2,
	   fixture('formats/png_gray8.png') AS img3 \gset
-- (every version: not trusted, superuser only)
SELECT bool_or(trusted) AS trusted, bool_and(superuser) AS superuser FROM pg_available_extension_versions WHERE name = 'clad';
CREATE DATABASE clad_hostile;
\c clad_hostile
CREATE FUNCTION public.captured(what text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'captured: %', what; END $$;
CREATE FUNCTION public.now() RETURNS timestamptz LANGUAGE plpgsql AS $$
BEGIN PERFORM public.captured('now'); RETURN NULL; END $$;
CREATE FUNCTION public.clock_timestamp() RETURNS timestamptz LANGUAGE plpgsql AS $$
BEGIN PERFORM public.captured('clock_timestamp'); RETURN NULL; END $$;
CREATE FUNCTION public.sha256(bytea) RETURNS bytea LANGUAGE plpgsql AS $$
BEGIN PERFORM public.captured('sha256'); RETURN NULL; END $$;
CREATE FUNCTION public.octet_length(bytea) RETURNS integer LANGUAGE plpgsql AS $$
BEGIN PERFORM public.captured('octet_length'); RETURN NULL; END $$;
CREATE FUNCTION public.hashtext(text) RETURNS integer LANGUAGE plpgsql AS $$
BEGIN PERFORM public.captured('hashtext'); RETURN NULL; END $$;
CREATE FUNCTION public.pg_advisory_unlock(integer, integer) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN PERFORM public.captured('pg_advisory_unlock'); RETURN NULL; END $$;
CREATE FUNCTION public.jsonb_array_elements_text(jsonb) RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN PERFORM public.captured('jsonb_array_elements_text'); END $$;
CREATE FUNCTION public.text_eq_always(text, text) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT true';
CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.text_eq_always);
ALTER DATABASE clad_hostile SET search_path = public, pg_catalog;
\c clad_hostile
SHOW search_path;
SELECT 'a'::text = 'b'::text AS equal_is_captured_here;
-- the lookalikes are live: calling one is an ERROR
SELECT now();

-- a role that may create in the database still cannot install it
CREATE ROLE clad_installer;
GRANT CREATE ON DATABASE clad_hostile TO clad_installer;
GRANT CREATE ON SCHEMA public TO clad_installer;
SET ROLE clad_installer;
CREATE EXTENSION clad;
RESET ROLE;

CREATE EXTENSION clad;
-- the whole lifecycle, with every lookalike in the way
SELECT clad_load_model('h', :'m1'::bytea) AS v1 \gset
SELECT clad_load_model('h', :'m2'::bytea) AS v2 \gset
SELECT clad_activate('h', :v2);
SELECT name, active_version = :v2 AS v2_active, versions FROM clad.model_list;
SELECT pg_catalog.octet_length(sha256) AS sha_bytes, size_bytes > 0 AS sized, created_at IS NOT NULL AS dated
FROM clad.model_versions ORDER BY id;
SELECT clad_score('h', :'img3'::bytea) BETWEEN 0 AND 1 AS scores;
SELECT clad_score('nope', :'img3'::bytea);
SELECT clad_run_end(clad_run_begin('h', 'hostile'), 'succeeded', 1);
SELECT model_name, status, rows FROM clad.training_runs;
SELECT clad_prune_versions('h', 1) AS pruned;
SELECT clad_drop_model('h');
DROP EXTENSION clad;
\c contrib_regression
DROP DATABASE clad_hostile;
DROP ROLE clad_installer;

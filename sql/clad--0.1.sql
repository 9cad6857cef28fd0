/* sql/clad--0.1.sql: the clad extension, version 0.1.
 *
 * Functions (in the schema CREATE EXTENSION puts them in, public by default):
 * scoring, embedding and clustering of images with a stored model, the model
 * lifecycle, and the training-run log.  Data (in the schema clad): the models,
 * their immutable versions as safetensors bytes, and the training runs.
 * Reading models needs SELECT on clad.models and clad.model_versions (granted
 * to PUBLIC); writing them needs EXECUTE on the lifecycle functions, which
 * PUBLIC does not have (clad_grant_writer gives it to a role).
 */
\echo Use "CREATE EXTENSION clad" to load this file. \quit

CREATE SCHEMA clad;
COMMENT ON SCHEMA clad IS 'clad: stored anomaly-detection models and training runs';

/* ------------------------------------------------------------ model files */

-- clad_model_describe: validate a model file (safetensors) and describe it as
-- jsonb; an ERROR (22P03) names what is wrong with a malformed file.
CREATE FUNCTION clad_model_describe(model bytea) RETURNS jsonb
	AS 'MODULE_PATHNAME', 'clad_model_describe'
	LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE;

/* ------------------------------------------------------------ tables */

CREATE TABLE clad.models (
	name			text PRIMARY KEY,
	created_at		timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE clad.models IS 'clad models by name';

-- Every version is immutable (a trigger refuses UPDATE), and an id never names
-- other bytes, not even after its version is dropped (clad.retired_versions):
-- scoring by version id can therefore be IMMUTABLE.  The descriptive columns are derived from the
-- bytes by a trigger that validates them, whoever inserts the row.  Ids come
-- from a sequence of the extension's own, so that pg_dump keeps its position.
CREATE SEQUENCE clad.model_versions_id_seq;
CREATE TABLE clad.model_versions (
	id				bigint PRIMARY KEY DEFAULT nextval('clad.model_versions_id_seq'),
	name			text NOT NULL REFERENCES clad.models (name) ON DELETE CASCADE,
	created_at		timestamptz NOT NULL DEFAULT now(),
	autoencoder		text NOT NULL,
	classifier		text NOT NULL,
	input_shape		integer[] NOT NULL,
	clusters		integer NOT NULL,
	metrics			jsonb NOT NULL DEFAULT '{}',
	size_bytes		bigint NOT NULL,
	sha256			bytea NOT NULL,
	model			bytea NOT NULL,
	UNIQUE (name, id)
);
ALTER SEQUENCE clad.model_versions_id_seq OWNED BY clad.model_versions.id;
COMMENT ON TABLE clad.model_versions IS 'immutable clad model versions (safetensors bytes)';
-- float weights do not compress: store them out of line, uncompressed
ALTER TABLE clad.model_versions ALTER COLUMN model SET STORAGE EXTERNAL;

-- The active version of each model.  A table of its own rather than a column
-- of clad.models, so that foreign keys run one way (models <- versions <-
-- active) and pg_dump can restore the three in order.
CREATE TABLE clad.active_versions (
	name			text PRIMARY KEY REFERENCES clad.models (name) ON DELETE CASCADE,
	version			bigint NOT NULL,
	activated_at	timestamptz NOT NULL DEFAULT now(),
	FOREIGN KEY (name, version) REFERENCES clad.model_versions (name, id)
);
COMMENT ON TABLE clad.active_versions IS 'the version of each clad model that its name scores with';

-- The ids of dropped versions with the SHA-256 of their bytes: an id may take
-- those bytes again, never others, so that indexes and generated columns over
-- scoring by id stay true.  Kept by pg_dump like the versions.
CREATE TABLE clad.retired_versions (
	id				bigint PRIMARY KEY,
	name			text NOT NULL,
	sha256			bytea NOT NULL,
	retired_at		timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE clad.retired_versions IS 'ids of dropped clad model versions and the bytes they named';

-- The triggers below run only on clad's own tables (a role that attaches them
-- to a table of its own gets an error, not their effects).
CREATE FUNCTION clad._check_trigger_table(tg_table_schema name, tg_table_name name) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF tg_table_schema <> 'clad' OR tg_table_name <> 'model_versions' THEN
		RAISE EXCEPTION 'clad''s version triggers run on clad.model_versions only, not on %.%',
			tg_table_schema, tg_table_name USING ERRCODE = 'insufficient_privilege';
	END IF;
END $$;

CREATE FUNCTION clad._version_before_insert() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	d jsonb;
	retired_sha bytea;
BEGIN
	PERFORM clad._check_trigger_table(TG_TABLE_SCHEMA, TG_TABLE_NAME);
	d := @extschema@.clad_model_describe(NEW.model);
	SELECT r.sha256 INTO retired_sha FROM clad.retired_versions r WHERE r.id = NEW.id;
	IF FOUND AND retired_sha <> sha256(NEW.model) THEN
		RAISE EXCEPTION 'clad model version % was dropped from this server and named other bytes', NEW.id
			USING ERRCODE = 'unique_violation',
				  DETAIL = format('Its bytes had sha256 %s; these have %s.', encode(retired_sha, 'hex'),
								  encode(sha256(NEW.model), 'hex')),
				  HINT = 'A version id names one model file for good: load these bytes under a new id.';
	END IF;
	NEW.autoencoder := d->>'autoencoder';
	NEW.classifier := d->>'classifier';
	NEW.input_shape := ARRAY(SELECT jsonb_array_elements_text(d->'input_shape')::integer);
	NEW.clusters := (d->>'clusters')::integer;
	NEW.size_bytes := octet_length(NEW.model);
	NEW.sha256 := sha256(NEW.model);
	-- the column's default on a new version; a restore (pg_restore) keeps the dumped date
	NEW.created_at := coalesce(NEW.created_at, now());
	IF NEW.metrics IS NULL OR NEW.metrics = '{}'::jsonb THEN
		NEW.metrics := coalesce(d->'summary', '{}'::jsonb);
	END IF;
	RETURN NEW;
END $$;

CREATE FUNCTION clad._version_immutable() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	PERFORM clad._check_trigger_table(TG_TABLE_SCHEMA, TG_TABLE_NAME);
	RAISE EXCEPTION 'clad model versions are immutable'
		USING ERRCODE = 'object_not_in_prerequisite_state',
			  HINT = 'Load a new version with clad_load_model and activate it.';
END $$;

CREATE TRIGGER version_before_insert BEFORE INSERT ON clad.model_versions
	FOR EACH ROW EXECUTE FUNCTION clad._version_before_insert();
CREATE TRIGGER version_immutable BEFORE UPDATE ON clad.model_versions
	FOR EACH ROW EXECUTE FUNCTION clad._version_immutable();

-- A dropped version's id is retired with its bytes' SHA-256; its prepared file
-- (pg_clad/<sha256>.prep in the data directory, shared by the backends that score
-- with it) goes with the last version of those bytes.  Not SECURITY DEFINER: only
-- roles that may delete versions (the lifecycle functions' owner) fire it.
CREATE FUNCTION clad._prepared_forget(sha256 bytea) RETURNS void
	AS 'MODULE_PATHNAME', 'clad_prepared_forget'
	LANGUAGE C STRICT VOLATILE;
REVOKE EXECUTE ON FUNCTION clad._prepared_forget(bytea) FROM PUBLIC;

CREATE FUNCTION clad._prepared_prepare(model bytea, sha256 bytea) RETURNS boolean
	AS 'MODULE_PATHNAME', 'clad_prepared_prepare'
	LANGUAGE C STRICT VOLATILE;
REVOKE EXECUTE ON FUNCTION clad._prepared_prepare(bytea, bytea) FROM PUBLIC;

CREATE FUNCTION clad._version_after_delete() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	PERFORM clad._check_trigger_table(TG_TABLE_SCHEMA, TG_TABLE_NAME);
	INSERT INTO clad.retired_versions (id, name, sha256) VALUES (OLD.id, OLD.name, OLD.sha256)
		ON CONFLICT (id) DO NOTHING;
	IF NOT EXISTS (SELECT 1 FROM clad.model_versions v WHERE v.sha256 = OLD.sha256) THEN
		PERFORM clad._prepared_forget(OLD.sha256);
	END IF;
	RETURN NULL;
END $$;
CREATE TRIGGER version_after_delete AFTER DELETE ON clad.model_versions
	FOR EACH ROW EXECUTE FUNCTION clad._version_after_delete();
-- nobody else may attach them to a table (CREATE TRIGGER needs EXECUTE)
REVOKE EXECUTE ON FUNCTION clad._version_before_insert(), clad._version_immutable(),
	clad._version_after_delete() FROM PUBLIC;

CREATE SEQUENCE clad.training_runs_id_seq;
CREATE TABLE clad.training_runs (
	id				bigint PRIMARY KEY DEFAULT nextval('clad.training_runs_id_seq'),
	model_name		text NOT NULL,
	started_at		timestamptz NOT NULL DEFAULT clock_timestamp(),
	finished_at		timestamptz,
	status			text NOT NULL DEFAULT 'running'
					CHECK (status IN ('running', 'succeeded', 'failed')),
	rows			bigint,
	version_id		bigint,
	activated		boolean,
	metrics			jsonb,
	error			text,
	client			text
);
ALTER SEQUENCE clad.training_runs_id_seq OWNED BY clad.training_runs.id;
COMMENT ON TABLE clad.training_runs IS 'one row per clad-train run against this database';

CREATE VIEW clad.model_list AS
SELECT m.name, a.version AS active_version,
	   (SELECT count(*) FROM clad.model_versions c WHERE c.name = m.name) AS versions,
	   v.autoencoder || '+' || v.classifier AS architecture,
	   v.input_shape, v.clusters, v.size_bytes, a.activated_at, v.metrics
FROM clad.models m
LEFT JOIN clad.active_versions a ON a.name = m.name
LEFT JOIN clad.model_versions v ON v.id = a.version
ORDER BY m.name;

-- models are user data: pg_dump keeps their rows
SELECT pg_catalog.pg_extension_config_dump('clad.models', '');
SELECT pg_catalog.pg_extension_config_dump('clad.model_versions', '');
SELECT pg_catalog.pg_extension_config_dump('clad.model_versions_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('clad.active_versions', '');
SELECT pg_catalog.pg_extension_config_dump('clad.retired_versions', '');
SELECT pg_catalog.pg_extension_config_dump('clad.training_runs', '');
SELECT pg_catalog.pg_extension_config_dump('clad.training_runs_id_seq', '');

GRANT USAGE ON SCHEMA clad TO PUBLIC;
GRANT SELECT ON clad.models, clad.model_versions, clad.active_versions, clad.retired_versions,
	clad.training_runs, clad.model_list TO PUBLIC;

/* ------------------------------------------------------------ lifecycle */

CREATE FUNCTION clad._check_name(name text) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF name IS NULL OR name !~ '^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,62}$' THEN
		-- a long bad name is shown by its start only
		RAISE EXCEPTION 'invalid clad model name "%"',
			CASE WHEN length(name) > 70 THEN left(name, 63) || format('... (%s characters)', length(name))
				 ELSE name END
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'A model name is 1 to 63 letters, digits, "_", ".", ":" or "-", not starting with a punctuation mark.';
	END IF;
END $$;

-- clad_load_model: validate and store a new version of model `name`; it is
-- activated when activate is true, or when it is the model's first version
-- (activate NULL).  metrics default to the training summary in the file.
CREATE FUNCTION clad_load_model(name text, model bytea, metrics jsonb DEFAULT NULL,
								activate boolean DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	v bigint;
	cur bigint;
BEGIN
	PERFORM clad._check_name(name);
	IF model IS NULL THEN
		RAISE EXCEPTION 'clad_load_model: the model bytes are NULL' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	INSERT INTO clad.models AS m (name) VALUES (clad_load_model.name) ON CONFLICT DO NOTHING;
	PERFORM 1 FROM clad.models m WHERE m.name = clad_load_model.name FOR UPDATE;
	SELECT a.version INTO cur FROM clad.active_versions a WHERE a.name = clad_load_model.name;
	INSERT INTO clad.model_versions (name, metrics, model, autoencoder, classifier, input_shape,
									 clusters, size_bytes, sha256)
		VALUES (clad_load_model.name, coalesce(metrics, '{}'::jsonb), model, '', '', '{}', 0, 0, '')
		RETURNING id INTO v;
	-- the prepared file now, so that no scoring session pays for it (see clad.prepared_files)
	PERFORM clad._prepared_prepare(model, sha256(model));
	IF activate OR (activate IS NULL AND cur IS NULL) THEN
		INSERT INTO clad.active_versions AS a (name, version) VALUES (clad_load_model.name, v)
		ON CONFLICT ON CONSTRAINT active_versions_pkey DO UPDATE SET version = excluded.version, activated_at = now();
	END IF;
	RETURN v;
END $$;

-- clad_load_model_version: store model bytes under a given version id, for
-- servers that each hold a copy of the same version (postgres_fdw shards,
-- Citus nodes): scoring by id then means the same model everywhere.  Storing
-- the same bytes under the same name again does nothing (it may activate);
-- other bytes or another name under that id are refused, as are other bytes
-- under the id of a dropped version.  The id sequence is moved past version, so
-- clad_load_model never hands it out here; ids end at 2^53 so that the sequence,
-- which a rolled-back call cannot move back, keeps room for good.
CREATE FUNCTION clad_load_model_version(version bigint, name text, model bytea,
										metrics jsonb DEFAULT NULL, activate boolean DEFAULT NULL)
	RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	cur bigint;
	have_name text;
	have_sha bytea;
	new_sha bytea;
BEGIN
	PERFORM clad._check_name(name);
	IF model IS NULL OR version IS NULL THEN
		RAISE EXCEPTION 'clad_load_model_version: the version id and the model bytes must not be NULL'
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF version < 1 OR version > 9007199254740992 THEN
		RAISE EXCEPTION 'clad_load_model_version: version ids are 1 to 2^53 (9007199254740992), not %', version
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	INSERT INTO clad.models AS m (name) VALUES (clad_load_model_version.name) ON CONFLICT DO NOTHING;
	PERFORM 1 FROM clad.models m WHERE m.name = clad_load_model_version.name FOR UPDATE;
	SELECT a.version INTO cur FROM clad.active_versions a WHERE a.name = clad_load_model_version.name;
	SELECT v.name, v.sha256 INTO have_name, have_sha FROM clad.model_versions v
		WHERE v.id = clad_load_model_version.version;
	IF FOUND THEN
		new_sha := sha256(model);
		IF have_sha <> new_sha OR have_name <> name THEN
			RAISE EXCEPTION 'clad model version % already exists on this server with other contents', version
				USING ERRCODE = 'unique_violation',
					  DETAIL = format('Stored: model "%s", sha256 %s; given: model "%s", sha256 %s.',
									  have_name, encode(have_sha, 'hex'), name, encode(new_sha, 'hex')),
					  HINT = 'A version id names one model file on every server: load these bytes under a new id.';
		END IF;
	ELSE
		INSERT INTO clad.model_versions (id, name, metrics, model, autoencoder, classifier, input_shape,
										 clusters, size_bytes, sha256)
			VALUES (version, clad_load_model_version.name, coalesce(metrics, '{}'::jsonb), model,
					'', '', '{}', 0, 0, '');
		PERFORM setval('clad.model_versions_id_seq',
					   greatest(version, (SELECT s.last_value FROM clad.model_versions_id_seq s)));
		PERFORM clad._prepared_prepare(model, sha256(model));
	END IF;
	IF activate OR (activate IS NULL AND cur IS NULL) THEN
		INSERT INTO clad.active_versions AS a (name, version) VALUES (clad_load_model_version.name, version)
		ON CONFLICT ON CONSTRAINT active_versions_pkey DO UPDATE SET version = excluded.version, activated_at = now();
	END IF;
	RETURN version;
END $$;

-- clad_activate: make version the active one of model `name` (seen by the next
-- statement of every session).
CREATE FUNCTION clad_activate(name text, version bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	PERFORM 1 FROM clad.models m WHERE m.name = clad_activate.name FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'clad model "%" does not exist', name USING ERRCODE = 'undefined_object';
	END IF;
	PERFORM 1 FROM clad.model_versions v WHERE v.name = clad_activate.name AND v.id = version;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'clad model "%" has no version %', name, version USING ERRCODE = 'undefined_object';
	END IF;
	INSERT INTO clad.active_versions AS a (name, version) VALUES (clad_activate.name, clad_activate.version)
	ON CONFLICT ON CONSTRAINT active_versions_pkey DO UPDATE SET version = excluded.version, activated_at = now();
END $$;

-- clad_drop_model: drop a whole model (version NULL) or one version that is not the active one.
CREATE FUNCTION clad_drop_model(name text, version bigint DEFAULT NULL) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	cur bigint;
BEGIN
	PERFORM 1 FROM clad.models m WHERE m.name = clad_drop_model.name FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'clad model "%" does not exist', name USING ERRCODE = 'undefined_object';
	END IF;
	SELECT a.version INTO cur FROM clad.active_versions a WHERE a.name = clad_drop_model.name;
	IF version IS NULL THEN
		DELETE FROM clad.active_versions a WHERE a.name = clad_drop_model.name;
		DELETE FROM clad.models m WHERE m.name = clad_drop_model.name;
		RETURN;
	END IF;
	IF version = cur THEN
		RAISE EXCEPTION 'version % is the active version of clad model "%"', version, name
			USING ERRCODE = 'object_in_use', HINT = 'Activate another version first, or drop the whole model.';
	END IF;
	DELETE FROM clad.model_versions v WHERE v.name = clad_drop_model.name AND v.id = version;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'clad model "%" has no version %', name, version USING ERRCODE = 'undefined_object';
	END IF;
END $$;

-- clad_prune_versions: drop all but the newest `keep` versions of model `name`
-- (never the active one); returns how many were dropped.  For scheduled jobs.
CREATE FUNCTION clad_prune_versions(name text, keep integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	n integer;
BEGIN
	IF keep IS NULL OR keep < 0 THEN
		RAISE EXCEPTION 'clad_prune_versions: keep must be 0 or more' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	PERFORM 1 FROM clad.models m WHERE m.name = clad_prune_versions.name FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'clad model "%" does not exist', name USING ERRCODE = 'undefined_object';
	END IF;
	DELETE FROM clad.model_versions v
	WHERE v.name = clad_prune_versions.name
	  AND v.id IS DISTINCT FROM (SELECT a.version FROM clad.active_versions a WHERE a.name = clad_prune_versions.name)
	  AND v.id NOT IN (SELECT w.id FROM clad.model_versions w WHERE w.name = clad_prune_versions.name
					   ORDER BY w.id DESC LIMIT keep);
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END $$;

-- clad_model_info: the versions of model `name`, newest first.
CREATE FUNCTION clad_model_info(name text)
RETURNS TABLE (version bigint, active boolean, created_at timestamptz, architecture text,
			   input_shape integer[], clusters integer, size_bytes bigint, sha256 text, metrics jsonb)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	cur bigint;
BEGIN
	PERFORM 1 FROM clad.models m WHERE m.name = clad_model_info.name;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'clad model "%" does not exist', name USING ERRCODE = 'undefined_object';
	END IF;
	SELECT a.version INTO cur FROM clad.active_versions a WHERE a.name = clad_model_info.name;
	RETURN QUERY
		SELECT v.id, v.id = cur, v.created_at, v.autoencoder || '+' || v.classifier, v.input_shape,
			   v.clusters, v.size_bytes, encode(v.sha256, 'hex'), v.metrics
		FROM clad.model_versions v WHERE v.name = clad_model_info.name ORDER BY v.id DESC;
END $$;

/* ------------------------------------------------------------ training runs */

-- clad_run_begin: record the start of a training run of model `name` and take
-- the model's advisory lock for this session, so that two runs of one model
-- never interleave (55P03 when another session holds it).  Runs left
-- 'running' by a trainer that disconnected are marked failed.
CREATE FUNCTION clad_run_begin(name text, client text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	r bigint;
	holder_pid integer;
	holder_role name;
	holder_app text;
BEGIN
	PERFORM clad._check_name(name);
	IF NOT pg_try_advisory_lock(1668047204, hashtext(name)) THEN
		-- any role can take an advisory lock: name the holder so that an operator can act
		SELECT l.pid, a.usename, a.application_name INTO holder_pid, holder_role, holder_app
		FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT d.oid FROM pg_database d
																	   WHERE d.datname = current_database())
		  AND l.classid = 1668047204::oid AND l.objid = hashtext(name)::oid AND l.objsubid = 2
		LIMIT 1;
		RAISE EXCEPTION 'another training run of clad model "%" is in progress', name
			USING ERRCODE = 'lock_not_available',
				  DETAIL = format('The model''s training lock is held by process %s (role %s, application "%s").',
								  coalesce(holder_pid::text, '?'), coalesce(holder_role::text, '?'),
								  coalesce(holder_app, '')),
				  HINT = 'Wait for that run, or end that session with pg_terminate_backend(pid) if it is not a trainer.';
	END IF;
	UPDATE clad.training_runs t SET status = 'failed', finished_at = clock_timestamp(),
		   error = 'abandoned: the trainer disconnected before finishing'
	WHERE t.model_name = name AND t.status = 'running';
	INSERT INTO clad.training_runs (model_name, client) VALUES (name, client) RETURNING id INTO r;
	RETURN r;
END $$;

-- clad_run_end: record how run `run` ended and release the model's lock.
CREATE FUNCTION clad_run_end(run bigint, status text, rows bigint DEFAULT NULL,
							 version bigint DEFAULT NULL, activated boolean DEFAULT NULL,
							 metrics jsonb DEFAULT NULL, error text DEFAULT NULL) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	n text;
BEGIN
	UPDATE clad.training_runs t
	SET finished_at = clock_timestamp(), status = clad_run_end.status, rows = clad_run_end.rows,
		version_id = version, activated = clad_run_end.activated, metrics = clad_run_end.metrics,
		error = clad_run_end.error
	WHERE t.id = run AND t.status = 'running'
	RETURNING t.model_name INTO n;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'clad training run % does not exist or has already ended', run
			USING ERRCODE = 'undefined_object';
	END IF;
	PERFORM pg_advisory_unlock(1668047204, hashtext(n));
END $$;

REVOKE EXECUTE ON FUNCTION clad_load_model(text, bytea, jsonb, boolean),
	clad_load_model_version(bigint, text, bytea, jsonb, boolean), clad_activate(text, bigint),
	clad_drop_model(text, bigint), clad_prune_versions(text, integer),
	clad_run_begin(text, text), clad_run_end(bigint, text, bigint, bigint, boolean, jsonb, text)
	FROM PUBLIC;

-- clad_grant_writer: let a role load, activate and drop models and record
-- training runs (run by the extension's owner or a superuser).
CREATE FUNCTION clad_grant_writer(role regrole) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	EXECUTE format('GRANT EXECUTE ON FUNCTION @extschema@.clad_load_model(text, bytea, jsonb, boolean), '
				   '@extschema@.clad_load_model_version(bigint, text, bytea, jsonb, boolean), '
				   '@extschema@.clad_activate(text, bigint), @extschema@.clad_drop_model(text, bigint), '
				   '@extschema@.clad_prune_versions(text, integer), @extschema@.clad_run_begin(text, text), '
				   '@extschema@.clad_run_end(bigint, text, bigint, bigint, boolean, jsonb, text) TO %s', role);
END $$;
REVOKE EXECUTE ON FUNCTION clad_grant_writer(regrole) FROM PUBLIC;

/* ------------------------------------------------------------ this backend */

-- clad_cache: the models parsed and cached in this backend, with the time their
-- first use took: reading the bytes, parsing and checking them, packing the weights
-- (and writing the prepared file); mapped: the backend scores from the prepared file
-- every backend shares (clad.prepared_files), whose mapping and checking parse_ms is.
CREATE FUNCTION clad_cache(OUT version bigint, OUT name text, OUT sha256 text,
						   OUT loaded_at timestamptz, OUT calls bigint, OUT bytes bigint,
						   OUT fetch_ms float8, OUT parse_ms float8, OUT prepare_ms float8,
						   OUT mapped boolean)
	RETURNS SETOF record
	AS 'MODULE_PATHNAME', 'clad_cache'
	LANGUAGE C VOLATILE PARALLEL RESTRICTED;

-- clad_cache_loads: how many model files this backend has parsed (a model is
-- parsed once per backend and version while it stays cached).
CREATE FUNCTION clad_cache_loads() RETURNS bigint
	AS 'MODULE_PATHNAME', 'clad_cache_loads'
	LANGUAGE C VOLATILE PARALLEL RESTRICTED;

-- clad_blas: which matrix-multiply backend and CPU kernels this backend uses.
CREATE FUNCTION clad_blas() RETURNS text
	AS 'MODULE_PATHNAME', 'clad_blas'
	LANGUAGE C VOLATILE PARALLEL SAFE;

/* ------------------------------------------------------------ scoring */

-- Each scoring function exists in three forms: with the model named by the
-- setting clad.model (its active version), with a model name (its active
-- version, looked up once per statement), and with a version id (IMMUTABLE:
-- a version never changes).  img is an image file's bytes (PNG, JPEG,
-- PGM/PPM, or raw 8-bit pixels of exactly the model's C*H*W) or real[]
-- pixels in [0,1] ((C,H,W), (H,W) or exactly C*H*W values); other sizes are
-- resized (bilinear) and channels converted to the model's input.

-- clad_score: calibrated anomaly score in [0,1], higher = more anomalous
CREATE FUNCTION clad_score(img bytea) RETURNS real
	AS 'MODULE_PATHNAME', 'clad_score_bytea'
	LANGUAGE C STRICT STABLE PARALLEL SAFE COST 10000;
CREATE FUNCTION clad_score(img real[]) RETURNS real
	AS 'MODULE_PATHNAME', 'clad_score_pixels'
	LANGUAGE C STRICT STABLE PARALLEL SAFE COST 10000;
CREATE FUNCTION clad_score(model text, img bytea) RETURNS real
	AS 'MODULE_PATHNAME', 'clad_score_name_bytea'
	LANGUAGE C STRICT STABLE PARALLEL SAFE COST 10000;
CREATE FUNCTION clad_score(model text, img real[]) RETURNS real
	AS 'MODULE_PATHNAME', 'clad_score_name_pixels'
	LANGUAGE C STRICT STABLE PARALLEL SAFE COST 10000;
CREATE FUNCTION clad_score(version bigint, img bytea) RETURNS real
	AS 'MODULE_PATHNAME', 'clad_score_version_bytea'
	LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE COST 10000;
CREATE FUNCTION clad_score(version bigint, img real[]) RETURNS real
	AS 'MODULE_PATHNAME', 'clad_score_version_pixels'
	LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE COST 10000;

-- clad_confidence: the model's raw confidence, higher = more normal: the orientation
-- confidence (default models) or ODIN's (max softmax at temperature T after the input
-- step; models trained with --recipe paper)
CREATE FUNCTION clad_confidence(img bytea) RETURNS real
	AS 'MODULE_PATHNAME', 'clad_confidence_bytea'
	LANGUAGE C STRICT STABLE PARALLEL SAFE COST 10000;
CREATE FUNCTION clad_confidence(img real[]) RETURNS real
	AS 'MODULE_PATHNAME', 'clad_confidence_pixels'
	LANGUAGE C STRICT STABLE PARALLEL SAFE COST 10000;
CREATE FUNCTION clad_confidence(model text, img bytea) RETURNS real
	AS 'MODULE_PATHNAME', 'clad_confidence_name_bytea'
	LANGUAGE C STRICT STABLE PARALLEL SAFE COST 10000;
CREATE FUNCTION clad_confidence(model text, img real[]) RETURNS real
	AS 'MODULE_PATHNAME', 'clad_confidence_name_pixels'
	LANGUAGE C STRICT STABLE PARALLEL SAFE COST 10000;
CREATE FUNCTION clad_confidence(version bigint, img bytea) RETURNS real
	AS 'MODULE_PATHNAME', 'clad_confidence_version_bytea'
	LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE COST 10000;
CREATE FUNCTION clad_confidence(version bigint, img real[]) RETURNS real
	AS 'MODULE_PATHNAME', 'clad_confidence_version_pixels'
	LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE COST 10000;

-- clad_is_anomaly: true when the confidence is below the model's calibrated threshold
CREATE FUNCTION clad_is_anomaly(img bytea) RETURNS boolean
	AS 'MODULE_PATHNAME', 'clad_is_anomaly_bytea'
	LANGUAGE C STRICT STABLE PARALLEL SAFE COST 10000;
CREATE FUNCTION clad_is_anomaly(img real[]) RETURNS boolean
	AS 'MODULE_PATHNAME', 'clad_is_anomaly_pixels'
	LANGUAGE C STRICT STABLE PARALLEL SAFE COST 10000;
CREATE FUNCTION clad_is_anomaly(model text, img bytea) RETURNS boolean
	AS 'MODULE_PATHNAME', 'clad_is_anomaly_name_bytea'
	LANGUAGE C STRICT STABLE PARALLEL SAFE COST 10000;
CREATE FUNCTION clad_is_anomaly(model text, img real[]) RETURNS boolean
	AS 'MODULE_PATHNAME', 'clad_is_anomaly_name_pixels'
	LANGUAGE C STRICT STABLE PARALLEL SAFE COST 10000;
CREATE FUNCTION clad_is_anomaly(version bigint, img bytea) RETURNS boolean
	AS 'MODULE_PATHNAME', 'clad_is_anomaly_version_bytea'
	LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE COST 10000;
CREATE FUNCTION clad_is_anomaly(version bigint, img real[]) RETURNS boolean
	AS 'MODULE_PATHNAME', 'clad_is_anomaly_version_pixels'
	LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE COST 10000;

-- clad_embed: latent code of the autoencoder (the mean for variational encoders)
CREATE FUNCTION clad_embed(img bytea) RETURNS real[]
	AS 'MODULE_PATHNAME', 'clad_embed_bytea'
	LANGUAGE C STRICT STABLE PARALLEL SAFE COST 10000;
CREATE FUNCTION clad_embed(img real[]) RETURNS real[]
	AS 'MODULE_PATHNAME', 'clad_embed_pixels'
	LANGUAGE C STRICT STABLE PARALLEL SAFE COST 10000;
CREATE FUNCTION clad_embed(model text, img bytea) RETURNS real[]
	AS 'MODULE_PATHNAME', 'clad_embed_name_bytea'
	LANGUAGE C STRICT STABLE PARALLEL SAFE COST 10000;
CREATE FUNCTION clad_embed(model text, img real[]) RETURNS real[]
	AS 'MODULE_PATHNAME', 'clad_embed_name_pixels'
	LANGUAGE C STRICT STABLE PARALLEL SAFE COST 10000;
CREATE FUNCTION clad_embed(version bigint, img bytea) RETURNS real[]
	AS 'MODULE_PATHNAME', 'clad_embed_version_bytea'
	LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE COST 10000;
CREATE FUNCTION clad_embed(version bigint, img real[]) RETURNS real[]
	AS 'MODULE_PATHNAME', 'clad_embed_version_pixels'
	LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE COST 10000;

-- clad_cluster: DEC self-label: the most probable cluster, 0 to K-1
CREATE FUNCTION clad_cluster(img bytea) RETURNS integer
	AS 'MODULE_PATHNAME', 'clad_cluster_bytea'
	LANGUAGE C STRICT STABLE PARALLEL SAFE COST 10000;
CREATE FUNCTION clad_cluster(img real[]) RETURNS integer
	AS 'MODULE_PATHNAME', 'clad_cluster_pixels'
	LANGUAGE C STRICT STABLE PARALLEL SAFE COST 10000;
CREATE FUNCTION clad_cluster(model text, img bytea) RETURNS integer
	AS 'MODULE_PATHNAME', 'clad_cluster_name_bytea'
	LANGUAGE C STRICT STABLE PARALLEL SAFE COST 10000;
CREATE FUNCTION clad_cluster(model text, img real[]) RETURNS integer
	AS 'MODULE_PATHNAME', 'clad_cluster_name_pixels'
	LANGUAGE C STRICT STABLE PARALLEL SAFE COST 10000;
CREATE FUNCTION clad_cluster(version bigint, img bytea) RETURNS integer
	AS 'MODULE_PATHNAME', 'clad_cluster_version_bytea'
	LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE COST 10000;
CREATE FUNCTION clad_cluster(version bigint, img real[]) RETURNS integer
	AS 'MODULE_PATHNAME', 'clad_cluster_version_pixels'
	LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE COST 10000;

-- clad_cluster_probs: DEC soft assignment over the K clusters (sums to 1)
CREATE FUNCTION clad_cluster_probs(img bytea) RETURNS real[]
	AS 'MODULE_PATHNAME', 'clad_cluster_probs_bytea'
	LANGUAGE C STRICT STABLE PARALLEL SAFE COST 10000;
CREATE FUNCTION clad_cluster_probs(img real[]) RETURNS real[]
	AS 'MODULE_PATHNAME', 'clad_cluster_probs_pixels'
	LANGUAGE C STRICT STABLE PARALLEL SAFE COST 10000;
CREATE FUNCTION clad_cluster_probs(model text, img bytea) RETURNS real[]
	AS 'MODULE_PATHNAME', 'clad_cluster_probs_name_bytea'
	LANGUAGE C STRICT STABLE PARALLEL SAFE COST 10000;
CREATE FUNCTION clad_cluster_probs(model text, img real[]) RETURNS real[]
	AS 'MODULE_PATHNAME', 'clad_cluster_probs_name_pixels'
	LANGUAGE C STRICT STABLE PARALLEL SAFE COST 10000;
CREATE FUNCTION clad_cluster_probs(version bigint, img bytea) RETURNS real[]
	AS 'MODULE_PATHNAME', 'clad_cluster_probs_version_bytea'
	LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE COST 10000;
CREATE FUNCTION clad_cluster_probs(version bigint, img real[]) RETURNS real[]
	AS 'MODULE_PATHNAME', 'clad_cluster_probs_version_pixels'
	LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE COST 10000;

-- Batch forms: one call for an array of images (array_agg chunks); NULL elements give NULL.
CREATE FUNCTION clad_score(imgs bytea[]) RETURNS real[]
	AS 'MODULE_PATHNAME', 'clad_score_batch'
	LANGUAGE C STRICT STABLE PARALLEL SAFE COST 100000;
CREATE FUNCTION clad_score(model text, imgs bytea[]) RETURNS real[]
	AS 'MODULE_PATHNAME', 'clad_score_name_batch'
	LANGUAGE C STRICT STABLE PARALLEL SAFE COST 100000;
CREATE FUNCTION clad_score(version bigint, imgs bytea[]) RETURNS real[]
	AS 'MODULE_PATHNAME', 'clad_score_version_batch'
	LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE COST 100000;
CREATE FUNCTION clad_confidence(imgs bytea[]) RETURNS real[]
	AS 'MODULE_PATHNAME', 'clad_confidence_batch'
	LANGUAGE C STRICT STABLE PARALLEL SAFE COST 100000;
CREATE FUNCTION clad_confidence(model text, imgs bytea[]) RETURNS real[]
	AS 'MODULE_PATHNAME', 'clad_confidence_name_batch'
	LANGUAGE C STRICT STABLE PARALLEL SAFE COST 100000;
CREATE FUNCTION clad_confidence(version bigint, imgs bytea[]) RETURNS real[]
	AS 'MODULE_PATHNAME', 'clad_confidence_version_batch'
	LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE COST 100000;
CREATE FUNCTION clad_is_anomaly(imgs bytea[]) RETURNS boolean[]
	AS 'MODULE_PATHNAME', 'clad_is_anomaly_batch'
	LANGUAGE C STRICT STABLE PARALLEL SAFE COST 100000;
CREATE FUNCTION clad_is_anomaly(model text, imgs bytea[]) RETURNS boolean[]
	AS 'MODULE_PATHNAME', 'clad_is_anomaly_name_batch'
	LANGUAGE C STRICT STABLE PARALLEL SAFE COST 100000;
CREATE FUNCTION clad_is_anomaly(version bigint, imgs bytea[]) RETURNS boolean[]
	AS 'MODULE_PATHNAME', 'clad_is_anomaly_version_batch'
	LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE COST 100000;
CREATE FUNCTION clad_cluster(imgs bytea[]) RETURNS integer[]
	AS 'MODULE_PATHNAME', 'clad_cluster_batch'
	LANGUAGE C STRICT STABLE PARALLEL SAFE COST 100000;
CREATE FUNCTION clad_cluster(model text, imgs bytea[]) RETURNS integer[]
	AS 'MODULE_PATHNAME', 'clad_cluster_name_batch'
	LANGUAGE C STRICT STABLE PARALLEL SAFE COST 100000;
CREATE FUNCTION clad_cluster(version bigint, imgs bytea[]) RETURNS integer[]
	AS 'MODULE_PATHNAME', 'clad_cluster_version_batch'
	LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE COST 100000;

-- Pinned forms: a version id and the SHA-256 of its bytes
-- (clad.model_versions.sha256).  The call refuses to score when this server
-- holds other bytes under that id: for queries that postgres_fdw or Citus ship
-- to servers that each keep their own copy of the version.
CREATE FUNCTION clad_score(version bigint, sha256 bytea, img bytea) RETURNS real
	AS 'MODULE_PATHNAME', 'clad_score_pinned_bytea'
	LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE COST 10000;
CREATE FUNCTION clad_confidence(version bigint, sha256 bytea, img bytea) RETURNS real
	AS 'MODULE_PATHNAME', 'clad_confidence_pinned_bytea'
	LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE COST 10000;
CREATE FUNCTION clad_is_anomaly(version bigint, sha256 bytea, img bytea) RETURNS boolean
	AS 'MODULE_PATHNAME', 'clad_is_anomaly_pinned_bytea'
	LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE COST 10000;
CREATE FUNCTION clad_embed(version bigint, sha256 bytea, img bytea) RETURNS real[]
	AS 'MODULE_PATHNAME', 'clad_embed_pinned_bytea'
	LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE COST 10000;
CREATE FUNCTION clad_cluster(version bigint, sha256 bytea, img bytea) RETURNS integer
	AS 'MODULE_PATHNAME', 'clad_cluster_pinned_bytea'
	LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE COST 10000;
CREATE FUNCTION clad_cluster_probs(version bigint, sha256 bytea, img bytea) RETURNS real[]
	AS 'MODULE_PATHNAME', 'clad_cluster_probs_pinned_bytea'
	LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE COST 10000;

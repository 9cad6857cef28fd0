-- models: every malformed model file (the smallest change to a good file that
-- breaks it, built below from model1's bytes) is refused by clad_load_model
-- with a clear error, whether it comes through clad_load_model or a direct
-- INSERT, and leaves nothing behind: no model, no version, no cache entry, no load.

-- a safetensors file: an 8-byte little-endian header length, the JSON header
-- (padded with spaces to 8 bytes, as writers do), the tensors' data
CREATE FUNCTION le64(v numeric) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
	SELECT decode(string_agg(lpad(to_hex(mod(div(v, 256::numeric ^ i), 256)::int), 2, '0'), '' ORDER BY i), 'hex')
	FROM generate_series(0, 7) i $$;
CREATE FUNCTION st_hlen(m bytea) RETURNS int LANGUAGE sql IMMUTABLE AS $$
	SELECT sum(get_byte(m, i)::bigint << (8 * i))::int FROM generate_series(0, 7) i $$;
CREATE FUNCTION st_join(header text, data bytea) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
	SELECT le64(octet_length(raw)) || raw || data
	FROM (SELECT convert_to(header, 'UTF8') || convert_to(repeat(' ', (8 - octet_length(convert_to(header, 'UTF8')) % 8) % 8), 'UTF8') raw) q $$;
CREATE FUNCTION st_offsets(h jsonb, t text, b bigint, e bigint) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
	SELECT jsonb_set(h, ARRAY[t, 'data_offsets'], jsonb_build_array(b, e)) $$;

-- one file per way a model can be malformed:
--   the header length field: 0, 7, 2^64-1, beyond the file, over the 100 MB cap;
--   the header text: not UTF-8, not starting with '{', a duplicate key, bad JSON;
--   the data offsets: overlapping, with a gap, reversed, out of range;
--   a shape whose size times the dtype's is not the byte length, a shape whose
--   product overflows, trailing bytes after the data, a tensor missing, a tensor
--   of the right size but the wrong shape, a tensor of the wrong dtype, NaN and
--   infinite weights, metadata that is not a string map or lacks what clad needs.
-- Tensors are named in data order: t_first, t_second, t_last, and mat, the first weight
-- matrix (2 or more dims, first dim > 1 and not the last) to misshape.
-- (work_mem: the rows, 27 times model1's size, stay in memory)
CREATE FUNCTION malformed(good bytea) RETURNS TABLE (name text, model bytea) LANGUAGE plpgsql
SET work_mem = '256MB' AS $$
DECLARE
	hlen int := st_hlen(good);
	body bytea := substr(good, 9);
	h jsonb := convert_from(substr(good, 9, hlen), 'UTF8')::jsonb;
	tdata bytea := substr(good, 9 + hlen);
	names text[] := ARRAY(SELECT key FROM jsonb_each(h) WHERE key <> '__metadata__'
						  ORDER BY (value->'data_offsets'->>0)::bigint);
	t_first text := names[1];
	t_second text := names[2];
	t_last text := names[cardinality(names)];
	mat text := (SELECT u.k FROM unnest(names) WITH ORDINALITY u(k, n)
				 WHERE h->u.k->>'dtype' = 'F32' AND jsonb_array_length(h->u.k->'shape') >= 2
				   AND (h->u.k->'shape'->>0)::bigint > 1 AND h->u.k->'shape'->0 <> h->u.k->'shape'->-1
				 ORDER BY u.n LIMIT 1);
	mb bigint := (h->mat->'data_offsets'->>0)::bigint;
	me bigint := (h->mat->'data_offsets'->>1)::bigint;
	t text;
	g jsonb;
	cut jsonb;
BEGIN
	-- the length field
	RETURN QUERY VALUES ('len_0', le64(0) || body), ('len_7', le64(7) || body),
		('len_max', le64(2::numeric ^ 64 - 1) || body), ('len_beyond', le64(octet_length(good)) || body),
		('len_over_cap', le64(100 * 1000 * 1000 + 8) || body);
	-- the header text
	RETURN QUERY VALUES
		('text_not_utf8', set_byte(good, 8 + position(convert_to(t_first, 'UTF8') IN substr(good, 9, hlen)) - 1, 255)),
		('text_not_object', set_byte(good, 8, ascii('['))),
		('text_duplicate_key', st_join(left(h::text, -1) || ', ' ||
			substr(jsonb_build_object(t_second, h->t_second)::text, 2), tdata)),
		('text_bad_json', st_join(left(h::text, -1) || ',}', tdata)),
		('text_not_string_map', st_join(jsonb_set(h, '{__metadata__,clad.K}', '4')::text, tdata));
	-- the offsets
	g := h;
	FOREACH t IN ARRAY names[2:] LOOP
		g := st_offsets(g, t, (h->t->'data_offsets'->>0)::bigint + 4, (h->t->'data_offsets'->>1)::bigint + 4);
	END LOOP;
	RETURN QUERY VALUES
		('offsets_overlap', st_join(st_offsets(h, t_second, (h->t_second->'data_offsets'->>0)::bigint - 4,
			(h->t_second->'data_offsets'->>1)::bigint - 4)::text, tdata)),
		('offsets_gap', st_join(g::text, tdata || '\x00000000'::bytea)),
		('offsets_reversed', st_join(st_offsets(h, t_first, (h->t_first->'data_offsets'->>1)::bigint,
			(h->t_first->'data_offsets'->>0)::bigint)::text, tdata)),
		('offsets_out_of_range', st_join(st_offsets(h, t_last, (h->t_last->'data_offsets'->>0)::bigint,
			(h->t_last->'data_offsets'->>1)::bigint + 4)::text, tdata));
	-- shapes, sizes, dtypes: mat's
	cut := h - mat;
	FOREACH t IN ARRAY names LOOP
		IF t <> mat AND (h->t->'data_offsets'->>0)::bigint >= me THEN
			cut := st_offsets(cut, t, (h->t->'data_offsets'->>0)::bigint - (me - mb),
							  (h->t->'data_offsets'->>1)::bigint - (me - mb));
		END IF;
	END LOOP;
	RETURN QUERY VALUES
		('shape_size_mismatch', st_join(jsonb_set(h, ARRAY[mat, 'shape', '0'],
			to_jsonb((h->mat->'shape'->>0)::bigint + 1))::text, tdata)),
		('shape_overflow', st_join(jsonb_set(h, ARRAY[mat, 'shape'],
			jsonb_build_array(1::bigint << 62, 1::bigint << 62, 16))::text, tdata)),
		('trailing_bytes', good || '\x0000000000000000'::bytea),
		('tensor_missing', st_join(cut::text, substr(tdata, 1, mb::int) || substr(tdata, me::int + 1))),
		('tensor_misshapen', st_join(jsonb_set(h, ARRAY[mat, 'shape'],
			(SELECT jsonb_agg(d ORDER BY o DESC) FROM jsonb_array_elements(h->mat->'shape') WITH ORDINALITY u(d, o)))::text, tdata)),
		('tensor_wrong_dtype', st_join(jsonb_set(h, ARRAY[mat, 'dtype'], '"I32"')::text, tdata)),
		-- mat's second weight: a float NaN, an infinity (little-endian)
		('weights_nan', overlay(good PLACING '\x0000c07f'::bytea FROM 8 + hlen + mb::int + 5 FOR 4)),
		('weights_inf', overlay(good PLACING '\x0000807f'::bytea FROM 8 + hlen + mb::int + 5 FOR 4));
	-- what clad itself needs from the metadata
	RETURN QUERY VALUES
		('meta_missing_version', st_join((h #- '{__metadata__,format_version}')::text, tdata)),
		('meta_future_version', st_join(jsonb_set(h, '{__metadata__,format_version}', '"999"')::text, tdata)),
		('meta_not_clad', st_join(jsonb_set(h, '{__metadata__,format}', '"other"')::text, tdata)),
		('meta_bad_clusters', st_join(jsonb_set(h, '{__metadata__,clusters}', '"4x"')::text, tdata)),
		('meta_empty', st_join(jsonb_set(h, '{__metadata__}', '{}')::text, tdata));
END $$;

-- the variants' headers are written anew (jsonb's formatting and key order):
-- the good file with its header written so is the same model, only longer
SELECT clad_model_describe(st_join(convert_from(substr(m, 9, st_hlen(m)), 'UTF8')::jsonb::text, substr(m, 9 + st_hlen(m))))
		   - 'bytes' = clad_model_describe(m) - 'bytes' AS rewritten_header_same_model
FROM (SELECT fixture('model1.safetensors') m) q;

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
-- every file, made once, tried by each path: clad_load_model, a direct INSERT,
-- clad_model_describe
CREATE TEMP TABLE tried AS
SELECT name, md5(model) AS md5, try_load('load', model) AS by_load, try_load('insert', model) AS by_insert,
	   try_load('describe', model) AS by_describe
FROM malformed(fixture('model1.safetensors'));
SELECT count(*) AS malformed_models, count(DISTINCT md5) AS distinct_models,
	   count(*) FILTER (WHERE md5 = md5(fixture('model1.safetensors'))) AS good_ones
FROM tried;
SELECT name, by_load AS clad_load_model FROM tried ORDER BY name;
-- a direct INSERT and clad_model_describe give the same error for every file
SELECT count(*) FILTER (WHERE by_load IS DISTINCT FROM by_insert) AS insert_differs,
	   count(*) FILTER (WHERE by_load IS DISTINCT FROM by_describe) AS describe_differs
FROM tried;
SELECT count(*) AS models_left FROM clad.models WHERE name = 'evil';
SELECT count(*) AS versions_left FROM clad.model_versions WHERE id > :last_version OR name = 'evil';
SELECT clad_cache_loads() = :loads_before AS nothing_loaded,
	   (SELECT count(*) FROM clad_cache()) = :cached_before AS nothing_cached;
-- and the session still loads and scores a good model
SELECT clad_score(1, (SELECT img FROM digits ORDER BY id LIMIT 1)) BETWEEN 0 AND 1 AS still_scoring;
DROP TABLE tried;
DROP FUNCTION try_load(text, bytea);
DROP FUNCTION malformed(bytea);
DROP FUNCTION st_offsets(jsonb, text, bigint, bigint);
DROP FUNCTION st_join(text, bytea);
DROP FUNCTION st_hlen(bytea);
DROP FUNCTION le64(numeric);

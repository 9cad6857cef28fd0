/* extension/cache.c: the per-backend model cache and model resolution.
 *
 * A model version is parsed (and its weights laid out for the kernels) once
 * per backend, or mapped from the prepared file another backend wrote
 * (prepared_files.c), then kept in a small LRU cache keyed by version id and the
 * SHA-256 of its bytes (ids could repeat after DROP/CREATE EXTENSION; the
 * hash keeps a stale entry from ever being used).  Models live in core's
 * malloc'd memory, outside any memory context, for the life of the backend
 * or until evicted.  An entry is filled only once the model has loaded and
 * been prepared, so an ERROR while loading never leaves half a model behind.
 *
 * A call site (fn_extra) resolves its model reference at the first call of
 * each statement execution: one SPI query reading the active version (name
 * forms) or the version's hash (id form), in the statement's snapshot.  Later
 * rows reuse the entry without any lookup while the cache has not changed
 * (cache_generation) and the reference argument is the same.  The queries
 * name every table and operator by schema: a caller's search_path cannot
 * capture them.
 */
#include "clad_ext.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "portability/instr_time.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#define CACHE_MAX 64

static clad_cached_model cache[CACHE_MAX];
static uint64 cache_clock = 0;
static uint64 cache_generation = 1;
static int64 cache_loads = 0;	/* model files parsed by this backend */

static clad_call *
call_state(FunctionCallInfo fcinfo)
{
	if (fcinfo->flinfo->fn_extra == NULL)
		fcinfo->flinfo->fn_extra = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(clad_call));
	return (clad_call *) fcinfo->flinfo->fn_extra;
}

float *
clad_model_pixels(clad_cached_model *e, Size n)
{
	if (e->pixels_cap < n)
	{
		float	   *p = realloc(e->pixels, n * sizeof(float));

		if (p == NULL)
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory for %zu pixels", (size_t) n)));
		e->pixels = p;
		e->pixels_cap = n;
	}
	return e->pixels;
}

static clad_cached_model *
cache_find(int64 version, const uint8 *sha)
{
	for (int i = 0; i < CACHE_MAX; i++)
		if (cache[i].used && cache[i].version == version && cache[i].precision == clad_setting_precision &&
			memcmp(cache[i].sha256, sha, 32) == 0)
			return &cache[i];
	return NULL;
}

static void
cache_evict(clad_cached_model *e)
{
	free(e->pixels);
	free(e->memo.key);
	free(e->memo.z);
	free(e->memo.probs);
	clad_model_free(e->model);
	clad_prepared_unmap(e->map, e->map_len);
	memset(e, 0, sizeof(*e));
	cache_generation++;
}

/* A free slot, evicting the least recently used entries beyond the setting. */
static clad_cached_model *
cache_slot(void)
{
	int			n_used = 0;
	clad_cached_model *oldest = NULL;

	for (int i = 0; i < CACHE_MAX; i++)
		if (cache[i].used)
			n_used++;
	while (n_used >= clad_setting_model_cache_size)
	{
		oldest = NULL;
		for (int i = 0; i < CACHE_MAX; i++)
			if (cache[i].used && (!oldest || cache[i].last_used < oldest->last_used))
				oldest = &cache[i];
		cache_evict(oldest);
		n_used--;
	}
	for (int i = 0; i < CACHE_MAX; i++)
		if (!cache[i].used)
			return &cache[i];
	pg_unreachable();
}

static void
raise_model_error(clad_status st, int64 version)
{
	ereport(ERROR,
			(errcode(st == CLAD_ERR_NOMEM ? ERRCODE_OUT_OF_MEMORY : ERRCODE_DATA_CORRUPTED),
			 errmsg("stored clad model version " INT64_FORMAT " does not load: %s",
					version, clad_last_error())));
}

/*
 * Put version (whose bytes have hash sha, as resolved in this statement's
 * snapshot) in the cache, inside the caller's SPI connection: mapped from its
 * prepared file when there is one (prepared_files.c), else read, parsed and
 * prepared here, its prepared file written for the next backends and mapped
 * in place of this backend's own copy when that works.
 */
static clad_cached_model *
cache_load(int64 version, const uint8 *sha)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1] = {Int64GetDatum(version)};
	bool		isnull;
	bytea	   *stored_sha;
	clad_model *m = NULL;
	void	   *map = NULL;
	Size		map_len = 0;
	clad_status st = CLAD_OK;
	clad_cached_model *e;
	char		name[NAMEDATALEN];
	int64		size_bytes;
	instr_time	t0, t1, t2, t3;

	INSTR_TIME_SET_CURRENT(t0);
	/* the row without its bytes: enough when the prepared file serves */
	if (SPI_execute_with_args("SELECT v.sha256, v.name, v.size_bytes FROM clad.model_versions v "
							  "WHERE v.id OPERATOR(pg_catalog.=) $1",
							  1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "clad: reading model version " INT64_FORMAT " failed", version);
	if (SPI_processed == 0)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
						errmsg("clad model version " INT64_FORMAT " does not exist", version)));
	stored_sha = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (VARSIZE_ANY_EXHDR(stored_sha) != 32)
		elog(ERROR, "clad: model version " INT64_FORMAT " has a malformed sha256", version);
	if (memcmp(VARDATA_ANY(stored_sha), sha, 32) != 0)	/* cannot happen in one snapshot */
		elog(ERROR, "clad: model version " INT64_FORMAT " changed while loading", version);
	text_to_cstring_buffer((text *) DatumGetPointer(SPI_getbinval(SPI_tuptable->vals[0],
																  SPI_tuptable->tupdesc, 2, &isnull)),
						   name, sizeof(name));
	size_bytes = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
	INSTR_TIME_SET_CURRENT(t1);

	if (clad_prepared_map(sha, clad_setting_precision, &m, &map, &map_len))
	{
		INSTR_TIME_SET_CURRENT(t2);
		t3 = t2;
	}
	else
	{
		bytea	   *bytes;

		if (SPI_execute_with_args("SELECT v.model FROM clad.model_versions v WHERE v.id OPERATOR(pg_catalog.=) $1",
								  1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "clad: reading model version " INT64_FORMAT " failed", version);
		/* detoasted in the SPI context, freed by SPI_finish */
		bytes = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		INSTR_TIME_SET_CURRENT(t1);
		clad_ext_blas_init();
		st = clad_model_load((const uint8_t *) VARDATA_ANY(bytes), VARSIZE_ANY_EXHDR(bytes), &m);
		INSTR_TIME_SET_CURRENT(t2);
		if (st == CLAD_OK)
			st = clad_model_prepare_in(m, CLAD_EXT_BATCH, (clad_precision) clad_setting_precision);
		if (st == CLAD_OK && clad_prepared_save(m, sha))
		{
			clad_model *mapped;

			/* share the file's copy with the other backends rather than keep one of our own */
			if (clad_prepared_map(sha, clad_setting_precision, &mapped, &map, &map_len))
			{
				clad_model_free(m);
				m = mapped;
			}
		}
		/* a backend only scores: the packed plans replace most weights; give those back */
		if (st == CLAD_OK && !map)
			(void) clad_model_release_weights(m);
		if (st != CLAD_OK)
		{
			clad_model_free(m);
			raise_model_error(st, version);
		}
		INSTR_TIME_SET_CURRENT(t3);
	}

	e = cache_slot();
	e->model = m;
	e->precision = clad_setting_precision;
	e->map = map;
	e->map_len = map_len;
	INSTR_TIME_SUBTRACT(t3, t2);
	INSTR_TIME_SUBTRACT(t2, t1);
	INSTR_TIME_SUBTRACT(t1, t0);
	e->fetch_ms = INSTR_TIME_GET_MILLISEC(t1);
	e->parse_ms = INSTR_TIME_GET_MILLISEC(t2);
	e->prepare_ms = INSTR_TIME_GET_MILLISEC(t3);
	e->version = version;
	memcpy(e->sha256, sha, 32);
	strlcpy(e->name, name, sizeof(e->name));
	e->bytes = size_bytes;
	e->loaded_at = GetCurrentTimestamp();
	e->used = true;
	cache_loads++;
	cache_generation++;
	return e;
}

/* The name a call refers to, or an ERROR; buf holds NAMEDATALEN bytes. */
static void
reference_name(clad_ref_kind kind, Datum ref, char *buf)
{
	if (kind == CLAD_REF_SETTING)
	{
		if (clad_setting_model == NULL || clad_setting_model[0] == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("no clad model chosen"),
					 errhint("SET clad.model = 'name', or pass a model name or version id.")));
		strlcpy(buf, clad_setting_model, NAMEDATALEN);
	}
	else
	{
		text	   *t = DatumGetTextPP(ref);
		size_t		len = VARSIZE_ANY_EXHDR(t);

		/* a name that does not fit cannot exist: say so with its beginning */
		memcpy(buf, VARDATA_ANY(t), Min(len, NAMEDATALEN - 1));
		buf[Min(len, NAMEDATALEN - 1)] = '\0';
		if (len >= NAMEDATALEN || memchr(VARDATA_ANY(t), '\0', len))
			ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
							errmsg("clad model \"%s...\" does not exist", buf)));
	}
}

/* Is ref the reference this call resolved? (no allocation: checked per row) */
static bool
same_reference(const clad_call *call, clad_ref_kind kind, Datum ref)
{
	if (kind == CLAD_REF_VERSION || kind == CLAD_REF_PINNED)
		return call->version == DatumGetInt64(ref);
	if (kind == CLAD_REF_SETTING)
		return clad_setting_model && strcmp(call->name, clad_setting_model) == 0;
	{
		text	   *t = DatumGetTextPP(ref);
		size_t		len = VARSIZE_ANY_EXHDR(t);

		return len < NAMEDATALEN && strncmp(call->name, VARDATA_ANY(t), len) == 0 &&
			call->name[len] == '\0';
	}
}

/* Resolve the reference to (version, sha256) with one SPI query. */
static void
resolve(clad_call *call, clad_ref_kind kind, Datum ref)
{
	bool		isnull;
	Datum		d;

	if (kind == CLAD_REF_VERSION || kind == CLAD_REF_PINNED)
	{
		Oid			argtypes[1] = {INT8OID};
		Datum		args[1] = {ref};

		if (SPI_execute_with_args("SELECT v.sha256 FROM clad.model_versions v WHERE v.id OPERATOR(pg_catalog.=) $1",
								  1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "clad: looking up a model version failed");
		if (SPI_processed == 0)
			ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
							errmsg("clad model version " INT64_FORMAT " does not exist",
								   DatumGetInt64(ref))));
		call->version = DatumGetInt64(ref);
		call->name[0] = '\0';
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	}
	else
	{
		char		name[NAMEDATALEN];
		Oid			argtypes[1] = {TEXTOID};
		Datum		args[1];

		reference_name(kind, ref, name);
		args[0] = CStringGetTextDatum(name);
		if (SPI_execute_with_args("SELECT a.version, v.sha256 FROM clad.models m "
								  "LEFT JOIN clad.active_versions a ON a.name OPERATOR(pg_catalog.=) m.name "
								  "LEFT JOIN clad.model_versions v ON v.id OPERATOR(pg_catalog.=) a.version "
								  "WHERE m.name OPERATOR(pg_catalog.=) $1",
								  1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "clad: looking up a model failed");
		if (SPI_processed == 0)
			ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
							errmsg("clad model \"%s\" does not exist", name),
							kind == CLAD_REF_SETTING ?
							errdetail("clad.model is set to \"%s\".", name) : 0));
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (isnull)
			ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
							errmsg("clad model \"%s\" has no active version", name),
							errhint("Activate one with clad_activate('%s', version).", name)));
		call->version = DatumGetInt64(d);
		strlcpy(call->name, name, NAMEDATALEN);
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
	}
	{
		bytea	   *sha = DatumGetByteaPP(d);

		if (VARSIZE_ANY_EXHDR(sha) != 32)
			elog(ERROR, "clad: model version " INT64_FORMAT " has a malformed sha256", call->version);
		memcpy(call->sha256, VARDATA_ANY(sha), 32);
	}
}

/*
 * A pinned call's expected hash against the bytes this server holds under the
 * id (checked every row: the hash argument may differ from row to row).
 */
static void
check_pin(const clad_cached_model *e, const bytea *expected)
{
	char		want[65], have[65];

	if (VARSIZE_ANY_EXHDR(expected) != 32)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a clad model version's sha256 has 32 bytes, not %zu",
						(size_t) VARSIZE_ANY_EXHDR(expected)),
				 errhint("Pass clad.model_versions.sha256 of the version.")));
	if (memcmp(VARDATA_ANY(expected), e->sha256, 32) == 0)
		return;
	for (int j = 0; j < 32; j++)
	{
		snprintf(want + 2 * j, 3, "%02x", ((const uint8 *) VARDATA_ANY(expected))[j]);
		snprintf(have + 2 * j, 3, "%02x", e->sha256[j]);
	}
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("clad model version " INT64_FORMAT " on this server is not the pinned model",
					e->version),
			 errdetail("Its sha256 is %s; the call expects %s.", have, want),
			 errhint("Store the same model file under that id on every server "
					 "(clad-train push --shard, or clad_load_model_version).")));
}

clad_cached_model *
clad_model_for_call(FunctionCallInfo fcinfo, clad_ref_kind kind, Datum ref)
{
	clad_call  *call = call_state(fcinfo);
	clad_cached_model *e;

	if (call->resolved && same_reference(call, kind, ref) && call->generation == cache_generation &&
		call->entry->precision == clad_setting_precision)
		e = call->entry;
	else
	{
		bool		same = call->resolved && same_reference(call, kind, ref);

		e = same ? cache_find(call->version, call->sha256) : NULL;
		if (e == NULL)
		{
			if (SPI_connect() != SPI_OK_CONNECT)
				elog(ERROR, "clad: SPI_connect failed");
			if (!same)
			{
				call->resolved = false;
				resolve(call, kind, ref);
				e = cache_find(call->version, call->sha256);
			}
			if (e == NULL)
				e = cache_load(call->version, call->sha256);
			SPI_finish();
			call->resolved = true;
		}
		call->entry = e;
		call->generation = cache_generation;
	}
	if (kind == CLAD_REF_PINNED)
		check_pin(e, PG_GETARG_BYTEA_PP(1));
	e->last_used = ++cache_clock;
	e->calls++;
	return e;
}

/* ------------------------------------------------------------ clad_cache() */

PG_FUNCTION_INFO_V1(clad_cache);

/* clad_cache(): one row per cached model of this backend. */
Datum
clad_cache(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	for (int i = 0; i < CACHE_MAX; i++)
	{
		Datum		values[10];
		bool		nulls[10] = {0};

		char		hex[65];

		if (!cache[i].used)
			continue;
		for (int j = 0; j < 32; j++)
			snprintf(hex + 2 * j, 3, "%02x", cache[i].sha256[j]);
		values[0] = Int64GetDatum(cache[i].version);
		values[1] = CStringGetTextDatum(cache[i].name);
		values[2] = CStringGetTextDatum(hex);
		values[3] = TimestampTzGetDatum(cache[i].loaded_at);
		values[4] = Int64GetDatum(cache[i].calls);
		values[5] = Int64GetDatum(cache[i].bytes);
		values[6] = Float8GetDatum(cache[i].fetch_ms);
		values[7] = Float8GetDatum(cache[i].parse_ms);
		values[8] = Float8GetDatum(cache[i].prepare_ms);
		values[9] = BoolGetDatum(cache[i].map != NULL);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(clad_cache_loads);

/* clad_cache_loads(): how many model files this backend has parsed. */
Datum
clad_cache_loads(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64(cache_loads);
}

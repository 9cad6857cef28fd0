/* extension/functions.c: the SQL-callable scoring, embedding and model functions.
 *
 * Every scoring function has one C entry point per SQL signature, generated
 * below: (what it returns) x (how the model is named: clad.model, a name, a
 * version id) x (the image: bytea, real[], or a bytea[] batch).  They all go
 * through image_call or batch_call.  Per row: the model comes from the call's
 * resolved cache entry, the pixels go to a scratch buffer of the call site,
 * and the result is built in the caller's memory context; nothing else is
 * allocated, so memory stays flat across rows.
 */
#include "clad_ext.h"

#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"

#include "gemm.h"

typedef enum clad_output
{
	OUT_SCORE,					/* real: calibrated anomaly score */
	OUT_CONFIDENCE,				/* real: ODIN confidence */
	OUT_IS_ANOMALY,				/* boolean: confidence below the threshold */
	OUT_EMBED,					/* real[latent] */
	OUT_CLUSTER,				/* integer */
	OUT_PROBS					/* real[K] */
} clad_output;

static ArrayType *
float_array(const float *v, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * n);

	for (int i = 0; i < n; i++)
		d[i] = Float4GetDatum(v[i]);
	return construct_array(d, n, FLOAT4OID, sizeof(float4), true, TYPALIGN_INT);
}

/* Run the model on B images of pixels for the outputs asked (any may be NULL). */
static void
run_model(clad_model *m, const float *pixels, int B, float *conf, float *score,
		  float *z, float *probs, int32 *cluster)
{
	clad_status st;

	if (conf || score)
	{
		CLAD_RUN_INTERRUPTIBLE(st, clad_model_score(m, pixels, B, conf, score));
		if (st != CLAD_OK)
			clad_raise(st, ERRCODE_INTERNAL_ERROR, "clad scoring failed");
	}
	if (z || probs || cluster)
	{
		CLAD_RUN_INTERRUPTIBLE(st, clad_model_embed(m, pixels, B, z, probs, cluster));
		if (st != CLAD_OK)
			clad_raise(st, ERRCODE_INTERNAL_ERROR, "clad embedding failed");
	}
}

/* Does the memo hold this input's answers?  (A byte comparison: cheap next to a network pass.) */
static bool
memo_matches(const clad_memo *memo, int kind, const void *bytes, Size len)
{
	return memo->kind == kind && memo->len == len && memcmp(memo->key, bytes, len) == 0;
}

/* Make the memo this input's, with no answers yet (or leave it empty when it cannot be). */
static void
memo_reset(clad_memo *memo, int kind, const void *bytes, Size len)
{
	memo->kind = 0;
	memo->has_conf = memo->has_embed = false;
	memo->w = memo->h = 0;		/* set by the decode that fills the answers */
	if (len > CLAD_MEMO_MAX)
		return;
	if (memo->cap < len || memo->key == NULL)
	{
		uint8	   *k = realloc(memo->key, len ? len : 1);

		if (k == NULL)
			return;
		memo->key = k;
		memo->cap = len;
	}
	memcpy(memo->key, bytes, len);
	memo->len = len;
	memo->kind = kind;
}

/*
 * The outputs that need a CLAD model's clusters, asked of a model of another
 * method (Deep SVDD, one-class SVM), or a latent code asked of a model
 * without an encoder (one-class SVM): an error naming the model and its
 * method, before any image is decoded.
 */
static void
check_clusters(const clad_cached_model *e, clad_output what)
{
	if ((what == OUT_CLUSTER || what == OUT_PROBS) && e->model->method != CLAD_METHOD_CLAD)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("clad model \"%s\" is a %s model: it has no clusters", e->name,
						clad_model_method_name(e->model)),
				 errhint("clad_cluster and clad_cluster_probs need a CLAD model; clad_score, "
						 "clad_confidence and clad_is_anomaly serve every method.")));
	if (what == OUT_EMBED && e->model->latent < 1)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("clad model \"%s\" is a %s model: it has no latent code", e->name,
						clad_model_method_name(e->model)),
				 errhint("clad_embed needs a model with an encoder (CLAD or Deep SVDD); clad_score, "
						 "clad_confidence and clad_is_anomaly serve every method.")));
}

static Datum
image_call(FunctionCallInfo fcinfo, clad_output what, clad_ref_kind kind, bool pixel_array)
{
	int			imgarg = CLAD_IMAGE_ARG(kind);
	clad_cached_model *e = clad_model_for_call(fcinfo, kind, kind == CLAD_REF_SETTING ? (Datum) 0 :
											   PG_GETARG_DATUM(0));
	clad_model *m = e->model;
	clad_memo  *memo = &e->memo;
	bool		want_conf = what == OUT_SCORE || what == OUT_CONFIDENCE || what == OUT_IS_ANOMALY;
	const void *key;
	Size		keylen;
	ArrayType  *arr = NULL;
	bytea	   *img = NULL;

	if (pixel_array)
	{
		arr = PG_GETARG_ARRAYTYPE_P(imgarg);
		key = arr;
		keylen = VARSIZE(arr);	/* header, dimensions and values */
	}
	else
	{
		img = PG_GETARG_BYTEA_PP(imgarg);
		key = VARDATA_ANY(img);
		keylen = VARSIZE_ANY_EXHDR(img);
	}
	check_clusters(e, what);
	if (!memo_matches(memo, pixel_array ? 2 : 1, key, keylen))
		memo_reset(memo, pixel_array ? 2 : 1, key, keylen);
	else
		clad_check_pixel_count((uint64) memo->w, (uint64) memo->h);	/* the limit may have fallen */

	if (!(want_conf ? memo->has_conf : memo->has_embed))
	{
		float	   *px = clad_model_pixels(e, (Size) m->C * m->H * m->W);

		if (pixel_array)
			clad_pixels_from_array(arr, m, px, &memo->w, &memo->h);
		else
			clad_pixels_from_bytea(img, m, px, &memo->w, &memo->h);
		if (want_conf)
		{
			run_model(m, px, 1, &memo->conf, &memo->score, NULL, NULL, NULL);
			memo->has_conf = memo->kind != 0;
		}
		else
		{
			bool		clad = m->method == CLAD_METHOD_CLAD;

			if (!memo->z)
				memo->z = malloc(sizeof(float) * m->latent);
			if (clad && !memo->probs)
				memo->probs = malloc(sizeof(float) * m->K);
			if (!memo->z || (clad && !memo->probs))
				ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
			/* a failed run must not leave half an answer behind */
			memo->has_embed = false;
			/* another method than CLAD has no clusters: its code alone */
			run_model(m, px, 1, NULL, NULL, memo->z, clad ? memo->probs : NULL, clad ? &memo->cluster : NULL);
			memo->has_embed = memo->kind != 0;
		}
	}

	switch (what)
	{
		case OUT_SCORE:
			PG_RETURN_FLOAT4(memo->score);
		case OUT_CONFIDENCE:
			PG_RETURN_FLOAT4(memo->conf);
		case OUT_IS_ANOMALY:
			PG_RETURN_BOOL(memo->conf < m->threshold);
		case OUT_EMBED:
			PG_RETURN_ARRAYTYPE_P(float_array(memo->z, m->latent));
		case OUT_CLUSTER:
			PG_RETURN_INT32(memo->cluster);
		case OUT_PROBS:
			PG_RETURN_ARRAYTYPE_P(float_array(memo->probs, m->K));
	}
	pg_unreachable();
}

/*
 * The batch forms: a one-dimensional bytea[] of images, scored in chunks of
 * CLAD_EXT_BATCH; a NULL element gives a NULL result element.
 */
static Datum
batch_call(FunctionCallInfo fcinfo, clad_output what, clad_ref_kind kind)
{
	int			imgarg = CLAD_IMAGE_ARG(kind);
	clad_cached_model *e = clad_model_for_call(fcinfo, kind, kind == CLAD_REF_SETTING ? (Datum) 0 :
											   PG_GETARG_DATUM(0));
	clad_model *m = e->model;
	ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(imgarg);
	Size		plane = (Size) m->C * m->H * m->W;
	float	   *px = clad_model_pixels(e, plane * CLAD_EXT_BATCH);
	Datum	   *elems, *out;
	bool	   *nulls;
	int			n, lbound = 1;
	Oid			restype;
	int16		typlen;
	bool		typbyval;
	char		typalign;
	float		conf[CLAD_EXT_BATCH], score[CLAD_EXT_BATCH];
	int32		cluster[CLAD_EXT_BATCH];
	int			idx[CLAD_EXT_BATCH];

	check_clusters(e, what);
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR, (errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
						errmsg("images must be a one-dimensional array, not %d-dimensional",
							   ARR_NDIM(arr))));
	deconstruct_array(arr, BYTEAOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	if (ARR_NDIM(arr) == 1)
		lbound = ARR_LBOUND(arr)[0];
	out = palloc0(sizeof(Datum) * (n ? n : 1));

	for (int start = 0; start < n;)
	{
		int			B = 0,
					w,
					h;

		/* the next chunk of non-NULL images */
		for (; start < n && B < CLAD_EXT_BATCH; start++)
		{
			if (nulls[start])
				continue;
			CHECK_FOR_INTERRUPTS();
			clad_pixels_from_bytea(DatumGetByteaPP(elems[start]), m, px + (Size) B * plane, &w, &h);
			idx[B++] = start;
		}
		if (B == 0)
			break;
		if (what == OUT_CLUSTER)
			run_model(m, px, B, NULL, NULL, NULL, NULL, cluster);
		else
			run_model(m, px, B, conf, score, NULL, NULL, NULL);
		for (int b = 0; b < B; b++)
			switch (what)
			{
				case OUT_SCORE:
					out[idx[b]] = Float4GetDatum(score[b]);
					break;
				case OUT_CONFIDENCE:
					out[idx[b]] = Float4GetDatum(conf[b]);
					break;
				case OUT_IS_ANOMALY:
					out[idx[b]] = BoolGetDatum(conf[b] < m->threshold);
					break;
				case OUT_CLUSTER:
					out[idx[b]] = Int32GetDatum(cluster[b]);
					break;
				default:
					elog(ERROR, "clad: no batch form for this output");
			}
	}

	restype = what == OUT_CLUSTER ? INT4OID : what == OUT_IS_ANOMALY ? BOOLOID : FLOAT4OID;
	get_typlenbyvalalign(restype, &typlen, &typbyval, &typalign);
	PG_RETURN_ARRAYTYPE_P(construct_md_array(out, nulls, ARR_NDIM(arr) == 0 ? 0 : 1, &n, &lbound,
											 restype, typlen, typbyval, typalign));
}

#define IMAGE_FN(sym, what, kind, arr) \
	PG_FUNCTION_INFO_V1(sym); \
	Datum sym(PG_FUNCTION_ARGS) { return image_call(fcinfo, what, kind, arr); }

#define IMAGE_FNS(prefix, what) \
	IMAGE_FN(prefix##_bytea, what, CLAD_REF_SETTING, false) \
	IMAGE_FN(prefix##_pixels, what, CLAD_REF_SETTING, true) \
	IMAGE_FN(prefix##_name_bytea, what, CLAD_REF_NAME, false) \
	IMAGE_FN(prefix##_name_pixels, what, CLAD_REF_NAME, true) \
	IMAGE_FN(prefix##_version_bytea, what, CLAD_REF_VERSION, false) \
	IMAGE_FN(prefix##_version_pixels, what, CLAD_REF_VERSION, true) \
	IMAGE_FN(prefix##_pinned_bytea, what, CLAD_REF_PINNED, false)

#define BATCH_FN(sym, what, kind) \
	PG_FUNCTION_INFO_V1(sym); \
	Datum sym(PG_FUNCTION_ARGS) { return batch_call(fcinfo, what, kind); }

#define BATCH_FNS(prefix, what) \
	BATCH_FN(prefix##_batch, what, CLAD_REF_SETTING) \
	BATCH_FN(prefix##_name_batch, what, CLAD_REF_NAME) \
	BATCH_FN(prefix##_version_batch, what, CLAD_REF_VERSION)

IMAGE_FNS(clad_score, OUT_SCORE)
IMAGE_FNS(clad_confidence, OUT_CONFIDENCE)
IMAGE_FNS(clad_is_anomaly, OUT_IS_ANOMALY)
IMAGE_FNS(clad_embed, OUT_EMBED)
IMAGE_FNS(clad_cluster, OUT_CLUSTER)
IMAGE_FNS(clad_cluster_probs, OUT_PROBS)

BATCH_FNS(clad_score, OUT_SCORE)
BATCH_FNS(clad_confidence, OUT_CONFIDENCE)
BATCH_FNS(clad_is_anomaly, OUT_IS_ANOMALY)
BATCH_FNS(clad_cluster, OUT_CLUSTER)

/* ------------------------------------------------------------ model files */

static void
json_floats(StringInfo s, const float *v, int n)
{
	appendStringInfoChar(s, '[');
	for (int i = 0; i < n; i++)
		appendStringInfo(s, "%s%.9g", i ? ", " : "", (double) v[i]);
	appendStringInfoChar(s, ']');
}

PG_FUNCTION_INFO_V1(clad_model_describe);

/* clad_model_describe(bytea) -> jsonb: validate a model file and describe it. */
Datum
clad_model_describe(PG_FUNCTION_ARGS)
{
	bytea	   *b = PG_GETARG_BYTEA_PP(0);
	clad_model *m = NULL;
	clad_status st;
	StringInfoData s;

	st = clad_model_load((const uint8_t *) VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b), &m);
	if (st != CLAD_OK)
		ereport(ERROR,
				(errcode(st == CLAD_ERR_NOMEM ? ERRCODE_OUT_OF_MEMORY :
						 ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid clad model: %s", clad_last_error())));
	/* everything below is built from m in palloc'd memory; free m first on error */
	PG_TRY();
	{
		initStringInfo(&s);
		appendStringInfoString(&s, "{\"format_version\": ");
		appendStringInfo(&s, "%d, \"method\": \"%s\", \"autoencoder\": ", clad_model_format_version(m),
						 clad_model_method_name(m));
		escape_json(&s, m->autoencoder);
		appendStringInfoString(&s, ", \"classifier\": ");
		escape_json(&s, m->classifier);
		appendStringInfo(&s, ", \"input_shape\": [%d, %d, %d], \"clusters\": %d, \"latent\": %d",
						 m->C, m->H, m->W, m->K, m->latent);
		appendStringInfoString(&s, ", \"normalize_mean\": ");
		json_floats(&s, m->mean, m->C);
		appendStringInfoString(&s, ", \"normalize_std\": ");
		json_floats(&s, m->std, m->C);
		appendStringInfo(&s, ", \"score\": \"%s\", \"rotations\": %d", clad_model_score_name(m), m->rotations);
		if (m->method == CLAD_METHOD_OCSVM)
			appendStringInfo(&s, ", \"kernel\": \"rbf\", \"gamma\": %.9g, \"rho\": %.9g, \"support_vectors\": %d",
							 (double) m->svm.gamma, (double) m->svm.rho, m->svm.n_sv);
		appendStringInfo(&s, ", \"odin_temperature\": %.9g, \"odin_epsilon\": %.9g, \"threshold\": %.9g"
						 ", \"calibration_images\": %d, \"bytes\": %zu, \"summary\": %s}",
						 (double) m->T, (double) m->eps, (double) m->threshold, m->n_calib,
						 (size_t) VARSIZE_ANY_EXHDR(b), m->summary);
	}
	PG_CATCH();
	{
		clad_model_free(m);
		PG_RE_THROW();
	}
	PG_END_TRY();
	clad_model_free(m);
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(s.data)));
}

PG_FUNCTION_INFO_V1(clad_blas);

/* clad_blas() -> text: the matrix-multiply backend of this backend. */
Datum
clad_blas(PG_FUNCTION_ARGS)
{
	clad_ext_blas_init();
	PG_RETURN_TEXT_P(cstring_to_text(clad_blas_describe()));
}

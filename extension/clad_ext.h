/* extension/clad_ext.h: what the files of the clad extension share.
 *
 * The extension is a thin PostgreSQL layer over core/: settings and error
 * reporting (clad.c), the per-backend model cache and the resolution of a
 * model reference to a cached model (cache.c), turning SQL image values into
 * model input pixels (input.c), and the SQL-callable functions (functions.c).
 * Core never sees a PostgreSQL type and never jumps: it returns a status,
 * and only this layer raises ERRORs.
 */
#ifndef CLAD_EXT_H
#define CLAD_EXT_H

#include "postgres.h"

#include "fmgr.h"
#include "utils/array.h"
#include "utils/timestamp.h"

#include "model.h"

/* ------------------------------------------------------------ clad.c */

/* Settings (GUCs), see _PG_init. */
extern char *clad_setting_model;		/* clad.model: the default model's name */
extern int	clad_setting_max_image_pixels;	/* clad.max_image_pixels */
/* the most clad.max_image_pixels may be set to (8192 x 8192) */
#define CLAD_MAX_IMAGE_PIXELS_CEILING (64 * 1024 * 1024)
extern int	clad_setting_model_cache_size;	/* clad.model_cache_size */
extern bool clad_setting_prepared_files;	/* clad.prepared_files */
extern int	clad_setting_precision;	/* clad.precision: a clad_precision (core/bf16.h) */

/* Images in one core call of the batch forms; models are prepared for it. */
#define CLAD_EXT_BATCH 64

/*
 * Raise an ERROR for a failed core call: the message is core's last error,
 * prefixed by what was being done; errcode is used for CLAD_ERR_FORMAT,
 * CLAD_ERR_SHAPE and CLAD_ERR_INVALID (the caller knows what the input was),
 * the others map to their own codes (out of memory, numeric, ...).
 */
void		clad_raise(clad_status st, int sqlstate, const char *doing) pg_attribute_noreturn();

/*
 * Run a core computation that may stop for an interrupt: core returns
 * CLAD_ERR_CANCELLED when the cancel check (registered in _PG_init) sees a
 * pending interrupt; then CHECK_FOR_INTERRUPTS() raises the cancel or
 * timeout ERROR, or, for an interrupt that is not an error, the call is
 * simply run again.
 */
#define CLAD_RUN_INTERRUPTIBLE(st, call) \
	do { \
		for (;;) \
		{ \
			(st) = (call); \
			if ((st) != CLAD_ERR_CANCELLED) \
				break; \
			CHECK_FOR_INTERRUPTS(); \
		} \
	} while (0)

/* Load OpenBLAS single-threaded (once per backend), before the first model is used. */
void		clad_ext_blas_init(void);

/* ------------------------------------------------------------ cache.c */

/* How a SQL call names its model. */
typedef enum clad_ref_kind
{
	CLAD_REF_SETTING,			/* the active version of the model named by clad.model */
	CLAD_REF_NAME,				/* the active version of a model named by a text argument */
	CLAD_REF_VERSION,			/* a version id (bigint argument) */
	CLAD_REF_PINNED				/* a version id and the SHA-256 its bytes must have
								 * (bigint and bytea arguments) */
} clad_ref_kind;

/* The argument number of the image in a call of this kind. */
#define CLAD_IMAGE_ARG(kind) ((kind) == CLAD_REF_SETTING ? 0 : (kind) == CLAD_REF_PINNED ? 2 : 1)

/*
 * The last image a model answered for, and its answers, so that several
 * functions of one row (clad_score(img), clad_is_anomaly(img), ...) decode and
 * run the network once.  Keyed by the input's bytes (copied; inputs over
 * CLAD_MEMO_MAX bytes are not remembered).
 */
#define CLAD_MEMO_MAX (1024 * 1024)

typedef struct clad_memo
{
	int			kind;			/* 0 empty, 1 bytea, 2 real[] */
	uint8	   *key;			/* malloc'd copy of the input's bytes */
	Size		len, cap;
	bool		has_conf;		/* conf and score are valid */
	float		conf, score;
	bool		has_embed;		/* z, probs and cluster are valid */
	float	   *z, *probs;		/* malloc'd (latent), (K) */
	int32		cluster;
	int			w, h;			/* the input's size: a hit is refused as the input was */
} clad_memo;

typedef struct clad_cached_model
{
	bool		used;
	int64		version;
	uint8		sha256[32];
	char		name[NAMEDATALEN];
	clad_model *model;			/* core's, malloc'd; prepared for CLAD_EXT_BATCH */
	int			precision;		/* clad_precision it was prepared in (clad.precision) */
	void	   *map;			/* the prepared file model's weights live in, or NULL */
	Size		map_len;
	TimestampTz loaded_at;
	double		fetch_ms;		/* reading the bytes (SPI, TOAST); only the row when mapped */
	double		parse_ms;		/* clad_model_load (validation and weights), or mapping
								 * and checking the prepared file */
	double		prepare_ms;		/* clad_model_prepare (packing for the kernels) and
								 * writing the prepared file; 0 when mapped */
	int64		calls;			/* SQL calls that used it */
	int64		bytes;			/* size of the model file */
	uint64		last_used;		/* LRU clock */
	float	   *pixels;			/* input scratch (clad_model_pixels) */
	Size		pixels_cap;		/* in floats */
	clad_memo	memo;
} clad_cached_model;

/*
 * Per call site state (fn_extra), valid for one execution of a statement:
 * the model reference resolved at the statement's first call (so one
 * statement uses one version, whatever is activated meanwhile) and scratch
 * buffers for the pixels, allocated once in fn_mcxt.
 */
typedef struct clad_call
{
	bool		resolved;
	char		name[NAMEDATALEN];	/* the name that was resolved (setting and name forms) */
	int64		version;
	uint8		sha256[32];
	clad_cached_model *entry;
	uint64		generation;		/* cache generation when entry was found */
} clad_call;

/*
 * The cached model for this call: resolves the reference (ref: the text or
 * bigint argument; ignored for CLAD_REF_SETTING) once per statement through
 * SPI, then loads the version into this backend's cache when it is not there.
 * Raises an ERROR for an unknown model or version, a model without an active
 * version, a stored model that does not load, or (CLAD_REF_PINNED, whose
 * expected SHA-256 is argument 1) a version whose bytes have another hash.
 */
clad_cached_model *clad_model_for_call(FunctionCallInfo fcinfo, clad_ref_kind kind, Datum ref);

/*
 * Scratch for n floats of input pixels, kept with the cached model (malloc'd
 * once and grown, never per call: PL/pgSQL sets a call site up again after
 * every caught ERROR, so per call site memory would grow until the
 * transaction ends).  Calls run one at a time, so one buffer per model serves
 * them all.
 */
float	   *clad_model_pixels(clad_cached_model *e, Size n);

/* ------------------------------------------------------------ prepared_files.c */

/*
 * Map the prepared file of the model bytes with this SHA-256, in precision
 * (a clad_precision: each has its own file), and open it
 * (core/prepared.h): true with the model and the mapping (unmap it after
 * clad_model_free), or false (no file, a stale or damaged one, or
 * clad.prepared_files off; problems are logged, not raised).
 */
bool		clad_prepared_map(const uint8 *sha, int precision, clad_model **model, void **map, Size *map_len);
void		clad_prepared_unmap(void *map, Size map_len);

/* Write m's prepared file (m prepared for CLAD_EXT_BATCH in its precision, weights not
 * released); false if not. */
bool		clad_prepared_save(const clad_model *m, const uint8 *sha);

/* ------------------------------------------------------------ input.c */

/*
 * One SQL image to the model's input pixels out (C, H, W) in [0,1]:
 * bytes of a PNG, JPEG or PGM/PPM file, or exactly C*H*W raw 8-bit pixels;
 * or a real[] of pixels in [0,1] ((C,H,W), (H,W) or C*H*W values).
 * Raises an ERROR naming what is wrong.
 */
/* An image's pixels for model m (refused beyond clad.max_image_pixels); *w, *h get its
 * size as given (before resizing), which the memo keeps to apply the limit again. */
void		clad_pixels_from_bytea(const bytea *img, const clad_model *m, float *out,
								   int *w, int *h);
void		clad_pixels_from_array(ArrayType *img, const clad_model *m, float *out,
								   int *w, int *h);
void		clad_check_pixel_count(uint64 w, uint64 h);

#endif

/* extension/clad.c: the module: settings, error reporting, BLAS and interrupts. */
#include "clad_ext.h"

#include <limits.h>

#include "miscadmin.h"
#include "utils/guc.h"

#include "gemm.h"

PG_MODULE_MAGIC;

char	   *clad_setting_model = NULL;
int			clad_setting_max_image_pixels = 16 * 1024 * 1024;
int			clad_setting_model_cache_size = 4;
bool		clad_setting_prepared_files = true;
int			clad_setting_precision = CLAD_PRECISION_FP32;

static const struct config_enum_entry precision_options[] = {
	{"fp32", CLAD_PRECISION_FP32, false},
	{"bf16", CLAD_PRECISION_BF16, false},
	{NULL, 0, false}
};

/*
 * Core's cancel check: stop at the next layer when an interrupt is pending
 * and may be processed now.  It only reads flags: the ERROR itself is raised
 * by CHECK_FOR_INTERRUPTS() once core has returned (CLAD_RUN_INTERRUPTIBLE).
 */
static int
interrupt_pending(void)
{
	return INTERRUPTS_PENDING_CONDITION() && INTERRUPTS_CAN_BE_PROCESSED();
}

void		_PG_init(void);

void
_PG_init(void)
{
	DefineCustomStringVariable("clad.model",
							   "Name of the clad model used by the scoring functions called without one.",
							   "Its active version is used, looked up once per statement.",
							   &clad_setting_model, "", PGC_USERSET, 0, NULL, NULL, NULL);
	/*
	 * A superuser's setting: decoding takes memory in proportion to the pixels
	 * (a few bytes each), so a role that could raise it could take gigabytes of
	 * a backend.  The ceiling bounds a decode whatever the setting.
	 */
	DefineCustomIntVariable("clad.max_image_pixels",
							"Largest image (width times height) the scoring functions decode.",
							"Larger images are refused before any pixel memory is allocated.",
							&clad_setting_max_image_pixels, 16 * 1024 * 1024, 1,
							CLAD_MAX_IMAGE_PIXELS_CEILING, PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("clad.model_cache_size",
							"Number of model versions each backend keeps parsed in memory.",
							NULL, &clad_setting_model_cache_size, 4, 1, 64,
							PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("clad.prepared_files",
							 "Share prepared models between backends through files in the data directory.",
							 "A model version is parsed and packed once and kept in pg_clad/; backends "
							 "map that file instead of reading, parsing and packing the model again.",
							 &clad_setting_prepared_files, true, PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomEnumVariable("clad.precision",
							 "Precision of the convolution weights this session scores with: fp32 or bf16.",
							 "fp32 gives the trainer's floats exactly; bf16 rounds the weights of the "
							 "small-map convolutions to bfloat16, halving the bytes each score reads, "
							 "and changes confidences slightly.",
							 &clad_setting_precision, CLAD_PRECISION_FP32, precision_options,
							 PGC_USERSET, 0, NULL, NULL, NULL);
	MarkGUCPrefixReserved("clad");
	clad_set_cancel_check(interrupt_pending);
}

void
clad_ext_blas_init(void)
{
	static bool done = false;

	if (done)
		return;
	/* Inside a backend BLAS stays single-threaded: extra threads only spin
	 * against the other backends.  A failure leaves the plain C path. */
	(void) clad_blas_init(CLAD_BLAS_AUTO, 1);
	done = true;
}

void
clad_raise(clad_status st, int sqlstate, const char *doing)
{
	int			code;

	switch (st)
	{
		case CLAD_ERR_NOMEM:
			code = ERRCODE_OUT_OF_MEMORY;
			break;
		case CLAD_ERR_OVERFLOW:
			code = ERRCODE_PROGRAM_LIMIT_EXCEEDED;
			break;
		case CLAD_ERR_NUMERIC:
			code = ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE;
			break;
		case CLAD_ERR_UNSUPPORTED:
			code = ERRCODE_FEATURE_NOT_SUPPORTED;
			break;
		case CLAD_ERR_IO:
			code = ERRCODE_IO_ERROR;
			break;
		case CLAD_ERR_CANCELLED:
			code = ERRCODE_QUERY_CANCELED;
			break;
		default:
			code = sqlstate;
			break;
	}
	ereport(ERROR, (errcode(code), errmsg("%s: %s", doing, clad_last_error())));
	pg_unreachable();
}

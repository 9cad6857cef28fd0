/* core/status.h: status codes and the last error message of the calling thread.
 *
 * Core never prints, exits or aborts: every fallible function returns a
 * clad_status, and on failure leaves a human-readable message that the host
 * (trainer, PostgreSQL backend) reads with clad_last_error().
 */
#ifndef CLAD_STATUS_H
#define CLAD_STATUS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C"
{
#endif

typedef enum clad_status
{
	CLAD_OK = 0,
	CLAD_ERR_NOMEM,			/* an allocation failed */
	CLAD_ERR_INVALID,		/* a bad argument from the caller */
	CLAD_ERR_FORMAT,		/* malformed input data (model file, image) */
	CLAD_ERR_SHAPE,			/* tensor shapes do not fit together */
	CLAD_ERR_OVERFLOW,		/* a size computation would overflow */
	CLAD_ERR_IO,			/* reading or writing a file failed */
	CLAD_ERR_UNSUPPORTED,	/* valid but not supported by this build */
	CLAD_ERR_NUMERIC,		/* NaN or Inf where finite values are required */
	CLAD_ERR_CANCELLED,		/* the host asked to stop (see clad_set_cancel_check) */
	CLAD_ERR_DEVICE			/* a device (GPU) failed: a kernel, a copy, the driver */
} clad_status;

/* Record msg (printf-style) as the calling thread's last error and return s. */
clad_status clad_fail(clad_status s, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 2, 3)))
#endif
	;

/* The calling thread's last error message ("" when none). */
const char *clad_last_error(void);

/* A short name of a status ("invalid argument", ...). */
const char *clad_status_name(clad_status s);

/*
 * Cancellation: a host that must be able to stop a long computation (a
 * database backend on cancel or statement_timeout) registers a check that
 * returns non-zero when it wants core to stop.  Long loops (every layer of a
 * forward or backward pass) call clad_cancel_requested() and then return
 * CLAD_ERR_CANCELLED, unwinding normally and freeing what they hold, so the
 * host never has to jump out of core code.  The check must be cheap and must
 * not jump itself.  NULL (the default) never cancels.  Process-wide.
 */
void		clad_set_cancel_check(int (*check) (void));
int			clad_cancel_requested(void);

/* Overflow-checked size arithmetic: return 0 and set *out, or 1 on overflow. */
static inline int
clad_mul_size(size_t a, size_t b, size_t *out)
{
	return __builtin_mul_overflow(a, b, out);
}

static inline int
clad_add_size(size_t a, size_t b, size_t *out)
{
	return __builtin_add_overflow(a, b, out);
}

#ifdef __cplusplus
}
#endif

#endif

/* core/status.c: the calling thread's last error message. */
#include "status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_error[512];

/*
 * Formatted into a buffer of its own first: a caller may pass the last
 * message itself as an argument (clad_fail(s, "loading: %s", clad_last_error())),
 * and vsnprintf may not read the buffer it writes.
 */
clad_status
clad_fail(clad_status s, const char *fmt, ...)
{
	char		msg[sizeof(last_error)];
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	memcpy(last_error, msg, sizeof(last_error));
	return s;
}

static int	(*cancel_check) (void);

void
clad_set_cancel_check(int (*check) (void))
{
	cancel_check = check;
}

int
clad_cancel_requested(void)
{
	return cancel_check && cancel_check();
}

const char *
clad_last_error(void)
{
	return last_error;
}

const char *
clad_status_name(clad_status s)
{
	switch (s)
	{
		case CLAD_OK:
			return "ok";
		case CLAD_ERR_NOMEM:
			return "out of memory";
		case CLAD_ERR_INVALID:
			return "invalid argument";
		case CLAD_ERR_FORMAT:
			return "malformed data";
		case CLAD_ERR_SHAPE:
			return "shape mismatch";
		case CLAD_ERR_OVERFLOW:
			return "size overflow";
		case CLAD_ERR_IO:
			return "i/o error";
		case CLAD_ERR_UNSUPPORTED:
			return "unsupported";
		case CLAD_ERR_NUMERIC:
			return "non-finite value";
		case CLAD_ERR_CANCELLED:
			return "cancelled";
		case CLAD_ERR_DEVICE:
			return "device failure";
	}
	return "unknown status";
}

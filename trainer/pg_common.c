/* trainer/pg_common.c: connecting and reporting errors through libpq. */
#include "pg_common.h"

#include <stdio.h>
#include <string.h>

/* libpq's text (multi-line, newline-terminated) as one line in buf. */
static void
one_line(char *buf, size_t cap, const char *msg)
{
	size_t		n = 0;
	int			space = 0;

	if (!msg || !msg[0])
		msg = "(no message)";
	for (const char *p = msg; *p && n + 1 < cap; p++)
	{
		if (*p == '\n' || *p == '\r' || *p == '\t' || *p == ' ')
		{
			space = n > 0;
			continue;
		}
		if (space && n + 2 < cap)
			buf[n++] = ' ';
		space = 0;
		buf[n++] = *p;
	}
	buf[n] = '\0';
}

clad_status
clad_pg_fail_result(PGconn *conn, const PGresult *res, const char *what)
{
	char		msg[768], detail[512];
	const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *det = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;

	if (primary)
	{
		one_line(msg, sizeof(msg), primary);
		/* the server's detail says which rows or values: keep it, on the same line */
		detail[0] = '\0';
		if (det)
		{
			memcpy(detail, ". ", 2);	/* a primary message has no full stop; a detail is sentences */
			one_line(detail + 2, sizeof(detail) - 2, det);
		}
		if (state)
			return clad_fail(CLAD_ERR_IO, "PostgreSQL: %s: %s%s (SQLSTATE %s)", what, msg, detail, state);
		return clad_fail(CLAD_ERR_IO, "PostgreSQL: %s: %s%s", what, msg, detail);
	}
	one_line(msg, sizeof(msg), res && PQresultErrorMessage(res)[0] ? PQresultErrorMessage(res)
			 : PQerrorMessage(conn));
	return clad_fail(CLAD_ERR_IO, "PostgreSQL: %s: %s", what, msg);
}

static void
ignore_notice(void *arg, const char *message)
{
	(void) arg;
	(void) message;
}

clad_status
clad_pg_connect(const char *conninfo, PGconn **out)
{
	/* conninfo may be a connection string or a URI: expand_dbname */
	const char *const keys[] = {"dbname", "fallback_application_name", NULL};
	const char *const vals[] = {conninfo, "clad-train", NULL};
	PGconn	   *conn;

	*out = NULL;
	if (!conninfo)
		return clad_fail(CLAD_ERR_INVALID, "PostgreSQL: no connection string");
	if (!(conn = PQconnectdbParams(keys, vals, 1)))
		return clad_fail(CLAD_ERR_NOMEM, "PostgreSQL: cannot allocate a connection");
	if (PQstatus(conn) != CONNECTION_OK)
	{
		char		msg[768];

		one_line(msg, sizeof(msg), PQerrorMessage(conn));
		PQfinish(conn);
		return clad_fail(CLAD_ERR_IO, "PostgreSQL: cannot connect: %s", msg);
	}
	PQsetNoticeProcessor(conn, ignore_notice, NULL);
	*out = conn;
	return CLAD_OK;
}

/* trainer/dataset_pg.c: clad_load_pg (dataset_pg.h): labelled images from a PostgreSQL query. */
#include "dataset_pg.h"
#include "image.h"
#include "pg_common.h"

#include <libpq-fe.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Type OIDs (catalog/pg_type_d.h, a server header; these never change). */
#define PG_BOOLOID 16
#define PG_BYTEAOID 17
#define PG_INT8OID 20
#define PG_INT2OID 21
#define PG_INT4OID 23
#define PG_TEXTOID 25
#define PG_OIDOID 26
#define PG_FLOAT4OID 700
#define PG_FLOAT8OID 701
#define PG_VARCHAROID 1043
#define PG_NUMERICOID 1700
#define PG_UNKNOWNOID 705

/* First rows' room; it doubles as rows arrive. */
#define PG_INITIAL_ROWS 256

static const char *
type_name(Oid t)
{
	switch (t)
	{
		case PG_BOOLOID:
			return "boolean";
		case PG_BYTEAOID:
			return "bytea";
		case PG_INT8OID:
			return "bigint";
		case PG_INT2OID:
			return "smallint";
		case PG_INT4OID:
			return "integer";
		case PG_TEXTOID:
			return "text";
		case PG_OIDOID:
			return "oid";
		case PG_FLOAT4OID:
			return "real";
		case PG_FLOAT8OID:
			return "double precision";
		case PG_VARCHAROID:
			return "character varying";
		case PG_NUMERICOID:
			return "numeric";
		case PG_UNKNOWNOID:
			return "unknown";
		default:
			return NULL;
	}
}

/* "type text" / "type with OID 1234": for messages. */
static void
describe_type(char *buf, size_t cap, Oid t)
{
	const char *nm = type_name(t);

	if (nm)
		snprintf(buf, cap, "%s", nm);
	else
		snprintf(buf, cap, "the type with OID %u", (unsigned) t);
}

static clad_status
fail_result(PGconn *conn, const PGresult *res, const char *what)
{
	return clad_pg_fail_result(conn, res, what);
}

static int64_t
be_int(const uint8_t *p, int len)
{
	uint64_t	v = 0;

	for (int i = 0; i < len; i++)
		v = v << 8 | p[i];
	/* sign-extend from len bytes */
	if (len < 8 && (v >> (8 * len - 1)) & 1)
		v |= ~(uint64_t) 0 << (8 * len);
	return (int64_t) v;
}

typedef struct pg_reader
{
	clad_dataset d;
	size_t		cap;			/* rows allocated */
	size_t		per;			/* floats per image */
	int			ncols;			/* 1 or 2, once the first result is seen */
	int			label_len;		/* bytes of the label column's binary value */
	int32_t		max_label;
} pg_reader;

/* Check the result's columns (the first result only; all rows share them). */
static clad_status
check_columns(pg_reader *r, const PGresult *res)
{
	int			nf = PQnfields(res);
	char		t[64];
	Oid			typ;

	if (nf < 1 || nf > 2)
		return clad_fail(CLAD_ERR_FORMAT,
						 "PostgreSQL: the query returns %d columns; it must return the image "
						 "(bytea) and optionally a class label (smallint, integer, bigint or boolean)", nf);
	typ = PQftype(res, 0);
	if (typ != PG_BYTEAOID)
	{
		describe_type(t, sizeof(t), typ);
		return clad_fail(CLAD_ERR_FORMAT,
						 "PostgreSQL: the query's first column \"%s\" is %s, not bytea "
						 "(it must hold the image file's bytes)", PQfname(res, 0), t);
	}
	if (nf == 2)
	{
		typ = PQftype(res, 1);
		switch (typ)
		{
			case PG_BOOLOID:		/* false 0, true 1 (clad-train --validate-query's is_anomaly) */
				r->label_len = 1;
				break;
			case PG_INT2OID:
				r->label_len = 2;
				break;
			case PG_INT4OID:
				r->label_len = 4;
				break;
			case PG_INT8OID:
				r->label_len = 8;
				break;
			default:
				describe_type(t, sizeof(t), typ);
				return clad_fail(CLAD_ERR_FORMAT,
								 "PostgreSQL: the query's second column \"%s\" is %s; the class "
								 "label must be smallint, integer, bigint or boolean", PQfname(res, 1), t);
		}
	}
	for (int c = 0; c < nf; c++)
		if (PQfformat(res, c) != 1)
			return clad_fail(CLAD_ERR_FORMAT, "PostgreSQL: column %d did not come back in binary", c + 1);
	r->ncols = nf;
	return CLAD_OK;
}

/* Room for one more row. */
static clad_status
grow(pg_reader *r)
{
	size_t		cap,
				bytes;
	float	   *px;
	int32_t    *lb;

	if ((size_t) r->d.n < r->cap)
		return CLAD_OK;
	if (r->d.n == INT_MAX)
		return clad_fail(CLAD_ERR_UNSUPPORTED, "PostgreSQL: the query returns more than %d rows", INT_MAX);
	cap = r->cap ? r->cap * 2 : PG_INITIAL_ROWS;
	if (cap > (size_t) INT_MAX)
		cap = (size_t) INT_MAX;
	if (clad_mul_size(cap, r->per, &bytes) || clad_mul_size(bytes, sizeof(float), &bytes))
		return clad_fail(CLAD_ERR_OVERFLOW, "PostgreSQL: %zu images of %dx%dx%d overflow",
						 cap, r->d.C, r->d.H, r->d.W);
	if (!(px = realloc(r->d.pixels, bytes)))
		return clad_fail(CLAD_ERR_NOMEM, "PostgreSQL: cannot allocate %zu images of %dx%dx%d",
						 cap, r->d.C, r->d.H, r->d.W);
	r->d.pixels = px;
	if (!(lb = realloc(r->d.labels, cap * sizeof(int32_t))))
		return clad_fail(CLAD_ERR_NOMEM, "PostgreSQL: cannot allocate %zu labels", cap);
	r->d.labels = lb;
	r->cap = cap;
	return CLAD_OK;
}

/* Decode the single row of res as image number r->d.n (row = r->d.n + 1 for messages). */
static clad_status
read_row(pg_reader *r, const PGresult *res)
{
	long long	row = (long long) r->d.n + 1;
	const uint8_t *bytes;
	int			len;
	int32_t		label = -1;
	clad_status st;

	if (PQntuples(res) != 1)
		return clad_fail(CLAD_ERR_IO, "PostgreSQL: expected one row per result, got %d", PQntuples(res));
	if ((st = grow(r)) != CLAD_OK)
		return st;
	if (PQgetisnull(res, 0, 0))
		return clad_fail(CLAD_ERR_FORMAT, "PostgreSQL: row %lld: the image (column \"%s\") is NULL",
						 row, PQfname(res, 0));
	if (r->ncols == 2)
	{
		int64_t		v;

		if (PQgetisnull(res, 0, 1))
			return clad_fail(CLAD_ERR_FORMAT, "PostgreSQL: row %lld: the label (column \"%s\") is NULL",
							 row, PQfname(res, 1));
		if (PQgetlength(res, 0, 1) != r->label_len)
			return clad_fail(CLAD_ERR_FORMAT, "PostgreSQL: row %lld: the label is %d bytes, not %d",
							 row, PQgetlength(res, 0, 1), r->label_len);
		v = be_int((const uint8_t *) PQgetvalue(res, 0, 1), r->label_len);
		if (v < 0 || v > CLAD_PG_MAX_LABEL)
			return clad_fail(CLAD_ERR_FORMAT,
							 "PostgreSQL: row %lld: label %lld is out of range (0 to %d)",
							 row, (long long) v, CLAD_PG_MAX_LABEL);
		label = (int32_t) v;
		if (label > r->max_label)
			r->max_label = label;
	}
	bytes = (const uint8_t *) PQgetvalue(res, 0, 0);
	len = PQgetlength(res, 0, 0);
	if (len <= 0)
		return clad_fail(CLAD_ERR_FORMAT, "PostgreSQL: row %lld: the image is empty (0 bytes)", row);
	st = clad_image_decode(bytes, (size_t) len, r->d.C, r->d.H, r->d.W, CLAD_PG_MAX_PIXELS,
						   r->d.pixels + (size_t) r->d.n * r->per);
	if (st != CLAD_OK)
	{
		char		why[512];

		/* clad_fail writes the buffer clad_last_error() points to: copy it first */
		snprintf(why, sizeof(why), "%s", clad_last_error());
		return clad_fail(st, "PostgreSQL: row %lld: cannot decode the image (%d bytes): %s",
						 row, len, why);
	}
	r->d.labels[r->d.n++] = label;
	return CLAD_OK;
}

/* Drain the connection's pending results (after an error mid-stream). */
static void
drain(PGconn *conn)
{
	PGresult   *res;

	while ((res = PQgetResult(conn)) != NULL)
		PQclear(res);
}

clad_status
clad_load_pg(const char *conninfo, const char *query, int C, int H, int W, clad_dataset *out)
{
	PGconn	   *conn;
	PGresult   *res;
	pg_reader	r;
	clad_status st = CLAD_OK;
	int			done = 0;

	if (!out)
		return clad_fail(CLAD_ERR_INVALID, "PostgreSQL: no output");
	memset(out, 0, sizeof(*out));
	if (!conninfo || !query || (C != 1 && C != 3) || H < 1 || W < 1)
		return clad_fail(CLAD_ERR_INVALID, "PostgreSQL: bad arguments");
	if ((size_t) H * (size_t) W > CLAD_PG_MAX_PIXELS)
		return clad_fail(CLAD_ERR_UNSUPPORTED, "PostgreSQL: images of %dx%d are too large", H, W);
	memset(&r, 0, sizeof(r));
	r.d.C = C;
	r.d.H = H;
	r.d.W = W;
	r.per = (size_t) C * H * W;
	r.max_label = -1;

	if ((st = clad_pg_connect(conninfo, &conn)) != CLAD_OK)
		return st;

	/* read only, whatever the query is; rolled back at the end */
	res = PQexec(conn, "BEGIN TRANSACTION READ ONLY");
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		st = fail_result(conn, res, "cannot begin a read-only transaction");
		PQclear(res);
		PQfinish(conn);
		return st;
	}
	PQclear(res);

	/* one statement (the extended protocol refuses more), binary results, row by row */
	if (!PQsendQueryParams(conn, query, 0, NULL, NULL, NULL, NULL, 1))
	{
		st = fail_result(conn, NULL, "cannot send the query");
		PQfinish(conn);
		return st;
	}
	if (!PQsetSingleRowMode(conn))
	{
		st = fail_result(conn, NULL, "cannot read the result row by row");
		drain(conn);
		PQfinish(conn);
		return st;
	}
	while (st == CLAD_OK && (res = PQgetResult(conn)) != NULL)
	{
		ExecStatusType es = PQresultStatus(res);

		if (es == PGRES_SINGLE_TUPLE || es == PGRES_TUPLES_OK)
		{
			if (!r.ncols)
				st = check_columns(&r, res);
			if (st == CLAD_OK && es == PGRES_SINGLE_TUPLE)
				st = read_row(&r, res);
			if (es == PGRES_TUPLES_OK)
				done = 1;
		}
		else if (es == PGRES_EMPTY_QUERY)
			st = clad_fail(CLAD_ERR_INVALID, "PostgreSQL: the query is empty");
		else if (es == PGRES_COMMAND_OK)
			st = clad_fail(CLAD_ERR_FORMAT, "PostgreSQL: the query returns no rows at all "
						   "(it is not a SELECT); give a query that returns images");
		else
			st = fail_result(conn, res, "the query failed");
		PQclear(res);
	}
	if (st != CLAD_OK)
		drain(conn);
	else if (!done)
		st = clad_fail(CLAD_ERR_IO, "PostgreSQL: the query's result ended early");
	/* nothing was written; the result of the rollback does not matter */
	res = PQexec(conn, "ROLLBACK");
	PQclear(res);
	PQfinish(conn);

	if (st == CLAD_OK && r.d.n == 0)
		st = clad_fail(CLAD_ERR_FORMAT, "PostgreSQL: the query returned no rows");
	if (st != CLAD_OK)
	{
		clad_dataset_free(&r.d);
		return st;
	}
	/* give back the unused room */
	if ((size_t) r.d.n < r.cap)
	{
		float	   *px = realloc(r.d.pixels, (size_t) r.d.n * r.per * sizeof(float));
		int32_t    *lb = realloc(r.d.labels, (size_t) r.d.n * sizeof(int32_t));

		if (px)
			r.d.pixels = px;
		if (lb)
			r.d.labels = lb;
	}
	r.d.n_classes = r.ncols == 2 ? r.max_label + 1 : 0;
	*out = r.d;
	return CLAD_OK;
}

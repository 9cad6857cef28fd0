/* trainer/db_store.c: models into PostgreSQL and the training-run log (db_store.h), through libpq. */
#include "db_store.h"
#include "pg_common.h"

#include <errno.h>
#include <libpq-fe.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Type OIDs (catalog/pg_type_d.h, a server header; these never change). */
#define PG_BOOLOID 16
#define PG_BYTEAOID 17
#define PG_INT8OID 20
#define PG_TEXTOID 25
#define PG_JSONBOID 3802

struct clad_db
{
	PGconn	   *conn;
	char		sqlstate[6];	/* of the last failed statement, "" when none */
	char		ext[132];		/* the clad extension's schema, quoted for SQL */
	char		sql[512];		/* a statement naming ext */
};

/* A failed result's message (pg_common.h), its SQLSTATE kept for clad_db_sqlstate. */
static clad_status
fail_result(clad_db *db, const PGresult *res, const char *what)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	snprintf(db->sqlstate, sizeof(db->sqlstate), "%s", state ? state : "");
	return clad_pg_fail_result(db->conn, res, what);
}

/*
 * The schema the clad extension is installed in, quoted.  Every statement below
 * names it and pg_catalog's operators, so that a session's search_path (the
 * role's or the database's, perhaps a hostile one) cannot put a lookalike
 * function or operator in their place.
 */
static clad_status
find_extension(clad_db *db)
{
	PGresult   *res = PQexec(db->conn,
							 "SELECT pg_catalog.quote_ident(n.nspname) FROM pg_catalog.pg_extension e "
							 "JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) e.extnamespace "
							 "WHERE e.extname OPERATOR(pg_catalog.=) 'clad'");
	clad_status st = CLAD_OK;

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		st = fail_result(db, res, "cannot look up the clad extension");
	else if (PQntuples(res) != 1)
		st = clad_fail(CLAD_ERR_UNSUPPORTED,
					   "PostgreSQL: the clad extension is not installed in this database "
					   "(CREATE EXTENSION clad, as a superuser)");
	else if (snprintf(db->ext, sizeof(db->ext), "%s", PQgetvalue(res, 0, 0)) >= (int) sizeof(db->ext))
		st = clad_fail(CLAD_ERR_UNSUPPORTED, "PostgreSQL: the clad extension's schema name is too long");
	PQclear(res);
	return st;
}

/* sql_fmt with %s for the extension's schema, in db->sql */
static const char *
ext_sql(clad_db *db, const char *sql_fmt)
{
	snprintf(db->sql, sizeof(db->sql), sql_fmt, db->ext);
	return db->sql;
}

clad_status
clad_db_connect(const char *conninfo, clad_db **out)
{
	clad_db    *db;
	clad_status st;

	if (!out)
		return clad_fail(CLAD_ERR_INVALID, "PostgreSQL: no output");
	*out = NULL;
	if (!(db = calloc(1, sizeof(*db))))
		return clad_fail(CLAD_ERR_NOMEM, "PostgreSQL: cannot allocate a connection");
	if ((st = clad_pg_connect(conninfo, &db->conn)) != CLAD_OK)
	{
		free(db);
		return st;
	}
	if ((st = find_extension(db)) != CLAD_OK)
	{
		clad_db_close(db);
		return st;
	}
	*out = db;
	return CLAD_OK;
}

void
clad_db_close(clad_db *db)
{
	if (!db)
		return;
	PQfinish(db->conn);
	free(db);
}

const char *
clad_db_sqlstate(const clad_db *db)
{
	return db ? db->sqlstate : "";
}

/* Run a command without parameters or rows (BEGIN, COMMIT, ROLLBACK). */
static clad_status
command(clad_db *db, const char *sql, const char *what)
{
	PGresult   *res = PQexec(db->conn, sql);
	clad_status st = CLAD_OK;

	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		st = fail_result(db, res, what);
	PQclear(res);
	return st;
}

/*
 * Run sql with text parameters (binary where formats says so), expecting
 * one row of one column; *value: that column as an int8, or -1 when NULL
 * (value may be NULL when the column is void).
 */
static clad_status
one_value(clad_db *db, const char *sql, int n, const Oid *types, const char *const *values,
		  const int *lengths, const int *formats, const char *what, int64_t *value)
{
	PGresult   *res = PQexecParams(db->conn, sql, n, types, values, lengths, formats, 0);
	clad_status st = CLAD_OK;

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		st = fail_result(db, res, what);
	else if (PQntuples(res) != 1 || PQnfields(res) != 1)
		st = clad_fail(CLAD_ERR_IO, "PostgreSQL: %s: expected one value, got %d rows of %d columns",
					   what, PQntuples(res), PQnfields(res));
	else if (value && PQgetisnull(res, 0, 0))
		*value = -1;
	else if (value)
	{
		const char *s = PQgetvalue(res, 0, 0);
		char	   *end;
		long long	v;

		errno = 0;
		v = strtoll(s, &end, 10);
		if (!s[0] || *end != '\0' || errno == ERANGE || v < 0)
			st = clad_fail(CLAD_ERR_IO, "PostgreSQL: %s: unexpected value \"%.40s\"", what, s);
		else
			*value = (int64_t) v;
	}
	PQclear(res);
	return st;
}

clad_status
clad_db_run_begin(clad_db *db, const char *name, const char *client, int64_t *run)
{
	const Oid	types[] = {PG_TEXTOID, PG_TEXTOID};
	const char *values[] = {name, client};
	clad_status st;
	int64_t		r = -1;

	if (!db || !name || !run)
		return clad_fail(CLAD_ERR_INVALID, "PostgreSQL: bad arguments");
	db->sqlstate[0] = '\0';
	st = one_value(db, ext_sql(db, "SELECT %s.clad_run_begin($1, $2)"), 2, types, values, NULL, NULL,
				   "cannot record the start of the training run", &r);
	if (st == CLAD_OK && r < 0)
		st = clad_fail(CLAD_ERR_IO, "PostgreSQL: clad_run_begin returned NULL");
	if (st == CLAD_OK)
		*run = r;
	return st;
}

clad_status
clad_db_run_end(clad_db *db, int64_t run, int succeeded, int64_t rows, int64_t version,
				int activated, const char *metrics, const char *error)
{
	const Oid	types[] = {PG_INT8OID, PG_TEXTOID, PG_INT8OID, PG_INT8OID, PG_BOOLOID,
		PG_JSONBOID, PG_TEXTOID};
	char		srun[24], srows[24], sversion[24];
	const char *values[7];

	if (!db || run < 0)
		return clad_fail(CLAD_ERR_INVALID, "PostgreSQL: bad arguments");
	db->sqlstate[0] = '\0';
	snprintf(srun, sizeof(srun), "%lld", (long long) run);
	snprintf(srows, sizeof(srows), "%lld", (long long) rows);
	snprintf(sversion, sizeof(sversion), "%lld", (long long) version);
	values[0] = srun;
	values[1] = succeeded ? "succeeded" : "failed";
	values[2] = rows >= 0 ? srows : NULL;
	values[3] = version >= 0 ? sversion : NULL;
	values[4] = activated < 0 ? NULL : activated ? "true" : "false";
	values[5] = metrics;
	values[6] = error;
	return one_value(db, ext_sql(db, "SELECT %s.clad_run_end($1, $2, $3, $4, $5, $6, $7)"), 7, types, values,
					 NULL, NULL, "cannot record the end of the training run", NULL);
}

clad_status
clad_db_store(clad_db *db, const char *name, const uint8_t *model, size_t len,
			  const char *metrics, int activate, int64_t want_version,
			  int64_t *version, int *activated, int64_t *active_version)
{
	const Oid	types[] = {PG_TEXTOID, PG_BYTEAOID, PG_JSONBOID, PG_BOOLOID, PG_INT8OID};
	const char *values[5];
	int			lengths[5] = {0, 0, 0, 0, 0};
	const int	formats[5] = {0, 1, 0, 0, 0};	/* the model's bytes in binary: no hex escaping */
	char		sversion[32];
	int64_t		v = -1, cur = -1;
	clad_status st;

	if (!db || !name || !model || !version || !activated || !active_version)
		return clad_fail(CLAD_ERR_INVALID, "PostgreSQL: bad arguments");
	if (len == 0 || len > (size_t) INT_MAX)
		return clad_fail(CLAD_ERR_UNSUPPORTED, "PostgreSQL: a model of %zu bytes cannot be stored", len);
	db->sqlstate[0] = '\0';
	values[0] = name;
	values[1] = (const char *) model;
	lengths[1] = (int) len;
	values[2] = metrics;
	values[3] = activate > 0 ? "true" : NULL;
	snprintf(sversion, sizeof(sversion), "%lld", (long long) want_version);
	values[4] = sversion;

	if ((st = command(db, "BEGIN", "cannot begin the transaction that stores the model")) != CLAD_OK)
		return st;
	if (want_version < 0)
		st = one_value(db, ext_sql(db, "SELECT %s.clad_load_model($1, $2, $3, $4)"), 4, types, values, lengths,
					   formats, "cannot store the model", &v);
	else
		st = one_value(db, ext_sql(db, "SELECT %s.clad_load_model_version($5, $1, $2, $3, $4)"), 5, types, values,
					   lengths, formats, "cannot store the model", &v);
	if (st == CLAD_OK && v < 0)
		st = clad_fail(CLAD_ERR_IO, "PostgreSQL: clad_load_model returned NULL");
	if (st == CLAD_OK)
		st = one_value(db, "SELECT active_version FROM clad.model_list WHERE name OPERATOR(pg_catalog.=) $1", 1, types, values,
					   NULL, NULL, "cannot read the model's active version", &cur);
	if (st == CLAD_OK)
		st = command(db, "COMMIT", "cannot commit the new model version");
	if (st != CLAD_OK)
	{
		/* keep the first error: the rollback's result does not matter */
		char		sqlstate[sizeof(db->sqlstate)];
		PGresult   *res;

		memcpy(sqlstate, db->sqlstate, sizeof(sqlstate));
		res = PQexec(db->conn, "ROLLBACK");
		PQclear(res);
		memcpy(db->sqlstate, sqlstate, sizeof(sqlstate));
		return st;
	}
	*version = v;
	*activated = cur == v;
	*active_version = cur;
	return CLAD_OK;
}

/* trainer/pg_common.h: what the trainer's two libpq users share (dataset_pg.c, db_store.c).
 *
 * Messages go through clad_fail (core/status.h) as "PostgreSQL: WHAT: the
 * server's message (SQLSTATE xxxxx)", on one line; the connection string is
 * never repeated in them (it may hold a password).
 */
#ifndef CLAD_PG_COMMON_H
#define CLAD_PG_COMMON_H

#include "status.h"

#include <libpq-fe.h>

/*
 * Connect with conninfo (a connection string or URI; PG* variables and
 * ~/.pgpass apply as in psql), application name "clad-train" unless set,
 * the server's notices swallowed.  On failure *out is NULL.
 */
clad_status clad_pg_connect(const char *conninfo, PGconn **out);

/* A failed result's message: the server's primary message and SQLSTATE, else libpq's text. */
clad_status clad_pg_fail_result(PGconn *conn, const PGresult *res, const char *what);

#endif

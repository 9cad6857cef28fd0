/* trainer/db_store.h: storing models in PostgreSQL and recording training runs (libpq).
 *
 * The clad extension (sql/clad--0.1.sql) keeps models as immutable versions
 * and logs training runs.  Here the trainer's side of it:
 *   clad_db_connect      a connection (PG* environment variables and
 *                        ~/.pgpass apply as in psql);
 *   clad_db_run_begin    clad_run_begin(name, client): a row in
 *                        clad.training_runs and the model's advisory lock
 *                        for this session; another session holding it is
 *                        SQLSTATE 55P03 (clad_db_sqlstate);
 *   clad_db_run_end      clad_run_end(run, status, ...): how the run ended;
 *                        releases the lock;
 *   clad_db_store        one transaction, BEGIN; clad_load_model(name, bytes,
 *                        metrics, activate) or clad_load_model_version(id, ...); COMMIT, the bytes sent as a binary
 *                        parameter; any failure rolls it back, so the active
 *                        version is left as it was.
 * The run functions are called outside the storing transaction, so a run's
 * record survives a failed store.  The extension's functions are called
 * unqualified (the connection's search_path finds them, as in psql).
 *
 * Nothing is printed (the server's notices are swallowed); problems are
 * reported through clad_fail (core/status.h) as "PostgreSQL: WHAT: the
 * server's message (SQLSTATE xxxxx)".  The connection string is never
 * repeated in a message (it may hold a password).
 */
#ifndef CLAD_DB_STORE_H
#define CLAD_DB_STORE_H

#include "status.h"

#include <stdint.h>

typedef struct clad_db clad_db;

/* The SQLSTATE of a lock held by another session (clad_run_begin's refusal). */
#define CLAD_DB_SQLSTATE_LOCKED "55P03"

clad_status clad_db_connect(const char *conninfo, clad_db **out);
void		clad_db_close(clad_db *db);

/* The SQLSTATE of the last failed statement on db, "" when none or unknown. */
const char *clad_db_sqlstate(const clad_db *db);

/* client: who runs it, for the log (may be NULL). */
clad_status clad_db_run_begin(clad_db *db, const char *name, const char *client, int64_t *run);

/*
 * succeeded: 'succeeded' or 'failed'.  rows, version: < 0 for NULL;
 * activated: -1 for NULL, else 0 or 1; metrics (JSON text) and error: NULL
 * for NULL.
 */
clad_status clad_db_run_end(clad_db *db, int64_t run, int succeeded, int64_t rows, int64_t version,
							int activated, const char *metrics, const char *error);

/*
 * Store model (the safetensors bytes; the server validates them again) as a
 * version of model name: a new one (want_version < 0: clad_load_model), or
 * under the id want_version (clad_load_model_version: the same bytes already
 * there are kept, other bytes under that id are refused, SQLSTATE 23505).
 * metrics: JSON text or NULL (the extension then takes the file's training
 * summary).  activate: 1 to activate it, -1 for NULL (the extension
 * activates only a model's first version).  Out: the version id, whether it
 * is now the active one, and the model's active version afterwards (-1 when
 * none).
 */
clad_status clad_db_store(clad_db *db, const char *name, const uint8_t *model, size_t len,
						  const char *metrics, int activate, int64_t want_version,
						  int64_t *version, int *activated, int64_t *active_version);

#endif

/* trainer/db_runs.h: storing models in PostgreSQL: the --model-name training run and push. */
#ifndef CLAD_DB_RUNS_H
#define CLAD_DB_RUNS_H

#include "model.h"
#include "options.h"

#include <stddef.h>
#include <stdint.h>

/*
 * --model-name: connect, record the start of the run and take the model's
 * lock (clad_run_begin), before any row is read.  From here on die()
 * records the run as failed.
 */
void		begin_run(const options *o);

/* The rows the training query returned, for the run's record. */
void		set_run_rows(int64_t rows);

/* --model-name: store m as a new version of the model and record the run as succeeded. */
void		store_trained(const options *o, const clad_model *m);

/*
 * push: store buf as a version of o->model_name on the server conninfo
 * (under want_version, or a new id when < 0); dies naming the server on failure.
 */
int64_t		push_to(const options *o, const char *conninfo, const char *which, const uint8_t *buf,
					size_t len, int64_t want_version, int64_t stored_elsewhere);

#endif

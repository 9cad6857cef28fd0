/* trainer/db_runs.c: storing models in PostgreSQL: the --model-name training run and push. */
#include "db_runs.h"

#include "cli.h"
#include "db_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* --model-name: the training run being recorded (run_id >= 0 once clad_run_begin returned) */
static clad_db *run_db;
static int64_t run_id = -1;
static int64_t run_rows = -1;	/* rows the training query returned, -1 until read */

/* Record the run as failed with the message (fmt, ap), once: the process is about to exit. */
static void
fail_run(const char *fmt, va_list ap)
{
	char		msg[4096];
	clad_db    *db = run_db;
	int			n = 0;

	if (!db)
		return;
	run_db = NULL;
	if (run_id >= 0)
	{
		n = snprintf(msg, sizeof(msg), "%s", stop_prefix());
		vsnprintf(msg + n, sizeof(msg) - (size_t) n, fmt, ap);
		if (clad_db_run_end(db, run_id, 0, run_rows, -1, -1, NULL, msg) != CLAD_OK)
			fprintf(stderr, "clad-train: warning: the failed run was not recorded: %s\n",
					clad_last_error());
	}
	/* closing the connection releases the model's lock in any case */
	clad_db_close(db);
}

/* The rows the training query returned, for the run's record. */
void
set_run_rows(int64_t rows)
{
	run_rows = rows;
}

/* Who runs a training run, for clad.training_runs: "clad-train 0.2 pid 1234 on HOST". */
static void
client_text(char *buf, size_t size, const char *version)
{
	char		host[256];

	if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "an unknown host");
	host[sizeof(host) - 1] = '\0';
	snprintf(buf, size, "clad-train %s pid %ld on %s", version, (long) getpid(), host);
}

/*
 * --model-name: connect, record the start of the run and take the model's
 * lock (clad_run_begin), before any row is read.  From here on die()
 * records the run as failed.
 */
void
begin_run(const options *o)
{
	char		client[512];
	clad_db    *db;

	if (clad_db_connect(o->db, &db) != CLAD_OK)
		die("cannot record the training run: %s", clad_last_error());
	client_text(client, sizeof(client), o->version);
	if (clad_db_run_begin(db, o->model_name, client, &run_id) != CLAD_OK)
	{
		char		why[1024];

		snprintf(why, sizeof(why), "%s", clad_last_error());
		if (strcmp(clad_db_sqlstate(db), CLAD_DB_SQLSTATE_LOCKED) == 0)
		{
			clad_db_close(db);
			die("another training run of clad model \"%s\" is in progress (it holds the model's "
				"lock in the database); nothing was trained", o->model_name);
		}
		clad_db_close(db);
		die("cannot start a training run of clad model \"%s\": %s", o->model_name, why);
	}
	run_db = db;
	set_die_hook(fail_run);
	if (!o->quiet)
		fprintf(stderr, "clad-train: training run %lld of clad model \"%s\" recorded\n",
				(long long) run_id, o->model_name);
}

/* The note on a stored version: "(active)" or "(not active; the active version is 3)". */
static void
active_text(char *buf, size_t size, int activated, int64_t active)
{
	if (activated)
		snprintf(buf, size, "active");
	else if (active >= 0)
		snprintf(buf, size, "not active; the active version is %lld", (long long) active);
	else
		snprintf(buf, size, "not active");
}

/*
 * --model-name: store m as a new version of the model and record the run as
 * succeeded.  A failure to store goes through die(): the run is recorded as
 * failed and the transaction was rolled back.
 */
void
store_trained(const options *o, const clad_model *m)
{
	uint8_t    *buf = NULL;
	size_t		len = 0;
	int64_t		version, active;
	int			activated;
	char		state[96];
	clad_db    *db = run_db;

	if (stop_requested())		/* arrived after the last layer ran: still nothing stored */
		die("stopped before the model was stored");
	if (clad_model_save(m, &buf, &len) != CLAD_OK)
		die("cannot serialise the model: %s", clad_last_error());
	if (clad_db_store(db, o->model_name, buf, len, m->summary, o->activate ? 1 : -1, -1,
					  &version, &activated, &active) != CLAD_OK)
	{
		free(buf);
		die("cannot store clad model \"%s\": %s", o->model_name, clad_last_error());
	}
	free(buf);
	active_text(state, sizeof(state), activated, active);
	if (!o->quiet)
		fprintf(stderr, "clad-train: stored clad model \"%s\" version %lld (%s)\n",
				o->model_name, (long long) version, state);

	/* the version is stored: a failure from here on is not the run's */
	run_db = NULL;
	if (clad_db_run_end(db, run_id, 1, run_rows, version, activated, m->summary, NULL) != CLAD_OK)
	{
		char		why[1024];

		snprintf(why, sizeof(why), "%s", clad_last_error());
		clad_db_close(db);
		die("clad model \"%s\" version %lld is stored, but the end of training run %lld could not "
			"be recorded: %s", o->model_name, (long long) version, (long long) run_id, why);
	}
	clad_db_close(db);
}

/*
 * Store buf as a version of o->model_name on the server conninfo (under
 * want_version, or a new id when < 0); dies naming the server on failure.
 */
int64_t
push_to(const options *o, const char *conninfo, const char *which, const uint8_t *buf, size_t len,
		int64_t want_version, int64_t stored_elsewhere)
{
	clad_db    *db;
	int64_t		version, active;
	int			activated;
	char		state[96], why[1024];

	if (clad_db_connect(conninfo, &db) != CLAD_OK ||
		/* metrics NULL: the extension takes the file's training summary */
		clad_db_store(db, o->model_name, buf, len, NULL, o->activate ? 1 : -1, want_version,
					  &version, &activated, &active) != CLAD_OK)
	{
		snprintf(why, sizeof(why), "%s", clad_last_error());
		if (db)
			clad_db_close(db);
		if (stored_elsewhere > 0)
			fprintf(stderr, "clad-train: version %lld is stored on the %lld server(s) before this one\n",
					(long long) want_version, (long long) stored_elsewhere);
		die("cannot push %s as clad model \"%s\" to %s: %s", o->model, o->model_name, which, why);
	}
	clad_db_close(db);
	active_text(state, sizeof(state), activated, active);
	if (!o->quiet)
		fprintf(stderr, "clad-train: stored %s as clad model \"%s\" version %lld on %s (%s)\n",
				o->model, o->model_name, (long long) version, which, state);
	return version;
}

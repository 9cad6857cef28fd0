/* trainer/data_source.c: where clad-train's images come from (--data sets, --db queries) and loading them. */
#include "data_source.h"

#include "cli.h"
#include "dataset_pg.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Whether path is a directory. */
static int
is_dir(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* Whether path is a regular file. */
static int
is_file(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* dir/name, malloc'd. */
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

/* The format of a scenario's dataset ("mnist": "idx"), or NULL. */
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

/* Resolve --data, --format and the scenario into src, or exit. */
void
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

/* Free what resolve_source allocated. */
void
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

/* qsort: strings bytewise. */
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
void
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
void
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

/* Resolve the scenario on a loaded set, or die. */
void
resolve_scenario(clad_scenario *sc, const clad_dataset *d, const data_source *src)
{
	if (clad_scenario_resolve(sc, d->class_names, d->n_classes, src->words) != CLAD_OK)
		die("%s", clad_last_error());
}

/* trainer/scenario.c: the paper's scenario presets, id lists, and Tiny-ImageNet's words.txt. */
#include "scenario.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What each dataset has, and the reference settings that differ from MNIST's. */
typedef struct dataset_info
{
	const char *name;
	const char *aliases[3];
	int			n_classes;
	clad_scenario_settings settings;
} dataset_info;

static const dataset_info datasets[] = {
	{"mnist", {"mnist", NULL, NULL}, 10,
	{NULL, 0, 0, -1.0f, 1, 28}},
	{"cifar10", {"cifar10", "cifar-10", NULL}, 10,
	{"cvae_large", 10, 0, (float) (0.01 * CLAD_REFERENCE_EPS_FACTOR), 3, 32}},
	{"gtsrb", {"gtsrb", NULL, NULL}, 43,
	{NULL, 20, 0, -1.0f, 3, 32}},
	{"tiny", {"tiny", "tiny-imagenet", "tinyimagenet"}, 200,
	{NULL, 0, 0, -1.0f, 3, 64}},
};
#define N_DATASETS ((int) (sizeof(datasets) / sizeof(datasets[0])))

static const char *const tiny_anml[] = {
	"golden retriever", "Chihuahua", "German shepherd", "Labrador retriever",
	"standard poodle", "Yorkshire terrier", "cougar", "Persian cat"};
static const char *const tiny_isct[] = {
	"dragonfly", "cockroach", "bee", "grasshopper", "fly", "mantis", "monarch",
	"sulphur butterfly"};
static const char *const tiny_istm[] = {
	"water jug", "beer bottle", "teapot", "pop bottle", "beaker", "rugby ball",
	"volleyball", "pill bottle"};
static const char *const tiny_strt[] = {
	"triumphal arch", "suspension bridge", "fountain", "viaduct", "bannister",
	"steel arch bridge", "obelisk", "beacon"};
static const char *const tiny_vhcl[] = {
	"school bus", "trolleybus", "sports car", "bullet train", "convertible", "tractor",
	"police van", "beach wagon"};

/* A preset: ids for MNIST, CIFAR-10 and GTSRB, names for Tiny-ImageNet. */
typedef struct preset
{
	const char *dataset;
	const char *name;
	const char *ids;
	const char *const *names;
	int			n_names;
	int			latent;			/* 0: the dataset's setting */
} preset;

#define NAMES(a) a, (int) (sizeof(a) / sizeof(a[0]))

static const preset presets[] = {
	{"mnist", "CUR", "0,3,8", NULL, 0, 0},
	{"mnist", "STR", "1,4,7", NULL, 0, 0},
	{"mnist", "MIX", "2,5,6,9", NULL, 0, 0},
	{"cifar10", "THG", "0,1,8,9", NULL, 0, 200},
	{"cifar10", "LIV", "2-7", NULL, 0, 100},
	{"gtsrb", "SPDL", "0-5,7,8", NULL, 0, 0},
	{"gtsrb", "INST", "9,10,15,16", NULL, 0, 0},
	{"gtsrb", "WARN", "11,18-31", NULL, 0, 0},
	{"gtsrb", "DIRC", "33-40", NULL, 0, 0},
	{"gtsrb", "SPEC", "12,13,14,17", NULL, 0, 0},
	{"gtsrb", "REGN", "6,32,41,42", NULL, 0, 0},
	{"tiny", "ANML", NULL, NAMES(tiny_anml), 0},
	{"tiny", "ISCT", NULL, NAMES(tiny_isct), 0},
	{"tiny", "ISTM", NULL, NAMES(tiny_istm), 0},
	{"tiny", "STRT", NULL, NAMES(tiny_strt), 0},
	{"tiny", "VHCL", NULL, NAMES(tiny_vhcl), 0},
};
#define N_PRESETS ((int) (sizeof(presets) / sizeof(presets[0])))

const char *
clad_scenario_preset_list(void)
{
	return "mnist:CUR mnist:STR mnist:MIX cifar10:THG cifar10:LIV gtsrb:SPDL gtsrb:INST "
		"gtsrb:WARN gtsrb:DIRC gtsrb:SPEC gtsrb:REGN tiny:ANML tiny:ISCT tiny:ISTM "
		"tiny:STRT tiny:VHCL";
}

/* ASCII-only case folding: scenario names and words.txt must not depend on the locale. */
static int
lower(int c)
{
	return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

/* Case-insensitive equality of a[0..alen) and the NUL-terminated b. */
static int
ieq_n(const char *a, size_t alen, const char *b)
{
	size_t		i;

	for (i = 0; i < alen; i++)
		if (b[i] == '\0' || lower((unsigned char) a[i]) != lower((unsigned char) b[i]))
			return 0;
	return b[i] == '\0';
}

/* Case-insensitive equality of a[0..alen) and b[0..blen). */
static int
ieq_nn(const char *a, size_t alen, const char *b, size_t blen)
{
	if (alen != blen)
		return 0;
	for (size_t i = 0; i < alen; i++)
		if (lower((unsigned char) a[i]) != lower((unsigned char) b[i]))
			return 0;
	return 1;
}

static int
ieq(const char *a, const char *b)
{
	return ieq_n(a, strlen(a), b);
}

static int
is_space(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Trim spaces of s[*b..*e) in place of the bounds. */
static void
trim(const char *s, size_t *b, size_t *e)
{
	while (*b < *e && is_space((unsigned char) s[*b]))
		(*b)++;
	while (*e > *b && is_space((unsigned char) s[*e - 1]))
		(*e)--;
}

void
clad_scenario_free(clad_scenario *sc)
{
	if (!sc)
		return;
	free(sc->classes);
	memset(sc, 0, sizeof(*sc));
	sc->settings.eps = -1.0f;
}

static int
by_int32(const void *a, const void *b)
{
	int32_t		x = *(const int32_t *) a, y = *(const int32_t *) b;

	return x < y ? -1 : (x > y ? 1 : 0);
}

/* A non-negative decimal in s[b..e), at most max: 0, or -1 when it is not one. */
static int
parse_id(const char *s, size_t b, size_t e, int max, int *out)
{
	long		v = 0;

	if (b >= e)
		return -1;
	for (size_t i = b; i < e; i++)
	{
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
		if (v > max)
			return -1;
	}
	*out = (int) v;
	return 0;
}

clad_status
clad_parse_id_list(const char *s, int max_id, int32_t **ids, int *n)
{
	size_t		len = strlen(s), pos = 0;
	int32_t    *v = NULL;
	int			cnt = 0, cap = 0;

	*ids = NULL;
	*n = 0;
	if (len == 0)
		return clad_fail(CLAD_ERR_INVALID, "empty list of class ids");
	/* items separated by commas; each "ID" or "FIRST-LAST", spaces around allowed */
	while (pos <= len)
	{
		size_t		b = pos, e, dash;
		int			lo, hi;

		e = b;
		while (e < len && s[e] != ',')
			e++;
		pos = e + 1;
		trim(s, &b, &e);
		if (b == e)
		{
			free(v);
			return clad_fail(CLAD_ERR_INVALID, "empty item in the class list \"%s\"", s);
		}
		for (dash = b; dash < e && s[dash] != '-'; dash++)
			;
		if (dash < e)
		{
			size_t		b1 = b, e1 = dash, b2 = dash + 1, e2 = e;

			trim(s, &b1, &e1);
			trim(s, &b2, &e2);
			if (parse_id(s, b1, e1, max_id, &lo) != 0 || parse_id(s, b2, e2, max_id, &hi) != 0)
			{
				free(v);
				return clad_fail(CLAD_ERR_INVALID,
								 "bad range \"%.*s\" in the class list \"%s\" (ids are 0-%d)",
								 (int) (e - b), s + b, s, max_id);
			}
			if (lo > hi)
			{
				free(v);
				return clad_fail(CLAD_ERR_INVALID, "range \"%.*s\" in \"%s\" runs backwards",
								 (int) (e - b), s + b, s);
			}
		}
		else if (parse_id(s, b, e, max_id, &lo) == 0)
			hi = lo;
		else
		{
			free(v);
			return clad_fail(CLAD_ERR_INVALID, "bad class id \"%.*s\" in \"%s\" (ids are 0-%d)",
							 (int) (e - b), s + b, s, max_id);
		}
		for (int id = lo; id <= hi; id++)
		{
			if (cnt == cap)
			{
				int32_t    *nv;

				cap = cap ? cap * 2 : 16;
				if (!(nv = realloc(v, sizeof(int32_t) * cap)))
				{
					free(v);
					return clad_fail(CLAD_ERR_NOMEM, "out of memory parsing a class list");
				}
				v = nv;
			}
			v[cnt++] = id;
		}
	}
	qsort(v, cnt, sizeof(int32_t), by_int32);
	for (int i = 1; i < cnt; i++)
		if (v[i] == v[i - 1])
		{
			int			dup = v[i];

			free(v);
			return clad_fail(CLAD_ERR_INVALID, "class %d is listed twice in \"%s\"", dup, s);
		}
	*ids = v;
	*n = cnt;
	return CLAD_OK;
}

/* The canonical text of sorted ids: runs of three or more as ranges. */
static void
format_ids(char *buf, size_t size, const int32_t *ids, int n)
{
	size_t		used = 0;

	buf[0] = '\0';
	for (int i = 0; i < n;)
	{
		int			j = i;
		int			w;

		while (j + 1 < n && ids[j + 1] == ids[j] + 1)
			j++;
		if (j - i >= 2)
			w = snprintf(buf + used, size - used, "%s%d-%d", i ? "," : "", ids[i], ids[j]);
		else
		{
			j = i;
			w = snprintf(buf + used, size - used, "%s%d", i ? "," : "", ids[i]);
		}
		if (w < 0 || (size_t) w >= size - used)
		{
			/* too long to show whole: end with an ellipsis */
			if (size >= 4)
				strcpy(buf + size - 4, "...");
			return;
		}
		used += w;
		i = j + 1;
	}
}

clad_status
clad_scenario_parse(const char *spec, clad_scenario *out)
{
	const char *colon;
	const dataset_info *ds = NULL;
	const char *rest;
	size_t		b = 0, e;
	clad_status st;

	memset(out, 0, sizeof(*out));
	out->settings.eps = -1.0f;
	if (!spec)
		return clad_fail(CLAD_ERR_INVALID, "no scenario given");
	e = strlen(spec);
	trim(spec, &b, &e);
	if (b == e)
		return clad_fail(CLAD_ERR_INVALID, "empty scenario");

	colon = memchr(spec + b, ':', e - b);
	if (!colon)
	{
		/* a plain list of ids */
		char	   *list = strndup(spec + b, e - b);

		if (!list)
			return clad_fail(CLAD_ERR_NOMEM, "out of memory parsing a scenario");
		st = clad_parse_id_list(list, CLAD_SCENARIO_MAX_ID, &out->classes, &out->n_classes);
		free(list);
		if (st != CLAD_OK)
			return st;
		format_ids(out->label, sizeof(out->label), out->classes, out->n_classes);
		return CLAD_OK;
	}

	for (int i = 0; i < N_DATASETS && !ds; i++)
		for (int a = 0; a < 3 && datasets[i].aliases[a]; a++)
			if (ieq_n(spec + b, colon - (spec + b), datasets[i].aliases[a]))
				ds = &datasets[i];
	if (!ds)
		return clad_fail(CLAD_ERR_INVALID,
						 "unknown dataset \"%.*s\" in scenario \"%s\" (known: mnist, cifar10, gtsrb, tiny)",
						 (int) (colon - (spec + b)), spec + b, spec);
	snprintf(out->dataset, sizeof(out->dataset), "%s", ds->name);
	out->max_classes = ds->n_classes;
	out->settings = ds->settings;

	rest = colon + 1;
	{
		size_t		rb = rest - spec, re = e;
		char	   *item;

		trim(spec, &rb, &re);
		if (rb == re)
			return clad_fail(CLAD_ERR_INVALID, "scenario \"%s\" names no classes", spec);
		if (!(item = strndup(spec + rb, re - rb)))
			return clad_fail(CLAD_ERR_NOMEM, "out of memory parsing a scenario");

		if (item[0] >= '0' && item[0] <= '9')
		{
			/* ids of this dataset: "mnist:3" (one class), "gtsrb:11,18-31" */
			char		ids[48];

			st = clad_parse_id_list(item, ds->n_classes - 1, &out->classes, &out->n_classes);
			free(item);
			if (st != CLAD_OK)
			{
				char		why[256];

				/* clad_fail writes the buffer clad_last_error() points to: copy it first */
				snprintf(why, sizeof(why), "%s", clad_last_error());
				clad_scenario_free(out);
				return clad_fail(st, "scenario \"%s\": %s (%s has classes 0-%d)",
								 spec, why, ds->name, ds->n_classes - 1);
			}
			format_ids(ids, sizeof(ids), out->classes, out->n_classes);
			snprintf(out->label, sizeof(out->label), "%s:%s", ds->name, ids);
			return CLAD_OK;
		}

		for (int i = 0; i < N_PRESETS; i++)
		{
			const preset *p = &presets[i];

			if (strcmp(p->dataset, ds->name) != 0 || !ieq(item, p->name))
				continue;
			free(item);
			snprintf(out->label, sizeof(out->label), "%s:%s", ds->name, p->name);
			if (p->latent > 0)
				out->settings.latent = p->latent;
			if (p->names)
			{
				out->names = p->names;
				out->n_names = p->n_names;
				return CLAD_OK;
			}
			if ((st = clad_parse_id_list(p->ids, ds->n_classes - 1, &out->classes,
										 &out->n_classes)) != CLAD_OK)
			{
				clad_scenario_free(out);
				return st;
			}
			return CLAD_OK;
		}
		{
			char		known[160] = "";
			size_t		used = 0;

			for (int i = 0; i < N_PRESETS; i++)
				if (strcmp(presets[i].dataset, ds->name) == 0)
				{
					int			w = snprintf(known + used, sizeof(known) - used, "%s%s",
											 used ? ", " : "", presets[i].name);

					if (w > 0 && (size_t) w < sizeof(known) - used)
						used += w;
				}
			clad_fail(CLAD_ERR_INVALID,
					  "unknown scenario \"%s\" for %s (presets: %s; or class ids such as %s:0,3)",
					  item, ds->name, known, ds->name);
			free(item);
			clad_scenario_free(out);
			return CLAD_ERR_INVALID;
		}
	}
}

void
clad_scenario_apply(const clad_scenario *sc, clad_train_config *cfg)
{
	const clad_scenario_settings *s = &sc->settings;

	if (s->autoencoder)
		snprintf(cfg->autoencoder, sizeof(cfg->autoencoder), "%s", s->autoencoder);
	if (s->K > 0)
		cfg->K = s->K;
	if (s->latent > 0)
		cfg->latent = s->latent;
	if (s->eps >= 0.0f)
		cfg->eps = s->eps;
}

/* ------------------------------------------------------------------ words.txt */

typedef struct wnid_ref
{
	const char *wnid;
	int			idx;
} wnid_ref;

static int
by_wnid(const void *a, const void *b)
{
	return strcmp(((const wnid_ref *) a)->wnid, ((const wnid_ref *) b)->wnid);
}

clad_status
clad_words_match(const char *words_path, const char *const *names, int n_names,
				 char *const *wnids, int n_wnids, int32_t *ids)
{
	FILE	   *fp;
	char	   *line = NULL;
	size_t		cap = 0;
	ssize_t		len;
	long		lineno = 0;
	wnid_ref   *index = NULL;
	int		   *second = NULL;	/* a second class a name matched, -1 when none */
	clad_status st = CLAD_OK;

	if (n_names <= 0)
		return CLAD_OK;
	if (n_wnids <= 0 || !wnids)
		return clad_fail(CLAD_ERR_INVALID, "the set has no class names to match words.txt against");
	if (!(fp = fopen(words_path, "r")))
	{
		int			e = errno;

		return clad_fail(CLAD_ERR_IO, "cannot open \"%s\": %s", words_path, strerror(e));
	}
	index = malloc(sizeof(wnid_ref) * n_wnids);
	second = malloc(sizeof(int) * n_names);
	if (!index || !second)
	{
		st = clad_fail(CLAD_ERR_NOMEM, "out of memory reading \"%s\"", words_path);
		goto done;
	}
	for (int i = 0; i < n_wnids; i++)
	{
		index[i].wnid = wnids[i];
		index[i].idx = i;
	}
	qsort(index, n_wnids, sizeof(wnid_ref), by_wnid);
	for (int i = 0; i < n_names; i++)
	{
		ids[i] = -1;
		second[i] = -1;
	}

	errno = 0;
	while ((len = getline(&line, &cap, fp)) >= 0)
	{
		size_t		wb = 0, we, pos;
		char	   *tab;
		wnid_ref	key, *hit;

		lineno++;
		if (memchr(line, '\0', len))
		{
			st = clad_fail(CLAD_ERR_FORMAT, "\"%s\" line %ld holds a NUL byte", words_path, lineno);
			goto done;
		}
		we = len;
		trim(line, &wb, &we);
		if (wb == we)
			continue;
		if (!(tab = memchr(line + wb, '\t', we - wb)))
		{
			st = clad_fail(CLAD_ERR_FORMAT, "\"%s\" line %ld is not \"wnid<TAB>names\"",
						   words_path, lineno);
			goto done;
		}
		/* wnid: the part before the tab */
		{
			size_t		kb = wb, ke = tab - line;

			trim(line, &kb, &ke);
			line[ke] = '\0';
			key.wnid = line + kb;
		}
		if (!(hit = bsearch(&key, index, n_wnids, sizeof(wnid_ref), by_wnid)))
			continue;			/* not a class of this set */

		/* names: comma-separated after the tab */
		pos = tab - line + 1;
		while (pos <= we)
		{
			size_t		nb = pos, ne = pos;

			while (ne < we && line[ne] != ',')
				ne++;
			pos = ne + 1;
			trim(line, &nb, &ne);
			if (nb == ne)
				continue;
			for (int i = 0; i < n_names; i++)
			{
				const char *want = names[i];
				size_t		tb = 0, te = strlen(want);

				trim(want, &tb, &te);
				if (!ieq_nn(line + nb, ne - nb, want + tb, te - tb))
					continue;
				if (ids[i] < 0)
					ids[i] = hit->idx;
				else if (ids[i] != hit->idx && second[i] < 0)
					second[i] = hit->idx;
			}
		}
	}
	if (ferror(fp))
	{
		int			e = errno;

		st = clad_fail(CLAD_ERR_IO, "cannot read \"%s\": %s", words_path, strerror(e));
		goto done;
	}
	for (int i = 0; i < n_names; i++)
	{
		if (ids[i] < 0)
		{
			st = clad_fail(CLAD_ERR_INVALID,
						   "\"%s\" is not a name of any class of the set in \"%s\"",
						   names[i], words_path);
			goto done;
		}
		if (second[i] >= 0)
		{
			st = clad_fail(CLAD_ERR_INVALID,
						   "\"%s\" is ambiguous in \"%s\": it names %s and %s",
						   names[i], words_path, wnids[ids[i]], wnids[second[i]]);
			goto done;
		}
	}
done:
	free(line);
	free(index);
	free(second);
	fclose(fp);
	if (st != CLAD_OK)
		for (int i = 0; i < n_names; i++)
			ids[i] = -1;
	return st;
}

/* ------------------------------------------------------------------ resolve */

clad_status
clad_scenario_resolve(clad_scenario *sc, char *const *class_names, int n_classes,
					  const char *words_path)
{
	if (sc->n_names > 0)
	{
		int32_t    *ids;
		const char **pending;
		int		   *pending_at;
		int			n_pending = 0;
		clad_status st = CLAD_OK;

		if (!class_names || n_classes <= 0)
			return clad_fail(CLAD_ERR_INVALID,
							 "scenario %s names its classes, but the set has no class names",
							 sc->label);
		ids = malloc(sizeof(int32_t) * sc->n_names);
		pending = malloc(sizeof(char *) * sc->n_names);
		pending_at = malloc(sizeof(int) * sc->n_names);
		if (!ids || !pending || !pending_at)
		{
			free(ids);
			free(pending);
			free(pending_at);
			return clad_fail(CLAD_ERR_NOMEM, "out of memory resolving scenario %s", sc->label);
		}

		/* a class folder named as the class itself (a user's set) matches directly */
		for (int i = 0; i < sc->n_names && st == CLAD_OK; i++)
		{
			int			found = -1;

			for (int c = 0; c < n_classes; c++)
				if (class_names[c] && ieq(sc->names[i], class_names[c]))
				{
					if (found >= 0)
					{
						st = clad_fail(CLAD_ERR_INVALID, "\"%s\" names two classes of the set (%d and %d)",
									   sc->names[i], found, c);
						break;
					}
					found = c;
				}
			ids[i] = found;
			if (found < 0)
			{
				pending_at[n_pending] = i;
				pending[n_pending++] = sc->names[i];
			}
		}

		/* the others through words.txt (class names are wnids) */
		if (st == CLAD_OK && n_pending > 0)
		{
			int32_t    *got = malloc(sizeof(int32_t) * n_pending);

			if (!got)
				st = clad_fail(CLAD_ERR_NOMEM, "out of memory resolving scenario %s", sc->label);
			else if (!words_path)
				st = clad_fail(CLAD_ERR_INVALID,
							   "\"%s\" is not a class name of the set, and no words.txt was found to map names to wnids",
							   pending[0]);
			else if ((st = clad_words_match(words_path, pending, n_pending, class_names, n_classes,
											got)) == CLAD_OK)
				for (int j = 0; j < n_pending; j++)
					ids[pending_at[j]] = got[j];
			free(got);
		}
		free(pending);
		free(pending_at);
		if (st != CLAD_OK)
		{
			free(ids);
			return st;
		}
		qsort(ids, sc->n_names, sizeof(int32_t), by_int32);
		for (int i = 1; i < sc->n_names; i++)
			if (ids[i] == ids[i - 1])
			{
				int			dup = ids[i];

				free(ids);
				return clad_fail(CLAD_ERR_INVALID, "two names of scenario %s map to the same class \"%s\"",
								 sc->label, class_names[dup]);
			}
		free(sc->classes);
		sc->classes = ids;
		sc->n_classes = sc->n_names;
		sc->names = NULL;
		sc->n_names = 0;
	}
	if (sc->n_classes <= 0)
		return clad_fail(CLAD_ERR_INVALID, "scenario %s has no normal classes", sc->label);
	if (n_classes > 0)
		for (int i = 0; i < sc->n_classes; i++)
			if (sc->classes[i] >= n_classes)
				return clad_fail(CLAD_ERR_INVALID,
								 "normal class %d of scenario %s is not in the set (it has classes 0-%d)",
								 sc->classes[i], sc->label, n_classes - 1);
	return CLAD_OK;
}

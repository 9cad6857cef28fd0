/* trainer/dataset_files.c: the loaders that decode image files: GTSRB, class folders, Tiny-ImageNet validation. */
#include "dataset.h"
#include "dataset_internal.h"
#include "image.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* Largest image a loader decodes (width * height). */
#define DATASET_MAX_PIXELS ((size_t) 1 << 26)

/* ---------------------------------------------------------------- helpers */

/* Prefix the calling thread's last error with what (a path); keeps the status. */
static clad_status
fail_in(clad_status st, const char *what)
{
	char		msg[512];

	snprintf(msg, sizeof(msg), "%s", clad_last_error());
	return clad_fail(st, "%s: %s", what, msg);
}

/* A growable list of strings. */
typedef struct strlist
{
	char	  **v;
	size_t		n,
				cap;
} strlist;

static clad_status
strlist_add(strlist *l, const char *s)
{
	char	   *c;

	if (l->n == l->cap)
	{
		size_t		cap = l->cap ? l->cap * 2 : 16;
		char	  **v = realloc(l->v, cap * sizeof(char *));

		if (!v)
			return clad_fail(CLAD_ERR_NOMEM, "out of memory listing files");
		l->v = v;
		l->cap = cap;
	}
	c = strdup(s);
	if (!c)
		return clad_fail(CLAD_ERR_NOMEM, "out of memory listing files");
	l->v[l->n++] = c;
	return CLAD_OK;
}

static void
strlist_free(strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/*
 * The names in dir (not "." nor hidden ones) that are directories (want_dirs)
 * or regular files accepted by accept (may be NULL), sorted bytewise.
 */
static clad_status
list_dir(const char *dir, int want_dirs, int (*accept) (const char *), strlist *out)
{
	DIR		   *d = opendir(dir);
	struct dirent *e;
	char		path[PATH_MAX];
	clad_status st = CLAD_OK;

	memset(out, 0, sizeof(*out));
	if (!d)
		return clad_fail(CLAD_ERR_IO, "%s: %s", dir, strerror(errno));
	while ((e = readdir(d)) != NULL)
	{
		if (e->d_name[0] == '.')
			continue;
		if ((st = dataset_join(path, sizeof(path), dir, e->d_name)) != CLAD_OK)
			break;
		if (want_dirs ? !dataset_is_dir(path) : (!dataset_is_file(path) || (accept && !accept(e->d_name))))
			continue;
		if ((st = strlist_add(out, e->d_name)) != CLAD_OK)
			break;
	}
	closedir(d);
	if (st != CLAD_OK)
	{
		strlist_free(out);
		return st;
	}
	if (out->n > 1)
		qsort(out->v, out->n, sizeof(char *), cmp_str);
	return CLAD_OK;
}

/* One image file's bytes (PNG, JPEG, PGM/PPM) to (C,H,W) in [0,1], resized. */
static clad_status
decode_image(const uint8_t *bytes, size_t len, int C, int H, int W, float *out)
{
	return clad_image_decode(bytes, len, C, H, W, DATASET_MAX_PIXELS, out);
}

/* ------------------------------------------------------------------ GTSRB */

typedef struct gtsrb_item
{
	char	   *path;
	int			w,
				h,
				x1,
				y1,
				x2,
				y2,
				cls;
} gtsrb_item;

typedef struct gtsrb_list
{
	gtsrb_item *v;
	size_t		n,
				cap;
} gtsrb_list;

static void
gtsrb_list_free(gtsrb_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].path);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

#define GTSRB_HEADER "Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId"
#define GTSRB_CLASSES 43

/* A decimal field in [0, 1000000]; -1 when malformed. */
static long
csv_uint(const char *s)
{
	long		v = 0;

	if (!*s)
		return -1;
	for (; *s; s++)
	{
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (*s - '0');
		if (v > 1000000)
			return -1;
	}
	return v;
}

/*
 * One GT CSV (images in imgdir): the official header, then one
 * "Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId" line per image
 * (CRLF or LF).  want_cls >= 0: every line must carry that class (the
 * training folders hold one class each).
 */
static clad_status
gtsrb_read_csv(const char *csv, const char *imgdir, int want_cls, gtsrb_list *out)
{
	uint8_t    *buf;
	size_t		len;
	char	   *text,
			   *line,
			   *next;
	int			lineno = 0;
	clad_status st;

	if ((st = dataset_read_file(csv, &buf, &len)) != CLAD_OK)
		return st;
	if (memchr(buf, 0, len))
	{
		free(buf);
		return clad_fail(CLAD_ERR_FORMAT, "%s: holds NUL bytes", csv);
	}
	buf[len] = 0;
	text = (char *) buf;
	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)	/* a UTF-8 BOM */
		text += 3;
	for (line = text; line && *line; line = next)
	{
		char	   *f[9];
		int			nf = 0;
		size_t		ll;
		long		v[7];
		char		path[PATH_MAX];

		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		ll = strlen(line);
		if (ll > 0 && line[ll - 1] == '\r')
			line[--ll] = 0;
		lineno++;
		if (lineno == 1)
		{
			if (strcmp(line, GTSRB_HEADER) != 0)
			{
				st = clad_fail(CLAD_ERR_FORMAT, "%s: header is not \"%s\"", csv, GTSRB_HEADER);
				goto done;
			}
			continue;
		}
		if (ll == 0)
		{
			if (next && *next)
			{
				st = clad_fail(CLAD_ERR_FORMAT, "%s:%d: empty line", csv, lineno);
				goto done;
			}
			continue;
		}
		f[nf++] = line;
		for (char *p = line; *p; p++)
			if (*p == ';')
			{
				*p = 0;
				if (nf == 9)
					break;
				f[nf++] = p + 1;
			}
		if (nf != 8)
		{
			st = clad_fail(CLAD_ERR_FORMAT, "%s:%d: %d fields, want 8", csv, lineno, nf);
			goto done;
		}
		if (!f[0][0] || f[0][0] == '.' || strchr(f[0], '/') || strchr(f[0], '\\'))
		{
			st = clad_fail(CLAD_ERR_FORMAT, "%s:%d: bad file name \"%s\"", csv, lineno, f[0]);
			goto done;
		}
		for (int i = 0; i < 7; i++)
			if ((v[i] = csv_uint(f[i + 1])) < 0)
			{
				st = clad_fail(CLAD_ERR_FORMAT, "%s:%d: field %d is not a number", csv, lineno, i + 2);
				goto done;
			}
		/* ROI inclusive: 0 <= X1 <= X2 < Width, same for Y */
		if (v[0] < 1 || v[1] < 1 || v[2] > v[4] || v[4] >= v[0] || v[3] > v[5] || v[5] >= v[1])
		{
			st = clad_fail(CLAD_ERR_FORMAT, "%s:%d: ROI (%ld,%ld)-(%ld,%ld) not inside %ldx%ld",
						   csv, lineno, v[2], v[3], v[4], v[5], v[0], v[1]);
			goto done;
		}
		if (v[6] >= GTSRB_CLASSES || (want_cls >= 0 && v[6] != want_cls))
		{
			st = clad_fail(CLAD_ERR_FORMAT, "%s:%d: class %ld%s", csv, lineno, v[6],
						   v[6] >= GTSRB_CLASSES ? " is not a GTSRB class" : " in another class's folder");
			goto done;
		}
		if ((st = dataset_join(path, sizeof(path), imgdir, f[0])) != CLAD_OK)
			goto done;
		if (out->n == out->cap)
		{
			size_t		cap = out->cap ? out->cap * 2 : 256;
			gtsrb_item *nv = realloc(out->v, cap * sizeof(gtsrb_item));

			if (!nv)
			{
				st = clad_fail(CLAD_ERR_NOMEM, "GTSRB: out of memory");
				goto done;
			}
			out->v = nv;
			out->cap = cap;
		}
		{
			gtsrb_item *it = &out->v[out->n];

			it->path = strdup(path);
			if (!it->path)
			{
				st = clad_fail(CLAD_ERR_NOMEM, "GTSRB: out of memory");
				goto done;
			}
			it->w = (int) v[0];
			it->h = (int) v[1];
			it->x1 = (int) v[2];
			it->y1 = (int) v[3];
			it->x2 = (int) v[4];
			it->y2 = (int) v[5];
			it->cls = (int) v[6];
			out->n++;
		}
	}
	if (lineno == 0)
		st = clad_fail(CLAD_ERR_FORMAT, "%s: empty", csv);
done:
	free(buf);
	return st;
}

static int
all_digits(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return 1;
}

clad_status
clad_load_gtsrb(const char *dir, clad_split split, int size, clad_dataset *out)
{
	char		root[PATH_MAX],
				path[PATH_MAX],
				sub[PATH_MAX],
				name[64];
	gtsrb_list	items = {0};
	strlist		classes = {0};
	clad_dataset d;
	clad_status st = CLAD_OK;
	uint8_t    *bytes = NULL;
	float	   *full = NULL,
			   *crop = NULL;
	size_t		full_cap = 0;
	const char *part = split == CLAD_SPLIT_TRAIN ? "Final_Training/Images" : "Final_Test/Images";

	if (!out)
		return clad_fail(CLAD_ERR_INVALID, "GTSRB: no output");
	memset(out, 0, sizeof(*out));
	memset(&d, 0, sizeof(d));
	if (!dir || (split != CLAD_SPLIT_TRAIN && split != CLAD_SPLIT_TEST))
		return clad_fail(CLAD_ERR_INVALID, "GTSRB: bad arguments");
	if (size < 1 || size > 4096)
		return clad_fail(CLAD_ERR_INVALID, "GTSRB: size %d not in [1, 4096]", size);
	/* dir is the GTSRB/ folder of the official zips, or the folder holding it */
	if ((st = dataset_join(root, sizeof(root), dir, part)) != CLAD_OK)
		return st;
	if (!dataset_is_dir(root))
	{
		if ((st = dataset_join(sub, sizeof(sub), dir, "GTSRB")) != CLAD_OK ||
			(st = dataset_join(root, sizeof(root), sub, part)) != CLAD_OK)
			return st;
		if (!dataset_is_dir(root))
			return clad_fail(CLAD_ERR_IO, "GTSRB: no %s under %s (nor under %s/GTSRB)", part, dir, dir);
	}

	if (split == CLAD_SPLIT_TRAIN)
	{
		/* Images/NNNNN/GT-NNNNN.csv, one folder per class */
		if ((st = list_dir(root, 1, NULL, &classes)) != CLAD_OK)
			goto done;
		for (size_t c = 0; c < classes.n; c++)
		{
			long		cls;

			if (!all_digits(classes.v[c]) || strlen(classes.v[c]) != 5)
				continue;
			cls = strtol(classes.v[c], NULL, 10);
			if ((st = dataset_join(sub, sizeof(sub), root, classes.v[c])) != CLAD_OK)
				goto done;
			snprintf(name, sizeof(name), "GT-%s.csv", classes.v[c]);
			if ((st = dataset_join(path, sizeof(path), sub, name)) != CLAD_OK)
				goto done;
			if ((st = gtsrb_read_csv(path, sub, (int) cls, &items)) != CLAD_OK)
				goto done;
		}
	}
	else
	{
		/* GT-final_test.csv (from GTSRB_Final_Test_GT.zip) beside the images, or in dir */
		if ((st = dataset_join(path, sizeof(path), root, "GT-final_test.csv")) != CLAD_OK)
			goto done;
		if (!dataset_is_file(path) && (st = dataset_join(path, sizeof(path), dir, "GT-final_test.csv")) != CLAD_OK)
			goto done;
		if (!dataset_is_file(path))
		{
			st = clad_fail(CLAD_ERR_IO, "GTSRB: no GT-final_test.csv in %s nor in %s "
						   "(it comes in GTSRB_Final_Test_GT.zip)", root, dir);
			goto done;
		}
		if ((st = gtsrb_read_csv(path, root, -1, &items)) != CLAD_OK)
			goto done;
	}
	if (items.n == 0)
	{
		st = clad_fail(CLAD_ERR_FORMAT, "GTSRB: no images listed under %s", root);
		goto done;
	}
	if ((st = dataset_alloc(&d, items.n, 3, size, size)) != CLAD_OK)
		goto done;
	for (size_t i = 0; i < items.n; i++)
	{
		gtsrb_item *it = &items.v[i];
		size_t		len,
					need = (size_t) 3 * it->w * it->h;	/* w, h <= 10^6: CSV-checked */
		int			w,
					h,
					rw = it->x2 - it->x1 + 1,
					rh = it->y2 - it->y1 + 1;

		if ((st = dataset_read_file(it->path, &bytes, &len)) != CLAD_OK)
			goto done;
		if ((st = clad_image_probe(bytes, len, &w, &h, NULL)) != CLAD_OK)
		{
			st = fail_in(st, it->path);
			goto done;
		}
		if (w != it->w || h != it->h)
		{
			st = clad_fail(CLAD_ERR_FORMAT, "%s: image is %dx%d, the CSV says %dx%d",
						   it->path, w, h, it->w, it->h);
			goto done;
		}
		if ((size_t) w * h > DATASET_MAX_PIXELS)
		{
			st = clad_fail(CLAD_ERR_UNSUPPORTED, "%s: %dx%d image too large", it->path, w, h);
			goto done;
		}
		if (need > full_cap)
		{
			free(full);
			free(crop);
			full = malloc(need * sizeof(float));
			crop = malloc(need * sizeof(float));
			if (!full || !crop)
			{
				st = clad_fail(CLAD_ERR_NOMEM, "GTSRB: cannot allocate a %dx%d image", w, h);
				goto done;
			}
			full_cap = need;
		}
		if ((st = clad_image_decode(bytes, len, 3, h, w, DATASET_MAX_PIXELS, full)) != CLAD_OK)
		{
			st = fail_in(st, it->path);
			goto done;
		}
		free(bytes);
		bytes = NULL;
		for (int c = 0; c < 3; c++)
			for (int y = 0; y < rh; y++)
				memcpy(crop + ((size_t) c * rh + y) * rw,
					   full + ((size_t) c * h + it->y1 + y) * w + it->x1, (size_t) rw * sizeof(float));
		clad_image_resize_bilinear(crop, 3, rh, rw, d.pixels + i * 3 * (size_t) size * size,
								   size, size);
		d.labels[i] = it->cls;
	}
	dataset_set_n_classes(&d);
	*out = d;
	memset(&d, 0, sizeof(d));
done:
	free(bytes);
	free(full);
	free(crop);
	gtsrb_list_free(&items);
	strlist_free(&classes);
	clad_dataset_free(&d);
	return st;
}

/* --------------------------------------------------------- class folders */

static int
image_name(const char *name)
{
	static const char *const ext[] = {".png", ".jpg", ".jpeg", ".pgm", ".ppm", ".pnm"};
	size_t		n = strlen(name);

	for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++)
	{
		size_t		e = strlen(ext[i]);

		if (n > e && strcasecmp(name + n - e, ext[i]) == 0)
			return 1;
	}
	return 0;
}

/* Decode the files paths[0..n) into d's images from index at, labels label. */
static clad_status
decode_files(char *const *paths, size_t n, int32_t label, clad_dataset *d, size_t at)
{
	size_t		per = (size_t) d->C * d->H * d->W;

	for (size_t i = 0; i < n; i++)
	{
		uint8_t    *bytes;
		size_t		len;
		clad_status st;

		if ((st = dataset_read_file(paths[i], &bytes, &len)) != CLAD_OK)
			return st;
		st = decode_image(bytes, len, d->C, d->H, d->W, d->pixels + (at + i) * per);
		free(bytes);
		if (st != CLAD_OK)
			return fail_in(st, paths[i]);
		d->labels[at + i] = label;
	}
	return CLAD_OK;
}

clad_status
clad_load_folder(const char *dir, int C, int H, int W, clad_dataset *out)
{
	strlist		classes = {0};
	strlist    *files = NULL;
	clad_dataset d;
	clad_status st = CLAD_OK;
	char		path[PATH_MAX];
	size_t		total = 0,
				at = 0,
				nclass;

	if (!out)
		return clad_fail(CLAD_ERR_INVALID, "folder: no output");
	memset(out, 0, sizeof(*out));
	memset(&d, 0, sizeof(d));
	if (!dir || (C != 1 && C != 3) || H < 1 || W < 1)
		return clad_fail(CLAD_ERR_INVALID, "folder: bad arguments");
	if ((st = list_dir(dir, 1, NULL, &classes)) != CLAD_OK)
		return st;
	nclass = classes.n;
	if (classes.n == 0)
	{
		st = clad_fail(CLAD_ERR_FORMAT, "folder: %s has no class sub-folders", dir);
		goto done;
	}
	if (classes.n > INT_MAX)
	{
		st = clad_fail(CLAD_ERR_UNSUPPORTED, "folder: too many classes");
		goto done;
	}
	files = calloc(classes.n, sizeof(strlist));
	if (!files)
	{
		st = clad_fail(CLAD_ERR_NOMEM, "folder: out of memory");
		goto done;
	}
	for (size_t c = 0; c < classes.n; c++)
	{
		char		cdir[PATH_MAX],
					idir[PATH_MAX];

		if ((st = dataset_join(cdir, sizeof(cdir), dir, classes.v[c])) != CLAD_OK ||
			(st = dataset_join(idir, sizeof(idir), cdir, "images")) != CLAD_OK)
			goto done;
		/* Tiny-ImageNet's train/<wnid>/images/ holds the JPEGs; otherwise the class folder does */
		if (!dataset_is_dir(idir))
			memcpy(idir, cdir, sizeof(idir));
		if ((st = list_dir(idir, 0, image_name, &files[c])) != CLAD_OK)
			goto done;
		if (files[c].n == 0)
		{
			st = clad_fail(CLAD_ERR_FORMAT, "folder: class %s has no PNG, JPEG or PGM/PPM files in %s",
						   classes.v[c], idir);
			goto done;
		}
		/* full paths, in the sorted order */
		for (size_t i = 0; i < files[c].n; i++)
		{
			char	   *full;

			if ((st = dataset_join(path, sizeof(path), idir, files[c].v[i])) != CLAD_OK)
				goto done;
			if (!(full = strdup(path)))
			{
				st = clad_fail(CLAD_ERR_NOMEM, "folder: out of memory");
				goto done;
			}
			free(files[c].v[i]);
			files[c].v[i] = full;
		}
		total += files[c].n;
	}
	if ((st = dataset_alloc(&d, total, C, H, W)) != CLAD_OK)
		goto done;
	for (size_t c = 0; c < classes.n; c++)
	{
		if ((st = decode_files(files[c].v, files[c].n, (int32_t) c, &d, at)) != CLAD_OK)
			goto done;
		at += files[c].n;
	}
	d.n_classes = (int) classes.n;
	d.class_names = classes.v;	/* taken over: n == n_classes */
	memset(&classes, 0, sizeof(classes));
	*out = d;
	memset(&d, 0, sizeof(d));
done:
	if (files)
		for (size_t c = 0; c < nclass; c++)
			strlist_free(&files[c]);
	free(files);
	strlist_free(&classes);
	clad_dataset_free(&d);
	return st;
}

/* ---------------------------------------------- Tiny-ImageNet validation */

clad_status
clad_load_tinyimagenet_val(const char *dir, char *const *class_names, int n_classes,
						   int C, int H, int W, clad_dataset *out)
{
	char		path[PATH_MAX],
				idir[PATH_MAX];
	uint8_t    *buf = NULL;
	size_t		len,
				n = 0;
	strlist		paths = {0};
	int32_t    *labels = NULL;
	size_t		lcap = 0;
	clad_dataset d;
	clad_status st;
	int			lineno = 0;

	if (!out)
		return clad_fail(CLAD_ERR_INVALID, "Tiny-ImageNet: no output");
	memset(out, 0, sizeof(*out));
	memset(&d, 0, sizeof(d));
	if (!dir || !class_names || n_classes < 1 || (C != 1 && C != 3) || H < 1 || W < 1)
		return clad_fail(CLAD_ERR_INVALID, "Tiny-ImageNet: bad arguments");
	if ((st = dataset_join(path, sizeof(path), dir, "val_annotations.txt")) != CLAD_OK ||
		(st = dataset_join(idir, sizeof(idir), dir, "images")) != CLAD_OK)
		return st;
	if ((st = dataset_read_file(path, &buf, &len)) != CLAD_OK)
		return st;
	if (memchr(buf, 0, len))
	{
		st = clad_fail(CLAD_ERR_FORMAT, "%s: holds NUL bytes", path);
		goto done;
	}
	buf[len] = 0;
	/* "<file>\t<wnid>\t<x0>\t<y0>\t<x1>\t<y1>" per line; the boxes are not used */
	for (char *line = (char *) buf, *next; line && *line; line = next)
	{
		char	   *tab1,
				   *tab2;
		char		img[PATH_MAX];
		int			label = -1;
		size_t		ll;

		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		lineno++;
		ll = strlen(line);
		if (ll > 0 && line[ll - 1] == '\r')
			line[--ll] = 0;
		if (ll == 0)
			continue;
		tab1 = strchr(line, '\t');
		tab2 = tab1 ? strchr(tab1 + 1, '\t') : NULL;
		if (!tab1)
		{
			st = clad_fail(CLAD_ERR_FORMAT, "%s:%d: no tab-separated file and class", path, lineno);
			goto done;
		}
		*tab1 = 0;
		if (tab2)
			*tab2 = 0;
		if (!line[0] || line[0] == '.' || strchr(line, '/'))
		{
			st = clad_fail(CLAD_ERR_FORMAT, "%s:%d: bad file name", path, lineno);
			goto done;
		}
		for (int c = 0; c < n_classes; c++)
			if (class_names[c] && strcmp(class_names[c], tab1 + 1) == 0)
				label = c;
		if (label < 0)
		{
			st = clad_fail(CLAD_ERR_FORMAT, "%s:%d: class \"%s\" is not one of the training classes",
						   path, lineno, tab1 + 1);
			goto done;
		}
		if ((st = dataset_join(img, sizeof(img), idir, line)) != CLAD_OK ||
			(st = strlist_add(&paths, img)) != CLAD_OK)
			goto done;
		if (n == lcap)
		{
			size_t		cap = lcap ? lcap * 2 : 1024;
			int32_t    *nl = realloc(labels, cap * sizeof(int32_t));

			if (!nl)
			{
				st = clad_fail(CLAD_ERR_NOMEM, "Tiny-ImageNet: out of memory");
				goto done;
			}
			labels = nl;
			lcap = cap;
		}
		labels[n++] = label;
	}
	if (n == 0)
	{
		st = clad_fail(CLAD_ERR_FORMAT, "%s: no images listed", path);
		goto done;
	}
	if ((st = dataset_alloc(&d, n, C, H, W)) != CLAD_OK)
		goto done;
	for (size_t i = 0; i < n; i++)
		if ((st = decode_files(&paths.v[i], 1, labels[i], &d, i)) != CLAD_OK)
			goto done;
	d.class_names = calloc((size_t) n_classes, sizeof(char *));
	if (!d.class_names)
	{
		st = clad_fail(CLAD_ERR_NOMEM, "Tiny-ImageNet: out of memory");
		goto done;
	}
	d.n_classes = n_classes;
	for (int c = 0; c < n_classes; c++)
		if (class_names[c] && !(d.class_names[c] = strdup(class_names[c])))
		{
			st = clad_fail(CLAD_ERR_NOMEM, "Tiny-ImageNet: out of memory");
			goto done;
		}
	*out = d;
	memset(&d, 0, sizeof(d));
done:
	free(buf);
	free(labels);
	strlist_free(&paths);
	clad_dataset_free(&d);
	return st;
}

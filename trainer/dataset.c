/* trainer/dataset.c: the dataset type (allocation, free, filter, channel stats) and the binary readers: idx (MNIST), CIFAR-10. */
#include "dataset.h"
#include "dataset_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

/* The largest file a loader reads whole. */
#define DATASET_MAX_FILE ((size_t) 1 << 30)

/* ------------------------------------------------- helpers (dataset_internal.h) */

/* out = a "/" b, refusing paths that do not fit. */
clad_status
dataset_join(char *out, size_t cap, const char *a, const char *b)
{
	int			n = snprintf(out, cap, "%s/%s", a, b);

	if (n < 0 || (size_t) n >= cap)
		return clad_fail(CLAD_ERR_INVALID, "path too long: %s/%s", a, b);
	return CLAD_OK;
}

int
dataset_is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int
dataset_is_file(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* A whole regular file (at most DATASET_MAX_FILE bytes) into *buf (malloc'd). */
clad_status
dataset_read_file(const char *path, uint8_t **buf, size_t *len)
{
	FILE	   *f = fopen(path, "rb");
	struct stat st;
	uint8_t    *b;
	size_t		n;

	*buf = NULL;
	*len = 0;
	if (!f)
		return clad_fail(CLAD_ERR_IO, "%s: %s", path, strerror(errno));
	if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode))
	{
		fclose(f);
		return clad_fail(CLAD_ERR_IO, "%s: not a regular file", path);
	}
	if (st.st_size < 0 || (uint64_t) st.st_size > DATASET_MAX_FILE)
	{
		fclose(f);
		return clad_fail(CLAD_ERR_UNSUPPORTED, "%s: larger than %zu bytes", path,
						 (size_t) DATASET_MAX_FILE);
	}
	n = (size_t) st.st_size;
	b = malloc(n + 1);
	if (!b)
	{
		fclose(f);
		return clad_fail(CLAD_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, n);
	}
	if (fread(b, 1, n, f) != n || fgetc(f) != EOF)
	{
		fclose(f);
		free(b);
		return clad_fail(CLAD_ERR_IO, "%s: read failed or the file changed size", path);
	}
	fclose(f);
	*buf = b;
	*len = n;
	return CLAD_OK;
}

/* n images of (C, H, W) with labels, all sizes checked. */
clad_status
dataset_alloc(clad_dataset *d, size_t n, int C, int H, int W)
{
	size_t		per,
				total;

	memset(d, 0, sizeof(*d));
	if (n > INT_MAX)
		return clad_fail(CLAD_ERR_UNSUPPORTED, "dataset: %zu images is too many", n);
	if (C < 1 || H < 1 || W < 1)
		return clad_fail(CLAD_ERR_INVALID, "dataset: bad image shape %dx%dx%d", C, H, W);
	if (clad_mul_size((size_t) C * (size_t) H, (size_t) W, &per) ||
		clad_mul_size(per, n, &total) || clad_mul_size(total, sizeof(float), &total) ||
		n > SIZE_MAX / sizeof(int32_t))
		return clad_fail(CLAD_ERR_OVERFLOW, "dataset: %zu images of %dx%dx%d overflow", n, C, H, W);
	d->n = (int) n;
	d->C = C;
	d->H = H;
	d->W = W;
	if (n == 0)
		return CLAD_OK;
	d->pixels = malloc(total);
	d->labels = malloc(n * sizeof(int32_t));
	if (!d->pixels || !d->labels)
	{
		clad_dataset_free(d);
		return clad_fail(CLAD_ERR_NOMEM, "dataset: cannot allocate %zu images of %dx%dx%d",
						 n, C, H, W);
	}
	return CLAD_OK;
}

void
dataset_set_n_classes(clad_dataset *d)
{
	int32_t		m = -1;

	for (int i = 0; i < d->n; i++)
		if (d->labels[i] > m)
			m = d->labels[i];
	d->n_classes = m + 1;
}

void
clad_dataset_free(clad_dataset *d)
{
	if (!d)
		return;
	free(d->pixels);
	free(d->labels);
	if (d->class_names)
		for (int i = 0; i < d->n_classes; i++)
			free(d->class_names[i]);
	free(d->class_names);
	memset(d, 0, sizeof(*d));
}

void
clad_channel_stats(const float *pixels, int n, int C, size_t plane, float *mean, float *std)
{
	size_t		img = (size_t) C * plane;

	for (int c = 0; c < C; c++)
	{
		double		s = 0, s2 = 0, cnt = (double) n * plane, mu, var;

		for (int i = 0; i < n; i++)
		{
			const float *p = pixels + (size_t) i * img + c * plane;

			for (size_t j = 0; j < plane; j++)
			{
				s += p[j];
				s2 += (double) p[j] * p[j];
			}
		}
		mu = s / cnt;
		var = s2 / cnt - mu * mu;
		mean[c] = (float) mu;
		std[c] = (float) (var > 1e-12 ? sqrt(var) : 1.0);
	}
}

/* -------------------------------------------------------------------- idx */

static uint32_t
be32(const uint8_t *p)
{
	return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

/* Read exactly n bytes (n may exceed unsigned) from a gzFile; 0 on success. */
static int
gz_read_all(gzFile f, uint8_t *buf, size_t n)
{
	while (n > 0)
	{
		unsigned	chunk = n > (1u << 30) ? (1u << 30) : (unsigned) n;
		int			r = gzread(f, buf, chunk);

		if (r <= 0)
			return -1;
		buf += r;
		n -= (size_t) r;
	}
	return 0;
}

/*
 * One idx file, dir/name or dir/name.gz (gzipped or not: zlib reads both):
 * magic 0x000008NN with NN = ndim dims (big-endian u32), then exactly
 * prod(dims) bytes.  The data buffer grows as bytes arrive, so a small file
 * claiming huge dims cannot make us allocate much.
 */
static clad_status
idx_read(const char *dir, const char *name, int ndim, uint32_t *dims, uint8_t **data,
		 size_t *len)
{
	char		path[PATH_MAX],
				gzpath[PATH_MAX];
	gzFile		f;
	uint8_t		hdr[16];
	uint8_t    *buf = NULL;
	size_t		total = 1,
				have = 0,
				cap = 0;
	clad_status st = CLAD_OK;

	*data = NULL;
	*len = 0;
	if ((st = dataset_join(path, sizeof(path), dir, name)) != CLAD_OK)
		return st;
	if (snprintf(gzpath, sizeof(gzpath), "%s.gz", path) >= (int) sizeof(gzpath))
		return clad_fail(CLAD_ERR_INVALID, "path too long: %s.gz", path);
	if (!dataset_is_file(path))
	{
		if (!dataset_is_file(gzpath))
			return clad_fail(CLAD_ERR_IO, "%s: neither it nor %s.gz exists", path, name);
		memcpy(path, gzpath, sizeof(path));
	}
	f = gzopen(path, "rb");
	if (!f)
		return clad_fail(CLAD_ERR_IO, "%s: cannot open", path);
	if (gz_read_all(f, hdr, 4 + 4 * (size_t) ndim) != 0)
	{
		st = clad_fail(CLAD_ERR_FORMAT, "%s: truncated header", path);
		goto done;
	}
	if (hdr[0] != 0 || hdr[1] != 0 || hdr[2] != 0x08 || hdr[3] != ndim)
	{
		st = clad_fail(CLAD_ERR_FORMAT, "%s: magic 0x%08x, want 0x%08x (unsigned bytes, %d dims)",
					   path, be32(hdr), 0x800u | (unsigned) ndim, ndim);
		goto done;
	}
	for (int i = 0; i < ndim; i++)
	{
		dims[i] = be32(hdr + 4 + 4 * i);
		if (dims[i] > INT_MAX || (i > 0 && dims[i] == 0))
		{
			st = clad_fail(CLAD_ERR_FORMAT, "%s: bad dimension %u", path, dims[i]);
			goto done;
		}
		if (clad_mul_size(total, dims[i], &total))
		{
			st = clad_fail(CLAD_ERR_OVERFLOW, "%s: dimensions overflow", path);
			goto done;
		}
	}
	while (have < total)
	{
		size_t		want;
		int			r;

		if (have == cap)
		{
			/* start at 16 MiB at most, then double up to the announced size */
			size_t		ncap = cap ? (cap > total / 2 ? total : cap * 2)
				: (total < (1u << 24) ? total : (1u << 24));
			uint8_t    *nb = realloc(buf, ncap);

			if (!nb)
			{
				st = clad_fail(CLAD_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, ncap);
				goto done;
			}
			buf = nb;
			cap = ncap;
		}
		want = cap - have > (1u << 30) ? (1u << 30) : cap - have;
		r = gzread(f, buf + have, (unsigned) want);
		if (r <= 0)
		{
			st = clad_fail(CLAD_ERR_FORMAT, "%s: %zu data bytes, the header's dimensions need %zu",
						   path, have, total);
			goto done;
		}
		have += (size_t) r;
	}
	{
		uint8_t		extra;
		int			r = gzread(f, &extra, 1);

		if (r != 0)
		{
			st = r < 0 ? clad_fail(CLAD_ERR_FORMAT, "%s: corrupt compressed data", path)
				: clad_fail(CLAD_ERR_FORMAT, "%s: data after the %zu bytes the header announces",
							path, total);
			goto done;
		}
	}
	{
		int			err;

		gzerror(f, &err);
		if (err != Z_OK)
		{
			st = clad_fail(CLAD_ERR_FORMAT, "%s: corrupt compressed data", path);
			goto done;
		}
	}
	*data = buf;
	*len = total;
	buf = NULL;
done:
	gzclose(f);
	free(buf);
	return st;
}

clad_status
clad_load_idx(const char *dir, clad_split split, clad_dataset *out)
{
	const char *pre = split == CLAD_SPLIT_TRAIN ? "train" : "t10k";
	char		iname[64],
				lname[64];
	uint32_t	idim[3],
				ldim[1];
	uint8_t    *img = NULL,
			   *lab = NULL;
	size_t		ilen,
				llen;
	clad_dataset d;
	clad_status st;

	if (!out)
		return clad_fail(CLAD_ERR_INVALID, "idx: no output");
	memset(out, 0, sizeof(*out));
	memset(&d, 0, sizeof(d));
	if (!dir || (split != CLAD_SPLIT_TRAIN && split != CLAD_SPLIT_TEST))
		return clad_fail(CLAD_ERR_INVALID, "idx: bad arguments");
	snprintf(iname, sizeof(iname), "%s-images-idx3-ubyte", pre);
	snprintf(lname, sizeof(lname), "%s-labels-idx1-ubyte", pre);
	if ((st = idx_read(dir, lname, 1, ldim, &lab, &llen)) != CLAD_OK ||
		(st = idx_read(dir, iname, 3, idim, &img, &ilen)) != CLAD_OK)
		goto done;
	if (idim[0] != ldim[0])
	{
		st = clad_fail(CLAD_ERR_FORMAT, "idx: %s has %u images but %s has %u labels",
					   iname, idim[0], lname, ldim[0]);
		goto done;
	}
	if (idim[0] == 0)
	{
		st = clad_fail(CLAD_ERR_FORMAT, "idx: %s/%s holds no images", dir, iname);
		goto done;
	}
	if ((st = dataset_alloc(&d, idim[0], 1, (int) idim[1], (int) idim[2])) != CLAD_OK)
		goto done;
	for (size_t i = 0; i < ilen; i++)
		d.pixels[i] = (float) img[i] / 255.0f;
	for (size_t i = 0; i < llen; i++)
		d.labels[i] = lab[i];
	dataset_set_n_classes(&d);
	*out = d;
	memset(&d, 0, sizeof(d));
done:
	clad_dataset_free(&d);
	free(img);
	free(lab);
	return st;
}

/* --------------------------------------------------------------- CIFAR-10 */

#define CIFAR_RECORD (1 + 3 * 32 * 32)

clad_status
clad_load_cifar10(const char *dir, clad_split split, clad_dataset *out)
{
	char		root[PATH_MAX],
				path[PATH_MAX],
				name[32];
	int			nfiles = split == CLAD_SPLIT_TRAIN ? 5 : 1;
	size_t		sizes[5],
				total = 0,
				at = 0;
	clad_dataset d;
	clad_status st = CLAD_OK;
	uint8_t    *buf = NULL;

	if (!out)
		return clad_fail(CLAD_ERR_INVALID, "CIFAR-10: no output");
	memset(out, 0, sizeof(*out));
	memset(&d, 0, sizeof(d));
	if (!dir || (split != CLAD_SPLIT_TRAIN && split != CLAD_SPLIT_TEST))
		return clad_fail(CLAD_ERR_INVALID, "CIFAR-10: bad arguments");
	/* dir itself, or the cifar-10-batches-bin/ that the official tarball unpacks to */
	snprintf(root, sizeof(root), "%s", dir);
	if ((st = dataset_join(path, sizeof(path), dir, "batches.meta.txt")) != CLAD_OK)
		return st;
	if (!dataset_is_file(path) && (st = dataset_join(path, sizeof(path), dir, "cifar-10-batches-bin")) == CLAD_OK &&
		dataset_is_dir(path))
		snprintf(root, sizeof(root), "%s", path);

	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < nfiles; i++)
		{
			size_t		len;

			if (split == CLAD_SPLIT_TRAIN)
				snprintf(name, sizeof(name), "data_batch_%d.bin", i + 1);
			else
				snprintf(name, sizeof(name), "test_batch.bin");
			if ((st = dataset_join(path, sizeof(path), root, name)) != CLAD_OK)
				goto done;
			if (pass == 0)
			{
				struct stat sb;

				if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
				{
					st = clad_fail(CLAD_ERR_IO, "CIFAR-10: %s is missing", path);
					goto done;
				}
				sizes[i] = (size_t) sb.st_size;
				if (sizes[i] == 0 || sizes[i] % CIFAR_RECORD != 0)
				{
					st = clad_fail(CLAD_ERR_FORMAT, "CIFAR-10: %s is %zu bytes, not a whole number "
								   "of %d-byte records", path, sizes[i], CIFAR_RECORD);
					goto done;
				}
				total += sizes[i] / CIFAR_RECORD;
				continue;
			}
			if (i == 0 && (st = dataset_alloc(&d, total, 3, 32, 32)) != CLAD_OK)
				goto done;
			if ((st = dataset_read_file(path, &buf, &len)) != CLAD_OK)
				goto done;
			if (len != sizes[i])
			{
				st = clad_fail(CLAD_ERR_IO, "CIFAR-10: %s changed size while reading", path);
				goto done;
			}
			for (size_t r = 0; r < len / CIFAR_RECORD; r++, at++)
			{
				const uint8_t *rec = buf + r * CIFAR_RECORD;
				float	   *px = d.pixels + at * 3 * 32 * 32;

				if (rec[0] > 9)
				{
					st = clad_fail(CLAD_ERR_FORMAT, "CIFAR-10: %s record %zu has label %d",
								   path, r, rec[0]);
					goto done;
				}
				d.labels[at] = rec[0];
				/* 1024 R, 1024 G, 1024 B, each row-major: already (C, H, W) */
				for (int k = 0; k < 3 * 32 * 32; k++)
					px[k] = (float) rec[1 + k] / 255.0f;
			}
			free(buf);
			buf = NULL;
		}
	dataset_set_n_classes(&d);
	*out = d;
	memset(&d, 0, sizeof(d));
done:
	free(buf);
	clad_dataset_free(&d);
	return st;
}

/* ----------------------------------------------------------------- filter */

clad_status
clad_dataset_filter(const clad_dataset *in, const int32_t *classes, int n_classes,
					clad_dataset *out)
{
	clad_dataset d;
	size_t		keep = 0,
				per,
				at = 0;
	clad_status st;

	if (!in || !out || out == in || n_classes < 0 || (n_classes > 0 && !classes))
		return clad_fail(CLAD_ERR_INVALID, "filter: bad arguments");
	memset(out, 0, sizeof(*out));
	for (int i = 0; i < in->n; i++)
		for (int k = 0; k < n_classes; k++)
			if (in->labels[i] == classes[k])
			{
				keep++;
				break;
			}
	if ((st = dataset_alloc(&d, keep, in->C, in->H, in->W)) != CLAD_OK)
		return st;
	per = (size_t) in->C * in->H * in->W;
	for (int i = 0; i < in->n; i++)
		for (int k = 0; k < n_classes; k++)
			if (in->labels[i] == classes[k])
			{
				memcpy(d.pixels + at * per, in->pixels + (size_t) i * per, per * sizeof(float));
				d.labels[at++] = in->labels[i];
				break;
			}
	d.n_classes = in->n_classes;
	if (in->class_names && in->n_classes > 0)
	{
		d.class_names = calloc((size_t) in->n_classes, sizeof(char *));
		if (!d.class_names)
		{
			clad_dataset_free(&d);
			return clad_fail(CLAD_ERR_NOMEM, "filter: out of memory");
		}
		for (int c = 0; c < in->n_classes; c++)
			if (in->class_names[c] && !(d.class_names[c] = strdup(in->class_names[c])))
			{
				clad_dataset_free(&d);
				return clad_fail(CLAD_ERR_NOMEM, "filter: out of memory");
			}
	}
	*out = d;
	return CLAD_OK;
}

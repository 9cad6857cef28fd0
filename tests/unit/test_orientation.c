/* tests/unit/test_orientation.c: quarter turns, the orientation confidence and orientation model files.
 *
 * usage: test_orientation                  the checks
 *        test_orientation --write PATH     a ResNet-18 orientation model (K 3, 4 turns) to
 *                                          PATH and, in PATH.cases, seeded images and the
 *                                          confidences clad gives them, for
 *                                          tests/parity/check_orientation.py (PyTorch)
 */
#include "model.h"
#include "orientation.h"
#include "testmodel.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* torch.rot90 of [[1,2,3],[4,5,6],[7,8,9]] by 0..3 quarter turns */
static void
check_rotate90(void)
{
	static const float src[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
	static const float want[4][9] = {
		{1, 2, 3, 4, 5, 6, 7, 8, 9},
		{3, 6, 9, 2, 5, 8, 1, 4, 7},
		{9, 8, 7, 6, 5, 4, 3, 2, 1},
		{7, 4, 1, 8, 5, 2, 9, 6, 3},
	};
	float		got[9], a[2 * 3 * 25], b[2 * 3 * 25], c[2 * 3 * 25];

	for (int r = 0; r < 4; r++)
	{
		clad_rotate90(got, src, 1, 1, 3, 3, r);
		CHECK_MSG(memcmp(got, want[r], sizeof(got)) == 0, "rot90 by %d", r);
	}
	/* a batch of 2 images of 3 channels: four quarter turns are the identity, two
	 * quarter turns are one half turn, each plane turned on its own */
	for (int i = 0; i < 2 * 3 * 25; i++)
		a[i] = (float) ((i * 37) % 101);
	memcpy(c, a, sizeof(a));
	for (int t = 0; t < 4; t++)
	{
		clad_rotate90(b, c, 2, 3, 5, 5, 1);
		memcpy(c, b, sizeof(b));
	}
	CHECK(memcmp(c, a, sizeof(a)) == 0);
	clad_rotate90(b, a, 2, 3, 5, 5, 1);
	clad_rotate90(c, b, 2, 3, 5, 5, 1);
	clad_rotate90(b, a, 2, 3, 5, 5, 2);
	CHECK(memcmp(c, b, sizeof(b)) == 0);
	clad_rotate90(b, a, 2, 3, 5, 5, 3);
	CHECK(b[25 * 4 + 0] == a[25 * 4 + 20]);	/* plane 4: out[0][0] = in[H-1][0] */
	/* a half turn of a non-square image */
	{
		static const float s2[6] = {1, 2, 3, 4, 5, 6};
		static const float w2[6] = {6, 5, 4, 3, 2, 1};
		float		g2[6];

		clad_rotate90(g2, s2, 1, 1, 2, 3, 2);
		CHECK(memcmp(g2, w2, sizeof(g2)) == 0);
	}
}

/* A model of K 3 clusters and R turns, seeded weights. */
static clad_model *
orientation_model(const char *classifier, int R)
{
	clad_model *m = NULL;

	CHECK(clad_model_create_rotations("cvae", classifier, 1, 28, 28, 3, 6, R, &m) == CLAD_OK);
	if (!m)
		exit(1);
	clad_autoencoder_init(m->encoder, 1);
	clad_classifier_init(m->clf, classifier, 2);
	for (int i = 0; i < 3 * 6; i++)
		m->centers[i] = (float) (i % 5) - 2.0f;
	m->mean[0] = 0.13f;
	m->std[0] = 0.31f;
	m->n_calib = 5;
	m->calib = malloc(sizeof(float) * 5);
	for (int i = 0; i < 5; i++)
		m->calib[i] = 0.2f + 0.01f * (float) i;
	m->threshold = 0.2f;
	return m;
}

/*
 * The confidence against its definition, computed here image by image and
 * turn by turn in double: exp(mean_r log sum_k softmax(f(rot_r x))[k R + r]).
 */
static void
check_confidence(const char *classifier, int R)
{
	clad_model *m = orientation_model(classifier, R);
	int			B = 5, K = 3;
	float	   *x = seeded_pixels(B, 7), *xn = malloc(sizeof(float) * 784), *xr = malloc(sizeof(float) * 784);
	float		conf[5], base[5], want[5], want_up[5], one[1];
	clad_orientation_work w = {0};

	CHECK(m->rotations == R && clad_net_out_numel(m->clf) == (size_t) K * R);
	CHECK(strcmp(clad_model_score_name(m), "orientation") == 0);
	for (int b = 0; b < B; b++)
	{
		double		sum = 0;

		for (int i = 0; i < 784; i++)
			xn[i] = (x[b * 784 + i] - m->mean[0]) / m->std[0];
		for (int r = 0; r < R; r++)
		{
			const float *l;
			double		mx = -INFINITY, all = 0, turn = 0;

			clad_rotate90(xr, xn, 1, 1, 28, 28, r * 4 / R);
			CHECK(clad_net_forward(m->clf, xr, 1, CLAD_EVAL) == CLAD_OK);
			l = clad_net_output(m->clf);
			for (int i = 0; i < K * R; i++)
				mx = l[i] > mx ? l[i] : mx;
			for (int i = 0; i < K * R; i++)
			{
				all += exp(l[i] - mx);
				turn += (i % R == r) ? exp(l[i] - mx) : 0.0;
			}
			sum += log(turn / all);
			if (r == 0)
				want_up[b] = (float) (turn / all);
		}
		want[b] = (float) exp(sum / R);
	}
	/* through the model (unprepared, then prepared for batches of 8: groups of 2 images) */
	CHECK(clad_model_score(m, x, B, conf, NULL) == CLAD_OK);
	CHECK_MSG(max_rel_err(conf, want, B) < 1e-5, "%s R %d: %g", classifier, R, max_rel_err(conf, want, B));
	CHECK(clad_model_baseline(m, x, B, base) == CLAD_OK);
	CHECK_MSG(max_rel_err(base, want_up, B) < 1e-5, "baseline %s R %d", classifier, R);
	CHECK(clad_model_prepare(m, 8) == CLAD_OK);
	CHECK(clad_model_score(m, x, B, conf, NULL) == CLAD_OK);
	CHECK_MSG(max_rel_err(conf, want, B) < 1e-5, "prepared %s R %d: %g", classifier, R, max_rel_err(conf, want, B));
	for (int b = 0; b < B; b++)
	{
		CHECK(clad_model_score(m, x + b * 784, 1, one, NULL) == CLAD_OK);
		CHECK_MSG(fabsf(one[0] - conf[b]) <= 1e-6f * conf[b], "image %d alone", b);
		CHECK(conf[b] > 0.0f && conf[b] <= 1.0f);
	}
	/* any pass size gives the same confidences, and per-turn log-probabilities sum to them */
	for (int i = 0; i < B * 784; i++)
		x[i] = (x[i] - m->mean[0]) / m->std[0];
	for (int rows = 1; rows <= 3 * R; rows++)
	{
		float		c2[5], lp[5 * 4];

		CHECK(clad_orientation_confidence(m->clf, x, B, K, R, rows, c2, lp, &w) == CLAD_OK);
		CHECK_MSG(max_rel_err(c2, want, B) < 1e-5, "rows %d", rows);
		for (int b = 0; b < B; b++)
		{
			double		s = 0;

			for (int r = 0; r < R; r++)
				s += lp[b * R + r];
			CHECK(fabs(exp(s / R) - c2[b]) <= 1e-5 * c2[b]);
		}
	}
	/* wrong shapes are refused, not misread */
	CHECK(clad_orientation_confidence(m->clf, x, B, K + 1, R, 8, conf, NULL, &w) == CLAD_ERR_INVALID);
	CHECK(clad_orientation_confidence(m->clf, x, B, K, 3, 8, conf, NULL, &w) == CLAD_ERR_INVALID);
	CHECK(clad_orientation_confidence(m->clf, x, 0, K, R, 8, conf, NULL, &w) == CLAD_ERR_INVALID);
	clad_orientation_work_free(&w);
	clad_model_free(m);
	free(x);
	free(xn);
	free(xr);
}

static void
check_files(void)
{
	clad_model *m = orientation_model("cnn", 4), *m2 = NULL, *odin = NULL;
	uint8_t    *buf = NULL, *bad;
	size_t		len = 0;
	float	   *x = seeded_pixels(3, 11), c1[3], c2[3], s1[3], s2[3];

	CHECK(clad_model_save(m, &buf, &len) == CLAD_OK);
	CHECK(header_has(buf, len, "\"format_version\":\"2\""));
	CHECK(header_has(buf, len, "\"score\":\"orientation\""));
	CHECK(header_has(buf, len, "\"rotations\":\"4\""));
	CHECK(clad_model_load(buf, len, &m2) == CLAD_OK);
	if (m2)
	{
		CHECK(m2->rotations == 4 && m2->K == 3);
		CHECK(clad_model_score(m, x, 3, c1, s1) == CLAD_OK);
		CHECK(clad_model_score(m2, x, 3, c2, s2) == CLAD_OK);
		CHECK(memcmp(c1, c2, sizeof(c1)) == 0 && memcmp(s1, s2, sizeof(s1)) == 0);
		for (int b = 0; b < 3; b++)
			CHECK(s1[b] == clad_model_calibrated_score(m, c1[b]));
		clad_model_free(m2);
		m2 = NULL;
	}
	/* broken orientation metadata is refused with a clear error */
	{
		static const char *const swaps[][2] = {
			{"\"score\":\"orientation\"", "\"score\":\"orientatio_\""},
			{"\"rotations\":\"4\"", "\"rotations\":\"3\""},
			{"\"rotations\":\"4\"", "\"rotations\":\"8\""},
			{"\"rotations\":\"4\"", "\"rotations\":\"2\""},	/* classifier then has the wrong outputs */
			{"\"format_version\":\"2\"", "\"format_version\":\"1\""},	/* ODIN with K*R outputs */
			{"\"format_version\":\"2\"", "\"format_version\":\"3\""},	/* neighbours without a bank */
		};

		for (size_t i = 0; i < sizeof(swaps) / sizeof(swaps[0]); i++)
		{
			bad = patched(buf, len, swaps[i][0], swaps[i][1]);
			CHECK_MSG(clad_model_load(bad, len, &m2) != CLAD_OK && m2 == NULL, "accepted %s", swaps[i][1]);
			free(bad);
		}
		bad = patched(buf, len, "\"format_version\":\"2\"", "\"format_version\":\"5\"");
		CHECK(clad_model_load(bad, len, &m2) == CLAD_ERR_UNSUPPORTED);
		free(bad);
	}
	free(buf);
	/* an ODIN model stays format 1 with no orientation keys */
	CHECK(clad_model_create("cvae", "cnn", 1, 28, 28, 3, 6, &odin) == CLAD_OK);
	if (odin)
	{
		CHECK(odin->rotations == 1 && strcmp(clad_model_score_name(odin), "odin") == 0);
		CHECK(clad_model_save(odin, &buf, &len) == CLAD_OK);
		CHECK(header_has(buf, len, "\"format_version\":\"1\""));
		CHECK(!header_has(buf, len, "\"score\"") && !header_has(buf, len, "\"rotations\""));
		free(buf);
		clad_model_free(odin);
	}
	/* quarter turns need square images; half turns do not */
	CHECK(clad_model_create_rotations("cvae", "cnn", 1, 28, 32, 3, 6, 4, &m2) == CLAD_ERR_INVALID && !m2);
	CHECK(clad_model_create_rotations("cvae", "cnn", 1, 28, 28, 3, 6, 3, &m2) == CLAD_ERR_INVALID && !m2);
	clad_model_free(m);
	free(x);
}

static int
write_cases(const char *path)
{
	clad_model *m = orientation_model("resnet18", 4);
	uint8_t    *buf;
	size_t		len;
	int			B = 6;
	float	   *x = seeded_pixels(B, 3), conf[6];
	char		cases[4096];
	clad_st_writer *w;

	test_set_bn_stats(m->clf);
	if (clad_model_score(m, x, B, conf, NULL) != CLAD_OK || clad_model_save(m, &buf, &len) != CLAD_OK)
	{
		fprintf(stderr, "test_orientation: %s\n", clad_last_error());
		return 1;
	}
	if (write_bytes("test_orientation", path, buf, len))
		return 1;
	free(buf);
	w = clad_st_writer_new();
	snprintf(cases, sizeof(cases), "%s.cases", path);
	if (clad_st_writer_add(w, "input", CLAD_DTYPE_F32, 4, (int64_t[]) {B, 1, 28, 28}, x) != CLAD_OK ||
		clad_st_writer_add(w, "confidence", CLAD_DTYPE_F32, 1, (int64_t[]) {B}, conf) != CLAD_OK ||
		clad_st_writer_finish(w, &buf, &len) != CLAD_OK)
	{
		fprintf(stderr, "test_orientation: %s\n", clad_last_error());
		return 1;
	}
	clad_st_writer_free(w);
	if (write_bytes("test_orientation", cases, buf, len))
		return 1;
	free(buf);
	clad_model_free(m);
	free(x);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--write") == 0)
		return write_cases(argv[2]);
	check_rotate90();
	check_confidence("cnn", 4);
	check_confidence("cnn", 2);
	check_confidence("resnet18", 4);
	check_files();
	return test_summary("test_orientation");
}

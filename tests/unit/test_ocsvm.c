/* tests/unit/test_ocsvm.c: one-class SVM model files (format version 4) and their scoring.
 *
 * A one-class SVM model of seeded support vectors: its confidence is the
 * decision value sum_i a_i exp(-gamma ||x - s_i||^2) - rho of the normalised
 * image (recomputed here in double, term by term), the same for an image alone
 * or in a batch; an image that is a support vector is at distance 0 from it.
 * It has no latent code, clusters or baseline (refused naming its method).
 * The file round-trips byte for byte and scores the same floats, its settings
 * alone (a prepared file's) score the vectors where they lie, and a broken
 * file (unknown kernel, gamma 0, an infinite rho, a coefficient <= 0, a NaN
 * in a vector, a tensor or key of another method, the method in a CLAD
 * version) is refused with a clear error and no model.
 */
#include "model.h"
#include "testmodel.h"

#include <math.h>
#include <string.h>

#define NSV 6
#define DIM 784
#define GAMMA 0.00390625f		/* 2^-8: written exactly */
#define RHO 0.25f

static clad_model *
svm_model(void)
{
	clad_model *m = NULL;
	float	   *px = seeded_pixels(NSV, 41);

	CHECK(clad_model_create_ocsvm(1, 28, 28, NSV, GAMMA, RHO, &m) == CLAD_OK);
	if (!m)
		exit(1);
	CHECK(m->method == CLAD_METHOD_OCSVM && m->encoder == NULL && m->clf == NULL && m->K == 0 && m->latent == 0);
	CHECK(strcmp(clad_model_method_name(m), "ocsvm") == 0 && strcmp(clad_model_score_name(m), "ocsvm") == 0);
	CHECK(clad_model_format_version(m) == 4);
	m->mean[0] = 0.5f;
	m->std[0] = 0.25f;
	/* the support vectors: seeded images, normalised as the model normalises */
	for (int i = 0; i < NSV * DIM; i++)
		m->svm.sv_owned[i] = (px[i] - 0.5f) / 0.25f;
	for (int i = 0; i < NSV; i++)
		m->svm.coef[i] = 0.125f * (float) (i + 1);
	CHECK(clad_ocsvm_check(&m->svm) == CLAD_OK);
	m->n_calib = 3;
	m->calib = malloc(sizeof(float) * 3);
	m->calib[0] = -0.2f;
	m->calib[1] = 0.0f;
	m->calib[2] = 0.3f;
	m->threshold = -0.1f;
	free(px);
	return m;
}

/* The decision value of pixels x (one image) in double, from the model's own vectors. */
static double
decision(const clad_model *m, const float *x)
{
	double		sum = 0;

	for (int i = 0; i < m->svm.n_sv; i++)
	{
		double		d2 = 0;

		for (int j = 0; j < DIM; j++)
		{
			double		d = ((double) x[j] - m->mean[0]) / m->std[0] - m->svm.sv[(size_t) i * DIM + j];

			d2 += d * d;
		}
		sum += m->svm.coef[i] * exp(-(double) m->svm.gamma * d2);
	}
	return sum - m->svm.rho;
}

static void
check_scoring(void)
{
	clad_model *m = svm_model();
	int			B = 5;
	float	   *x = seeded_pixels(B, 41), conf[5], score[5], one, z[8];
	int32_t		cluster[5];
	clad_model *bad = NULL;

	/* images 0..4 are support vectors 0..4; perturb 3 and 4 so that they are not */
	for (int j = 0; j < DIM; j += 3)
	{
		x[3 * DIM + j] = 1.0f - x[3 * DIM + j];
		x[4 * DIM + j] *= 0.5f;
	}
	CHECK(clad_model_score(m, x, B, conf, score) == CLAD_OK);
	for (int b = 0; b < B; b++)
	{
		double		want = decision(m, x + (size_t) b * DIM);

		CHECK_MSG(fabs(conf[b] - want) <= 1e-5 * (1.0 + fabs(want)), "image %d: confidence %.9g, want %.9g", b,
				  conf[b], want);
		CHECK(score[b] == clad_model_calibrated_score(m, conf[b]));
		CHECK(clad_model_score(m, x + (size_t) b * DIM, 1, &one, NULL) == CLAD_OK);
		CHECK_MSG(fabs(one - conf[b]) <= 1e-6 * (1.0 + fabs(conf[b])), "image %d alone %.9g, in a batch %.9g", b,
				  one, conf[b]);
	}
	/* a support vector's own term is its coefficient: the decision value exceeds a_i - rho */
	CHECK(conf[2] > m->svm.coef[2] - RHO);
	CHECK(conf[0] != conf[1] && conf[3] < conf[2]);
	/* what a model without nets cannot answer */
	CHECK(clad_model_embed(m, x, B, z, NULL, NULL) == CLAD_ERR_INVALID);
	CHECK(strstr(clad_last_error(), "ocsvm") != NULL);
	CHECK(clad_model_embed(m, x, B, NULL, NULL, cluster) == CLAD_ERR_INVALID);
	CHECK(clad_model_baseline(m, x, B, conf) == CLAD_ERR_INVALID);
	CHECK(clad_model_neighbour_distances(m, x, B, conf) == CLAD_ERR_INVALID);
	/* preparing a model without nets does nothing, and it scores the same */
	{
		float		c2[5];

		CHECK(clad_model_prepare(m, 8) == CLAD_OK);
		CHECK(clad_model_release_weights(m) == 0);
		CHECK(clad_model_score(m, x, B, c2, NULL) == CLAD_OK);
		CHECK(memcmp(c2, conf, sizeof(c2)) == 0);
	}
	/* a NaN pixel is refused, as for every method */
	x[7] = NAN;
	CHECK(clad_model_score(m, x, 1, conf, NULL) == CLAD_ERR_NUMERIC);
	/* out-of-range shapes */
	CHECK(clad_model_create_ocsvm(1, 28, 28, 0, GAMMA, RHO, &bad) == CLAD_ERR_INVALID && !bad);
	CHECK(clad_model_create_ocsvm(9, 28, 28, 2, GAMMA, RHO, &bad) == CLAD_ERR_INVALID && !bad);
	clad_model_free(m);
	free(x);
}

/* A copy of buf with the float want (unique in the file) replaced by v; NULL when absent. */
static uint8_t *
with_float(const uint8_t *buf, size_t len, float want, float v)
{
	uint8_t    *b = malloc(len), *at;

	memcpy(b, buf, len);
	at = memmem(b + 8, len - 8, &want, sizeof(want));
	CHECK(at != NULL);
	if (!at)
	{
		free(b);
		return NULL;
	}
	memcpy(at, &v, sizeof(v));
	return b;
}

static void
check_files(void)
{
	clad_model *m = svm_model(), *m2 = NULL;
	uint8_t    *buf = NULL, *buf2 = NULL, *bad;
	size_t		len = 0, len2 = 0;
	float	   *x = seeded_pixels(3, 5), c1[3], c2[3];

	CHECK(clad_model_save(m, &buf, &len) == CLAD_OK);
	CHECK(header_has(buf, len, "\"format_version\":\"4\""));
	CHECK(header_has(buf, len, "\"method\":\"ocsvm\""));
	CHECK(header_has(buf, len, "\"kernel\":\"rbf\""));
	CHECK(header_has(buf, len, "\"gamma\":\"0.00390625\""));
	CHECK(header_has(buf, len, "\"rho\":\"0.25\""));
	CHECK(header_has(buf, len, "\"ocsvm.support_vectors\":{\"dtype\":\"F32\",\"shape\":[6,784]"));
	CHECK(header_has(buf, len, "\"ocsvm.coefficients\":{\"dtype\":\"F32\",\"shape\":[6]"));
	CHECK(!header_has(buf, len, "\"autoencoder\"") && !header_has(buf, len, "\"latent\"") &&
		  !header_has(buf, len, "\"classifier") && !header_has(buf, len, "encoder.") &&
		  !header_has(buf, len, "odin_"));
	CHECK(clad_model_load(buf, len, &m2) == CLAD_OK);
	if (m2)
	{
		CHECK(m2->method == CLAD_METHOD_OCSVM && m2->encoder == NULL && m2->svm.n_sv == NSV &&
			  m2->svm.gamma == GAMMA && m2->svm.rho == RHO && m2->n_calib == 3);
		CHECK(memcmp(m2->svm.sv, m->svm.sv, sizeof(float) * NSV * DIM) == 0);
		CHECK(memcmp(m2->svm.coef, m->svm.coef, sizeof(float) * NSV) == 0);
		CHECK(clad_model_score(m, x, 3, c1, NULL) == CLAD_OK && clad_model_score(m2, x, 3, c2, NULL) == CLAD_OK);
		CHECK(memcmp(c1, c2, sizeof(c1)) == 0);
		CHECK(clad_model_save(m2, &buf2, &len2) == CLAD_OK);
		CHECK(len2 == len && memcmp(buf, buf2, len) == 0);
		free(buf2);
		clad_model_free(m2);
		m2 = NULL;
	}
	/* the settings alone are the whole model (no nets): they score where the bytes lie */
	{
		uint8_t    *sbuf;
		size_t		slen;

		CHECK(clad_model_save_settings(m, &sbuf, &slen) == CLAD_OK);
		CHECK(slen == len && memcmp(sbuf, buf, len) == 0);
		CHECK(clad_model_load_settings(sbuf, slen, &m2) == CLAD_OK);
		CHECK(m2 && m2->method == CLAD_METHOD_OCSVM);
		if (m2)
		{
			CHECK(m2->svm.sv_owned == NULL && (const uint8_t *) m2->svm.sv > sbuf &&
				  (const uint8_t *) m2->svm.sv < sbuf + slen);
			CHECK(clad_model_score(m2, x, 3, c2, NULL) == CLAD_OK && memcmp(c1, c2, sizeof(c1)) == 0);
		}
		clad_model_free(m2);
		m2 = NULL;
		free(sbuf);
	}
	/* broken files: an error and no model */
	{
		static const struct
		{
			const char *from, *to;
			clad_status want;
		}			swaps[] = {
			{"\"method\":\"ocsvm\"", "\"method\":\"ocsvn\"", CLAD_ERR_UNSUPPORTED},
			{"\"format_version\":\"4\"", "\"format_version\":\"1\"", CLAD_ERR_FORMAT},	/* method in a CLAD version */
			{"\"kernel\":\"rbf\"", "\"kernel\":\"lin\"", CLAD_ERR_UNSUPPORTED},
			{"\"kernel\":", "\"latent\":", CLAD_ERR_FORMAT},	/* a key of the methods with nets */
			{"\"gamma\":\"0.00390625\"", "\"gamma\":\"0.00000000\"", CLAD_ERR_FORMAT},
			{"\"rho\":\"0.25\"", "\"rho\":\"1e99\"", CLAD_ERR_FORMAT},	/* finite as a double, not as a float */
			{"\"ocsvm.coefficients\"", "\"encoder.coefficien\"", CLAD_ERR_FORMAT},	/* another method's tensor */
			{"\"ocsvm.support_vectors\"", "\"ocsvm.support_vector_\"", CLAD_ERR_FORMAT},
			{"\"shape\":[6,784]", "\"shape\":[6,783]", CLAD_ERR_FORMAT},
			{"\"input_shape\":\"1,28,28\"", "\"input_shape\":\"1,28,27\"", CLAD_ERR_FORMAT},
		};

		for (size_t i = 0; i < sizeof(swaps) / sizeof(swaps[0]); i++)
		{
			clad_status st;

			bad = patched(buf, len, swaps[i].from, swaps[i].to);
			st = clad_model_load(bad, len, &m2);
			CHECK_MSG(st != CLAD_OK && m2 == NULL, "accepted %s", swaps[i].to);
			CHECK_MSG(st == swaps[i].want, "%s: status %d, want %d (%s)", swaps[i].to, st, swaps[i].want,
					  clad_last_error());
			free(bad);
		}
	}
	/* a coefficient of 0 or below, a NaN or an infinity in a support vector */
	if ((bad = with_float(buf, len, m->svm.coef[3], -m->svm.coef[3])) != NULL)
	{
		CHECK(clad_model_load(bad, len, &m2) == CLAD_ERR_FORMAT && !m2);
		CHECK(strstr(clad_last_error(), "coefficient 3") != NULL);
		free(bad);
	}
	if ((bad = with_float(buf, len, m->svm.sv[5 * DIM + 100], NAN)) != NULL)
	{
		CHECK(clad_model_load(bad, len, &m2) == CLAD_ERR_NUMERIC && !m2);
		free(bad);
	}
	if ((bad = with_float(buf, len, m->svm.sv[2 * DIM + 7], INFINITY)) != NULL)
	{
		CHECK(clad_model_load(bad, len, &m2) == CLAD_ERR_NUMERIC && !m2);
		free(bad);
	}
	/* a CLAD-only key cannot sneak into a one-class SVM, nor its kernel into a CLAD model */
	{
		clad_model *clad = test_model_new("cnn", 4);
		uint8_t    *cbuf;
		size_t		clen;

		CHECK(clad_model_save(clad, &cbuf, &clen) == CLAD_OK);
		bad = patched(cbuf, clen, "\"clusters\":", "\"kernel\":\"x");
		CHECK(clad_model_load(bad, clen, &m2) != CLAD_OK && !m2);
		free(bad);
		free(cbuf);
		clad_model_free(clad);
	}
	free(buf);
	clad_model_free(m);
	free(x);
}

int
main(void)
{
	check_scoring();
	check_files();
	return test_summary("test_ocsvm");
}

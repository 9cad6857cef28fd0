/* tests/unit/test_deepsvdd.c: Deep SVDD model files (format version 4) and their scoring.
 *
 * A Deep SVDD model of seeded weights: its confidence is - ||z - c||^2 of the
 * code the model embeds (recomputed here in double), its calibrated score
 * follows the calibration; the file round-trips byte for byte and scores the
 * same floats; what a model without clusters cannot answer (clusters, DEC
 * probabilities, a classifier's baseline) is refused naming the method; a
 * broken file (unknown method, method in a CLAD version, a missing, NaN or
 * misshapen centre, CLAD's keys in a Deep SVDD file) is refused with a clear
 * error and no model.
 */
#include "model.h"
#include "testmodel.h"

#include <math.h>
#include <string.h>

#define LATENT 8

static clad_model *
svdd_model(void)
{
	clad_model *m = NULL;

	CHECK(clad_model_create_deepsvdd("cvae_nobias", 1, 28, 28, LATENT, 0, &m) == CLAD_OK);
	if (!m)
		exit(1);
	CHECK(m->method == CLAD_METHOD_DEEPSVDD && m->clf == NULL && m->K == 0 && m->centers == NULL);
	CHECK(strcmp(clad_model_method_name(m), "deepsvdd") == 0 && strcmp(clad_model_score_name(m), "deepsvdd") == 0);
	CHECK(clad_model_format_version(m) == 4);
	clad_autoencoder_init(m->encoder, 3);
	for (int j = 0; j < LATENT; j++)
		m->svdd_center[j] = 0.1f * (float) (j - 3);
	m->mean[0] = 0.13f;
	m->std[0] = 0.31f;
	m->n_calib = 4;
	m->calib = malloc(sizeof(float) * 4);
	m->calib[0] = -3.0f;
	m->calib[1] = -2.0f;
	m->calib[2] = -1.0f;
	m->calib[3] = -0.5f;
	m->threshold = -2.5f;
	return m;
}

static void
check_scoring(void)
{
	clad_model *m = svdd_model();
	int			B = 5;
	float	   *x = seeded_pixels(B, 17), z[5 * LATENT], conf[5], score[5], one;
	int32_t		cluster[5];
	float		probs[5 * 4];

	CHECK(clad_model_embed(m, x, B, z, NULL, NULL) == CLAD_OK);
	CHECK(clad_model_score(m, x, B, conf, score) == CLAD_OK);
	for (int b = 0; b < B; b++)
	{
		double		d2 = 0;

		for (int j = 0; j < LATENT; j++)
			d2 += ((double) z[b * LATENT + j] - m->svdd_center[j]) * ((double) z[b * LATENT + j] - m->svdd_center[j]);
		CHECK_MSG(fabs(conf[b] + d2) <= 1e-6 * fmax(1.0, d2), "image %d: confidence %g, want %g", b, conf[b], -d2);
		CHECK(score[b] == clad_model_calibrated_score(m, conf[b]));
		CHECK(clad_model_score(m, x + b * 784, 1, &one, NULL) == CLAD_OK && one == conf[b]);
	}
	/* the centre's own code scores 0; the codes differ, so do the confidences */
	CHECK(conf[0] != conf[1] && conf[0] < 0.0f);
	/* what a model without clusters cannot answer */
	CHECK(clad_model_embed(m, x, B, NULL, NULL, cluster) == CLAD_ERR_INVALID);
	CHECK(strstr(clad_last_error(), "deepsvdd") != NULL);
	CHECK(clad_model_embed(m, x, B, z, probs, NULL) == CLAD_ERR_INVALID);
	CHECK(clad_model_baseline(m, x, B, conf) == CLAD_ERR_INVALID);
	CHECK(clad_model_neighbour_distances(m, x, B, conf) == CLAD_ERR_INVALID);
	/* prepared plans and released weights score the same */
	{
		float		c2[5];

		CHECK(clad_model_prepare(m, 8) == CLAD_OK);
		(void) clad_model_release_weights(m);
		CHECK(clad_model_score(m, x, B, c2, NULL) == CLAD_OK);
		CHECK(max_rel_err(c2, conf, B) < 1e-5);
	}
	clad_model_free(m);
	free(x);
}

static void
check_files(void)
{
	clad_model *m = svdd_model(), *m2 = NULL;
	uint8_t    *buf = NULL, *buf2 = NULL, *bad;
	size_t		len = 0, len2 = 0;
	float	   *x = seeded_pixels(3, 5), c1[3], c2[3];

	CHECK(clad_model_save(m, &buf, &len) == CLAD_OK);
	CHECK(header_has(buf, len, "\"format_version\":\"4\""));
	CHECK(header_has(buf, len, "\"method\":\"deepsvdd\""));
	CHECK(header_has(buf, len, "\"autoencoder\":\"cvae_nobias\""));
	CHECK(header_has(buf, len, "\"svdd.center\":{\"dtype\":\"F32\",\"shape\":[8]"));
	CHECK(!header_has(buf, len, "\"classifier") && !header_has(buf, len, "\"clusters\"") &&
		  !header_has(buf, len, "dec.centers") && !header_has(buf, len, "odin_"));
	CHECK(clad_model_load(buf, len, &m2) == CLAD_OK);
	if (m2)
	{
		CHECK(m2->method == CLAD_METHOD_DEEPSVDD && m2->clf == NULL && m2->latent == LATENT && m2->n_calib == 4);
		CHECK(memcmp(m2->svdd_center, m->svdd_center, sizeof(float) * LATENT) == 0);
		CHECK(clad_model_score(m, x, 3, c1, NULL) == CLAD_OK && clad_model_score(m2, x, 3, c2, NULL) == CLAD_OK);
		CHECK(memcmp(c1, c2, sizeof(c1)) == 0);
		CHECK(clad_model_save(m2, &buf2, &len2) == CLAD_OK);
		CHECK(len2 == len && memcmp(buf, buf2, len) == 0);
		free(buf2);
		clad_model_free(m2);
		m2 = NULL;
	}
	/* the settings alone (a prepared file's) keep the centre */
	{
		uint8_t    *sbuf;
		size_t		slen;

		CHECK(clad_model_save_settings(m, &sbuf, &slen) == CLAD_OK);
		CHECK(clad_model_load_settings(sbuf, slen, &m2) == CLAD_OK);
		CHECK(m2 && m2->method == CLAD_METHOD_DEEPSVDD &&
			  memcmp(m2->svdd_center, m->svdd_center, sizeof(float) * LATENT) == 0);
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
			{"\"method\":\"deepsvdd\"", "\"method\":\"deepsvdx\"", CLAD_ERR_UNSUPPORTED},
			{"\"format_version\":\"4\"", "\"format_version\":\"1\"", CLAD_ERR_FORMAT},	/* method in a CLAD version */
			{"\"format_version\":\"4\"", "\"format_version\":\"5\"", CLAD_ERR_UNSUPPORTED},
			{"\"svdd.center\"", "\"svdd.centre\"", CLAD_ERR_FORMAT},
			{"\"shape\":[8]", "\"shape\":[2]", CLAD_ERR_FORMAT},	/* bytes no longer match: refused by the reader */
			{"\"autoencoder\":\"cvae_nobias\"", "\"autoencoder\":\"cvae_nobiaz\"", CLAD_ERR_INVALID},
			{"\"latent\":\"8\"", "\"latent\":\"9\"", CLAD_ERR_SHAPE},
			{"\"method\":", "\"clusters\":", CLAD_ERR_FORMAT},	/* CLAD's key, no method */
		};

		for (size_t i = 0; i < sizeof(swaps) / sizeof(swaps[0]); i++)
		{
			clad_status st;

			bad = patched(buf, len, swaps[i].from, swaps[i].to);
			st = clad_model_load(bad, len, &m2);
			CHECK_MSG(st != CLAD_OK && m2 == NULL, "accepted %s", swaps[i].to);
			CHECK_MSG(st == swaps[i].want || swaps[i].want == CLAD_ERR_FORMAT, "%s: status %d, want %d (%s)",
					  swaps[i].to, st, swaps[i].want, clad_last_error());
			free(bad);
		}
	}
	/* a NaN in the centre */
	{
		float		v = NAN;
		uint8_t    *at;

		bad = malloc(len);
		memcpy(bad, buf, len);
		/* the centre's first value, 0.1 x -3, is unique among the file's floats */
		v = -0.3f;
		at = memmem(bad + 8, len - 8, &v, sizeof(v));
		CHECK(at != NULL);
		if (at)
		{
			v = NAN;
			memcpy(at, &v, sizeof(v));
			CHECK(clad_model_load(bad, len, &m2) == CLAD_ERR_NUMERIC && !m2);
		}
		free(bad);
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
	return test_summary("test_deepsvdd");
}

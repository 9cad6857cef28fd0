/* tests/unit/test_ensemble.c: ensemble model files (format version 4) and their scoring.
 *
 * An ensemble of a CLAD, a Deep SVDD and a one-class SVM model of seeded
 * weights: its confidence is 1 - the mean of the members' calibrated scores
 * (recomputed here from each member alone), alone or in a batch; the file
 * round-trips byte for byte, each member inside it is byte for byte the file
 * it would be alone; it has no latent code, clusters, baseline or prepared
 * form.  Broken files (an unknown combination, a "members" list that does not
 * name the members, another method's key, a member that is not U8, a broken
 * member, a nested ensemble, members of other shapes, too few members) are
 * refused with a clear error and no model.
 */
#include "model.h"
#include "prepared.h"
#include "testmodel.h"

#include <math.h>
#include <string.h>

static clad_model *
svdd_member(void)
{
	clad_model *m = NULL;

	CHECK(clad_model_create_deepsvdd("cvae_nobias", 1, 28, 28, 6, 0, &m) == CLAD_OK);
	if (!m)
		exit(1);
	clad_autoencoder_init(m->encoder, 5);
	for (int j = 0; j < 6; j++)
		m->svdd_center[j] = 0.1f * (float) j;
	m->mean[0] = 0.1f;
	m->std[0] = 0.3f;
	m->n_calib = 5;
	m->calib = malloc(sizeof(float) * 5);
	for (int i = 0; i < 5; i++)
		m->calib[i] = -4.0f + 0.7f * (float) i;
	m->threshold = -3.5f;
	return m;
}

static clad_model *
svm_member(int H)
{
	clad_model *m = NULL;
	float	   *px = seeded_pixels(4, 77);

	CHECK(clad_model_create_ocsvm(1, H, 28, 4, 0.004f, 0.2f, &m) == CLAD_OK);
	if (!m)
		exit(1);
	for (int i = 0; i < 4 * H * 28; i++)
		m->svm.sv_owned[i] = 3.0f * px[i] - 1.0f;
	for (int i = 0; i < 4; i++)
		m->svm.coef[i] = 0.3f;
	CHECK(clad_ocsvm_check(&m->svm) == CLAD_OK);
	m->n_calib = 4;
	m->calib = malloc(sizeof(float) * 4);
	for (int i = 0; i < 4; i++)
		m->calib[i] = -0.2f + 0.01f * (float) i;
	free(px);
	return m;
}

/* CLAD (cnn classifier, ODIN), Deep SVDD and the one-class SVM, calibrated on 3 confidences. */
static clad_model *
ensemble(void)
{
	clad_model *members[3] = {test_model_new("cnn", 6), svdd_member(), svm_member(28)}, *e = NULL;

	CHECK(clad_model_create_ensemble(members, 3, &e) == CLAD_OK);
	if (!e)
		exit(1);
	CHECK(e->method == CLAD_METHOD_ENSEMBLE && e->n_members == 3 && e->encoder == NULL && e->latent == 0);
	CHECK(strcmp(clad_model_method_name(e), "ensemble") == 0 && strcmp(clad_model_score_name(e), "ensemble") == 0);
	CHECK(clad_model_format_version(e) == 4);
	e->n_calib = 3;
	e->calib = malloc(sizeof(float) * 3);
	e->calib[0] = 0.2f;
	e->calib[1] = 0.5f;
	e->calib[2] = 0.7f;
	e->threshold = 0.3f;
	return e;
}

static void
check_scoring(void)
{
	clad_model *e = ensemble();
	int			B = 4;
	float	   *x = seeded_pixels(B, 8), conf[4], score[4], one, s[3][4], z[8];

	CHECK(clad_model_prepare(e, 8) == CLAD_OK);
	CHECK(clad_model_score(e, x, B, conf, score) == CLAD_OK);
	for (int k = 0; k < 3; k++)
		CHECK(clad_model_score(e->members[k], x, B, NULL, s[k]) == CLAD_OK);
	for (int b = 0; b < B; b++)
	{
		float		want = 1.0f - (s[0][b] + s[1][b] + s[2][b]) / 3.0f;

		CHECK_MSG(fabsf(conf[b] - want) <= 1e-6f, "image %d: %.9g, want %.9g", b, conf[b], want);
		CHECK(conf[b] >= 0.0f && conf[b] <= 1.0f);
		CHECK(score[b] == clad_model_calibrated_score(e, conf[b]));
		CHECK(clad_model_score(e, x + (size_t) b * 784, 1, &one, NULL) == CLAD_OK);
		CHECK_MSG(fabsf(one - conf[b]) <= 1e-6f, "image %d alone %.9g, in a batch %.9g", b, one, conf[b]);
	}
	CHECK(conf[0] != conf[1]);
	/* what it has not */
	CHECK(clad_model_embed(e, x, B, z, NULL, NULL) == CLAD_ERR_INVALID && strstr(clad_last_error(), "ensemble"));
	CHECK(clad_model_baseline(e, x, B, conf) == CLAD_ERR_INVALID);
	CHECK(!clad_prepared_supported(e));
	CHECK(clad_prepared_write(e, (const uint8_t[32]) {0}, 8, -1) == CLAD_ERR_UNSUPPORTED);
	/* a NaN pixel is refused, as for every method */
	x[3] = NAN;
	CHECK(clad_model_score(e, x, 1, conf, NULL) == CLAD_ERR_NUMERIC);
	clad_model_free(e);
	free(x);
}

static void
check_create(void)
{
	clad_model *e = NULL, *inner = ensemble();
	clad_model *two[2] = {svdd_member(), svm_member(27)};
	clad_model *one[1] = {svdd_member()};
	clad_model *nested[2] = {inner, svm_member(28)};

	/* members of other shapes; a single member; an ensemble inside: refused, the members freed */
	CHECK(clad_model_create_ensemble(two, 2, &e) == CLAD_ERR_SHAPE && !e);
	CHECK(clad_model_create_ensemble(one, 1, &e) == CLAD_ERR_INVALID && !e);
	CHECK(clad_model_create_ensemble(nested, 2, &e) == CLAD_ERR_INVALID && !e);
}

static void
check_files(void)
{
	clad_model *e = ensemble(), *e2 = NULL;
	uint8_t    *buf = NULL, *buf2 = NULL, *bad;
	size_t		len = 0, len2 = 0;
	float	   *x = seeded_pixels(3, 9), c1[3], c2[3];

	CHECK(clad_model_save(e, &buf, &len) == CLAD_OK);
	CHECK(header_has(buf, len, "\"format_version\":\"4\"") && header_has(buf, len, "\"method\":\"ensemble\""));
	CHECK(header_has(buf, len, "\"members\":\"clad,deepsvdd,ocsvm\""));
	CHECK(header_has(buf, len, "\"combination\":\"mean_score\""));
	CHECK(header_has(buf, len, "\"ensemble.member.0\":{\"dtype\":\"U8\""));
	CHECK(!header_has(buf, len, "normalize_") && !header_has(buf, len, "\"latent\""));
	CHECK(clad_model_load(buf, len, &e2) == CLAD_OK);
	if (e2)
	{
		CHECK(e2->method == CLAD_METHOD_ENSEMBLE && e2->n_members == 3 && e2->n_calib == 3);
		CHECK(e2->members[0]->method == CLAD_METHOD_CLAD && e2->members[1]->method == CLAD_METHOD_DEEPSVDD &&
			  e2->members[2]->method == CLAD_METHOD_OCSVM);
		CHECK(clad_model_score(e, x, 3, c1, NULL) == CLAD_OK && clad_model_score(e2, x, 3, c2, NULL) == CLAD_OK);
		CHECK(memcmp(c1, c2, sizeof(c1)) == 0);
		CHECK(clad_model_save(e2, &buf2, &len2) == CLAD_OK);
		CHECK(len2 == len && memcmp(buf, buf2, len) == 0);
		free(buf2);
		clad_model_free(e2);
		e2 = NULL;
	}
	/* each member inside is the file it would be alone */
	for (int k = 0; k < 3; k++)
	{
		uint8_t    *mb;
		size_t		ml;

		CHECK(clad_model_save(e->members[k], &mb, &ml) == CLAD_OK);
		CHECK(memmem(buf, len, mb, ml) != NULL);
		free(mb);
	}
	/* broken files: an error and no model */
	{
		static const struct
		{
			const char *from, *to;
			clad_status want;
		}			swaps[] = {
			{"\"combination\":\"mean_score\"", "\"combination\":\"max_scores\"", CLAD_ERR_UNSUPPORTED},
			{"\"members\":\"clad,deepsvdd,ocsvm\"", "\"members\":\"clad,ocsvm,deepsvdd\"", CLAD_ERR_FORMAT},
			{"\"members\":\"clad,deepsvdd,ocsvm\"", "\"members\":\"clad,deepsvdd,ocsvn\"", CLAD_ERR_FORMAT},
			{"\"combination\":", "\"autoencoder\"", CLAD_ERR_FORMAT},	/* another method's key */
			{"\"ensemble.member.1\":{\"dtype\":\"U8\"", "\"ensemble.member.1\":{\"dtype\":\"I8\"", CLAD_ERR_FORMAT},
			{"\"ensemble.member.2\"", "\"ensemble.member.9\"", CLAD_ERR_FORMAT},	/* numbered from 0 */
			{"\"ensemble.member.2\"", "\"ensemble.member02\"", CLAD_ERR_FORMAT},
			{"\"method\":\"ocsvm\"", "\"method\":\"ocsvx\"", CLAD_ERR_UNSUPPORTED},	/* inside member 2 */
			{"\"method\":\"ensemble\"", "\"method\":\"ensembla\"", CLAD_ERR_UNSUPPORTED},
		};

		for (size_t i = 0; i < sizeof(swaps) / sizeof(swaps[0]); i++)
		{
			clad_status st;

			bad = patched(buf, len, swaps[i].from, swaps[i].to);
			st = clad_model_load(bad, len, &e2);
			CHECK_MSG(st != CLAD_OK && e2 == NULL, "accepted %s", swaps[i].to);
			CHECK_MSG(st == swaps[i].want, "%s: status %d, want %d (%s)", swaps[i].to, st, swaps[i].want,
					  clad_last_error());
			free(bad);
		}
		/* the member's own error, named */
		bad = patched(buf, len, "\"method\":\"ocsvm\"", "\"method\":\"ocsvx\"");
		CHECK(clad_model_load(bad, len, &e2) != CLAD_OK && strstr(clad_last_error(), "ensemble member 2") != NULL);
		free(bad);
	}
	/* an ensemble as a member is refused before it is read */
	{
		clad_st_writer *w = clad_st_writer_new();
		uint8_t    *nb;
		size_t		nl;
		static const char *meta[][2] = {{"format", "clad"}, {"format_version", "4"}, {"method", "ensemble"},
		{"input_shape", "1,28,28"}, {"members", "ensemble,ensemble"}, {"combination", "mean_score"},
		{"threshold", "0"}, {"summary", "{}"}};

		for (size_t i = 0; i < sizeof(meta) / sizeof(meta[0]); i++)
			CHECK(clad_st_writer_meta(w, meta[i][0], meta[i][1]) == CLAD_OK);
		CHECK(clad_st_writer_add(w, "ensemble.member.0", CLAD_DTYPE_U8, 1, (int64_t[]) {(int64_t) len}, buf) == CLAD_OK);
		CHECK(clad_st_writer_add(w, "ensemble.member.1", CLAD_DTYPE_U8, 1, (int64_t[]) {(int64_t) len}, buf) == CLAD_OK);
		CHECK(clad_st_writer_add(w, "calibration.confidences", CLAD_DTYPE_F32, 1, (int64_t[]) {0}, c1) == CLAD_OK);
		CHECK(clad_st_writer_finish(w, &nb, &nl) == CLAD_OK);
		clad_st_writer_free(w);
		CHECK(clad_model_load(nb, nl, &e2) == CLAD_ERR_FORMAT && !e2);
		CHECK(strstr(clad_last_error(), "cannot be an ensemble") != NULL);
		free(nb);
	}
	free(buf);
	clad_model_free(e);
	free(x);
}

int
main(void)
{
	check_scoring();
	check_create();
	check_files();
	return test_summary("test_ensemble");
}

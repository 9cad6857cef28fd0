/* tests/test_model.c: the CLAD model file round-trips, scores consistently, and refuses malformed input. */
#include "model.h"
#include "gemm.h"
#include "testutil.h"

#include <string.h>

static clad_model *
make_model(void)
{
	clad_model *m;

	CHECK(clad_model_create("cvae", "cnn", 1, 28, 28, 4, 6, &m) == CLAD_OK);
	clad_autoencoder_init(m->encoder, 1);
	clad_classifier_init(m->clf, "cnn", 2);
	for (int i = 0; i < 4 * 6; i++)
		m->centers[i] = (float) (i % 5) - 2.0f;
	m->mean[0] = 0.13f;
	m->std[0] = 0.31f;
	m->T = 1000.0f;
	m->eps = 0.0161f;
	m->threshold = 0.1f;
	m->n_calib = 5;
	m->calib = malloc(sizeof(float) * 5);
	for (int i = 0; i < 5; i++)
		m->calib[i] = 0.1f + 0.0001f * (float) i;
	free(m->summary);
	m->summary = strdup("{\"auroc\": 0.9}");
	return m;
}

/* Load must fail with a message, and leave no model. */
static void
refused(const uint8_t *buf, size_t len, const char *what)
{
	clad_model *m = (clad_model *) 1;
	clad_status st = clad_model_load(buf, len, &m);

	CHECK_MSG(st != CLAD_OK && m == NULL && clad_last_error()[0], "%s was accepted", what);
}

/* Re-save a model after changing one metadata key (NULL value: drop it). */
static uint8_t *
with_meta(const uint8_t *good, size_t len, const char *key, const char *value, size_t *out_len)
{
	clad_st_file *f;
	clad_st_writer *w = clad_st_writer_new();
	uint8_t    *buf;

	CHECK(clad_st_parse(good, len, &f) == CLAD_OK);
	for (size_t i = 0; i < f->n_meta; i++)
		if (strcmp(f->meta_keys[i], key) != 0)
			clad_st_writer_meta(w, f->meta_keys[i], f->meta_values[i]);
	if (value)
		clad_st_writer_meta(w, key, value);
	for (size_t i = 0; i < f->n_tensors; i++)
		clad_st_writer_add(w, f->tensors[i].name, f->tensors[i].dtype, f->tensors[i].ndim,
						   f->tensors[i].shape, f->tensors[i].data);
	CHECK(clad_st_writer_finish(w, &buf, out_len) == CLAD_OK);
	clad_st_writer_free(w);
	clad_st_free(f);
	return buf;
}

/* Re-save after replacing (or, with data NULL and ndim < 0, dropping) one tensor. */
static uint8_t *
with_tensor(const uint8_t *good, size_t len, const char *name, clad_dtype dt, int ndim,
			const int64_t *shape, const void *data, size_t *out_len)
{
	clad_st_file *f;
	clad_st_writer *w = clad_st_writer_new();
	uint8_t    *buf;

	CHECK(clad_st_parse(good, len, &f) == CLAD_OK);
	for (size_t i = 0; i < f->n_meta; i++)
		clad_st_writer_meta(w, f->meta_keys[i], f->meta_values[i]);
	for (size_t i = 0; i < f->n_tensors; i++)
		if (strcmp(f->tensors[i].name, name) != 0)
			clad_st_writer_add(w, f->tensors[i].name, f->tensors[i].dtype, f->tensors[i].ndim,
							   f->tensors[i].shape, f->tensors[i].data);
	if (ndim >= 0)
		clad_st_writer_add(w, name, dt, ndim, shape, data);
	CHECK(clad_st_writer_finish(w, &buf, out_len) == CLAD_OK);
	clad_st_writer_free(w);
	clad_st_free(f);
	return buf;
}

int
main(void)
{
	clad_model *m = make_model(), *m2 = NULL;
	uint8_t    *buf, *bad;
	size_t		len, blen;
	float		x[3 * 784], z1[18], z2[18], p1[12], p2[12], c1[3], c2[3], s1[3], s2[3];
	int32_t		k1[3], k2[3];
	clad_rng	r;

	clad_blas_init(CLAD_BLAS_AUTO, 1);
	clad_rng_seed(&r, 5);
	for (int i = 0; i < 3 * 784; i++)
		x[i] = clad_rng_uniform(&r);

	/* round trip: same settings, same outputs */
	CHECK(clad_model_save(m, &buf, &len) == CLAD_OK);
	CHECK(clad_model_load(buf, len, &m2) == CLAD_OK);
	if (!m2)
		return test_summary("test_model");
	CHECK(m2->C == 1 && m2->H == 28 && m2->K == 4 && m2->latent == 6 && m2->n_calib == 5);
	CHECK(m2->mean[0] == 0.13f && m2->std[0] == 0.31f && m2->eps == 0.0161f && m2->T == 1000.0f);
	CHECK(strcmp(m2->summary, "{\"auroc\": 0.9}") == 0 && strcmp(m2->classifier, "cnn") == 0);
	CHECK(clad_model_embed(m, x, 3, z1, p1, k1) == CLAD_OK);
	CHECK(clad_model_embed(m2, x, 3, z2, p2, k2) == CLAD_OK);
	CHECK(memcmp(z1, z2, sizeof(z1)) == 0 && memcmp(p1, p2, sizeof(p1)) == 0 && memcmp(k1, k2, sizeof(k1)) == 0);
	CHECK(clad_model_score(m, x, 3, c1, s1) == CLAD_OK);
	CHECK(clad_model_prepare(m2, 8) == CLAD_OK);
	CHECK(clad_model_score(m2, x, 3, c2, s2) == CLAD_OK);
	for (int b = 0; b < 3; b++)
	{
		CHECK(fabsf(c1[b] - c2[b]) <= 1e-6f * c1[b]);
		CHECK(s2[b] >= 0.0f && s2[b] <= 1.0f);
		/* one image alone scores as in the batch */
		CHECK(clad_model_score(m2, x + b * 784, 1, c2, s2) == CLAD_OK);
		CHECK(fabsf(c1[b] - c2[0]) <= 1e-6f * c1[b]);
	}
	for (int b = 0; b < 3; b++)
	{
		float		sum = 0;

		for (int k = 0; k < 4; k++)
			sum += p1[b * 4 + k];
		CHECK(fabsf(sum - 1.0f) < 1e-5f && k1[b] >= 0 && k1[b] < 4);
	}
	/* calibrated score: the fraction of held-out confidences above */
	CHECK(clad_model_calibrated_score(m2, 0.0f) == 1.0f);
	CHECK(clad_model_calibrated_score(m2, 1.0f) == 0.0f);
	CHECK(clad_model_calibrated_score(m2, 0.10015f) == 0.6f);
	/* bad pixels */
	x[7] = NAN;
	CHECK(clad_model_score(m2, x, 1, c2, s2) == CLAD_ERR_NUMERIC);
	x[7] = 0.5f;

	/* truncation: every offset of the header, and a spread of offsets in the data */
	{
		size_t		hdr = 8 + (size_t) buf[0] + ((size_t) buf[1] << 8) + ((size_t) buf[2] << 16);

		for (size_t cut = 0; cut < len; cut += cut < hdr + 16 ? 1 : 9973)
			refused(buf, cut, "a truncated model");
	}
	/* metadata */
	{
		static const char *const keys[] = {"format", "format_version", "input_shape", "normalize_mean",
			"normalize_std", "autoencoder", "classifier", "clusters", "latent", "odin_temperature",
		"odin_epsilon", "threshold", "summary"};
		static const char *const bad_values[][2] = {
			{"format", "onnx"}, {"format_version", "2"}, {"format_version", "1x"},
			{"input_shape", "1,28"}, {"input_shape", "1,28,28,"}, {"input_shape", "3,28,28"},
			{"normalize_mean", "nan"}, {"normalize_std", "0"}, {"normalize_std", "0.3,0.3"},
			{"autoencoder", "vae"}, {"classifier", "resnet50"}, {"clusters", "1"},
			{"clusters", "5"}, {"latent", "7"}, {"odin_temperature", "-1"}, {"odin_epsilon", "inf"},
			{"threshold", ""},
		};

		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		{
			bad = with_meta(buf, len, keys[i], NULL, &blen);
			refused(bad, blen, keys[i]);
			free(bad);
		}
		for (size_t i = 0; i < sizeof(bad_values) / sizeof(bad_values[0]); i++)
		{
			bad = with_meta(buf, len, bad_values[i][0], bad_values[i][1], &blen);
			refused(bad, blen, bad_values[i][1]);
			free(bad);
		}
	}
	/* tensors: missing, misshapen, wrong dtype, NaN, unsorted calibration */
	{
		float		w[4 * 6 * 9] = {0};
		int64_t		s_wrong[2] = {4, 5}, s_ok[2] = {4, 6}, s_cal[1] = {5};
		float		cal[5] = {0.5f, 0.4f, 0.6f, 0.7f, 0.8f};

		bad = with_tensor(buf, len, "classifier.fc3.weight", CLAD_DTYPE_F32, -1, NULL, NULL, &blen);
		refused(bad, blen, "a model without classifier.fc3.weight");
		free(bad);
		bad = with_tensor(buf, len, "encoder.conv1.bias", CLAD_DTYPE_F32, -1, NULL, NULL, &blen);
		refused(bad, blen, "a model without encoder.conv1.bias");
		free(bad);
		bad = with_tensor(buf, len, "dec.centers", CLAD_DTYPE_F32, 2, s_wrong, w, &blen);
		refused(bad, blen, "misshapen centres");
		free(bad);
		bad = with_tensor(buf, len, "dec.centers", CLAD_DTYPE_I32, 2, s_ok, w, &blen);
		refused(bad, blen, "I32 centres");
		free(bad);
		w[3] = NAN;
		bad = with_tensor(buf, len, "dec.centers", CLAD_DTYPE_F32, 2, s_ok, w, &blen);
		refused(bad, blen, "NaN centres");
		free(bad);
		bad = with_tensor(buf, len, "calibration.confidences", CLAD_DTYPE_F32, 1, s_cal, cal, &blen);
		refused(bad, blen, "unsorted calibration");
		free(bad);
		bad = with_tensor(buf, len, "classifier.bn4.num_batches_tracked", CLAD_DTYPE_F32, 0, NULL, w, &blen);
		refused(bad, blen, "an F32 counter");
		free(bad);
	}
	free(buf);
	clad_model_free(m);
	clad_model_free(m2);
	return test_summary("test_model");
}

/* tests/unit/testmodel.h: a small CLAD model with seeded weights and plausible settings,
 * seeded images, and the header probes and patches of the C tests of model files. */
#ifndef CLAD_TESTMODEL_H
#define CLAD_TESTMODEL_H

#include "model.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* n seeded 28x28 images of pixels in [0,1) */
static inline float *
seeded_pixels(int n, uint32_t seed)
{
	float	   *x = malloc(sizeof(float) * n * 784);

	for (int i = 0; i < n * 784; i++)
	{
		seed = seed * 1664525u + 1013904223u;
		x[i] = (float) (seed >> 8) / 16777216.0f;
	}
	return x;
}

/* Is needle in the JSON header of a saved file? */
static inline int
header_has(const uint8_t *buf, size_t len, const char *needle)
{
	uint64_t	n = 0;

	for (int i = 7; i >= 0; i--)
		n = n << 8 | buf[i];
	if (n + 8 > len)
		return 0;
	return memmem(buf + 8, n, needle, strlen(needle)) != NULL;
}

/* Replace the first occurrence of from by to (same length) in a copy of buf. */
static inline uint8_t *
patched(const uint8_t *buf, size_t len, const char *from, const char *to)
{
	uint8_t    *b = malloc(len), *at;

	memcpy(b, buf, len);
	at = memmem(b, len, from, strlen(from));
	CHECK_MSG(at != NULL, "no \"%s\" to patch", from);
	if (at)
		memcpy(at, to, strlen(to));
	return b;
}

/* BatchNorm running statistics of net set away from the identity, so eval mode is exercised */
static inline void
test_set_bn_stats(clad_net *net)
{
	for (size_t i = 0; i < clad_net_num_tensors(net); i++)
	{
		const clad_tensor_info *t = clad_net_tensor(net, i);
		size_t		n = strlen(t->name);

		if (n > 12 && strcmp(t->name + n - 12, "running_mean") == 0)
			for (size_t j = 0; j < t->numel; j++)
				t->data[j] = 0.05f * (float) ((j % 7) - 3);
		else if (n > 11 && strcmp(t->name + n - 11, "running_var") == 0)
			for (size_t j = 0; j < t->numel; j++)
				t->data[j] = 0.5f + 0.1f * (float) (j % 5);
	}
}

/* Write len bytes to path; 0 on success, else 1 after a message naming the test. */
static inline int
write_bytes(const char *test, const char *path, const uint8_t *buf, size_t len)
{
	FILE	   *f = fopen(path, "wb");

	if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0)
	{
		fprintf(stderr, "%s: cannot write %s\n", test, path);
		return 1;
	}
	return 0;
}

/* cvae + classifier (cnn, resnet18, ...), 1x28x28, K 4, latent 6; n_calib calibration
 * confidences 0.1, 0.1001, ...; threshold 0.1. */
static inline clad_model *
test_model_new(const char *classifier, int n_calib)
{
	clad_model *m;

	CHECK(clad_model_create("cvae", classifier, 1, 28, 28, 4, 6, &m) == CLAD_OK);
	clad_autoencoder_init(m->encoder, 1);
	clad_classifier_init(m->clf, classifier, 2);
	for (int i = 0; i < 4 * 6; i++)
		m->centers[i] = (float) (i % 5) - 2.0f;
	m->mean[0] = 0.13f;
	m->std[0] = 0.31f;
	m->T = 1000.0f;
	m->eps = 0.0161f;
	m->threshold = 0.1f;
	m->n_calib = n_calib;
	m->calib = malloc(sizeof(float) * n_calib);
	for (int i = 0; i < n_calib; i++)
		m->calib[i] = 0.1f + 0.0001f * (float) i;
	free(m->summary);
	m->summary = strdup("{\"auroc\": 0.9}");
	return m;
}

#endif

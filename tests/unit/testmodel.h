/* tests/unit/testmodel.h: a small CLAD model with seeded weights and plausible settings,
 * for the C tests of model files and prepared files. */
#ifndef CLAD_TESTMODEL_H
#define CLAD_TESTMODEL_H

#include "model.h"
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

/* cvae + classifier (cnn, resnet18, ...), 1x28x28, K 4, latent 6; n_calib calibration
 * confidences 0.1, 0.1001, ...; threshold 0.1. */
static clad_model *
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

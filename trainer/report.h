/* trainer/report.h: a training run as one self-contained HTML page (clad-train --report DIR).
 *
 * DIR/index.html holds, as inline SVG and PNG data: the loss curve of every
 * stage; a 2-D t-SNE map (van der Maaten and Hinton 2008, exact, as the
 * paper's figures) of the latent codes of up to 1000 normal training images,
 * coloured by pseudo-label and by true class; sample images of each cluster;
 * with a test split, the ROC curves of the baseline (max softmax, T = 1) and
 * ODIN, histograms of the calibrated score of normal and anomalous test
 * images, and the most anomalous test images.  A model of another method has
 * what applies to it: Deep SVDD its two stages' losses and its codes' map
 * (by true class); the one-class SVM neither; an ensemble CLAD's losses and
 * its members' ROC curves beside its own; none has clusters or a baseline.
 * It needs no network: no script, font or style is fetched.  The page is
 * well-formed XML (XHTML).
 */
#ifndef CLAD_REPORT_H
#define CLAD_REPORT_H

#include "dataset.h"
#include "model.h"
#include "train.h"

typedef struct clad_report_input
{
	const char *title;			/* what was trained, on what */
	const clad_train_log *log;
	const clad_train_config *cfg;
	clad_model *m;				/* prepared for scoring or not: batches of 64 are used */
	const clad_dataset *normal; /* the normal training images (labels: true classes) */
	const clad_dataset *test;	/* the test split, or NULL */
	const float *conf, *base;	/* (test->n) the model's and the baseline's confidences (base: CLAD's only, or NULL) */
	const uint8_t *anomaly;		/* (test->n) 1: anomalous */
} clad_report_input;

/* Write DIR/index.html (DIR is created when missing). */
clad_status clad_report_write(const char *dir, const clad_report_input *in);

#endif

/* trainer/baselines.h: the one-class baselines the paper compares CLAD with,
 * trained on the same normal images and evaluated the same way.
 *
 *   ocsvm     a one-class SVM (libsvm, Schoelkopf et al. 2001) with an RBF
 *             kernel on the normalised pixels of every normal training image;
 *             nu cfg->ocsvm_nu, gamma cfg->ocsvm_gamma or, when 0,
 *             1 / (features x pixel variance) (scikit-learn's "scale");
 *             anomaly score: minus the decision value.
 *   deepsvdd  Deep SVDD (Ruff et al. 2018; train.h, clad_train_deepsvdd);
 *             anomaly score: ||z - c||^2.
 *
 * Scores are higher for more anomalous images, as the metrics expect.  A
 * Deep SVDD baseline is a model (model.h, format version 4) that clad-train
 * --out saves and the extension scores; the OCSVM is evaluated in the run that
 * trains it and not stored.
 */
#ifndef CLAD_BASELINES_H
#define CLAD_BASELINES_H

#include "train.h"

typedef struct clad_baseline clad_baseline;

/* Whether name is a baseline method ("ocsvm", "deepsvdd"). */
int			clad_is_baseline(const char *name);

clad_status clad_baseline_train(const char *method, const clad_train_config *cfg, const clad_dataset *normal,
								clad_progress_fn progress, void *arg, clad_baseline **out,
								clad_train_log *log);

/* pixels (n, C,H,W) in [0,1] -> anomaly (n), higher = more anomalous. */
clad_status clad_baseline_score(clad_baseline *b, const float *pixels, int n, float *anomaly);

/* The model of a stored baseline (Deep SVDD), or NULL (the OCSVM). */
clad_model *clad_baseline_model(clad_baseline *b);

/* One line saying what was trained (kernel, nu, gamma, support vectors; or the SVDD radius). */
const char *clad_baseline_describe(const clad_baseline *b);

void		clad_baseline_free(clad_baseline *b);

#endif

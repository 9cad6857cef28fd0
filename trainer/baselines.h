/* trainer/baselines.h: the one-class baselines the paper compares CLAD with,
 * trained on the same normal images (the same seeded fit split, normalised
 * the same way), calibrated on the same held-out ones and evaluated the same way.
 *
 *   ocsvm     a one-class SVM (libsvm, Schoelkopf et al. 2001) with an RBF
 *             kernel on the normalised pixels of the fit images;
 *             nu cfg->ocsvm_nu, gamma cfg->ocsvm_gamma or, when 0,
 *             1 / (features x pixel variance) (scikit-learn's "scale");
 *             confidence: the decision value (core/ocsvm.h).
 *   deepsvdd  Deep SVDD (Ruff et al. 2018; train.h, clad_train_deepsvdd);
 *             confidence: - ||z - c||^2.
 *
 * Each is a model (model.h, format version 4) that clad-train --out saves
 * and the extension scores; the anomaly scores the metrics take are minus
 * its confidences (higher = more anomalous).
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
/* The same for any model: minus its confidences, a bounded batch at a time. */
clad_status clad_model_anomaly(clad_model *m, const float *pixels, int n, float *anomaly);

/* The baseline's model (calibrated; owned by b). */
clad_model *clad_baseline_model(clad_baseline *b);

/*
 * The training log of an ensemble's member k: Deep SVDD's (1) or the SVM's
 * (2); NULL for CLAD's (0: the log clad_baseline_train filled) or another model.
 */
const clad_train_log *clad_baseline_member_log(const clad_baseline *b, int k);

/* One line saying what was trained (kernel, nu, gamma, support vectors; or the SVDD's epochs). */
const char *clad_baseline_describe(const clad_baseline *b);

void		clad_baseline_free(clad_baseline *b);

/*
 * A one-class SVM model of a one-class RBF libsvm model svm trained on
 * images of C x H x W normalised with mean and std (per channel): its support
 * vectors, coefficients, gamma and rho, checked (uncalibrated).
 */
struct svm_model;
clad_status clad_ocsvm_model_from_libsvm(const struct svm_model *svm, int C, int H, int W, const float *mean,
										 const float *std, clad_model **out);

#endif

/* trainer/train.h: the four CLAD stages on normal images, producing a scorable model.
 *
 *  1. autoencoder: reconstruction (MSE) with Adam;
 *  2. self-labelling: k-means on the latent codes (restarts), then DEC
 *     refining the encoder and the centres jointly (SGD with momentum);
 *  3. classifier on the pseudo-labels (cross-entropy, Adam);
 *  4. calibration: ODIN confidences of held-out normal images give the
 *     threshold at the chosen true-positive rate and the calibrated score.
 */
#ifndef CLAD_TRAIN_H
#define CLAD_TRAIN_H

#include "dataset.h"
#include "model.h"

typedef struct clad_train_config
{
	char		autoencoder[32];	/* cvae */
	char		classifier[32];		/* resnet18 */
	int			K;					/* clusters = classifier outputs (10) */
	int			latent;				/* latent size h (10) */

	int			ae_epochs, ae_batch;	/* 100, 512 */
	float		ae_lr;				/* 1e-3 */
	char		ae_target[32];		/* what CLAD's autoencoder reconstructs: "normalised" (the
									 * normalised input, as the reference) or "pixels" (in [0,1]) */
	int			kmeans_restarts;	/* 20 */
	int			dec_epochs, dec_batch;	/* 100, 512 */
	float		dec_lr, dec_momentum;	/* 0.01, 0.9 */
	float		dec_tol;			/* stop when fewer than this fraction of labels change (0.001) */
	int			clf_epochs, clf_batch;	/* 10, 128 (an epoch: every image in every turn) */
	float		clf_lr;				/* 1e-4 */
	int			rotations;			/* orientation self-labels: 4 quarter turns (2: half turns;
									 * 1: plain self-labels and ODIN, the paper's recipe) */
	int			bank;				/* with rotations > 1: the neighbour confidence against up to
									 * this many fit images (core/neighbours.h); 0: the
									 * orientation confidence (2048) */
	char		bank_precision[8];	/* the bank's storage: "bf16" (half the bytes a score
									 * reads) or "f32" (bf16) */

	float		T, eps;				/* ODIN (1000, 0.0161: see core/odin.h) */
	double		tpr;				/* threshold at this TPR on held-out normals (0.95) */
	double		holdout;			/* fraction of normal training images held out (0.1) */
	uint64_t	seed;
	int			threads;			/* BLAS threads */
	char		device[32];			/* where the nets train: cpu, cuda, cuda:N, emulated (core/device.h) */

	/* the one-class baselines (baselines.h) */
	double		ocsvm_nu;			/* 0.1 */
	double		ocsvm_gamma;		/* RBF gamma; 0: 1 / (features x variance), sklearn's "scale" */
	int			svdd_epochs;		/* 50 (after ae_epochs of autoencoder pretraining) */
	int			svdd_batch;			/* 200: Deep SVDD's batches, its pretraining's too (Ruff et al.'s
									 * MNIST setting; ae_batch is CLAD's) */
	float		svdd_lr;			/* 1e-4 */
	float		svdd_weight_decay;	/* 5e-7 (Ruff et al. 2018 on MNIST) */
} clad_train_config;

/*
 * The defaults: clad's recipe, the reference's MNIST settings but for the
 * classifier, trained on orientation self-labels (4 turns, 10 epochs) and
 * scored by the neighbour confidence (core/neighbours.h) against up to 2048
 * fit images.
 */
void		clad_train_defaults(clad_train_config *cfg);

/*
 * Set a named recipe's settings on cfg: "clad" (the defaults) or "paper"
 * (the reference's: plain self-labels, 100 classifier epochs, ODIN).
 * Returns 0 for an unknown name.
 */
int			clad_train_recipe(clad_train_config *cfg, const char *name);

/* 1 when name is an autoencoder target ("normalised" or "pixels"), else 0. */
int			clad_is_ae_target(const char *name);
/* 1 when name is a neighbour bank's precision ("bf16" or "f32"), else 0. */
int			clad_is_bank_precision(const char *name);

/* Progress of a stage: called once per batch and once at each epoch's end. */
typedef struct clad_progress
{
	const char *stage;			/* "autoencoder", "dec", "classifier", "calibration" */
	int			epoch, epochs;	/* 1-based */
	int			done, total;	/* images so far in this epoch / per epoch */
	double		loss;			/* running mean of the epoch */
	double		extra;			/* DEC: fraction of labels changed; classifier: accuracy */
	int			epoch_end;		/* 1 on the per-epoch call */
} clad_progress;

typedef void (*clad_progress_fn) (const clad_progress *p, void *arg);

/* Per-stage record kept for the summary and the report. */
typedef struct clad_stage_log
{
	int			epochs_run;
	double		seconds;
	double		last_loss;
	double	   *loss;			/* (epochs_run) mean loss per epoch */
} clad_stage_log;

typedef struct clad_train_log
{
	clad_stage_log ae, dec, clf;
	double		neighbour_seconds;	/* the neighbour bank and its statistics */
	double		calib_seconds;
	int			n_fit, n_holdout;
	int			cluster_sizes[256];
	char		device[200];	/* where the nets trained (clad_device_describe) */
} clad_train_log;

void		clad_train_log_free(clad_train_log *log);

/*
 * Deep SVDD (Ruff et al. 2018) on the same normal images, with the same
 * normalisation and fit split: the bias-free cvae encoder (cvae_nobias,
 * latent cfg->latent, deterministic: no dropout, z = mu) is pretrained as an
 * autoencoder (cfg->ae_epochs, ae_lr; in batches of cfg->svdd_batch, as the
 * one-class stage), the centre c is the mean code of the fit images
 * (coordinates nearer 0 than 0.1 pushed to +-0.1, as the reference does),
 * then the encoder learns to pull codes toward c: mean ||z - c||^2 with Adam
 * (cfg->svdd_lr, svdd_weight_decay) for cfg->svdd_epochs; last, the
 * confidences (- ||z - c||^2) of the held-out normal images calibrate it and
 * set its threshold (cfg->tpr), as for CLAD.  *out is a Deep SVDD model
 * (model.h: encoder, normalisation, centre, calibration); log->ae and log->clf
 * (the SVDD stage) record the epochs.
 */
clad_status clad_train_deepsvdd(const clad_train_config *cfg, const clad_dataset *normal,
								clad_progress_fn progress, void *arg, clad_model **out, clad_train_log *log);

/*
 * The fit and held-out images of every method: the normal images in a
 * seeded order (cfg->seed), floor(n x cfg->holdout) of them held out, as
 * clad_train and clad_train_deepsvdd split them.  *fit (*nfit images) and
 * *hold (*nh) are new copies for the caller to free.
 */
clad_status clad_train_split(const clad_train_config *cfg, const clad_dataset *normal, float **fit, int *nfit,
							 float **hold, int *nh);

/*
 * Calibrate a model of any method: its confidences of the nh held-out
 * normal images hold (nh, C,H,W) become its calibration (sorted) and its
 * threshold the confidence at true-positive rate tpr.  Prepares the model
 * for batches of 64.
 */
clad_status clad_train_calibrate(clad_model *m, const float *hold, int nh, double tpr);

/*
 * Train on normal images (labels ignored).  On success *out is a model with
 * normalisation, weights, threshold and calibration filled in.
 */
clad_status clad_train(const clad_train_config *cfg, const clad_dataset *normal,
					   clad_progress_fn progress, void *arg, clad_model **out,
					   clad_train_log *log);

#endif

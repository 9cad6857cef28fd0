/* core/model.h: a trained CLAD model, its safetensors file, and scoring.
 *
 * One file holds everything needed to score an image: the encoder (its
 * tensors under "encoder."), the DEC centres ("dec.centers", K x latent), the
 * classifier ("classifier."), the sorted confidences of held-out normal
 * images ("calibration.confidences") and, in __metadata__, the settings:
 *   format "clad", format_version "1" or "2", input_shape "C,H,W",
 *   normalize_mean / normalize_std (one value per channel, comma separated),
 *   autoencoder, classifier (architecture names), clusters (K), latent,
 *   odin_temperature, odin_epsilon, threshold, summary (JSON text);
 * format_version 2 adds score ("orientation") and rotations (R); format_version
 * 3 is score "neighbours" (neighbours.h): an orientation classifier and a bank
 * of normal images' features, tensors "neighbours.bank.T" (R, n, dim_T) for
 * each feature tap T of the classifier, with metadata neighbour_pool (cells a
 * side per tap), neighbour_mean and neighbour_std (per tap).
 * The confidence of a version 1 model is ODIN's (odin.h): its classifier has
 * K outputs.  That of a version 2 model is the orientation confidence
 * (orientation.h): its classifier has K * R outputs, and ODIN's settings are
 * kept but unused.  So a model of the paper's recipe is written as version 1,
 * byte for byte as before, and a build that reads only version 1 refuses a
 * version 2 file by its version instead of misreading it.
 * Format version 4 holds another method than CLAD, named by the metadata
 * "method": "deepsvdd" (Deep SVDD, Ruff et al. 2018): the encoder
 * ("encoder.", its autoencoder architecture in "autoencoder"), the centre
 * ("svdd.center", latent floats), the calibration and, in __metadata__,
 * input_shape, normalize_mean / normalize_std, autoencoder, latent, threshold
 * and summary; no classifier, clusters, DEC centres or ODIN settings.  Its
 * confidence is - ||z - c||^2, z the encoder's code (higher = more normal).
 * The method "ocsvm" (a one-class SVM with an RBF kernel, ocsvm.h) has no
 * nets: tensors "ocsvm.support_vectors" (n, C x H x W normalised pixels),
 * "ocsvm.coefficients" (n, positive) and the calibration; metadata
 * input_shape, normalize_mean / normalize_std, kernel ("rbf"), gamma, rho,
 * threshold and summary.  Its confidence is the SVM's decision value.
 * The method "ensemble" holds 2 to CLAD_MAX_MEMBERS whole model files of
 * other methods (not ensembles), each a U8 tensor "ensemble.member.N" (N from
 * 0) loaded and validated as a file of its own, all of the same input_shape;
 * metadata input_shape, members (their methods, comma separated, in order),
 * combination ("mean_score"), threshold and summary, and its calibration.
 * Its confidence is 1 - the mean of the members' calibrated scores (each the
 * share of its held-out normal images more confident than the image): in
 * [0,1], higher = more normal.
 * Loading validates all of it and every tensor's name, dtype and shape.
 */
#ifndef CLAD_MODEL_H
#define CLAD_MODEL_H

#include "architectures.h"
#include "bf16.h"
#include "deepsvdd.h"
#include "neighbours.h"
#include "ocsvm.h"
#include "odin.h"
#include "orientation.h"

#define CLAD_FORMAT_VERSION 4	/* the newest this build reads and writes */
#define CLAD_MAX_CHANNELS 4

/* The detection methods a model file may hold. */
typedef enum clad_method
{
	CLAD_METHOD_CLAD,			/* autoencoder, self-labels, classifier, confidence */
	CLAD_METHOD_DEEPSVDD,		/* encoder and centre: - ||z - c||^2 */
	CLAD_METHOD_OCSVM,			/* support vectors: the one-class SVM's decision value */
	CLAD_METHOD_ENSEMBLE		/* models of other methods: 1 - their mean calibrated score */
} clad_method;

#define CLAD_MAX_MEMBERS 8		/* models in an ensemble */

typedef struct clad_model
{
	/* settings */
	clad_method method;
	char		autoencoder[32];	/* "" without an encoder (one-class SVM) */
	char		classifier[32];	/* "" without a classifier (Deep SVDD, one-class SVM) */
	int			C, H, W;
	int			K;				/* clusters = classifier outputs; 0 without (Deep SVDD) */
	int			latent;			/* 0 without an encoder */
	int			rotations;		/* 1: ODIN confidence; 2 or 4: orientation confidence */
	int			neighbours;		/* non-zero: the neighbour confidence (nb), an orientation classifier */
	float		mean[CLAD_MAX_CHANNELS];
	float		std[CLAD_MAX_CHANNELS];
	float		T, eps;			/* ODIN temperature and step (see odin.h) */
	float		threshold;		/* confidence below it: anomaly */
	char	   *summary;		/* training summary, JSON text (may be "{}") */

	/* weights */
	clad_net   *encoder;		/* NULL for the one-class SVM */
	clad_net   *decoder;		/* only while training; never saved */
	float	   *centers;		/* (K, latent); NULL for Deep SVDD */
	clad_net   *clf;			/* NULL for Deep SVDD */
	float	   *svdd_center;	/* (latent) Deep SVDD's centre c, else NULL */
	float	   *calib;			/* (n_calib) held-out normal confidences, ascending */
	int			n_calib;
	clad_neighbours nb;			/* the feature bank, when neighbours */
	clad_ocsvm	svm;			/* the one-class SVM, when method is CLAD_METHOD_OCSVM */
	struct clad_model *members[CLAD_MAX_MEMBERS];	/* an ensemble's models (owned) */
	int			n_members;
	clad_precision precision;	/* of the prepared plans' weights (clad_model_prepare_in) */

	/* scratch reused between calls */
	float	   *xnorm;
	int			xnorm_cap;
	clad_odin_work odin;
	clad_orientation_work orient;
} clad_model;

/* A new model with built, zero-initialised nets for these settings. */
clad_status clad_model_create(const char *autoencoder, const char *classifier,
							  int C, int H, int W, int K, int latent, clad_model **out);
/* The same, its classifier trained on orientation self-labels: K * R outputs (R = 1: as above). */
clad_status clad_model_create_rotations(const char *autoencoder, const char *classifier,
										int C, int H, int W, int K, int latent, int R,
										clad_model **out);
/*
 * A new Deep SVDD model: the encoder of autoencoder (built, zero-initialised;
 * the decoder too when with_decoder, for pretraining) and a zero centre.
 */
clad_status clad_model_create_deepsvdd(const char *autoencoder, int C, int H, int W, int latent,
									   int with_decoder, clad_model **out);
/*
 * A new one-class SVM model of n_sv support vectors (zeros; fill m->svm's and
 * call clad_ocsvm_check) for images of C x H x W.
 */
clad_status clad_model_create_ocsvm(int C, int H, int W, int n_sv, float gamma, float rho, clad_model **out);
/*
 * An ensemble of n models (2..CLAD_MAX_MEMBERS, of other methods than
 * ensemble, of one input shape), which it owns from then on (freed with it,
 * also on error); uncalibrated.
 */
clad_status clad_model_create_ensemble(clad_model **members, int n, clad_model **out);
void		clad_model_free(clad_model *m);

/* The method's name: "clad", "deepsvdd", "ocsvm" or "ensemble". */
const char *clad_model_method_name(const clad_model *m);

/* Serialise (encoder, centres, classifier, calibration, metadata) to safetensors. */
clad_status clad_model_save(const clad_model *m, uint8_t **buf, size_t *len);

/* Parse and validate a model file; on any problem, an error and no model. */
clad_status clad_model_load(const uint8_t *buf, size_t len, clad_model **out);

/*
 * The settings alone: a model file without the nets' weights (metadata, DEC
 * centres, calibration), and a model read from one, its nets built without
 * weight memory (clad_net_defer_weights: they run nothing until
 * clad_net_use_mapped).  For core/prepared.c, which keeps the weights
 * elsewhere.  A model loaded from settings scores a neighbour bank where it
 * lies in buf, which must then outlive the model.
 */
clad_status clad_model_save_settings(const clad_model *m, uint8_t **buf, size_t *len);
clad_status clad_model_load_settings(const uint8_t *buf, size_t len, clad_model **out);

/* The model's confidence, by name: "odin", "orientation", "neighbours", "deepsvdd", "ocsvm" or "ensemble". */
const char *clad_model_score_name(const clad_model *m);
/* The format version its file has: 1 (ODIN), 2 (orientation), 3 (neighbours) or 4 (another method). */
int			clad_model_format_version(const clad_model *m);

/* Build the eval-mode plans of the nets for batches up to max_B (after loading). */
clad_status clad_model_prepare(clad_model *m, int max_B);

/*
 * The same with the planned convolutions' weights in precision p (bf16.h):
 * fp32 is clad_model_prepare, bit for bit; bf16 rounds those weights to
 * bfloat16 (an ensemble's members too).  Confidences then differ from
 * fp32's by the rounding's effect; the calibration and threshold stay the
 * ones the trainer measured in fp32.
 */
clad_status clad_model_prepare_in(clad_model *m, int max_B, clad_precision p);

/*
 * After clad_model_prepare, for hosts that only score: give back the memory
 * of the weights the prepared plans replace (clad_net_release_planned_weights).
 * The model then scores and embeds batches up to max_B and cannot be saved.
 * Returns the bytes released.
 */
size_t		clad_model_release_weights(clad_model *m);

/*
 * Scoring, for B images of pixels in [0,1], (B, C,H,W); the model's
 * normalisation is applied here.  Any output pointer may be NULL.
 *   z (B, latent): the latent code (mean; a one-class SVM or an ensemble
 *   has none: an error naming its method); probs (B, K): DEC soft assignment;
 *   cluster (B): argmax of probs (CLAD models only: a Deep SVDD model has no
 *   clusters, and asking for them is an error naming its method);
 *   conf (B): the model's confidence (ODIN's, the orientation or the neighbour
 *   confidence; Deep SVDD's - ||z - c||^2; the one-class SVM's decision value;
 *   an ensemble's 1 - the mean of its members' calibrated scores);
 *   score (B): calibrated anomaly score in [0,1]
 *   (clad_model_calibrated_score).
 */
clad_status clad_model_embed(clad_model *m, const float *pixels, int B, float *z,
							 float *probs, int32_t *cluster);
clad_status clad_model_score(clad_model *m, const float *pixels, int B, float *conf,
							 float *score);

/* dist (B, taps): a neighbour model's distances d_t of B images (neighbours.h). */
clad_status clad_model_neighbour_distances(clad_model *m, const float *pixels, int B, float *dist);

/*
 * conf (B): the baseline the model's confidence is measured against: for an
 * ODIN model the classifier's max softmax (T = 1, no step); for an
 * orientation model its probability of "not turned" for the image as it is
 * (one orientation instead of the mean over all); for a neighbour model the
 * orientation confidence of its classifier.  Other methods have none (an error).
 */
clad_status clad_model_baseline(clad_model *m, const float *pixels, int B, float *conf);

/*
 * The calibrated score of a confidence: the share of the n held-out normal
 * images that were more confident, made continuous: with the calibration
 * confidences c_1 <= ... <= c_n, the score is (n + 1 - i) / (n + 1) at c_i and
 * linear in between; below c_1 it rises from n / (n + 1) towards 1, above c_n
 * it falls from 1 / (n + 1) towards 0, exponentially on the scale of
 * c_n - c_1.  So it is in [0,1] and falls strictly as the
 * confidence rises: images less (or more) confident than every held-out one
 * still rank among themselves.  Without calibration images: 1 below the
 * threshold, else 0.
 */
float		clad_model_calibrated_score(const clad_model *m, float conf);

#endif

/* trainer/train.c: the four CLAD stages (autoencoder, k-means + DEC, classifier, ODIN calibration). */
#include "train.h"
#include "device.h"
#include "gemm.h"
#include "kmeans.h"
#include "metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void
clad_train_defaults(clad_train_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	strcpy(cfg->autoencoder, "cvae");
	strcpy(cfg->classifier, "resnet18");
	cfg->K = 10;
	cfg->latent = 10;
	cfg->ae_epochs = 100;
	cfg->ae_batch = 512;
	cfg->ae_lr = 1e-3f;
	strcpy(cfg->ae_target, "normalised");
	cfg->kmeans_restarts = 20;
	cfg->dec_epochs = 100;
	cfg->dec_batch = 512;
	cfg->dec_lr = 0.01f;
	cfg->dec_momentum = 0.9f;
	cfg->dec_tol = 0.001f;
	cfg->clf_epochs = 10;
	cfg->clf_batch = 128;
	cfg->clf_lr = 1e-4f;
	cfg->rotations = 4;
	cfg->bank = 2048;
	strcpy(cfg->bank_precision, "bf16");
	cfg->T = 1000.0f;
	cfg->eps = 0.0161f;
	cfg->tpr = 0.95;
	cfg->holdout = 0.1;
	cfg->seed = 1;
	cfg->threads = 1;
	strcpy(cfg->device, "cpu");
	cfg->ocsvm_nu = 0.1;
	cfg->ocsvm_gamma = 0.0;
	cfg->svdd_epochs = 50;
	cfg->svdd_batch = 200;
	cfg->svdd_lr = 1e-4f;
	cfg->svdd_weight_decay = 5e-7f;
}

int
clad_train_recipe(clad_train_config *cfg, const char *name)
{
	if (strcmp(name, "clad") == 0)
	{
		cfg->rotations = 4;
		cfg->clf_epochs = 10;
		cfg->bank = 2048;
		return 1;
	}
	if (strcmp(name, "paper") == 0)
	{
		cfg->rotations = 1;
		cfg->clf_epochs = 100;
		cfg->bank = 0;
		return 1;
	}
	return 0;
}

int
clad_is_bank_precision(const char *name)
{
	return strcmp(name, "bf16") == 0 || strcmp(name, "f32") == 0;
}

int
clad_is_ae_target(const char *name)
{
	return strcmp(name, "normalised") == 0 || strcmp(name, "pixels") == 0;
}

void
clad_train_log_free(clad_train_log *log)
{
	if (!log)
		return;
	free(log->ae.loss);
	free(log->dec.loss);
	free(log->clf.loss);
	memset(log, 0, sizeof(*log));
}

static double
now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Everything one training run holds, freed in one place. */
typedef struct run
{
	const clad_train_config *cfg;
	clad_model *m;
	int			n;				/* fit images */
	size_t		img;			/* floats per image */
	float	   *pix;			/* (n, img) fit images in [0,1] */
	float	   *xn;				/* (n, img) normalised */
	int32_t    *order;			/* (n) shuffled indices */
	float	   *xb, *tb;		/* (batch, img) gathered inputs / targets */
	float	   *z;				/* (n, latent) latent codes */
	float	   *q;				/* (n, K) soft assignments */
	int32_t    *labels;			/* (n) pseudo-labels */
	int32_t    *yb;				/* (batch) */
	clad_rng	rng;
	clad_device *dev;			/* where the nets train; NULL: the CPU */
	clad_progress_fn progress;
	void	   *arg;
} run;

/* Move the model's nets onto dev (NULL: back to the host, as scoring and saving need). */
static clad_status
nets_to(run *r, clad_device *dev)
{
	clad_status st = CLAD_OK;

	if (r->m->encoder && (st = clad_net_to_device(r->m->encoder, dev)) != CLAD_OK)
		return st;
	if (r->m->decoder && (st = clad_net_to_device(r->m->decoder, dev)) != CLAD_OK)
		return st;
	if (r->m->clf)
		st = clad_net_to_device(r->m->clf, dev);
	return st;
}

static void
report(run *r, const char *stage, int epoch, int epochs, int done, int total, double loss,
	   double extra, int end)
{
	clad_progress p = {stage, epoch, epochs, done, total, loss, extra, end};

	if (r->progress)
		r->progress(&p, r->arg);
}

static void
gather(float *dst, const float *src, const int32_t *idx, int B, size_t img)
{
	for (int b = 0; b < B; b++)
		memcpy(dst + (size_t) b * img, src + (size_t) idx[b] * img, sizeof(float) * img);
}

static clad_status
log_epoch(clad_stage_log *log, int epoch, double loss)
{
	double	   *l = realloc(log->loss, sizeof(double) * (epoch + 1));

	if (!l)
		return clad_fail(CLAD_ERR_NOMEM, "out of memory logging");
	log->loss = l;
	l[epoch] = loss;
	log->epochs_run = epoch + 1;
	log->last_loss = loss;
	return CLAD_OK;
}

/* Per-channel mean and std of the fit images: the reference's Normalize. */
static void
set_normalisation(run *r)
{
	clad_model *m = r->m;
	size_t		plane = (size_t) m->H * m->W;

	clad_channel_stats(r->pix, r->n, m->C, plane, m->mean, m->std);
	for (int i = 0; i < r->n; i++)
		for (int c = 0; c < m->C; c++)
		{
			const float *p = r->pix + (size_t) i * r->img + c * plane;
			float	   *q = r->xn + (size_t) i * r->img + c * plane;

			for (size_t j = 0; j < plane; j++)
				q[j] = (p[j] - m->mean[c]) / m->std[c];
		}
}

/* Batch sizes: a lone last image is dropped when BatchNorm would see one value. */
static int
batch_at(int start, int n, int bs)
{
	int			B = n - start < bs ? n - start : bs;

	return (B == 1 && n > 1) ? 0 : B;
}

/*
 * Stage 1: autoencoder reconstruction of target, the fit images as they come in
 * (r->xn, normalised) or in [0,1] (r->pix).  The reference's MSE compares a
 * sigmoid's output with the normalised input: the background (below 0 once
 * normalised) and the stroke cores (above 1) are out of its reach, and what it
 * can match is where strokes begin.  On MNIST that gave better clusters and
 * ODIN scores than reconstructing the pixels (README, mnist:CUR).
 */
static clad_status
train_autoencoder(run *r, const float *target, clad_stage_log *log)
{
	const clad_train_config *cfg = r->cfg;
	clad_model *m = r->m;
	clad_adam	oe = {cfg->ae_lr, 0.9f, 0.999f, 1e-8f, 0.0f, 0};
	clad_adam	od = oe;
	clad_loss_spec mse = {.kind = CLAD_LOSS_MSE};
	float	   *dz = malloc(sizeof(float) * cfg->ae_batch * m->latent);
	double		t0 = now();
	clad_status st = CLAD_OK;

	if (!dz)
		return clad_fail(CLAD_ERR_NOMEM, "out of memory for the autoencoder");
	clad_net_seed(m->encoder, cfg->seed + 11);
	for (int ep = 0; ep < cfg->ae_epochs && st == CLAD_OK; ep++)
	{
		double		sum = 0;
		int			seen = 0;

		clad_rng_shuffle(&r->rng, r->order, r->n);
		for (int s = 0; s < r->n && st == CLAD_OK; s += cfg->ae_batch)
		{
			int			B = batch_at(s, r->n, cfg->ae_batch);
			float		loss;

			if (B == 0)
				break;
			gather(r->xb, r->xn, r->order + s, B, r->img);
			gather(r->tb, target, r->order + s, B, r->img);
			mse.target = r->tb;
			if ((st = clad_net_forward(m->encoder, r->xb, B, CLAD_TRAIN)) != CLAD_OK ||
				(st = clad_net_forward_after(m->decoder, m->encoder, CLAD_TRAIN)) != CLAD_OK ||
				(st = clad_net_loss(m->decoder, &mse, &loss)) != CLAD_OK)
				break;
			if (!isfinite(loss))
			{
				st = clad_fail(CLAD_ERR_NUMERIC, "autoencoder loss diverged (epoch %d); lower --ae-lr", ep + 1);
				break;
			}
			clad_net_zero_grad(m->encoder);
			clad_net_zero_grad(m->decoder);
			/* on a device the codes and their gradient never leave it */
			if ((st = clad_net_backward_through(m->decoder, m->encoder, NULL, 1, dz)) != CLAD_OK ||
				(st = clad_net_adam_step(m->encoder, &oe)) != CLAD_OK ||
				(st = clad_net_adam_step(m->decoder, &od)) != CLAD_OK)
				break;
			sum += (double) loss * B;
			seen += B;
			report(r, "autoencoder", ep + 1, cfg->ae_epochs, seen, r->n, sum / seen, 0, 0);
		}
		if (st == CLAD_OK && seen > 0)
		{
			st = log_epoch(log, ep, sum / seen);
			report(r, "autoencoder", ep + 1, cfg->ae_epochs, seen, r->n, sum / seen, 0, 1);
		}
	}
	log->seconds = now() - t0;
	free(dz);
	return st;
}

/* Latent codes (eval: z = mu) of all fit images into r->z. */
static clad_status
embed_all(run *r)
{
	clad_model *m = r->m;

	for (int s = 0; s < r->n; s += 256)
	{
		int			B = r->n - s < 256 ? r->n - s : 256;
		clad_status st = clad_net_forward(m->encoder, r->xn + (size_t) s * r->img, B, CLAD_EVAL);
		const float *z;

		if (st != CLAD_OK)
			return st;
		if (!(z = clad_net_output(m->encoder)))
			return clad_fail(CLAD_ERR_DEVICE, "%s", clad_last_error());
		memcpy(r->z + (size_t) s * m->latent, z, sizeof(float) * B * m->latent);
	}
	return CLAD_OK;
}

static void
argmax_rows(int32_t *out, const float *v, int n, int K)
{
	for (int i = 0; i < n; i++)
		out[i] = clad_argmax(v + (size_t) i * K, K);
}

/* Stage 2: k-means initialisation, then DEC. */
static clad_status
train_dec(run *r, clad_stage_log *log)
{
	const clad_train_config *cfg = r->cfg;
	clad_model *m = r->m;
	int			K = m->K, D = m->latent;
	clad_sgd	oe = {cfg->dec_lr, cfg->dec_momentum, 0.0f, 0};
	clad_sgd	oc = oe;
	float	   *dcent = malloc(sizeof(float) * K * D);
	float	   *cbuf = calloc((size_t) K * D, sizeof(float));
	int32_t    *prev = malloc(sizeof(int32_t) * r->n);
	clad_loss_spec kl = {.kind = CLAD_LOSS_DEC_KL, .centers = m->centers, .K = K, .alpha = 1.0f,
	.dcenters = dcent};
	double		t0 = now();
	clad_status st;

	if (!dcent || !cbuf || !prev)
	{
		st = clad_fail(CLAD_ERR_NOMEM, "out of memory for DEC");
		goto done;
	}
	if ((st = embed_all(r)) != CLAD_OK ||
		(st = clad_kmeans(r->z, r->n, D, K, cfg->kmeans_restarts, 300, cfg->seed + 23,
						  m->centers, prev, NULL)) != CLAD_OK)
		goto done;
	/* DEC trains without dropout or sampling noise: the codes it sharpens are the means */
	clad_net_set_stochastic(m->encoder, 0);
	for (int ep = 0; ep < cfg->dec_epochs; ep++)
	{
		double		sum = 0, changed;
		int			seen = 0, nchanged = 0;

		if ((st = embed_all(r)) != CLAD_OK)
			break;
		clad_dec_soft_assign(r->q, r->z, m->centers, r->n, K, D, 1.0f);
		argmax_rows(r->labels, r->q, r->n, K);
		for (int i = 0; i < r->n; i++)
			nchanged += r->labels[i] != prev[i];
		memcpy(prev, r->labels, sizeof(int32_t) * r->n);
		changed = (double) nchanged / r->n;
		if (ep > 0 && changed < cfg->dec_tol)
			break;

		clad_rng_shuffle(&r->rng, r->order, r->n);
		for (int s = 0; s < r->n; s += cfg->dec_batch)
		{
			int			B = batch_at(s, r->n, cfg->dec_batch);
			float		loss;

			if (B == 0)
				break;
			gather(r->xb, r->xn, r->order + s, B, r->img);
			if ((st = clad_net_forward(m->encoder, r->xb, B, CLAD_TRAIN)) != CLAD_OK ||
				(st = clad_net_loss(m->encoder, &kl, &loss)) != CLAD_OK)
				goto done;
			if (!isfinite(loss))
			{
				st = clad_fail(CLAD_ERR_NUMERIC, "DEC loss diverged (epoch %d); lower --dec-lr", ep + 1);
				goto done;
			}
			clad_net_zero_grad(m->encoder);
			if ((st = clad_net_backward(m->encoder, NULL, 1, NULL)) != CLAD_OK ||
				(st = clad_net_sgd_step(m->encoder, &oe)) != CLAD_OK)
				goto done;
			clad_sgd_step(&oc, m->centers, dcent, cbuf, (size_t) K * D);
			sum += (double) loss * B;
			seen += B;
			report(r, "dec", ep + 1, cfg->dec_epochs, seen, r->n, sum / seen, changed, 0);
		}
		if (seen > 0)
		{
			if ((st = log_epoch(log, ep, sum / seen)) != CLAD_OK)
				break;
			report(r, "dec", ep + 1, cfg->dec_epochs, seen, r->n, sum / seen, changed, 1);
		}
	}
	clad_net_set_stochastic(m->encoder, 1);
	if (st == CLAD_OK && (st = embed_all(r)) == CLAD_OK)
	{
		clad_dec_soft_assign(r->q, r->z, m->centers, r->n, K, D, 1.0f);
		argmax_rows(r->labels, r->q, r->n, K);
	}
done:
	log->seconds = now() - t0;
	free(dcent);
	free(cbuf);
	free(prev);
	return st;
}

/* Stage 3: the classifier learns the pseudo-labels. */
/*
 * Rows of a classifier batch: entry e of the epoch's order is image e / R
 * turned e % R quarter turns (of 4; half turns when R = 2), labelled
 * cluster * R + turn.  With R = 1: the image and its cluster.
 */
static void
gather_turned(run *r, const int32_t *entries, int B, int R)
{
	const clad_model *m = r->m;

	for (int b = 0; b < B; b++)
	{
		int			i = entries[b] / R, t = entries[b] % R;

		clad_rotate90(r->xb + (size_t) b * r->img, r->xn + (size_t) i * r->img, 1, m->C, m->H, m->W,
					  t * 4 / R);
		r->yb[b] = r->labels[i] * R + t;
	}
}

/* Stage 3: the classifier on the self-labels (each image in every orientation). */
static clad_status
train_classifier(run *r, clad_stage_log *log)
{
	const clad_train_config *cfg = r->cfg;
	clad_model *m = r->m;
	clad_adam	opt = {cfg->clf_lr, 0.9f, 0.999f, 1e-8f, 0.0f, 0};
	double		t0 = now();
	clad_status st = CLAD_OK;
	int			R = m->rotations, total = r->n * R;
	/* R = 1 shuffles the stages' shared order on, as before orientations came */
	int32_t    *order = R == 1 ? r->order : malloc(sizeof(int32_t) * total);

	if (!order)
		return clad_fail(CLAD_ERR_NOMEM, "out of memory for %d classifier rows", total);
	if (R > 1)
		for (int e = 0; e < total; e++)
			order[e] = e;
	for (int ep = 0; ep < cfg->clf_epochs && st == CLAD_OK; ep++)
	{
		double		sum = 0;
		int			seen = 0, correct = 0;

		clad_rng_shuffle(&r->rng, order, total);
		for (int s = 0; s < total; s += cfg->clf_batch)
		{
			int			B = batch_at(s, total, cfg->clf_batch);
			int			right = 0;
			clad_loss_spec ce = {.kind = CLAD_LOSS_CROSS_ENTROPY, .labels = r->yb, .T = 1.0f,
			.correct = &right};
			float		loss;

			if (B == 0)
				break;
			gather_turned(r, order + s, B, R);
			if ((st = clad_net_forward(m->clf, r->xb, B, CLAD_TRAIN)) != CLAD_OK ||
				(st = clad_net_loss(m->clf, &ce, &loss)) != CLAD_OK)
				break;
			if (!isfinite(loss))
			{
				st = clad_fail(CLAD_ERR_NUMERIC, "classifier loss diverged (epoch %d); lower --clf-lr", ep + 1);
				break;
			}
			correct += right;
			clad_net_zero_grad(m->clf);
			if ((st = clad_net_backward(m->clf, NULL, 1, NULL)) != CLAD_OK ||
				(st = clad_net_adam_step(m->clf, &opt)) != CLAD_OK)
				break;
			sum += (double) loss * B;
			seen += B;
			report(r, "classifier", ep + 1, cfg->clf_epochs, seen, total, sum / seen,
				   (double) correct / seen, 0);
		}
		if (st == CLAD_OK && seen > 0)
		{
			st = log_epoch(log, ep, sum / seen);
			report(r, "classifier", ep + 1, cfg->clf_epochs, seen, total, sum / seen,
				   (double) correct / seen, 1);
		}
	}
	if (order != r->order)
		free(order);
	log->seconds = now() - t0;
	return st;
}

/* cells a side each feature tap of the classifier is pooled to for the neighbour bank */
static int
neighbour_pool(const char *classifier, int tap)
{
	/* ResNet-18's layer2 map (4x4 on MNIST) in 2x2 cells keeps where strokes are */
	return strcmp(classifier, "resnet18") == 0 && tap == 0 ? 2 : 1;
}

/*
 * The neighbour bank: the features of up to cfg->bank fit images (a seeded
 * choice), then the mean and spread of the held-out normal images' distances.
 */
static clad_status
build_neighbours(run *r, const float *hold, int nh, double *seconds)
{
	clad_model *m = r->m;
	int			pool[CLAD_NEIGHBOUR_MAX_TAPS], n = r->n < r->cfg->bank ? r->n : r->cfg->bank;
	int			ntaps = clad_net_num_features(m->clf), rows = 256;
	int32_t    *pick = malloc(sizeof(int32_t) * (r->n > 0 ? r->n : 1));
	float	   *x = NULL, *dist = NULL;
	double		t0 = now();
	clad_status st;

	if (!pick)
		return clad_fail(CLAD_ERR_NOMEM, "out of memory choosing the neighbour bank");
	for (int t = 0; t < ntaps && t < CLAD_NEIGHBOUR_MAX_TAPS; t++)
		pool[t] = neighbour_pool(r->cfg->classifier, t);
	if ((st = clad_neighbours_init(&m->nb, m->clf, m->rotations, pool, n,
								   strcmp(r->cfg->bank_precision, "bf16") == 0)) != CLAD_OK)
		goto done;
	for (int i = 0; i < r->n; i++)
		pick[i] = i;
	clad_rng_shuffle(&r->rng, pick, r->n);
	if (!(x = malloc(sizeof(float) * r->img * n)) ||
		!(dist = malloc(sizeof(float) * ntaps * (nh > 0 ? nh : 1))))
	{
		st = clad_fail(CLAD_ERR_NOMEM, "out of memory for the neighbour bank");
		goto done;
	}
	gather(x, r->xn, pick, n, r->img);
	report(r, "neighbours", 1, 1, 0, n + nh, 0, 0, 0);
	if ((st = clad_neighbours_fill(&m->nb, m->clf, x, rows, &m->orient)) != CLAD_OK)
		goto done;
	m->neighbours = 1;
	for (int s = 0; s < nh && st == CLAD_OK; s += 64)
	{
		int			B = nh - s < 64 ? nh - s : 64;

		st = clad_model_neighbour_distances(m, hold + (size_t) s * r->img, B, dist + (size_t) s * ntaps);
		report(r, "neighbours", 1, 1, n + s + B, n + nh, 0, 0, 0);
	}
	if (st == CLAD_OK)
		clad_neighbours_set_stats(&m->nb, dist, nh);
	report(r, "neighbours", 1, 1, n + nh, n + nh, 0, 0, 1);
done:
	if (st != CLAD_OK)
	{
		clad_neighbours_free(&m->nb);
		m->neighbours = 0;
	}
	*seconds = now() - t0;
	free(pick);
	free(x);
	free(dist);
	return st;
}

static int
by_float(const void *a, const void *b)
{
	float		x = *(const float *) a, y = *(const float *) b;

	return x < y ? -1 : (x > y ? 1 : 0);
}

/* The model's confidences of the held-out normal images, sorted, and the threshold at tpr; progress to r (or none). */
static clad_status
calibrate_model(clad_model *m, const float *hold, int nh, double tpr, run *r)
{
	size_t		img = (size_t) m->C * m->H * m->W;
	clad_status st = CLAD_OK;

	free(m->calib);
	m->n_calib = 0;
	if (!(m->calib = malloc(sizeof(float) * (nh > 0 ? nh : 1))))
		return clad_fail(CLAD_ERR_NOMEM, "out of memory calibrating");
	if ((st = clad_model_prepare(m, 64)) != CLAD_OK)
		return st;
	for (int s = 0; s < nh && st == CLAD_OK; s += 64)
	{
		int			B = nh - s < 64 ? nh - s : 64;

		st = clad_model_score(m, hold + (size_t) s * img, B, m->calib + s, NULL);
		if (r)
			report(r, "calibration", 1, 1, s + B, nh, 0, 0, 0);
	}
	if (st != CLAD_OK)
		return st;
	qsort(m->calib, nh, sizeof(float), by_float);
	m->n_calib = nh;
	m->threshold = nh > 0 ? clad_threshold_at_tpr(m->calib, nh, tpr) : 0.0f;
	if (r)
		report(r, "calibration", 1, 1, nh, nh, 0, 0, 1);
	return CLAD_OK;
}

clad_status
clad_train_calibrate(clad_model *m, const float *hold, int nh, double tpr)
{
	return calibrate_model(m, hold, nh, tpr, NULL);
}

/* Stage 4: ODIN confidences of the held-out normal images. */
static clad_status
calibrate(run *r, const float *hold, int nh, double *seconds)
{
	double		t0 = now();
	clad_status st;

	r->m->T = r->cfg->T;
	r->m->eps = r->cfg->eps;
	if ((st = calibrate_model(r->m, hold, nh, r->cfg->tpr, r)) != CLAD_OK)
		return st;
	*seconds = now() - t0;
	return CLAD_OK;
}

/* The seeded order every method splits the normal images by: the first n - nh fit, the rest are held out. */
static void
holdout_order(clad_rng *rng, int n, int32_t *perm)
{
	for (int i = 0; i < n; i++)
		perm[i] = i;
	clad_rng_shuffle(rng, perm, n);
}

clad_status
clad_train_split(const clad_train_config *cfg, const clad_dataset *normal, float **fit, int *nfit,
				 float **hold, int *nh)
{
	size_t		img = (size_t) normal->C * normal->H * normal->W;
	int32_t    *perm;
	clad_rng	rng;

	*fit = *hold = NULL;
	if (!(cfg->holdout > 0.0 && cfg->holdout < 1.0))
		return clad_fail(CLAD_ERR_INVALID, "--holdout must be between 0 and 1");
	*nh = (int) floor(normal->n * cfg->holdout);
	*nfit = normal->n - *nh;
	if (*nh < 1 || *nfit < 2)
		return clad_fail(CLAD_ERR_INVALID, "%d normal images are too few for a fit and a held-out part",
						 normal->n);
	perm = malloc(sizeof(int32_t) * normal->n);
	*fit = malloc(sizeof(float) * *nfit * img);
	*hold = malloc(sizeof(float) * *nh * img);
	if (!perm || !*fit || !*hold)
	{
		free(perm);
		free(*fit);
		free(*hold);
		*fit = *hold = NULL;
		return clad_fail(CLAD_ERR_NOMEM, "out of memory for %d training images", normal->n);
	}
	clad_rng_seed(&rng, cfg->seed);
	holdout_order(&rng, normal->n, perm);
	for (int i = 0; i < normal->n; i++)
		memcpy(i < *nfit ? *fit + (size_t) i * img : *hold + (size_t) (i - *nfit) * img,
			   normal->pixels + (size_t) perm[i] * img, sizeof(float) * img);
	free(perm);
	return CLAD_OK;
}

/*
 * What every method's run starts with: the model of these architectures, a
 * seeded hold-out of cfg->holdout of the normal images (*hold, *nh) and the
 * fit images, normalised with their own mean and std.
 */
static clad_status
run_setup(run *r, const clad_train_config *cfg, const clad_dataset *normal, const char *autoencoder,
		  const char *classifier, int K, int rotations, float **hold, int *nh, clad_train_log *log)
{
	clad_status st;
	int			maxb;
	int32_t    *perm;

	memset(r, 0, sizeof(*r));
	*hold = NULL;
	if (cfg->ae_batch < 2 || cfg->dec_batch < 2 || cfg->clf_batch < 2)
		return clad_fail(CLAD_ERR_INVALID, "batch sizes must be at least 2");
	if (!(cfg->holdout > 0.0 && cfg->holdout < 1.0) || !(cfg->tpr > 0.0 && cfg->tpr < 1.0))
		return clad_fail(CLAD_ERR_INVALID, "--holdout and --tpr must be between 0 and 1");
	if ((st = clad_blas_init(CLAD_BLAS_AUTO, cfg->threads)) != CLAD_OK)
		return st;
	if ((st = clad_device_open(cfg->device[0] ? cfg->device : "cpu", &r->dev)) != CLAD_OK)
		return st;
	snprintf(log->device, sizeof(log->device), "%s", clad_device_describe(r->dev));
	/* without a classifier: a Deep SVDD model (encoder and centre) */
	if (classifier)
		st = clad_model_create_rotations(autoencoder, classifier, normal->C, normal->H, normal->W,
										 K, cfg->latent, rotations, &r->m);
	else
		st = clad_model_create_deepsvdd(autoencoder, normal->C, normal->H, normal->W, cfg->latent, 1, &r->m);
	if (st != CLAD_OK)
		return st;
	r->cfg = cfg;
	r->img = (size_t) normal->C * normal->H * normal->W;
	clad_rng_seed(&r->rng, cfg->seed);

	/* hold out a seeded fraction of the normal images for calibration */
	*nh = (int) floor(normal->n * cfg->holdout);
	r->n = normal->n - *nh;
	if (r->n < (K > 1 ? K : 1) * 2 || *nh < 1)
		return clad_fail(CLAD_ERR_INVALID, "%d normal images are too few for K = %d and a held-out part",
						 normal->n, K);
	maxb = cfg->ae_batch;
	if (cfg->dec_batch > maxb)
		maxb = cfg->dec_batch;
	if (cfg->clf_batch > maxb)
		maxb = cfg->clf_batch;
	perm = malloc(sizeof(int32_t) * normal->n);
	r->pix = malloc(sizeof(float) * r->n * r->img);
	r->xn = malloc(sizeof(float) * r->n * r->img);
	*hold = malloc(sizeof(float) * *nh * r->img);
	r->order = malloc(sizeof(int32_t) * r->n);
	r->xb = malloc(sizeof(float) * maxb * r->img);
	r->tb = malloc(sizeof(float) * maxb * r->img);
	r->z = malloc(sizeof(float) * r->n * cfg->latent);
	r->q = malloc(sizeof(float) * r->n * (K > 1 ? K : 1));
	r->labels = malloc(sizeof(int32_t) * r->n);
	r->yb = malloc(sizeof(int32_t) * maxb);
	if (!perm || !r->pix || !r->xn || !*hold || !r->order || !r->xb || !r->tb || !r->z ||
		!r->q || !r->labels || !r->yb)
	{
		free(perm);
		return clad_fail(CLAD_ERR_NOMEM, "out of memory for %d training images", normal->n);
	}
	holdout_order(&r->rng, normal->n, perm);
	for (int i = 0; i < r->n; i++)
	{
		memcpy(r->pix + (size_t) i * r->img, normal->pixels + (size_t) perm[i] * r->img, sizeof(float) * r->img);
		r->order[i] = i;
	}
	for (int i = 0; i < *nh; i++)
		memcpy(*hold + (size_t) i * r->img, normal->pixels + (size_t) perm[r->n + i] * r->img,
			   sizeof(float) * r->img);
	free(perm);
	log->n_fit = r->n;
	log->n_holdout = *nh;
	set_normalisation(r);
	return CLAD_OK;
}

static void
run_free(run *r, float *hold)
{
	/* the nets first: a net still on the device gives its memory back to it */
	clad_model_free(r->m);
	clad_device_close(r->dev);
	free(hold);
	free(r->pix);
	free(r->xn);
	free(r->order);
	free(r->xb);
	free(r->tb);
	free(r->z);
	free(r->q);
	free(r->labels);
	free(r->yb);
}

clad_status
clad_train(const clad_train_config *cfg, const clad_dataset *normal,
		   clad_progress_fn progress, void *arg, clad_model **out, clad_train_log *log)
{
	run			r;
	clad_status st;
	int			nh;
	float	   *hold = NULL;

	*out = NULL;
	memset(log, 0, sizeof(*log));
	if (cfg->K < 2 || cfg->K > 256)
		return clad_fail(CLAD_ERR_INVALID, "the number of clusters must be in 2..256, not %d", cfg->K);
	if (!clad_is_ae_target(cfg->ae_target))
		return clad_fail(CLAD_ERR_INVALID, "the autoencoder's target must be normalised or pixels, not \"%.32s\"",
						 cfg->ae_target);
	if (!clad_is_bank_precision(cfg->bank_precision))
		return clad_fail(CLAD_ERR_INVALID, "the bank's precision must be bf16 or f32, not \"%.8s\"",
						 cfg->bank_precision);
	if ((st = run_setup(&r, cfg, normal, cfg->autoencoder, cfg->classifier, cfg->K, cfg->rotations,
						&hold, &nh, log)) != CLAD_OK)
		goto done;
	r.progress = progress;
	r.arg = arg;
	clad_autoencoder_init(r.m->encoder, cfg->seed + 1);
	clad_autoencoder_init(r.m->decoder, cfg->seed + 2);
	clad_classifier_init(r.m->clf, cfg->classifier, cfg->seed + 3);

	if ((st = nets_to(&r, r.dev)) != CLAD_OK ||
		(st = train_autoencoder(&r, strcmp(cfg->ae_target, "pixels") == 0 ? r.pix : r.xn,
								&log->ae)) != CLAD_OK ||
		(st = train_dec(&r, &log->dec)) != CLAD_OK)
		goto done;
	for (int i = 0; i < r.n; i++)
		if (r.labels[i] >= 0 && r.labels[i] < 256)
			log->cluster_sizes[r.labels[i]]++;
	/* calibration scores on the CPU, with the scoring path the extension uses */
	if ((st = train_classifier(&r, &log->clf)) != CLAD_OK ||
		(st = nets_to(&r, NULL)) != CLAD_OK)
		goto done;
	if (cfg->rotations > 1 && cfg->bank > 0 &&
		(st = build_neighbours(&r, hold, nh, &log->neighbour_seconds)) != CLAD_OK)
		goto done;
	if ((st = calibrate(&r, hold, nh, &log->calib_seconds)) != CLAD_OK)
		goto done;
	clad_net_free(r.m->decoder);
	r.m->decoder = NULL;
	*out = r.m;
	r.m = NULL;
done:
	run_free(&r, hold);
	return st;
}

/* Deep SVDD's one-class stage: pull the codes of the fit images toward c. */
static clad_status
train_svdd(run *r, const float *c, clad_stage_log *log)
{
	const clad_train_config *cfg = r->cfg;
	clad_model *m = r->m;
	clad_adam	opt = {cfg->svdd_lr, 0.9f, 0.999f, 1e-8f, cfg->svdd_weight_decay, 0};
	/* mean over the batch of ||z - c||^2 */
	clad_loss_spec dist = {.kind = CLAD_LOSS_SVDD, .centers = c};
	double		t0 = now();
	clad_status st = CLAD_OK;

	for (int ep = 0; ep < cfg->svdd_epochs && st == CLAD_OK; ep++)
	{
		double		sum = 0;
		int			seen = 0;

		clad_rng_shuffle(&r->rng, r->order, r->n);
		for (int s = 0; s < r->n && st == CLAD_OK; s += cfg->ae_batch)
		{
			int			B = batch_at(s, r->n, cfg->ae_batch);
			float		loss;

			if (B == 0)
				break;
			gather(r->xb, r->xn, r->order + s, B, r->img);
			if ((st = clad_net_forward(m->encoder, r->xb, B, CLAD_TRAIN)) != CLAD_OK ||
				(st = clad_net_loss(m->encoder, &dist, &loss)) != CLAD_OK)
				break;
			if (!isfinite(loss))
			{
				st = clad_fail(CLAD_ERR_NUMERIC, "Deep SVDD loss diverged (epoch %d); lower --svdd-lr", ep + 1);
				break;
			}
			clad_net_zero_grad(m->encoder);
			if ((st = clad_net_backward(m->encoder, NULL, 1, NULL)) != CLAD_OK ||
				(st = clad_net_adam_step(m->encoder, &opt)) != CLAD_OK)
				break;
			sum += (double) loss * B;
			seen += B;
			report(r, "deepsvdd", ep + 1, cfg->svdd_epochs, seen, r->n, sum / seen, 0, 0);
		}
		if (st == CLAD_OK && seen > 0)
		{
			st = log_epoch(log, ep, sum / seen);
			report(r, "deepsvdd", ep + 1, cfg->svdd_epochs, seen, r->n, sum / seen, 0, 1);
		}
	}
	log->seconds = now() - t0;
	return st;
}

clad_status
clad_train_deepsvdd(const clad_train_config *cfg, const clad_dataset *normal, clad_progress_fn progress,
					void *arg, clad_model **out, clad_train_log *log)
{
	run			r;
	clad_status st;
	int			nh;
	float	   *hold = NULL, *c;
	clad_train_config svdd_cfg = *cfg;

	*out = NULL;
	memset(log, 0, sizeof(*log));
	/* both stages in Deep SVDD's own batches (ae_batch is CLAD's) */
	svdd_cfg.ae_batch = cfg->svdd_batch;
	cfg = &svdd_cfg;
	if ((st = run_setup(&r, cfg, normal, "cvae_nobias", NULL, 0, 1, &hold, &nh, log)) != CLAD_OK)
		goto done;
	r.progress = progress;
	r.arg = arg;
	clad_autoencoder_init(r.m->encoder, cfg->seed + 1);
	clad_autoencoder_init(r.m->decoder, cfg->seed + 2);
	/* a plain autoencoder (no input dropout, no variational noise: z = mu) of the pixels */
	clad_net_set_stochastic(r.m->encoder, 0);
	if ((st = nets_to(&r, r.dev)) != CLAD_OK ||
		(st = train_autoencoder(&r, r.pix, &log->ae)) != CLAD_OK || (st = embed_all(&r)) != CLAD_OK)
		goto done;
	c = r.m->svdd_center;
	for (int j = 0; j < cfg->latent; j++)
		c[j] = 0.0f;
	for (int i = 0; i < r.n; i++)
		for (int j = 0; j < cfg->latent; j++)
			c[j] += r.z[(size_t) i * cfg->latent + j] / (float) r.n;
	/* a coordinate at 0 would let zero weights meet it: the reference keeps |c_j| >= 0.1 */
	for (int j = 0; j < cfg->latent; j++)
		if (fabsf(c[j]) < 0.1f)
			c[j] = c[j] < 0 ? -0.1f : 0.1f;
	if ((st = train_svdd(&r, c, &log->clf)) != CLAD_OK || (st = nets_to(&r, NULL)) != CLAD_OK)
		goto done;
	clad_net_free(r.m->decoder);
	r.m->decoder = NULL;
	/* calibration and threshold on the held-out normal images, as CLAD's */
	if ((st = calibrate(&r, hold, nh, &log->calib_seconds)) != CLAD_OK)
		goto done;
	*out = r.m;
	r.m = NULL;
done:
	run_free(&r, hold);
	return st;
}

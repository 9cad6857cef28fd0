/* trainer/baselines.c: OCSVM (libsvm) and Deep SVDD, scored like CLAD (see baselines.h). */
#include "baselines.h"
#include "gemm.h"

#include <libsvm/svm.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* images a Deep SVDD pass scores: bounds the model's scratch for a large test split */
#define SCORE_BATCH 256

struct clad_baseline
{
	char		method[16];
	int			C, H, W;
	char		described[256];

	/* ocsvm */
	float		mean[CLAD_MAX_CHANNELS], std[CLAD_MAX_CHANNELS];	/* its input normalisation */
	struct svm_model *svm;
	struct svm_node *nodes;		/* the training problem: libsvm's model points into it */
	struct svm_node **rows;
	struct svm_node *query;		/* (features + 1) nodes for one image */

	/* deepsvdd */
	clad_model *svdd;			/* a Deep SVDD model (model.h) */
};

int
clad_is_baseline(const char *name)
{
	return name && (strcmp(name, "ocsvm") == 0 || strcmp(name, "deepsvdd") == 0);
}

/* libsvm prints its progress to stdout: not ours to print. */
static void
svm_silent(const char *s)
{
	(void) s;
}

/* One image's normalised pixels as libsvm nodes (dense: every index, then -1). */
static void
to_nodes(const clad_baseline *b, const float *px, struct svm_node *out)
{
	size_t		plane = (size_t) b->H * b->W;
	int			k = 0;

	for (int c = 0; c < b->C; c++)
		for (size_t j = 0; j < plane; j++, k++)
		{
			out[k].index = k + 1;
			out[k].value = (px[c * plane + j] - b->mean[c]) / b->std[c];
		}
	out[k].index = -1;
	out[k].value = 0;
}

static clad_status
train_ocsvm(clad_baseline *b, const clad_train_config *cfg, const clad_dataset *d)
{
	size_t		feat = (size_t) d->C * d->H * d->W;
	struct svm_problem prob;
	struct svm_parameter param;
	const char *why;
	double		var = 0, s = 0, s2 = 0;

	if (!(cfg->ocsvm_nu > 0.0 && cfg->ocsvm_nu <= 1.0) || !(cfg->ocsvm_gamma >= 0.0))
		return clad_fail(CLAD_ERR_INVALID, "--ocsvm-nu must be in (0, 1] and --ocsvm-gamma at least 0");
	/* normalised as CLAD normalises its input */
	clad_channel_stats(d->pixels, d->n, d->C, (size_t) d->H * d->W, b->mean, b->std);
	b->nodes = malloc(sizeof(struct svm_node) * (feat + 1) * d->n);
	b->rows = malloc(sizeof(struct svm_node *) * d->n);
	b->query = malloc(sizeof(struct svm_node) * (feat + 1));
	prob.y = malloc(sizeof(double) * d->n);
	if (!b->nodes || !b->rows || !b->query || !prob.y)
	{
		free(prob.y);
		return clad_fail(CLAD_ERR_NOMEM, "out of memory for the OCSVM's %d images", d->n);
	}
	for (int i = 0; i < d->n; i++)
	{
		b->rows[i] = b->nodes + (feat + 1) * i;
		to_nodes(b, d->pixels + feat * i, b->rows[i]);
		prob.y[i] = 1.0;
		for (size_t j = 0; j < feat; j++)
		{
			s += b->rows[i][j].value;
			s2 += b->rows[i][j].value * b->rows[i][j].value;
		}
	}
	var = s2 / ((double) d->n * feat) - (s / ((double) d->n * feat)) * (s / ((double) d->n * feat));
	prob.l = d->n;
	prob.x = b->rows;
	memset(&param, 0, sizeof(param));
	param.svm_type = ONE_CLASS;
	param.kernel_type = RBF;
	param.gamma = cfg->ocsvm_gamma > 0 ? cfg->ocsvm_gamma : 1.0 / ((double) feat * (var > 0 ? var : 1.0));
	param.nu = cfg->ocsvm_nu;
	param.cache_size = 200;
	param.eps = 1e-3;
	param.shrinking = 1;
	if ((why = svm_check_parameter(&prob, &param)) != NULL)
	{
		free(prob.y);
		return clad_fail(CLAD_ERR_INVALID, "libsvm refuses the OCSVM's settings: %s", why);
	}
	svm_set_print_string_function(svm_silent);
	b->svm = svm_train(&prob, &param);
	free(prob.y);
	if (!b->svm)
		return clad_fail(CLAD_ERR_NOMEM, "libsvm could not train the OCSVM");
	snprintf(b->described, sizeof(b->described),
			 "OCSVM (libsvm, RBF kernel, nu %g, gamma %.3g, %d support vectors of %d images)",
			 param.nu, param.gamma, svm_get_nr_sv(b->svm), d->n);
	return CLAD_OK;
}

clad_status
clad_baseline_train(const char *method, const clad_train_config *cfg, const clad_dataset *normal,
					clad_progress_fn progress, void *arg, clad_baseline **out, clad_train_log *log)
{
	clad_baseline *b;
	clad_status st;

	*out = NULL;
	if (!clad_is_baseline(method))
		return clad_fail(CLAD_ERR_INVALID, "unknown baseline \"%s\" (ocsvm, deepsvdd)", method ? method : "");
	if (normal->C > CLAD_MAX_CHANNELS)
		return clad_fail(CLAD_ERR_SHAPE, "images of %d channels", normal->C);
	if (!(b = calloc(1, sizeof(*b))))
		return clad_fail(CLAD_ERR_NOMEM, "out of memory");
	snprintf(b->method, sizeof(b->method), "%s", method);
	b->C = normal->C;
	b->H = normal->H;
	b->W = normal->W;
	memset(log, 0, sizeof(*log));
	if (strcmp(method, "ocsvm") == 0)
	{
		double		t0;
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		t0 = ts.tv_sec + ts.tv_nsec * 1e-9;
		st = train_ocsvm(b, cfg, normal);
		clock_gettime(CLOCK_MONOTONIC, &ts);
		log->clf.seconds = ts.tv_sec + ts.tv_nsec * 1e-9 - t0;
		log->n_fit = normal->n;
	}
	else
	{
		st = clad_train_deepsvdd(cfg, normal, progress, arg, &b->svdd, log);
		if (st == CLAD_OK)
			snprintf(b->described, sizeof(b->described),
					 "Deep SVDD (bias-free cvae encoder, latent %d, %d pretraining + %d one-class epochs)",
					 b->svdd->latent, log->ae.epochs_run, log->clf.epochs_run);
	}
	if (st != CLAD_OK)
	{
		clad_baseline_free(b);
		return st;
	}
	*out = b;
	return CLAD_OK;
}

clad_status
clad_baseline_score(clad_baseline *b, const float *pixels, int n, float *anomaly)
{
	size_t		plane = (size_t) b->H * b->W, img = (size_t) b->C * plane;

	if (b->svm)
	{
		for (int i = 0; i < n; i++)
		{
			double		dec = 0;

			to_nodes(b, pixels + img * i, b->query);
			svm_predict_values(b->svm, b->query, &dec);
			anomaly[i] = (float) -dec;
		}
		return CLAD_OK;
	}
	/* Deep SVDD: the model's confidence, - ||z - c||^2, SCORE_BATCH images at a time */
	for (int s = 0; s < n; s += SCORE_BATCH)
	{
		int			B = n - s < SCORE_BATCH ? n - s : SCORE_BATCH;
		clad_status st = clad_model_score(b->svdd, pixels + img * s, B, anomaly + s, NULL);

		if (st != CLAD_OK)
			return st;
		for (int i = 0; i < B; i++)
			anomaly[s + i] = -anomaly[s + i];
	}
	return CLAD_OK;
}

clad_model *
clad_baseline_model(clad_baseline *b)
{
	return b->svdd;
}

const char *
clad_baseline_describe(const clad_baseline *b)
{
	return b->described;
}

void
clad_baseline_free(clad_baseline *b)
{
	if (!b)
		return;
	if (b->svm)
		svm_free_and_destroy_model(&b->svm);
	free(b->nodes);
	free(b->rows);
	free(b->query);
	clad_model_free(b->svdd);
	free(b);
}

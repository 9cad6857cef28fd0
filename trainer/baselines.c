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
	char		described[256];
	clad_model *model;			/* a one-class SVM, Deep SVDD or ensemble model (model.h) */
	clad_train_log member_log[3];	/* an ensemble's: CLAD's is the caller's log; Deep SVDD's, the SVM's */
};

int
clad_is_baseline(const char *name)
{
	return name && (strcmp(name, "ocsvm") == 0 || strcmp(name, "deepsvdd") == 0 || strcmp(name, "ensemble") == 0);
}

/* libsvm prints its progress to stdout: not ours to print. */
static void
svm_silent(const char *s)
{
	(void) s;
}

/* One normalised image as libsvm nodes (dense: every index, then -1). */
static void
to_nodes(const float *x, size_t feat, struct svm_node *out)
{
	for (size_t k = 0; k < feat; k++)
	{
		out[k].index = (int) k + 1;
		out[k].value = x[k];
	}
	out[feat].index = -1;
	out[feat].value = 0;
}

clad_status
clad_ocsvm_model_from_libsvm(const struct svm_model *svm, int C, int H, int W, const float *mean,
							 const float *std, clad_model **out)
{
	size_t		feat = (size_t) C * H * W;
	clad_model *m;
	clad_status st;

	*out = NULL;
	if (svm_get_svm_type(svm) != ONE_CLASS || svm->param.kernel_type != RBF || svm->nr_class != 2)
		return clad_fail(CLAD_ERR_INVALID, "not a one-class SVM with an RBF kernel");
	if ((st = clad_model_create_ocsvm(C, H, W, svm->l, (float) svm->param.gamma, (float) svm->rho[0], &m)) != CLAD_OK)
		return st;
	for (int c = 0; c < C; c++)
	{
		m->mean[c] = mean[c];
		m->std[c] = std[c];
	}
	for (int i = 0; i < svm->l; i++)
	{
		float	   *row = m->svm.sv_owned + feat * i;

		/* libsvm's nodes are sparse in general: what is not listed is 0 (calloc) */
		for (const struct svm_node *n = svm->SV[i]; n->index != -1; n++)
			if (n->index >= 1 && (size_t) n->index <= feat)
				row[n->index - 1] = (float) n->value;
		m->svm.coef[i] = (float) svm->sv_coef[0][i];
	}
	if ((st = clad_ocsvm_check(&m->svm)) != CLAD_OK)
	{
		clad_model_free(m);
		return st;
	}
	*out = m;
	return CLAD_OK;
}

/*
 * The one-class SVM on the fit split's normalised images; the model it
 * becomes calibrated on the held-out ones.
 */
static clad_status
train_ocsvm(clad_baseline *b, const clad_train_config *cfg, const clad_dataset *d, clad_train_log *log)
{
	size_t		plane = (size_t) d->H * d->W, feat = (size_t) d->C * plane;
	struct svm_problem prob = {0};
	struct svm_parameter param;
	struct svm_model *svm = NULL;
	struct svm_node *nodes = NULL;
	float	   *fit = NULL, *hold = NULL, mean[CLAD_MAX_CHANNELS], std[CLAD_MAX_CHANNELS];
	int			nfit, nh;
	const char *why;
	double		s = 0, s2 = 0, var;
	clad_status st;

	if (!(cfg->ocsvm_nu > 0.0 && cfg->ocsvm_nu <= 1.0) || !(cfg->ocsvm_gamma >= 0.0))
		return clad_fail(CLAD_ERR_INVALID, "--ocsvm-nu must be in (0, 1] and --ocsvm-gamma at least 0");
	if (!(cfg->tpr > 0.0 && cfg->tpr < 1.0))
		return clad_fail(CLAD_ERR_INVALID, "--tpr must be between 0 and 1");
	if ((st = clad_blas_init(CLAD_BLAS_AUTO, cfg->threads)) != CLAD_OK ||
		(st = clad_train_split(cfg, d, &fit, &nfit, &hold, &nh)) != CLAD_OK)
		return st;
	/* normalised as CLAD normalises its input: with the fit images' statistics */
	clad_channel_stats(fit, nfit, d->C, plane, mean, std);
	for (int i = 0; i < nfit; i++)
		for (int c = 0; c < d->C; c++)
			for (size_t j = 0; j < plane; j++)
			{
				float	   *v = fit + feat * i + c * plane + j;

				*v = (*v - mean[c]) / std[c];
				s += *v;
				s2 += (double) *v * *v;
			}
	var = s2 / ((double) nfit * feat) - (s / ((double) nfit * feat)) * (s / ((double) nfit * feat));
	nodes = malloc(sizeof(struct svm_node) * (feat + 1) * nfit);
	prob.x = malloc(sizeof(struct svm_node *) * nfit);
	prob.y = malloc(sizeof(double) * nfit);
	if (!nodes || !prob.x || !prob.y)
	{
		st = clad_fail(CLAD_ERR_NOMEM, "out of memory for the OCSVM's %d images", nfit);
		goto done;
	}
	for (int i = 0; i < nfit; i++)
	{
		prob.x[i] = nodes + (feat + 1) * i;
		to_nodes(fit + feat * i, feat, prob.x[i]);
		prob.y[i] = 1.0;
	}
	prob.l = nfit;
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
		st = clad_fail(CLAD_ERR_INVALID, "libsvm refuses the OCSVM's settings: %s", why);
		goto done;
	}
	svm_set_print_string_function(svm_silent);
	if (!(svm = svm_train(&prob, &param)))
	{
		st = clad_fail(CLAD_ERR_NOMEM, "libsvm could not train the OCSVM");
		goto done;
	}
	/* the model scores as the extension will (core/ocsvm.c), calibrated on the held-out images */
	if ((st = clad_ocsvm_model_from_libsvm(svm, d->C, d->H, d->W, mean, std, &b->model)) != CLAD_OK ||
		(st = clad_train_calibrate(b->model, hold, nh, cfg->tpr)) != CLAD_OK)
		goto done;
	log->n_fit = nfit;
	log->n_holdout = nh;
	snprintf(b->described, sizeof(b->described),
			 "OCSVM (libsvm, RBF kernel, nu %g, gamma %.3g, %d support vectors of %d images)",
			 param.nu, param.gamma, svm->l, nfit);
done:
	/* libsvm's model points into the nodes */
	if (svm)
		svm_free_and_destroy_model(&svm);
	free(nodes);
	free(prob.x);
	free(prob.y);
	free(fit);
	free(hold);
	return st;
}

/*
 * CLAD, Deep SVDD and the one-class SVM on the same normal images (each its
 * own run: the same seeded fit split, each calibrated on the same held-out
 * images), then one model of the three, calibrated on those images again.
 * log: CLAD's run.
 */
static clad_status
train_ensemble(clad_baseline *b, const clad_train_config *cfg, const clad_dataset *d, clad_progress_fn progress,
			   void *arg, clad_train_log *log)
{
	clad_model *members[3] = {0};
	clad_baseline svm;
	clad_train_log *svdd_log = &b->member_log[1], *svm_log = &b->member_log[2];
	float	   *fit = NULL, *hold = NULL;
	int			nfit, nh;
	clad_status st;

	memset(&svm, 0, sizeof(svm));
	if ((st = clad_train(cfg, d, progress, arg, &members[0], log)) == CLAD_OK &&
		(st = clad_train_deepsvdd(cfg, d, progress, arg, &members[1], svdd_log)) == CLAD_OK &&
		(st = train_ocsvm(&svm, cfg, d, svm_log)) == CLAD_OK)
	{
		members[2] = svm.model;
		snprintf(b->described, sizeof(b->described),
				 "ensemble (the mean of the calibrated scores) of CLAD (%s + %s, K %d), Deep SVDD (latent %d) "
				 "and the one-class SVM (%d support vectors)", cfg->autoencoder, cfg->classifier, cfg->K,
				 members[1]->latent, members[2]->svm.n_sv);
		st = clad_model_create_ensemble(members, 3, &b->model);	/* owns the members from here */
		if (st == CLAD_OK && (st = clad_train_split(cfg, d, &fit, &nfit, &hold, &nh)) == CLAD_OK)
			st = clad_train_calibrate(b->model, hold, nh, cfg->tpr);
	}
	else
		for (int i = 0; i < 3; i++)
			clad_model_free(members[i]);
	free(fit);
	free(hold);
	return st;
}

clad_status
clad_baseline_train(const char *method, const clad_train_config *cfg, const clad_dataset *normal,
					clad_progress_fn progress, void *arg, clad_baseline **out, clad_train_log *log)
{
	clad_baseline *b;
	clad_status st;

	*out = NULL;
	if (!clad_is_baseline(method))
		return clad_fail(CLAD_ERR_INVALID, "unknown method \"%s\" (ocsvm, deepsvdd, ensemble)", method ? method : "");
	if (normal->C > CLAD_MAX_CHANNELS)
		return clad_fail(CLAD_ERR_SHAPE, "images of %d channels", normal->C);
	if (!(b = calloc(1, sizeof(*b))))
		return clad_fail(CLAD_ERR_NOMEM, "out of memory");
	snprintf(b->method, sizeof(b->method), "%s", method);
	memset(log, 0, sizeof(*log));
	if (strcmp(method, "ocsvm") == 0)
	{
		double		t0;
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		t0 = ts.tv_sec + ts.tv_nsec * 1e-9;
		st = train_ocsvm(b, cfg, normal, log);
		clock_gettime(CLOCK_MONOTONIC, &ts);
		log->clf.seconds = ts.tv_sec + ts.tv_nsec * 1e-9 - t0;
	}
	else if (strcmp(method, "ensemble") == 0)
		st = train_ensemble(b, cfg, normal, progress, arg, log);
	else
	{
		st = clad_train_deepsvdd(cfg, normal, progress, arg, &b->model, log);
		if (st == CLAD_OK)
			snprintf(b->described, sizeof(b->described),
					 "Deep SVDD (bias-free cvae encoder, latent %d, %d pretraining + %d one-class epochs)",
					 b->model->latent, log->ae.epochs_run, log->clf.epochs_run);
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
	return clad_model_anomaly(b->model, pixels, n, anomaly);
}

clad_status
clad_model_anomaly(clad_model *m, const float *pixels, int n, float *anomaly)
{
	size_t		img = (size_t) m->C * m->H * m->W;

	/* the model's confidence, SCORE_BATCH images at a time; the anomaly score is its negative */
	for (int s = 0; s < n; s += SCORE_BATCH)
	{
		int			B = n - s < SCORE_BATCH ? n - s : SCORE_BATCH;
		clad_status st = clad_model_score(m, pixels + img * s, B, anomaly + s, NULL);

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
	return b->model;
}

const clad_train_log *
clad_baseline_member_log(const clad_baseline *b, int k)
{
	return k >= 1 && k <= 2 && b->model && b->model->method == CLAD_METHOD_ENSEMBLE ? &b->member_log[k] : NULL;
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
	for (int k = 0; k < 3; k++)
		clad_train_log_free(&b->member_log[k]);
	clad_model_free(b->model);
	free(b);
}

/* trainer/evaluation.c: scoring a model on a labelled test split, and the metrics as text. */
#include "evaluation.h"

#include "cli.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EVAL_BATCH 64			/* images per scoring call */

/* Free the per-image arrays of r. */
void
eval_result_free(eval_result *r)
{
	free(r->odin_conf);
	free(r->base_conf);
	free(r->is_anomaly);
	r->odin_conf = r->base_conf = NULL;
	r->is_anomaly = NULL;
}

/*
 * Which test images are normal: normal_at[i] is the index of image i's class
 * in sc->classes, or -1 for an anomaly.  When both splits name their classes
 * (folder sets), test labels are matched to the training split's by name.
 */
void
label_test(const clad_dataset *test, const clad_scenario *sc, char *const *train_names,
		   int n_train_names, int32_t **normal_at, int *n_normal)
{
	int32_t    *at = malloc(sizeof(int32_t) * test->n);
	int32_t    *map = NULL;
	int			nn = 0;

	if (!at)
		die("out of memory");
	if (train_names && test->class_names)
	{
		int			matched = 0;

		if (!(map = malloc(sizeof(int32_t) * (test->n_classes > 0 ? test->n_classes : 1))))
			die("out of memory");
		for (int c = 0; c < test->n_classes; c++)
		{
			map[c] = -1;
			for (int t = 0; t < n_train_names; t++)
				if (test->class_names[c] && train_names[t] &&
					strcmp(test->class_names[c], train_names[t]) == 0)
				{
					map[c] = t;
					matched++;
					break;
				}
		}
		if (matched == 0)
			die("no class of the test split is a class of the training split (is the test "
				"folder laid out with one sub-folder per class?)");
	}
	for (int i = 0; i < test->n; i++)
	{
		int32_t		y = test->labels[i];

		if (y < 0)
			die("test image %d has no label; the test split must be labelled", i);
		if (map)
			y = y < test->n_classes ? map[y] : -1;
		at[i] = -1;
		for (int j = 0; j < sc->n_classes && y >= 0; j++)
			if (sc->classes[j] == y)
			{
				at[i] = j;
				nn++;
				break;
			}
	}
	free(map);
	if (nn == 0)
		die("the test split holds no image of the normal classes (%s)", sc->label);
	if (nn == test->n)
		die("the test split holds only images of the normal classes: nothing to detect");
	*normal_at = at;
	*n_normal = nn;
}

/* Score the test split with m and measure how well it tells the anomalies apart. */
void
evaluate(clad_model *m, const clad_dataset *test, const clad_scenario *sc, const int32_t *normal_at,
		 clad_precision precision,
		 clad_progress_state *ps, eval_result *r)
{
	size_t		img = (size_t) test->C * test->H * test->W;
	float	   *conf = malloc(sizeof(float) * test->n);
	float	   *base = malloc(sizeof(float) * test->n);
	float	   *score = malloc(sizeof(float) * test->n);
	uint8_t    *anomaly = malloc(test->n);
	int32_t    *cluster = malloc(sizeof(int32_t) * EVAL_BATCH);
	int		   *counts = calloc((size_t) (m->K > 0 ? m->K : 1) * sc->n_classes, sizeof(int));
	int			clad = m->method == CLAD_METHOD_CLAD;
	float		T = m->T, eps = m->eps;
	int			flag_n = 0, flag_a = 0, pure = 0;
	clad_status st;

	if (!conf || !base || !score || !anomaly || !cluster || !counts)
		die("out of memory evaluating %d images", test->n);
	if (test->C != m->C || test->H != m->H || test->W != m->W)
		die("the test images are %dx%dx%d but the model takes %dx%dx%d",
			test->C, test->H, test->W, m->C, m->H, m->W);
	if ((st = clad_model_prepare_in(m, EVAL_BATCH, precision)) != CLAD_OK)
		die("cannot prepare the model: %s", clad_last_error());
	memset(r, 0, sizeof(*r));
	r->precision = precision;
	for (int s = 0; s < test->n; s += EVAL_BATCH)
	{
		int			B = test->n - s < EVAL_BATCH ? test->n - s : EVAL_BATCH;
		const float *x = test->pixels + (size_t) s * img;
		clad_progress p = {"evaluation", 1, 1, s + B, test->n, 0, 0, s + B == test->n};

		/* the model's confidence, and the baseline it refines (clad_model_baseline) */
		if ((st = clad_model_score(m, x, B, conf + s, NULL)) != CLAD_OK)
			die("scoring failed: %s", clad_last_error());
		/* another method has no baseline or clusters: its own confidence stands for the baseline */
		if (!clad)
			memcpy(base + s, conf + s, sizeof(float) * B);
		else if ((st = clad_model_baseline(m, x, B, base + s)) != CLAD_OK)
			die("scoring failed: %s", clad_last_error());
		if (clad && (st = clad_model_embed(m, x, B, NULL, NULL, cluster)) != CLAD_OK)
			die("embedding failed: %s", clad_last_error());
		for (int b = 0; clad && b < B; b++)
			if (normal_at[s + b] >= 0)
				counts[(size_t) cluster[b] * sc->n_classes + normal_at[s + b]]++;
		clad_progress_report(&p, ps);
	}
	clad_progress_finish(ps);

	/* higher score = more anomalous: the negated confidence */
	for (int i = 0; i < test->n; i++)
	{
		anomaly[i] = normal_at[i] < 0;
		r->n_anomaly += anomaly[i];
		if (conf[i] < m->threshold)
		{
			if (anomaly[i])
				flag_a++;
			else
				flag_n++;
		}
		score[i] = -conf[i];
	}
	r->n = test->n;
	r->n_normal = test->n - r->n_anomaly;
	if ((st = clad_ad_evaluate(score, anomaly, test->n, &r->odin)) != CLAD_OK)
		die("cannot compute the metrics: %s", clad_last_error());
	for (int i = 0; i < test->n; i++)
		score[i] = -base[i];
	if ((st = clad_ad_evaluate(score, anomaly, test->n, &r->base)) != CLAD_OK)
		die("cannot compute the metrics: %s", clad_last_error());
	r->T = T;
	r->eps = eps;
	r->rotations = m->rotations;
	r->bank = m->neighbours ? m->nb.n : 0;
	r->clad = clad;
	r->score_name = clad_model_score_name(m);
	r->threshold = m->threshold;
	r->flagged = (double) (flag_n + flag_a) / test->n;
	r->flagged_normal = (double) flag_n / r->n_normal;
	r->flagged_anomaly = (double) flag_a / r->n_anomaly;
	for (int k = 0; k < m->K; k++)
	{
		int			best = 0;

		for (int j = 0; j < sc->n_classes; j++)
			if (counts[(size_t) k * sc->n_classes + j] > best)
				best = counts[(size_t) k * sc->n_classes + j];
		pure += best;
	}
	r->purity = (double) pure / r->n_normal;
	/* the confidences, for the report */
	r->odin_conf = conf;
	r->base_conf = base;
	r->is_anomaly = anomaly;
	free(score);
	free(cluster);
	free(counts);
}

void
compare_with_fp32(eval_result *r, const eval_result *r32)
{
	float		lo = r32->odin_conf[0], hi = lo;

	r->compared = 1;
	r->fp32_auroc = r32->odin.auroc;
	r->spearman = clad_spearman(r->odin_conf, r32->odin_conf, r->n);
	if (r->spearman < -1)
		die("out of memory comparing the precisions");
	r->max_conf_change = 0;
	for (int i = 0; i < r->n; i++)
	{
		double		d = fabs((double) r->odin_conf[i] - r32->odin_conf[i]);

		r->max_conf_change = d > r->max_conf_change ? d : r->max_conf_change;
		lo = r32->odin_conf[i] < lo ? r32->odin_conf[i] : lo;
		hi = r32->odin_conf[i] > hi ? r32->odin_conf[i] : hi;
	}
	r->conf_spread = (double) hi - lo;
}

/* One row of the metrics table. */
void
print_metrics_row(const char *what, const clad_ad_metrics *a)
{
	printf("  %-30s %6.4f  %6.4f  %9.4f  %7.4f  %7.4f  %8.4f\n", what, a->auroc, a->best_f1,
		   a->fpr_at_95tpr, a->detection_error, a->aupr_in, a->aupr_out);
}

/* The metrics table's header. */
void
print_metrics_header(void)
{
	printf("  %-30s %6s  %6s  %9s  %7s  %7s  %8s\n", "", "AUROC", "bestF1", "FPR@95TPR", "deterr",
		   "AUPRin", "AUPRout");
}

/* The test split, the metrics table and the flagged shares, as text on stdout. */
void
print_eval(const eval_result *r, const clad_scenario *sc)
{
	char		odin[64];

	printf("test split: %d images, %d normal (%s), %d anomalous\n", r->n, r->n_normal, sc->label,
		   r->n_anomaly);
	print_metrics_header();
	if (!r->clad)
		print_metrics_row(strcmp(r->score_name, "ocsvm") == 0 ? "one-class SVM (decision value)" :
						  strcmp(r->score_name, "ensemble") == 0 ? "ensemble (1 - mean score)" :
						  "Deep SVDD (- ||z - c||^2)", &r->odin);
	else if (r->bank > 0)
	{
		snprintf(odin, sizeof(odin), "neighbours (%d images)", r->bank);
		print_metrics_row(odin, &r->odin);
		print_metrics_row("baseline (orientation)", &r->base);
	}
	else if (r->rotations > 1)
	{
		snprintf(odin, sizeof(odin), "orientation (%d turns)", r->rotations);
		print_metrics_row(odin, &r->odin);
		print_metrics_row("baseline (upright only)", &r->base);
	}
	else
	{
		snprintf(odin, sizeof(odin), "ODIN (T=%g, eps=%g)", r->T, r->eps);
		print_metrics_row(odin, &r->odin);
		print_metrics_row("baseline (T=1, eps=0)", &r->base);
	}
	printf("flagged at the stored threshold %.6g: %.1f%% of test images "
		   "(%.1f%% of normal, %.1f%% of anomalous)\n",
		   r->threshold, 100.0 * r->flagged, 100.0 * r->flagged_normal, 100.0 * r->flagged_anomaly);
	if (r->clad)
		printf("cluster purity on normal test images: %.4f\n", r->purity);
	if (r->compared)
		printf("scored in %s; against fp32: AUROC %.4f (fp32 %.4f), Spearman %.6f of the %d confidences, "
			   "largest confidence change %.3g (%.2g of their spread)\n",
			   clad_precision_name(r->precision), r->odin.auroc, r->fp32_auroc, r->spearman, r->n,
			   r->max_conf_change, r->conf_spread > 0 ? r->max_conf_change / r->conf_spread : 0.0);
}

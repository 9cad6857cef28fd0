/* trainer/metrics.c: AUROC, F1, FPR at 95% TPR, detection error and AUPR from sorted scores. */
#include "metrics.h"

#include <math.h>
#include <stdlib.h>

typedef struct scored
{
	float		s;
	uint8_t		anomaly;
} scored;

static int
by_score_desc(const void *a, const void *b)
{
	float		x = ((const scored *) a)->s, y = ((const scored *) b)->s;

	return x < y ? 1 : (x > y ? -1 : 0);
}

static int
by_float_asc(const void *a, const void *b)
{
	float		x = *(const float *) a, y = *(const float *) b;

	return x < y ? -1 : (x > y ? 1 : 0);
}

/* Average precision of the ranking v (descending), positives where pos(v[i]). */
static double
average_precision(const scored *v, int n, int positive_is_anomaly, int reverse)
{
	double		ap = 0.0;
	int			tp = 0, seen = 0, npos = 0;

	for (int i = 0; i < n; i++)
		npos += (v[i].anomaly == positive_is_anomaly);
	if (npos == 0)
		return 0.0;
	/* walk tie groups so that tied scores share one threshold */
	for (int g = 0; g < n;)
	{
		int			h = g, grp_pos = 0;
		const scored *first = reverse ? &v[n - 1 - g] : &v[g];

		while (h < n && (reverse ? v[n - 1 - h].s : v[h].s) == first->s)
		{
			grp_pos += ((reverse ? v[n - 1 - h].anomaly : v[h].anomaly) == positive_is_anomaly);
			h++;
		}
		tp += grp_pos;
		seen = h;
		ap += (double) grp_pos / npos * ((double) tp / seen);
		g = h;
	}
	return ap;
}

clad_status
clad_ad_evaluate(const float *scores, const uint8_t *is_anomaly, int n, clad_ad_metrics *out)
{
	scored	   *v;
	int			na = 0, nn = 0, tp = 0, fp = 0;
	double		auc = 0.0;
	double		best_f1 = 0.0, det = 1.0, fpr95 = 1.0;

	if (n <= 0)
		return clad_fail(CLAD_ERR_INVALID, "no scores to evaluate");
	for (int i = 0; i < n; i++)
	{
		if (!isfinite(scores[i]))
			return clad_fail(CLAD_ERR_NUMERIC, "score %d is not finite", i);
		if (is_anomaly[i])
			na++;
		else
			nn++;
	}
	if (na == 0 || nn == 0)
		return clad_fail(CLAD_ERR_INVALID, "evaluation needs normal and anomalous images (%d and %d)", nn, na);
	if (!(v = malloc(sizeof(scored) * n)))
		return clad_fail(CLAD_ERR_NOMEM, "out of memory evaluating");
	for (int i = 0; i < n; i++)
		v[i] = (scored) {scores[i], is_anomaly[i] ? 1 : 0};
	qsort(v, n, sizeof(scored), by_score_desc);

	/* sweep thresholds from high to low, one tie group at a time */
	for (int g = 0; g < n;)
	{
		int			h = g, ga = 0, gn = 0;
		double		tpr, fpr, prec, f1;

		while (h < n && v[h].s == v[g].s)
		{
			if (v[h].anomaly)
				ga++;
			else
				gn++;
			h++;
		}
		/* pairs (anomaly in group, normal below) count 1; within the group 1/2 */
		auc += (double) ga * (nn - fp - gn) + 0.5 * ga * gn;
		tp += ga;
		fp += gn;
		tpr = (double) tp / na;
		fpr = (double) fp / nn;
		prec = (double) tp / (tp + fp);
		f1 = tp > 0 ? 2 * prec * tpr / (prec + tpr) : 0.0;
		if (f1 > best_f1)
			best_f1 = f1;
		if ((1 - tpr + fpr) / 2 < det)
			det = (1 - tpr + fpr) / 2;
		if (tpr >= 0.95 && fpr < fpr95)
			fpr95 = fpr;
		g = h;
	}
	out->n_normal = nn;
	out->n_anomaly = na;
	out->auroc = auc / ((double) na * nn);
	out->best_f1 = best_f1;
	out->fpr_at_95tpr = fpr95;
	out->detection_error = det;
	out->aupr_out = average_precision(v, n, 1, 0);
	out->aupr_in = average_precision(v, n, 0, 1);
	free(v);
	return CLAD_OK;
}

float
clad_threshold_at_tpr(const float *normal_conf, int n, double tpr)
{
	float	   *s;
	int			k;
	float		t;

	if (n <= 0)
		return 0.0f;
	if (!(s = malloc(sizeof(float) * n)))
		return 0.0f;
	for (int i = 0; i < n; i++)
		s[i] = normal_conf[i];
	qsort(s, n, sizeof(float), by_float_asc);
	/*
	 * keep the top tpr fraction: the threshold is the confidence at rank (1 - tpr) * n.
	 * That product is rounded: 1 - 0.9 is 0.09999999999999998, so for n = 10 it is
	 * 0.9999999999999998 and the floor 0 would keep all 10 instead of 9; 1e-9 (far
	 * above the rounding, far below the step of a decimal tpr) puts it back.
	 */
	k = (int) floor((1.0 - tpr) * n + 1e-9);
	if (k < 0)
		k = 0;
	if (k >= n)
		k = n - 1;
	t = s[k];
	free(s);
	return t;
}

/* sorting indices by the values they point at */
static const float *rank_values;

static int
by_rank_value(const void *x, const void *y)
{
	float		a = rank_values[*(const int *) x], b = rank_values[*(const int *) y];

	return (a > b) - (a < b);
}

/* rank (n): the 1-based rank of each v, ties given the mean of their ranks; 0 when out of memory */
static int
mean_ranks(const float *v, int n, double *rank)
{
	int		   *order = malloc(sizeof(int) * (n > 0 ? n : 1));

	if (!order)
		return 0;
	for (int i = 0; i < n; i++)
		order[i] = i;
	rank_values = v;
	qsort(order, n, sizeof(int), by_rank_value);
	for (int i = 0; i < n;)
	{
		int			j = i;

		while (j + 1 < n && v[order[j + 1]] == v[order[i]])
			j++;
		for (int k = i; k <= j; k++)
			rank[order[k]] = (i + j) / 2.0 + 1.0;
		i = j + 1;
	}
	free(order);
	return 1;
}

double
clad_spearman(const float *a, const float *b, int n)
{
	double	   *ra = malloc(sizeof(double) * (n > 0 ? n : 1)), *rb = malloc(sizeof(double) * (n > 0 ? n : 1));
	double		mean = (n + 1) / 2.0, sab = 0, saa = 0, sbb = 0, r;

	if (!ra || !rb || !mean_ranks(a, n, ra) || !mean_ranks(b, n, rb))
	{
		free(ra);
		free(rb);
		return -2;
	}
	for (int i = 0; i < n; i++)
	{
		sab += (ra[i] - mean) * (rb[i] - mean);
		saa += (ra[i] - mean) * (ra[i] - mean);
		sbb += (rb[i] - mean) * (rb[i] - mean);
	}
	r = saa > 0 && sbb > 0 ? sab / sqrt(saa * sbb) : 0;
	free(ra);
	free(rb);
	return r;
}

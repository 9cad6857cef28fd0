/* trainer/metrics.h: anomaly-detection metrics over scores (higher = more anomalous). */
#ifndef CLAD_METRICS_H
#define CLAD_METRICS_H

#include "status.h"

typedef struct clad_ad_metrics
{
	int			n_normal, n_anomaly;
	double		auroc;			/* P(anomaly scores higher), ties count half */
	double		best_f1;		/* max over thresholds, anomaly = positive class */
	double		fpr_at_95tpr;	/* normal images flagged when 95% of anomalies are */
	double		detection_error;	/* min over thresholds of (FNR + FPR) / 2 */
	double		aupr_in;		/* average precision, normal = positive, score negated */
	double		aupr_out;		/* average precision, anomaly = positive */
} clad_ad_metrics;

/*
 * scores (n), is_anomaly (n: 1 anomaly, 0 normal).  Needs at least one of
 * each class.  The AUROC is reported as measured (never flipped).
 */
clad_status clad_ad_evaluate(const float *scores, const uint8_t *is_anomaly, int n,
							 clad_ad_metrics *out);

/*
 * The threshold t such that a fraction tpr of normal_conf (n) is >= t:
 * images with confidence below t are called anomalies.
 */
float		clad_threshold_at_tpr(const float *normal_conf, int n, double tpr);

/*
 * Spearman's rank correlation of a and b (n each): Pearson's correlation of
 * their ranks, tied values sharing the mean of their ranks.  0 when either
 * is constant (no ranking to agree with); -2 when out of memory.
 */
double		clad_spearman(const float *a, const float *b, int n);

#endif

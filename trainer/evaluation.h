/* trainer/evaluation.h: scoring a model on a labelled test split, and the metrics as text. */
#ifndef CLAD_EVALUATION_H
#define CLAD_EVALUATION_H

#include "dataset.h"
#include "metrics.h"
#include "model.h"
#include "progress.h"
#include "scenario.h"

#include <stdint.h>

typedef struct eval_result
{
	int			n, n_normal, n_anomaly;
	float		T, eps, threshold;
	int			rotations;		/* 1: ODIN model; 2, 4: orientation or neighbour model */
	int			bank;			/* a neighbour model's bank images, else 0 */
	int			clad;			/* a CLAD model; else (Deep SVDD, OCSVM) no baseline and no clusters */
	const char *score_name;		/* clad_model_score_name of the model */
	clad_ad_metrics odin, base;	/* the model's confidence (ODIN's or the orientation one), baseline */
	double		flagged, flagged_normal, flagged_anomaly;
	double		purity;			/* of the DEC clusters on the normal test images */
	clad_precision precision;	/* the weights were scored in */
	/* against fp32 (eval --precision bf16; compare_with_fp32) */
	int			compared;
	double		fp32_auroc;		/* the model's AUROC in fp32 */
	double		spearman;		/* of the n confidences in both precisions */
	double		max_conf_change;	/* largest |confidence change| */
	double		conf_spread;	/* max - min of the fp32 confidences */
	/* per test image (n), kept for the report; eval_result_free */
	float	   *odin_conf;		/* the model's confidence */
	float	   *base_conf;		/* its baseline (clad_model_baseline) */
	uint8_t    *is_anomaly;		/* 1: not of a normal class */
} eval_result;

/* Free the per-image arrays of r. */
void		eval_result_free(eval_result *r);

/*
 * Which test images are normal: normal_at[i] (malloc'd) is the index of
 * image i's class in sc->classes, or -1 for an anomaly; train_names: the
 * training split's class names, to match a folder set's test labels by name.
 */
void		label_test(const clad_dataset *test, const clad_scenario *sc, char *const *train_names,
					   int n_train_names, int32_t **normal_at, int *n_normal);

/*
 * Score the test split with m, its weights in precision p (bf16.h), and
 * measure how well it tells the anomalies apart.
 */
void		evaluate(clad_model *m, const clad_dataset *test, const clad_scenario *sc,
					 const int32_t *normal_at, clad_precision p, clad_progress_state *ps, eval_result *r);

/* Record in r how its confidences and AUROC differ from fp32's (r32, the same images). */
void		compare_with_fp32(eval_result *r, const eval_result *r32);

/* The metrics table: its header, one row. */
void		print_metrics_header(void);
void		print_metrics_row(const char *what, const clad_ad_metrics *a);

/* The test split, the metrics table and the flagged shares, as text on stdout. */
void		print_eval(const eval_result *r, const clad_scenario *sc);

#endif

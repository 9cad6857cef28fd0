/* trainer/json_output.h: clad-train's JSON: --json output and the training summary stored in a model. */
#ifndef CLAD_JSON_OUTPUT_H
#define CLAD_JSON_OUTPUT_H

#include "data_source.h"
#include "evaluation.h"
#include "options.h"

#include <jansson.h>

/* The test metrics as one JSON line on stdout (model_path: the model file, or NULL). */
void		print_eval_json(const eval_result *r, const clad_scenario *sc, const char *model_path);

/* --method auto's comparison of the candidates on the labelled validation images. */
#define AUTO_CANDIDATES 4
typedef struct auto_choice
{
	int			n;				/* candidates */
	int			picked;			/* the one kept */
	const char *name[AUTO_CANDIDATES];	/* their methods */
	double		val_auroc[AUTO_CANDIDATES];	/* AUROC on the validation images */
	double		val_fpr[AUTO_CANDIDATES];	/* share of validation normals below the stored threshold */
	double		test_auroc[AUTO_CANDIDATES];	/* on the test split; NaN without one */
	int			n_normal, n_anomaly;	/* validation images */
} auto_choice;

/*
 * A baseline's (--method) metrics as one JSON line on stdout; for an
 * ensemble m, member_met (m->n_members) its members' under "members" by
 * method; with --method auto, the comparison (choice, not NULL) under "auto".
 */
void		print_baseline_json(const char *method, const char *description, const clad_scenario *sc,
								int n_train, int n_test, int n_anomaly, const clad_ad_metrics *met,
								const clad_model *m, const clad_ad_metrics *member_met,
								const auto_choice *choice, double seconds);

/* info --json: the model's settings and its summary (parsed, or NULL) as one JSON line on stdout. */
void		print_model_info_json(const char *path, const clad_model *m, json_t *summary);

/* The training summary stored in the model (JSON text, malloc'd; NULL: out of memory). */
char	   *build_summary(const options *o, const data_source *src, const clad_scenario *sc,
						  const clad_dataset *train, const clad_dataset *normal,
						  const clad_train_config *cfg, const clad_train_log *log, const clad_model *m,
						  const eval_result *test);

/*
 * The same for a stored model of another method, with its test metrics when
 * met is not NULL (and an ensemble's members', member_met, likewise).
 */
char	   *build_baseline_summary(const options *o, const data_source *src, const clad_scenario *sc,
								   const clad_dataset *train, const clad_dataset *normal,
								   const clad_train_config *cfg, const clad_train_log *log,
								   const clad_model *m, const clad_ad_metrics *met,
								   const clad_ad_metrics *member_met, const auto_choice *choice);

#endif

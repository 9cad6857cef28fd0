/* trainer/json_output.c: clad-train's JSON: --json output and the training summary stored in a model. */
#include "json_output.h"

#include "cli.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A number rounded to digits significant digits, so that it prints short; null if not finite. */
static json_t *
num(double v, int digits)
{
	char		b[64];

	if (!isfinite(v))
		return json_null();
	snprintf(b, sizeof(b), "%.*g", digits, v);
	return json_real(strtod(b, NULL));
}

/* The shortest decimal that reads back as the same float. */
static json_t *
num_float(float f)
{
	char		b[64];

	if (!isfinite(f))
		return json_null();
	for (int d = 6; d <= 9; d++)
	{
		snprintf(b, sizeof(b), "%.*g", d, (double) f);
		if (strtof(b, NULL) == f)
			break;
	}
	return json_real(strtod(b, NULL));
}

/* 9 digits: every float reads back exactly, and doubles made short by num() print short */
#define JSON_DUMP_FLAGS (JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9))

#define SET(obj, key, val) (ok &= json_object_set_new((obj), (key), (val)) == 0)
#define APPEND(arr, val) (ok &= json_array_append_new((arr), (val)) == 0)

/* The six metrics as a JSON object. */
static json_t *
metrics_json(const clad_ad_metrics *a, int *okp)
{
	json_t	   *o = json_object();
	int			ok = o != NULL;

	if (o)
	{
		SET(o, "auroc", num(a->auroc, 6));
		SET(o, "best_f1", num(a->best_f1, 6));
		SET(o, "fpr_at_95tpr", num(a->fpr_at_95tpr, 6));
		SET(o, "detection_error", num(a->detection_error, 6));
		SET(o, "aupr_in", num(a->aupr_in, 6));
		SET(o, "aupr_out", num(a->aupr_out, 6));
	}
	*okp &= ok;
	return o;
}

/* Class ids as a JSON array. */
static json_t *
ids_json(const int32_t *ids, int n, int *okp)
{
	json_t	   *a = json_array();
	int			ok = a != NULL;

	for (int i = 0; a && i < n; i++)
		APPEND(a, json_integer(ids[i]));
	*okp &= ok;
	return a;
}

/* The test metrics: for eval --json and the model's summary. */
static json_t *
eval_json(const eval_result *r, const clad_scenario *sc, const char *model_path)
{
	json_t	   *o = json_object(), *odin, *base;
	int			ok = o != NULL;

	if (!o)
		return NULL;
	if (model_path)
		SET(o, "model", json_string(model_path));
	SET(o, "scenario", json_string(sc->label));
	SET(o, "normal_classes", ids_json(sc->classes, sc->n_classes, &ok));
	SET(o, "n_test", json_integer(r->n));
	SET(o, "n_normal", json_integer(r->n_normal));
	SET(o, "n_anomaly", json_integer(r->n_anomaly));
	/* "score": the model's own confidence; an ODIN model's is also under "odin" */
	odin = metrics_json(&r->odin, &ok);
	base = metrics_json(&r->base, &ok);
	if (odin && base && !r->clad)
		ok &= json_object_set_new(odin, "name", json_string(r->score_name)) == 0;
	else if (odin && base && r->bank > 0)
	{
		ok &= json_object_set_new(odin, "name", json_string("neighbours")) == 0;
		ok &= json_object_set_new(odin, "rotations", json_integer(r->rotations)) == 0;
		ok &= json_object_set_new(odin, "bank", json_integer(r->bank)) == 0;
		ok &= json_object_set_new(base, "name", json_string("orientation")) == 0;
	}
	else if (odin && base && r->rotations > 1)
	{
		ok &= json_object_set_new(odin, "name", json_string("orientation")) == 0;
		ok &= json_object_set_new(odin, "rotations", json_integer(r->rotations)) == 0;
		ok &= json_object_set_new(base, "name", json_string("upright only")) == 0;
	}
	else if (odin && base)
	{
		ok &= json_object_set_new(odin, "name", json_string("odin")) == 0;
		ok &= json_object_set_new(odin, "temperature", num_float(r->T)) == 0;
		ok &= json_object_set_new(odin, "epsilon", num_float(r->eps)) == 0;
		ok &= json_object_set_new(base, "name", json_string("max softmax")) == 0;
		ok &= json_object_set_new(base, "temperature", json_real(1.0)) == 0;
		ok &= json_object_set_new(base, "epsilon", json_real(0.0)) == 0;
		SET(o, "odin", json_deep_copy(odin));
	}
	SET(o, "score", odin);
	if (r->clad)
		SET(o, "baseline", base);
	else
		json_decref(base);
	SET(o, "threshold", num_float(r->threshold));
	SET(o, "flagged", num(r->flagged, 6));
	SET(o, "flagged_normal", num(r->flagged_normal, 6));
	SET(o, "flagged_anomaly", num(r->flagged_anomaly, 6));
	if (r->clad)
		SET(o, "cluster_purity", num(r->purity, 6));
	SET(o, "precision", json_string(clad_precision_name(r->precision)));
	if (r->compared)
	{
		json_t	   *c = json_object();

		if (c)
		{
			ok &= json_object_set_new(c, "auroc", num(r->fp32_auroc, 6)) == 0;
			ok &= json_object_set_new(c, "spearman", num(r->spearman, 8)) == 0;
			ok &= json_object_set_new(c, "max_confidence_change", num(r->max_conf_change, 8)) == 0;
			ok &= json_object_set_new(c, "confidence_spread", num(r->conf_spread, 8)) == 0;
		}
		SET(o, "fp32", c);
	}
	if (!ok)
	{
		json_decref(o);
		return NULL;
	}
	return o;
}

/* Print j on one line to stdout and free it (NULL: out of memory). */
static void
print_json(json_t *j)
{
	char	   *text = j ? json_dumps(j, JSON_DUMP_FLAGS) : NULL;

	if (!text)
		die("out of memory printing the metrics");
	printf("%s\n", text);
	free(text);
	json_decref(j);
}

/* The test metrics as one JSON line on stdout (model_path: the model file, or NULL). */
void
print_eval_json(const eval_result *r, const clad_scenario *sc, const char *model_path)
{
	print_json(eval_json(r, sc, model_path));
}

/* An ensemble's members' test metrics, by method. */
static json_t *
members_json(const clad_model *m, const clad_ad_metrics *member_met, int *okp)
{
	json_t	   *o = json_object();
	int			ok = o != NULL;

	for (int i = 0; o && i < m->n_members; i++)
		SET(o, clad_model_method_name(m->members[i]), metrics_json(&member_met[i], &ok));
	*okp &= ok;
	return o;
}

/* --method auto's comparison: what was kept, why, and every candidate's figures. */
static json_t *
auto_json(const auto_choice *a, int *okp)
{
	json_t	   *o = json_object(), *cands = json_object();
	int			ok = o && cands;

	if (!ok)
	{
		json_decref(o);
		json_decref(cands);
		*okp = 0;
		return NULL;
	}
	SET(o, "picked", json_string(a->name[a->picked]));
	SET(o, "criterion", json_string("the highest AUROC on the validation images, then the lowest false-positive "
									"rate at the stored threshold"));
	SET(o, "validation_normal", json_integer(a->n_normal));
	SET(o, "validation_anomalies", json_integer(a->n_anomaly));
	for (int i = 0; i < a->n; i++)
	{
		json_t	   *c = json_object();

		ok &= c != NULL;
		if (!c)
			continue;
		SET(c, "validation_auroc", num(a->val_auroc[i], 6));
		SET(c, "validation_fpr_at_threshold", num(a->val_fpr[i], 6));
		if (!isnan(a->test_auroc[i]))
			SET(c, "test_auroc", num(a->test_auroc[i], 6));
		SET(cands, a->name[i], c);
	}
	SET(o, "candidates", cands);
	*okp &= ok;
	return o;
}

/* A baseline's (--method) metrics as one JSON line on stdout. */
void
print_baseline_json(const char *method, const char *description, const clad_scenario *sc,
					int n_train, int n_test, int n_anomaly, const clad_ad_metrics *met,
					const clad_model *m, const clad_ad_metrics *member_met, const auto_choice *choice,
					double seconds)
{
	json_t	   *j = json_object();
	int			ok = j != NULL;

	if (j)
	{
		SET(j, "method", json_string(method));
		SET(j, "model", json_string(description));
		SET(j, "scenario", json_string(sc->label));
		SET(j, "normal_classes", ids_json(sc->classes, sc->n_classes, &ok));
		SET(j, "n_train", json_integer(n_train));
		SET(j, "n_test", json_integer(n_test));
		SET(j, "n_normal", json_integer(n_test - n_anomaly));
		SET(j, "n_anomaly", json_integer(n_anomaly));
		SET(j, "metrics", metrics_json(met, &ok));
		if (m->n_members > 0)
			SET(j, "members", members_json(m, member_met, &ok));
		if (choice)
			SET(j, "auto", auto_json(choice, &ok));
		SET(j, "seconds", num(seconds, 4));
	}
	print_json(ok ? j : NULL);
}

/* info --json: the model's settings and its summary (parsed, or NULL) as one JSON line on stdout. */
void
print_model_info_json(const char *path, const clad_model *m, json_t *summary)
{
	json_t	   *j = json_object();
	int			ok = j != NULL;
	char	   *text = NULL;

	if (j)
	{
		SET(j, "model", json_string(path));
		SET(j, "method", json_string(clad_model_method_name(m)));
		SET(j, "input_shape", json_pack("[iii]", m->C, m->H, m->W));
		if (m->method == CLAD_METHOD_OCSVM)
		{
			SET(j, "kernel", json_string("rbf"));
			SET(j, "gamma", num_float(m->svm.gamma));
			SET(j, "rho", num_float(m->svm.rho));
			SET(j, "support_vectors", json_integer(m->svm.n_sv));
		}
		else if (m->method == CLAD_METHOD_ENSEMBLE)
		{
			json_t	   *names = json_array();

			ok &= names != NULL;
			for (int i = 0; names && i < m->n_members; i++)
				APPEND(names, json_string(clad_model_method_name(m->members[i])));
			SET(j, "members", names);
		}
		else
		{
			SET(j, "autoencoder", json_string(m->autoencoder));
			SET(j, "latent", json_integer(m->latent));
		}
		SET(j, "score", json_string(clad_model_score_name(m)));
		if (m->method == CLAD_METHOD_CLAD)
		{
			SET(j, "classifier", json_string(m->classifier));
			SET(j, "clusters", json_integer(m->K));
			SET(j, "rotations", json_integer(m->rotations));
			SET(j, "temperature", num_float(m->T));
			SET(j, "epsilon", num_float(m->eps));
		}
		SET(j, "threshold", num_float(m->threshold));
		SET(j, "n_calibration", json_integer(m->n_calib));
		SET(j, "summary", summary ? json_incref(summary) : json_string(m->summary));
		if (ok)
			text = json_dumps(j, JSON_DUMP_FLAGS);
	}
	if (!text)
		die("out of memory printing the model");
	printf("%s\n", text);
	free(text);
	json_decref(j);
}

/* A training stage's epochs and losses (and seconds with --record-times). */
static json_t *
stage_json(const clad_stage_log *l, int epochs_set, int record_times, int *okp)
{
	json_t	   *o = json_object(), *loss = json_array();
	int			ok = o && loss;

	if (!o || !loss)
	{
		json_decref(o);
		json_decref(loss);
		*okp = 0;
		return NULL;
	}
	SET(o, "epochs", json_integer(l->epochs_run));
	SET(o, "epochs_set", json_integer(epochs_set));
	SET(o, "final_loss", l->epochs_run > 0 ? num(l->last_loss, 6) : json_null());
	for (int e = 0; e < l->epochs_run; e++)
		APPEND(loss, num(l->loss[e], 6));
	SET(o, "loss", loss);
	if (record_times)
		SET(o, "seconds", num(l->seconds, 4));
	*okp &= ok;
	return o;
}

/* A summary as malloc'd JSON text (the model frees it with free()), root released; NULL unless ok. */
static char *
summary_text(json_t *root, int ok)
{
	char	   *text = ok ? json_dumps(root, JSON_DUMP_FLAGS) : NULL, *copy;

	json_decref(root);
	if (!text)
		return NULL;
	/* json_dumps allocates with jansson's allocator */
	copy = strdup(text);
	free(text);
	return copy;
}

/* The training summary stored in the model (JSON text, malloc'd). */
char *
build_summary(const options *o, const data_source *src, const clad_scenario *sc,
			  const clad_dataset *train, const clad_dataset *normal,
			  const clad_train_config *cfg, const clad_train_log *log, const clad_model *m,
			  const eval_result *test)
{
	json_t	   *root = json_object(), *data = json_object(), *set = json_object(),
			   *stages = json_object(), *sizes = json_array();
	int			ok = root && data && set && stages && sizes;

	if (!ok)
	{
		json_decref(root);
		json_decref(data);
		json_decref(set);
		json_decref(stages);
		json_decref(sizes);
		return NULL;
	}
	SET(root, "clad_version", json_string(o->version));
	if (src->query)
	{
		/* the queries, never the connection string: it may hold a password */
		json_t	   *q = json_string(src->query);

		SET(data, "query", q ? q : json_null());
		if (src->test_query)
		{
			q = json_string(src->test_query);
			SET(data, "test_query", q ? q : json_null());
		}
	}
	else
		SET(data, "path", json_string(src->path));
	SET(data, "format", json_string(src->format));
	SET(data, "train_images", json_integer(train->n));
	SET(data, "normal_images", json_integer(normal->n));
	SET(data, "image_shape", json_pack("[iii]", train->C, train->H, train->W));
	SET(root, "data", data);
	SET(root, "scenario", json_string(sc->label));
	SET(root, "normal_classes", ids_json(sc->classes, sc->n_classes, &ok));
	if (train->class_names)
	{
		json_t	   *names = json_array();

		ok &= names != NULL;
		for (int i = 0; names && i < sc->n_classes; i++)
		{
			const char *nm = sc->classes[i] < train->n_classes ? train->class_names[sc->classes[i]] : NULL;

			APPEND(names, nm ? json_string(nm) : json_null());
		}
		SET(root, "normal_class_names", names);
	}

	/* every setting, as used */
	for (int i = 0; i < N_KNOBS; i++)
	{
		const knob *k = &knobs[i];
		const char *base = (const char *) cfg + k->offset;

		if (!k->json)
			continue;
		switch (k->type)
		{
			case KNOB_AUTOENCODER:
			case KNOB_CLASSIFIER:
			case KNOB_DEVICE:
			case KNOB_AE_TARGET:
			case KNOB_BANK_PRECISION:
				SET(set, k->json, json_string(base));
				break;
			case KNOB_INT:
				SET(set, k->json, json_integer(*(const int *) base));
				break;
			case KNOB_FLOAT:
			case KNOB_REFERENCE_EPS:
				SET(set, k->json, num_float(*(const float *) base));
				break;
			case KNOB_DOUBLE:
				SET(set, k->json, num(*(const double *) base, 9));
				break;
			case KNOB_U64:
				{
					uint64_t	v = *(const uint64_t *) base;
					char		b[32];

					snprintf(b, sizeof(b), "%llu", (unsigned long long) v);
					SET(set, k->json, v <= (uint64_t) LLONG_MAX ? json_integer((json_int_t) v) : json_string(b));
					break;
				}
		}
	}
	SET(set, "reference_epsilon", num(cfg->eps / CLAD_REFERENCE_EPS_FACTOR, 6));
	SET(set, "epsilon_convention", json_string("x' = x - epsilon * sign(grad) on the normalised input; "
											   "reference eps = epsilon / (50 / (79/255))"));
	SET(root, "settings", set);

	SET(stages, "autoencoder", stage_json(&log->ae, cfg->ae_epochs, o->record_times, &ok));
	SET(stages, "dec", stage_json(&log->dec, cfg->dec_epochs, o->record_times, &ok));
	SET(stages, "classifier", stage_json(&log->clf, cfg->clf_epochs, o->record_times, &ok));
	if (o->record_times)
		SET(stages, "calibration_seconds", num(log->calib_seconds, 4));
	SET(root, "stages", stages);
	for (int k = 0; k < m->K && k < 256; k++)
		APPEND(sizes, json_integer(log->cluster_sizes[k]));
	SET(root, "cluster_sizes", sizes);
	SET(root, "n_fit", json_integer(log->n_fit));
	SET(root, "n_holdout", json_integer(log->n_holdout));
	SET(root, "threshold", num_float(m->threshold));
	if (test)
	{
		json_t	   *t = eval_json(test, sc, NULL);

		ok &= t != NULL;
		SET(root, "test", t);
	}
	return summary_text(root, ok);
}

/*
 * A stored baseline's summary: build_summary's (data, scenario, settings,
 * stages, fit and held-out counts, threshold) for a model of another method,
 * with its "method", the settings of that method, its stages renamed (the
 * autoencoder's pretraining, then "deepsvdd"), no clusters, and the test
 * split's metrics under "test"."score" when met is not NULL.
 */
char *
build_baseline_summary(const options *o, const data_source *src, const clad_scenario *sc,
					   const clad_dataset *train, const clad_dataset *normal,
					   const clad_train_config *cfg, const clad_train_log *log, const clad_model *m,
					   const clad_ad_metrics *met, const clad_ad_metrics *member_met, const auto_choice *choice)
{
	char	   *text = build_summary(o, src, sc, train, normal, cfg, log, m, NULL);
	json_t	   *root = text ? json_loads(text, 0, NULL) : NULL, *set, *stages;
	int			ok = root != NULL;

	free(text);
	if (!ok)
		return NULL;
	set = json_object_get(root, "settings");
	stages = json_object_get(root, "stages");
	SET(root, "method", json_string(clad_model_method_name(m)));
	if (choice)
		SET(root, "auto", auto_json(choice, &ok));
	if (m->method != CLAD_METHOD_CLAD)
		json_object_del(root, "cluster_sizes");
	if (set && m->method == CLAD_METHOD_CLAD)
		;						/* build_summary's settings and stages are CLAD's */
	else if (set && m->method == CLAD_METHOD_ENSEMBLE)
	{
		/* CLAD's settings and stages (build_summary's), and those of the other two members */
		SET(set, "svdd_epochs", json_integer(cfg->svdd_epochs));
		SET(set, "svdd_batch", json_integer(cfg->svdd_batch));
		SET(set, "svdd_lr", num_float(cfg->svdd_lr));
		SET(set, "svdd_weight_decay", num_float(cfg->svdd_weight_decay));
		SET(set, "ocsvm_nu", num(cfg->ocsvm_nu, 9));
		SET(set, "combination", json_string("mean_score"));
		json_t	   *names = json_array();

		ok &= names != NULL;
		for (int i = 0; names && i < m->n_members; i++)
			APPEND(names, json_string(clad_model_method_name(m->members[i])));
		SET(root, "members", names);
	}
	else if (set)
	{
		/* the settings CLAD's stages use and the other methods do not */
		static const char *const clad_only[] = {
			"classifier", "clusters", "kmeans_restarts", "dec_epochs", "dec_batch", "dec_lr", "dec_momentum",
			"dec_tol", "clf_epochs", "clf_batch", "clf_lr", "rotations", "bank", "bank_precision",
			"temperature", "epsilon", "reference_epsilon", "epsilon_convention"
		};
		/* and those a one-class SVM, without nets, does not either */
		static const char *const nets_only[] = {
			"autoencoder", "latent", "ae_epochs", "ae_batch", "ae_lr", "ae_target", "device"
		};

		for (size_t i = 0; i < sizeof(clad_only) / sizeof(clad_only[0]); i++)
			json_object_del(set, clad_only[i]);
		if (m->method == CLAD_METHOD_OCSVM)
		{
			for (size_t i = 0; i < sizeof(nets_only) / sizeof(nets_only[0]); i++)
				json_object_del(set, nets_only[i]);
			SET(set, "ocsvm_nu", num(cfg->ocsvm_nu, 9));
			SET(set, "ocsvm_gamma", num_float(m->svm.gamma));	/* as used: "scale" resolved */
			SET(set, "kernel", json_string("rbf"));
			SET(set, "support_vectors", json_integer(m->svm.n_sv));
		}
		else
		{
			SET(set, "autoencoder", json_string(m->autoencoder));
			SET(set, "ae_target", json_string("pixels"));
			SET(set, "svdd_epochs", json_integer(cfg->svdd_epochs));
			SET(set, "svdd_batch", json_integer(cfg->svdd_batch));
			json_object_del(set, "ae_batch");	/* CLAD's */
			SET(set, "svdd_lr", num_float(cfg->svdd_lr));
			SET(set, "svdd_weight_decay", num_float(cfg->svdd_weight_decay));
		}
	}
	if (m->method == CLAD_METHOD_ENSEMBLE || m->method == CLAD_METHOD_CLAD)
		;
	else if (stages && m->method == CLAD_METHOD_OCSVM)
	{
		json_t	   *fit = json_object();

		ok &= fit != NULL;
		if (fit && o->record_times)
			SET(fit, "seconds", num(log->clf.seconds, 4));
		json_object_del(stages, "autoencoder");
		json_object_del(stages, "classifier");
		json_object_del(stages, "dec");
		SET(stages, "ocsvm", fit);
	}
	else if (stages)
	{
		json_t	   *svdd = json_object_get(stages, "classifier");

		if (svdd)
		{
			SET(svdd, "epochs_set", json_integer(cfg->svdd_epochs));
			SET(stages, "deepsvdd", json_incref(svdd));
		}
		json_object_del(stages, "classifier");
		json_object_del(stages, "dec");
	}
	if (met)
	{
		json_t	   *test = json_object();

		ok &= test != NULL;
		if (test)
		{
			SET(test, "score", metrics_json(met, &ok));
			if (m->n_members > 0 && member_met)
				SET(test, "members", members_json(m, member_met, &ok));
			SET(root, "test", test);
		}
	}
	return summary_text(root, ok);
}

/* trainer/clad-train.c: the clad-train program: train a CLAD model on normal images, evaluate it.
 *
 *   clad-train [train] --data PATH --normal SCENARIO --out MODEL [options]
 *   clad-train [train] --db CONNINFO --query SQL [--test-query SQL] [--normal IDS] --out MODEL [options]
 *   clad-train [train] --db CONNINFO --query SQL ... --model-name NAME [--activate] [--out MODEL]
 *   clad-train eval --model MODEL --data PATH --normal SCENARIO [--json]
 *   clad-train info MODEL [--json]
 *   clad-train push --db CONNINFO [--shard CONNINFO ...] [--version-id ID] --model-name NAME [--activate] MODEL
 *   clad-train score MODEL IMAGE...
 *
 * Exit status: 0 success, 1 a runtime error (data, training, files),
 * 2 a usage error.  Messages go to stderr prefixed "clad-train: "; results
 * (the training summary, the metrics) to stdout.
 *
 * --model-name stores the trained model in the database as a new version
 * (the clad extension's clad_load_model) and records the run in
 * clad.training_runs: clad_run_begin before any row is read (it takes the
 * model's lock: one run of a model at a time), clad_run_end when it ends.
 * Every runtime error after clad_run_begin goes through die(), which
 * records the run as failed with the message.
 *
 * Same seed, same result: nothing that reaches the model depends on the
 * clock or on addresses.  Stage timings are shown, and stored in the model's
 * summary only with --record-times (they would make the bytes differ).
 */
#include "cli.h"
#include "data_source.h"
#include "db_runs.h"
#include "evaluation.h"
#include "json_output.h"
#include "options.h"

#include "baselines.h"
#include "gemm.h"
#include "image.h"
#include "model.h"
#include "progress.h"
#include "report.h"
#include "rng.h"
#include "safetensors.h"
#include "train.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef CLAD_VERSION			/* the Makefile's, from clad.control */
#error "CLAD_VERSION is not defined: build clad-train with the Makefile"
#endif

#define SCORE_MAX_PIXELS ((size_t) 1 << 26)	/* score: largest image file decoded (width * height) */

/* Write the model file, or die. */
static void
save_model(const clad_model *m, const char *path)
{
	uint8_t    *buf = NULL;
	size_t		len = 0;

	if (clad_model_save(m, &buf, &len) != CLAD_OK)
		die("cannot serialise the model: %s", clad_last_error());
	if (clad_write_file(path, buf, len) != CLAD_OK)
	{
		free(buf);
		die("%s", clad_last_error());
	}
	free(buf);
}

/* A training stage's line of the training summary on stdout. */
static void
print_stage(const char *name, const clad_stage_log *l, int epochs_set)
{
	char		took[16];

	clad_format_duration(took, sizeof(took), l->seconds);
	if (l->epochs_run > 0)
		printf("  %-12s %d/%d epochs, final loss %.6g, %s\n", name, l->epochs_run, epochs_set,
			   l->last_loss, took);
	else
		printf("  %-12s no epochs\n", name);
}

/* The model's training summary becomes summary (NULL: out of memory); saved with it to --out when given. */
static void
keep_summary(const options *o, clad_model *m, char *summary)
{
	if (!summary)
		die("out of memory building the training summary");
	free(m->summary);
	m->summary = summary;
	if (o->out)
		save_model(m, o->out);
}

/*
 * --validation-scores: one CSV row per labelled image (in the order read):
 * its index, whether it is an anomaly, whether the choice used it, and each
 * candidate's anomaly score (score: n_candidates x n, candidate-major).
 */
static void
write_validation_scores(const char *path, const auto_choice *a, int n, const uint8_t *val_anomaly,
						const float *score)
{
	FILE	   *f = fopen(path, "w");

	if (!f)
		die("cannot write %s: %s", path, strerror(errno));
	fprintf(f, "image,is_anomaly,chosen_with");
	for (int k = 0; k < a->n; k++)
		fprintf(f, ",%s", a->name[k]);
	fputc('\n', f);
	for (int i = 0; i < n; i++)
	{
		fprintf(f, "%d,%d,%d", i, val_anomaly[i] != 0, val_anomaly[i] != 2);
		for (int k = 0; k < a->n; k++)
			fprintf(f, ",%.9g", score[(size_t) k * n + i]);
		fputc('\n', f);
	}
	if (ferror(f) | (fclose(f) != 0))
		die("cannot write %s: %s", path, strerror(errno));
}

/*
 * --method auto: each candidate (the ensemble's members, then the ensemble)
 * scored on the labelled validation images: AUROC, and the share of their
 * normal images below the candidate's stored threshold; the highest AUROC
 * wins, then the lowest share, then the earlier candidate.  val_anomaly: 1
 * anomaly, 0 normal, 2 an anomaly left out by --validation-anomalies (scored
 * for --validation-scores only).  test_auroc (NULL without a test split): the
 * candidates' test AUROCs, in the same order.
 */
static void
choose_auto(const options *o, clad_model *ens, const clad_dataset *val, const uint8_t *val_anomaly,
			const double *test_auroc, auto_choice *a)
{
	int			n_used = 0;
	float	   *score = malloc(sizeof(float) * val->n * AUTO_CANDIDATES);
	float	   *used_score = malloc(sizeof(float) * val->n);
	uint8_t    *used_anomaly = malloc(val->n);

	if (!score || !used_score || !used_anomaly)
		die("out of memory scoring the validation images");
	memset(a, 0, sizeof(*a));
	a->n = ens->n_members + 1;
	for (int i = 0; i < val->n; i++)
		if (val_anomaly[i] != 2)
		{
			used_anomaly[n_used++] = val_anomaly[i];
			a->n_anomaly += val_anomaly[i];
			a->n_normal += !val_anomaly[i];
		}
	for (int k = 0; k < a->n; k++)
	{
		clad_model *m = k < ens->n_members ? ens->members[k] : ens;
		float	   *sk = score + (size_t) k * val->n;
		clad_ad_metrics met;
		int			flagged = 0;

		a->name[k] = clad_model_method_name(m);
		if (clad_model_anomaly(m, val->pixels, val->n, sk) != CLAD_OK)
			die("scoring the validation images with %s failed: %s", a->name[k], clad_last_error());
		for (int i = 0, j = 0; i < val->n; i++)
			if (val_anomaly[i] != 2)
			{
				used_score[j++] = sk[i];
				flagged += !val_anomaly[i] && -sk[i] < m->threshold;
			}
		if (clad_ad_evaluate(used_score, used_anomaly, n_used, &met) != CLAD_OK)
			die("scoring the validation images with %s failed: %s", a->name[k], clad_last_error());
		a->val_auroc[k] = met.auroc;
		a->val_fpr[k] = (double) flagged / a->n_normal;
		a->test_auroc[k] = test_auroc ? test_auroc[k] : NAN;
		if (k > 0 && (a->val_auroc[k] > a->val_auroc[a->picked] ||
					  (a->val_auroc[k] == a->val_auroc[a->picked] && a->val_fpr[k] < a->val_fpr[a->picked])))
			a->picked = k;
	}
	if (o->validation_scores)
		write_validation_scores(o->validation_scores, a, val->n, val_anomaly, score);
	free(score);
	free(used_score);
	free(used_anomaly);
}

/* The comparison of --method auto as text on stdout. */
static void
print_auto(const auto_choice *a)
{
	printf("method auto: %d labelled anomalies and %d normal images to choose with\n", a->n_anomaly, a->n_normal);
	printf("  %-12s %14s %18s %11s\n", "candidate", "valid. AUROC", "valid. FPR@thresh", "test AUROC");
	for (int k = 0; k < a->n; k++)
	{
		printf("  %-12s %14.4f %18.4f", a->name[k], a->val_auroc[k], a->val_fpr[k]);
		if (isnan(a->test_auroc[k]))
			printf(" %11s", "-");
		else
			printf(" %11.4f", a->test_auroc[k]);
		printf("%s\n", k == a->picked ? "   <- kept" : "");
	}
}

/* --report for a model of another method: its losses, codes and test split (report.h). */
static void
write_method_report(const options *o, const clad_scenario *sc, clad_model *m, const clad_train_log *log,
					const clad_train_config *cfg, const clad_dataset *normal, const clad_dataset *test,
					const uint8_t *anomaly)
{
	char		title[512];
	float	   *conf = test ? malloc(sizeof(float) * test->n) : NULL;
	clad_report_input ri = {title, log, cfg, m, normal, test, conf, NULL, anomaly};

	if (test && !conf)
		die("out of memory for the report");
	if (test && clad_model_anomaly(m, test->pixels, test->n, conf) != CLAD_OK)
		die("scoring the test split for the report failed: %s", clad_last_error());
	for (int i = 0; test && i < test->n; i++)
		conf[i] = -conf[i];
	snprintf(title, sizeof(title), "%s: %s model, %d normal training images, seed %llu", sc->label,
			 clad_model_method_name(m), normal->n, (unsigned long long) cfg->seed);
	if (clad_report_write(o->report, &ri) != CLAD_OK)
		die("cannot write the report: %s", clad_last_error());
	if (!o->quiet)
		fprintf(stderr, "clad-train: report written to %s/index.html\n", o->report);
	free(conf);
}

/*
 * --method ocsvm / deepsvdd / ensemble: train the baseline on the normal
 * images, score the test split (unless test is NULL: --no-eval), report the
 * metrics as for CLAD (text or --json); with --out, save its model, with
 * --model-name store it (the run begun in cmd_train).  --method auto (val
 * not NULL: labelled images, val_anomaly their labels): the ensemble and its
 * members are the candidates, the best on val is saved or stored.
 */
static int
run_baseline(const options *o, const clad_train_config *cfg, clad_scenario *sc, clad_dataset *normal,
			 clad_dataset *test, int32_t *normal_at, clad_dataset *train, data_source *src,
			 const clad_dataset *val, const uint8_t *val_anomaly)
{
	int			is_auto = val != NULL;
	const char *method = is_auto ? "ensemble" : o->method;
	auto_choice choice;
	clad_baseline *b;
	clad_train_log log;
	clad_progress_state ps;
	clad_ad_metrics met, member_met[CLAD_MAX_MEMBERS];
	clad_model *bm, *kept;		/* what was trained; what is saved (auto: the candidate kept) */
	const clad_train_log *kept_log = &log;
	int			kept_k = -1;	/* auto: the member kept, or -1 */
	float	   *score = test ? malloc(sizeof(float) * test->n) : NULL;
	uint8_t    *anomaly = test ? malloc(test->n) : NULL;
	int			n_anomaly = 0;
	struct timespec t0, t1;

	if (test && (!score || !anomaly))
		die("out of memory evaluating %d images", test->n);
	clad_progress_init(&ps, stderr, o->quiet);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (clad_baseline_train(method, cfg, normal, clad_progress_report, &ps, &b, &log) != CLAD_OK)
	{
		clad_progress_finish(&ps);
		die("training %s failed: %s", method, clad_last_error());
	}
	clad_progress_finish(&ps);
	bm = kept = clad_baseline_model(b);
	if (test)
	{
		if (clad_baseline_score(b, test->pixels, test->n, score) != CLAD_OK)
			die("scoring the test split failed: %s", clad_last_error());
		for (int i = 0; i < test->n; i++)
			n_anomaly += (anomaly[i] = normal_at[i] < 0);
		if (clad_ad_evaluate(score, anomaly, test->n, &met) != CLAD_OK)
			die("cannot compute the metrics: %s", clad_last_error());
		/* an ensemble's members, each alone */
		for (int k = 0; k < bm->n_members; k++)
			if (clad_model_anomaly(bm->members[k], test->pixels, test->n, score) != CLAD_OK ||
				clad_ad_evaluate(score, anomaly, test->n, &member_met[k]) != CLAD_OK)
				die("scoring the test split with the ensemble's %s failed: %s",
					clad_model_method_name(bm->members[k]), clad_last_error());
	}
	if (is_auto)
	{
		double		test_auroc[AUTO_CANDIDATES];

		for (int k = 0; test && k < bm->n_members; k++)
			test_auroc[k] = member_met[k].auroc;
		test_auroc[bm->n_members] = test ? met.auroc : 0;
		choose_auto(o, bm, val, val_anomaly, test ? test_auroc : NULL, &choice);
		if (choice.picked < bm->n_members)
		{
			kept_k = choice.picked;
			kept = bm->members[kept_k];
			if (clad_baseline_member_log(b, kept_k))
				kept_log = clad_baseline_member_log(b, kept_k);
		}
	}
	if (o->report)
		write_method_report(o, sc, kept, kept_log, cfg, normal, test, anomaly);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (o->out || o->model_name)
	{
		keep_summary(o, kept, build_baseline_summary(o, src, sc, train, normal, cfg, kept_log, kept,
													 test ? (kept_k >= 0 ? &member_met[kept_k] : &met) : NULL,
													 test && kept_k < 0 ? member_met : NULL,
													 is_auto ? &choice : NULL));
		/* stored with its summary (test metrics included) as its metrics */
		if (o->model_name)
			store_trained(o, kept);
	}
	if (!test)
	{
		if (!o->quiet)
			printf("trained %s on %d normal images of %s\n", clad_baseline_describe(b), normal->n, sc->label);
	}
	else if (o->json)
		print_baseline_json(o->method, clad_baseline_describe(b), sc, normal->n, test->n, n_anomaly, &met, bm,
							member_met, is_auto ? &choice : NULL,
							(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9);
	else
	{
		printf("trained %s on %d normal images of %s\n", clad_baseline_describe(b), normal->n, sc->label);
		printf("test split: %d images, %d normal (%s), %d anomalous\n", test->n, test->n - n_anomaly,
			   sc->label, n_anomaly);
		print_metrics_header();
		print_metrics_row(method, &met);
		for (int k = 0; k < bm->n_members; k++)
		{
			char		row[48];

			snprintf(row, sizeof(row), "  member %s", clad_model_method_name(bm->members[k]));
			print_metrics_row(row, &member_met[k]);
		}
	}
	if (is_auto && !o->json && (test || !o->quiet))
	{
		print_auto(&choice);
		printf("kept: %s%s\n", choice.name[choice.picked],
			   o->out ? ", saved" : o->model_name ? ", stored" : "");
	}
	if (fflush(stdout) != 0)
		die("cannot write to stdout: %s", strerror(errno));
	clad_baseline_free(b);
	clad_train_log_free(&log);
	free(score);
	free(anomaly);
	free(normal_at);
	if (test)
		clad_dataset_free(test);
	clad_dataset_free(normal);
	clad_dataset_free(train);
	clad_scenario_free(sc);
	free_source(src);
	return 0;
}

/*
 * --method auto's labelled images: --validation's test split labelled by the
 * scenario (the other classes are anomalies), or --validate-query's rows (a
 * second column other than 0 or false: an anomaly); at most
 * --validation-anomalies of the anomalies, a seeded choice, and every normal
 * image.  *anomaly (val->n flags: 1 anomaly, 0 normal, 2 left out, kept
 * only for --validation-scores) is malloc'd; *n_anomaly and *n_normal count
 * the images chosen with.
 */
static void
load_validation(const options *o, clad_scenario *sc, const clad_dataset *train, uint64_t seed, clad_dataset *val,
				uint8_t **anomaly, int *n_anomaly, int *n_normal)
{
	int32_t    *normal_at = NULL, *keep;
	int			nn = 0, na = 0, kept = 0;
	size_t		img = (size_t) train->C * train->H * train->W;

	if (o->validate_query)
	{
		load_pg_split(o, o->validate_query, CLAD_SPLIT_TEST, train->C, train->H, val);
		if (val->n_classes == 0)
			die("--validate-query returns no second column: each row needs is_anomaly (boolean)");
	}
	else
	{
		options		vo = *o;
		data_source vsrc;

		vo.data = o->validation;
		resolve_source(&vo, sc, &vsrc);
		load_split(&vsrc, CLAD_SPLIT_TEST, train->C, train->H, train->class_names, train->n_classes, val, o->quiet);
		free_source(&vsrc);
		label_test(val, sc, train->class_names, train->n_classes, &normal_at, &nn);
	}
	if (val->C != train->C || val->H != train->H || val->W != train->W)
		die("the validation images are %dx%dx%d but the training images %dx%dx%d", val->C, val->H, val->W,
			train->C, train->H, train->W);
	if (!(*anomaly = malloc(val->n ? val->n : 1)) || !(keep = malloc(sizeof(int32_t) * (val->n ? val->n : 1))))
		die("out of memory");
	for (int i = 0; i < val->n; i++)
		if (((*anomaly)[i] = normal_at ? normal_at[i] < 0 : val->labels[i] != 0))
			keep[na++] = i;
	free(normal_at);
	if (o->validation_anomalies > 0 && na > o->validation_anomalies)
	{
		/* a seeded few of the anomalies, every normal image */
		clad_rng	rng;

		clad_rng_seed(&rng, seed ^ 0x76616c6964ull);
		clad_rng_shuffle(&rng, keep, na);
		for (int i = o->validation_anomalies; i < na; i++)
			(*anomaly)[keep[i]] = 2;	/* left out of the choice */
		na = o->validation_anomalies;
		/* those left out are dropped, unless --validation-scores scores them too */
		if (!o->validation_scores)
		{
			for (int i = 0; i < val->n; i++)
				if ((*anomaly)[i] != 2)
				{
					memmove(val->pixels + img * kept, val->pixels + img * i, sizeof(float) * img);
					(*anomaly)[kept++] = (*anomaly)[i];
				}
			val->n = kept;
		}
	}
	free(keep);
	*n_anomaly = na;
	*n_normal = 0;
	for (int i = 0; i < val->n; i++)
		*n_normal += (*anomaly)[i] == 0;
}

/* train: train CLAD (or a --method baseline), save or store it, evaluate it. */
static int
cmd_train(const options *o)
{
	clad_scenario sc;
	clad_train_config cfg;
	data_source src;
	clad_dataset train, normal, test;
	clad_model *m = NULL;
	clad_train_log log;
	clad_progress_state ps;
	int32_t    *normal_at = NULL;
	int			n_normal_test = 0, *per_class;
	eval_result er = {0};
	int			evaluate_after = !o->no_eval;
	int			all_normal = 0;	/* --db with no label column: every row is normal */
	options		auto_fallback;	/* --method auto without labelled images: the default */

	if (o->normal)
	{
		if (clad_scenario_parse(o->normal, &sc) != CLAD_OK)
			die_usage("--normal: %s", clad_last_error());
	}
	else
	{
		/* only with --db (parse_options requires --normal otherwise): no scenario */
		memset(&sc, 0, sizeof(sc));
		sc.settings.eps = -1.0f;
		snprintf(sc.label, sizeof(sc.label), "all rows");
	}

	/* settings: the defaults, the recipe's, the scenario's, then the user's */
	clad_train_defaults(&cfg);
	if (o->recipe)
		clad_train_recipe(&cfg, o->recipe);
	clad_scenario_apply(&sc, &cfg);
	for (int i = 0; i < o->n_set; i++)
		apply_knob(&knobs[o->set_knob[i]], o->set_arg[i], &cfg);

	/* before any row is read: two runs of one model never interleave */
	if (o->model_name)
		begin_run(o);

	if (o->db)
	{
		memset(&src, 0, sizeof(src));
		src.format = "postgresql";
		src.query = o->query;
		src.test_query = o->test_query;
		src.C = o->channels ? o->channels : (sc.settings.channels ? sc.settings.channels : 1);
		src.size = o->image_size ? o->image_size : (sc.settings.image_size ? sc.settings.image_size : 28);
		load_pg_split(o, o->query, CLAD_SPLIT_TRAIN, src.C, src.size, &train);
		set_run_rows(train.n);
		if (train.n_classes > 0 && !o->normal)
			die("the query returns a label column: give --normal with the labels of the normal "
				"rows (or select only the image column to train on every row)");
		all_normal = train.n_classes == 0;
		if (!o->test_query)
		{
			if (evaluate_after && !o->quiet)
				fprintf(stderr, "clad-train: no --test-query: training only, no evaluation\n");
			evaluate_after = 0;
		}
	}
	else
	{
		resolve_source(o, &sc, &src);
		load_split(&src, CLAD_SPLIT_TRAIN, src.C, src.size, NULL, 0, &train, o->quiet);
	}

	if (all_normal)
	{
		/* no labels: the query selected the normal images; --normal is for the test rows */
		if (!o->quiet)
			fprintf(stderr, "clad-train: the query has no label column: all %d rows are normal\n",
					train.n);
		normal = train;
		train.pixels = NULL;
		train.labels = NULL;
	}
	else
	{
		resolve_scenario(&sc, &train, &src);

		/* the normal classes only; each must have training images */
		if (!(per_class = calloc(sc.n_classes, sizeof(int))))
			die("out of memory");
		for (int i = 0; i < train.n; i++)
			for (int j = 0; j < sc.n_classes; j++)
				if (train.labels[i] == sc.classes[j])
					per_class[j]++;
		for (int j = 0; j < sc.n_classes; j++)
			if (per_class[j] == 0)
				die("the training split has no image of normal class %d%s%s",
					sc.classes[j], train.class_names ? " " : "",
					train.class_names && sc.classes[j] < train.n_classes ? train.class_names[sc.classes[j]] : "");
		free(per_class);
		if (clad_dataset_filter(&train, sc.classes, sc.n_classes, &normal) != CLAD_OK)
			die("%s", clad_last_error());
		if (normal.n == 0)
			die("no training image belongs to the normal classes (%s)", sc.label);
		/* the other training images are not needed any more: only their count and names */
		free(train.pixels);
		train.pixels = NULL;
	}
	if (!o->quiet)
		fprintf(stderr, "clad-train: %d normal training images (%s); %s + %s, K %d, latent %d, seed %llu\n",
				normal.n, sc.label, cfg.autoencoder, cfg.classifier, cfg.K, cfg.latent,
				(unsigned long long) cfg.seed);

	/* read the test split before training: a problem with it shows now, not hours later */
	if (evaluate_after && o->db)
	{
		load_pg_split(o, o->test_query, CLAD_SPLIT_TEST, train.C, train.H, &test);
		if (test.n_classes == 0)
			die("the --test-query returns no label column: evaluation needs each test row's label");
		if (all_normal)
			resolve_scenario(&sc, &test, &src);
		label_test(&test, &sc, NULL, 0, &normal_at, &n_normal_test);
	}
	else if (evaluate_after)
	{
		load_split(&src, CLAD_SPLIT_TEST, train.C, train.H, train.class_names, train.n_classes, &test,
				   o->quiet);
		if (test.C != train.C || test.H != train.H || test.W != train.W)
			die("the test images are %dx%dx%d but the training images %dx%dx%d",
				test.C, test.H, test.W, train.C, train.H, train.W);
		label_test(&test, &sc, train.class_names, train.n_classes, &normal_at, &n_normal_test);
	}

	if (o->method && strcmp(o->method, "auto") == 0)
	{
		clad_dataset val = {0};
		uint8_t    *val_anomaly = NULL;
		int			n_anom = 0, n_norm = 0;

		if (o->validation || o->validate_query)
			load_validation(o, &sc, &train, cfg.seed, &val, &val_anomaly, &n_anom, &n_norm);
		if (n_anom > 0 && n_norm > 0)
		{
			if (!o->quiet)
				fprintf(stderr, "clad-train: --method auto: %d labelled anomalies and %d normal images to choose "
						"with; training CLAD, Deep SVDD, the one-class SVM and their ensemble\n", n_anom, n_norm);
			return run_baseline(o, &cfg, &sc, &normal, evaluate_after ? &test : NULL, normal_at, &train, &src,
								&val, val_anomaly);
		}
		/* nothing to choose with: the default */
		fprintf(stderr, "clad-train: --method auto: %s; training the default method, clad\n",
				!(o->validation || o->validate_query) ? "no --validation or --validate-query" :
				n_anom == 0 ? "the validation images hold no anomaly" : "the validation images hold no normal image");
		clad_dataset_free(&val);
		free(val_anomaly);
		auto_fallback = *o;
		auto_fallback.method = NULL;
		o = &auto_fallback;
	}
	if (o->method)
		return run_baseline(o, &cfg, &sc, &normal, evaluate_after ? &test : NULL, normal_at, &train, &src,
							NULL, NULL);

	clad_progress_init(&ps, stderr, o->quiet);
	if (clad_train(&cfg, &normal, clad_progress_report, &ps, &m, &log) != CLAD_OK)
	{
		clad_progress_finish(&ps);
		die("training failed: %s", clad_last_error());
	}
	clad_progress_finish(&ps);

	/* save at once: a failure below keeps the trained model */
	keep_summary(o, m, build_summary(o, &src, &sc, &train, &normal, &cfg, &log, m, NULL));

	if (!o->json)
	{
		char		what[160];

		if (o->out)
			snprintf(what, sizeof(what), "%s", o->out);
		else
			snprintf(what, sizeof(what), "clad model \"%s\"", o->model_name);
		printf("trained %s on %d normal images of %s (%d fit, %d held out)\n",
			   what, normal.n, sc.label, log.n_fit, log.n_holdout);
		if (strcmp(log.device, "cpu") != 0)
			printf("  device       %s\n", log.device);
		print_stage("autoencoder", &log.ae, cfg.ae_epochs);
		print_stage("dec", &log.dec, cfg.dec_epochs);
		print_stage("classifier", &log.clf, cfg.clf_epochs);
		printf("  clusters    ");
		for (int k = 0; k < m->K; k++)
			printf(" %d", log.cluster_sizes[k]);
		printf("\n  threshold    %.6g (%.0f%% of held-out normal images above it)\n",
			   m->threshold, 100.0 * cfg.tpr);
	}

	if (evaluate_after)
	{
		evaluate(m, &test, &sc, normal_at, CLAD_PRECISION_FP32, &ps, &er);
		keep_summary(o, m, build_summary(o, &src, &sc, &train, &normal, &cfg, &log, m, &er));
	}
	if (o->report)
	{
		char		title[512];
		clad_report_input ri = {title, &log, &cfg, m, &normal, evaluate_after ? &test : NULL,
			evaluate_after ? er.odin_conf : NULL, evaluate_after ? er.base_conf : NULL,
		evaluate_after ? er.is_anomaly : NULL};

		snprintf(title, sizeof(title), "%s: %s + %s, K %d, latent %d, %d normal training images, seed %llu",
				 sc.label, m->autoencoder, m->classifier, m->K, m->latent, normal.n,
				 (unsigned long long) cfg.seed);
		if (clad_report_write(o->report, &ri) != CLAD_OK)
			die("cannot write the report: %s", clad_last_error());
		if (!o->quiet)
			fprintf(stderr, "clad-train: report written to %s/index.html\n", o->report);
	}
	/* stored with the final summary (test metrics included) as its metrics */
	if (o->model_name)
		store_trained(o, m);
	if (evaluate_after)
	{
		if (o->json)
			print_eval_json(&er, &sc, o->out);
		else
			print_eval(&er, &sc);
		clad_dataset_free(&test);
		free(normal_at);
		eval_result_free(&er);
	}
	else if (o->json)
		printf("%s\n", m->summary);
	if (fflush(stdout) != 0)
		die("cannot write to stdout: %s", strerror(errno));
	clad_train_log_free(&log);
	clad_model_free(m);
	clad_dataset_free(&normal);
	clad_dataset_free(&train);
	clad_scenario_free(&sc);
	free_source(&src);
	return 0;
}

/* Read and load a model file, or die. */
static clad_model *
read_model(const char *path)
{
	uint8_t    *buf;
	size_t		len;
	clad_model *m;

	if (clad_read_file(path, &buf, &len) != CLAD_OK)
		die("%s", clad_last_error());
	if (clad_model_load(buf, len, &m) != CLAD_OK)
	{
		free(buf);
		die("%s is not a valid clad model: %s", path, clad_last_error());
	}
	free(buf);
	return m;
}

/* eval: score a model on a test split and print the metrics. */
static int
cmd_eval(const options *o)
{
	clad_scenario sc;
	data_source src;
	clad_dataset test;
	clad_model *m;
	clad_progress_state ps;
	int32_t    *normal_at;
	int			n_normal, threads = 1;
	eval_result er;

	if (clad_scenario_parse(o->normal, &sc) != CLAD_OK)
		die_usage("--normal: %s", clad_last_error());
	for (int i = 0; i < o->n_set; i++)
	{
		clad_train_config scratch;

		clad_train_defaults(&scratch);
		apply_knob(&knobs[o->set_knob[i]], o->set_arg[i], &scratch);
		threads = scratch.threads;
	}
	m = read_model(o->model);
	if (clad_blas_init(CLAD_BLAS_AUTO, threads) != CLAD_OK)
		die("%s", clad_last_error());
	resolve_source(o, &sc, &src);
	if (m->H != m->W && (strcmp(src.format, "folder") == 0 || strcmp(src.format, "gtsrb") == 0))
		die("the model takes %dx%d images; folder and GTSRB sets are loaded square", m->H, m->W);
	load_split(&src, CLAD_SPLIT_TEST, m->C, m->H, NULL, 0, &test, o->quiet);
	resolve_scenario(&sc, &test, &src);
	label_test(&test, &sc, NULL, 0, &normal_at, &n_normal);
	clad_progress_init(&ps, stderr, o->quiet);
	evaluate(m, &test, &sc, normal_at, o->precision, &ps, &er);
	if (o->precision != CLAD_PRECISION_FP32)
	{
		/* and in fp32: the comparison a user checks before switching */
		eval_result er32;

		evaluate(m, &test, &sc, normal_at, CLAD_PRECISION_FP32, &ps, &er32);
		compare_with_fp32(&er, &er32);
		eval_result_free(&er32);
	}
	if (o->json)
		print_eval_json(&er, &sc, o->model);
	else
	{
		if (m->method == CLAD_METHOD_CLAD)
			printf("model %s: %s + %s, K %d, latent %d\n", o->model, m->autoencoder, m->classifier,
				   m->K, m->latent);
		else if (m->method == CLAD_METHOD_OCSVM)
			printf("model %s: one-class SVM, RBF kernel, %d support vectors\n", o->model, m->svm.n_sv);
		else if (m->method == CLAD_METHOD_ENSEMBLE)
			printf("model %s: ensemble of %d models\n", o->model, m->n_members);
		else
			printf("model %s: Deep SVDD, %s encoder, latent %d\n", o->model, m->autoencoder, m->latent);
		print_eval(&er, &sc);
	}
	if (fflush(stdout) != 0)
		die("cannot write to stdout: %s", strerror(errno));
	eval_result_free(&er);
	free(normal_at);
	clad_dataset_free(&test);
	clad_model_free(m);
	clad_scenario_free(&sc);
	free_source(&src);
	return 0;
}

/* info: a model's settings and training summary. */
static int
cmd_info(const options *o)
{
	clad_model *m = read_model(o->model);
	json_error_t jerr;
	json_t	   *summary = json_loads(m->summary ? m->summary : "{}", 0, &jerr);

	if (o->json)
		print_model_info_json(o->model, m, summary);
	else
	{
		printf("model %s\n", o->model);
		printf("  method       %s\n", m->method == CLAD_METHOD_CLAD ? "CLAD" :
			   m->method == CLAD_METHOD_OCSVM ? "one-class SVM" :
			   m->method == CLAD_METHOD_ENSEMBLE ? "ensemble" : "Deep SVDD");
		if (m->method == CLAD_METHOD_ENSEMBLE)
			for (int k = 0; k < m->n_members; k++)
				printf("  member %d     %s (%s score, %d held-out confidences)\n", k,
					   clad_model_method_name(m->members[k]), clad_model_score_name(m->members[k]),
					   m->members[k]->n_calib);
		else if (m->method == CLAD_METHOD_OCSVM)
			printf("  kernel       rbf, gamma %.6g, rho %.6g, %d support vectors\n", m->svm.gamma, m->svm.rho,
				   m->svm.n_sv);
		else
			printf("  %s  %s, latent %d\n", m->method == CLAD_METHOD_CLAD ? "autoencoder" : "encoder    ",
				   m->autoencoder, m->latent);
		if (m->method == CLAD_METHOD_CLAD)
			printf("  classifier   %s, K %d\n", m->classifier, m->K);
		printf("  input        %dx%dx%d", m->C, m->H, m->W);
		if (m->method != CLAD_METHOD_ENSEMBLE)
		{
			printf(", mean");
			for (int c = 0; c < m->C; c++)
				printf(" %.6g", m->mean[c]);
			printf(", std");
			for (int c = 0; c < m->C; c++)
				printf(" %.6g", m->std[c]);
		}
		if (m->method == CLAD_METHOD_ENSEMBLE)
			printf("\n  score        1 - the mean of the members' calibrated scores\n");
		else if (m->method == CLAD_METHOD_DEEPSVDD)
			printf("\n  score        - ||z - c||^2, the code's squared distance to the centre (Deep SVDD)\n");
		else if (m->method == CLAD_METHOD_OCSVM)
			printf("\n  score        the SVM's decision value, sum_i a_i exp(-gamma ||x - s_i||^2) - rho\n");
		else if (m->neighbours)
		{
			printf("\n  score        neighbour confidence, %d normal images in %d turns (%s), features",
				   m->nb.n, m->rotations, m->nb.bf16 ? "bfloat16" : "float");
			for (int t = 0; t < m->nb.ntaps; t++)
				printf("%s %d", t ? "," : "", m->nb.dim[t]);
			printf(" (orientation classifier, outputs %d x %d)\n", m->K, m->rotations);
		}
		else if (m->rotations > 1)
			printf("\n  score        orientation confidence, %d turns (classifier outputs %d x %d)\n",
				   m->rotations, m->K, m->rotations);
		else
			printf("\n  score        ODIN, T %g, eps %g (reference convention %g)\n", m->T, m->eps,
				   m->eps / CLAD_REFERENCE_EPS_FACTOR);
		printf("  threshold    %.6g, %d held-out normal confidences\n", m->threshold, m->n_calib);
		if (summary)
		{
			char	   *text = json_dumps(summary, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));

			if (!text)
				die("out of memory printing the summary");
			printf("  summary      %s\n", text);
			free(text);
		}
		else
			printf("  summary      (not JSON) %s\n", m->summary);
	}
	if (fflush(stdout) != 0)
		die("cannot write to stdout: %s", strerror(errno));
	json_decref(summary);
	clad_model_free(m);
	return 0;
}

/*
 * push: validate a model file here, then store it as a version (not a
 * training run) on --db and, under the same id, on every --shard.
 */
static int
cmd_push(const options *o)
{
	uint8_t    *buf;
	size_t		len;
	clad_model *m;
	int64_t		version;
	char		which[64];

	if (clad_read_file(o->model, &buf, &len) != CLAD_OK)
		die("%s", clad_last_error());
	if (clad_model_load(buf, len, &m) != CLAD_OK)
	{
		free(buf);
		die("%s is not a valid clad model: %s", o->model, clad_last_error());
	}
	clad_model_free(m);
	/* servers are named by position: a connection string may hold a password */
	version = push_to(o, o->db, "the --db server", buf, len, o->version_id, 0);
	for (int i = 0; i < o->n_shards; i++)
	{
		snprintf(which, sizeof(which), "--shard %d of %d", i + 1, o->n_shards);
		push_to(o, o->shards[i], which, buf, len, version, i + 1);
	}
	free(buf);
	printf("%lld\n", (long long) version);
	if (fflush(stdout) != 0)
		die("cannot write to stdout: %s", strerror(errno));
	return 0;
}

/*
 * score: each image file's confidence (neighbour, orientation or ODIN) and calibrated score, one image
 * per call as the extension's scalar functions score them (same decoding,
 * same model code), so the two can be compared.  A file that cannot be read
 * or decoded is reported and skipped; the exit status is then 1.
 */
static int
cmd_score(const options *o)
{
	clad_model *m = read_model(o->model);
	size_t		per = (size_t) m->C * m->H * m->W;
	float	   *px = malloc(per * sizeof(float));
	int			threads = 1, failed = 0;

	if (!px)
		die("out of memory");
	for (int i = 0; i < o->n_set; i++)
	{
		clad_train_config scratch;

		clad_train_defaults(&scratch);
		apply_knob(&knobs[o->set_knob[i]], o->set_arg[i], &scratch);
		threads = scratch.threads;
	}
	if (clad_blas_init(CLAD_BLAS_AUTO, threads) != CLAD_OK)
		die("%s", clad_last_error());
	if (clad_model_prepare_in(m, 1, o->precision) != CLAD_OK)
		die("cannot prepare the model: %s", clad_last_error());
	for (int i = 0; i < o->n_files; i++)
	{
		const char *f = o->files[i];
		uint8_t    *bytes;
		size_t		len;
		float		conf, score;

		if (clad_read_file(f, &bytes, &len) != CLAD_OK)
		{
			fprintf(stderr, "clad-train: %s\n", clad_last_error());
			failed++;
			continue;
		}
		if (clad_image_decode(bytes, len, m->C, m->H, m->W, SCORE_MAX_PIXELS, px) != CLAD_OK)
		{
			fprintf(stderr, "clad-train: %s: cannot decode the image: %s\n", f, clad_last_error());
			free(bytes);
			failed++;
			continue;
		}
		free(bytes);
		if (clad_model_score(m, px, 1, &conf, &score) != CLAD_OK)
			die("%s: scoring failed: %s", f, clad_last_error());
		printf("%s\t%.9g\t%.9g\n", f, (double) conf, (double) score);
	}
	if (fflush(stdout) != 0)
		die("cannot write to stdout: %s", strerror(errno));
	free(px);
	clad_model_free(m);
	if (failed)
	{
		fprintf(stderr, "clad-train: %d of %d images not scored\n", failed, o->n_files);
		return EXIT_RUNTIME;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	options		o;
	int			rc;

	parse_options(argc, argv, CLAD_VERSION, &o);
	catch_stop_signals();
	/*
	 * Training and eval: --threads N must not change a model or a metric.
	 * score keeps each product whole, as the extension does, so that it
	 * gives the server's floats.
	 */
	clad_sgemm_thread_independent(strcmp(o.command, "score") != 0);
	if (strcmp(o.command, "eval") == 0)
		rc = cmd_eval(&o);
	else if (strcmp(o.command, "info") == 0)
		rc = cmd_info(&o);
	else if (strcmp(o.command, "push") == 0)
		rc = cmd_push(&o);
	else if (strcmp(o.command, "score") == 0)
		rc = cmd_score(&o);
	else
		rc = cmd_train(&o);
	free(o.set_knob);
	free(o.set_arg);
	return rc;
}

/* tests/unit/test_metrics.c: trainer/metrics.c against scikit-learn, and by hand.
 *
 * Every metric of clad_ad_evaluate (AUROC, AUPR-in, AUPR-out, FPR at 95% TPR,
 * best F1, detection error) on the cases of tests/unit/metrics_reference.py, whose
 * values scikit-learn computed (the file the Makefile writes,
 * tests/build/metrics_reference.txt; another path as argv[1]).  The
 * definitions, and which scikit-learn call matches each, are written at the
 * top of that script: average precision (not the trapezoidal area) for the
 * two AUPRs, ties sharing one threshold, anomaly = positive with score >=
 * threshold flagged.  The two sides agree to rounding (1e-9 relative).
 *
 * Besides: a case worked by hand, invariances (input order, negating the
 * scores and swapping the classes), the refusals, and clad_threshold_at_tpr
 * against the exact answer computed in rationals by the script.
 */
#include "metrics.h"
#include "testutil.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REL_TOL 1e-9
#define ABS_TOL 1e-12

static const char *const metric_names[6] = {
	"auroc", "aupr_in", "aupr_out", "fpr_at_95tpr", "best_f1", "detection_error"
};

static void
as_array(const clad_ad_metrics *m, double v[6])
{
	v[0] = m->auroc;
	v[1] = m->aupr_in;
	v[2] = m->aupr_out;
	v[3] = m->fpr_at_95tpr;
	v[4] = m->best_f1;
	v[5] = m->detection_error;
}

static int
close_enough(double got, double want)
{
	return fabs(got - want) <= ABS_TOL + REL_TOL * fabs(want);
}

static int	n_cases, n_thresholds, n_values;

/* CHECK that also returns the condition (to skip what depends on it) */
#define CHECK_OK(cond, name) check_true((cond), (name), #cond, __LINE__)
static int
check_true(int ok, const char *name, const char *what, int line)
{
	test_checks++;
	if (!ok)
	{
		test_failures++;
		fprintf(stderr, "%s:%d: check failed: %s: %s: %s\n", __FILE__, line, what, name,
				clad_last_error());
	}
	return ok;
}

/* ------------------------------------------------------------ by hand */

/*
 * scores .9 .8 .7 .6 .5, anomalies at .9 and .7 (2 anomalies, 3 normals).
 * AUROC: .9 beats 3 normals, .7 beats 2 -> 5/6.
 * AUPR-out: .9 (P 1, R 1/2), .7 (P 2/3, R 1) -> 1/2 + 1/3 = 5/6.
 * AUPR-in (normals positive, ascending): .5 (P 1, R 1/3), .6 (P 1, R 2/3),
 *   .8 (P 3/4, R 1) -> 1/3 + 1/3 + 1/4 = 11/12.
 * F1: t=.9: P 1, R 1/2 -> 2/3; t=.7: P 2/3, R 1 -> 4/5 (best); t=.5: 4/7.
 * FPR at 95% TPR: TPR reaches 1 at t=.7 with 1 normal of 3 flagged -> 1/3.
 * Detection error: t=.7 -> (0 + 1/3) / 2 = 1/6.
 */
static void
test_by_hand(void)
{
	const float s[5] = {0.9f, 0.8f, 0.7f, 0.6f, 0.5f};
	const uint8_t y[5] = {1, 0, 1, 0, 0};
	const double want[6] = {5.0 / 6, 11.0 / 12, 5.0 / 6, 1.0 / 3, 0.8, 1.0 / 6};
	clad_ad_metrics m;
	double		got[6];

	CHECK(clad_ad_evaluate(s, y, 5, &m) == CLAD_OK);
	CHECK(m.n_anomaly == 2 && m.n_normal == 3);
	as_array(&m, got);
	for (int k = 0; k < 6; k++)
		CHECK_MSG(close_enough(got[k], want[k]), "by hand: %s %.17g, want %.17g",
				  metric_names[k], got[k], want[k]);

	/* the AUROC is not flipped when the scores rank the wrong way */
	{
		const float r[4] = {1, 2, 3, 4};
		const uint8_t ry[4] = {1, 1, 0, 0};

		CHECK(clad_ad_evaluate(r, ry, 4, &m) == CLAD_OK);
		CHECK_MSG(m.auroc == 0.0, "inverted AUROC %.17g, want 0", m.auroc);
	}
}

/* ------------------------------------------------------------ refusals */

static void
test_refusals(void)
{
	const float s[3] = {0.1f, 0.2f, 0.3f};
	const uint8_t y[3] = {0, 1, 0}, all0[3] = {0, 0, 0}, all1[3] = {1, 1, 1};
	float		bad[3] = {0.1f, 0.2f, 0.3f};
	clad_ad_metrics m;

	CHECK(clad_ad_evaluate(s, y, 0, &m) == CLAD_ERR_INVALID);
	CHECK(clad_ad_evaluate(s, all0, 3, &m) == CLAD_ERR_INVALID);
	CHECK(clad_ad_evaluate(s, all1, 3, &m) == CLAD_ERR_INVALID);
	CHECK_MSG(strstr(clad_last_error(), "normal and anomalous") != NULL, "message \"%s\"",
			  clad_last_error());
	bad[1] = NAN;
	CHECK(clad_ad_evaluate(bad, y, 3, &m) == CLAD_ERR_NUMERIC);
	bad[1] = INFINITY;
	CHECK(clad_ad_evaluate(bad, y, 3, &m) == CLAD_ERR_NUMERIC);
	bad[1] = -INFINITY;
	CHECK(clad_ad_evaluate(bad, y, 3, &m) == CLAD_ERR_NUMERIC);
	CHECK(clad_threshold_at_tpr(s, 0, 0.95) == 0.0f);
}

/* ------------------------------------------------------------ reference file */

static int
read_floats(FILE *f, float *v, int n)
{
	for (int i = 0; i < n; i++)
	{
		double		d;

		if (fscanf(f, "%lf", &d) != 1)
			return 0;
		v[i] = (float) d;		/* the script wrote the exact double of a float32 */
		if ((double) v[i] != d)
			return 0;
	}
	return 1;
}

/* One case: sklearn's values, then the invariances. */
static void
check_case(const char *name, const float *s, const uint8_t *y, int n, const double want[6])
{
	clad_ad_metrics m, m2;
	double		got[6], got2[6];
	float	   *s2 = malloc(sizeof(float) * n);
	uint8_t    *y2 = malloc(n);
	int			na = 0;

	for (int i = 0; i < n; i++)
		na += y[i];
	if (!CHECK_OK(clad_ad_evaluate(s, y, n, &m) == CLAD_OK, name))
		goto out;
	CHECK_MSG(m.n_anomaly == na && m.n_normal == n - na, "%s: counts %d/%d", name, m.n_anomaly,
			  m.n_normal);
	as_array(&m, got);
	for (int k = 0; k < 6; k++)
	{
		n_values++;
		CHECK_MSG(close_enough(got[k], want[k]), "%s: %s = %.17g, sklearn %.17g (diff %.3g)",
				  name, metric_names[k], got[k], want[k], got[k] - want[k]);
	}

	/* the order of the input does not matter (ties grouped): the same doubles */
	for (int i = 0; i < n; i++)
	{
		s2[i] = s[n - 1 - i];
		y2[i] = y[n - 1 - i];
	}
	if (CHECK_OK(clad_ad_evaluate(s2, y2, n, &m2) == CLAD_OK, name))
	{
		as_array(&m2, got2);
		CHECK_MSG(memcmp(got, got2, sizeof(got)) == 0, "%s: reversed input gives other values",
				  name);
	}

	/*
	 * scores negated and classes swapped: the same pairs, the same splits of
	 * the sorted scores, so the same AUROC and detection error, and AUPR-in
	 * and AUPR-out change places.
	 */
	for (int i = 0; i < n; i++)
	{
		s2[i] = -s[i];
		y2[i] = !y[i];
	}
	if (CHECK_OK(clad_ad_evaluate(s2, y2, n, &m2) == CLAD_OK, name))
	{
		CHECK_MSG(close_enough(m2.auroc, m.auroc), "%s: swapped AUROC %.17g vs %.17g", name,
				  m2.auroc, m.auroc);
		CHECK_MSG(close_enough(m2.detection_error, m.detection_error),
				  "%s: swapped detection error %.17g vs %.17g", name, m2.detection_error,
				  m.detection_error);
		CHECK_MSG(close_enough(m2.aupr_in, m.aupr_out) && close_enough(m2.aupr_out, m.aupr_in),
				  "%s: swapped AUPRs %.17g %.17g vs %.17g %.17g", name, m2.aupr_in, m2.aupr_out,
				  m.aupr_out, m.aupr_in);
	}
out:
	free(s2);
	free(y2);
}

static int
read_reference(const char *path)
{
	FILE	   *f = fopen(path, "r");
	char		tok[256], name[256];

	if (!f)
	{
		fprintf(stderr, "test_metrics: cannot open %s (make tests/build/metrics_reference.txt "
				"writes it with /usr/bin/python3 and python3-sklearn)\n", path);
		return 0;
	}
	while (fscanf(f, "%255s", tok) == 1)
	{
		if (tok[0] == '#')
		{
			int			c;

			while ((c = fgetc(f)) != EOF && c != '\n')
				;
			continue;
		}
		if (strcmp(tok, "end") == 0)
		{
			fclose(f);
			return 1;
		}
		if (strcmp(tok, "case") == 0)
		{
			int			n;
			float	   *s;
			uint8_t    *y;
			double		want[6];
			int			ok;

			if (fscanf(f, "%255s %d", name, &n) != 2 || n <= 0)
				break;
			s = malloc(sizeof(float) * n);
			y = malloc(n);
			ok = s && y && read_floats(f, s, n);
			for (int i = 0; ok && i < n; i++)
			{
				int			lab;

				ok = fscanf(f, "%d", &lab) == 1 && (lab == 0 || lab == 1);
				y[i] = (uint8_t) lab;
			}
			ok = ok && fscanf(f, "%255s", tok) == 1 && strcmp(tok, "want") == 0;
			for (int k = 0; ok && k < 6; k++)
				ok = fscanf(f, "%lf", &want[k]) == 1;
			if (ok)
			{
				check_case(name, s, y, n, want);
				n_cases++;
			}
			free(s);
			free(y);
			if (!ok)
				break;
			continue;
		}
		if (strcmp(tok, "threshold") == 0)
		{
			int			n;
			double		tpr, want;
			float	   *v, t;

			if (fscanf(f, "%255s %d %lf %lf", name, &n, &tpr, &want) != 4 || n <= 0)
				break;
			v = malloc(sizeof(float) * n);
			if (!v || !read_floats(f, v, n))
			{
				free(v);
				break;
			}
			t = clad_threshold_at_tpr(v, n, tpr);
			CHECK_MSG((double) t == want, "threshold %s (tpr %g): %.9g, want %.9g", name, tpr,
					  t, want);
			n_thresholds++;
			free(v);
			continue;
		}
		break;
	}
	fprintf(stderr, "test_metrics: %s is malformed near \"%s\" (after %d cases)\n", path, tok,
			n_cases);
	fclose(f);
	return 0;
}

/* Spearman's rank correlation, ties included (the values scipy.stats.spearmanr 1.10 gives). */
static void
test_spearman(void)
{
	const float a[6] = {0.1f, 0.4f, 0.4f, 0.2f, 0.9f, 0.3f}, b[6] = {1, 3, 2, 2, 5, 1};
	const float up[5] = {1, 2, 2, 3, 5}, down[5] = {5, 3, 3, 1, 0}, flat[5] = {2, 2, 2, 2, 2};
	float		squared[6];

	CHECK_MSG(fabs(clad_spearman(a, b, 6) - 0.8209869717864815) < 1e-12, "spearman %.17g",
			  clad_spearman(a, b, 6));
	CHECK(fabs(clad_spearman(b, a, 6) - 0.8209869717864815) < 1e-12);
	CHECK(fabs(clad_spearman(up, down, 5) + 1.0) < 1e-12);
	for (int i = 0; i < 6; i++)
		squared[i] = a[i] * a[i] * a[i];	/* a monotone change keeps every rank */
	CHECK(fabs(clad_spearman(a, squared, 6) - 1.0) < 1e-12);
	CHECK(clad_spearman(up, flat, 5) == 0.0);
}

int
main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : "tests/build/metrics_reference.txt";

	test_by_hand();
	test_refusals();
	test_spearman();
	CHECK_MSG(read_reference(path), "reading %s", path);
	CHECK_MSG(n_cases >= 40 && n_thresholds >= 50, "only %d cases and %d thresholds in %s",
			  n_cases, n_thresholds, path);
	printf("test_metrics: %d cases against scikit-learn (%d values: AUROC, AUPR-in, AUPR-out, "
		   "FPR at 95%% TPR, best F1, detection error), %d thresholds at a TPR\n",
		   n_cases, n_values, n_thresholds);
	return test_summary("test_metrics");
}

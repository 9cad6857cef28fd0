/* tests/unit/test_ocsvm_libsvm.c: the trainer's one-class SVM against libsvm itself.
 *
 * clad-train --method ocsvm trains libsvm on the fit split and keeps what it
 * learnt as a model file that core scores (core/ocsvm.c, a matrix product).
 * Here libsvm is trained again, independently, on the same fit images
 * (normalised with their statistics, gamma 1 / (features x variance)), and
 * its own decision values (svm_predict_values, in double) are the reference
 * for the model's confidences of unseen images: same support vectors, same
 * rho, same values within float rounding.  The model is calibrated on the
 * held-out images: its calibration is their confidences, sorted, and its
 * threshold one of them.  Also: a dataset of three channels, and libsvm models
 * that are not one-class RBF are refused.
 */
#include "baselines.h"
#include "gemm.h"
#include "testutil.h"

#include <libsvm/svm.h>

#include <math.h>
#include <string.h>

static void
silent(const char *s)
{
	(void) s;
}

/* n images of C x 8 x 8: two blobs (a bright left or right half) and noise. */
static clad_dataset
blobs(int n, int C, uint64_t seed)
{
	clad_dataset d = {0};
	size_t		img = (size_t) C * 64;

	d.n = n;
	d.C = C;
	d.H = d.W = 8;
	d.pixels = malloc(sizeof(float) * n * img);
	for (int i = 0; i < n; i++)
		for (size_t k = 0; k < img; k++)
		{
			int			col = (int) (k % 8);
			float		base = (i % 2 == 0) == (col < 4) ? 0.7f : 0.2f;

			d.pixels[i * img + k] = base + 0.25f * (float) (test_rand(&seed) >> 11) / 9007199254740992.0f - 0.125f;
		}
	return d;
}

static void
check_against_libsvm(int C)
{
	clad_train_config cfg;
	clad_dataset d = blobs(300, C, 7 + C), test = blobs(40, C, 99);
	clad_baseline *b = NULL;
	clad_train_log log;
	clad_model *m;
	size_t		plane = 64, feat = (size_t) C * plane;
	float	   *fit, *hold, mean[4], std[4], *anomaly = malloc(sizeof(float) * test.n);
	int			nfit, nh;
	double		s = 0, s2 = 0, var, coef_sum = 0;
	struct svm_problem prob;
	struct svm_parameter param;
	struct svm_node *nodes, *q = malloc(sizeof(struct svm_node) * (feat + 1));
	struct svm_model *svm;

	clad_train_defaults(&cfg);
	/* a few test images far from both blobs */
	for (int i = 0; i < 5; i++)
		for (size_t k = 0; k < feat; k++)
			test.pixels[i * feat + k] = (k % 3 == 0) ? 1.0f : 0.0f;
	CHECK(clad_baseline_train("ocsvm", &cfg, &d, NULL, NULL, &b, &log) == CLAD_OK);
	if (!b)
		exit(1);
	m = clad_baseline_model(b);
	CHECK(m->method == CLAD_METHOD_OCSVM && m->C == C && m->H == 8);
	CHECK(clad_baseline_score(b, test.pixels, test.n, anomaly) == CLAD_OK);

	/* the reference: libsvm on the same fit split, normalised with its statistics */
	CHECK(clad_train_split(&cfg, &d, &fit, &nfit, &hold, &nh) == CLAD_OK);
	CHECK(nh == 30 && nfit == 270 && log.n_fit == 270 && log.n_holdout == 30);
	clad_channel_stats(fit, nfit, C, plane, mean, std);
	nodes = malloc(sizeof(struct svm_node) * (feat + 1) * nfit);
	prob.l = nfit;
	prob.x = malloc(sizeof(*prob.x) * nfit);
	prob.y = malloc(sizeof(double) * nfit);
	for (int i = 0; i < nfit; i++)
	{
		prob.x[i] = nodes + (feat + 1) * i;
		prob.y[i] = 1;
		for (size_t k = 0; k < feat; k++)
		{
			double		v = (fit[i * feat + k] - mean[k / plane]) / std[k / plane];

			prob.x[i][k] = (struct svm_node) {(int) k + 1, (float) v};
			s += (float) v;
			s2 += (double) (float) v * (float) v;
		}
		prob.x[i][feat].index = -1;
	}
	var = s2 / ((double) nfit * feat) - pow(s / ((double) nfit * feat), 2);
	memset(&param, 0, sizeof(param));
	param.svm_type = ONE_CLASS;
	param.kernel_type = RBF;
	param.gamma = 1.0 / (feat * var);
	param.nu = cfg.ocsvm_nu;
	param.cache_size = 100;
	param.eps = 1e-3;
	param.shrinking = 1;
	svm_set_print_string_function(silent);
	svm = svm_train(&prob, &param);
	CHECK_MSG(svm->l == m->svm.n_sv, "libsvm %d support vectors, the model %d", svm->l, m->svm.n_sv);
	CHECK_MSG(fabs(svm->rho[0] - m->svm.rho) <= 1e-6 * fabs(svm->rho[0]), "rho %.9g, the model's %.9g",
			  svm->rho[0], m->svm.rho);
	CHECK(fabs(param.gamma - m->svm.gamma) <= 1e-6 * param.gamma);
	for (int i = 0; i < svm->l; i++)
		coef_sum += svm->sv_coef[0][i];
	/* nu x l: the dual's constraint */
	CHECK(fabs(coef_sum - cfg.ocsvm_nu * nfit) < 1e-6 * nfit);
	for (int i = 0; i < test.n; i++)
	{
		double		dec;

		for (size_t k = 0; k < feat; k++)
			q[k] = (struct svm_node) {(int) k + 1, (test.pixels[i * feat + k] - mean[k / plane]) / std[k / plane]};
		q[feat].index = -1;
		svm_predict_values(svm, q, &dec);
		CHECK_MSG(fabs(-anomaly[i] - dec) <= 2e-6 * coef_sum, "image %d: confidence %.9g, libsvm %.9g", i,
				  -anomaly[i], dec);
	}
	/* the far images are the least normal */
	for (int i = 0; i < 5; i++)
		for (int j = 5; j < test.n; j++)
			CHECK(anomaly[i] > anomaly[j]);
	/* calibrated on the held-out images: their confidences, sorted */
	{
		float	   *c = malloc(sizeof(float) * nh);
		int			found = 0;

		CHECK(m->n_calib == nh);
		CHECK(clad_model_score(m, hold, nh, c, NULL) == CLAD_OK);
		for (int i = 0; i < nh; i++)
		{
			int			at = 0;

			for (int j = 0; j < nh; j++)
				at += c[j] < c[i];
			CHECK(m->calib[at] == c[i]);
			found += m->threshold == c[i];
		}
		CHECK(found >= 1);
		free(c);
	}
	/* another kind of libsvm model is refused */
	{
		clad_model *other = NULL;

		svm->param.kernel_type = LINEAR;
		CHECK(clad_ocsvm_model_from_libsvm(svm, C, 8, 8, mean, std, &other) == CLAD_ERR_INVALID && !other);
		svm->param.kernel_type = RBF;
		svm->param.svm_type = NU_SVR;
		CHECK(clad_ocsvm_model_from_libsvm(svm, C, 8, 8, mean, std, &other) == CLAD_ERR_INVALID && !other);
	}
	svm_free_and_destroy_model(&svm);
	free(nodes);
	free(prob.x);
	free(prob.y);
	free(q);
	free(fit);
	free(hold);
	free(anomaly);
	clad_baseline_free(b);
	clad_train_log_free(&log);
	free(d.pixels);
	free(test.pixels);
}

int
main(void)
{
	if (clad_blas_init(CLAD_BLAS_AUTO, 1) != CLAD_OK)
		return 1;
	check_against_libsvm(1);
	check_against_libsvm(3);
	return test_summary("test_ocsvm_libsvm");
}

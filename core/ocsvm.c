/* core/ocsvm.c: the one-class SVM's confidence (ocsvm.h). */
#include "ocsvm.h"
#include "gemm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

clad_status
clad_ocsvm_init(clad_ocsvm *o, int n_sv, int dim, float gamma, float rho)
{
	memset(o, 0, sizeof(*o));
	if (n_sv < 1 || n_sv > (1 << 24) || dim < 1 || (size_t) n_sv * dim > ((size_t) 1 << 32))
		return clad_fail(CLAD_ERR_INVALID, "a one-class SVM of %d support vectors of %d values is out of range",
						 n_sv, dim);
	o->n_sv = n_sv;
	o->dim = dim;
	o->gamma = gamma;
	o->rho = rho;
	o->sv_owned = calloc((size_t) n_sv * dim, sizeof(float));
	o->coef = calloc(n_sv, sizeof(float));
	o->sv_sqnorm = calloc(n_sv, sizeof(float));
	o->sv = o->sv_owned;
	if (!o->sv_owned || !o->coef || !o->sv_sqnorm)
	{
		clad_ocsvm_free(o);
		return clad_fail(CLAD_ERR_NOMEM, "out of memory for %d support vectors", n_sv);
	}
	return CLAD_OK;
}

void
clad_ocsvm_borrow(clad_ocsvm *o, const float *sv)
{
	free(o->sv_owned);
	o->sv_owned = NULL;
	o->sv = sv;
}

clad_status
clad_ocsvm_check(clad_ocsvm *o)
{
	if (!(o->gamma > 0.0f) || !isfinite(o->gamma) || !isfinite(o->rho))
		return clad_fail(CLAD_ERR_FORMAT, "a one-class SVM needs a finite gamma > 0 and a finite rho");
	for (int i = 0; i < o->n_sv; i++)
	{
		const float *s = o->sv + (size_t) i * o->dim;
		double		sq = 0.0;

		if (!(o->coef[i] > 0.0f) || !isfinite(o->coef[i]))
			return clad_fail(CLAD_ERR_FORMAT, "one-class SVM coefficient %d is %g: each must be finite and positive",
							 i, o->coef[i]);
		for (int j = 0; j < o->dim; j++)
			sq += (double) s[j] * s[j];
		/* a sum of squares is finite when every element is (and not too large) */
		if (!isfinite(sq) || sq > 1e30)
			return clad_fail(CLAD_ERR_NUMERIC, "one-class SVM support vector %d holds NaN, infinity or "
							 "values too large", i);
		o->sv_sqnorm[i] = (float) sq;
	}
	return CLAD_OK;
}

clad_status
clad_ocsvm_confidence(clad_ocsvm *o, const float *x, int B, float *conf)
{
	int			n = o->n_sv;

	if (B < 1)
		return clad_fail(CLAD_ERR_INVALID, "batch size must be positive");
	if (B > o->dots_cap)
	{
		float	   *d = realloc(o->dots, sizeof(float) * (size_t) B * n);

		if (!d)
			return clad_fail(CLAD_ERR_NOMEM, "out of memory scoring %d images", B);
		o->dots = d;
		o->dots_cap = B;
	}
	/* dots (B, n) = x (B, dim) . sv^T */
	clad_sgemm(0, 1, B, n, o->dim, 1.0f, x, o->dim, o->sv, o->dim, 0.0f, o->dots, n);
	for (int b = 0; b < B; b++)
	{
		const float *xb = x + (size_t) b * o->dim, *dots = o->dots + (size_t) b * n;
		double		xx = 0.0, sum = 0.0;

		for (int j = 0; j < o->dim; j++)
			xx += (double) xb[j] * xb[j];
		for (int i = 0; i < n; i++)
		{
			double		d2 = xx + o->sv_sqnorm[i] - 2.0 * dots[i];

			/* rounding can take the distance of an image to itself below 0 */
			sum += o->coef[i] * exp(-(double) o->gamma * (d2 > 0.0 ? d2 : 0.0));
		}
		conf[b] = (float) (sum - o->rho);
	}
	return CLAD_OK;
}

void
clad_ocsvm_free(clad_ocsvm *o)
{
	free(o->sv_owned);
	free(o->coef);
	free(o->sv_sqnorm);
	free(o->dots);
	memset(o, 0, sizeof(*o));
}

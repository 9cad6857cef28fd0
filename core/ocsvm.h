/* core/ocsvm.h: the one-class SVM's confidence (Schoelkopf et al. 2001).
 *
 * A one-class SVM with an RBF kernel keeps n support vectors s_i of the
 * normal training images (normalised pixels, dim values each), their dual
 * coefficients a_i > 0, the kernel's gamma and the offset rho.  Its decision
 * value, clad's confidence (higher = more normal; >= 0 inside the learnt
 * region), is
 *     conf(x) = sum_i a_i exp(-gamma ||x - s_i||^2) - rho.
 * The squared distances of a batch come from one matrix product,
 *     ||x - s_i||^2 = ||x||^2 + ||s_i||^2 - 2 x.s_i,
 * (clad_sgemm, so OpenBLAS where it is loaded), the sums in double.
 */
#ifndef CLAD_OCSVM_H
#define CLAD_OCSVM_H

#include "status.h"

typedef struct clad_ocsvm
{
	int			n_sv;			/* support vectors */
	int			dim;			/* values of each (C x H x W) */
	float		gamma;			/* RBF kernel exp(-gamma ||x - y||^2) */
	float		rho;			/* the offset */
	const float *sv;			/* (n_sv, dim): sv_owned or borrowed bytes */
	float	   *sv_owned;
	float	   *coef;			/* (n_sv) dual coefficients */
	float	   *sv_sqnorm;		/* (n_sv) ||s_i||^2, from clad_ocsvm_check */
	float	   *dots;			/* scratch (B, n_sv) */
	int			dots_cap;		/* B it holds */
} clad_ocsvm;

/* Room for n_sv support vectors of dim values (zeros) and their coefficients. */
clad_status clad_ocsvm_init(clad_ocsvm *o, int n_sv, int dim, float gamma, float rho);

/* Score the support vectors where they lie (n_sv x dim floats, 4-byte aligned) instead of a copy. */
void		clad_ocsvm_borrow(clad_ocsvm *o, const float *sv);

/*
 * After the support vectors and coefficients are in place: checks that every
 * value is finite, the coefficients positive, gamma positive and rho finite,
 * and computes the vectors' squared lengths.  Must succeed before scoring.
 */
clad_status clad_ocsvm_check(clad_ocsvm *o);

/* x (B, dim) normalised images -> conf (B), the decision values above. */
clad_status clad_ocsvm_confidence(clad_ocsvm *o, const float *x, int B, float *conf);

void		clad_ocsvm_free(clad_ocsvm *o);

#endif

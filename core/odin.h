/* core/odin.h: input gradients and ODIN confidence (Liang et al. 2018).
 *
 * Convention: the perturbation is applied to the normalised input, with the
 * step eps as given (x' = x - eps * sign(dL/dx)); the reference code's extra
 * factor 50 / (79/255) is not applied, so its "eps 1e-4" corresponds to
 * eps = 0.0161 here.
 */
#ifndef CLAD_ODIN_H
#define CLAD_ODIN_H

#include "net.h"

/* Buffers ODIN reuses between calls, so scoring does not allocate per row. */
typedef struct clad_odin_work
{
	int			cap_B;
	float	   *dx;				/* (B, C*H*W) input gradient */
	float	   *xp;				/* (B, C*H*W) perturbed input */
	float	   *dlogits;		/* (B, K) */
	int32_t    *labels;			/* (B) */
} clad_odin_work;

void		clad_odin_work_free(clad_odin_work *w);

/*
 * The heart of ODIN, for a batch in eval mode: logits (B,K) of x and the
 * gradient dx (B,C,H,W) of CE(f(x)/T, labels) with respect to x.  With
 * labels NULL the predicted class (argmax of the logits) is used.  Only the
 * input gradient is computed; parameter gradients are not touched.
 */
clad_status clad_input_gradient(clad_net *clf, const float *x, int B, const int32_t *labels,
								float T, float *logits, float *dx, clad_odin_work *w);

/*
 * ODIN confidence: y^ = argmax f(x); x' = x - eps * sign(d CE(f(x)/T, y^) / dx);
 * conf = max softmax(f(x')/T).  With eps = 0 only one forward pass runs.
 * conf (B), pred (B) may be NULL, logits (B,K) may be NULL.
 */
clad_status clad_odin_confidence(clad_net *clf, const float *x, int B, float T, float eps,
								 float *conf, int32_t *pred, float *logits, clad_odin_work *w);

#endif

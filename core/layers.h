/* core/layers.h: forward and backward passes of every layer, losses and optimisers.
 *
 * Conventions (as llm.c): tensors are float32, NCHW, contiguous.  Argument
 * order is outputs, saved state, inputs, weights, sizes.  Backward passes
 * ACCUMULATE (+=) into input and parameter gradients, so gradients are zeroed
 * once per step; any gradient pointer may be NULL when it is not needed (the
 * work for it is then skipped).  An absent bias is NULL.  Shapes are in the
 * comment above each function.  Functions that need scratch memory take it
 * from the caller (see the *_scratch_floats helpers), so that no layer
 * allocates on the hot path.
 */
#ifndef CLAD_LAYERS_H
#define CLAD_LAYERS_H

#include "status.h"
#include "rng.h"

/* ---- convolution ---------------------------------------------------- */

/* Geometry of a 2-D convolution (or of the conv whose transpose is taken). */
typedef struct clad_conv_geom
{
	int			B, C, H, W;		/* input batch, channels, height, width */
	int			OC;				/* output channels */
	int			KH, KW, stride, pad;
	int			OH, OW;			/* output height, width */
	int			chunk;			/* images per GEMM (Conv2d only; 1 after init) */
} clad_conv_geom;

/* Fill g for a Conv2d and compute OH, OW; fails on non-positive or overflowing sizes. */
clad_status clad_conv_geom_init(clad_conv_geom *g, int B, int C, int H, int W, int OC,
								int KH, int KW, int stride, int pad);

/* Fill g for a ConvTranspose2d: input (B,C,H,W) -> output (B,OC,OH,OW),
 * OH = (H-1)*stride - 2*pad + KH. */
clad_status clad_convt_geom_init(clad_conv_geom *g, int B, int C, int H, int W, int OC,
								 int KH, int KW, int stride, int pad);

/*
 * Scratch floats the conv / conv-transpose functions need for g.  Conv2d
 * multiplies g->chunk images per GEMM, so that the weights are read once
 * per chunk rather than once per image; its scratch grows with the chunk.
 */
size_t		clad_conv_scratch_floats(const clad_conv_geom *g);
size_t		clad_convt_scratch_floats(const clad_conv_geom *g);

/* in (B,C,H,W), weight (OC,C,KH,KW), bias (OC) or NULL -> out (B,OC,OH,OW) */
void		clad_conv2d_forward(float *out, const float *in, const float *weight,
								const float *bias, const clad_conv_geom *g, float *scratch);

/* dout (B,OC,OH,OW) -> din (B,C,H,W), dweight (OC,C,KH,KW), dbias (OC); each may be NULL */
void		clad_conv2d_backward(float *din, float *dweight, float *dbias,
								 const float *dout, const float *in, const float *weight,
								 const clad_conv_geom *g, float *scratch);

/* in (B,C,H,W), weight (C,OC,KH,KW) as PyTorch's ConvTranspose2d, bias (OC) -> out (B,OC,OH,OW) */
void		clad_convt2d_forward(float *out, const float *in, const float *weight,
								 const float *bias, const clad_conv_geom *g, float *scratch);

/* dout (B,OC,OH,OW) -> din (B,C,H,W), dweight (C,OC,KH,KW), dbias (OC) */
void		clad_convt2d_backward(float *din, float *dweight, float *dbias,
								  const float *dout, const float *in, const float *weight,
								  const clad_conv_geom *g, float *scratch);

/* ---- linear --------------------------------------------------------- */

/* in (B,IN), weight (OUT,IN), bias (OUT) or NULL -> out (B,OUT) */
void		clad_linear_forward(float *out, const float *in, const float *weight,
								const float *bias, int B, int IN, int OUT);

/* dout (B,OUT) -> din (B,IN), dweight (OUT,IN), dbias (OUT) */
void		clad_linear_backward(float *din, float *dweight, float *dbias,
								 const float *dout, const float *in, const float *weight,
								 int B, int IN, int OUT);

/* ---- batch normalisation (BatchNorm2d: S = H*W; BatchNorm1d: S = 1) ---- */

/*
 * Training mode: normalise with the batch statistics over (B,S), save the
 * per-channel mean and 1/sqrt(var+eps) in save_mean/save_invstd (C), and
 * update running_mean/running_var (C) with momentum (PyTorch: 0.1; the
 * running variance uses the unbiased estimate).  B*S must be > 1.
 * in (B,C,S), gamma/beta (C) -> out (B,C,S)
 */
void		clad_batchnorm_forward_train(float *out, float *save_mean, float *save_invstd,
										 const float *in, const float *gamma, const float *beta,
										 float *running_mean, float *running_var,
										 int B, int C, int S, float momentum, float eps);

/* dout (B,C,S) -> din, dgamma, dbeta, with the batch statistics saved by forward */
void		clad_batchnorm_backward_train(float *din, float *dgamma, float *dbeta,
										  const float *dout, const float *in,
										  const float *save_mean, const float *save_invstd,
										  const float *gamma, int B, int C, int S);

/* Eval mode: in (B,C,S) normalised with running statistics -> out (B,C,S) */
void		clad_batchnorm_forward_eval(float *out, const float *in, const float *gamma,
										const float *beta, const float *running_mean,
										const float *running_var, int B, int C, int S, float eps);

/* Eval mode backward: dout (B,C,S) -> din, dgamma, dbeta */
void		clad_batchnorm_backward_eval(float *din, float *dgamma, float *dbeta,
										 const float *dout, const float *in, const float *gamma,
										 const float *running_mean, const float *running_var,
										 int B, int C, int S, float eps);

/* ---- elementwise activations (n elements); backward uses the saved output ---- */

void		clad_relu_forward(float *out, const float *in, size_t n);
void		clad_relu_backward(float *din, const float *dout, const float *out, size_t n);
/* ELU with alpha = 1 */
void		clad_elu_forward(float *out, const float *in, size_t n);
/* e^x - 1 as clad_elu_forward computes it for x <= 0 (within 1 ulp of expm1) */
float		clad_expm1_nonpositive(float x);
void		clad_elu_backward(float *din, const float *dout, const float *out, size_t n);
void		clad_sigmoid_forward(float *out, const float *in, size_t n);
void		clad_sigmoid_backward(float *din, const float *dout, const float *out, size_t n);

/* Dropout (training): mask (n) gets 0 or 1/(1-p) from rng; out = in * mask */
void		clad_dropout_forward(float *out, float *mask, const float *in, size_t n,
								 float p, clad_rng *rng);
/* The mask alone (the device draws it on the host, from the same stream) */
void		clad_dropout_mask(float *mask, size_t n, float p, clad_rng *rng);
void		clad_dropout_backward(float *din, const float *dout, const float *mask, size_t n);

/* ---- pooling -------------------------------------------------------- */

/* Geometry of a max pool: k x k window, stride, padding (padded cells never win). */
typedef struct clad_pool_geom
{
	int			B, C, H, W, k, stride, pad, OH, OW;
} clad_pool_geom;

clad_status clad_pool_geom_init(clad_pool_geom *g, int B, int C, int H, int W,
								int k, int stride, int pad);

/* in (B,C,H,W) -> out (B,C,OH,OW), argmax (B,C,OH,OW) index into the input plane
 * (argmax may be NULL at inference) */
void		clad_maxpool_forward(float *out, int32_t *argmax, const float *in, const clad_pool_geom *g);

/* dout (B,C,OH,OW) -> din (B,C,H,W) through the saved argmax */
void		clad_maxpool_backward(float *din, const float *dout, const int32_t *argmax,
								  const clad_pool_geom *g);

/* Adaptive average pooling to 1x1: in (B,C,S) -> out (B,C) */
void		clad_avgpool_forward(float *out, const float *in, int B, int C, int S);
void		clad_avgpool_backward(float *din, const float *dout, int B, int C, int S);

/* ---- losses (each returns the loss and, when grad is non-NULL, accumulates its gradient) ---- */

/* mean over n of (pred - target)^2; grad (n) wrt pred */
float		clad_mse_loss(float *grad, const float *pred, const float *target, size_t n);

/*
 * Cross-entropy of softmax(logits / T) against integer labels, mean over B.
 * logits (B,K), labels (B) -> grad (B,K) wrt the logits (before the division by T).
 * Labels outside [0,K) give NaN.
 */
float		clad_cross_entropy_loss(float *grad, const float *logits, const int32_t *labels,
									int B, int K, float T);

/* Index of the first largest of v[0..K) (K >= 1). */
int			clad_argmax(const float *v, int K);

/* softmax(logits / T) row-wise: logits (B,K) -> probs (B,K) */
void		clad_softmax(float *probs, const float *logits, int B, int K, float T);

/*
 * DEC (Xie et al. 2016) Student-t soft assignment:
 * z (B,D), centers (K,D) -> q (B,K), q_ij ~ (1 + |z_i - mu_j|^2 / alpha)^(-(alpha+1)/2)
 */
void		clad_dec_soft_assign(float *q, const float *z, const float *centers,
								 int B, int K, int D, float alpha);

/* DEC target: p_ij = (q_ij^2 / f_j) normalised over j, f_j = sum_i q_ij. q (B,K) -> p (B,K) */
void		clad_dec_target(float *p, const float *q, int B, int K);

/*
 * KL(P || Q) summed over (i,j) and divided by B, with P a constant target.
 * z (B,D), centers (K,D), p (B,K) -> dz (B,D), dcenters (K,D) (each may be NULL)
 */
float		clad_dec_kl_loss(float *dz, float *dcenters, const float *z, const float *centers,
							 const float *p, int B, int K, int D, float alpha);

/* Deep SVDD: mean over B rows of |z_i - c|^2 (the difference in float). z (B,D), c (D) -> grad (B,D) */
float		clad_svdd_loss(float *grad, const float *z, const float *c, int B, int D);

/* ---- optimisers (PyTorch semantics), one flat loop over n parameters ---- */

typedef struct clad_adam
{
	float		lr, beta1, beta2, eps, weight_decay;
	long		step;			/* steps taken so far */
} clad_adam;

/*
 * Count a step and return its scalars: *step_size = lr / (1 - beta1^t),
 * *bc2_sqrt = sqrt(1 - beta2^t) (clad_adam_step does this first).
 */
void		clad_adam_next(clad_adam *opt, float *step_size, float *bc2_sqrt);

/* param, grad, m, v all (n); increments opt->step first */
void		clad_adam_step(clad_adam *opt, float *param, const float *grad,
						   float *m, float *v, size_t n);

typedef struct clad_sgd
{
	float		lr, momentum, weight_decay;
	long		step;
} clad_sgd;

/* param, grad, momentum buffer (n); the first step sets buf = grad, as PyTorch */
void		clad_sgd_step(clad_sgd *opt, float *param, const float *grad, float *buf, size_t n);

#endif

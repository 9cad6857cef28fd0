/* core/device_layers.c: the layers as kernels and GEMMs on a device.
 *
 * Convolutions are im2col + one GEMM per chunk of images, with the images
 * of a chunk side by side in the GEMM's columns: cols (C*KH*KW, nb*OH*OW).
 * The product comes out channel-major (OC, nb, OH*OW) and is permuted back
 * to NCHW.  Chunks keep the column buffer under DEV_CHUNK_FLOATS.
 * Channel sums (biases, BatchNorm) are two-stage reductions in double.
 */
#include "device_layers.h"

#include <string.h>

/* Column buffers up to 64M floats (256 MB) per convolution chunk. */
#define DEV_CHUNK_FLOATS ((size_t) 64 << 20)
/* Slices of a channel reduction: enough threads to fill a GPU for small C. */
#define REDUCE_SLICES 256

/* Launch kernel k over n indices; nothing for n = 0. */
static void
run(clad_device *dev, clad_kernel k, size_t n, const clad_kargs *a)
{
	if (n > 0)
		dev->ops->launch(dev, k, n, a);
}

void
clad_dev_run(clad_device *dev, clad_kernel k, size_t n, const clad_kargs *a)
{
	run(dev, k, n, a);
}

/* Slices of a channel reduction over B*S values. */
static size_t
slices(int B, size_t S)
{
	size_t		n = (size_t) B * S;

	return n < REDUCE_SLICES ? n : REDUCE_SLICES;
}

size_t
clad_dev_sum_partials(int B, int C, size_t S)
{
	return (size_t) C * slices(B, S);
}

void
clad_dev_channel_sum(clad_device *dev, double *res, double *part, int mode, const float *x, const float *y,
			const float *mf, const float *sf, const double *md, int B, int C, size_t S, double dn)
{
	clad_kargs	a;

	memset(&a, 0, sizeof(a));
	a.x = x;
	a.y = y;
	a.mf = mf;
	a.sf = sf;
	a.md = md;
	a.B = B;
	a.C = C;
	a.S = S;
	a.P = slices(B, S);
	a.mode = mode;
	a.dres = part;
	run(dev, K_REDUCE_PARTIAL, (size_t) C * a.P, &a);
	a.dsrc = part;
	a.dres = res;
	a.dn = dn;
	run(dev, K_REDUCE_FINISH, (size_t) C, &a);
}

/* dbias (C) += per-channel sums of d (B,C,S); scratch: C*(P+1) doubles */
static void
add_channel_sums(clad_device *dev, float *dbias, const float *d, int B, int C, size_t S, double *scratch)
{
	clad_kargs	a;
	double	   *res = scratch, *part = scratch + C;

	clad_dev_channel_sum(dev, res, part, 0, d, NULL, NULL, NULL, NULL, B, C, S, 1.0);
	memset(&a, 0, sizeof(a));
	a.out2 = dbias;
	a.dsrc = res;
	run(dev, K_BN_PARAM_GRADS, (size_t) C, &a);
}

/* The k_im2col / k_col2im geometry of an image (B,C,H,W) under a window over an OH x OW grid. */
static clad_kargs
window_args(int B, int C, int H, int W, int K, int stride, int pad, int OH, int OW)
{
	clad_kargs	a;

	memset(&a, 0, sizeof(a));
	a.B = B;
	a.C = C;
	a.H = H;
	a.W = W;
	a.KH = K;
	a.KW = K;
	a.stride = stride;
	a.pad = pad;
	a.OH = OH;
	a.OW = OW;
	return a;
}

/* out <- x between (B, C, S) and the GEMM's channel-major layout, kernel k (bias added, acc: accumulated). */
static void
permute(clad_device *dev, clad_kernel k, float *out, const float *x, const float *bias, int acc,
		int B, int C, size_t S)
{
	clad_kargs	a;

	memset(&a, 0, sizeof(a));
	a.out = out;
	a.x = x;
	a.y = bias;
	a.acc = acc;
	a.B = B;
	a.C = C;
	a.S = S;
	run(dev, k, (size_t) B * C * S, &a);
}

/* Images per chunk when each costs per_image scratch floats. */
static int
chunk_images(size_t per_image, int B)
{
	size_t		nb = per_image ? DEV_CHUNK_FLOATS / per_image : (size_t) B;

	if (nb < 1)
		nb = 1;
	return nb > (size_t) B ? B : (int) nb;
}

/* scratch floats per image of a conv: columns and the channel-major product (or input) */
static size_t
conv_per_image(const clad_conv_geom *g, int transposed)
{
	if (!transposed)
		return ((size_t) g->C * g->KH * g->KW + g->OC) * g->OH * g->OW;
	return ((size_t) g->OC * g->KH * g->KW + g->C) * g->H * g->W;
}

size_t
clad_dev_scratch_floats(clad_dev_layer kind, const clad_conv_geom *g, int B, int C, size_t S)
{
	switch (kind)
	{
		case CLAD_DEV_CONV:
		case CLAD_DEV_CONVT:
			{
				size_t		per = conv_per_image(g, kind == CLAD_DEV_CONVT);
				size_t		cols = per * chunk_images(per, g->B);
				/* the bias gradient's reduction over (B, OC, OH*OW), in doubles */
				size_t		red = 2 * ((size_t) g->OC + clad_dev_sum_partials(g->B, g->OC, (size_t) g->OH * g->OW));

				return (cols > red ? cols : red) + 2;
			}
		case CLAD_DEV_BN:
			/* partial sums, mean, two sums (doubles), then C floats of inverse std */
			return 2 * (clad_dev_sum_partials(B, C, S) + 3 * (size_t) C) + C + 2;
		case CLAD_DEV_LINEAR:
			return 2 * ((size_t) C + clad_dev_sum_partials(B, C, 1)) + 2;
	}
	return 0;
}

void
clad_dev_conv2d_forward(clad_device *dev, float *out, const float *in, const float *weight,
						const float *bias, const clad_conv_geom *g, float *scratch)
{
	size_t		P = (size_t) g->OH * g->OW, CKK = (size_t) g->C * g->KH * g->KW;
	int			nb = chunk_images(conv_per_image(g, 0), g->B);

	for (int b0 = 0; b0 < g->B; b0 += nb)
	{
		int			n = g->B - b0 < nb ? g->B - b0 : nb;
		int			N = (int) (n * P);
		float	   *cols = scratch, *prod = scratch + CKK * N;
		clad_kargs	a = window_args(n, g->C, g->H, g->W, g->KH, g->stride, g->pad, g->OH, g->OW);

		a.x = in + (size_t) b0 * g->C * g->H * g->W;
		a.out = cols;
		a.KW = g->KW;
		run(dev, K_IM2COL, CKK * N, &a);
		/* prod (OC, n*P) = W (OC, CKK) cols (CKK, n*P) */
		dev->ops->gemm(dev, 0, 0, g->OC, N, (int) CKK, 1.0f, weight, (int) CKK, cols, N, 0.0f, prod, N);
		permute(dev, K_FROM_CBS, out + (size_t) b0 * g->OC * P, prod, bias, 0, n, g->OC, P);
	}
}

void
clad_dev_conv2d_backward(clad_device *dev, float *din, float *dweight, float *dbias,
						 const float *dout, const float *in, const float *weight,
						 const clad_conv_geom *g, float *scratch)
{
	size_t		P = (size_t) g->OH * g->OW, CKK = (size_t) g->C * g->KH * g->KW;
	int			nb = chunk_images(conv_per_image(g, 0), g->B);

	if (dbias)
		add_channel_sums(dev, dbias, dout, g->B, g->OC, P, (double *) scratch);
	if (!din && !dweight)
		return;
	for (int b0 = 0; b0 < g->B; b0 += nb)
	{
		int			n = g->B - b0 < nb ? g->B - b0 : nb;
		int			N = (int) (n * P);
		float	   *cols = scratch, *dt = scratch + CKK * N;
		clad_kargs	a = window_args(n, g->C, g->H, g->W, g->KH, g->stride, g->pad, g->OH, g->OW);

		a.KW = g->KW;
		/* dt (OC, n*P): this chunk's output gradient channel-major */
		permute(dev, K_TO_CBS, dt, dout + (size_t) b0 * g->OC * P, NULL, 0, n, g->OC, P);
		if (dweight)
		{
			a.x = in + (size_t) b0 * g->C * g->H * g->W;
			a.out = cols;
			run(dev, K_IM2COL, CKK * N, &a);
			/* dW (OC, CKK) += dt (OC, n*P) cols^T (n*P, CKK) */
			dev->ops->gemm(dev, 0, 1, g->OC, (int) CKK, N, 1.0f, dt, N, cols, N, 1.0f, dweight, (int) CKK);
		}
		if (din)
		{
			/* cols (CKK, n*P) = W^T (CKK, OC) dt (OC, n*P), then back onto the image */
			dev->ops->gemm(dev, 1, 0, (int) CKK, N, g->OC, 1.0f, weight, (int) CKK, dt, N, 0.0f, cols, N);
			a.x = cols;
			a.out = din + (size_t) b0 * g->C * g->H * g->W;
			a.acc = 1;
			run(dev, K_COL2IM, (size_t) n * g->C * g->H * g->W, &a);
		}
	}
}

void
clad_dev_convt2d_forward(clad_device *dev, float *out, const float *in, const float *weight,
						 const float *bias, const clad_conv_geom *g, float *scratch)
{
	size_t		P = (size_t) g->H * g->W, OKK = (size_t) g->OC * g->KH * g->KW;
	int			nb = chunk_images(conv_per_image(g, 1), g->B);

	for (int b0 = 0; b0 < g->B; b0 += nb)
	{
		int			n = g->B - b0 < nb ? g->B - b0 : nb;
		int			N = (int) (n * P);
		float	   *cols = scratch, *it = scratch + OKK * N;
		/* the output is the image of a conv whose output grid is this input */
		clad_kargs	a = window_args(n, g->OC, g->OH, g->OW, g->KH, g->stride, g->pad, g->H, g->W);

		a.KW = g->KW;
		permute(dev, K_TO_CBS, it, in + (size_t) b0 * g->C * P, NULL, 0, n, g->C, P);
		/* cols (OKK, n*P) = W^T (OKK, C) it (C, n*P) */
		dev->ops->gemm(dev, 1, 0, (int) OKK, N, g->C, 1.0f, weight, (int) OKK, it, N, 0.0f, cols, N);
		a.x = cols;
		a.out = out + (size_t) b0 * g->OC * g->OH * g->OW;
		run(dev, K_COL2IM, (size_t) n * g->OC * g->OH * g->OW, &a);
	}
	if (bias)
	{
		clad_kargs	a;

		memset(&a, 0, sizeof(a));
		a.out = out;
		a.y = bias;
		a.C = g->OC;
		a.S = (size_t) g->OH * g->OW;
		run(dev, K_ADD_CHANNEL, (size_t) g->B * g->OC * a.S, &a);
	}
}

void
clad_dev_convt2d_backward(clad_device *dev, float *din, float *dweight, float *dbias,
						  const float *dout, const float *in, const float *weight,
						  const clad_conv_geom *g, float *scratch)
{
	size_t		P = (size_t) g->H * g->W, OKK = (size_t) g->OC * g->KH * g->KW;
	int			nb = chunk_images(conv_per_image(g, 1), g->B);

	if (dbias)
		add_channel_sums(dev, dbias, dout, g->B, g->OC, (size_t) g->OH * g->OW, (double *) scratch);
	if (!din && !dweight)
		return;
	for (int b0 = 0; b0 < g->B; b0 += nb)
	{
		int			n = g->B - b0 < nb ? g->B - b0 : nb;
		int			N = (int) (n * P);
		float	   *dcols = scratch, *it = scratch + OKK * N;
		clad_kargs	a = window_args(n, g->OC, g->OH, g->OW, g->KH, g->stride, g->pad, g->H, g->W);

		a.KW = g->KW;
		a.x = dout + (size_t) b0 * g->OC * g->OH * g->OW;
		a.out = dcols;
		run(dev, K_IM2COL, OKK * N, &a);
		if (dweight)
		{
			permute(dev, K_TO_CBS, it, in + (size_t) b0 * g->C * P, NULL, 0, n, g->C, P);
			/* dW (C, OKK) += it (C, n*P) dcols^T (n*P, OKK) */
			dev->ops->gemm(dev, 0, 1, g->C, (int) OKK, N, 1.0f, it, N, dcols, N, 1.0f, dweight, (int) OKK);
		}
		if (din)
		{
			/* it (C, n*P) = W (C, OKK) dcols (OKK, n*P), added back in NCHW */
			dev->ops->gemm(dev, 0, 0, g->C, N, (int) OKK, 1.0f, weight, (int) OKK, dcols, N, 0.0f, it, N);
			permute(dev, K_FROM_CBS, din + (size_t) b0 * g->C * P, it, NULL, 1, n, g->C, P);
		}
	}
}

void
clad_dev_linear_forward(clad_device *dev, float *out, const float *in, const float *weight,
						const float *bias, int B, int IN, int OUT)
{
	/* out (B, OUT) = in (B, IN) W^T (IN, OUT) (+ bias) */
	dev->ops->gemm(dev, 0, 1, B, OUT, IN, 1.0f, in, IN, weight, IN, 0.0f, out, OUT);
	if (bias)
	{
		clad_kargs	a;

		memset(&a, 0, sizeof(a));
		a.out = out;
		a.y = bias;
		a.C = OUT;
		a.S = 1;
		run(dev, K_ADD_CHANNEL, (size_t) B * OUT, &a);
	}
}

void
clad_dev_linear_backward(clad_device *dev, float *din, float *dweight, float *dbias,
						 const float *dout, const float *in, const float *weight,
						 int B, int IN, int OUT, float *scratch)
{
	if (dbias)
		add_channel_sums(dev, dbias, dout, B, OUT, 1, (double *) scratch);
	if (dweight)
		dev->ops->gemm(dev, 1, 0, OUT, IN, B, 1.0f, dout, OUT, in, IN, 1.0f, dweight, IN);
	if (din)
		dev->ops->gemm(dev, 0, 0, B, IN, OUT, 1.0f, dout, OUT, weight, IN, 1.0f, din, IN);
}

/* BatchNorm's scratch: mean, s1, s2 (C doubles each), partial sums, then C floats */
typedef struct bn_scratch
{
	double	   *mean, *s1, *s2, *part;
	float	   *invstd;
} bn_scratch;

/* Carve BatchNorm's scratch for (B, C, S). */
static bn_scratch
bn_scratch_of(float *scratch, int B, int C, size_t S)
{
	bn_scratch	s;
	double	   *d = (double *) scratch;

	s.mean = d;
	s.s1 = d + C;
	s.s2 = d + 2 * (size_t) C;
	s.part = d + 3 * (size_t) C;
	s.invstd = (float *) (s.part + clad_dev_sum_partials(B, C, S));
	return s;
}

void
clad_dev_batchnorm_forward_train(clad_device *dev, float *out, float *save_mean, float *save_invstd,
								 const float *in, const float *gamma, const float *beta,
								 float *running_mean, float *running_var,
								 int B, int C, int S, float momentum, float eps, float *scratch)
{
	bn_scratch	s = bn_scratch_of(scratch, B, C, S);
	double		n = (double) B * S;
	clad_kargs	a;

	clad_dev_channel_sum(dev, s.mean, s.part, 0, in, NULL, NULL, NULL, NULL, B, C, S, n);
	clad_dev_channel_sum(dev, s.s1, s.part, 1, in, NULL, NULL, NULL, s.mean, B, C, S, 1.0);
	memset(&a, 0, sizeof(a));
	a.out = save_mean;
	a.out2 = save_invstd;
	a.out3 = running_mean;
	a.out4 = running_var;
	a.md = s.mean;
	a.dsrc = s.s1;
	a.dn = n;
	a.f[0] = momentum;
	a.f[1] = eps;
	a.C = C;
	run(dev, K_BN_TRAIN_STATS, (size_t) C, &a);
	memset(&a, 0, sizeof(a));
	a.out = out;
	a.x = in;
	a.md = s.mean;
	a.sf = save_invstd;
	a.gamma = gamma;
	a.beta = beta;
	a.C = C;
	a.S = S;
	run(dev, K_BN_TRAIN_APPLY, (size_t) B * C * S, &a);
}

/* dgamma += sum dy*xhat, dbeta += sum dy, from s1 = sum dy and s2 = sum dy*xhat */
static void
bn_param_grads(clad_device *dev, float *dgamma, float *dbeta, const bn_scratch *s, int C)
{
	clad_kargs	a;

	if (!dgamma && !dbeta)
		return;
	memset(&a, 0, sizeof(a));
	a.out = dgamma;
	a.out2 = dbeta;
	a.dsrc = s->s1;
	a.dsrc2 = s->s2;
	run(dev, K_BN_PARAM_GRADS, (size_t) C, &a);
}

void
clad_dev_batchnorm_backward_train(clad_device *dev, float *din, float *dgamma, float *dbeta,
								  const float *dout, const float *in, const float *save_mean,
								  const float *save_invstd, const float *gamma,
								  int B, int C, int S, float *scratch)
{
	bn_scratch	s = bn_scratch_of(scratch, B, C, S);
	clad_kargs	a;

	clad_dev_channel_sum(dev, s.s1, s.part, 0, dout, NULL, NULL, NULL, NULL, B, C, S, 1.0);
	clad_dev_channel_sum(dev, s.s2, s.part, 2, dout, in, save_mean, save_invstd, NULL, B, C, S, 1.0);
	bn_param_grads(dev, dgamma, dbeta, &s, C);
	if (!din)
		return;
	memset(&a, 0, sizeof(a));
	a.out = din;
	a.x = dout;
	a.y = in;
	a.mf = save_mean;
	a.sf = save_invstd;
	a.gamma = gamma;
	a.dsrc = s.s1;
	a.dsrc2 = s.s2;
	a.dn = (double) B * S;
	a.C = C;
	a.S = S;
	run(dev, K_BN_TRAIN_DIN, (size_t) B * C * S, &a);
}

/* invstd (C) = 1 / sqrt(running_var + eps). */
static void
bn_eval_invstd(clad_device *dev, float *invstd, const float *running_var, int C, float eps)
{
	clad_kargs	a;

	memset(&a, 0, sizeof(a));
	a.out = invstd;
	a.y = running_var;
	a.f[0] = eps;
	run(dev, K_BN_EVAL_INVSTD, (size_t) C, &a);
}

void
clad_dev_batchnorm_forward_eval(clad_device *dev, float *out, const float *in, const float *gamma,
								const float *beta, const float *running_mean, const float *running_var,
								int B, int C, int S, float eps, float *scratch)
{
	bn_scratch	s = bn_scratch_of(scratch, B, C, S);
	clad_kargs	a;

	bn_eval_invstd(dev, s.invstd, running_var, C, eps);
	memset(&a, 0, sizeof(a));
	a.out = out;
	a.x = in;
	a.mf = running_mean;
	a.sf = s.invstd;
	a.gamma = gamma;
	a.beta = beta;
	a.C = C;
	a.S = S;
	run(dev, K_BN_EVAL_APPLY, (size_t) B * C * S, &a);
}

void
clad_dev_batchnorm_backward_eval(clad_device *dev, float *din, float *dgamma, float *dbeta,
								 const float *dout, const float *in, const float *gamma,
								 const float *running_mean, const float *running_var,
								 int B, int C, int S, float eps, float *scratch)
{
	bn_scratch	s = bn_scratch_of(scratch, B, C, S);
	clad_kargs	a;

	bn_eval_invstd(dev, s.invstd, running_var, C, eps);
	if (dgamma || dbeta)
	{
		clad_dev_channel_sum(dev, s.s1, s.part, 0, dout, NULL, NULL, NULL, NULL, B, C, S, 1.0);
		clad_dev_channel_sum(dev, s.s2, s.part, 2, dout, in, running_mean, s.invstd, NULL, B, C, S, 1.0);
		bn_param_grads(dev, dgamma, dbeta, &s, C);
	}
	if (!din)
		return;
	memset(&a, 0, sizeof(a));
	a.out = din;
	a.x = dout;
	a.sf = s.invstd;
	a.gamma = gamma;
	a.C = C;
	a.S = S;
	run(dev, K_BN_EVAL_DIN, (size_t) B * C * S, &a);
}

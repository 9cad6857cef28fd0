/* core/device_kernels.h: the per-element bodies of every device kernel.
 *
 * A device runs a kernel as "for every index i in [0, n): body(i, args)".
 * The bodies are written once, here, in the common subset of C11 and CUDA
 * C++: the CUDA backend (core/cuda/device_cuda.cu) wraps each in a
 * grid-stride __global__ function, and the emulated device (core/device.c)
 * calls them in a plain loop.  So every line of the device's arithmetic is
 * exercised by the CPU tests (tests/unit/test_device.c) against the CPU layers,
 * on machines without a GPU; only the launch and cuBLAS calls are CUDA's own.
 *
 * Every body writes only elements it owns (index i, or the row/channel i
 * names): no atomics, no races, the same sums in the same order on every run.
 * Reductions over a channel are two kernels: REDUCE_PARTIAL sums P strided
 * slices in double, REDUCE_FINISH adds the P partial sums.
 *
 * Rounding: nvcc contracts a*b + c into one fused multiply-add wherever it
 * can (its default, kept: it is what a GPU computes), so a GPU rounds these
 * bodies differently from a plain C build in the last bits.  Nothing here
 * depends on a particular rounding, and tests/unit/test_device.c's bounds are
 * derived from each operation; make check runs it a second time with the
 * emulated device built with contraction (tests/build/fma/test_device).
 */
#ifndef CLAD_DEVICE_KERNELS_H
#define CLAD_DEVICE_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __CUDACC__
#define CLAD_KFN static __device__ inline
#else
#include <math.h>
#include <string.h>
#define CLAD_KFN static inline
#endif

/*
 * The arguments of any kernel (passed by value to a CUDA kernel: keep it
 * well under CUDA's 4 KB of parameters).  Each kernel's comment says which
 * fields it reads.
 */
typedef struct clad_kargs
{
	float	   *out, *out2, *out3, *out4;	/* written, or accumulated into when acc */
	const float *x, *y, *w;		/* inputs */
	const float *mf, *sf;		/* per-channel float mean and inverse std */
	const float *gamma, *beta;	/* BatchNorm affine parameters (NULL: 1 and 0) */
	const double *md;			/* per-channel double mean */
	const double *dsrc, *dsrc2; /* double inputs (partial sums, channel sums) */
	double	   *dres, *dres2;	/* double outputs */
	const int32_t *idx;			/* max-pool winners */
	int32_t    *idx_out;
	/* image (B,C,H,W), window KH x KW, stride, pad, conv output grid OH x OW */
	int			B, C, H, W, KH, KW, stride, pad, OH, OW;
	size_t		S;				/* elements per (image, channel) */
	size_t		P;				/* slices of a partial reduction */
	int			acc;			/* add into out instead of writing it */
	int			mode;			/* kernel-specific choice */
	double		dn;				/* a double divisor */
	float		f[8];			/* scalars */
} clad_kargs;

/* The kernels: X(ENUM_NAME, body_function). */
#define CLAD_KERNEL_LIST(X) \
	X(K_IM2COL, k_im2col) \
	X(K_COL2IM, k_col2im) \
	X(K_TO_CBS, k_to_cbs) \
	X(K_FROM_CBS, k_from_cbs) \
	X(K_ADD_CHANNEL, k_add_channel) \
	X(K_REDUCE_PARTIAL, k_reduce_partial) \
	X(K_REDUCE_FINISH, k_reduce_finish) \
	X(K_BN_TRAIN_STATS, k_bn_train_stats) \
	X(K_BN_TRAIN_APPLY, k_bn_train_apply) \
	X(K_BN_PARAM_GRADS, k_bn_param_grads) \
	X(K_BN_TRAIN_DIN, k_bn_train_din) \
	X(K_BN_EVAL_INVSTD, k_bn_eval_invstd) \
	X(K_BN_EVAL_APPLY, k_bn_eval_apply) \
	X(K_BN_EVAL_DIN, k_bn_eval_din) \
	X(K_MAXPOOL_FWD, k_maxpool_fwd) \
	X(K_MAXPOOL_BWD, k_maxpool_bwd) \
	X(K_AVGPOOL_FWD, k_avgpool_fwd) \
	X(K_AVGPOOL_BWD, k_avgpool_bwd) \
	X(K_RELU_FWD, k_relu_fwd) \
	X(K_RELU_BWD, k_relu_bwd) \
	X(K_ELU_FWD, k_elu_fwd) \
	X(K_ELU_BWD, k_elu_bwd) \
	X(K_SIGMOID_FWD, k_sigmoid_fwd) \
	X(K_SIGMOID_BWD, k_sigmoid_bwd) \
	X(K_MUL, k_mul) \
	X(K_ADD, k_add) \
	X(K_FILL, k_fill) \
	X(K_REPARAM_FWD, k_reparam_fwd) \
	X(K_REPARAM_BWD, k_reparam_bwd) \
	X(K_ADAM, k_adam) \
	X(K_SGD, k_sgd) \
	X(K_MSE_GRAD, k_mse_grad) \
	X(K_CE_ROWS, k_ce_rows) \
	X(K_SVDD_GRAD, k_svdd_grad) \
	X(K_DEC_Q, k_dec_q) \
	X(K_DEC_COLSUM, k_dec_colsum) \
	X(K_DEC_TARGET, k_dec_target) \
	X(K_DEC_ROWS, k_dec_rows) \
	X(K_DEC_CENTERS, k_dec_centers)

#define CLAD_KERNEL_ENUM(name, fn) name,
typedef enum clad_kernel
{
	CLAD_KERNEL_LIST(CLAD_KERNEL_ENUM)
	CLAD_NUM_KERNELS
} clad_kernel;
#undef CLAD_KERNEL_ENUM

/* A kernel's name (its body's: "k_adam"), for error messages; host code only. */
static inline const char *
clad_kernel_name(clad_kernel k)
{
	switch (k)
	{
#define CLAD_KERNEL_NAME(name, fn) case name: return #fn;
			CLAD_KERNEL_LIST(CLAD_KERNEL_NAME)
#undef CLAD_KERNEL_NAME
		case CLAD_NUM_KERNELS:
			break;
	}
	return "(no such kernel)";
}

/* out = value, or out += value when acc */
CLAD_KFN void
k_store(const clad_kargs *a, size_t i, float v)
{
	if (a->acc)
		a->out[i] += v;
	else
		a->out[i] = v;
}

/*
 * im2col, n = C*KH*KW * B*OH*OW: x (B,C,H,W) -> out (C*KH*KW, B*OH*OW),
 * zeros where the window meets padding.
 */
CLAD_KFN void
k_im2col(size_t i, const clad_kargs *a)
{
	size_t		ncol = (size_t) a->B * a->OH * a->OW;
	size_t		r = i / ncol, col = i % ncol;
	int			b = (int) (col / ((size_t) a->OH * a->OW));
	int			p = (int) (col % ((size_t) a->OH * a->OW));
	int			c = (int) (r / ((size_t) a->KH * a->KW));
	int			kk = (int) (r % ((size_t) a->KH * a->KW));
	int			ih = (p / a->OW) * a->stride - a->pad + kk / a->KW;
	int			iw = (p % a->OW) * a->stride - a->pad + kk % a->KW;

	a->out[i] = (ih >= 0 && ih < a->H && iw >= 0 && iw < a->W) ?
		a->x[(((size_t) b * a->C + c) * a->H + ih) * a->W + iw] : 0.0f;
}

/*
 * col2im as a gather, n = B*C*H*W: x (C*KH*KW, B*OH*OW) columns -> out
 * (B,C,H,W), each pixel the sum of the columns entries that came from it
 * (acc: added to out).
 */
CLAD_KFN void
k_col2im(size_t i, const clad_kargs *a)
{
	int			iw = (int) (i % a->W);
	int			ih = (int) (i / a->W % a->H);
	int			c = (int) (i / ((size_t) a->W * a->H) % a->C);
	int			b = (int) (i / ((size_t) a->W * a->H * a->C));
	size_t		ncol = (size_t) a->B * a->OH * a->OW;
	float		s = 0.0f;

	for (int ky = 0; ky < a->KH; ky++)
	{
		int			th = ih + a->pad - ky;
		int			oh = th / a->stride;

		if (th < 0 || th % a->stride != 0 || oh >= a->OH)
			continue;
		for (int kx = 0; kx < a->KW; kx++)
		{
			int			tw = iw + a->pad - kx;
			int			ow = tw / a->stride;

			if (tw < 0 || tw % a->stride != 0 || ow >= a->OW)
				continue;
			s += a->x[((size_t) c * a->KH * a->KW + ky * a->KW + kx) * ncol +
					  ((size_t) b * a->OH + oh) * a->OW + ow];
		}
	}
	k_store(a, i, s);
}

/* n = B*C*S: x (B,C,S) -> out (C,B,S) */
CLAD_KFN void
k_to_cbs(size_t i, const clad_kargs *a)
{
	size_t		s = i % a->S, c = i / a->S % a->C, b = i / (a->S * a->C);

	a->out[(c * a->B + b) * a->S + s] = a->x[i];
}

/* n = B*C*S: x (C,B,S) -> out (B,C,S), plus y[c] when y (a bias); acc adds */
CLAD_KFN void
k_from_cbs(size_t i, const clad_kargs *a)
{
	size_t		s = i % a->S, c = i / a->S % a->C, b = i / (a->S * a->C);

	k_store(a, i, a->x[(c * a->B + b) * a->S + s] + (a->y ? a->y[c] : 0.0f));
}

/* n = B*C*S: out (B,C,S) += y[c] */
CLAD_KFN void
k_add_channel(size_t i, const clad_kargs *a)
{
	a->out[i] += a->y[i / a->S % a->C];
}

/*
 * n = C*P: dres[c*P + j] = sum over the elements e = j, j+P, ... of channel c
 * of a (B,C,S) tensor (e runs over B*S) of
 *   mode 0: x;  mode 1: (x - md[c])^2;  mode 2: x * (y - mf[c]) * sf[c];
 *   mode 3: (x - y)^2 (MSE);  mode 4: (x - y[e % S])^2 with the difference
 *   in float (Deep SVDD's distance to the centre y)
 * in double, as the CPU layers and losses sum.
 */
CLAD_KFN void
k_reduce_partial(size_t i, const clad_kargs *a)
{
	size_t		c = i / a->P, j = i % a->P, n = (size_t) a->B * a->S;
	double		s = 0.0;

	for (size_t e = j; e < n; e += a->P)
	{
		size_t		at = ((e / a->S) * a->C + c) * a->S + e % a->S;

		if (a->mode == 0)
			s += a->x[at];
		else if (a->mode == 1)
			s += (a->x[at] - a->md[c]) * (a->x[at] - a->md[c]);
		else if (a->mode == 2)
			s += a->x[at] * (a->y[at] - a->mf[c]) * a->sf[c];
		else if (a->mode == 3)
			s += ((double) a->x[at] - a->y[at]) * ((double) a->x[at] - a->y[at]);
		else
		{
			float		d = a->x[at] - a->y[e % a->S];

			s += (double) d * d;
		}
	}
	a->dres[i] = s;
}

/* n = C: dres[c] = (sum of dsrc[c*P .. c*P+P)) / dn */
CLAD_KFN void
k_reduce_finish(size_t c, const clad_kargs *a)
{
	double		s = 0.0;

	for (size_t j = 0; j < a->P; j++)
		s += a->dsrc[c * a->P + j];
	a->dres[c] = s / a->dn;
}

/*
 * n = C, BatchNorm batch statistics: md mean, dsrc sum of squared deviations,
 * dn = B*S values per channel, f[0] momentum, f[1] eps -> out save_mean,
 * out2 save_invstd; out3 running mean and out4 running variance updated as
 * PyTorch (unbiased variance).
 */
CLAD_KFN void
k_bn_train_stats(size_t c, const clad_kargs *a)
{
	double		var = a->dsrc[c] / a->dn;
	float		m = a->f[0];

	a->out[c] = (float) a->md[c];
	a->out2[c] = (float) (1.0 / sqrt(var + a->f[1]));
	a->out3[c] = (1.0f - m) * a->out3[c] + m * (float) a->md[c];
	a->out4[c] = (1.0f - m) * a->out4[c] +
		m * (float) (a->dn > 1 ? a->dsrc[c] / (a->dn - 1) : var);
}

/* n = B*C*S: out = (x - md[c]) * sf[c] * gamma + beta */
CLAD_KFN void
k_bn_train_apply(size_t i, const clad_kargs *a)
{
	size_t		c = i / a->S % a->C;

	a->out[i] = (float) (a->x[i] - a->md[c]) * a->sf[c] * (a->gamma ? a->gamma[c] : 1.0f) +
		(a->beta ? a->beta[c] : 0.0f);
}

/* n = C: out (dgamma) += dsrc2[c] (sum dy*xhat), out2 (dbeta) += dsrc[c] (sum dy); either may be NULL */
CLAD_KFN void
k_bn_param_grads(size_t c, const clad_kargs *a)
{
	if (a->out)
		a->out[c] += (float) a->dsrc2[c];
	if (a->out2)
		a->out2[c] += (float) a->dsrc[c];
}

/*
 * n = B*C*S, BatchNorm training input gradient: x dout, y input, mf/sf the
 * saved mean and inverse std, dsrc sum dy, dsrc2 sum dy*xhat, dn = B*S:
 * out (din) += gamma*invstd * (dy - mean(dy) - xhat * mean(dy*xhat))
 */
CLAD_KFN void
k_bn_train_din(size_t i, const clad_kargs *a)
{
	size_t		c = i / a->S % a->C;
	float		invstd = a->sf[c];
	float		k = (a->gamma ? a->gamma[c] : 1.0f) * invstd;
	float		mdy = (float) (a->dsrc[c] / a->dn), mdyx = (float) (a->dsrc2[c] / a->dn);

	a->out[i] += k * (a->x[i] - mdy - (a->y[i] - a->mf[c]) * invstd * mdyx);
}

/* n = C: out[c] = 1 / sqrt(y[c] + f[0]) (the running variance's inverse std) */
CLAD_KFN void
k_bn_eval_invstd(size_t c, const clad_kargs *a)
{
	a->out[c] = 1.0f / sqrtf(a->y[c] + a->f[0]);
}

/* n = B*C*S, eval mode: x input, mf running mean, sf inverse std -> out */
CLAD_KFN void
k_bn_eval_apply(size_t i, const clad_kargs *a)
{
	size_t		c = i / a->S % a->C;
	float		scale = (a->gamma ? a->gamma[c] : 1.0f) * a->sf[c];
	float		shift = (a->beta ? a->beta[c] : 0.0f) - a->mf[c] * scale;

	a->out[i] = a->x[i] * scale + shift;
}

/* n = B*C*S, eval mode: out (din) += gamma * sf[c] * x (dout) */
CLAD_KFN void
k_bn_eval_din(size_t i, const clad_kargs *a)
{
	size_t		c = i / a->S % a->C;

	a->out[i] += (a->gamma ? a->gamma[c] : 1.0f) * a->sf[c] * a->x[i];
}

/*
 * n = B*C*OH*OW: max over the KH x KH window (stride, pad) of x (B,C,H,W)
 * -> out, idx_out (the winner's index in its input plane; may be NULL).
 * Padding never wins; the first maximum wins; a NaN wins and stays.
 */
CLAD_KFN void
k_maxpool_fwd(size_t i, const clad_kargs *a)
{
	int			ow = (int) (i % a->OW), oh = (int) (i / a->OW % a->OH);
	size_t		plane = i / ((size_t) a->OW * a->OH);
	const float *x = a->x + plane * a->H * a->W;
	int			h0 = oh * a->stride - a->pad, h1 = h0 + a->KH;
	int			w0 = ow * a->stride - a->pad, w1 = w0 + a->KH;
	int			where;
	float		best;

	h0 = h0 < 0 ? 0 : h0;
	h1 = h1 > a->H ? a->H : h1;
	w0 = w0 < 0 ? 0 : w0;
	w1 = w1 > a->W ? a->W : w1;
	where = h0 * a->W + w0;
	best = x[where];
	for (int ih = h0; ih < h1; ih++)
		for (int iw = w0; iw < w1; iw++)
		{
			float		v = x[ih * a->W + iw];

			if (v > best || (v != v && best == best))
			{
				best = v;
				where = ih * a->W + iw;
			}
		}
	a->out[i] = best;
	if (a->idx_out)
		a->idx_out[i] = where;
}

/*
 * n = B*C*H*W: out (din) += the x (dout) of every window whose winner
 * (idx) is this input cell, gathered in output order as the CPU scatters.
 */
CLAD_KFN void
k_maxpool_bwd(size_t i, const clad_kargs *a)
{
	int			iw = (int) (i % a->W), ih = (int) (i / a->W % a->H);
	size_t		plane = i / ((size_t) a->W * a->H);
	int			here = ih * a->W + iw;
	int			oh0 = ih + a->pad - a->KH + 1, oh1 = (ih + a->pad) / a->stride;
	int			ow0 = iw + a->pad - a->KH + 1, ow1 = (iw + a->pad) / a->stride;
	float		s = 0.0f;

	/* first window that can hold the cell: ceil(max(0, .) / stride) */
	oh0 = oh0 <= 0 ? 0 : (oh0 + a->stride - 1) / a->stride;
	ow0 = ow0 <= 0 ? 0 : (ow0 + a->stride - 1) / a->stride;
	oh1 = oh1 >= a->OH ? a->OH - 1 : oh1;
	ow1 = ow1 >= a->OW ? a->OW - 1 : ow1;
	for (int oh = oh0; oh <= oh1; oh++)
		for (int ow = ow0; ow <= ow1; ow++)
		{
			size_t		o = (plane * a->OH + oh) * a->OW + ow;

			if (a->idx[o] == here)
				s += a->x[o];
		}
	a->out[i] += s;
}

/* n = B*C: out[p] = mean of x[p*S .. p*S+S) */
CLAD_KFN void
k_avgpool_fwd(size_t p, const clad_kargs *a)
{
	float		s = 0.0f;

	for (size_t j = 0; j < a->S; j++)
		s += a->x[p * a->S + j];
	a->out[p] = s / (float) a->S;
}

/* n = B*C*S: out (din) += x[i / S] / S */
CLAD_KFN void
k_avgpool_bwd(size_t i, const clad_kargs *a)
{
	a->out[i] += a->x[i / a->S] / (float) a->S;
}

/* Activations, n elements.  Forward: x in -> out.  Backward: x dout, y the
 * forward's output -> out (din) +=. */
CLAD_KFN void
k_relu_fwd(size_t i, const clad_kargs *a)
{
	a->out[i] = a->x[i] > 0.0f ? a->x[i] : 0.0f;
}

CLAD_KFN void
k_relu_bwd(size_t i, const clad_kargs *a)
{
	if (a->y[i] > 0.0f)
		a->out[i] += a->x[i];
}

/*
 * e^x - 1 for x <= 0: ELU's exponential on the CPU (core/activation.c)
 * and on a device, so both compute the same floats.  Straight-line float
 * arithmetic that vectorises (libm's expm1f is a call per element: most of
 * an ELU autoencoder's time on the CPU).  x = k ln2 + r with |r| <= ln2/2
 * (adding 1.5 * 2^23 rounds to the integer k, whose bits then make 2^k),
 * e^r - 1 by its Taylor series to r^8 (truncation < 2e-8 relative), and
 * e^x - 1 = 2^k (e^r - 1) + (2^k - 1): for |x| < ln2/2 (k = 0) that is the
 * series itself, so tiny x keep their relative accuracy.  At most 1 ulp
 * from the correctly rounded value (tests/unit/test_layers_grad.c sweeps
 * [-87, 0]); below -87 it is -1, as expm1f's float result is.
 */
CLAD_KFN float
k_expm1_nonpositive(float x)
{
	const float round_shift = 12582912.0f;	/* 1.5 * 2^23 */
	float		t, k, r, p, scale;
	uint32_t	bits;

	x = x < -87.0f ? -87.0f : x;
	t = x * 1.44269504f + round_shift;
	k = t - round_shift;
	/* ln 2 as 0.693145752 (exact times any k here) + 1.42860677e-6 */
	r = (x - k * 0.693145752f) - k * 1.42860677e-06f;
	p = 1.0f / 40320.0f;
	p = p * r + 1.0f / 5040.0f;
	p = p * r + 1.0f / 720.0f;
	p = p * r + 1.0f / 120.0f;
	p = p * r + 1.0f / 24.0f;
	p = p * r + 1.0f / 6.0f;
	p = p * r + 0.5f;
	p = r + r * r * p;
#ifdef __CUDACC__
	bits = __float_as_uint(t);
#else
	memcpy(&bits, &t, sizeof(bits));
#endif
	bits = (bits - 0x4B400000u + 127u) << 23;	/* k + 127 in the exponent field */
#ifdef __CUDACC__
	scale = __uint_as_float(bits);
#else
	memcpy(&scale, &bits, sizeof(scale));
#endif
	return scale * p + (scale - 1.0f);
}

CLAD_KFN void
k_elu_fwd(size_t i, const clad_kargs *a)
{
	float		x = a->x[i];

	a->out[i] = (x >= 0.0f || x != x) ? x : k_expm1_nonpositive(x);
}

CLAD_KFN void
k_elu_bwd(size_t i, const clad_kargs *a)
{
	a->out[i] += a->y[i] > 0.0f ? a->x[i] : a->x[i] * (a->y[i] + 1.0f);
}

CLAD_KFN void
k_sigmoid_fwd(size_t i, const clad_kargs *a)
{
	a->out[i] = 1.0f / (1.0f + expf(-a->x[i]));
}

CLAD_KFN void
k_sigmoid_bwd(size_t i, const clad_kargs *a)
{
	a->out[i] += a->x[i] * a->y[i] * (1.0f - a->y[i]);
}

/* n: out = x * y (dropout: y the mask), or out += x * y when acc */
CLAD_KFN void
k_mul(size_t i, const clad_kargs *a)
{
	k_store(a, i, a->x[i] * a->y[i]);
}

/* n: out = x + y, or out += x (+ y when y) when acc */
CLAD_KFN void
k_add(size_t i, const clad_kargs *a)
{
	k_store(a, i, a->x[i] + (a->y ? a->y[i] : 0.0f));
}

/* n: out = f[0], or out += f[0] when acc */
CLAD_KFN void
k_fill(size_t i, const clad_kargs *a)
{
	k_store(a, i, a->f[0]);
}

/*
 * n = B*h (h = S), variational code: x (B, 2h) = [mu, sigma], y noise (B,h)
 * -> out z (B,h) = mu + sigma * noise.
 */
CLAD_KFN void
k_reparam_fwd(size_t i, const clad_kargs *a)
{
	size_t		b = i / a->S, j = i % a->S;

	a->out[i] = a->x[b * 2 * a->S + j] + a->x[b * 2 * a->S + a->S + j] * a->y[i];
}

/* n = B*h: x dz (B,h), y noise -> out (B,2h) += [dz, dz * noise] */
CLAD_KFN void
k_reparam_bwd(size_t i, const clad_kargs *a)
{
	size_t		b = i / a->S, j = i % a->S;

	a->out[b * 2 * a->S + j] += a->x[i];
	a->out[b * 2 * a->S + a->S + j] += a->x[i] * a->y[i];
}

/*
 * n parameters, Adam as PyTorch: out param, out2 m, out3 v, x grad;
 * f = {beta1, beta2, eps, weight_decay, lr / (1 - beta1^t), sqrt(1 - beta2^t)}
 */
CLAD_KFN void
k_adam(size_t i, const clad_kargs *a)
{
	float		g = a->x[i] + a->f[3] * a->out[i];

	a->out2[i] = a->f[0] * a->out2[i] + (1.0f - a->f[0]) * g;
	a->out3[i] = a->f[1] * a->out3[i] + (1.0f - a->f[1]) * g * g;
	a->out[i] -= a->f[4] * a->out2[i] / (sqrtf(a->out3[i]) / a->f[5] + a->f[2]);
}

/*
 * n parameters, SGD with momentum as PyTorch: out param, out2 momentum
 * buffer, x grad; f = {lr, momentum, weight_decay}; mode 1 on the first step
 * (the buffer starts as the gradient).
 */
CLAD_KFN void
k_sgd(size_t i, const clad_kargs *a)
{
	float		g = a->x[i] + a->f[2] * a->out[i];

	if (a->f[1] != 0.0f)
	{
		a->out2[i] = a->mode ? g : a->f[1] * a->out2[i] + g;
		g = a->out2[i];
	}
	a->out[i] -= a->f[0] * g;
}

/*
 * ---- losses (as core/loss.c computes them on the host, in the same order) ----
 * The loss value itself is a reduction: per-row terms in dres, summed by
 * REDUCE_FINISH (or REDUCE_PARTIAL's modes 3 and 4 for the elementwise ones).
 */

/* n elements, MSE gradient: out += 2 (x - y) / dn, x prediction, y target */
CLAD_KFN void
k_mse_grad(size_t i, const clad_kargs *a)
{
	a->out[i] += (float) (2.0 * ((double) a->x[i] - a->y[i]) / a->dn);
}

/*
 * n = B rows of C classes, cross-entropy over softmax(x / f[0]) against the
 * labels idx: dres[b] = the row's loss (NaN for a label outside [0, C)),
 * out (B,C) += its gradient / B, idx_out[b] = 1 when the row's first
 * largest logit is the label.
 */
CLAD_KFN void
k_ce_rows(size_t b, const clad_kargs *a)
{
	const float *l = a->x + b * a->C;
	float	   *g = a->out + b * a->C;
	float		T = a->f[0];
	int32_t		y = a->idx[b];
	int			best = 0;
	double		m = -INFINITY, s = 0.0, lse;

	for (int k = 1; k < a->C; k++)
		if (l[k] > l[best])
			best = k;
	a->idx_out[b] = best == y;
	if (y < 0 || y >= a->C)
	{
		a->dres[b] = NAN;
		return;
	}
	for (int k = 0; k < a->C; k++)
		if (l[k] / T > m)
			m = l[k] / T;
	for (int k = 0; k < a->C; k++)
		s += exp(l[k] / T - m);
	lse = m + log(s);
	a->dres[b] = lse - l[y] / T;
	for (int k = 0; k < a->C; k++)
		g[k] += (float) ((exp(l[k] / T - lse) - (k == y ? 1.0 : 0.0)) / ((double) T * a->B));
}

/* n = B*S, Deep SVDD gradient: out += 2 (x - y[i % S]) / B, y the centre */
CLAD_KFN void
k_svdd_grad(size_t i, const clad_kargs *a)
{
	float		d = a->x[i] - a->y[i % a->S];

	a->out[i] += 2.0f * d / (float) a->B;
}

/* squared distance of two D-vectors, in double */
CLAD_KFN double
k_sq_dist(const float *u, const float *v, int D)
{
	double		s = 0.0;

	for (int d = 0; d < D; d++)
		s += ((double) u[d] - v[d]) * ((double) u[d] - v[d]);
	return s;
}

/*
 * n = B, DEC soft assignment: x codes (B,S), y centres (C,S), f[0] alpha ->
 * out q (B,C), Student's t kernel normalised per row.
 */
CLAD_KFN void
k_dec_q(size_t i, const clad_kargs *a)
{
	double		alpha = a->f[0], power = -(alpha + 1.0) / 2.0, s = 0.0;
	float	   *q = a->out + i * a->C;

	for (int j = 0; j < a->C; j++)
	{
		double		t = pow(1.0 + k_sq_dist(a->x + i * a->S, a->y + (size_t) j * a->S, (int) a->S) / alpha,
							power);

		q[j] = (float) t;
		s += t;
	}
	for (int j = 0; j < a->C; j++)
		q[j] = (float) (q[j] / s);
}

/* n = C: dres[j] = sum over the B rows of q (B,C) of column j */
CLAD_KFN void
k_dec_colsum(size_t j, const clad_kargs *a)
{
	double		f = 0.0;

	for (int i = 0; i < a->B; i++)
		f += a->x[(size_t) i * a->C + j];
	a->dres[j] = f;
}

/* n = B, DEC target: x q (B,C), dsrc column sums -> out p, q^2 / f normalised per row */
CLAD_KFN void
k_dec_target(size_t i, const clad_kargs *a)
{
	const float *q = a->x + i * a->C;
	float	   *p = a->out + i * a->C;
	double		s = 0.0;

	for (int j = 0; j < a->C; j++)
	{
		p[j] = (float) ((double) q[j] * q[j] / a->dsrc[j]);
		s += p[j];
	}
	for (int j = 0; j < a->C; j++)
		p[j] = (float) (p[j] / s);
}

/*
 * n = B, DEC's KL(p || q) per row: x codes (B,S), y centres (C,S), w target
 * p (B,C), f[0] alpha -> dres[i] the row's KL term, dres2[i] the row's
 * kernel sum (for k_dec_centers), out dz (B,S) += the gradient / B.
 */
CLAD_KFN void
k_dec_rows(size_t i, const clad_kargs *a)
{
	double		alpha = a->f[0], power = -(alpha + 1.0) / 2.0, s = 0.0, loss = 0.0;
	int			D = (int) a->S;
	const float *zi = a->x + i * a->S;
	const float *pi = a->w + i * a->C;

	for (int j = 0; j < a->C; j++)
		s += pow(1.0 + k_sq_dist(zi, a->y + (size_t) j * D, D) / alpha, power);
	for (int j = 0; j < a->C; j++)
	{
		const float *mu = a->y + (size_t) j * D;
		double		d2 = k_sq_dist(zi, mu, D);
		double		q = pow(1.0 + d2 / alpha, power) / s;
		double		inv = 1.0 / (1.0 + d2 / alpha);
		double		coef = (pi[j] - q) * (alpha + 1.0) / alpha * inv / a->B;

		if (pi[j] > 0.0f)
			loss += pi[j] * (log((double) pi[j]) - log(q));
		for (int d = 0; d < D; d++)
			a->out[i * a->S + d] += (float) (coef * ((double) zi[d] - mu[d]));
	}
	a->dres[i] = loss;
	a->dres2[i] = s;
}

/*
 * n = C*S, DEC's centre gradient: as k_dec_rows, with dsrc the rows' kernel
 * sums -> out dcenters (C,S) -= the gradient / B, summed over rows in order.
 */
CLAD_KFN void
k_dec_centers(size_t e, const clad_kargs *a)
{
	double		alpha = a->f[0], power = -(alpha + 1.0) / 2.0;
	int			D = (int) a->S;
	size_t		j = e / a->S, d = e % a->S;
	const float *mu = a->y + j * a->S;
	float		g = a->out[e];

	for (int i = 0; i < a->B; i++)
	{
		const float *zi = a->x + (size_t) i * a->S;
		double		d2 = k_sq_dist(zi, mu, D);
		double		q = pow(1.0 + d2 / alpha, power) / a->dsrc[i];
		double		inv = 1.0 / (1.0 + d2 / alpha);
		double		coef = (a->w[(size_t) i * a->C + j] - q) * (alpha + 1.0) / alpha * inv / a->B;

		g -= (float) (coef * ((double) zi[d] - mu[d]));
	}
	a->out[e] = g;
}

#endif

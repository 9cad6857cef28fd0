/* core/norm.c: BatchNorm over (B, C, S): S = H*W for BatchNorm2d, 1 for BatchNorm1d. */
#include "layers.h"
#include "parallel.h"
#include "vectorize.h"

#include <math.h>

/*
 * The channel sums are in double, each over LANES interleaved partial sums
 * (element s of a row goes to lane s % LANES), added up in a fixed order at
 * the end: as exact as one running sum, the same on every machine, and a
 * vector loop instead of a chain of dependent additions.
 */
#define LANES 8

/* The sum of the LANES partial sums, in a fixed order. */
static double
lanes_total(const double *acc)
{
	return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/* acc[s % LANES] += x[s] for the S values of a row (mode 0), or (x[s] - mean)^2 (mode 1) */
CLAD_VECTOR_LOOP
static void
row_sums(double *restrict acc, const float *restrict x, int S, int mode, double mean)
{
	int			s = 0;

	for (; s + LANES <= S; s += LANES)
		for (int j = 0; j < LANES; j++)
			acc[j] += mode == 0 ? (double) x[s + j] : (x[s + j] - mean) * (x[s + j] - mean);
	for (; s < S; s++)
		acc[s % LANES] += mode == 0 ? (double) x[s] : (x[s] - mean) * (x[s] - mean);
}

/* y = (x - mean) * invstd * g + bt over a row */
CLAD_VECTOR_LOOP
static void
row_normalise(float *restrict y, const float *restrict x, int S, double mean, float invstd, float g, float bt)
{
	for (int s = 0; s < S; s++)
		y[s] = (float) (x[s] - mean) * invstd * g + bt;
}

/* sum dy and sum dy * xhat over a row, into lanes */
CLAD_VECTOR_LOOP
static void
row_grad_sums(double *restrict acc_dy, double *restrict acc_dyx, const float *restrict dy,
			  const float *restrict x, int S, float mean, float invstd)
{
	int			s = 0;

	for (; s + LANES <= S; s += LANES)
		for (int j = 0; j < LANES; j++)
		{
			acc_dy[j] += dy[s + j];
			acc_dyx[j] += dy[s + j] * (x[s + j] - mean) * invstd;
		}
	for (; s < S; s++)
	{
		acc_dy[s % LANES] += dy[s];
		acc_dyx[s % LANES] += dy[s] * (x[s] - mean) * invstd;
	}
}

/* dx += k * (dy - mdy - (x - mean) * invstd * mdyx) over a row */
CLAD_VECTOR_LOOP
static void
row_input_grad(float *restrict dx, const float *restrict dy, const float *restrict x, int S,
			   float k, float mdy, float mean, float invstd, float mdyx)
{
	for (int s = 0; s < S; s++)
		dx[s] += k * (dy[s] - mdy - (x[s] - mean) * invstd * mdyx);
}

/* The arguments of a training pass, for per-channel ranges (channels are independent). */
typedef struct bn_train_args
{
	float	   *out, *save_mean, *save_invstd, *running_mean, *running_var;	/* forward writes */
	float	   *din, *dgamma, *dbeta;	/* backward writes */
	const float *in, *dout, *gamma, *beta;
	const float *saved_mean, *saved_invstd;	/* backward reads */
	int			B, C, S;
	float		momentum, eps;
} bn_train_args;

/* One thread's channels of BatchNorm's training forward. */
static void
bn_forward_channels(size_t lo, size_t hi, void *p)
{
	const bn_train_args *a = p;
	int			B = a->B, C = a->C, S = a->S;
	size_t		n = (size_t) B * S;

	for (int c = (int) lo; c < (int) hi; c++)
	{
		/* two passes in double: batch statistics feed every gradient, keep them exact */
		double		acc[LANES] = {0}, acc2[LANES] = {0};
		double		sum, sq, mean, var;
		float		invstd, g, bt;

		for (int b = 0; b < B; b++)
			row_sums(acc, a->in + ((size_t) b * C + c) * S, S, 0, 0.0);
		sum = lanes_total(acc);
		mean = sum / (double) n;
		for (int b = 0; b < B; b++)
			row_sums(acc2, a->in + ((size_t) b * C + c) * S, S, 1, mean);
		sq = lanes_total(acc2);
		var = sq / (double) n;
		invstd = (float) (1.0 / sqrt(var + a->eps));
		a->save_mean[c] = (float) mean;
		a->save_invstd[c] = invstd;
		if (a->running_mean)
			a->running_mean[c] = (1.0f - a->momentum) * a->running_mean[c] + a->momentum * (float) mean;
		if (a->running_var)
			a->running_var[c] = (1.0f - a->momentum) * a->running_var[c] +
				a->momentum * (float) (n > 1 ? sq / (double) (n - 1) : var);
		g = a->gamma ? a->gamma[c] : 1.0f;
		bt = a->beta ? a->beta[c] : 0.0f;
		for (int b = 0; b < B; b++)
			row_normalise(a->out + ((size_t) b * C + c) * S, a->in + ((size_t) b * C + c) * S, S, mean,
						  invstd, g, bt);
	}
}

void
clad_batchnorm_forward_train(float *out, float *save_mean, float *save_invstd,
							 const float *in, const float *gamma, const float *beta,
							 float *running_mean, float *running_var,
							 int B, int C, int S, float momentum, float eps)
{
	bn_train_args a = {.out = out, .save_mean = save_mean, .save_invstd = save_invstd,
		.running_mean = running_mean, .running_var = running_var, .in = in, .gamma = gamma,
	.beta = beta, .B = B, .C = C, .S = S, .momentum = momentum, .eps = eps};

	clad_parallel_for((size_t) C, clad_parallel_items_each((size_t) B * S, 16384), bn_forward_channels, &a);
}

/* One thread's channels of BatchNorm's training backward. */
static void
bn_backward_channels(size_t lo, size_t hi, void *p)
{
	const bn_train_args *a = p;
	int			B = a->B, C = a->C, S = a->S;
	double		n = (double) B * S;

	for (int c = (int) lo; c < (int) hi; c++)
	{
		double		acc_dy[LANES] = {0}, acc_dyx[LANES] = {0};
		double		sum_dy, sum_dy_xhat;
		float		mean = a->saved_mean[c], invstd = a->saved_invstd[c];
		float		g = a->gamma ? a->gamma[c] : 1.0f;

		for (int b = 0; b < B; b++)
			row_grad_sums(acc_dy, acc_dyx, a->dout + ((size_t) b * C + c) * S, a->in + ((size_t) b * C + c) * S,
						  S, mean, invstd);
		sum_dy = lanes_total(acc_dy);
		sum_dy_xhat = lanes_total(acc_dyx);
		if (a->dgamma)
			a->dgamma[c] += (float) sum_dy_xhat;
		if (a->dbeta)
			a->dbeta[c] += (float) sum_dy;
		if (a->din)
		{
			/* dx = g*invstd/n * (n*dy - sum(dy) - xhat * sum(dy*xhat)) */
			float		k = g * invstd;
			float		mdy = (float) (sum_dy / n), mdyx = (float) (sum_dy_xhat / n);

			for (int b = 0; b < B; b++)
				row_input_grad(a->din + ((size_t) b * C + c) * S, a->dout + ((size_t) b * C + c) * S,
							   a->in + ((size_t) b * C + c) * S, S, k, mdy, mean, invstd, mdyx);
		}
	}
}

void
clad_batchnorm_backward_train(float *din, float *dgamma, float *dbeta,
							  const float *dout, const float *in,
							  const float *save_mean, const float *save_invstd,
							  const float *gamma, int B, int C, int S)
{
	bn_train_args a = {.din = din, .dgamma = dgamma, .dbeta = dbeta, .dout = dout, .in = in,
		.saved_mean = save_mean, .saved_invstd = save_invstd, .gamma = gamma,
	.B = B, .C = C, .S = S};

	clad_parallel_for((size_t) C, clad_parallel_items_each((size_t) B * S, 16384), bn_backward_channels, &a);
}

/* y = x * scale + shift over n floats */
CLAD_VECTOR_LOOP
static void
affine_run(float *restrict y, const float *restrict x, float scale, float shift, int n)
{
	for (int i = 0; i < n; i++)
		y[i] = x[i] * scale + shift;
}

/* y[c] = x[c] * scale[c] + shift[c] over n channels (one value per channel: 1x1 maps) */
CLAD_VECTOR_LOOP
static void
affine_channels(float *restrict y, const float *restrict x, const float *restrict scale,
				const float *restrict shift, int n)
{
	for (int i = 0; i < n; i++)
		y[i] = x[i] * scale[i] + shift[i];
}

#define BN_EVAL_CHUNK 64

void
clad_batchnorm_forward_eval(float *out, const float *in, const float *gamma,
							const float *beta, const float *running_mean,
							const float *running_var, int B, int C, int S, float eps)
{
	/* channels in blocks, each with its scale and shift worked out once */
	float		scale[BN_EVAL_CHUNK], shift[BN_EVAL_CHUNK];

	for (int c0 = 0; c0 < C; c0 += BN_EVAL_CHUNK)
	{
		int			nc = C - c0 < BN_EVAL_CHUNK ? C - c0 : BN_EVAL_CHUNK;

		for (int j = 0; j < nc; j++)
		{
			int			c = c0 + j;
			float		invstd = 1.0f / sqrtf(running_var[c] + eps);

			scale[j] = (gamma ? gamma[c] : 1.0f) * invstd;
			shift[j] = (beta ? beta[c] : 0.0f) - running_mean[c] * scale[j];
		}
		for (int b = 0; b < B; b++)
		{
			const float *x = in + ((size_t) b * C + c0) * S;
			float	   *y = out + ((size_t) b * C + c0) * S;

			if (S == 1)
				affine_channels(y, x, scale, shift, nc);
			else
				for (int j = 0; j < nc; j++)
					affine_run(y + (size_t) j * S, x + (size_t) j * S, scale[j], shift[j], S);
		}
	}
}

/*
 * dx[j*S + s] += k[j] * dy[j*S + s] for n channels of S floats each: one
 * image's channels in a row, so that the late layers' 1x1 maps (S = 1) are
 * one vector loop instead of a call per (image, channel).
 */
CLAD_VECTOR_LOOP
static void
scale_add_channels(float *restrict dx, const float *restrict dy, const float *restrict k, int n, int S)
{
	if (S == 1)
	{
		for (int j = 0; j < n; j++)
			dx[j] += k[j] * dy[j];
		return;
	}
	for (int j = 0; j < n; j++)
		for (int s = 0; s < S; s++)
			dx[(size_t) j * S + s] += k[j] * dy[(size_t) j * S + s];
}

void
clad_batchnorm_backward_eval(float *din, float *dgamma, float *dbeta,
							 const float *dout, const float *in, const float *gamma,
							 const float *running_mean, const float *running_var,
							 int B, int C, int S, float eps)
{
	/* the input gradient is a scale per channel, taken 64 channels at a time over every image */
	if (din)
		for (int c0 = 0; c0 < C; c0 += 64)
		{
			int			n = C - c0 < 64 ? C - c0 : 64;
			float		k[64];

			for (int j = 0; j < n; j++)
				k[j] = (gamma ? gamma[c0 + j] : 1.0f) * (1.0f / sqrtf(running_var[c0 + j] + eps));
			for (int b = 0; b < B; b++)
				scale_add_channels(din + ((size_t) b * C + c0) * S, dout + ((size_t) b * C + c0) * S,
								   k, n, S);
		}
	if (!dgamma && !dbeta)
		return;
	for (int c = 0; c < C; c++)
	{
		float		invstd = 1.0f / sqrtf(running_var[c] + eps);
		double		sum_dy = 0.0, sum_dy_xhat = 0.0;

		for (int b = 0; b < B; b++)
		{
			const float *x = in + ((size_t) b * C + c) * S;
			const float *dy = dout + ((size_t) b * C + c) * S;

			for (int s = 0; s < S; s++)
			{
				sum_dy += dy[s];
				sum_dy_xhat += dy[s] * (x[s] - running_mean[c]) * invstd;
			}
		}
		if (dgamma)
			dgamma[c] += (float) sum_dy_xhat;
		if (dbeta)
			dbeta[c] += (float) sum_dy;
	}
}

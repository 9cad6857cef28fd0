/* core/norm.c: BatchNorm over (B, C, S): S = H*W for BatchNorm2d, 1 for BatchNorm1d. */
#include "layers.h"

#include <math.h>

void
clad_batchnorm_forward_train(float *out, float *save_mean, float *save_invstd,
							 const float *in, const float *gamma, const float *beta,
							 float *running_mean, float *running_var,
							 int B, int C, int S, float momentum, float eps)
{
	size_t		n = (size_t) B * S;

	for (int c = 0; c < C; c++)
	{
		/* two passes in double: batch statistics feed every gradient, keep them exact */
		double		sum = 0.0, sq = 0.0, mean, var;
		float		invstd, g, bt;

		for (int b = 0; b < B; b++)
		{
			const float *x = in + ((size_t) b * C + c) * S;

			for (int s = 0; s < S; s++)
				sum += x[s];
		}
		mean = sum / (double) n;
		for (int b = 0; b < B; b++)
		{
			const float *x = in + ((size_t) b * C + c) * S;

			for (int s = 0; s < S; s++)
				sq += (x[s] - mean) * (x[s] - mean);
		}
		var = sq / (double) n;
		invstd = (float) (1.0 / sqrt(var + eps));
		save_mean[c] = (float) mean;
		save_invstd[c] = invstd;
		if (running_mean)
			running_mean[c] = (1.0f - momentum) * running_mean[c] + momentum * (float) mean;
		if (running_var)
			running_var[c] = (1.0f - momentum) * running_var[c] +
				momentum * (float) (n > 1 ? sq / (double) (n - 1) : var);
		g = gamma ? gamma[c] : 1.0f;
		bt = beta ? beta[c] : 0.0f;
		for (int b = 0; b < B; b++)
		{
			const float *x = in + ((size_t) b * C + c) * S;
			float	   *y = out + ((size_t) b * C + c) * S;

			for (int s = 0; s < S; s++)
				y[s] = (float) (x[s] - mean) * invstd * g + bt;
		}
	}
}

void
clad_batchnorm_backward_train(float *din, float *dgamma, float *dbeta,
							  const float *dout, const float *in,
							  const float *save_mean, const float *save_invstd,
							  const float *gamma, int B, int C, int S)
{
	double		n = (double) B * S;

	for (int c = 0; c < C; c++)
	{
		double		sum_dy = 0.0, sum_dy_xhat = 0.0;
		float		mean = save_mean[c], invstd = save_invstd[c];
		float		g = gamma ? gamma[c] : 1.0f;

		for (int b = 0; b < B; b++)
		{
			const float *x = in + ((size_t) b * C + c) * S;
			const float *dy = dout + ((size_t) b * C + c) * S;

			for (int s = 0; s < S; s++)
			{
				sum_dy += dy[s];
				sum_dy_xhat += dy[s] * (x[s] - mean) * invstd;
			}
		}
		if (dgamma)
			dgamma[c] += (float) sum_dy_xhat;
		if (dbeta)
			dbeta[c] += (float) sum_dy;
		if (din)
		{
			/* dx = g*invstd/n * (n*dy - sum(dy) - xhat * sum(dy*xhat)) */
			float		k = g * invstd;
			float		mdy = (float) (sum_dy / n), mdyx = (float) (sum_dy_xhat / n);

			for (int b = 0; b < B; b++)
			{
				const float *x = in + ((size_t) b * C + c) * S;
				const float *dy = dout + ((size_t) b * C + c) * S;
				float	   *dx = din + ((size_t) b * C + c) * S;

				for (int s = 0; s < S; s++)
					dx[s] += k * (dy[s] - mdy - (x[s] - mean) * invstd * mdyx);
			}
		}
	}
}

void
clad_batchnorm_forward_eval(float *out, const float *in, const float *gamma,
							const float *beta, const float *running_mean,
							const float *running_var, int B, int C, int S, float eps)
{
	for (int c = 0; c < C; c++)
	{
		float		invstd = 1.0f / sqrtf(running_var[c] + eps);
		float		scale = (gamma ? gamma[c] : 1.0f) * invstd;
		float		shift = (beta ? beta[c] : 0.0f) - running_mean[c] * scale;

		for (int b = 0; b < B; b++)
		{
			const float *x = in + ((size_t) b * C + c) * S;
			float	   *y = out + ((size_t) b * C + c) * S;

			for (int s = 0; s < S; s++)
				y[s] = x[s] * scale + shift;
		}
	}
}

void
clad_batchnorm_backward_eval(float *din, float *dgamma, float *dbeta,
							 const float *dout, const float *in, const float *gamma,
							 const float *running_mean, const float *running_var,
							 int B, int C, int S, float eps)
{
	for (int c = 0; c < C; c++)
	{
		float		invstd = 1.0f / sqrtf(running_var[c] + eps);
		float		k = (gamma ? gamma[c] : 1.0f) * invstd;
		double		sum_dy = 0.0, sum_dy_xhat = 0.0;

		for (int b = 0; b < B; b++)
		{
			const float *x = in + ((size_t) b * C + c) * S;
			const float *dy = dout + ((size_t) b * C + c) * S;
			float	   *dx = din ? din + ((size_t) b * C + c) * S : NULL;

			for (int s = 0; s < S; s++)
			{
				sum_dy += dy[s];
				sum_dy_xhat += dy[s] * (x[s] - running_mean[c]) * invstd;
				if (dx)
					dx[s] += k * dy[s];
			}
		}
		if (dgamma)
			dgamma[c] += (float) sum_dy_xhat;
		if (dbeta)
			dbeta[c] += (float) sum_dy;
	}
}

/* core/loss.c: MSE, cross-entropy over softmax (with temperature), DEC's soft assignment and KL loss,
 * Deep SVDD's distance.  The device versions (core/device_kernels.h) follow these line by line. */
#include "device_kernels.h"
#include "layers.h"

#include <math.h>

float
clad_mse_loss(float *grad, const float *pred, const float *target, size_t n)
{
	double		s = 0.0;

	for (size_t i = 0; i < n; i++)
	{
		double		d = (double) pred[i] - target[i];

		s += d * d;
		if (grad)
			grad[i] += (float) (2.0 * d / (double) n);
	}
	return (float) (s / (double) n);
}

int
clad_argmax(const float *v, int K)
{
	int			best = 0;

	for (int k = 1; k < K; k++)
		if (v[k] > v[best])
			best = k;
	return best;
}

void
clad_softmax(float *probs, const float *logits, int B, int K, float T)
{
	for (int b = 0; b < B; b++)
	{
		const float *l = logits + (size_t) b * K;
		float	   *p = probs + (size_t) b * K;
		float		m = -INFINITY;
		double		s = 0.0;

		for (int k = 0; k < K; k++)
			if (l[k] / T > m)
				m = l[k] / T;
		for (int k = 0; k < K; k++)
		{
			p[k] = expf(l[k] / T - m);
			s += p[k];
		}
		for (int k = 0; k < K; k++)
			p[k] = (float) (p[k] / s);
	}
}

float
clad_cross_entropy_loss(float *grad, const float *logits, const int32_t *labels,
						int B, int K, float T)
{
	double		total = 0.0;

	for (int b = 0; b < B; b++)
	{
		const float *l = logits + (size_t) b * K;
		int32_t		y = labels[b];
		double		m = -INFINITY, s = 0.0, lse;

		if (y < 0 || y >= K)
			return NAN;
		for (int k = 0; k < K; k++)
			if (l[k] / T > m)
				m = l[k] / T;
		for (int k = 0; k < K; k++)
			s += exp(l[k] / T - m);
		lse = m + log(s);
		total += lse - l[y] / T;
		if (grad)
		{
			float	   *g = grad + (size_t) b * K;

			/* d/dl_k = (softmax_k - [k == y]) / (T * B) */
			for (int k = 0; k < K; k++)
			{
				double		p = exp(l[k] / T - lse);

				g[k] += (float) ((p - (k == y ? 1.0 : 0.0)) / ((double) T * B));
			}
		}
	}
	return (float) (total / B);
}

void
clad_dec_soft_assign(float *q, const float *z, const float *centers,
					 int B, int K, int D, float alpha)
{
	double		power = -(alpha + 1.0) / 2.0;

	for (int i = 0; i < B; i++)
	{
		double		s = 0.0;
		float	   *qi = q + (size_t) i * K;

		for (int j = 0; j < K; j++)
		{
			double		t = pow(1.0 + k_sq_dist(z + (size_t) i * D, centers + (size_t) j * D, D) / alpha,
								power);

			qi[j] = (float) t;
			s += t;
		}
		for (int j = 0; j < K; j++)
			qi[j] = (float) (qi[j] / s);
	}
}

void
clad_dec_target(float *p, const float *q, int B, int K)
{
	for (int j = 0; j < K; j++)
	{
		double		f = 0.0;

		for (int i = 0; i < B; i++)
			f += q[(size_t) i * K + j];
		for (int i = 0; i < B; i++)
			p[(size_t) i * K + j] = (float) ((double) q[(size_t) i * K + j] * q[(size_t) i * K + j] / f);
	}
	for (int i = 0; i < B; i++)
	{
		double		s = 0.0;

		for (int j = 0; j < K; j++)
			s += p[(size_t) i * K + j];
		for (int j = 0; j < K; j++)
			p[(size_t) i * K + j] = (float) (p[(size_t) i * K + j] / s);
	}
}

/*
 * With g_ij = (alpha+1)/alpha * (z_i - mu_j) / (1 + |z_i - mu_j|^2 / alpha),
 * dL/dz_i = 1/B sum_j (p_ij - q_ij) g_ij and dL/dmu_j = -1/B sum_i (p_ij - q_ij) g_ij.
 */
float
clad_dec_kl_loss(float *dz, float *dcenters, const float *z, const float *centers,
				 const float *p, int B, int K, int D, float alpha)
{
	double		loss = 0.0;
	double		power = -(alpha + 1.0) / 2.0;

	for (int i = 0; i < B; i++)
	{
		const float *zi = z + (size_t) i * D;
		const float *pi = p + (size_t) i * K;
		double		s = 0.0;

		/* two passes over the centres instead of a per-row buffer: K may be large */
		for (int j = 0; j < K; j++)
			s += pow(1.0 + k_sq_dist(zi, centers + (size_t) j * D, D) / alpha, power);
		for (int j = 0; j < K; j++)
		{
			double		d2 = k_sq_dist(zi, centers + (size_t) j * D, D);
			double		q = pow(1.0 + d2 / alpha, power) / s;
			double		inv = 1.0 / (1.0 + d2 / alpha);

			if (pi[j] > 0.0f)
				loss += pi[j] * (log((double) pi[j]) - log(q));
			if (dz || dcenters)
			{
				double		coef = (pi[j] - q) * (alpha + 1.0) / alpha * inv / B;
				const float *mu = centers + (size_t) j * D;

				for (int d = 0; d < D; d++)
				{
					double		gd = coef * ((double) zi[d] - mu[d]);

					if (dz)
						dz[(size_t) i * D + d] += (float) gd;
					if (dcenters)
						dcenters[(size_t) j * D + d] -= (float) gd;
				}
			}
		}
	}
	return (float) (loss / B);
}

float
clad_svdd_loss(float *grad, const float *z, const float *c, int B, int D)
{
	double		loss = 0.0;

	for (int b = 0; b < B; b++)
		for (int j = 0; j < D; j++)
		{
			float		d = z[(size_t) b * D + j] - c[j];

			loss += (double) d * d;
			if (grad)
				grad[(size_t) b * D + j] += 2.0f * d / (float) B;
		}
	return (float) (loss / B);
}
